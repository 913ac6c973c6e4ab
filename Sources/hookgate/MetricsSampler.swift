import HookgateCore
import HookgateDelivery
import HookgateServer
import HookgateStore
import Prometheus

/// Makes `/metrics`: samples the gauges (counts the store keeps, the engine's attempts
/// in flight, connections, streams, free disk, the backlog's age), then writes the
/// registry out. Counters and histograms are kept as things happen; gauges are read only
/// when asked for, so nothing on the event path pays for them.
struct MetricsSampler {
    let registry: PrometheusCollectorRegistry
    let metrics: HookgateMetrics
    let store: SQLiteStore
    let engine: DeliveryEngine
    let server: ControlServer
    let requestTail: RequestTail
    let freeDiskSpace: FreeDiskSpace
    let clock: any WallClock = SystemWallClock()

    func exposition() async -> [UInt8] {
        let progress = await engine.progress()
        let inFlight = progress.sent.count
        if let stats = try? await store.stats() {
            metrics.deliveriesPending.record(max(0, (stats.deliveries[.pending] ?? 0) - inFlight))
        }
        metrics.deliveriesInFlight.record(inFlight)
        let now = clock.now()
        if let due = try? await store.oldestDue(now: now, sent: progress.sent) {
            metrics.oldestPendingAge.record(Double(max(0, now.microseconds - due.microseconds)) / 1_000_000)
        } else {
            metrics.oldestPendingAge.record(0)
        }
        if let counts = try? await store.webhookCounts() {
            metrics.webhooksActive.record(counts[.active] ?? 0)
            metrics.webhooksDisabled.record(counts[.disabled] ?? 0)
        }
        metrics.connections.record(server.connectionCount)
        metrics.tailSubscribers.record(requestTail.subscriberCount)
        if let free = freeDiskSpace.freeBytes { metrics.diskFree.record(Double(free)) }
        return MetricsExposition.withHelp(registry.emitToBuffer())
    }
}

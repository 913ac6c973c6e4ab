import HookgateCore
import HookgateDelivery
import HookgateServer
import HookgateStore

/// The checks behind `health` and `/readyz` (proto-spec/PROTOCOL.md "health"): the store
/// takes a write, the engine moves while work is due, the disk has room, and the oldest
/// due delivery has not waited too long.
struct Readiness {
    /// How long the engine may go without sending or storing anything while deliveries
    /// are due before it counts as stalled.
    static let stallMicroseconds: Int64 = 10_000_000

    let store: SQLiteStore
    let engine: DeliveryEngine
    let freeDiskSpace: FreeDiskSpace
    /// 0: the backlog check is off.
    let maxBacklogAgeMicroseconds: Int64
    let clock: any WallClock = SystemWallClock()

    var monitor: HealthMonitor {
        HealthMonitor(probes: [
            HealthProbe(name: "store") { [store, clock] in
                do {
                    try await store.probeWrite(at: clock.now())
                    return (true, "a write committed")
                } catch {
                    return (false, "a write failed: \(error)")
                }
            },
            HealthProbe(name: "delivery") { [store, engine, clock] in
                let progress = await engine.progress()
                let now = clock.now()
                guard let due = try? await store.oldestDue(now: now, sent: progress.sent) else {
                    return (true, "nothing due")
                }
                guard let last = progress.lastProgress else {
                    let waited = Self.seconds(now.microseconds - due.microseconds)
                    return (
                        now.microseconds - due.microseconds <= Self.stallMicroseconds,
                        "no attempt made yet; the oldest due delivery has waited \(waited)"
                    )
                }
                let idle = now.microseconds - last.microseconds
                if idle > Self.stallMicroseconds, now.microseconds - due.microseconds > Self.stallMicroseconds {
                    return (false, "no attempt sent or stored for \(Self.seconds(idle)) while deliveries are due")
                }
                return (true, "last attempt sent or stored \(Self.seconds(idle)) ago")
            },
            HealthProbe(name: "disk") { [freeDiskSpace] in
                if let shortage = freeDiskSpace.shortage { return (false, shortage) }
                let free = freeDiskSpace.freeBytes.map { "\($0 / (1 << 20)) MiB free" } ?? "free space unknown"
                return (true, free)
            },
            HealthProbe(name: "backlog") { [store, engine, clock, maxBacklogAgeMicroseconds] in
                guard maxBacklogAgeMicroseconds > 0 else { return (true, "check off (--ready-max-backlog-age 0)") }
                let progress = await engine.progress()
                let now = clock.now()
                let due: Timestamp?
                do {
                    due = try await store.oldestDue(now: now, sent: progress.sent)
                } catch {
                    return (false, "cannot read the backlog: \(error)")
                }
                guard let due else { return (true, "no delivery waiting") }
                let age = now.microseconds - due.microseconds
                let limit = Self.seconds(maxBacklogAgeMicroseconds)
                return age > maxBacklogAgeMicroseconds
                    ? (false, "the oldest due delivery has waited \(Self.seconds(age)), over \(limit)")
                    : (true, "the oldest due delivery has waited \(Self.seconds(age))")
            },
        ])
    }

    static func seconds(_ microseconds: Int64) -> String {
        let tenths = max(0, microseconds) / 100_000
        return "\(tenths / 10).\(tenths % 10) s"
    }
}

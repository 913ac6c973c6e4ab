import CoreMetrics
import Synchronization

/// The daemon's metrics (proto-spec/PROTOCOL.md "Metrics"), made through swift-metrics
/// from one factory: the Prometheus exporter's with `--metrics-listen`, else the no-op
/// one. Every labelled series is made here, once, so counting on the hot paths is a
/// dictionary lookup and an atomic add: no allocation, no lock held across I/O. No label
/// names a webhook: per-webhook figures stay in `stats`.
public final class HookgateMetrics: Sendable {
    /// Every metric's name, type and help text, for the exposition's `# HELP` lines.
    public static let catalog: [(name: String, type: String, help: String)] = [
        ("hookgate_events_accepted_total", "counter", "Events stored (not idempotent replays), by event type."),
        (
            "hookgate_requests_total", "counter",
            "Control requests answered, by command and outcome (ok or the error code)."
        ),
        (
            "hookgate_deliveries_created_total", "counter",
            "Deliveries created: one per event and matching webhook, and per redeliver."
        ),
        (
            "hookgate_delivery_attempts_total", "counter",
            "Delivery attempts and cancellations logged, by outcome and error class (none when there was none)."
        ),
        (
            "hookgate_delivery_attempt_duration_seconds", "histogram",
            "Time from sending a delivery to its answer or failure."
        ),
        (
            "hookgate_emit_duration_seconds", "histogram",
            "emit_event: time from its line read to its answer handed to the connection."
        ),
        ("hookgate_store_commit_duration_seconds", "histogram", "Time to write and commit one group of events."),
        ("hookgate_deliveries", "gauge", "Unfinished deliveries: pending (waiting to be sent) and in_flight."),
        (
            "hookgate_oldest_pending_delivery_age_seconds", "gauge",
            "Age of the due time of the oldest due delivery not yet sent to an active webhook; 0 when there is none."
        ),
        ("hookgate_webhooks", "gauge", "Webhooks registered, by state."),
        ("hookgate_webhooks_disabled_total", "counter", "Webhooks disabled, by reason: gone (410), failing, manual."),
        ("hookgate_connections", "gauge", "Control-socket connections open."),
        ("hookgate_tail_subscribers", "gauge", "tail_requests streams open."),
        ("hookgate_disk_free_bytes", "gauge", "Free bytes on the data directory's file system, for hookgate's user."),
        ("hookgate_build_info", "gauge", "Always 1; the version label says which hookgate runs."),
    ]

    /// The control-protocol commands, for `requests_total`'s `command` label; a line
    /// without a known command counts as `unknown`.
    public static let unknownCommand = "unknown"

    /// Every handle a no-op: components made without a metrics backend (tests, and the
    /// daemon without `--metrics-listen`).
    public static let disabled = HookgateMetrics(version: "", commands: [], outcomes: [])

    private let eventsAccepted: [EventType: Counter]
    private let requests: LabelledCounters
    public let deliveriesCreated: Counter
    private let attempts: LabelledCounters
    public let attemptDuration: Timer
    public let emitDuration: Timer
    public let commitDuration: Timer
    public let deliveriesPending: Gauge
    public let deliveriesInFlight: Gauge
    public let oldestPendingAge: Gauge
    public let webhooksActive: Gauge
    public let webhooksDisabled: Gauge
    private let webhooksDisabledTotal: [String: Counter]
    public let connections: Gauge
    public let tailSubscribers: Gauge
    public let diskFree: Gauge

    /// `commands`: the command names; `outcomes`: the request log's outcomes (each module
    /// owns its own list). Series of other labels are made when first counted.
    public init(
        factory: any MetricsFactory = NOOPMetricsHandler.instance, version: String, commands: [String],
        outcomes: [String]
    ) {
        var events: [EventType: Counter] = [:]
        for type in EventType.allCases {
            events[type] = Counter(
                label: "hookgate_events_accepted_total", dimensions: [("event_type", type.rawValue)], factory: factory)
        }
        eventsAccepted = events
        requests = LabelledCounters(
            label: "hookgate_requests_total", names: ("command", "outcome"), factory: factory,
            known: commands + [Self.unknownCommand])
        for command in commands { requests.touch(command, "ok") }
        deliveriesCreated = Counter(label: "hookgate_deliveries_created_total", factory: factory)
        attempts = LabelledCounters(
            label: "hookgate_delivery_attempts_total", names: ("outcome", "error_class"), factory: factory,
            known: outcomes)
        for outcome in outcomes { attempts.touch(outcome, "none") }
        attemptDuration = Timer(label: "hookgate_delivery_attempt_duration_seconds", factory: factory)
        emitDuration = Timer(label: "hookgate_emit_duration_seconds", factory: factory)
        commitDuration = Timer(label: "hookgate_store_commit_duration_seconds", factory: factory)
        deliveriesPending = Gauge(label: "hookgate_deliveries", dimensions: [("state", "pending")], factory: factory)
        deliveriesInFlight = Gauge(label: "hookgate_deliveries", dimensions: [("state", "in_flight")], factory: factory)
        oldestPendingAge = Gauge(label: "hookgate_oldest_pending_delivery_age_seconds", factory: factory)
        webhooksActive = Gauge(label: "hookgate_webhooks", dimensions: [("state", "active")], factory: factory)
        webhooksDisabled = Gauge(label: "hookgate_webhooks", dimensions: [("state", "disabled")], factory: factory)
        var disabledTotal: [String: Counter] = [:]
        for reason in ["gone", "failing", "manual"] {
            disabledTotal[reason] = Counter(
                label: "hookgate_webhooks_disabled_total", dimensions: [("reason", reason)], factory: factory)
        }
        webhooksDisabledTotal = disabledTotal
        connections = Gauge(label: "hookgate_connections", factory: factory)
        tailSubscribers = Gauge(label: "hookgate_tail_subscribers", factory: factory)
        diskFree = Gauge(label: "hookgate_disk_free_bytes", factory: factory)
        Gauge(label: "hookgate_build_info", dimensions: [("version", version)], factory: factory).record(1)
    }

    public func eventAccepted(_ type: EventType) { eventsAccepted[type]?.increment() }

    /// One control request answered: `outcome` is `ok` or the error code.
    public func request(command: String, outcome: String) {
        requests.increment(requests.isKnown(command) ? command : Self.unknownCommand, outcome)
    }

    /// One line in the request log: `errorClass` nil when there was none.
    public func attempt(outcome: String, errorClass: String?) {
        attempts.increment(outcome, errorClass ?? "none")
    }

    /// A webhook disabled: `gone`, `failing` or `manual`.
    public func webhookDisabled(reason: String) { webhooksDisabledTotal[reason]?.increment() }
}

/// A counter with two labels whose series are made when first counted: most pairs
/// (a command and an error it never gives) never happen, and a series of zeros for each
/// would only bloat the exposition. The first count of a pair makes its series; every
/// later one is a lookup under a short lock, never held across I/O.
final class LabelledCounters: Sendable {
    private let label: String
    private let names: (String, String)
    private let factory: any MetricsFactory
    /// The values the first label may take; anything else is not counted.
    private let known: Set<String>
    private let series = Mutex<[String: [String: Counter]]>([:])

    init(label: String, names: (String, String), factory: any MetricsFactory, known: [String]) {
        self.label = label
        self.names = names
        self.factory = factory
        self.known = Set(known)
    }

    func isKnown(_ first: String) -> Bool { known.contains(first) }

    /// Makes the pair's series (at zero) if it is not there yet.
    @discardableResult
    func touch(_ first: String, _ second: String) -> Counter? {
        guard known.contains(first) else { return nil }
        return series.withLock { series in
            if let counter = series[first]?[second] { return counter }
            let counter = Counter(label: label, dimensions: [(names.0, first), (names.1, second)], factory: factory)
            series[first, default: [:]][second] = counter
            return counter
        }
    }

    func increment(_ first: String, _ second: String) { touch(first, second)?.increment() }
}

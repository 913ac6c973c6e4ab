/// How the dispatcher tells the delivery engine what it needs to know; no-ops when the
/// daemon runs without one. (New deliveries reach the engine from the store itself, once
/// committed: `Store.observeNewDeliveries`.)
public struct DeliveryHooks: Sendable {
    public var webhookChanged: @Sendable (String) -> Void
    /// `recover` recorded a recovery for the engine to work through.
    public var recoveryStarted: @Sendable () -> Void
    /// Attempts in flight: for one webhook, or all with nil.
    public var inFlight: @Sendable (String?) -> Int

    public init(
        webhookChanged: @escaping @Sendable (String) -> Void = { _ in },
        recoveryStarted: @escaping @Sendable () -> Void = {},
        inFlight: @escaping @Sendable (String?) -> Int = { _ in 0 }
    ) {
        self.webhookChanged = webhookChanged
        self.recoveryStarted = recoveryStarted
        self.inFlight = inFlight
    }
}

/// How the dispatcher tells the delivery engine what it needs to know; no-ops when the
/// daemon runs without one.
public struct DeliveryHooks: Sendable {
    public var webhookChanged: @Sendable (String) -> Void
    public var deliveriesStored: @Sendable () -> Void
    /// Attempts in flight: for one webhook, or all with nil.
    public var inFlight: @Sendable (String?) -> Int

    public init(
        webhookChanged: @escaping @Sendable (String) -> Void = { _ in },
        deliveriesStored: @escaping @Sendable () -> Void = {},
        inFlight: @escaping @Sendable (String?) -> Int = { _ in 0 }
    ) {
        self.webhookChanged = webhookChanged
        self.deliveriesStored = deliveriesStored
        self.inFlight = inFlight
    }
}

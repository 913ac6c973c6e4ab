import HookgateDelivery
import HookgateServer
import ServiceLifecycle

/// Retention as a service: it prunes in the background once the socket is served, and
/// stops before the store closes.
struct RetentionService: Service {
    let retention: RequestLogRetention
    let socketServed: ReadySignal

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await socketServed.wait() }
        } catch {
            return
        }
        retention.start()
        try? await gracefulShutdown()
        retention.stop()
    }
}

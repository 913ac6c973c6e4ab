import HookgateDelivery
import HookgateServer
import ServiceLifecycle

/// The delivery engine as a service. It starts only once the control socket is served (a
/// daemon that fails to bind never sends anything), and at shutdown lets attempts in
/// flight finish within the grace period and records them before the store closes.
struct DeliveryService: Service {
    let engine: DeliveryEngine
    let socketServed: ReadySignal
    let grace: Duration

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await socketServed.wait() }
        } catch {
            return
        }
        engine.start()
        try? await gracefulShutdown()
        await engine.stop(grace: grace)
    }
}

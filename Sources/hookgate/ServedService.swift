import HookgateServer
import ServiceLifecycle

/// A part that runs only while the control socket is served: it starts once the socket
/// is (a daemon that fails to bind never delivers or prunes) and stops on graceful
/// shutdown, before the store closes. Delivery lets attempts in flight finish within the
/// grace period in its `stop`; retention just stops its timer.
struct ServedService: Service {
    let socketServed: ReadySignal
    let start: @Sendable () -> Void
    let stop: @Sendable () async -> Void

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await socketServed.wait() }
        } catch {
            return
        }
        start()
        try? await gracefulShutdown()
        await stop()
    }
}

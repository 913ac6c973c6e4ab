import HookgateStore
import ServiceLifecycle

/// The store as a service: opened before the group runs, closed when the group shuts it
/// down, which it does last, after every service that uses it has stopped.
struct StoreService: Service {
    let store: any Store

    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}

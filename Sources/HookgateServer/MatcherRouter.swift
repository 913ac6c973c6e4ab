import HookgateCore
import HookgateStore

/// The matcher as the store's event router: webhook ids per event.
struct MatcherRouter: EventRouter {
    let matcher: ShardedMatcher

    func route(_ events: [EventMatchKey]) -> [[String]] {
        matcher.match(events).map { targets in targets.map(\.id) }
    }
}

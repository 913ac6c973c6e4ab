import Dispatch
import Synchronization

/// One part of the webhook index.
///
/// `@unchecked Sendable`: `index` is read and written only on `queue`, a serial queue
/// that this shard alone uses; `queue` itself is immutable.
final class MatcherShard: @unchecked Sendable {
    let queue: DispatchQueue
    private var index = MatcherIndex()

    init(number: Int) {
        queue = DispatchQueue(label: "hookgate.matcher.shard\(number)")
    }

    /// Only on `queue`.
    func apply(_ change: MatcherChange) {
        switch change {
        case .upsert(let target): index.upsert(target)
        case .remove(let id): index.remove(id: id)
        }
    }

    /// Only on `queue`.
    func match(_ events: [EventMatchKey]) -> [[MatchTarget]] {
        events.map { event in
            var result: [MatchTarget] = []
            index.matches(event, into: &result)
            return result
        }
    }

    /// Only on `queue`.
    func explain(_ event: EventMatchKey, rejectionLimit: Int) -> MatchExplanation {
        index.explain(event, rejectionLimit: rejectionLimit)
    }

    /// Only on `queue`.
    var count: Int { index.count }
}

public enum MatcherChange: Sendable {
    case upsert(MatchTarget)
    case remove(id: String)

    var webhookID: String {
        switch self {
        case .upsert(let target): return target.id
        case .remove(let id): return id
        }
    }
}

/// The webhook index split across `shardCount` shards by webhook id, each a serial
/// DispatchQueue that alone touches its part. An event batch is offered to every shard
/// in parallel and the matches merged.
///
/// Changes are queued on their shard before `apply` returns, and matching queues behind
/// them: a match that starts after `apply` returned sees the change.
public final class ShardedMatcher: Sendable {
    private let shards: [MatcherShard]

    public init(shardCount: Int) {
        shards = (0..<max(1, shardCount)).map { MatcherShard(number: $0) }
    }

    public var shardCount: Int { shards.count }

    private func shard(for id: String) -> MatcherShard {
        // FNV-1a: stable and cheap; ids are random UUIDs, so it spreads them evenly.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return shards[Int(hash % UInt64(shards.count))]
    }

    public func apply(_ change: MatcherChange) {
        let shard = shard(for: change.webhookID)
        shard.queue.async { shard.apply(change) }
    }

    /// Loads webhooks and waits until every shard holds them.
    public func load(_ webhooks: [Webhook]) {
        for webhook in webhooks { apply(.upsert(MatchTarget(webhook))) }
        for shard in shards { shard.queue.sync {} }
    }

    /// The webhooks that receive each event, in the events' order. Blocks the caller
    /// while the shards work in parallel.
    public func match(_ events: [EventMatchKey]) -> [[MatchTarget]] {
        guard !events.isEmpty else { return [] }
        if shards.count == 1 {
            let shard = shards[0]
            return shard.queue.sync { shard.match(events) }
        }
        let perShard = Mutex<[[[MatchTarget]]]>(Array(repeating: [], count: shards.count))
        DispatchQueue.concurrentPerform(iterations: shards.count) { i in
            let shard = shards[i]
            let found = shard.queue.sync { shard.match(events) }
            perShard.withLock { $0[i] = found }
        }
        return perShard.withLock { results in
            var merged = results[0]
            for shardResult in results.dropFirst() {
                for (i, matches) in shardResult.enumerated() where !matches.isEmpty {
                    merged[i].append(contentsOf: matches)
                }
            }
            return merged
        }
    }

    /// The dry run across all shards: matches, and the first `rejectionLimit` rejections
    /// by webhook id, with the total count.
    public func explain(_ event: EventMatchKey, rejectionLimit: Int) -> MatchExplanation {
        let perShard = Mutex<[MatchExplanation]>(Array(repeating: MatchExplanation(), count: shards.count))
        DispatchQueue.concurrentPerform(iterations: shards.count) { i in
            let shard = shards[i]
            let explanation = shard.queue.sync { shard.explain(event, rejectionLimit: rejectionLimit) }
            perShard.withLock { $0[i] = explanation }
        }
        return perShard.withLock { results in
            var merged = MatchExplanation()
            for explanation in results {
                merged.matches += explanation.matches
                merged.rejections += explanation.rejections
                merged.rejectionsTotal += explanation.rejectionsTotal
            }
            merged.matches.sort { $0.id < $1.id }
            merged.rejections.sort { $0.webhookID < $1.webhookID }
            merged.rejections = Array(merged.rejections.prefix(rejectionLimit))
            return merged
        }
    }

    /// How many webhooks the shards hold, enabled or not.
    public var count: Int {
        shards.reduce(0) { total, shard in total + shard.queue.sync { shard.count } }
    }
}

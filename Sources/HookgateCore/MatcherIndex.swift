/// An index of webhooks for matching events, keyed so that a webhook that cannot match
/// an event costs nothing: by event type, then by sender key (webhooks without a sender
/// filter sit in one bucket per event type). Only the candidates it selects are checked
/// against their remaining filters. Disabled webhooks are kept aside, out of the index.
///
/// A value type with no locking: its owner (a matcher shard's queue) serialises access.
public struct MatcherIndex: Sendable {
    /// Every webhook, enabled or not, by id.
    private var targets: [String: MatchTarget] = [:]
    private var byType: [EventType: TypeBuckets] = [:]

    public init() {}

    public var count: Int { targets.count }

    /// The webhooks of one index key. Removal scans: buckets keyed by sender hold a
    /// webhook or two, and a map of positions would cost more memory than it saves time.
    struct Bucket: Sendable {
        var items: [MatchTarget] = []

        mutating func insert(_ target: MatchTarget) {
            if let index = items.firstIndex(where: { $0.id == target.id }) {
                items[index] = target
            } else {
                items.append(target)
            }
        }

        mutating func remove(_ id: String) {
            guard let index = items.firstIndex(where: { $0.id == id }) else { return }
            items.swapAt(index, items.count - 1)
            items.removeLast()
        }

        var isEmpty: Bool { items.isEmpty }
    }

    struct TypeBuckets: Sendable {
        var anySender = Bucket()
        var bySender: [ExactKey: Bucket] = [:]
    }

    /// Adds or replaces the webhook.
    public mutating func upsert(_ target: MatchTarget) {
        remove(id: target.id)
        targets[target.id] = target
        guard target.enabled else { return }
        // Mutated in place through the subscripts: copying a bucket out and back would
        // copy its whole array on every insert.
        for type in target.eventTypes {
            if target.senders.isEmpty {
                byType[type, default: TypeBuckets()].anySender.insert(target)
            } else {
                for sender in target.senders {
                    byType[type, default: TypeBuckets()].bySender[sender, default: Bucket()].insert(target)
                }
            }
        }
    }

    public mutating func remove(id: String) {
        guard let old = targets.removeValue(forKey: id), old.enabled else { return }
        for type in old.eventTypes where byType[type] != nil {
            if old.senders.isEmpty {
                byType[type]!.anySender.remove(id)
            } else {
                for sender in old.senders {
                    byType[type]!.bySender[sender]?.remove(id)
                    if byType[type]!.bySender[sender]?.isEmpty == true { byType[type]!.bySender[sender] = nil }
                }
            }
            if byType[type]!.anySender.isEmpty && byType[type]!.bySender.isEmpty { byType[type] = nil }
        }
    }

    /// Appends the webhooks that receive `event`.
    public func matches(_ event: EventMatchKey, into result: inout [MatchTarget]) {
        guard let buckets = byType[event.eventType] else { return }
        for target in buckets.anySender.items where target.rejectionAfterEventType(of: event) == nil {
            result.append(target)
        }
        // Every family's event carries a sender (status.sender, mo.recipient,
        // source_message.sender), so a sender-filtered webhook is found by its key.
        guard case .value(_, let senderKey) = event.sender, let bucket = buckets.bySender[senderKey] else { return }
        for target in bucket.items where target.rejectionAfterEventType(of: event) == nil {
            result.append(target)
        }
    }

    /// The dry run: every webhook, matched or with its first rejection.
    public func explain(_ event: EventMatchKey, rejectionLimit: Int) -> MatchExplanation {
        var explanation = MatchExplanation()
        for target in targets.values {
            if let reason = target.rejection(of: event) {
                explanation.rejections.append(.init(webhookID: target.id, reason: reason))
            } else {
                explanation.matches.append(target)
            }
        }
        // The first rejections by webhook id, so that the answer does not depend on
        // hashing order.
        explanation.rejectionsTotal = explanation.rejections.count
        explanation.rejections.sort { $0.webhookID < $1.webhookID }
        explanation.rejections.removeSubrange(min(rejectionLimit, explanation.rejections.count)...)
        return explanation
    }

    /// All webhooks, for the plain-scan reference and tests.
    public var allTargets: [MatchTarget] { Array(targets.values) }
}

/// What `match_event` answers.
public struct MatchExplanation: Sendable, Equatable {
    public struct Rejection: Sendable, Equatable {
        public var webhookID: String
        public var reason: String
    }

    public var matches: [MatchTarget] = []
    /// At most the limit asked for; `rejectionsTotal` counts them all.
    public var rejections: [Rejection] = []
    public var rejectionsTotal = 0

    public init() {}
}

/// A webhook's rate limit (proto-spec/PROTOCOL.md "Delivery"): a token bucket filling at `rate`
/// tokens per second and holding at most max(1, ⌈rate/10⌉), so that no sliding second
/// carries more than rate + that capacity deliveries. Tokens are counted in millionths
/// so that integer arithmetic stays exact at every rate from 1 to 10,000 per second.
///
/// A value type: its owner (the scheduler's thread) serialises access.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Int
    public let capacity: Int
    /// Tokens × 1,000,000 available at `updatedAt`.
    private var microTokens: Int64
    private var updatedAt: Timestamp

    /// A full bucket at `now`. `rate` below 1 is taken as 1.
    public init(rate: Int, now: Timestamp) {
        self.rate = max(1, rate)
        capacity = max(1, (self.rate + 9) / 10)
        microTokens = Int64(capacity) * 1_000_000
        updatedAt = now
    }

    private mutating func refill(_ now: Timestamp) {
        guard now > updatedAt else { return }
        // rate tokens per second = rate micro-tokens per microsecond.
        let elapsed = now.microseconds - updatedAt.microseconds
        let (added, overflow) = elapsed.multipliedReportingOverflow(by: Int64(rate))
        let full = Int64(capacity) * 1_000_000
        microTokens = overflow ? full : min(full, microTokens + added)
        updatedAt = now
    }

    /// Takes a token if one is there at `now`.
    public mutating func take(at now: Timestamp) -> Bool {
        refill(now)
        guard microTokens >= 1_000_000 else { return false }
        microTokens -= 1_000_000
        return true
    }

    /// True when the bucket holds all it can at `now` (a new bucket would be no different).
    public func isFull(at now: Timestamp) -> Bool {
        let missing = Int64(capacity) * 1_000_000 - microTokens
        guard missing > 0 else { return true }
        guard now > updatedAt else { return false }
        let (added, overflow) = (now.microseconds - updatedAt.microseconds).multipliedReportingOverflow(by: Int64(rate))
        return overflow || added >= missing
    }

    /// When the next token will be there (now, if one is).
    public mutating func nextToken(at now: Timestamp) -> Timestamp {
        // A clock that stepped back is treated as standing still at the last update.
        let now = max(now, updatedAt)
        refill(now)
        if microTokens >= 1_000_000 { return now }
        let missing = 1_000_000 - microTokens
        // Round up: at the returned time the token is whole.
        let wait = (missing + Int64(rate) - 1) / Int64(rate)
        return now.adding(microseconds: wait)
    }
}

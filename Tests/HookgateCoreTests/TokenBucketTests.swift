import HookgateCore
import Testing

@Suite("Token bucket")
struct TokenBucketTests {
    static let t0 = Timestamp(microseconds: 1_744_592_372_000_000)

    /// A bucket at `rate` emptied at `t0`.
    static func drained(rate: Int) -> TokenBucket {
        var bucket = TokenBucket(rate: rate, now: t0)
        while bucket.take(at: t0) {}
        return bucket
    }

    /// Takes at each offset from `t0` in turn: whether each one got a token.
    static func takes(_ bucket: inout TokenBucket, at offsets: [Int64]) -> [Bool] {
        offsets.map { bucket.take(at: t0.adding(microseconds: $0)) }
    }

    /// Microseconds until the next whole token of an empty bucket: ⌈1,000,000 / rate⌉.
    static func period(_ rate: Int) -> Int64 { (1_000_000 + Int64(rate) - 1) / Int64(rate) }

    // MARK: - Capacity

    /// (rate_limit, rate, capacity): capacity = max(1, ⌈rate/10⌉); 0 and below are taken as 1.
    @Test(arguments: [
        (0, 1, 1),
        (-5, 1, 1),
        (1, 1, 1),
        (9, 9, 1),
        (10, 10, 1),
        (11, 11, 2),
        (19, 19, 2),
        (20, 20, 2),
        (21, 21, 3),
        (100, 100, 10),
        (101, 101, 11),
        (1000, 1000, 100),
        (9999, 9999, 1000),
        (10000, 10000, 1000),
    ])
    func capacity(_ rateLimit: Int, _ rate: Int, _ capacity: Int) {
        let bucket = TokenBucket(rate: rateLimit, now: Self.t0)
        #expect(bucket.rate == rate)
        #expect(bucket.capacity == capacity)
    }

    static let rates = [1, 2, 3, 7, 9, 10, 11, 100, 333, 1000, 9999, 10000]

    @Test(arguments: [0, 1, 9, 10, 11, 100, 1000, 9999, 10000])
    func fullBucketGivesExactlyCapacityAtOneInstant(_ rate: Int) {
        var bucket = TokenBucket(rate: rate, now: Self.t0)
        var taken = 0
        while taken <= 20_000, bucket.take(at: Self.t0) { taken += 1 }
        #expect(taken == bucket.capacity)
        let another = bucket.take(at: Self.t0)
        #expect(!another)
        let next = bucket.nextToken(at: Self.t0)
        #expect(next > Self.t0)
    }

    // MARK: - Refill

    /// Rates dividing one second evenly: exactly 1/rate seconds brings one token.
    @Test(arguments: [1, 2, 4, 5, 8, 10, 16, 100, 1000, 10000])
    func refillsOneTokenAfterExactlyOneOverRate(_ rate: Int) {
        var bucket = Self.drained(rate: rate)
        let step = Int64(1_000_000 / rate)
        // One token at 1/rate, not before, and the next after another 1/rate.
        let got = Self.takes(&bucket, at: [step - 1, step, step, 2 * step - 1, 2 * step, 2 * step])
        #expect(got == [false, true, false, false, true, false])
    }

    @Test(arguments: rates)
    func refillStopsAtCapacity(_ rate: Int) {
        var bucket = Self.drained(rate: rate)
        let later = Self.t0.adding(microseconds: 3_600_000_000)
        var taken = 0
        while taken <= 20_000, bucket.take(at: later) { taken += 1 }
        #expect(taken == bucket.capacity)
    }

    @Test(arguments: rates)
    func oneSecondRefillsRateTokensUpToCapacity(_ rate: Int) {
        // Take one token a second for a full second at a time: a second adds `rate`
        // tokens, of which the bucket keeps at most `capacity`.
        var bucket = Self.drained(rate: rate)
        let later = Self.t0.adding(microseconds: 1_000_000)
        var taken = 0
        while taken <= 20_000, bucket.take(at: later) { taken += 1 }
        #expect(taken == min(rate, bucket.capacity))
    }

    // MARK: - nextToken

    @Test(arguments: rates)
    func nextTokenIsExact(_ rate: Int) {
        let drained = Self.drained(rate: rate)
        let offsets: [Int64] = [0, 1, 7, 99, 100, 101, Self.period(rate) / 2, Self.period(rate) - 1]
        // Before the next whole token.
        for offset in offsets where offset < Self.period(rate) {
            let query = Self.t0.adding(microseconds: offset)
            var asked = drained
            let next = asked.nextToken(at: query)
            // The whole token is there exactly period after the drain (period rounds up).
            #expect(next == Self.t0.adding(microseconds: Self.period(rate)), "rate \(rate), offset \(offset)")
            #expect(next >= query)
            var onTime = drained
            let tookOnTime = onTime.take(at: next)
            #expect(tookOnTime, "rate \(rate), offset \(offset)")
            var early = drained
            let tookEarly = early.take(at: next.adding(microseconds: -1))
            #expect(!tookEarly, "rate \(rate), offset \(offset)")
        }
    }

    @Test func nextTokenIsExactForRandomRatesAndPartialTokens() {
        var rng = SplitMix64(seed: 0x70_6B65_6E)
        for _ in 0..<2_000 {
            let rate = Int.random(in: 1...10_000, using: &rng)
            var bucket = TokenBucket(rate: rate, now: Self.t0)
            // Drain, then let a random part of a token (or more) come back and take what is there.
            while bucket.take(at: Self.t0) {}
            let start = Self.t0.adding(microseconds: Int64.random(in: 0...2_000_000, using: &rng))
            while bucket.take(at: start) {}
            let query = start.adding(microseconds: Int64.random(in: 0...Self.period(rate), using: &rng))
            var asked = bucket
            let next = asked.nextToken(at: query)
            #expect(next >= query)
            #expect(next.microseconds - start.microseconds <= Self.period(rate))
            var onTime = bucket
            let tookOnTime = onTime.take(at: next)
            #expect(tookOnTime, "rate \(rate), start \(start), query \(query)")
            if next > query {
                var early = bucket
                let tookEarly = early.take(at: next.adding(microseconds: -1))
                #expect(!tookEarly, "rate \(rate), start \(start), query \(query)")
            }
        }
    }

    @Test(arguments: rates)
    func nextTokenIsNowWhenATokenIsThere(_ rate: Int) {
        var bucket = TokenBucket(rate: rate, now: Self.t0)
        let next = bucket.nextToken(at: Self.t0)
        #expect(next == Self.t0)
        // Asking does not take.
        var taken = 0
        while taken <= 20_000, bucket.take(at: Self.t0) { taken += 1 }
        #expect(taken == bucket.capacity)
    }

    /// Full at first; after one take, full again exactly capacity periods later (the
    /// scheduler forgets an idle webhook's bucket only then: a new one starts full).
    @Test(arguments: rates)
    func fullAgainOnlyWhenEveryTokenIsBack(_ rate: Int) {
        var bucket = TokenBucket(rate: rate, now: Self.t0)
        #expect(bucket.isFull(at: Self.t0))
        let took = bucket.take(at: Self.t0)
        #expect(took)
        #expect(!bucket.isFull(at: Self.t0))
        let refill = (1_000_000 + Int64(rate) - 1) / Int64(rate)
        #expect(!bucket.isFull(at: Self.t0.adding(microseconds: refill - 1)))
        #expect(bucket.isFull(at: Self.t0.adding(microseconds: refill)))

        let drained = Self.drained(rate: rate)
        let whole = (Int64(drained.capacity) * 1_000_000 + Int64(rate) - 1) / Int64(rate)
        #expect(!drained.isFull(at: Self.t0.adding(microseconds: whole - 1)))
        #expect(drained.isFull(at: Self.t0.adding(microseconds: whole)))
    }

    // MARK: - Clock going backwards

    @Test(arguments: rates)
    func timeGoingBackwardsAddsNoTokens(_ rate: Int) {
        var bucket = Self.drained(rate: rate)
        let period = Self.period(rate)
        // The steps back neither add tokens nor move the bucket's clock back: the next
        // token comes exactly one period after the drain, and only one.
        let got = Self.takes(&bucket, at: [-10_000_000, -1, period - 1, -3_600_000_000, period, period])
        #expect(got == [false, false, false, false, true, false])
    }

    @Test func backwardsAfterProgressDoesNotRefillTwice() {
        // Rate 100 (capacity 10): half a period, back 10 s, then one period: one token.
        var bucket = Self.drained(rate: 100)
        let got = Self.takes(&bucket, at: [5_000, -10_000_000, 10_000, 10_000, 19_999, 20_000, 20_000])
        #expect(got == [false, false, true, false, false, true, false])
    }

    // MARK: - The sliding-second bound

    /// A greedy consumer takes a token whenever one is there, stepping time in small
    /// increments over 10 simulated seconds. No sliding second (a closed interval of
    /// 1,000,000 µs) may carry more than rate + capacity takes, and once the initial
    /// full bucket is spent the rate is `rate` within ±1%. A 4 µs step divides every
    /// period (tokens are taken the instant they are whole); 7 µs divides none, so takes
    /// land up to a step late.
    @Test(arguments: [1, 10, 100, 1000, 10000], [Int64(4), 7])
    func greedyConsumerStaysWithinRatePlusCapacity(_ rate: Int, _ step: Int64) {
        var bucket = TokenBucket(rate: rate, now: Self.t0)
        let duration: Int64 = 10_000_000
        var takes: [Int64] = []
        takes.reserveCapacity(rate * 10 + bucket.capacity + 1)
        var offset: Int64 = 0
        while offset <= duration {
            let now = Self.t0.adding(microseconds: offset)
            while bucket.take(at: now) { takes.append(offset) }
            offset += step
        }

        // Every window starting at a take (the fullest windows start at one).
        var worst = 0
        var end = 0
        for start in takes.indices {
            while end < takes.count, takes[end] <= takes[start] + 1_000_000 { end += 1 }
            worst = max(worst, end - start)
        }
        #expect(worst <= rate + bucket.capacity, "rate \(rate), step \(step): \(worst) takes in one second")
        // The bound is (nearly) reached: the full bucket and a second of refill.
        #expect(worst >= rate + bucket.capacity - 1, "rate \(rate), step \(step): \(worst) takes in one second")

        let burst = takes.prefix { $0 == 0 }.count
        #expect(burst == bucket.capacity)
        #expect(takes.count <= bucket.capacity + rate * 10)
        if Self.period(rate) % step == 0 {
            // No token is lost or late: exactly the full bucket and 10 s of refill.
            #expect(takes.count == bucket.capacity + rate * 10)
        }
        // The long-run rate: takes after the burst over the time they span.
        let steady = takes.dropFirst(burst)
        guard let first = steady.first, let last = steady.last, last > first else {
            Issue.record("rate \(rate), step \(step): \(steady.count) takes after the burst")
            return
        }
        let longRun = Double(steady.count - 1) * 1_000_000 / Double(last - first)
        #expect(abs(longRun - Double(rate)) <= 0.01 * Double(rate), "rate \(rate), step \(step): \(longRun) per second")
    }
}

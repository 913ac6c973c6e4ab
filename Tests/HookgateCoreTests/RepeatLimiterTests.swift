import HookgateCore
import Testing

@Suite("Repeat limiter")
struct RepeatLimiterTests {
    /// (seconds of each occurrence, whether each is logged, and with how many left out).
    @Test(
        arguments: [
            ([0.0], [(true, 0)]),
            ([0, 1, 2, 9.9, 10, 11], [(true, 0), (false, 0), (false, 0), (false, 0), (true, 3), (false, 0)]),
            ([0, 10, 20], [(true, 0), (true, 0), (true, 0)]),
            ([5, 5, 5, 15.5], [(true, 0), (false, 0), (false, 0), (true, 2)]),
        ] as [([Double], [(Bool, Int)])])
    func logsTheFirstThenOnePerInterval(_ seconds: [Double], _ expected: [(Bool, Int)]) {
        var limiter = RepeatLimiter(intervalMicroseconds: 10_000_000)
        let results = seconds.map { limiter.occurrence(at: Timestamp(microseconds: Int64($0 * 1_000_000))) }
        #expect(results.map(\.log) == expected.map(\.0))
        #expect(results.map(\.suppressed) == expected.map(\.1))
    }

    @Test func resetLogsTheNextAtOnceAndCountsWhatWasLeftOut() {
        var limiter = RepeatLimiter(intervalMicroseconds: 10_000_000)
        #expect(!limiter.isActive)
        _ = limiter.occurrence(at: Timestamp(microseconds: 0))
        _ = limiter.occurrence(at: Timestamp(microseconds: 1))
        _ = limiter.occurrence(at: Timestamp(microseconds: 2))
        #expect(limiter.isActive)
        #expect(limiter.reset() == 2)
        #expect(!limiter.isActive)
        #expect(limiter.occurrence(at: Timestamp(microseconds: 3)) == (true, 0))
    }
}

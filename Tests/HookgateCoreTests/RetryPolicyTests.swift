import HookgateCore
import Testing

@Suite("Retry policy")
struct RetryPolicyTests {
    /// The default schedule (proto-spec/PROTOCOL.md "Delivery"): 5s, 5m, 30m, 2h, 5h, 10h, 10h.
    static let defaultDelays: [Int64] = [
        5_000_000, 300_000_000, 1_800_000_000, 7_200_000_000, 18_000_000_000, 36_000_000_000, 36_000_000_000,
    ]

    // MARK: - Schedule

    @Test(arguments: [
        ("5s,5m,30m,2h,5h,10h,10h", defaultDelays),
        ("5s", [5_000_000]),
        ("250ms,1d", [250_000, 86_400_000_000]),
        // A bare number is seconds.
        ("30,60", [30_000_000, 60_000_000]),
        // Spaces around items are ignored.
        (" 5s , 5m ", [5_000_000, 300_000_000]),
        ("1ms", [1_000]),
        // No retries at all.
        ("", []),
        ("   ", []),
    ])
    func parsesSchedules(_ text: String, _ delays: [Int64]) {
        #expect(RetryPolicy.parseSchedule(text) == delays)
    }

    @Test(arguments: [
        "5x",
        "0s",
        "0",
        "0ms",
        "-5s",
        "5s,,5m",
        ",",
        "5s,",
        ",5s",
        "5s,0s",
        "5s;5m",
        "5s 5m",
        "1.5s",
        "abc",
        "5S",
        // Overflow of the microsecond count.
        "9223372036855s",
    ])
    func rejectsMalformedSchedules(_ text: String) {
        #expect(RetryPolicy.parseSchedule(text) == nil)
    }

    @Test func defaultPolicy() {
        #expect(RetryPolicy.defaultSchedule == "5s,5m,30m,2h,5h,10h,10h")
        #expect(RetryPolicy.default.delays == Self.defaultDelays)
        #expect(RetryPolicy.default.jitter == 0.2)
        #expect(RetryPolicy.maxRetryAfterMicroseconds == 86_400_000_000)
    }

    @Test(arguments: [
        ("5s,5m,30m,2h,5h,10h,10h", 8),
        ("5s", 2),
        ("5s,5m", 3),
        ("", 1),
    ])
    func maxAttemptsIsTheFirstPlusOnePerDelay(_ schedule: String, _ attempts: Int) {
        #expect(RetryPolicy(delays: RetryPolicy.parseSchedule(schedule)!).maxAttempts == attempts)
    }

    // MARK: - Jitter

    /// (attempt, unit, delay): ±20% around the schedule; exactly the schedule at 0.5.
    @Test(arguments: [
        (1, 0.0, Int64(4_000_000)),
        (2, 0.0, 240_000_000),
        (3, 0.0, 1_440_000_000),
        (4, 0.0, 5_760_000_000),
        (5, 0.0, 14_400_000_000),
        (6, 0.0, 28_800_000_000),
        (7, 0.0, 28_800_000_000),
        (1, 0.5, 5_000_000),
        (2, 0.5, 300_000_000),
        (3, 0.5, 1_800_000_000),
        (4, 0.5, 7_200_000_000),
        (5, 0.5, 18_000_000_000),
        (6, 0.5, 36_000_000_000),
        (7, 0.5, 36_000_000_000),
        // Factor 1 + 0.2 × (2 × 0.999999 − 1) = 1.1999996.
        (1, 0.999999, 5_999_998),
        (2, 0.999999, 359_999_880),
        (3, 0.999999, 2_159_999_280),
        (4, 0.999999, 8_639_997_120),
        (5, 0.999999, 21_599_992_800),
        (6, 0.999999, 43_199_985_600),
        (7, 0.999999, 43_199_985_600),
        // A quarter of the way: −10%; three quarters: +10%.
        (1, 0.25, 4_500_000),
        (1, 0.75, 5_500_000),
        (6, 0.25, 32_400_000_000),
        (6, 0.75, 39_600_000_000),
        // Out-of-range units are clamped to 0...1.
        (1, -1.0, 4_000_000),
        (1, 1.0, 6_000_000),
        (1, 7.0, 6_000_000),
    ])
    func delayAfterEachAttempt(_ attempt: Int, _ unit: Double, _ expected: Int64) {
        let delay = RetryPolicy.default.delay(afterAttempt: attempt, unit: unit)
        #expect(delay == expected)
        let scheduled = Self.defaultDelays[attempt - 1]
        if let delay {
            // Within ±20% of the schedule, in exact integer arithmetic.
            #expect(5 * delay >= 4 * scheduled)
            #expect(5 * delay <= 6 * scheduled)
        }
    }

    @Test(arguments: [0.0, 0.5, 0.999999])
    func noDelayOutsideTheSchedule(_ unit: Double) {
        let policy = RetryPolicy.default
        #expect(policy.delay(afterAttempt: 0, unit: unit) == nil)
        #expect(policy.delay(afterAttempt: -1, unit: unit) == nil)
        // After the 8th attempt (the last), the delivery is failed.
        #expect(policy.delay(afterAttempt: 8, unit: unit) == nil)
        #expect(policy.delay(afterAttempt: 9, unit: unit) == nil)
        #expect(policy.delay(afterAttempt: Int.max, unit: unit) == nil)
        // A Retry-After does not add an attempt.
        #expect(policy.delay(afterAttempt: 8, unit: unit, retryAfter: 60_000_000) == nil)
        #expect(policy.delay(afterAttempt: 0, unit: unit, retryAfter: 60_000_000) == nil)
        // No retries at all.
        #expect(RetryPolicy(delays: []).delay(afterAttempt: 1, unit: unit) == nil)
    }

    @Test func jitterStaysWithinTwentyPercentForRandomUnits() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        let policy = RetryPolicy.default
        var factorSum = 0.0
        var samples = 0
        var previousUnit = -1.0
        var previousDelays = [Int64](repeating: 0, count: policy.delays.count)
        let units = (0..<10_000).map { _ in Double.random(in: 0..<1, using: &rng) }
        for unit in units.sorted() {
            for attempt in 1...policy.delays.count {
                let scheduled = policy.delays[attempt - 1]
                guard let delay = policy.delay(afterAttempt: attempt, unit: unit) else {
                    Issue.record("no delay after attempt \(attempt) at unit \(unit)")
                    continue
                }
                #expect(5 * delay >= 4 * scheduled, "attempt \(attempt), unit \(unit): \(delay)")
                #expect(5 * delay <= 6 * scheduled, "attempt \(attempt), unit \(unit): \(delay)")
                // A larger unit never gives a shorter delay.
                if previousUnit >= 0 {
                    #expect(delay >= previousDelays[attempt - 1], "attempt \(attempt), unit \(unit)")
                }
                previousDelays[attempt - 1] = delay
                factorSum += Double(delay) / Double(scheduled)
                samples += 1
            }
            previousUnit = unit
        }
        // Centred on the schedule: the mean factor is 1 within 0.5% (for 10,000 uniform
        // units its standard deviation is 0.4 / √12 / 100 ≈ 0.0012).
        let mean = factorSum / Double(samples)
        #expect(abs(mean - 1) < 0.005, "mean factor \(mean)")
    }

    // MARK: - Retry-After

    /// (attempt, unit, retryAfter, delay): the larger of the jittered schedule and the
    /// receiver's Retry-After, the latter capped at 24 hours and never negative.
    @Test(arguments: [
        // Retry-After longer than the schedule wins.
        (1, 0.5, Int64(120_000_000), Int64(120_000_000)),
        (1, 0.0, 4_500_000, 4_500_000),
        (1, 0.999999, 6_000_000, 6_000_000),
        // The jittered schedule wins over a shorter Retry-After.
        (1, 0.5, 1_000_000, 5_000_000),
        (1, 0.0, 3_999_999, 4_000_000),
        (1, 0.999999, 5_999_997, 5_999_998),
        (6, 0.999999, 39_600_000_000, 43_199_985_600),
        (7, 0.0, 28_799_999_999, 28_800_000_000),
        // Zero and negative are treated as 0: the schedule.
        (1, 0.5, 0, 5_000_000),
        (1, 0.5, -5_000_000, 5_000_000),
        (1, 0.0, Int64.min, 4_000_000),
        (6, 0.0, -1, 28_800_000_000),
        // Capped at 24 hours.
        (1, 0.5, 86_400_000_000, 86_400_000_000),
        (1, 0.5, 86_400_000_001, 86_400_000_000),
        (1, 0.5, 172_800_000_000, 86_400_000_000),
        (1, 0.5, Int64.max, 86_400_000_000),
        (7, 0.999999, 108_000_000_000, 86_400_000_000),
        (7, 0.0, Int64.max, 86_400_000_000),
    ])
    func retryAfterRaisesTheDelay(_ attempt: Int, _ unit: Double, _ retryAfter: Int64, _ expected: Int64) {
        #expect(RetryPolicy.default.delay(afterAttempt: attempt, unit: unit, retryAfter: retryAfter) == expected)
    }

    @Test func retryAfterNilIsTheSchedule() {
        for attempt in 1...7 {
            #expect(
                RetryPolicy.default.delay(afterAttempt: attempt, unit: 0.5, retryAfter: nil)
                    == Self.defaultDelays[attempt - 1])
        }
    }

    @Test func headerThroughPolicyIsCappedAtOneDay() {
        let now = Timestamp(microseconds: 784_108_800_000_000)
        // 100,000 s (27.8 h) asked for: the policy waits 24 h.
        let asked = RetryAfter.delay("100000", now: now)
        #expect(asked == 100_000_000_000)
        #expect(RetryPolicy.default.delay(afterAttempt: 1, unit: 0.5, retryAfter: asked) == 86_400_000_000)
        // A date two days ahead: also 24 h.
        let date = RetryAfter.delay("Tue, 08 Nov 1994 08:00:00 GMT", now: now)
        #expect(date == 172_800_000_000)
        #expect(RetryPolicy.default.delay(afterAttempt: 3, unit: 0.5, retryAfter: date) == 86_400_000_000)
    }

    /// A very long schedule item must not crash the daemon when jitter pushes it past
    /// Int64 (either parseSchedule refuses it or delay clamps it). 100,000,000 days is
    /// 8.64e18 µs, which fits an Int64 (Units accepts it); 1.2 times that does not.
    @Test func hugeScheduleItemDoesNotCrash() async {
        await #expect(processExitsWith: .success) {
            let delays = RetryPolicy.parseSchedule("100000000d") ?? [1]
            for unit in [0.0, 0.5, 0.999999] {
                _ = RetryPolicy(delays: delays).delay(afterAttempt: 1, unit: unit)
            }
        }
    }

    // MARK: - Retry-After header values

    /// 1994-11-06T08:00:00Z, 49 min 37 s before the RFC's example date.
    static let now = Timestamp(microseconds: 784_108_800_000_000)

    @Test(arguments: [
        ("120", Int64(120_000_000)),
        ("0", 0),
        ("1", 1_000_000),
        ("  30 ", 30_000_000),
        ("007", 7_000_000),
        ("86400", 86_400_000_000),
        // Not capped here (the policy caps): the delay asked for.
        ("100000", 100_000_000_000),
        ("9223372036854", 9_223_372_036_854_000_000),
        // Too many seconds for microseconds, or for Int64 at all: the 24 h cap.
        ("9223372036855", 86_400_000_000),
        ("99999999999999999999", 86_400_000_000),
        ("999999999999999999999999999999", 86_400_000_000),
        // HTTP-dates relative to now (08:00:00): 49 min 37 s ahead.
        ("Sun, 06 Nov 1994 08:49:37 GMT", 2_977_000_000),
        ("  Sun, 06 Nov 1994 08:49:37 GMT ", 2_977_000_000),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 2_977_000_000),
        ("Sun Nov  6 08:49:37 1994", 2_977_000_000),
        ("Sun, 06 Nov 1994 08:00:01 GMT", 1_000_000),
        // Now and the past: 0.
        ("Sun, 06 Nov 1994 08:00:00 GMT", 0),
        ("Sun, 06 Nov 1994 07:59:59 GMT", 0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Saturday, 05-Nov-94 08:49:37 GMT", 0),
        ("Sat Nov  5 08:49:37 1994", 0),
    ])
    func retryAfterValues(_ value: String, _ expected: Int64) {
        #expect(RetryAfter.delay(value, now: Self.now) == expected)
    }

    @Test func retryAfterDateCountsFromAFractionalNow() {
        let now = Timestamp(microseconds: 784_108_800_500_000)
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == 2_976_500_000)
        #expect(RetryAfter.delay("Sun, 06 Nov 1994 08:00:00 GMT", now: now) == 0)
    }

    @Test(arguments: [
        "-5",
        "+5",
        "-0",
        "abc",
        "",
        " ",
        "5s",
        "5.5",
        "1e3",
        "0x10",
        "12 34",
        // Malformed dates.
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 32 Oct 1994 08:49:37 GMT",
        "Wed, 29 Feb 1995 00:00:00 GMT",
        "Sun 06 Nov 1994 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sunday, 06-Foo-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 25:00:00 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sunday, 06-Nov-94 08:49:37 UTC",
        "Sun Foo  6 08:49:37 1994",
        "Sun Nov  6 25:00:00 1994",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 31 08:49:37 1994",
        "Sun Nov  6 08:49:37",
    ])
    func rejectsRetryAfterValues(_ value: String) {
        #expect(RetryAfter.delay(value, now: Self.now) == nil)
    }

    /// RFC 9110 §5.6.7: a recipient of an rfc850-date "MUST interpret a timestamp that
    /// appears to be more than 50 years in the future as representing the most recent
    /// year in the past that had the same last two digits". The century therefore
    /// depends on now, not on a fixed pivot year.
    @Test(arguments: [
        // now, value, the instant it means
        ("2025-06-01T00:00:00Z", "Sunday, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:49:37Z"),
        ("2025-06-01T00:00:00Z", "Monday, 01-Dec-25 00:00:00 GMT", "2025-12-01T00:00:00Z"),
        ("2025-06-01T00:00:00Z", "Tuesday, 01-Jan-69 00:00:00 GMT", "2069-01-01T00:00:00Z"),
        // 46.6 and 49.6 years ahead: not more than 50, so 2072 and 2075.
        ("2025-06-01T00:00:00Z", "Friday, 01-Jan-72 00:00:00 GMT", "2072-01-01T00:00:00Z"),
        ("2025-06-01T00:00:00Z", "Tuesday, 01-Jan-75 00:00:00 GMT", "2075-01-01T00:00:00Z"),
        // 50.6 years ahead: the past century.
        ("2025-06-01T00:00:00Z", "Wednesday, 01-Jan-76 00:00:00 GMT", "1976-01-01T00:00:00Z"),
        // In 2060, "95" is 35 years ahead.
        ("2060-01-01T00:00:00Z", "Saturday, 01-Jan-95 00:00:00 GMT", "2095-01-01T00:00:00Z"),
        ("2060-01-01T00:00:00Z", "Thursday, 01-Jan-15 00:00:00 GMT", "2015-01-01T00:00:00Z"),
    ])
    func rfc850TwoDigitYearsFollowRFC9110(_ nowText: String, _ value: String, _ meantText: String) {
        let now = Timestamp(rfc3339: nowText)!
        let meant = Timestamp(rfc3339: meantText)!
        #expect(RetryAfter.delay(value, now: now) == max(0, meant.microseconds - now.microseconds))
    }

    // MARK: - HTTP-date

    @Test(arguments: [
        // IMF-fixdate.
        ("Sun, 06 Nov 1994 08:49:37 GMT", Int64(784_111_777_000_000)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Mon, 14 Apr 2025 00:59:32 GMT", 1_744_592_372_000_000),
        ("Thu, 29 Feb 2024 23:59:59 GMT", 1_709_251_199_000_000),
        ("Thu, 29 Feb 1996 00:00:00 GMT", 825_552_000_000_000),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 253_402_300_799_000_000),
        // A leap second (second 60 is allowed) folds onto the next second.
        ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800_000_000),
        // RFC 850.
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777_000_000),
        ("Saturday, 01-Jan-00 00:00:00 GMT", 946_684_800_000_000),
        ("Monday, 14-Apr-25 00:59:32 GMT", 1_744_592_372_000_000),
        // asctime (a one-digit day is padded with a space).
        ("Sun Nov  6 08:49:37 1994", 784_111_777_000_000),
        ("Thu Jan  1 00:00:00 1970", 0),
        ("Mon Apr 14 00:59:32 2025", 1_744_592_372_000_000),
        ("Thu Feb 29 23:59:59 2024", 1_709_251_199_000_000),
    ])
    func parsesHTTPDates(_ text: String, _ microseconds: Int64) {
        #expect(
            HTTPDate.parse(text, now: Timestamp(rfc3339: "2025-06-01T00:00:00Z")!)
                == Timestamp(microseconds: microseconds))
    }

    @Test(arguments: [
        "",
        "GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37.5 GMT",
        "Sun, 06 Nov 1994 08:49:3 GMT",
        "Sun, 06 Nov 1994 08:49:37:00 GMT",
        "Sun, 06 Nov 19945 08:49:37 GMT",
        "Sun, 06 November 1994 08:49:37 GMT",
        "Sun, 31 Apr 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sunday, 06-Nov 08:49:37 GMT",
        "Sun Nov  6 08:49:37 GMT 1994",
        "Sun Nov  6 08:49:37 19945",
        "Sun Feb 30 08:49:37 1994",
    ])
    func rejectsMalformedHTTPDates(_ text: String) {
        #expect(HTTPDate.parse(text, now: Timestamp(rfc3339: "2025-06-01T00:00:00Z")!) == nil)
    }
}

/// When a failed delivery is tried again (proto-spec/PROTOCOL.md "Delivery"): a schedule of delays
/// after the first attempt, each with ±20% jitter; on 429 and 503 the next delay is the
/// larger of the scheduled one and the receiver's `Retry-After`, capped at 24 hours.
/// After the last delay's attempt fails, the delivery is `failed`.
public struct RetryPolicy: Sendable, Equatable {
    /// Delays in microseconds: `delays[0]` comes after attempt 1, and so on.
    public let delays: [Int64]
    /// The fraction a delay may move either way (0.2 = ±20%).
    public let jitter: Double

    public static let defaultSchedule = "5s,5m,30m,2h,5h,10h,10h"
    public static let maxRetryAfterMicroseconds: Int64 = 24 * 3600 * 1_000_000

    public static let `default` = RetryPolicy(delays: parseSchedule(defaultSchedule)!, jitter: 0.2)

    public init(delays: [Int64], jitter: Double = 0.2) {
        self.delays = delays
        self.jitter = jitter
    }

    /// `5s,5m,30m` (the `--retry-schedule` flag); nil when an item is not a duration
    /// or is zero. An empty string is no retries at all.
    public static func parseSchedule(_ text: String) -> [Int64]? {
        if text.trimmingSpaces.isEmpty { return [] }
        var delays: [Int64] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let micros = Units.durationMicroseconds(String(item)), micros > 0 else { return nil }
            delays.append(micros)
        }
        return delays
    }

    /// Attempts in all: the first and one per delay.
    public var maxAttempts: Int { delays.count + 1 }

    /// How long to wait after failed attempt number `attempt` (1-based), or nil when that
    /// was the last. `unit` is a uniform random number in 0..<1 (the caller's generator,
    /// so tests can fix it); `retryAfter` is what the receiver asked for on 429/503.
    public func delay(afterAttempt attempt: Int, unit: Double, retryAfter: Int64? = nil) -> Int64? {
        guard attempt >= 1, attempt <= delays.count else { return nil }
        let scheduled = Double(delays[attempt - 1])
        let factor = 1 + jitter * (2 * min(max(unit, 0), 1) - 1)
        // Clamped: a schedule item of thousands of years must not overflow Int64.
        var delay = Int64(min((scheduled * factor).rounded(), Double(Int64.max / 2)))
        if let retryAfter {
            delay = max(delay, min(max(retryAfter, 0), Self.maxRetryAfterMicroseconds))
        }
        return delay
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
    /// The delay it asks for from `now`, in microseconds (0 for a date in the past), or
    /// nil when the value is neither form.
    public static func delay(_ value: String, now: Timestamp) -> Int64? {
        let text = value.trimmingSpaces
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // A huge number of seconds is still "wait long": clamp instead of failing.
            guard let seconds = Int64(text) else { return RetryPolicy.maxRetryAfterMicroseconds }
            let (micros, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
            return overflow ? RetryPolicy.maxRetryAfterMicroseconds : micros
        }
        guard let date = HTTPDate.parse(text, now: now) else { return nil }
        return max(0, date.microseconds - now.microseconds)
    }
}

/// HTTP-date parsing: the preferred IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the
/// two obsolete forms recipients must accept (RFC 850 and asctime).
public enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `now` decides the century of an RFC 850 date's two-digit year.
    public static func parse(_ text: String, now: Timestamp) -> Timestamp? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if parts.count == 6, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = Int64(parts[1]), parts[1].count == 2, let month = monthNumber(parts[2]),
            let year = Int64(parts[3]), parts[3].count == 4
        {
            return make(year: year, month: month, day: day, time: parts[4])
        }
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        if parts.count == 4, parts[0].hasSuffix(","), parts[3] == "GMT" {
            let dateParts = parts[1].split(separator: "-").map(String.init)
            if dateParts.count == 3, let day = Int64(dateParts[0]), let month = monthNumber(dateParts[1]),
                let shortYear = Int64(dateParts[2]), dateParts[2].count == 2
            {
                // RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
                // the future is the most recent past year with those digits.
                let currentYear = Timestamp.civil(fromDays: now.seconds / 86_400).0
                var year = currentYear - currentYear % 100 + shortYear
                if year > currentYear + 50 { year -= 100 }
                return make(year: year, month: month, day: day, time: parts[2])
            }
        }
        // asctime: "Sun Nov  6 08:49:37 1994"
        if parts.count == 5, let month = monthNumber(parts[1]), let day = Int64(parts[2]), let year = Int64(parts[4]),
            parts[4].count == 4
        {
            return make(year: year, month: month, day: day, time: parts[3])
        }
        return nil
    }

    private static func monthNumber(_ name: String) -> Int64? {
        months.firstIndex(of: name).map { Int64($0 + 1) }
    }

    private static func make(year: Int64, month: Int64, day: Int64, time: String) -> Timestamp? {
        let clock = time.split(separator: ":").map { Int64($0) }
        guard clock.count == 3, let hour = clock[0], let minute = clock[1], let second = clock[2],
            time.count == 8, hour <= 23, minute <= 59, second <= 60, day >= 1, day <= 31
        else { return nil }
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let text = "\(year)-\(two(month))-\(two(day))T\(two(hour)):\(two(minute)):\(two(second))Z"
        return Timestamp(rfc3339: text)
    }
}

/// Keeps a repeated log line from flooding the log: the first occurrence is logged, then
/// at most one per `interval`, which says how many were left out since the last.
public struct RepeatLimiter: Sendable {
    public let intervalMicroseconds: Int64
    private var lastLogged: Timestamp?
    private var suppressed = 0

    public init(intervalMicroseconds: Int64 = 10_000_000) { self.intervalMicroseconds = intervalMicroseconds }

    /// Whether to log an occurrence at `now`, and how many were left out before it.
    public mutating func occurrence(at now: Timestamp) -> (log: Bool, suppressed: Int) {
        if let last = lastLogged, now.microseconds - last.microseconds < intervalMicroseconds {
            suppressed += 1
            return (false, 0)
        }
        defer {
            lastLogged = now
            suppressed = 0
        }
        return (true, suppressed)
    }

    /// The trouble is over: the next occurrence is logged at once. How many were left
    /// out since the last line.
    public mutating func reset() -> Int {
        defer {
            lastLogged = nil
            suppressed = 0
        }
        return suppressed
    }

    /// Whether anything was logged since the last reset.
    public var isActive: Bool { lastLogged != nil }
}

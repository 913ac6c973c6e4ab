import HookgateCore

/// Times as a person reads them in a table: "just now", "42s ago", "3m ago", "5h ago",
/// "2d ago", or "in 3m" for the future. Each unit is used while it stays under the next
/// one, and counts are whole (rounded down).
public enum RelativeTime {
    public static func describe(_ time: Timestamp, now: Timestamp) -> String {
        let delta = now.microseconds - time.microseconds
        let seconds = abs(delta) / 1_000_000
        guard seconds >= 1 else { return "just now" }
        let amount: String
        switch seconds {
        case ..<60: amount = "\(seconds)s"
        case ..<3600: amount = "\(seconds / 60)m"
        case ..<86_400: amount = "\(seconds / 3600)h"
        default: amount = "\(seconds / 86_400)d"
        }
        return delta > 0 ? "\(amount) ago" : "in \(amount)"
    }
}

/// The receiving side of Standard Webhooks signing: what `hookgate receive` checks on
/// every request. A request verifies when one of its `v1,` signatures is the HMAC of
/// "id.timestamp.body" under one of the keys, and its timestamp is within `tolerance`
/// of now, either way (the Standard Webhooks libraries' five minutes by default), so a
/// captured request cannot be replayed later.
public enum WebhookVerifier {
    public enum Verdict: Equatable, Sendable {
        case verified
        case missingHeaders
        case badTimestamp
        /// Older or newer than the tolerance allows, by this many seconds.
        case timestampOutsideTolerance(seconds: Int64)
        case noMatchingSignature

        public var isVerified: Bool { self == .verified }

        public var description: String {
            switch self {
            case .verified: return "verified"
            case .missingHeaders: return "missing webhook-id, webhook-timestamp or webhook-signature"
            case .badTimestamp: return "webhook-timestamp is not unix seconds"
            case .timestampOutsideTolerance(let seconds): return "timestamp \(seconds) s from now"
            case .noMatchingSignature: return "no signature matches"
            }
        }
    }

    public static let defaultToleranceSeconds: Int64 = 300

    public static func verify(
        messageID: String?, timestamp: String?, signatures: String?, body: [UInt8], keys: [SigningKey],
        nowSeconds: Int64, toleranceSeconds: Int64 = defaultToleranceSeconds
    ) -> Verdict {
        guard let messageID, let timestamp, let signatures else { return .missingHeaders }
        guard let seconds = Int64(timestamp), timestamp.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            return .badTimestamp
        }
        let skew = nowSeconds - seconds
        guard abs(skew) <= toleranceSeconds else { return .timestampOutsideTolerance(seconds: skew) }
        var expected: [UInt8] = []
        WebhookSigner.appendSignatures(
            messageID: messageID, timestamp: seconds, body: body, keys: keys, to: &expected)
        // Every given signature against every expected one, each comparison reading
        // every byte: how long it takes says nothing of how much of a guess was right.
        var matched = false
        for wanted in expected.split(separator: UInt8(ascii: " ")) {
            for given in signatures.utf8.split(separator: UInt8(ascii: " ")) where given.count == wanted.count {
                var difference: UInt8 = 0
                for (a, b) in zip(given, wanted) { difference |= a ^ b }
                matched = matched || difference == 0
            }
        }
        return matched ? .verified : .noMatchingSignature
    }
}

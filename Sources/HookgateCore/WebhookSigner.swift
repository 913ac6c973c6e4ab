import Crypto

/// Standard Webhooks signing (proto-spec/PROTOCOL.md "Delivery"): `webhook-signature` is
/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per live secret, space-separated.
/// The key is the base64-decoded part of a `whsec_` secret.
public enum WebhookSigner {
    public static let secretPrefix = "whsec_"

    /// The HMAC key of a `whsec_` secret, or nil when it is not one.
    public static func key(ofSecret secret: String) -> SymmetricKey? {
        guard secret.hasPrefix(secretPrefix), let bytes = Base64.decode(String(secret.dropFirst(secretPrefix.count))),
            !bytes.isEmpty
        else { return nil }
        return SymmetricKey(data: bytes)
    }

    /// One `v1,<signature>` per secret, space-separated; secrets that are not `whsec_`
    /// secrets are skipped.
    public static func signatureHeader(
        messageID: String, timestamp: Int64, body: some Collection<UInt8>, secrets: [String]
    ) -> String {
        var content = Array("\(messageID).\(timestamp).".utf8)
        content.append(contentsOf: body)
        return secrets.compactMap { secret -> String? in
            guard let key = key(ofSecret: secret) else { return nil }
            let mac = HMAC<SHA256>.authenticationCode(for: content, using: key)
            return "v1," + Base64.encode(Array(mac))
        }.joined(separator: " ")
    }
}

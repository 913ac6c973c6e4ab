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
        messageID: String, timestamp: Int64, body: [UInt8], secrets: [String]
    ) -> String {
        signatureHeader(
            messageID: messageID, timestamp: timestamp, body: body, keys: secrets.compactMap(SigningKey.init))
    }

    /// One `v1,<signature>` per key, space-separated.
    public static func signatureHeader(messageID: String, timestamp: Int64, body: [UInt8], keys: [SigningKey])
        -> String
    {
        let prefix = "\(messageID).\(timestamp)."
        var header = ""
        for key in keys {
            var mac = key.keyed
            var prefixBytes = prefix
            prefixBytes.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
            body.withUnsafeBytes { mac.update(data: $0) }
            if !header.isEmpty { header += " " }
            header += "v1,"
            header += Base64.encode(Array(mac.finalize()))
        }
        return header
    }
}

/// A `whsec_` secret ready to sign with: decoded once, its key already absorbed into the
/// HMAC state, which each signature copies.
public struct SigningKey: Sendable {
    fileprivate let keyed: HMAC<SHA256>

    /// Nil when `secret` is not a `whsec_` secret.
    public init?(secret: String) {
        guard let key = WebhookSigner.key(ofSecret: secret) else { return nil }
        keyed = HMAC(key: key)
    }
}

import Crypto

/// Standard Webhooks signing (proto-spec/PROTOCOL.md "Delivery"): `webhook-signature` is
/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per live secret, space-separated.
/// The key is the base64-decoded part of a `whsec_` secret.
public enum WebhookSigner {
    public static let secretPrefix = "whsec_"

    /// The HMAC key of a `whsec_` secret, or nil when it is not one.
    public static func key(ofSecret secret: String) -> SymmetricKey? {
        keyBytes(ofSecret: secret).map { SymmetricKey(data: $0) }
    }

    static func keyBytes(ofSecret secret: String) -> [UInt8]? {
        guard secret.hasPrefix(secretPrefix), let bytes = Base64.decode(String(secret.dropFirst(secretPrefix.count))),
            !bytes.isEmpty
        else { return nil }
        return bytes
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
        var header: [UInt8] = []
        appendSignatures(messageID: messageID, timestamp: timestamp, body: body, keys: keys, to: &header)
        return String(decoding: header, as: UTF8.self)
    }

    /// The header's value appended to `header` as bytes: the request builder writes the
    /// whole header line in one buffer.
    public static func appendSignatures(
        messageID: String, timestamp: Int64, body: [UInt8], keys: [SigningKey], to header: inout [UInt8]
    ) {
        guard !keys.isEmpty else { return }
        // "id.timestamp." is signed before the body with every key.
        var prefix: [UInt8] = []
        prefix.reserveCapacity(messageID.utf8.count + 22)
        prefix.append(contentsOf: messageID.utf8)
        prefix.append(UInt8(ascii: "."))
        prefix.append(contentsOf: String(timestamp).utf8)
        prefix.append(UInt8(ascii: "."))
        header.reserveCapacity(header.count + keys.count * 48)
        for (index, key) in keys.enumerated() {
            if index > 0 { header.append(UInt8(ascii: " ")) }
            header.append(contentsOf: "v1,".utf8)
            let mac = prefix.withUnsafeBytes { prefixBytes in
                body.withUnsafeBytes { bodyBytes in key.authenticationCode(prefixBytes, bodyBytes) }
            }
            mac.withUnsafeBytes { Base64.encode($0, appendingTo: &header) }
        }
    }
}

/// A `whsec_` secret ready to sign with: HMAC-SHA-256 (RFC 2104) with the key's inner and
/// outer pads absorbed once into two SHA-256 states, which each signature copies. This
/// feeds the hash through its non-generic buffer entry point: swift-crypto's `HMAC`
/// takes its input through the generic `DataProtocol` path and copies its state per call,
/// which cost about as much again as the hashing of a typical body.
public struct SigningKey: Sendable {
    private let inner: SHA256
    private let outer: SHA256

    /// Nil when `secret` is not a `whsec_` secret.
    public init?(secret: String) {
        guard let key = WebhookSigner.keyBytes(ofSecret: secret) else { return nil }
        self.init(keyBytes: key)
    }

    /// Any key length: a key longer than SHA-256's block is hashed first, as RFC 2104 says.
    public init(keyBytes: [UInt8]) {
        var block = keyBytes.count > SHA256.blockByteCount ? Array(SHA256.hash(data: keyBytes)) : keyBytes
        block.append(contentsOf: repeatElement(0, count: SHA256.blockByteCount - block.count))
        var inner = SHA256()
        block.map { $0 ^ 0x36 }.withUnsafeBytes { inner.update(bufferPointer: $0) }
        var outer = SHA256()
        block.map { $0 ^ 0x5C }.withUnsafeBytes { outer.update(bufferPointer: $0) }
        self.inner = inner
        self.outer = outer
    }

    /// HMAC-SHA-256 of the parts, in order, as one message.
    public func authenticationCode(_ parts: UnsafeRawBufferPointer...) -> SHA256Digest {
        var inner = self.inner
        for part in parts { inner.update(bufferPointer: part) }
        var outer = self.outer
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }
}

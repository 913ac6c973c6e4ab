import Crypto
import HookgateCore
import Testing

@Suite("WebhookSigner")
struct WebhookSignerTests {
    /// The Standard Webhooks specification's own example, also produced by its Python
    /// library (`standardwebhooks`).
    @Test func matchesTheStandardWebhooksExample() {
        let header = WebhookSigner.signatureHeader(
            messageID: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8), secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        #expect(header == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func twoLiveSecretsGiveTwoSpaceSeparatedSignatures() {
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let current = Identifiers.webhookSecret()
        let header = WebhookSigner.signatureHeader(
            messageID: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body,
            secrets: [current, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        let parts = header.split(separator: " ")
        #expect(parts.count == 2)
        #expect(parts[1] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(parts[0].hasPrefix("v1,") && parts[0] != parts[1])
    }

    @Test(arguments: ["", "whsec_", "secret", "whsec_!!!notbase64"])
    func secretsThatAreNotWhsecSignNothing(secret: String) {
        #expect(WebhookSigner.key(ofSecret: secret) == nil)
        #expect(WebhookSigner.signatureHeader(messageID: "m", timestamp: 1, body: [], secrets: [secret]) == "")
    }

    @Test func changingAnyPartChangesTheSignature() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let base = WebhookSigner.signatureHeader(
            messageID: "m1", timestamp: 10, body: Array("{}".utf8), secrets: [secret])
        #expect(
            WebhookSigner.signatureHeader(messageID: "m2", timestamp: 10, body: Array("{}".utf8), secrets: [secret])
                != base)
        #expect(
            WebhookSigner.signatureHeader(messageID: "m1", timestamp: 11, body: Array("{}".utf8), secrets: [secret])
                != base)
        #expect(
            WebhookSigner.signatureHeader(messageID: "m1", timestamp: 10, body: Array("[]".utf8), secrets: [secret])
                != base)
    }
}

/// The signer's own HMAC against swift-crypto's, over keys around SHA-256's 64-byte block
/// (shorter keys are padded, longer ones hashed first) and messages split into parts.
@Suite("SigningKey")
struct SigningKeyTests {
    static let keyLengths = [1, 16, 24, 32, 55, 63, 64, 65, 100, 128, 129, 200]
    static let messageLengths = [0, 1, 55, 56, 63, 64, 65, 119, 128, 1000, 4097]

    @Test(arguments: keyLengths)
    func matchesCryptosHMACForEveryMessageLength(keyLength: Int) {
        let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let signingKey = SigningKey(keyBytes: key)
        for length in Self.messageLengths {
            let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ keyLength) }
            let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
            let split = length / 3
            let ours = message.withUnsafeBytes { bytes in
                signingKey.authenticationCode(
                    UnsafeRawBufferPointer(rebasing: bytes[..<split]), UnsafeRawBufferPointer(rebasing: bytes[split...])
                )
            }
            #expect(Array(ours) == expected, "key \(keyLength) bytes, message \(length) bytes")
        }
    }

    @Test func aKeySignsTheSameTwice() {
        let signingKey = SigningKey(keyBytes: Array(repeating: 9, count: 24))
        let message = Array("msg_1.2.{}".utf8)
        let first = message.withUnsafeBytes { signingKey.authenticationCode($0) }
        let second = message.withUnsafeBytes { signingKey.authenticationCode($0) }
        #expect(first == second)
    }
}

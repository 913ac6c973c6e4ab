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

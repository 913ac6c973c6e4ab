import HookgateCore
import Testing

@Suite("WebhookVerifier")
struct WebhookVerifierTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let rotated = "whsec_" + Base64.encode(Array(repeating: UInt8(7), count: 24))
    static let body = Array(#"{"test": 2432232314}"#.utf8)
    static let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let now: Int64 = 1_614_265_330

    static func keys(_ secrets: [String]) -> [SigningKey] { secrets.compactMap(SigningKey.init(secret:)) }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let timestamp: String?
        let signatures: String?
        let body: [UInt8]
        let secrets: [String]
        let verdict: WebhookVerifier.Verdict
        var testDescription: String { name }
    }

    static let signed = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    static let cases: [Case] = [
        Case(
            name: "the specification's example", timestamp: "1614265330", signatures: signed, body: body,
            secrets: [secret], verdict: .verified),
        Case(
            name: "one of two signatures, during a rotation", timestamp: "1614265330",
            signatures: "v1,AAAA " + signed, body: body, secrets: [rotated, secret], verdict: .verified),
        Case(
            name: "the receiver knows the new secret only", timestamp: "1614265330", signatures: signed, body: body,
            secrets: [rotated], verdict: .noMatchingSignature),
        Case(
            name: "a tampered body", timestamp: "1614265330", signatures: signed,
            body: Array(#"{"test": 2432232315}"#.utf8), secrets: [secret], verdict: .noMatchingSignature),
        Case(
            name: "a timestamp six minutes old", timestamp: "1614264970", signatures: signed, body: body,
            secrets: [secret], verdict: .timestampOutsideTolerance(seconds: 360)),
        Case(
            name: "a timestamp six minutes ahead", timestamp: "1614265690", signatures: signed, body: body,
            secrets: [secret], verdict: .timestampOutsideTolerance(seconds: -360)),
        Case(
            name: "a timestamp that is not a number", timestamp: "yesterday", signatures: signed, body: body,
            secrets: [secret], verdict: .badTimestamp),
        Case(
            name: "a negative timestamp", timestamp: "-5", signatures: signed, body: body, secrets: [secret],
            verdict: .badTimestamp),
        Case(
            name: "no signature header", timestamp: "1614265330", signatures: nil, body: body, secrets: [secret],
            verdict: .missingHeaders),
        Case(
            name: "a signature of another scheme", timestamp: "1614265330",
            signatures: "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body: body, secrets: [secret],
            verdict: .noMatchingSignature),
    ]

    @Test(arguments: cases)
    func verdicts(_ testCase: Case) {
        let verdict = WebhookVerifier.verify(
            messageID: Self.id, timestamp: testCase.timestamp, signatures: testCase.signatures, body: testCase.body,
            keys: Self.keys(testCase.secrets), nowSeconds: Self.now)
        #expect(verdict == testCase.verdict)
    }

    @Test func aMissingIDIsMissingHeaders() {
        #expect(
            WebhookVerifier.verify(
                messageID: nil, timestamp: "1", signatures: Self.signed, body: Self.body,
                keys: Self.keys([Self.secret]),
                nowSeconds: 1) == .missingHeaders)
    }

    @Test func whatTheSignerSignsVerifies() {
        let header = WebhookSigner.signatureHeader(
            messageID: "msg_1", timestamp: 100, body: Self.body, secrets: [Self.secret, Self.rotated])
        for secrets in [[Self.secret], [Self.rotated], [Self.rotated, Self.secret]] {
            #expect(
                WebhookVerifier.verify(
                    messageID: "msg_1", timestamp: "100", signatures: header, body: Self.body, keys: Self.keys(secrets),
                    nowSeconds: 400) == .verified)
        }
        #expect(
            WebhookVerifier.verify(
                messageID: "msg_2", timestamp: "100", signatures: header, body: Self.body,
                keys: Self.keys([Self.secret]), nowSeconds: 100) == .noMatchingSignature)
    }
}

@Suite("JSONPrettyWriter")
struct JSONPrettyWriterTests {
    @Test(arguments: [
        ("1", "1"), ("[]", "[]"), ("{}", "{}"), ("[1,2]", "[\n  1,\n  2\n]"),
        (#"{"b":1,"a":[true,null]}"#, "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"),
        (#"{"s":"line\nbreak","e":{}}"#, "{\n  \"s\": \"line\\nbreak\",\n  \"e\": {}\n}"),
    ])
    func layouts(input: String, expected: String) throws {
        let value = try JSONParser.parse(input)
        #expect(JSONPrettyWriter.string(value) == expected)
        // Pretty output parses back to the same value.
        #expect(try JSONParser.parse(JSONPrettyWriter.string(value)) == value)
    }
}

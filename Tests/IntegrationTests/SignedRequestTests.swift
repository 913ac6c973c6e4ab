import Foundation
import HookgateCore
import HookgateDelivery
import HookgateStore
import Testing

private func dueDelivery(name: String = "Order \"status\" hook", secrets: [String]) throws -> DueDelivery {
    let event = try EventValidator.event(
        [
            "event_type": "SMS_STATUS",
            "status": [
                "id": "m-1", "type": "SMS", "sender": "61400000009", "recipient": "447", "status": "DELIVERED",
                "extra": ["nested": [1, 2, 3]],
            ],
        ], receivedAt: Timestamp(rfc3339: "2025-04-23T00:05:18.567890Z")!)
    let stored = NewEvent(
        id: Identifiers.uuid(), event: event, receivedAt: Timestamp(microseconds: 0), idempotencyKey: nil)
    return DueDelivery(
        deliverySeq: 1, attempts: 0, nextAttemptAt: Timestamp(microseconds: 0), eventID: stored.id,
        eventType: .smsStatus, payload: stored.payload, webhookID: "fd0e6485-5b3c-4c1e-9a51-1b6f0e1c2d3a",
        webhookName: name, url: "https://example.com/hook", rateLimit: 0, secrets: secrets)
}

@Suite struct SignedRequestTests {
    @Test func theBodyIsTheEventWithTheWebhookAddedAfterTimestamp() throws {
        let delivery = try dueDelivery(secrets: [Identifiers.webhookSecret()])
        let body = DeliveryRequestBuilder.body(
            payload: delivery.payload, webhookID: delivery.webhookID, webhookName: delivery.webhookName)
        let object = try #require(try JSONParser.parse(body).objectValue)
        #expect(object.keys == ["event_type", "timestamp", "webhook_id", "webhook_name", "status"])
        #expect(object["timestamp"] == "2025-04-23T00:05:18.567890Z")
        #expect(object["webhook_id"] == "fd0e6485-5b3c-4c1e-9a51-1b6f0e1c2d3a")
        #expect(object["webhook_name"] == #"Order "status" hook"#)
        #expect(JSON.object(object)[path: "status", "extra", "nested"] == [1, 2, 3])
    }

    @Test func aPayloadOfAnotherShapeIsRebuiltTheSameWay() throws {
        let payload = Array(
            #"{ "event_type": "OPT_OUT", "timestamp": "2025-04-23T10:05:18+10:00", "opt_out": {"source": "x"} }"#.utf8)
        let body = DeliveryRequestBuilder.body(payload: payload, webhookID: "w", webhookName: "n")
        let object = try #require(try JSONParser.parse(body).objectValue)
        #expect(object.keys == ["event_type", "timestamp", "webhook_id", "webhook_name", "opt_out"])
        #expect(object["webhook_name"] == "n")
    }

    @Test func headersAreTheContractsAndTheSignatureVerifies() throws {
        let secret = Identifiers.webhookSecret()
        let delivery = try dueDelivery(secrets: [secret])
        let now = Timestamp(microseconds: 1_700_000_000_123_456)
        let request = DeliveryRequestBuilder.request(for: delivery, tag: 3, at: now)
        let messageID = "msg_\(delivery.eventID)_\(delivery.webhookID)"
        #expect(
            request.headers == [
                "Content-Type: application/json", "User-Agent: hookgate/\(HookgateVersion.current)",
                "webhook-id: \(messageID)", "webhook-timestamp: 1700000000",
                "webhook-signature: "
                    + WebhookSigner.signatureHeader(
                        messageID: messageID, timestamp: 1_700_000_000, body: request.body, secrets: [secret]),
            ])
        // The same id on a later attempt.
        let retry = DeliveryRequestBuilder.request(for: delivery, tag: 4, at: now.adding(microseconds: 300_000_000))
        #expect(retry.headers[2] == request.headers[2])
        #expect(retry.headers[3] == "webhook-timestamp: 1700000300")
    }

    /// Sent for real, then checked by the `standardwebhooks` Python package: an
    /// implementation independent of hookgate's. During a rotation both secrets verify.
    @Test func standardWebhooksVerifiesWhatIsSentDuringARotation() throws {
        let old = Identifiers.webhookSecret()
        let new = Identifiers.webhookSecret()
        let sink = try Sink()
        let transport = try CurlTransportTests.transport()
        defer { transport.shutdown() }
        var delivery = try dueDelivery(secrets: [new, old])
        delivery.url = sink.url("/status/204")
        let now = SystemWallClock().now()
        let request = DeliveryRequestBuilder.request(for: delivery, tag: 1, at: now)
        let result = ResultBox()
        transport.send(request) { result.set($0) }
        #expect(result.wait(timeout: 30)?.httpStatus == 204)

        let directory = try TemporaryDirectory()
        func verify(_ secrets: [String]) throws -> (Int32, String) {
            let output = directory.file("verify-\(secrets.count)-\(UInt32.random(in: 0...UInt32.max)).txt")
            let check = try ChildProcess(
                executable: "/usr/bin/env",
                arguments: ["python3", Repository.root + "/contrib/sink/verify_signatures.py", sink.logPath] + secrets,
                environment: ChildProcess.cleanEnvironment, outputPath: output)
            let status = try check.waitForExit(timeout: 60)
            return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        let both = try verify([old, new])
        #expect(both.0 == 0, "\(both.1)")
        #expect(both.1.contains("verify_signatures: 1 passed, 0 failed"), "\(both.1)")
        let wrong = try verify([Identifiers.webhookSecret()])
        #expect(wrong.0 == 1, "a secret that did not sign fails: \(wrong.1)")
    }
}

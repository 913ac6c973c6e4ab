import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A receiver that keeps failing (the sink answering 500): the webhook's endpoint health,
/// `/readyz` while its backlog ages, the webhook disabled as `failing`, enabled again
/// against a receiver answering 200, and `recover` re-sending what failed.
@Suite struct EndpointHealthTests {
    static func webhook(_ client: ControlClient, _ id: String) throws -> JSON {
        let answer = try client.request(["cmd": "get_webhook", "webhook_id": .string(id)])
        guard let webhook = answer["webhook"] else { throw TestFailure("get_webhook: \(answer)") }
        return webhook
    }

    static func waitFor(_ what: String, timeout: Double = 30, _ check: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try check() { return }
            usleep(100_000)
        }
        throw TestFailure("\(what) did not happen within \(timeout) s")
    }

    @Test func aFailingEndpointIsDisabledEnabledAndRecovered() throws {
        let sink = try Sink()
        let port = try HTTPGet.freePort()
        let daemon = try DeliveryTests.daemon([
            "--retry-schedule", "1s,1s", "--disable-after", "2s", "--ready-max-backlog-age", "1s",
            "--metrics-listen", "127.0.0.1:\(port)",
        ])
        try HTTPGet.waitUntilListening(port: port)
        let client = try daemon.client()
        let started = Timestamp(microseconds: Int64(Date().timeIntervalSince1970 * 1_000_000) - 1_000_000)
        let (id, _) = try DeliveryTests.webhook(client, url: sink.url("/status/500"), rateLimit: 1, name: "Flaky")
        let fresh = try Self.webhook(client, id)
        #expect(fresh["last_success_at"] == .null)
        #expect(fresh["last_failure_at"] == .null)
        #expect(fresh["failing_since"] == .null)
        var eventIDs: [String] = []
        for _ in 0..<4 {
            eventIDs.append(try #require(try client.request(emit(statusEvent()))["event_id"]?.stringValue))
        }

        // Four deliveries at one a second, each retried twice: the due ones wait.
        var readyz = HTTPResponse(status: 0, body: "")
        try Self.waitFor("/readyz 503") {
            readyz = try HTTPGet.request(port: port, path: "/readyz")
            return readyz.status == 503
        }
        #expect(readyz.body.contains("backlog: the oldest due delivery has waited"), "\(readyz.body)")

        // A delivery failing for good more than 2 s after the first failure disables the
        // webhook (four deliveries at one a second: the second one ends about 3 s in).
        var disabled: JSON = .null
        try Self.waitFor("the webhook disabled") {
            disabled = try Self.webhook(client, id)
            return disabled["state"] == "disabled"
        }
        let failingSince = try #require(disabled["failing_since"]?.stringValue)
        #expect(disabled["disabled_reason"] == .string("failing: no successful delivery since \(failingSince)"))
        #expect(disabled["last_failure_at"]?.stringValue != nil)
        #expect(disabled["last_success_at"] == .null)
        let metrics = Exposition(try HTTPGet.request(port: port, path: "/metrics").body)
        #expect(metrics[#"hookgate_webhooks_disabled_total{reason="failing"}"#] == 1)
        // Disabled: a recovery would go nowhere.
        let refused = try client.request([
            "cmd": "recover", "webhook_id": .string(id), "since": .string(started.rfc3339),
        ])
        #expect(refused[path: "error", "code"] == "conflict")
        #expect(refused[path: "error", "message"]?.stringValue?.contains("enable the webhook first") == true)

        // The receiver is fixed and the webhook enabled: what waited is delivered, and the
        // endpoint is healthy again.
        let updated = try client.request([
            "cmd": "update_webhook", "webhook_id": .string(id), "name": "Flaky",
            "url": .string(sink.url("/status/200")),
            "filter": ["event_type": ["SMS_STATUS"]], "rate_limit": 100,
        ])
        #expect(updated["ok"] == true, "\(updated)")
        let enabled = try client.request(["cmd": "enable_webhook", "webhook_id": .string(id)])
        #expect(enabled[path: "webhook", "failing_since"] == .null)
        #expect(enabled[path: "webhook", "disabled_reason"] == .null)
        let stats = try DeliveryTests.waitForStats(client) {
            $0[path: "deliveries", "pending"] == 0 && $0[path: "deliveries", "in_flight"] == 0
        }
        let failed = try #require(stats[path: "deliveries", "failed"]?.intValue)
        let delivered = try #require(stats[path: "deliveries", "delivered"]?.intValue)
        #expect(failed >= 1 && failed + delivered == 4, "\(stats)")
        let healthy = try Self.webhook(client, id)
        #expect(healthy["state"] == "active")
        #expect(healthy["failing_since"] == .null)
        #expect(healthy["last_success_at"]?.stringValue != nil)
        try Self.waitFor("/readyz 200") { try HTTPGet.request(port: port, path: "/readyz").status == 200 }

        // recover: each delivery that failed goes out again, with its original webhook-id.
        let failedIDs = Set(
            try client.request(["cmd": "list_requests", "webhook_id": .string(id), "outcome": "failed"])["requests"]?
                .arrayValue?.compactMap { $0["event_id"]?.stringValue } ?? [])
        #expect(failedIDs.count == failed)
        let recovering = try client.request([
            "cmd": "recover", "webhook_id": .string(id), "since": .string(started.rfc3339),
        ])
        #expect(recovering == ["ok": true, "recovering": .integer(Int64(failed))])
        let okPath = "/status/200"
        try Self.waitFor("the recovered deliveries") {
            sink.requests.filter { $0["path"]?.stringValue == okPath }.count == delivered + failed
        }
        let okRequests = sink.requests.filter { $0["path"]?.stringValue == okPath }
        let recoveredIDs = okRequests.suffix(failed).compactMap { $0[path: "headers", "webhook-id"]?.stringValue }
        #expect(Set(recoveredIDs) == Set(failedIDs.map { "msg_\($0)_\(id)" }))
        _ = try DeliveryTests.waitForStats(client) {
            $0[path: "deliveries", "delivered"] == .integer(Int64(delivered + failed))
        }

        // What recover refuses.
        let tooOld = try client.request([
            "cmd": "recover", "webhook_id": .string(id), "since": "2000-01-01T00:00:00Z",
        ])
        #expect(tooOld[path: "error", "code"] == "validation")
        #expect(tooOld[path: "error", "field"] == "since")
        let backwards = try client.request([
            "cmd": "recover", "webhook_id": .string(id), "since": .string(started.rfc3339),
            "until": .string(started.adding(microseconds: -1).rfc3339),
        ])
        #expect(backwards[path: "error", "field"] == "until")
        let unknown = try client.request([
            "cmd": "recover", "webhook_id": "3791388c-61f5-413b-af3b-0783a985197a", "since": .string(started.rfc3339),
        ])
        #expect(unknown[path: "error", "code"] == "not_found")
        let nothing = try client.request([
            "cmd": "recover", "webhook_id": .string(id), "since": .string(started.rfc3339),
            "until": .string(started.adding(microseconds: 1).rfc3339),
        ])
        #expect(nothing == ["ok": true, "recovering": 0])
        try daemon.stop()
    }
}

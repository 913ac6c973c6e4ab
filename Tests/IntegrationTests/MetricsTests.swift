import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `--metrics-listen`: the exposition, `/healthz`, `/readyz` and the `health` command,
/// against the real daemon delivering to a real HTTPS receiver.
@Suite struct MetricsTests {
    /// Every metric the contract names.
    static let contractNames: Set<String> = [
        "hookgate_events_accepted_total", "hookgate_requests_total", "hookgate_deliveries_created_total",
        "hookgate_delivery_attempts_total", "hookgate_delivery_attempt_duration_seconds_count",
        "hookgate_emit_duration_seconds_count", "hookgate_store_commit_duration_seconds_count", "hookgate_deliveries",
        "hookgate_oldest_pending_delivery_age_seconds", "hookgate_webhooks", "hookgate_webhooks_disabled_total",
        "hookgate_connections", "hookgate_tail_subscribers", "hookgate_disk_free_bytes", "hookgate_build_info",
    ]

    /// Runs `promtool check metrics` on `text`; its output when it fails.
    static func promtoolProblems(_ text: String) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : "promtool exited \(process.terminationStatus): \(printed)"
    }

    @Test func theExpositionCountsWhatHappened() throws {
        let sink = try Sink()
        let port = try HTTPGet.freePort()
        let daemon = try DeliveryTests.daemon(["--metrics-listen", "127.0.0.1:\(port)"])
        try HTTPGet.waitUntilListening(port: port)
        let client = try daemon.client()
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 1000)
        for _ in 0..<5 { #expect(try client.request(emit(statusEvent()))["ok"] == true) }
        #expect(try client.request(["cmd": "no_such_command"])["ok"] == false)
        #expect(try client.request(["cmd": "get_webhook", "webhook_id": 7])["ok"] == false)
        _ = try DeliveryTests.waitForStats(client) { $0[path: "deliveries", "delivered"] == 5 }

        let response = try HTTPGet.request(port: port, path: "/metrics")
        #expect(response.status == 200)
        let exposition = Exposition(response.body)
        #expect(
            Self.contractNames.subtracting(exposition.names).isEmpty,
            "missing: \(Self.contractNames.subtracting(exposition.names))")
        #expect(exposition[#"hookgate_events_accepted_total{event_type="SMS_STATUS"}"#] == 5)
        #expect(exposition["hookgate_deliveries_created_total"] == 5)
        #expect(exposition[#"hookgate_delivery_attempts_total{outcome="delivered",error_class="none"}"#] == 5)
        #expect(exposition["hookgate_delivery_attempt_duration_seconds_count"] == 5)
        #expect(exposition[#"hookgate_requests_total{command="emit_event",outcome="ok"}"#] == 5)
        #expect(exposition[#"hookgate_requests_total{command="create_webhook",outcome="ok"}"#] == 1)
        #expect(exposition[#"hookgate_requests_total{command="unknown",outcome="unknown_command"}"#] == 1)
        #expect(exposition[#"hookgate_requests_total{command="get_webhook",outcome="validation"}"#] == 1)
        #expect(exposition["hookgate_emit_duration_seconds_count"] == 5)
        #expect(exposition[#"hookgate_webhooks{state="active"}"#] == 1)
        #expect(exposition[#"hookgate_webhooks{state="disabled"}"#] == 0)
        #expect(exposition[#"hookgate_deliveries{state="pending"}"#] == 0)
        #expect(exposition[#"hookgate_deliveries{state="in_flight"}"#] == 0)
        #expect(exposition["hookgate_oldest_pending_delivery_age_seconds"] == 0)
        #expect(exposition["hookgate_connections"] == 1)
        #expect(exposition[#"hookgate_build_info{version="\#(HookgateVersion.current)"}"#] == 1)
        #expect((exposition["hookgate_disk_free_bytes"] ?? 0) > 0)
        #expect(try Self.promtoolProblems(response.body) == nil)

        #expect(
            try client.request(["cmd": "disable_webhook", "webhook_id": .string(try Self.onlyWebhook(client))])["ok"]
                == true)
        let after = Exposition(try HTTPGet.request(port: port, path: "/metrics").body)
        #expect(after[#"hookgate_webhooks_disabled_total{reason="manual"}"#] == 1)
        #expect(after[#"hookgate_webhooks{state="disabled"}"#] == 1)
        try daemon.stop()
    }

    static func onlyWebhook(_ client: ControlClient) throws -> String {
        let listed = try client.request(["cmd": "list_webhooks"])
        guard case .array(let webhooks)? = listed["webhooks"], let id = webhooks.first?["id"]?.stringValue else {
            throw TestFailure("no webhook: \(listed)")
        }
        return id
    }

    @Test func theListenerAnswersItsPathsAndNothingElse() throws {
        let directory = try TemporaryDirectory()
        let metricsSocket = directory.file("metrics.sock")
        let daemon = try Daemon(arguments: ["--metrics-listen", "unix:\(metricsSocket)"], directory: directory)
        try HTTPGet.waitUntilListening(unixPath: metricsSocket)
        let healthz = try HTTPGet.request(unixPath: metricsSocket, path: "/healthz")
        #expect(healthz.status == 200)
        let readyz = try HTTPGet.request(unixPath: metricsSocket, path: "/readyz")
        #expect(readyz.status == 200)
        #expect(readyz.body == "ok\n")
        #expect(try HTTPGet.request(unixPath: metricsSocket, path: "/metrics").status == 200)
        #expect(try HTTPGet.request(unixPath: metricsSocket, path: "/metrics?name=x").status == 200)
        #expect(try HTTPGet.request(unixPath: metricsSocket, path: "/nothing").status == 404)
        #expect(try HTTPGet.request("POST", unixPath: metricsSocket, path: "/metrics").status == 405)
        #expect(try HTTPGet.request("DELETE", unixPath: metricsSocket, path: "/readyz").status == 405)
        #expect(try daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: metricsSocket), "the listener's socket is removed on exit")
    }

    @Test func aBadListenAddressIsRefusedAtStart() throws {
        for address in ["9464", "localhost", "::1:9464", "127.0.0.1:99999", "unix:", "[::1]"] {
            let daemon = try Daemon(arguments: ["--metrics-listen", address], waitUntilReady: false)
            #expect(try daemon.waitForExit(timeout: 20) != 0, "\(address)")
            #expect(daemon.log.contains("--metrics-listen"), "\(address): \(daemon.log)")
        }
    }

    /// Deliveries waiting behind a receiver that hangs (one attempt in flight at a time)
    /// age past `--ready-max-backlog-age`: `/readyz` answers 503 saying why, and `health`
    /// says `degraded` with the same check failing.
    @Test func readinessDegradesWhileTheBacklogAges() throws {
        let sink = try Sink()
        let port = try HTTPGet.freePort()
        let daemon = try DeliveryTests.daemon([
            "--metrics-listen", "127.0.0.1:\(port)", "--ready-max-backlog-age", "1s", "--max-in-flight-per-webhook",
            "1",
        ])
        try HTTPGet.waitUntilListening(port: port)
        let client = try daemon.client()
        let healthy = try client.request(["cmd": "health"])
        #expect(healthy["status"] == "ok")
        guard case .array(let checks)? = healthy["checks"] else { throw TestFailure("no checks: \(healthy)") }
        #expect(Set(checks.compactMap { $0["name"]?.stringValue }) == ["store", "delivery", "disk", "backlog"])
        #expect(checks.allSatisfy { $0["ok"] == true && $0["detail"]?.stringValue?.isEmpty == false })

        _ = try DeliveryTests.webhook(client, url: sink.url("/hang/8"), rateLimit: 100)
        for _ in 0..<3 { _ = try client.request(emit(statusEvent())) }
        var readyz = HTTPResponse(status: 0, body: "")
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            readyz = try HTTPGet.request(port: port, path: "/readyz")
            if readyz.status == 503 { break }
            usleep(200_000)
        }
        #expect(readyz.status == 503)
        #expect(readyz.body.hasPrefix("backlog: the oldest due delivery has waited"), "\(readyz.body)")
        let degraded = try client.request(["cmd": "health"])
        #expect(degraded["status"] == "degraded")
        guard case .array(let failing)? = degraded["checks"] else { throw TestFailure("no checks: \(degraded)") }
        #expect(failing.first { $0["name"] == "backlog" }?["ok"] == false)
        let metrics = Exposition(try HTTPGet.request(port: port, path: "/metrics").body)
        #expect((metrics["hookgate_oldest_pending_delivery_age_seconds"] ?? 0) > 1)
        #expect(metrics[#"hookgate_deliveries{state="in_flight"}"#] == 1)
        #expect(metrics[#"hookgate_deliveries{state="pending"}"#] == 2)
        try daemon.kill9()
    }

    @Test func healthTakesNoFields() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        let answer = try client.request(["cmd": "health", "verbose": true])
        #expect(answer[path: "error", "code"] == "validation")
        #expect(answer[path: "error", "field"] == "verbose")
        try daemon.stop()
    }
}

import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real Prometheus (Debian's package) scraping the daemon every second: what its query
/// API answers is what hookgate counted.
@Suite struct PrometheusScrapeTests {
    /// Prometheus on loopback with one job scraping `target` every second.
    final class PrometheusServer {
        let port: Int
        private let child: ChildProcess
        private let directory: TemporaryDirectory

        init(target: String) throws {
            directory = try TemporaryDirectory()
            port = try HTTPGet.freePort()
            let config = directory.file("prometheus.yml")
            try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: hookgate
                scrape_interval: 1s
                static_configs:
                  - targets: ['\(target)']
            """.write(toFile: config, atomically: true, encoding: .utf8)
            child = try ChildProcess(
                executable: "/usr/bin/prometheus",
                arguments: [
                    "--config.file=\(config)", "--storage.tsdb.path=\(directory.file("data"))",
                    "--web.listen-address=127.0.0.1:\(port)",
                ], environment: ChildProcess.cleanEnvironment, outputPath: directory.file("prometheus.log"))
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if (try? HTTPGet.request(port: port, path: "/-/ready"))?.status == 200 { return }
                usleep(100_000)
            }
            throw TestFailure("prometheus did not get ready")
        }

        /// The value of an instant query that yields one sample, or nil.
        func query(_ expression: String) throws -> Double? {
            let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
            let response = try HTTPGet.request(port: port, path: "/api/v1/query?query=\(encoded)")
            let json = try JSONParser.parse(response.body)
            guard json["status"] == "success", case .array(let results)? = json[path: "data", "result"],
                let first = results.first, case .array(let pair)? = first["value"], pair.count == 2,
                let text = pair[1].stringValue
            else { return nil }
            return Double(text)
        }

        func stop() {
            child.signal(SIGTERM)
            _ = try? child.waitForExit(timeout: 20)
        }
    }

    @Test func prometheusSeesWhatHookgateCounted() throws {
        let sink = try Sink()
        let metricsPort = try HTTPGet.freePort()
        // Retries an hour away: the counts hold still while Prometheus catches up.
        let daemon = try DeliveryTests.daemon([
            "--metrics-listen", "127.0.0.1:\(metricsPort)", "--retry-schedule", "1h",
        ])
        try HTTPGet.waitUntilListening(port: metricsPort)
        let prometheus = try PrometheusServer(target: "127.0.0.1:\(metricsPort)")
        defer { prometheus.stop() }
        let client = try daemon.client()
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 1000)
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/500"), rateLimit: 1000, name: "Failing")
        let events = 7
        for _ in 0..<events { #expect(try client.request(emit(statusEvent()))["ok"] == true) }
        _ = try DeliveryTests.waitForStats(client) {
            $0[path: "deliveries", "delivered"] == .integer(Int64(events))
                && $0[path: "deliveries", "pending"] == .integer(Int64(events))
        }
        let own = Exposition(try HTTPGet.request(port: metricsPort, path: "/metrics").body)
        let accepted = try #require(own[#"hookgate_events_accepted_total{event_type="SMS_STATUS"}"#])
        let attempts = own.samples.filter { $0.key.hasPrefix("hookgate_delivery_attempts_total") }.values.reduce(0, +)
        #expect(accepted == Double(events))
        #expect(attempts == Double(events * 2), "each delivered once, each failing one retried later")

        // Prometheus scrapes every second: wait until its view has caught up.
        var seen: (accepted: Double?, attempts: Double?, retrying: Double?) = (nil, nil, nil)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            seen = (
                try prometheus.query(#"hookgate_events_accepted_total{event_type="SMS_STATUS"}"#),
                try prometheus.query("sum(hookgate_delivery_attempts_total)"),
                try prometheus.query(#"sum(hookgate_delivery_attempts_total{outcome="retrying",error_class="http"})"#)
            )
            if seen.accepted == accepted && seen.attempts == attempts { break }
            usleep(250_000)
        }
        #expect(seen.accepted == accepted)
        #expect(seen.attempts == attempts)
        #expect(seen.retrying == Double(events))
        #expect(try prometheus.query(#"up{job="hookgate"}"#) == 1)
        try daemon.stop()
    }

    /// The sample configuration and alerting rules in contrib/prometheus pass promtool.
    @Test func theSampleConfigAndRulesAreValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        for arguments in [
            ["check", "rules", root + "/contrib/prometheus/hookgate-rules.yml"],
            ["check", "config", root + "/contrib/prometheus/prometheus.yml"],
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "promtool \(arguments.joined(separator: " ")): \(printed)")
            #expect(printed.contains("SUCCESS: 3 rules found"), "\(printed)")
        }
    }
}

import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Debian's nginx as the receiver, over HTTP/2 and over HTTP/1.1, left at its defaults:
/// it closes every connection after its 1,000th request (over HTTP/2 with a GOAWAY while
/// more requests are on their way), and it answers a POST before reading its body. Neither
/// is a failure of the receiver, and neither may cost an attempt or time.
@Suite(.serialized) struct NginxReceiverTests {
    /// contrib/sink/nginx-receiver.sh: nginx on 127.0.0.1 with the test CA's certificate,
    /// answering 204, logging each request ("<time> <webhook-id> <status> <protocol> ...").
    final class Nginx {
        let directory: TemporaryDirectory
        let port: Int
        private static let script = Repository.root + "/contrib/sink/nginx-receiver.sh"

        init(http2: Bool) throws {
            guard let certificates = TestCertificates.shared else { throw TestFailure("no test certificates") }
            directory = try TemporaryDirectory()
            let output = directory.file("start.out")
            let start = try ChildProcess(
                executable: "/bin/bash",
                arguments: [
                    Self.script, "start", directory.file("nginx"), certificates.serverCertificate,
                    certificates.serverKey, http2 ? "http2" : "http1",
                ],
                environment: ChildProcess.cleanEnvironment, outputPath: output)
            let status = try start.waitForExit(timeout: 60)
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            guard status == 0, let port = text.split(separator: "\n").last.flatMap({ Int($0) }) else {
                throw TestFailure("nginx-receiver.sh start failed (\(status)): \(text)")
            }
            self.port = port
        }

        var url: String { "https://127.0.0.1:\(port)/" }

        /// The requests nginx answered, a line each, split into fields.
        var requests: [[Substring]] {
            let text = (try? String(contentsOfFile: directory.file("nginx/requests.log"), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map { $0.split(separator: " ") }
        }

        deinit {
            if let stop = try? ChildProcess(
                executable: "/bin/bash", arguments: [Self.script, "stop", directory.file("nginx")],
                environment: ChildProcess.cleanEnvironment, outputPath: directory.file("stop.out"))
            {
                _ = try? stop.waitForExit(timeout: 30)
            }
        }
    }

    /// Every request log item, newest first, paged.
    static func allRequests(_ client: ControlClient, webhookID: String) throws -> [JSON] {
        var items: [JSON] = []
        var cursor: JSON?
        repeat {
            var request: JSONObject = ["cmd": "list_requests", "webhook_id": .string(webhookID), "limit": 1000]
            if let cursor { request["cursor"] = cursor }
            let page = try client.request(.object(request))
            guard let requests = page["requests"]?.arrayValue else { throw TestFailure("list_requests: \(page)") }
            items += requests
            cursor = page["next_cursor"]
        } while cursor != nil
        return items
    }

    static let events = 10_000

    @Test(arguments: [true, false])
    func tenThousandDeliveriesCostNoFailedAttempt(http2: Bool) async throws {
        let nginx = try Nginx(http2: http2)
        // A failed attempt is retried soon, so that the run ends either way.
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "100ms,100ms"])
        let client = try daemon.client()
        let (id, _) = try DeliveryTests.webhook(client, url: nginx.url, rateLimit: 1000)
        // The events come at the webhook's rate, pipelined 10 at a time every 10 ms: what
        // is timed is their delivery, not this (debug) daemon taking in 10,000 events at
        // once on the same cores.
        let batch = Array([[UInt8]](repeating: JSONWriter.bytes(emit(statusEvent())) + [0x0A], count: 10).joined())
        let start = Date()
        for sent in stride(from: 10, through: Self.events, by: 10) {
            try client.send(bytes: batch)
            for _ in 0..<10 {
                let answer = try client.readLine() ?? ""
                if !answer.contains(#""deliveries":1"#) { Issue.record("emit: \(answer)") }
            }
            // Awaited, not slept: the 10 s hold none of the test runner's few threads.
            let wait = start.addingTimeInterval(Double(sent) / 1000).timeIntervalSinceNow
            if wait > 0 { try await Task.sleep(for: .microseconds(Int(wait * 1_000_000))) }
        }
        let stats = try DeliveryTests.waitForStats(
            client,
            { $0[path: "deliveries", "pending"] == 0 && $0[path: "deliveries", "in_flight"] == 0 }, timeout: 120)
        #expect(stats[path: "deliveries", "delivered"] == .integer(Self.events), "\(stats)")

        let items = try Self.allRequests(client, webhookID: id)
        let notDelivered = items.filter { $0["outcome"] != "delivered" || $0["attempt"] != 1 }
        #expect(items.count == Self.events, "one attempt per event")
        #expect(notDelivered.isEmpty, "\(notDelivered.count) attempts failed, first: \(notDelivered.prefix(3))")
        #expect(items.allSatisfy { $0["http_status"] == 204 })
        let latencies = items.compactMap { item -> Double? in
            if case .number(let n)? = item["latency_ms"] { return n.doubleValue }
            return nil
        }.sorted()
        #expect(latencies.count == Self.events)
        let p99 = latencies.isEmpty ? .infinity : latencies[latencies.count * 99 / 100]
        let p50 = latencies.isEmpty ? 0 : latencies[latencies.count / 2]
        print("nginx \(http2 ? "ssl http2" : "ssl"): attempt latency p50 \(p50) ms, p99 \(p99) ms")
        // Under 10 ms on a quiet machine (the README has the figures); the suite runs other
        // tests beside this one on 2 cores, so the bound asserted is the one that tells the
        // stall apart: attempts waited about a second (p99 571-778 ms over HTTP/1.1).
        #expect(p99 < 250, "attempt latency p99 \(p99) ms (p50 \(p50) ms)")

        // nginx took each event exactly once, over the protocol asked for; over HTTP/2 its
        // connections carried 1,000 requests each (keepalive_requests) and were rotated.
        // (nginx logs an HTTP/2 request once its stream is closed, which may be after
        // the answer went out.)
        var received = nginx.requests
        let deadline = Date().addingTimeInterval(10)
        while received.count < Self.events, Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            received = nginx.requests
        }
        #expect(received.count == Self.events)
        #expect(Set(received.map { $0.count > 1 ? $0[1] : "" }).count == Self.events)
        #expect(received.allSatisfy { $0.count > 3 && $0[3] == (http2 ? "HTTP/2.0" : "HTTP/1.1") })
        if http2 {
            #expect(received.contains { $0.count > 5 && $0[5] == "1000" }, "a connection reached keepalive_requests")
        }
        #expect(try daemon.stop() == 0)
    }
}

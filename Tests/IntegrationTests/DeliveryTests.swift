import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon delivering to real HTTPS receivers on loopback (a test CA made at test
/// time, loopback opened with --allow-destination).
@Suite struct DeliveryTests {
    /// A daemon trusting the test CA; `allowing` are the `--allow-destination` ranges
    /// (loopback unless told otherwise).
    static func daemon(
        _ extra: [String] = [], allowing ranges: [String] = ["127.0.0.0/8"], directory: TemporaryDirectory? = nil
    ) throws -> Daemon {
        guard let certificates = TestCertificates.shared else { throw TestFailure("no test certificates") }
        return try Daemon(
            arguments: ranges.flatMap { ["--allow-destination", $0] } + ["--ca-file", certificates.caPEM] + extra,
            directory: directory)
    }

    static func webhook(_ client: ControlClient, url: String, rateLimit: Int = 0, name: String = "Receiver")
        throws -> (id: String, secret: String)
    {
        let created = try client.request([
            "cmd": "create_webhook", "name": .string(name), "url": .string(url),
            "filter": ["event_type": ["SMS_STATUS"]], "rate_limit": .integer(rateLimit),
        ])
        guard let id = created[path: "webhook", "id"]?.stringValue,
            let secret = created[path: "webhook", "secret"]?.stringValue
        else { throw TestFailure("create failed: \(created)") }
        return (id, secret)
    }

    /// Waits until the sink has logged `count` requests.
    static func waitForRequests(_ sink: Sink, count: Int, timeout: Double = 30) throws -> [JSON] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let requests = sink.requests
            if requests.count >= count { return requests }
            usleep(20_000)
        }
        throw TestFailure("the sink got \(sink.requests.count) requests, expected \(count)")
    }

    /// When the sink received each request (unix seconds), in order.
    static func receiptTimes(_ requests: [JSON]) -> [Double] {
        requests.compactMap { request -> Double? in
            if case .number(let n)? = request["at"] { return n.doubleValue }
            return nil
        }.sorted()
    }

    /// The most receipts in any one-second window starting at a receipt.
    static func busiestSecond(_ times: [Double]) -> Int {
        times.indices.map { i in times[i...].prefix { $0 < times[i] + 1.0 }.count }.max() ?? 0
    }

    static func waitForStats(_ client: ControlClient, _ check: (JSON) -> Bool, timeout: Double = 30) throws -> JSON {
        let deadline = Date().addingTimeInterval(timeout)
        var last: JSON = .null
        while Date() < deadline {
            last = try client.request(["cmd": "stats"])
            if check(last) { return last }
            usleep(50_000)
        }
        throw TestFailure("stats never got there: \(last)")
    }

    @Test func deliversTheSignedEventWithItsHeaders() throws {
        let sink = try Sink()
        let daemon = try Self.daemon()
        let client = try daemon.client()
        let (id, secret) = try Self.webhook(client, url: sink.url("/status/204"), name: "Orders \"EU\"")
        let emitted = try client.request(emit(statusEvent()))
        let eventID = try #require(emitted["event_id"]?.stringValue)
        let request = try #require(try Self.waitForRequests(sink, count: 1).first)
        #expect(request["method"] == "POST")
        #expect(request["path"] == "/status/204")
        #expect(request[path: "headers", "content-type"] == "application/json")
        #expect(request[path: "headers", "user-agent"] == .string("hookgate/\(HookgateVersion.current)"))
        #expect(request[path: "headers", "webhook-id"] == .string("msg_\(eventID)_\(id)"))
        #expect(request[path: "headers", "webhook-signature"]?.stringValue?.hasPrefix("v1,") == true)
        let bodyText = try #require(request["body"]?.stringValue)
        let body = try #require(try JSONParser.parse(bodyText).objectValue)
        #expect(body.keys == ["event_type", "timestamp", "webhook_id", "webhook_name", "status"])
        #expect(body["webhook_id"] == .string(id))
        #expect(body["webhook_name"] == #"Orders "EU""#)
        #expect(JSON.object(body)[path: "status", "message_ref"] == "order-42")
        _ = try Self.waitForStats(client) { $0[path: "deliveries", "delivered"] == 1 }

        // An implementation independent of hookgate's verifies the signature.
        let output = sink.directory.file("verify.txt")
        let verify = try ChildProcess(
            executable: "/usr/bin/env",
            arguments: ["python3", Repository.root + "/contrib/sink/verify_signatures.py", sink.logPath, secret],
            environment: ChildProcess.cleanEnvironment, outputPath: output)
        #expect(
            try verify.waitForExit(timeout: 60) == 0, "\((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")

        // redeliver: a new series of attempts, first one now, the same webhook-id.
        let again = try client.request(["cmd": "redeliver", "event_id": .string(eventID), "webhook_id": .string(id)])
        #expect(again["delivery_id"]?.int != nil, "\(again)")
        let both = try Self.waitForRequests(sink, count: 2)
        #expect(both[1][path: "headers", "webhook-id"] == request[path: "headers", "webhook-id"])
        _ = try Self.waitForStats(client) { $0[path: "deliveries", "delivered"] == 2 }
        let unknownEvent = try client.request([
            "cmd": "redeliver", "event_id": "00000000-0000-4000-8000-000000000000", "webhook_id": .string(id),
        ])
        #expect(unknownEvent.errorCode == "not_found")
        #expect(unknownEvent.errorField == "event_id")
        let unknownWebhook = try client.request([
            "cmd": "redeliver", "event_id": .string(eventID), "webhook_id": "00000000-0000-4000-8000-000000000000",
        ])
        #expect(unknownWebhook.errorField == "webhook_id")
        #expect(try daemon.stop() == 0)
    }

    @Test func aFailureIsRetriedWithTheSameWebhookID() throws {
        let sink = try Sink()
        let daemon = try Self.daemon(["--retry-schedule", "1s,1s"])
        let client = try daemon.client()
        _ = try Self.webhook(client, url: sink.url("/sequence/retry/500,200"))
        _ = try client.request(emit(statusEvent()))
        let requests = try Self.waitForRequests(sink, count: 2)
        #expect(requests[0][path: "headers", "webhook-id"] == requests[1][path: "headers", "webhook-id"])
        #expect(requests[0][path: "headers", "webhook-signature"] != nil)
        let stats = try Self.waitForStats(client) { $0[path: "deliveries", "delivered"] == 1 }
        #expect(stats[path: "deliveries", "failed"] == 0)
        usleep(1_500_000)
        #expect(sink.requests.count == 2, "delivered: no third attempt")

        // The request log, newest first, a page at a time, each attempt exactly once.
        let first = try client.request(["cmd": "list_requests", "limit": 1])
        let newest = try #require(first["requests"]?.arrayValue?.first)
        #expect(newest["attempt"] == 2)
        #expect(newest["outcome"] == "delivered")
        #expect(newest["http_status"] == 200)
        #expect(newest["error_class"] == .null)
        #expect(newest["user_agent"] == .string("hookgate/\(HookgateVersion.current)"))
        let cursor = try #require(first["next_cursor"])
        let second = try client.request(["cmd": "list_requests", "limit": 1, "cursor": cursor])
        let older = try #require(second["requests"]?.arrayValue?.first)
        #expect(second["next_cursor"] == nil)
        #expect(older["attempt"] == 1)
        #expect(older["outcome"] == "retrying")
        #expect(older["http_status"] == 500)
        #expect(older["error_class"] == "http")
        #expect(older["event_id"] == newest["event_id"])
        #expect(older["id"] != newest["id"])
        let filtered = try client.request(["cmd": "list_requests", "outcome": "retrying"])
        #expect(filtered["requests"]?.arrayValue?.count == 1)
        let none = try client.request(["cmd": "list_requests", "since": "2999-01-01T00:00:00Z"])
        #expect(none["requests"] == [])
        let bad = try client.request(["cmd": "list_requests", "outcome": "exploded"])
        #expect(bad.errorField == "outcome")
    }

    @Test func afterTheLastRetryTheDeliveryFails() throws {
        let sink = try Sink()
        let daemon = try Self.daemon(["--retry-schedule", "250ms"])
        let client = try daemon.client()
        _ = try Self.webhook(client, url: sink.url("/status/503"))
        _ = try client.request(emit(statusEvent()))
        _ = try Self.waitForStats(client) { $0[path: "deliveries", "failed"] == 1 }
        #expect(sink.requests.count == 2, "the first attempt and one retry")
    }

    @Test func theRequestLogIsKeptWithinItsBound() throws {
        let sink = try Sink()
        let daemon = try Self.daemon(["--retry-schedule", "100ms,100ms,100ms,100ms", "--log-max-rows", "2"])
        let client = try daemon.client()
        _ = try Self.webhook(client, url: sink.url("/status/500"))
        _ = try client.request(emit(statusEvent()))
        _ = try Self.waitForStats(client) { $0[path: "deliveries", "failed"] == 1 }
        #expect(sink.requests.count == 5)
        let deadline = Date().addingTimeInterval(20)
        var items: [JSON] = []
        repeat {
            items = try client.request(["cmd": "list_requests"])["requests"]?.arrayValue ?? []
            if items.count <= 2 { break }
            usleep(200_000)
        } while Date() < deadline
        #expect(items.count == 2, "the oldest lines went")
        #expect(items.map { $0["attempt"] } == [5, 4], "the newest stay")
    }

    @Test func goneDisablesTheWebhookAndEnableRestoresIt() throws {
        let sink = try Sink()
        let daemon = try Self.daemon()
        let client = try daemon.client()
        let (id, _) = try Self.webhook(client, url: sink.url("/status/410"))
        _ = try client.request(emit(statusEvent()))
        _ = try Self.waitForStats(client) { $0[path: "deliveries", "cancelled"] == 1 }
        let webhook = try client.request(["cmd": "get_webhook", "webhook_id": .string(id)])
        #expect(webhook[path: "webhook", "state"] == "disabled")
        #expect(webhook[path: "webhook", "disabled_reason"]?.stringValue?.contains("410") == true, "\(webhook)")
        #expect(try client.request(emit(statusEvent()))["deliveries"] == 0, "a disabled webhook receives nothing")
        let logged = try client.request(["cmd": "list_requests", "webhook_id": .string(id)])
        #expect(logged[path: "requests"]?.arrayValue?.first?["outcome"] == "cancelled")
        #expect(logged[path: "requests"]?.arrayValue?.first?["http_status"] == 410)
        #expect(
            logged[path: "requests"]?.arrayValue?.count == 1, "the 410 attempt is its delivery's one item: \(logged)")
        let enabled = try client.request(["cmd": "enable_webhook", "webhook_id": .string(id)])
        #expect(enabled[path: "webhook", "state"] == "active")
        #expect(try client.request(emit(statusEvent()))["deliveries"] == 1)
    }

    /// A 410 while the webhook's other attempts are on the wire: every delivery ends
    /// cancelled with exactly one log item, whichever way it ended.
    @Test func goneWithAttemptsInFlightLogsEachDeliveryOnce() throws {
        let sink = try Sink()
        let daemon = try Self.daemon(["--max-in-flight-per-webhook", "8"])
        let client = try daemon.client()
        let (id, _) = try Self.webhook(client, url: sink.url("/hang/0.2"), rateLimit: 1000)
        var batch: [UInt8] = []
        for i in 0..<30 { batch += JSONWriter.bytes(emit(statusEvent(), id: i)) + [0x0A] }
        try client.send(bytes: batch)
        for _ in 0..<30 { #expect(try client.readResponse()["deliveries"] == 1) }
        // The receiver now answers 410 (a new URL, the same webhook).
        _ = try client.request([
            "cmd": "update_webhook", "webhook_id": .string(id), "name": "Receiver",
            "url": .string(sink.url("/status/410")), "filter": ["event_type": ["SMS_STATUS"]],
            "rate_limit": 1000,
        ])
        let stats = try Self.waitForStats(client) { stats in
            stats[path: "deliveries", "pending"] == 0 && stats[path: "deliveries", "in_flight"] == 0
        }
        let listed = try client.request(["cmd": "list_requests", "webhook_id": .string(id), "limit": 1000])
        let items = try #require(listed["requests"]?.arrayValue)
        var ends: [String: Int] = [:]
        for item in items where item["outcome"] != "retrying" {
            ends[item["event_id"]?.stringValue ?? "", default: 0] += 1
        }
        #expect(ends.count == 30, "every delivery ended: \(stats)")
        #expect(ends.values.allSatisfy { $0 == 1 }, "one end per delivery: \(ends.filter { $0.value > 1 })")
        let delivered = stats[path: "deliveries", "delivered"]?.int ?? -1
        #expect(delivered + (stats[path: "deliveries", "cancelled"]?.int ?? -1) == 30, "\(stats)")
    }

    @Test func theRateLimitHolds() throws {
        let sink = try Sink()
        let daemon = try Self.daemon()
        let client = try daemon.client()
        _ = try Self.webhook(client, url: sink.url("/status/204"), rateLimit: 5)
        var batch: [UInt8] = []
        for i in 0..<16 { batch += JSONWriter.bytes(emit(statusEvent(), id: i)) + [0x0A] }
        try client.send(bytes: batch)
        for _ in 0..<16 { #expect(try client.readResponse()["deliveries"] == 1) }
        let requests = try Self.waitForRequests(sink, count: 16, timeout: 60)
        let times = Self.receiptTimes(requests)
        #expect(times.count == 16)
        let worst = Self.busiestSecond(times)
        #expect(worst <= 6, "at most rate + capacity in any second: \(worst)")
        #expect(times.last! - times.first! >= 1.8, "16 deliveries at 5/s take about 2 s: \(times.last! - times.first!)")
    }

    /// Events trickling in faster than the limit, so the webhook's queue empties between
    /// them: its bucket is kept while it refills (a fresh one would start full).
    @Test func theRateLimitHoldsForATrickle() throws {
        let sink = try Sink()
        let daemon = try Self.daemon()
        let client = try daemon.client()
        _ = try Self.webhook(client, url: sink.url("/status/204"), rateLimit: 5)
        for i in 0..<24 {
            #expect(try client.request(emit(statusEvent(), id: i))["deliveries"] == 1)
            usleep(80_000)
        }
        let requests = try Self.waitForRequests(sink, count: 24, timeout: 60)
        let times = Self.receiptTimes(requests)
        let worst = Self.busiestSecond(times)
        #expect(worst <= 6, "at most rate + capacity in any second: \(worst)")
    }

    /// Deliveries pending when the daemon is killed go out after a restart.
    @Test func kill9WithDeliveriesPendingThenRestartDeliversEveryOne() throws {
        let port = try CurlTransportTests.unusedPort()
        let directory = try TemporaryDirectory()
        var daemon = try Self.daemon(["--retry-schedule", "1s"], directory: directory)
        let client = try daemon.client()
        // Nothing listens yet: every attempt fails to connect and is retried.
        _ = try Self.webhook(client, url: "https://127.0.0.1:\(port)/status/204")
        var ids: Set<String> = []
        for _ in 0..<5 { ids.insert(try #require(try client.request(emit(statusEvent()))["event_id"]?.stringValue)) }
        try daemon.kill9()
        let sink = try Sink(port: port)
        daemon = try Self.daemon(["--retry-schedule", "1s"], directory: directory)
        let requests = try Self.waitForRequests(sink, count: 5)
        let delivered = Set(
            requests.compactMap { $0[path: "headers", "webhook-id"]?.stringValue }.map {
                String($0.dropFirst(4).prefix(36))
            })
        #expect(delivered == ids, "every pending event went out after the restart")
        #expect(try daemon.stop() == 0)
    }
}

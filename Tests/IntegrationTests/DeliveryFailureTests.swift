import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon against receivers that fail in the ways CurlTransportTests covers at the
/// transport level (Retry-After, a hang, a reset, the address guard, a redirect): how
/// each attempt is logged, and that it is retried. Each webhook's retry schedule ends in
/// `1h`, so a test sees a bounded number of attempts.
@Suite struct DeliveryFailureTests {
    /// The request log of one webhook, oldest first, once it holds `count` items.
    static func waitForAttempts(_ client: ControlClient, webhookID: String, count: Int, timeout: Double = 30)
        throws -> [JSON]
    {
        let deadline = Date().addingTimeInterval(timeout)
        var items: [JSON] = []
        while Date() < deadline {
            let listed = try client.request(["cmd": "list_requests", "webhook_id": .string(webhookID)])
            items = try #require(listed["requests"]?.arrayValue, "\(listed)")
            if items.count >= count { return items.reversed() }
            usleep(50_000)
        }
        throw TestFailure("the request log has \(items.count) items, expected \(count): \(items)")
    }

    static func timestamp(_ item: JSON) throws -> Timestamp {
        try #require(item["at"]?.stringValue.flatMap(Timestamp.init(rfc3339:)), "\(item)")
    }

    /// On 503 and 429 the retry waits for Retry-After when it is longer than the
    /// scheduled delay.
    @Test(arguments: [503, 429])
    func retryAfterIsWaitedOut(status: Int) throws {
        let sink = try Sink()
        // The schedule alone would retry after 200 ms ± 20%; the receiver asks for 2 s.
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "200ms"])
        let client = try daemon.client()
        let (id, _) = try DeliveryTests.webhook(client, url: sink.url("/sequence/busy/\(status):2,200"))
        _ = try client.request(emit(statusEvent()))
        let attempts = try Self.waitForAttempts(client, webhookID: id, count: 2)
        #expect(attempts.map { $0["attempt"] } == [1, 2])
        #expect(attempts[0]["http_status"] == .integer(status))
        #expect(attempts[0]["error_class"] == "http")
        #expect(attempts[0]["outcome"] == "retrying")
        #expect(attempts[1]["http_status"] == 200)
        #expect(attempts[1]["error_class"] == .null)
        #expect(attempts[1]["outcome"] == "delivered")
        // Whole microseconds of one clock, and the retry falls due Retry-After after the
        // first attempt ended: no rounding to allow for.
        let gap = try Self.timestamp(attempts[1]).microseconds - Self.timestamp(attempts[0]).microseconds
        #expect(gap >= 2_000_000, "the retry came \(gap) µs after the first attempt, Retry-After was 2 s")

        let received = try DeliveryTests.waitForRequests(sink, count: 2)
        #expect(received.count == 2)
        #expect(received[0][path: "headers", "webhook-id"] != nil)
        #expect(received[0][path: "headers", "webhook-id"] == received[1][path: "headers", "webhook-id"])
        let stats = try DeliveryTests.waitForStats(client) { $0[path: "deliveries", "delivered"] == 1 }
        #expect(stats[path: "deliveries", "failed"] == 0)
    }

    @Test func aReceiverThatHangsTimesOutAndIsRetried() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--request-timeout", "1s", "--retry-schedule", "200ms,1h"])
        let client = try daemon.client()
        let (id, _) = try DeliveryTests.webhook(client, url: sink.url("/hang/120"))
        _ = try client.request(emit(statusEvent()))
        let attempts = try Self.waitForAttempts(client, webhookID: id, count: 2)
        #expect(attempts.map { $0["attempt"] } == [1, 2])
        for item in attempts {
            #expect(item["http_status"] == .null, "\(item)")
            #expect(item["error_class"] == "timeout", "\(item)")
            #expect(item["error"]?.stringValue?.isEmpty == false, "\(item)")
            #expect(item["outcome"] == "retrying", "\(item)")
        }
        let received = try DeliveryTests.waitForRequests(sink, count: 2)
        #expect(received.map { $0["path"] } == ["/hang/120", "/hang/120"])
    }

    @Test func aConnectionResetIsANetworkFailureAndIsRetried() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "200ms,1h"])
        let client = try daemon.client()
        let (id, _) = try DeliveryTests.webhook(client, url: sink.url("/reset"))
        _ = try client.request(emit(statusEvent()))
        let attempts = try Self.waitForAttempts(client, webhookID: id, count: 2)
        #expect(attempts.map { $0["attempt"] } == [1, 2])
        for item in attempts {
            #expect(item["http_status"] == .null, "\(item)")
            #expect(item["error_class"] == "network", "\(item)")
            #expect(item["error"]?.stringValue?.isEmpty == false, "\(item)")
            #expect(item["outcome"] == "retrying", "\(item)")
        }
        let received = try DeliveryTests.waitForRequests(sink, count: 2)
        #expect(received.map { $0["path"] } == ["/reset", "/reset"])
    }

    /// Loopback refused by the address guard: with no range opened, and with one that
    /// does not hold 127.0.0.1.
    @Test(arguments: [[], ["10.0.0.0/8"]])
    func aBlockedDestinationIsNeverContactedAndIsRetried(allowing ranges: [String]) throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "200ms,1h"], allowing: ranges)
        let client = try daemon.client()
        let (id, _) = try DeliveryTests.webhook(client, url: sink.url("/status/200"))
        _ = try client.request(emit(statusEvent()))
        let attempts = try Self.waitForAttempts(client, webhookID: id, count: 2)
        #expect(attempts.map { $0["attempt"] } == [1, 2])
        for item in attempts {
            #expect(item["http_status"] == .null, "\(item)")
            #expect(item["error_class"] == "blocked_destination", "\(item)")
            #expect(item["error"]?.stringValue?.contains("loopback") == true, "\(item)")
            #expect(item["outcome"] == "retrying", "\(item)")
        }
        #expect(sink.requests.isEmpty, "nothing reached the receiver")
        let stats = try client.request(["cmd": "stats"])
        #expect(stats[path: "deliveries", "delivered"] == 0, "\(stats)")
    }

    /// The sink's redirect points at /status/200, which would answer 200.
    @Test(arguments: [302, 303, 307])
    func aRedirectIsAFailureAndIsNotFollowed(status: Int) throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "200ms,1h"])
        let client = try daemon.client()
        let (id, _) = try DeliveryTests.webhook(client, url: sink.url("/redirect/\(status)"))
        _ = try client.request(emit(statusEvent()))
        let attempts = try Self.waitForAttempts(client, webhookID: id, count: 2)
        #expect(attempts.map { $0["attempt"] } == [1, 2])
        for item in attempts {
            #expect(item["http_status"] == .integer(status), "\(item)")
            #expect(item["error_class"] == "http", "\(item)")
            #expect(item["outcome"] == "retrying", "\(item)")
            #expect(item["response_body"] == "redirect\n", "\(item)")
        }
        // Both attempts are over: had either followed the Location, the sink would have
        // logged it by now.
        let paths = sink.requests.map { $0["path"] }
        #expect(paths == [.string("/redirect/\(status)"), .string("/redirect/\(status)")])
        let stats = try client.request(["cmd": "stats"])
        #expect(stats[path: "deliveries", "delivered"] == 0, "\(stats)")
    }
}

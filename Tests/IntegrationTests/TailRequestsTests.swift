import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tail_requests`: request items streamed as attempts are logged, through the real
/// daemon, to real receivers.
@Suite struct TailRequestsTests {
    /// Reads `count` stream items (request items, not responses).
    static func items(_ client: ControlClient, count: Int) throws -> [JSON] {
        var items: [JSON] = []
        while items.count < count {
            let line = try client.readResponse(timeout: 30)
            #expect(line["ok"] == nil, "a stream item, not a response: \(line)")
            items.append(line)
        }
        return items
    }

    @Test func streamsEveryAttemptAndCancellationAsItIsLogged() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "1h"])
        let admin = try daemon.client()
        let everything = try daemon.client()
        #expect(
            try everything.request(["cmd": "tail_requests", "id": "all"]) == [
                "ok": true, "id": "all", "streaming": true,
            ])

        let (good, _) = try DeliveryTests.webhook(admin, url: sink.url("/status/204"), name: "Good")
        let (bad, _) = try DeliveryTests.webhook(admin, url: sink.url("/status/500"), name: "Bad")
        // A stream for one webhook, its client half-closed (as socat does at the end of
        // its input): it goes on streaming.
        let goodOnly = try daemon.client()
        #expect(try goodOnly.request(["cmd": "tail_requests", "webhook_id": .string(good)])["streaming"] == true)
        goodOnly.shutdownWrite()

        var eventIDs: Set<String> = []
        for _ in 0..<3 {
            eventIDs.insert(try #require(try admin.request(emit(statusEvent()))["event_id"]?.stringValue))
        }
        let seen = try Self.items(everything, count: 6)
        #expect(Set(seen.compactMap { $0["event_id"]?.stringValue }) == eventIDs)
        #expect(seen.filter { $0["webhook_id"] == .string(good) }.allSatisfy { $0["outcome"] == "delivered" })
        #expect(seen.filter { $0["webhook_id"] == .string(bad) }.allSatisfy { $0["outcome"] == "retrying" })
        #expect(seen.filter { $0["webhook_id"] == .string(bad) }.count == 3)

        // Each streamed item is the item list_requests shows for the same attempt.
        let logged = try admin.request(["cmd": "list_requests"])
        let listed = try #require(logged["requests"]?.arrayValue)
        #expect(listed.count == 6)
        for item in seen {
            #expect(listed.contains(item), "streamed \(item) is not in list_requests")
        }

        let goodSeen = try Self.items(goodOnly, count: 3)
        #expect(goodSeen.allSatisfy { $0["webhook_id"] == .string(good) && $0["outcome"] == "delivered" })

        // Deleting the failing webhook cancels its 3 retries: logged, and streamed.
        #expect(try admin.request(["cmd": "delete_webhook", "webhook_id": .string(bad)]).isOK)
        let cancelled = try Self.items(everything, count: 3)
        #expect(cancelled.allSatisfy { $0["webhook_id"] == .string(bad) && $0["outcome"] == "cancelled" })
        #expect(Set(cancelled.compactMap { $0["event_id"]?.stringValue }) == eventIDs)

        // One more event: the filtered stream gets its attempt and nothing of the others.
        _ = try admin.request(emit(statusEvent()))
        let last = try Self.items(goodOnly, count: 1)
        #expect(last[0]["webhook_id"] == .string(good))
        #expect(try Self.items(everything, count: 1) == last)
        #expect(try daemon.stop() == 0)
        #expect(try everything.readLine(timeout: 5) == nil, "the stream ends when the daemon stops")
    }

    @Test func aRefusedTailLeavesTheConnectionAsItWas() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        let unknown = "00000000-0000-4000-8000-000000000000"
        // Pipelined: answered in order; the lines after a refused tail run as usual.
        try client.send(["cmd": "ping", "id": 1])
        try client.send(["cmd": "tail_requests", "id": 2, "webhook_id": .string(unknown)])
        try client.send(["cmd": "tail_requests", "id": 3, "webhook_id": "nope"])
        try client.send(["cmd": "tail_requests", "id": 4, "since": "2025-01-01T00:00:00Z"])
        try client.send(["cmd": "list_webhooks", "id": 5])
        let answers = try (0..<5).map { _ in try client.readResponse() }
        #expect(answers.map { $0["id"] } == [1, 2, 3, 4, 5])
        #expect(answers[1].errorCode == "not_found")
        #expect(answers[1].errorField == "webhook_id")
        #expect(answers[2].errorCode == "validation")
        #expect(answers[2].errorField == "webhook_id")
        #expect(answers[3].errorCode == "validation")
        #expect(answers[4].isOK)

        // Once a tail is answered the connection is a stream: what follows is not run.
        let stream = try daemon.client()
        try stream.send(["cmd": "ping", "id": "before"])
        try stream.send(["cmd": "tail_requests", "id": "tail"])
        try stream.send(webhookRequest("ignored", eventTypes: ["SMS_STATUS"]))
        #expect(try stream.readResponse()["id"] == "before")
        #expect(try stream.readResponse() == ["ok": true, "id": "tail", "streaming": true])
        let other = try daemon.client()
        #expect(try other.request(["cmd": "list_webhooks"])["webhooks"] == [])
        #expect(try daemon.stop() == 0)
    }

    /// A line too long behind an unanswered tail_requests is answered in its turn if the
    /// tail is refused; sent to a stream, it is not a request and the stream goes on.
    @Test func aLineTooLongAroundATail() throws {
        let daemon = try Daemon(arguments: ["--max-line-bytes", "1000"])
        let refused = try daemon.client()
        try refused.send(
            bytes: Array(
                #"{"cmd":"tail_requests","webhook_id":"00000000-0000-4000-8000-000000000000"}"#.utf8) + [0x0A]
                + Array(#"{"cmd":"ping","id":1}"#.utf8) + [0x0A] + [UInt8](repeating: 0x79, count: 3000) + [0x0A])
        #expect(try refused.readResponse().errorCode == "not_found")
        #expect(try refused.readResponse()["id"] == 1)
        #expect(try refused.readResponse().errorCode == "line_too_long")
        #expect(try refused.readLine() == nil, "closed after line_too_long")

        let stream = try daemon.client()
        #expect(try stream.request(["cmd": "tail_requests"])["streaming"] == true)
        try stream.send(bytes: [UInt8](repeating: 0x79, count: 3000) + [0x0A] + [0xFF, 0xFE, 0x0A])
        _ = try DeliveryTests.webhook(try daemon.client(), url: "https://127.0.0.1:1/hook")
        _ = try daemon.client().request(emit(statusEvent()))
        let item = try Self.items(stream, count: 1)
        #expect(item[0]["error_class"] == "blocked_destination", "the stream goes on: \(item)")
        #expect(try daemon.stop() == 0)
    }

    @Test func aReaderTooSlowIsToldAndClosedWhileDeliveryGoesOn() throws {
        // Every attempt fails at once (nothing listens on the port) and is not retried:
        // thousands of small items a second, and no receiver to wait for.
        let closedPort = try CurlTransportTests.unusedPort()
        let daemon = try DeliveryTests.daemon(["--retry-schedule", ""])
        let admin = try daemon.client()
        let slow = try daemon.client()
        #expect(try slow.request(["cmd": "tail_requests"])["streaming"] == true)
        _ = try DeliveryTests.webhook(admin, url: "https://127.0.0.1:\(closedPort)/hook", rateLimit: 10_000)

        // `slow` reads nothing until every delivery has been attempted.
        let events = 12_000
        for start in stride(from: 0, to: events, by: 1000) {
            for i in start..<min(start + 1000, events) { try admin.send(emit(statusEvent(), id: i)) }
            for _ in start..<min(start + 1000, events) { #expect(try admin.readResponse().isOK) }
        }
        _ = try DeliveryTests.waitForStats(admin, { $0[path: "deliveries", "failed"]?.int == events }, timeout: 60)

        var items = 0
        var last: JSON = .null
        while let line = try slow.readLine(timeout: 30) {
            last = try JSONParser.parse(line)
            if last["ok"] == nil { items += 1 } else { break }
        }
        #expect(last == ["ok": false, "error": ["code": "unavailable", "message": "tail overflow"]])
        #expect(items > 0 && items < events, "\(items) items before the overflow")
        #expect(try slow.readLine(timeout: 15) == nil, "closed after the overflow line")
        #expect(try admin.request(["cmd": "ping"]).isOK)
        #expect(try daemon.stop() == 0)
    }
}

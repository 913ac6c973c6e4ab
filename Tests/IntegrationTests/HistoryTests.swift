import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// History is bounded: finished work is pruned, a webhook's backlog is cancelled in the
/// background, and a nearly full disk stops the store from growing.
@Suite struct HistoryTests {
    static func fileBytes(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    static func emitPipelined(_ client: ControlClient, count: Int) throws -> [String] {
        var batch: [UInt8] = []
        for i in 0..<count { batch += JSONWriter.bytes(emit(statusEvent(), id: i)) + [0x0A] }
        try client.send(bytes: batch)
        return try (0..<count).map { _ in
            let response = try client.readResponse()
            guard let id = response["event_id"]?.stringValue else { throw TestFailure("emit failed: \(response)") }
            return id
        }
    }

    /// Whether the event is still stored, asked without creating anything: `redeliver`
    /// to a webhook that does not exist names `webhook_id` while the event is there, and
    /// `event_id` (passed retention) once it is gone.
    static func eventIsStored(_ client: ControlClient, _ eventID: String) throws -> Bool {
        let answer = try client.request([
            "cmd": "redeliver", "event_id": .string(eventID), "webhook_id": "00000000-0000-4000-8000-000000000000",
        ])
        switch answer.errorField {
        case "webhook_id": return true
        case "event_id":
            #expect(answer[path: "error", "message"]?.stringValue?.contains("passed retention") == true, "\(answer)")
            return false
        default: throw TestFailure("unexpected: \(answer)")
        }
    }

    static func waitUntilPruned(_ client: ControlClient, _ eventID: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try eventIsStored(client, eventID) {
            guard Date() < deadline else { throw TestFailure("event \(eventID) was never pruned") }
            usleep(200_000)
        }
    }

    /// With --event-retention 1s: delivered deliveries and their events go, a webhook's
    /// pending deliveries (and so their events) stay, `redeliver` of a pruned event says
    /// it passed retention.
    @Test func retentionPrunesFinishedWorkAndKeepsPending() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--event-retention", "1s"])
        let client = try daemon.client()
        let active = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 10_000)
        // At 1 a second, most of its deliveries are still pending when it is disabled.
        let waiting = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 1, name: "Waiting")
        let events = try Self.emitPipelined(client, count: 200)
        #expect(try client.request(["cmd": "disable_webhook", "webhook_id": .string(waiting.id)]).isOK)
        _ = try DeliveryTests.waitForStats(client) { ($0[path: "deliveries", "delivered"]?.intValue ?? 0) >= 200 }

        // Two retention passes later the events with a pending delivery are all there.
        usleep(4_500_000)
        let stats = try client.request(["cmd": "stats", "webhook_id": .string(waiting.id)])
        let pending = stats[path: "deliveries", "pending"]?.intValue ?? 0
        #expect(pending >= 190, "\(stats)")
        #expect(try events.filter { try Self.eventIsStored(client, $0) }.count >= pending)

        // Its deliveries end (cancelled with the webhook): the events can go.
        #expect(try client.request(["cmd": "delete_webhook", "webhook_id": .string(waiting.id)]).isOK)
        try Self.waitUntilPruned(client, events[199])
        #expect(try events.filter { try Self.eventIsStored(client, $0) }.isEmpty)
        let redelivered = try client.request([
            "cmd": "redeliver", "event_id": .string(events[0]), "webhook_id": .string(active.id),
        ])
        #expect(redelivered.errorCode == "not_found")
        #expect(redelivered.errorField == "event_id")
        let unknown = try client.request([
            "cmd": "redeliver", "event_id": .string(Identifiers.timeOrderedUUID(at: SystemWallClock().now())),
            "webhook_id": .string(active.id),
        ])
        #expect(unknown[path: "error", "message"] == "Event not found")
    }

    /// Under steady load with a short retention the database file stops growing: freed
    /// pages are reused. Each round waits until retention has pruned the round's events.
    @Test func theDatabaseStopsGrowingOnceRetentionIsInForce() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--event-retention", "1s", "--log-retention", "1s"])
        let client = try daemon.client()
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 10_000)
        let database = daemon.dataDirectory + "/hookgate.sqlite3"
        var sizes: [Int] = []
        for round in 1...8 {
            let events = try Self.emitPipelined(client, count: 1000)
            _ = try DeliveryTests.waitForStats(client) { $0[path: "deliveries", "delivered"]?.intValue == round * 1000 }
            try Self.waitUntilPruned(client, events[999])
            sizes.append(Self.fileBytes(database))
        }
        print("database bytes after each round of 1,000 events: \(sizes)")
        #expect(sizes[7] <= sizes[2] + sizes[2] / 4, "the file still grows: \(sizes)")
    }

    /// A webhook with a large backlog is deleted: the answer comes at once, emits on
    /// another connection go on meanwhile, and every pending delivery ends cancelled,
    /// logged once.
    @Test func deletingALargeBacklogRunsInTheBackground() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon()
        let client = try daemon.client()
        // At 1 a second, nearly all of its deliveries are pending when it is deleted.
        let hook = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 1)
        _ = try Self.emitPipelined(client, count: 20_000)
        let other = try daemon.client()
        #expect(
            try client.request(["cmd": "delete_webhook", "webhook_id": .string(hook.id)])["deleted"] == .string(hook.id)
        )
        for _ in 0..<200 { #expect(try other.request(emit(statusEvent())).isOK) }
        let stats = try DeliveryTests.waitForStats(
            client, { $0[path: "deliveries", "pending"] == 0 && $0[path: "deliveries", "in_flight"] == 0 },
            timeout: 120)
        let delivered = stats[path: "deliveries", "delivered"]?.intValue ?? -1
        #expect(stats[path: "deliveries", "cancelled"]?.intValue == 20_000 - delivered)
        #expect(delivered < 100)
        var cursor: String?
        var cancelled = 0
        repeat {
            var request: JSONObject = ["cmd": "list_requests", "webhook_id": .string(hook.id), "limit": 1000]
            if let cursor { request["cursor"] = .string(cursor) }
            let page = try client.request(.object(request))
            for item in page["requests"]?.arrayValue ?? [] where item["outcome"] == "cancelled" {
                #expect(item["error"] == "webhook deleted")
                cancelled += 1
            }
            cursor = page["next_cursor"]?.stringValue
        } while cursor != nil
        #expect(cancelled == 20_000 - delivered)
        #expect(sink.requests.count == delivered)
    }

    /// Deletes racing attempts in flight: every delivery gets exactly one ending in the
    /// log (it was two for some: `delivered`, then `cancelled` a few ms later), and
    /// `stats` agrees with the log.
    @Test func aDeleteRacingAttemptsEndsEachDeliveryOnce() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon()
        let client = try daemon.client()
        var hooks: [String] = []
        for i in 0..<4 {
            hooks.append(
                try DeliveryTests.webhook(client, url: sink.url("/hang/0.2"), rateLimit: 50, name: "Hook \(i)").id)
        }
        _ = try Self.emitPipelined(client, count: 100)
        _ = try DeliveryTests.waitForRequests(sink, count: 20)
        for id in hooks { #expect(try client.request(["cmd": "delete_webhook", "webhook_id": .string(id)]).isOK) }
        let stats = try DeliveryTests.waitForStats(client) {
            $0[path: "deliveries", "pending"] == 0 && $0[path: "deliveries", "in_flight"] == 0
        }
        var endings: [String: Int] = [:]
        var cursor: String?
        repeat {
            var request: JSONObject = ["cmd": "list_requests", "limit": 1000]
            if let cursor { request["cursor"] = .string(cursor) }
            let page = try client.request(.object(request))
            for item in page["requests"]?.arrayValue ?? [] where item["outcome"] != "retrying" {
                let key = "\(item["webhook_id"]?.stringValue ?? "")/\(item["event_id"]?.stringValue ?? "")"
                endings[key, default: 0] += 1
            }
            cursor = page["next_cursor"]?.stringValue
        } while cursor != nil
        #expect(endings.count == 400)
        #expect(
            endings.values.allSatisfy { $0 == 1 }, "deliveries with two endings: \(endings.filter { $0.value > 1 })")
        let delivered = stats[path: "deliveries", "delivered"]?.intValue ?? -1
        let cancelled = stats[path: "deliveries", "cancelled"]?.intValue ?? -1
        #expect(delivered + cancelled == 400)
        #expect(delivered == sink.requests.count, "delivered \(delivered), POSTs \(sink.requests.count)")
    }

    /// Below --min-free-disk the store is not made to grow: emit_event and create_webhook
    /// answer unavailable, saying why; reads and other commands go on.
    @Test func aNearlyFullDiskRefusesGrowth() throws {
        let daemon = try Daemon(arguments: ["--min-free-disk", "100000TiB"])
        let client = try daemon.client()
        let emitted = try client.request(emit(statusEvent()))
        #expect(emitted.errorCode == "unavailable")
        #expect(emitted[path: "error", "message"]?.stringValue?.hasPrefix("disk nearly full: ") == true, "\(emitted)")
        #expect(try client.request(createRequest()).errorCode == "unavailable")
        #expect(try client.request(["cmd": "stats"])["events_accepted"] == 0)
        #expect(try client.request(["cmd": "list_webhooks"]).isOK)
        // Bad input is still answered as bad input.
        #expect(try client.request(["cmd": "emit_event"]).errorCode == "validation")
    }
}

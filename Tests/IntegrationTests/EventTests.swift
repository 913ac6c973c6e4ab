import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

func statusEvent(sender: String = "61400000009", status: String = "DELIVERED", type: String = "SMS_STATUS") -> JSON {
    let channel = String(type.prefix(while: { $0 != "_" }))
    return [
        "event_type": .string(type),
        "status": [
            "id": "msg-1", "type": .string(channel), "sender": .string(sender), "recipient": "447507222200",
            "status": .string(status), "message_ref": "order-42",
        ],
    ]
}

func emit(_ event: JSON, key: String? = nil, id: Int? = nil) -> JSON {
    var request: JSONObject = ["cmd": "emit_event", "event": event]
    if let key { request["idempotency_key"] = .string(key) }
    if let id { request["id"] = .integer(id) }
    return .object(request)
}

func webhookRequest(_ name: String, eventTypes: [String], senders: [String] = [], statuses: [String] = []) -> JSON {
    [
        "cmd": "create_webhook", "name": .string(name), "url": .string("https://example.com/\(name)"),
        "filter": [
            "event_type": .array(eventTypes.map { .string($0) }), "sender": .array(senders.map { .string($0) }),
            "status": .array(statuses.map { .string($0) }),
        ],
    ]
}

let badEvents: [(label: String, request: JSON, field: String)] = [
    ("event missing", ["cmd": "emit_event"], "event"),
    ("event not an object", ["cmd": "emit_event", "event": "SMS_STATUS"], "event"),
    ("event_type missing", emit(["status": ["id": "1"]]), "event.event_type"),
    ("event_type unknown", emit(["event_type": "FAX_STATUS", "status": [:]]), "event.event_type"),
    ("event_type not a string", emit(["event_type": 3, "status": [:]]), "event.event_type"),
    ("wrong body key", emit(["event_type": "SMS_STATUS", "mo": [:]]), "event.mo"),
    ("body missing", emit(["event_type": "SMS_STATUS"]), "event.status"),
    ("body not an object", emit(["event_type": "SMS_STATUS", "status": "DELIVERED"]), "event.status"),
    (
        "webhook_id supplied",
        emit(
            .object(
                statusEvent().objectValue!.merging(["webhook_id": "67e3e4af-62e8-4515-8b67-6f20d0c51ffb"]))),
        "event.webhook_id"
    ),
    (
        "webhook_name supplied", emit(.object(statusEvent().objectValue!.merging(["webhook_name": "x"]))),
        "event.webhook_name"
    ),
    ("unknown top-level field", emit(.object(statusEvent().objectValue!.merging(["colour": "red"]))), "event.colour"),
    ("bad timestamp", emit(.object(statusEvent().objectValue!.merging(["timestamp": "yesterday"]))), "event.timestamp"),
    (
        "timestamp not a string", emit(.object(statusEvent().objectValue!.merging(["timestamp": 1_700_000_000]))),
        "event.timestamp"
    ),
    (
        "status.recipient missing",
        emit(["event_type": "SMS_STATUS", "status": ["id": "1", "type": "SMS", "sender": "614", "status": "SENT"]]),
        "event.status.recipient"
    ),
    (
        "status.status not a string",
        emit([
            "event_type": "SMS_STATUS",
            "status": ["id": "1", "type": "SMS", "sender": "614", "recipient": "1", "status": 5],
        ]),
        "event.status.status"
    ),
    (
        "status.status empty",
        emit([
            "event_type": "SMS_STATUS",
            "status": ["id": "1", "type": "SMS", "sender": "614", "recipient": "1", "status": ""],
        ]),
        "event.status.status"
    ),
    ("channel mismatch", emit(statusEvent(type: "SMS_STATUS").replacingChannel("RCS")), "event.status.type"),
    (
        "mo.sender missing",
        emit(["event_type": "MMS_INBOUND", "mo": ["id": "1", "type": "MMS", "recipient": "61400000009"]]),
        "event.mo.sender"
    ),
    (
        "last_message.id missing",
        emit([
            "event_type": "SMS_INBOUND",
            "mo": [
                "id": "1", "type": "SMS", "sender": "447", "recipient": "614",
                "last_message": ["type": "SMS", "sender": "614", "recipient": "447"],
            ],
        ]),
        "event.mo.last_message.id"
    ),
    (
        "hits not an integer",
        emit([
            "event_type": "LINK_HIT",
            "link_hit": [
                "url": "https://x", "hits": "3",
                "source_message": ["id": "1", "type": "SMS", "sender": "614", "recipient": "447"],
            ],
        ]),
        "event.link_hit.hits"
    ),
    (
        "source_message.sender missing",
        emit([
            "event_type": "OPT_OUT",
            "opt_out": ["source": "SMS_INBOUND", "source_message": ["id": "1", "type": "SMS", "recipient": "447"]],
        ]),
        "event.opt_out.source_message.sender"
    ),
    (
        "source_message missing",
        emit(["event_type": "LINK_HIT", "link_hit": ["url": "https://x", "hits": 1]]),
        "event.link_hit.source_message"
    ),
    ("unknown envelope field", .object(emit(statusEvent()).objectValue!.merging(["priority": 1])), "priority"),
    ("idempotency_key empty", emit(statusEvent(), key: ""), "idempotency_key"),
]

extension JSONObject {
    func merging(_ other: JSONObject) -> JSONObject {
        var copy = self
        for (key, value) in other { copy[key] = value }
        return copy
    }
}

extension JSON {
    /// A status event with its `status.type` replaced.
    func replacingChannel(_ channel: String) -> JSON {
        guard var object = objectValue, var body = object["status"]?.objectValue else { return self }
        body["type"] = .string(channel)
        object["status"] = .object(body)
        return .object(object)
    }

    var int: Int? {
        if case .number(let n) = self, let value = n.int64Value { return Int(value) }
        return nil
    }
}

@Suite struct EventTests {
    @Test func everyBadEventShapeIsRefusedAndStoresNothing() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        _ = try client.request(webhookRequest("all", eventTypes: EventType.allCases.map(\.rawValue)))
        for bad in badEvents {
            let response = try client.request(bad.request)
            #expect(response.errorCode == "validation", "\(bad.label): \(response)")
            #expect(response.errorField == bad.field, "\(bad.label): \(response)")
            let message = response[path: "error", "message"]?.stringValue ?? ""
            #expect(message.hasPrefix(bad.field + ":"), "\(bad.label): \(message)")
        }
        let stats = try client.request(["cmd": "stats"])
        #expect(stats["events_accepted"] == 0, "\(stats)")
        #expect(stats[path: "deliveries", "pending"] == 0, "\(stats)")
    }

    @Test func oversizedEventIsPayloadTooLarge() throws {
        let daemon = try Daemon(arguments: ["--max-event-bytes", "1KiB"])
        let client = try daemon.client()
        var event = statusEvent().objectValue!
        var body = event["status"]!.objectValue!
        body["description"] = .string(String(repeating: "x", count: 2000))
        event["status"] = .object(body)
        let response = try client.request(emit(.object(event), id: 9))
        #expect(response.errorCode == "payload_too_large", "\(response)")
        #expect(response["id"] == 9)
        #expect(try client.request(emit(statusEvent()))["ok"] == true, "a small event still goes through")
        let stats = try client.request(["cmd": "stats"])
        #expect(stats["events_accepted"] == 1)
    }

    /// A webhook change is visible to the very next emit, on another connection once
    /// answered, and on the same connection even when pipelined behind it.
    @Test func emitSeesEveryWebhookChangeAtOnce() throws {
        let daemon = try Daemon()
        let admin = try daemon.client()
        let producer = try daemon.client()
        func deliveries(_ event: JSON) throws -> Int? { try producer.request(emit(event))["deliveries"]?.int }

        #expect(try deliveries(statusEvent()) == 0)
        let created = try admin.request(
            webhookRequest("status", eventTypes: ["SMS_STATUS"], senders: ["+61 400 000 009"]))
        let id = try #require(created[path: "webhook", "id"])
        #expect(try deliveries(statusEvent()) == 1)
        #expect(try deliveries(statusEvent(sender: "61400000001")) == 0)

        _ = try admin.request([
            "cmd": "update_webhook", "webhook_id": id, "name": "status", "url": "https://example.com/s",
            "filter": ["event_type": ["SMS_STATUS"], "status": ["failed"]],
        ])
        #expect(try deliveries(statusEvent()) == 0)
        #expect(try deliveries(statusEvent(sender: "61400000001", status: "FAILED")) == 1)

        _ = try admin.request(["cmd": "disable_webhook", "webhook_id": id])
        #expect(try deliveries(statusEvent(status: "FAILED")) == 0)
        _ = try admin.request(["cmd": "enable_webhook", "webhook_id": id])
        #expect(try deliveries(statusEvent(status: "FAILED")) == 1)

        _ = try admin.request(["cmd": "delete_webhook", "webhook_id": id])
        #expect(try deliveries(statusEvent(status: "FAILED")) == 0)

        // Pipelined on one connection: create, then emit, without waiting.
        try admin.send(webhookRequest("pipelined", eventTypes: ["MMS_STATUS"]))
        try admin.send(emit(statusEvent(type: "MMS_STATUS")))
        #expect(try admin.readResponse().isOK)
        #expect(try admin.readResponse()["deliveries"] == 1)

        // The deleted webhook's deliveries are cancelled in the background.
        let stats = try DeliveryTests.waitForStats(admin) { $0[path: "deliveries", "cancelled"] == 3 }
        #expect(stats["events_accepted"] == 9, "\(stats)")
        // Delivery runs meanwhile: the one live delivery is pending or in flight.
        #expect(
            (stats[path: "deliveries", "pending"]?.int ?? 0) + (stats[path: "deliveries", "in_flight"]?.int ?? 0) == 1,
            "\(stats)")
    }

    @Test func idempotencyKeyAnswersTheFirstEvent() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        #expect(try client.request(webhookRequest("orders", eventTypes: ["SMS_STATUS"])).isOK)
        let first = try client.request(emit(statusEvent(), key: "order-42-delivered"))
        let again = try client.request(emit(statusEvent(), key: "order-42-delivered"))
        #expect(first["event_id"] != nil)
        #expect(first["deliveries"] == 1)
        #expect(again["event_id"] == first["event_id"])
        #expect(again["deliveries"] == 1)
        let other = try client.request(emit(statusEvent(), key: "another"))
        #expect(other["event_id"] != first["event_id"])
        #expect(try client.request(["cmd": "stats"])["events_accepted"] == 2)
    }

    /// kill -9 in the middle of a pipelined stream: every event answered `ok` is there
    /// after a restart, with its delivery, and nothing was invented.
    @Test func kill9DuringPipelinedEmitsLosesNoAcknowledgedEvent() throws {
        let directory = try TemporaryDirectory()
        var daemon = try Daemon(directory: directory)
        let client = try daemon.client()
        let created = try client.request(webhookRequest("all", eventTypes: ["SMS_STATUS"]))
        #expect(created.isOK)

        let total = 30_000
        // The writer sends on the same socket while this thread reads the answers.
        let fd = client.fd
        let writer = Thread {
            var batch: [UInt8] = []
            for i in 0..<total {
                batch += JSONWriter.bytes(emit(statusEvent(), key: "k-\(i)", id: i)) + [0x0A]
                if batch.count > 256 * 1024 || i == total - 1 {
                    var offset = 0
                    while offset < batch.count {
                        let written = batch[offset...].withUnsafeBytes {
                            send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                        }
                        if written <= 0 { return }  // the daemon was killed
                        offset += written
                    }
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
        writer.start()

        var acknowledged: [Int: String] = [:]
        while acknowledged.count < 3000 {
            let response = try client.readResponse()
            let id = try #require(response["id"]?.int, "\(response)")
            #expect(id == acknowledged.count, "answers come in order")
            acknowledged[id] = try #require(response["event_id"]?.stringValue, "\(response)")
        }
        try daemon.kill9()
        // Whatever else was answered before the kill landed counts as acknowledged too.
        while let line = try? client.readLine(timeout: 2), let response = try? JSONParser.parse(line) {
            if let id = response["id"]?.int, let eventID = response["event_id"]?.stringValue {
                acknowledged[id] = eventID
            }
        }

        daemon = try Daemon(directory: directory)
        let checker = try daemon.client()
        let before = try checker.request(["cmd": "stats"])
        let accepted = try #require(before["events_accepted"]?.int)
        #expect(accepted >= acknowledged.count, "every acknowledged event is stored")
        #expect(accepted <= total, "no event invented")
        let waiting =
            (before[path: "deliveries", "pending"]?.int ?? 0) + (before[path: "deliveries", "in_flight"]?.int ?? 0)
        #expect(waiting == accepted, "each stored event has its delivery, pending or in flight")

        // Re-emitting an acknowledged event's idempotency key answers its original id.
        var batch: [UInt8] = []
        let ids = acknowledged.keys.sorted()
        for i in ids { batch += JSONWriter.bytes(emit(statusEvent(), key: "k-\(i)", id: i)) + [0x0A] }
        try checker.send(bytes: batch)
        for i in ids {
            let response = try checker.readResponse()
            #expect(response["id"]?.int == i)
            #expect(response["event_id"]?.stringValue == acknowledged[i], "event \(i) survived with its id")
        }
        let after = try checker.request(["cmd": "stats"])
        #expect(after["events_accepted"]?.int == accepted, "replays create nothing")
        #expect(try daemon.stop() == 0)
    }
}

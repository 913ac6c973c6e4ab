import Foundation
import HookgateCore
import Testing

/// Input shaped to hurt: lines that are expensive to parse, text with NUL in it, times at
/// the calendar's edges, cursors hookgate never wrote. Each is answered exactly and
/// quickly, and changes nothing it should not.
@Suite struct HostileInputTests {
    /// `prefix` (which leaves three objects open), `count` members, and the closing braces.
    private static func wideObjectLine(prefix: String, count: Int) -> [UInt8] {
        var line = Array(prefix.utf8)
        line.reserveCapacity(count * 16)
        for i in 0..<count {
            if i > 0 { line.append(UInt8(ascii: ",")) }
            line += Array(#""k\#(i)":\#(i)"#.utf8)
        }
        line += Array("}}}\n".utf8)
        return line
    }

    /// A 1 MiB line holding 60,000 object members froze the daemon for 100 s while another
    /// connection waited. Wide objects at the top level and inside an event's body are
    /// parsed in one pass, and a line of more values than any request needs is refused,
    /// while a second client's pings are answered.
    @Test func wideObjectsDoNotStallOtherConnections() throws {
        let daemon = try Daemon(arguments: ["--max-event-bytes", "1MiB", "--max-line-bytes", "2MiB"])
        let hostile = try daemon.client()
        let bystander = try daemon.client()

        var topLevel = Array(#"{"cmd":"ping","id":1,"pad":{"a":0}"#.utf8)
        for i in 0..<45_000 { topLevel += Array(#","k\#(i)":0"#.utf8) }
        topLevel += Array("}\n".utf8)
        try hostile.send(bytes: topLevel)
        #expect(try bystander.request(["cmd": "ping", "id": "b1"]).isOK)
        let refused = try hostile.readResponse(timeout: 30)
        #expect(refused.errorCode == "validation", "\(refused)")
        #expect(refused.errorField == "pad")

        let event = Self.wideObjectLine(
            prefix:
                #"{"cmd":"emit_event","id":2,"event":{"event_type":"LINK_HIT","link_hit":{"url":"https://x.example","hits":1,"source_message":{"id":"m","type":"SMS","sender":"a","recipient":"b"},"#,
            count: 45_000)
        try hostile.send(bytes: event)
        #expect(try bystander.request(["cmd": "ping", "id": "b2"]).isOK)
        let accepted = try hostile.readResponse(timeout: 30)
        #expect(accepted.isOK, "\(accepted)")
        #expect(accepted["id"] == 2)

        let tooMany = Self.wideObjectLine(prefix: #"{"cmd":"ping","pad":{"a":{"#, count: 70_000)
        #expect(tooMany.count > 900_000)
        try hostile.send(bytes: tooMany)
        #expect(try bystander.request(["cmd": "ping", "id": "b3"]).isOK)
        let overLimit = try hostile.readResponse(timeout: 30)
        #expect(overLimit.errorCode == "bad_json", "\(overLimit)")
        #expect(overLimit[path: "error", "message"] == "invalid JSON: more than 50000 values in one line")
    }

    /// A line over --max-event-bytes whose cmd carries an event is refused by its size,
    /// with its id, before it is parsed: even when it would not parse at all.
    @Test func oversizedEventLinesAreRefusedBeforeParsing() throws {
        let daemon = try Daemon(arguments: ["--max-event-bytes", "1KiB"])
        let client = try daemon.client()
        let padding = String(repeating: "x", count: 2000)
        let lines: [(String, JSON?)] = [
            (#"{"id":"big","cmd":"emit_event","event":{"pad":"\#(padding)"}}"#, JSON.string("big")),
            (#"{"cmd":"match_event","id":9,"event":{"pad":"\#(padding)"}"#, JSON.integer(9)),
            (#"{"cmd":"emit_event","event":{"pad":"\#(padding)",}}"#, nil),
        ]
        for (line, id) in lines {
            try client.send(line: line)
            let response = try client.readResponse()
            #expect(response.errorCode == "payload_too_large", "\(response)")
            #expect(response.errorField == "event")
            #expect(response["id"] == id)
        }
        // A large line of another command is parsed and judged as usual.
        try client.send(line: #"{"cmd":"ping","pad":"\#(padding)"}"#)
        #expect(try client.readResponse().errorField == "pad")
        try client.send(line: #"{"cmd":"ping","pad":"\#(padding)""#)
        #expect(try client.readResponse().errorCode == "bad_json")
    }

    /// Text holding U+0000 is stored whole: names come back byte for byte, and
    /// idempotency keys that differ only after a NUL are different keys.
    @Test func textWithNULRoundTrips() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        let name = "Hook\u{0}with NUL"
        let created = try client.request(createRequest(name: name))
        let id = try #require(created[path: "webhook", "id"]?.stringValue)
        #expect(created[path: "webhook", "name"] == .string(name))
        let fetched = try client.request(["cmd": "get_webhook", "webhook_id": .string(id)])
        #expect(fetched[path: "webhook", "name"] == .string(name))

        var eventIDs: [String: String] = [:]
        for key in ["key\u{0}A", "key\u{0}B", "key", "key\u{0}"] {
            let response = try client.request(emit(statusEvent(), key: key))
            eventIDs[key] = try #require(response["event_id"]?.stringValue, "\(response)")
        }
        #expect(Set(eventIDs.values).count == 4, "\(eventIDs)")
        for key in ["key\u{0}A", "key\u{0}B", "key", "key\u{0}"] {
            #expect(try client.request(emit(statusEvent(), key: key))["event_id"]?.stringValue == eventIDs[key])
        }
        let stats = try client.request(["cmd": "stats"])
        #expect(stats["events_accepted"] == 4)

        try daemon.stop()
        let restarted = try Daemon(directory: daemon.directory)
        let again = try restarted.client()
        #expect(
            try again.request(["cmd": "get_webhook", "webhook_id": .string(id)])[path: "webhook", "name"]
                == .string(name))
        #expect(
            try again.request(emit(statusEvent(), key: "key\u{0}B"))["event_id"]?.stringValue == eventIDs["key\u{0}B"])
    }

    /// Times whose UTC form falls outside the years 0001 to 9999 cannot be written back as
    /// RFC 3339: they are refused, and nothing is stored. The edges themselves are kept.
    @Test func timestampsOutsideFourDigitYearsAreRefused() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        for text in ["0000-01-01T00:00:00+23:59", "9999-12-31T23:59:60Z", "0001-01-01T00:00:00+00:01"] {
            guard case .object(var event) = statusEvent() else { return }
            event["timestamp"] = .string(text)
            let response = try client.request(emit(.object(event)))
            #expect(response.errorCode == "validation", "\(text): \(response)")
            #expect(response.errorField == "event.timestamp")
            let listed = try client.request(["cmd": "list_requests", "since": .string(text)])
            #expect(listed.errorField == "since", "\(listed)")
        }
        #expect(try client.request(["cmd": "stats"])["events_accepted"] == 0)
        for text in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            guard case .object(var event) = statusEvent() else { return }
            event["timestamp"] = .string(text)
            #expect(try client.request(emit(.object(event))).isOK)
        }
    }

    /// Only the cursors hookgate wrote are taken back: a sign, a leading zero or a zero
    /// in front of a real position is `validation`.
    @Test func forgedCursorsAreRefused() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        for i in 0..<3 { try client.request(createRequest(name: "Hook \(i)")) }
        let first = try client.request(["cmd": "list_webhooks", "limit": 1])
        let cursor = try #require(first["next_cursor"]?.stringValue)
        #expect(try client.request(["cmd": "list_webhooks", "limit": 1, "cursor": .string(cursor)]).isOK)
        let digits = cursor.dropFirst()
        for forged in ["w+\(digits)", "w0\(digits)", "w00", "w0", "r+1", "r01", "r0", "w\(digits) ", "w-\(digits)"] {
            for cmd in ["list_webhooks", "list_requests"] {
                let response = try client.request(["cmd": .string(cmd), "cursor": .string(forged)])
                #expect(response.errorCode == "validation", "\(cmd) \(forged): \(response)")
                #expect(response.errorField == "cursor")
            }
        }
    }
}

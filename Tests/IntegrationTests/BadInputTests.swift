import Foundation
import HookgateCore
import Testing

/// A line that must be refused, with the error it must get.
struct BadLine: CustomStringConvertible, Sendable {
    let label: String
    let bytes: [UInt8]
    let code: String
    let field: String?

    init(_ label: String, _ line: String, _ code: String, field: String? = nil) {
        self.label = label
        self.bytes = Array(line.utf8)
        self.code = code
        self.field = field
    }

    init(_ label: String, bytes: [UInt8], _ code: String, field: String? = nil) {
        self.label = label
        self.bytes = bytes
        self.code = code
        self.field = field
    }

    var description: String { label }
}

private func create(_ fields: String) -> String {
    #"{"cmd":"create_webhook","#
        + #""name":"Hook","url":"https://example.com/h","filter":{"event_type":["SMS_STATUS"]}"#
        + (fields.isEmpty ? "" : "," + fields) + "}"
}

private func createWith(name: String = #""Hook""#, url: String? = #""https://example.com/h""#, rest: String = "")
    -> String
{
    var parts = [#""cmd":"create_webhook""#, #""name":\#(name)"#]
    if let url { parts.append(#""url":\#(url)"#) }
    parts.append(#""filter":{"event_type":["SMS_STATUS"]}"#)
    if !rest.isEmpty { parts.append(rest) }
    return "{" + parts.joined(separator: ",") + "}"
}

let badLines: [BadLine] = [
    BadLine("name of 1 character", createWith(name: #""H""#), "validation", field: "name"),
    BadLine(
        "name of 101 characters", createWith(name: "\"" + String(repeating: "n", count: 101) + "\""), "validation",
        field: "name"),
    BadLine("name not a string", createWith(name: "42"), "validation", field: "name"),
    BadLine("url missing", createWith(url: nil), "validation", field: "url"),
    BadLine("url relative", createWith(url: #""/hooks/sms""#), "validation", field: "url"),
    BadLine("url ftp", createWith(url: #""ftp://example.com/h""#), "validation", field: "url"),
    BadLine("url ftp without slashes", createWith(url: #""ftp:example.com""#), "validation", field: "url"),
    BadLine("url without host", createWith(url: #""https:///path""#), "validation", field: "url"),
    BadLine("url http", createWith(url: #""http://example.com/h""#), "validation", field: "url"),
    BadLine("rate_limit -1", create(#""rate_limit":-1"#), "validation", field: "rate_limit"),
    BadLine("rate_limit 10001", create(#""rate_limit":10001"#), "validation", field: "rate_limit"),
    BadLine("rate_limit 1.5", create(#""rate_limit":1.5"#), "validation", field: "rate_limit"),
    BadLine("rate_limit string", create(#""rate_limit":"10""#), "validation", field: "rate_limit"),
    BadLine(
        "filter.event_type empty",
        #"{"cmd":"create_webhook","name":"Hook","url":"https://example.com/h","filter":{"event_type":[]}}"#,
        "validation", field: "filter.event_type"),
    BadLine(
        "filter.event_type absent",
        #"{"cmd":"create_webhook","name":"Hook","url":"https://example.com/h"}"#,
        "validation", field: "filter.event_type"),
    BadLine(
        "filter.event_type unknown type",
        #"{"cmd":"create_webhook","name":"Hook","url":"https://example.com/h","filter":{"event_type":["SMS_STATUS","FAX_STATUS"]}}"#,
        "validation", field: "filter.event_type[1]"),
    BadLine(
        "filter.sender non-string",
        #"{"cmd":"create_webhook","name":"Hook","url":"https://example.com/h","filter":{"event_type":["SMS_STATUS"],"sender":["614",5]}}"#,
        "validation", field: "filter.sender[1]"),
    BadLine(
        "filter.status not an array",
        #"{"cmd":"create_webhook","name":"Hook","url":"https://example.com/h","filter":{"event_type":["SMS_STATUS"],"status":"DELIVERED"}}"#,
        "validation", field: "filter.status"),
    BadLine("unknown top-level field", create(#""colour":"blue""#), "validation", field: "colour"),
    BadLine(
        "unknown filter field",
        #"{"cmd":"create_webhook","name":"Hook","url":"https://example.com/h","filter":{"event_type":["SMS_STATUS"],"recipient":["1"]}}"#,
        "validation", field: "filter.recipient"),
    BadLine("deprecated event_type unknown", create(#""event_type":"NOPE""#), "validation", field: "event_type"),
    BadLine("is_sandbox not boolean", create(#""is_sandbox":"yes""#), "validation", field: "is_sandbox"),
    BadLine(
        "get_webhook malformed id", #"{"cmd":"get_webhook","webhook_id":"123"}"#, "validation", field: "webhook_id"),
    BadLine("get_webhook id missing", #"{"cmd":"get_webhook"}"#, "validation", field: "webhook_id"),
    BadLine(
        "get_webhook unknown field", #"{"cmd":"get_webhook","webhook_id":"x","verbose":true}"#, "validation",
        field: "verbose"),
    BadLine(
        "get_webhook unknown id", #"{"cmd":"get_webhook","webhook_id":"00000000-0000-4000-8000-000000000000"}"#,
        "not_found", field: "webhook_id"),
    BadLine(
        "update unknown id",
        #"{"cmd":"update_webhook","webhook_id":"00000000-0000-4000-8000-000000000000","name":"Hook","url":"https://example.com/h","filter":{"event_type":["SMS_STATUS"]}}"#,
        "not_found", field: "webhook_id"),
    BadLine("ping with unknown field", #"{"cmd":"ping","extra":1}"#, "validation", field: "extra"),
    BadLine("malformed JSON", #"{"cmd":"ping""#, "bad_json"),
    BadLine("not JSON at all", "hello", "bad_json"),
    BadLine("trailing garbage", #"{"cmd":"ping"} x"#, "bad_json"),
    BadLine("duplicate key", #"{"cmd":"ping","cmd":"ping"}"#, "bad_json"),
    BadLine(
        "invalid UTF-8", bytes: Array(#"{"cmd":"ping","id":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8), "bad_json"),
    BadLine("invalid UTF-8 outside strings", bytes: [0xFF, 0xFE], "bad_json"),
    BadLine("deep nesting", String(repeating: "[", count: 100_000), "bad_json"),
    BadLine("array", "[1,2,3]", "bad_request"),
    BadLine("string", #""ping""#, "bad_request"),
    BadLine("number", "42", "bad_request"),
    BadLine("cmd missing", #"{"id":1}"#, "bad_request", field: "cmd"),
    BadLine("cmd not a string", #"{"cmd":7}"#, "bad_request", field: "cmd"),
    BadLine("unknown cmd", #"{"cmd":"explode"}"#, "unknown_command", field: "cmd"),
]

@Suite struct BadInputTests {
    /// Every bad line gets its own error code and field on one connection, which keeps
    /// working, and none of them changes the registry.
    @Test func everyBadLineGetsItsErrorAndChangesNothing() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        for bad in badLines {
            try client.send(bytes: bad.bytes + [0x0A])
            let response = try client.readResponse()
            #expect(response["ok"] == false, "\(bad.label): \(response)")
            #expect(response.errorCode == bad.code, "\(bad.label): \(response)")
            #expect(response.errorField == bad.field, "\(bad.label): \(response)")
            let message = response[path: "error", "message"]?.stringValue ?? ""
            #expect(!message.isEmpty, "\(bad.label)")
            if let field = bad.field, bad.code == "validation" {
                #expect(message.hasPrefix(field + ":"), "\(bad.label): message names the field: \(message)")
            }
        }
        let pong = try client.request(["cmd": "ping", "id": "still-alive"])
        #expect(pong.isOK)
        #expect(pong["id"] == "still-alive")
        let list = try client.request(["cmd": "list_webhooks"])
        #expect(list["webhooks"] == [], "bad input created nothing: \(list)")
        #expect(try daemon.stop() == 0)
    }

    @Test func errorsEchoTheRequestID() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        let unknown = try client.request(["cmd": "explode", "id": "abc"])
        #expect(unknown["id"] == "abc")
        let numeric = try client.request(["cmd": "get_webhook", "id": 12, "webhook_id": "x"])
        #expect(numeric["id"] == 12)
        #expect(numeric.errorField == "webhook_id")
        let objectID = try client.request(["cmd": "ping", "id": ["nested": true]])
        #expect(objectID.errorCode == "validation")
        #expect(objectID.errorField == "id")
        #expect(objectID["id"] == nil)
    }

    @Test func overlongLineGetsLineTooLongThenClose() throws {
        let daemon = try Daemon(arguments: ["--max-line-bytes", "1024"])
        let client = try daemon.client()
        try client.send(line: #"{"cmd":"ping","id":1}"#)
        try client.send(bytes: Array(repeating: UInt8(ascii: "x"), count: 5000))
        let first = try client.readResponse()
        #expect(first["id"] == 1)
        let second = try client.readResponse()
        #expect(second.errorCode == "line_too_long")
        #expect(try client.readLine() == nil, "connection closed after line_too_long")
        // The daemon itself is fine.
        #expect(try daemon.client().request(["cmd": "ping"]).isOK)
    }

    @Test func maxLineBytesFromTheEnvironment() throws {
        let daemon = try Daemon(environment: ["HOOKGATE_MAX_LINE_BYTES": "100"])
        let client = try daemon.client()
        try client.send(line: #"{"cmd":"ping","id":""# + String(repeating: "a", count: 200) + #""}"#)
        #expect(try client.readResponse().errorCode == "line_too_long")
    }

    @Test func halfClosedClientStillGetsEveryAnswer() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        try client.send(line: #"{"cmd":"ping","id":1}"#)
        try client.send(bytes: Array(createWith().utf8) + [0x0A])
        // No newline on the last line: at end of input it is still a request.
        try client.send(bytes: Array(#"{"cmd":"list_webhooks","id":3}"#.utf8))
        client.shutdownWrite()
        #expect(try client.readResponse()["id"] == 1)
        #expect(try client.readResponse().isOK)
        let list = try client.readResponse()
        #expect(list["id"] == 3)
        #expect(list["webhooks"]?.arrayValue?.count == 1)
        #expect(try client.readLine() == nil)
    }

    @Test func blankLinesAreIgnored() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        try client.send(bytes: Array("\n\r\n   \n".utf8))
        try client.send(line: #"{"cmd":"ping","id":"after-blanks"}"#)
        #expect(try client.readResponse()["id"] == "after-blanks")
    }
}

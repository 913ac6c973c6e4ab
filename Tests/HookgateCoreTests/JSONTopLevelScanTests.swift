import HookgateCore
import Testing

@Suite("JSON top-level scan")
struct JSONTopLevelScanTests {
    /// (line, what the scan must find for "cmd" and "id"): only top-level members, only
    /// string and number values, whatever stands around them.
    static let cases: [(String, [String: JSON])] = [
        (#"{"cmd":"emit_event","id":7}"#, ["cmd": "emit_event", "id": 7]),
        (#"{ "id" : "a\"b" , "cmd" : "ping" }"#, ["cmd": "ping", "id": .string("a\"b")]),
        (#"{"event":{"cmd":"inner","id":1},"cmd":"emit_event"}"#, ["cmd": "emit_event"]),
        (
            #"{"event":[{"cmd":"x"},"cmd"],"cmd":"match_event","id":-1.5e3}"#,
            ["cmd": "match_event", "id": try! JSONParser.parse("-1.5e3")]
        ),
        (#"{"a":"}","cmd":"x"}"#, ["cmd": "x"]),
        (#"{"a":"\\","cmd":"x"}"#, ["cmd": "x"]),
        (#"{"cmd":true,"id":null}"#, [:]),
        (#"{"cmd":{"x":1},"id":[1]}"#, [:]),
        (#"{"cmd":"first","cmd":"second"}"#, ["cmd": "first"]),
        (#"{"xcmd":"a","cmdx":"b"}"#, [:]),
        (#"["cmd","emit_event"]"#, [:]),
        (#""cmd""#, [:]),
        (#"{"cmd":"emit_event","event":{"#, ["cmd": "emit_event"]),
        (#"{"cmd":"emit"#, [:]),
        ("", [:]),
        ("{", [:]),
        (#"{"cmd":"\u00e9"}"#, ["cmd": "é"]),
    ]

    @Test(arguments: cases)
    func findsTopLevelScalars(_ line: String, _ expected: [String: JSON]) {
        var bytes = Array(line.utf8)
        let found = bytes.withUnsafeMutableBytes {
            JSONTopLevelScan.scalars(of: ["cmd", "id"], in: UnsafeRawBufferPointer($0))
        }
        #expect(found == expected)
    }
}

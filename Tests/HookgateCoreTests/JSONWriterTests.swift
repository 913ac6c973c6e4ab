import HookgateCore
import Testing

/// A value and the exact line the writer must produce for it.
struct WrittenForm: Sendable, CustomTestStringConvertible {
    let value: JSON
    let text: String

    init(_ value: JSON, _ text: String) {
        self.value = value
        self.text = text
    }

    var testDescription: String { text }
}

@Suite("JSONWriter")
struct JSONWriterTests {
    static let stringEscapes: [WrittenForm] = [
        WrittenForm("", #""""#),
        WrittenForm("plain", #""plain""#),
        WrittenForm("a\"b", #""a\"b""#),
        WrittenForm("back\\slash", #""back\\slash""#),
        WrittenForm("\n", #""\n""#),
        WrittenForm("\r", #""\r""#),
        WrittenForm("\t", #""\t""#),
        WrittenForm("line1\r\nline2", #""line1\r\nline2""#),
        WrittenForm(.string("\u{08}"), #""\u0008""#),
        WrittenForm(.string("\u{0C}"), #""\u000c""#),
        WrittenForm(.string("\u{0}"), #""\u0000""#),
        WrittenForm(.string("\u{1}\u{1F}"), #""\u0001\u001f""#),
        WrittenForm(.string("\u{1B}[0m"), #""\u001b[0m""#),
        WrittenForm("/", #""/""#),
        WrittenForm(.string("\u{7F}"), "\"\u{7F}\""),
        WrittenForm("é€😀", "\"é€😀\""),
        WrittenForm(.string("\u{2028}\u{2029}"), "\"\u{2028}\u{2029}\""),
        WrittenForm("'single'", #""'single'""#),
    ]

    @Test(arguments: stringEscapes)
    func escapesStrings(_ form: WrittenForm) {
        #expect(JSONWriter.string(form.value) == form.text)
        #expect(JSONWriter.bytes(form.value) == Array(form.text.utf8))
    }

    static let documents: [WrittenForm] = [
        WrittenForm(.null, "null"),
        WrittenForm(true, "true"),
        WrittenForm(false, "false"),
        WrittenForm(0, "0"),
        WrittenForm(-42, "-42"),
        WrittenForm(.integer(Int64.min), "-9223372036854775808"),
        WrittenForm([], "[]"),
        WrittenForm([:], "{}"),
        WrittenForm([1, "a", nil, false, [], [:]], #"[1,"a",null,false,[],{}]"#),
        WrittenForm(.object(JSONObject([("z", 1), ("a", 2), ("m", 3)])), #"{"z":1,"a":2,"m":3}"#),
        WrittenForm(["a\"b": ["c\nd": "e\\f"]], #"{"a\"b":{"c\nd":"e\\f"}}"#),
        WrittenForm(["k": [["x": nil]]], #"{"k":[{"x":null}]}"#),
    ]

    @Test(arguments: documents)
    func writesCompactly(_ form: WrittenForm) {
        #expect(JSONWriter.string(form.value) == form.text)
    }

    @Test func writeAppendsToExistingBytes() {
        var out = Array("prefix:".utf8)
        JSONWriter.write(["a": [1, 2]], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"prefix:{"a":[1,2]}"#)

        var string: [UInt8] = []
        JSONWriter.writeString("x\ty", into: &string)
        #expect(String(decoding: string, as: UTF8.self) == #""x\ty""#)
    }

    @Test func everyControlCharacterIsEscapedAndNoRawLineBreakIsWritten() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) }))
        let bytes = JSONWriter.bytes(["k\n": .string(controls)])
        #expect(!bytes.contains(0x0A))
        #expect(!bytes.contains(0x0D))
        #expect(!bytes.contains { $0 < 0x20 })
        #expect(try JSONParser.parse(bytes) == ["k\n": .string(controls)])
    }

    // MARK: round trips

    static let roundTripValues: [JSON] = [
        .null, true, false, 0, 1, -1, .integer(Int64.max), .integer(Int64.min),
        "", "text", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}",
        "é€😀𝄞 \u{10FFFF}", [], [:], [[[[]]]], [1, [2, [3, [4]]]],
        [
            "event_type": "SMS_STATUS", "timestamp": "2025-04-23T00:05:18.567890Z",
            "status": ["id": "e48d3e71", "type": "SMS", "sender": "+61400000000", "tags": ["a", "b"], "n": nil],
        ],
        .object(JSONObject([("b", 1), ("a", [true, nil]), ("\u{0}", "nul key")])),
    ]

    @Test(arguments: roundTripValues)
    func parseOfWriteIsTheSameValue(_ value: JSON) throws {
        let written = JSONWriter.bytes(value)
        let parsed = try JSONParser.parse(written)
        #expect(parsed == value)
        // Same bytes again: key order and number text survive the trip.
        #expect(JSONWriter.bytes(parsed) == written)
    }

    @Test(arguments: [
        "null", "[]", "{}", "-0", "1.50", "1E+2", "-12.5e-3", "12345678901234567890123",
        #"{"z":{"y":[1,2.0,"3"]},"a":null}"#,
        #"["\"\\\n\r\t\u0000\u001f","/","é😀"]"#,
        #"{"event_type":"SMS_STATUS","status":{"id":"x","type":"SMS","status":"DELIVERED"}}"#,
    ])
    func writeOfParseReproducesCompactText(_ text: String) throws {
        #expect(JSONWriter.string(try JSONParser.parse(text)) == text)
    }

    @Test func escapedInputIsWrittenInCanonicalForm() throws {
        let value = try JSONParser.parse(#" [ "\u0041\/\b\f" , { "k" : 1 } ] "#)
        #expect(JSONWriter.string(value) == #"["A/\u0008\u000c",{"k":1}]"#)
    }
}

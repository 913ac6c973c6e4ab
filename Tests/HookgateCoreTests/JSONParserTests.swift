import HookgateCore
import Testing

/// A document the parser must accept, and the value it must produce.
struct ValidDocument: Sendable, CustomTestStringConvertible {
    let text: String
    let expected: JSON

    init(_ text: String, _ expected: JSON) {
        self.text = text
        self.expected = expected
    }

    var testDescription: String { text.debugDescription }
}

/// Bytes the parser must refuse, and the kind of refusal.
struct InvalidDocument: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let kind: JSONParseError.Kind

    init(_ label: String, _ text: String, _ kind: JSONParseError.Kind) {
        self.label = label
        self.bytes = Array(text.utf8)
        self.kind = kind
    }

    init(_ label: String, bytes: [UInt8], _ kind: JSONParseError.Kind) {
        self.label = label
        self.bytes = bytes
        self.kind = kind
    }

    var testDescription: String { label }
}

private func nested(_ depth: Int, open: String = "[", close: String = "]", inner: String = "") -> String {
    String(repeating: open, count: depth) + inner + String(repeating: close, count: depth)
}

@Suite("JSONParser")
struct JSONParserTests {
    // MARK: valid documents

    static let validDocuments: [ValidDocument] = [
        ValidDocument("null", .null),
        ValidDocument("true", true),
        ValidDocument("false", false),
        ValidDocument("0", 0),
        ValidDocument("-0", 0),
        ValidDocument("42", 42),
        ValidDocument("-17", -17),
        ValidDocument("9223372036854775807", .integer(Int64.max)),
        ValidDocument("-9223372036854775808", .integer(Int64.min)),
        ValidDocument("\"\"", ""),
        ValidDocument("\"abc\"", "abc"),
        ValidDocument("[]", []),
        ValidDocument("{}", [:]),
        ValidDocument(" \t\r\n[ 1 , \"a\" , null , true ]\r\n ", [1, "a", nil, true]),
        ValidDocument("[[],[[]],{}]", [[], [[]], [:]]),
        ValidDocument(#"{"a":{"b":[true,false,null]},"c":"d"}"#, ["a": ["b": [true, false, nil]], "c": "d"]),
        ValidDocument(#"{ "a" : 1 , "b" : [ ] }"#, ["a": 1, "b": []]),
        // Escapes.
        ValidDocument(#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{08}\u{0C}\n\r\t")),
        ValidDocument(#""\u0041\u00e9\u20AC""#, "Aé€"),
        ValidDocument(#""\u0000""#, .string("\u{0}")),
        ValidDocument(#""\u001f\u007F""#, .string("\u{1F}\u{7F}")),
        ValidDocument(#""a\nb😀c""#, "a\nb😀c"),
        ValidDocument(#""x\\""#, "x\\"),
        // Surrogate pairs, upper and lower case hex.
        ValidDocument(#""\uD83D\uDE00""#, "😀"),
        ValidDocument(#""\ud834\udd1e""#, "𝄞"),
        ValidDocument(#""\uDBFF\uDFFF""#, .string("\u{10FFFF}")),
        ValidDocument(#""a\uD800\uDC00b""#, .string("a\u{10000}b")),
        // Raw UTF-8 and DEL pass through.
        ValidDocument("\"héllo wörld 😀 日本\"", "héllo wörld 😀 日本"),
        ValidDocument("\"\u{7F}\"", .string("\u{7F}")),
        // Escaped keys.
        ValidDocument(#"{"\u0061b":1,"c\"d":2}"#, ["ab": 1, "c\"d": 2]),
        ValidDocument(#"{"":0}"#, ["": 0]),
    ]

    @Test(arguments: validDocuments)
    func parsesValidDocument(_ document: ValidDocument) throws {
        let value = try JSONParser.parse(document.text)
        #expect(value == document.expected)
    }

    @Test(arguments: validDocuments)
    func parsesTheSameFromBytesAndFromANonContiguousCollection(_ document: ValidDocument) throws {
        let bytes = Array(document.text.utf8)
        #expect(try JSONParser.parse(bytes) == document.expected)
        #expect(try JSONParser.parse(bytes[...]) == document.expected)
        // A lazy map has no contiguous storage: the parser must copy it.
        let lazy = bytes.indices.lazy.map { bytes[$0] }
        #expect(try JSONParser.parse(lazy) == document.expected)
    }

    @Test(arguments: [
        "0", "-0", "1.50", "1.0", "0.000", "1E+2", "1e2", "1e-7", "-12.5e-3", "2E0",
        "12345678901234567890123", "1e400", "0.1", "-0.0",
    ])
    func numbersKeepTheirLiteralText(_ literal: String) throws {
        let value = try JSONParser.parse(literal)
        guard case .number(let number) = value else {
            Issue.record("\(literal) parsed as \(value)")
            return
        }
        #expect(number.text == literal)
        #expect(number.description == literal)
        #expect(JSONWriter.string(value) == literal)
        // Inside a container too.
        let array = try JSONParser.parse("[\(literal)]")
        #expect(JSONWriter.string(array) == "[\(literal)]")
    }

    @Test(arguments: [
        ("0", Int64(0)), ("-0", 0), ("42", 42), ("-42", -42),
        ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
    ])
    func integerLiteralsHaveAnInt64Value(_ literal: String, _ expected: Int64) throws {
        guard case .number(let number) = try JSONParser.parse(literal) else {
            Issue.record("not a number")
            return
        }
        #expect(number.int64Value == expected)
    }

    @Test(arguments: ["1.0", "1e2", "1E2", "1.5", "9223372036854775808", "-9223372036854775809", "0.0"])
    func nonIntegerOrOutOfRangeLiteralsHaveNoInt64Value(_ literal: String) throws {
        guard case .number(let number) = try JSONParser.parse(literal) else {
            Issue.record("not a number")
            return
        }
        #expect(number.int64Value == nil)
    }

    @Test func objectKeysKeepTheirWireOrder() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":2,"m":{"y":true,"b":false},"k":null}"#)
        let object = try #require(value.objectValue)
        #expect(object.keys == ["z", "a", "m", "k"])
        #expect(object["m"]?.objectValue?.keys == ["y", "b"])
        #expect(object["a"] == 2)
        #expect(object["k"] == .null)
        #expect(object["missing"] == nil)
        #expect(JSONWriter.string(value) == #"{"z":1,"a":2,"m":{"y":true,"b":false},"k":null}"#)
    }

    @Test func arrayItemsKeepTheirOrder() throws {
        let value = try JSONParser.parse(#"[3,"b",1,"a",[2,1]]"#)
        #expect(value.arrayValue?.count == 5)
        #expect(value == [3, "b", 1, "a", [2, 1]])
        #expect(value != [1, 3, "a", "b", [1, 2]])
    }

    /// RFC 8259 compares member names code unit by code unit: "\u00e9" (precomposed)
    /// and "e\u0301" (decomposed) are two different names, not a duplicate.
    @Test func canonicallyEquivalentButDifferentKeysAreNotDuplicates() throws {
        let value = try JSONParser.parse(#"{"\u00e9":1,"e\u0301":2}"#)
        let object = try #require(value.objectValue)
        #expect(object.count == 2)
        #expect(object.keys.map { Array($0.utf8) } == [[0xC3, 0xA9], [0x65, 0xCC, 0x81]])
    }

    @Test(arguments: [1, 2, 63, 64])
    func nestingUpToTheMaximumDepthIsAccepted(_ depth: Int) throws {
        let arrays = try JSONParser.parse(nested(depth, inner: "1"))
        var value = arrays
        for _ in 0..<depth {
            value = try #require(value.arrayValue?.first)
        }
        #expect(value == 1)

        let objects = nested(depth, open: #"{"k":"#, close: "}", inner: "null")
        #expect(throws: Never.self) { try JSONParser.parse(objects) }
    }

    @Test(arguments: [(1, "[1]", false), (1, "[[1]]", true), (2, "[[1]]", false), (2, #"{"a":[{}]}"#, true)])
    func maxDepthIsConfigurable(_ maxDepth: Int, _ text: String, _ tooDeep: Bool) {
        let result = Result { () throws(JSONParseError) in try JSONParser.parse(text, maxDepth: maxDepth) }
        switch result {
        case .success: #expect(!tooDeep)
        case .failure(let error): #expect(tooDeep && error.kind == .tooDeep)
        }
    }

    // MARK: invalid documents

    static let invalidDocuments: [InvalidDocument] = [
        // Empty and truncated.
        InvalidDocument("empty", "", .syntax),
        InvalidDocument("whitespace only", " \n\t ", .syntax),
        InvalidDocument("open array", "[", .syntax),
        InvalidDocument("open object", "{", .syntax),
        InvalidDocument("array missing ]", "[1,2", .syntax),
        InvalidDocument("array after comma", "[1,", .syntax),
        InvalidDocument("object missing }", #"{"a":1"#, .syntax),
        InvalidDocument("object missing value", #"{"a":"#, .syntax),
        InvalidDocument("object missing colon", #"{"a""#, .syntax),
        InvalidDocument("unterminated string", #""abc"#, .syntax),
        InvalidDocument("unterminated string after escape", #""ab\n"#, .syntax),
        InvalidDocument("string ends in backslash", #""ab\"#, .syntax),
        InvalidDocument("truncated true", "tru", .syntax),
        InvalidDocument("truncated null", "nul", .syntax),
        InvalidDocument("truncated \\u", #""\u12"#, .syntax),
        // Trailing garbage.
        InvalidDocument("two values", "1 2", .syntax),
        InvalidDocument("object then text", "{} x", .syntax),
        InvalidDocument("extra ]", "[1]]", .syntax),
        InvalidDocument("literal then text", "nullx", .syntax),
        InvalidDocument("true then text", "truex", .syntax),
        InvalidDocument("two objects", #"{"a":1}{"b":2}"#, .syntax),
        InvalidDocument("NUL after value", "{}\u{0}", .syntax),
        // Structure.
        InvalidDocument("trailing comma in array", "[1,]", .syntax),
        InvalidDocument("trailing comma in object", #"{"a":1,}"#, .syntax),
        InvalidDocument("leading comma", "[,1]", .syntax),
        InvalidDocument("missing comma", "[1 2]", .syntax),
        InvalidDocument("unquoted key", "{a:1}", .syntax),
        InvalidDocument("number key", "{1:1}", .syntax),
        InvalidDocument("missing colon", #"{"a" 1}"#, .syntax),
        InvalidDocument("single quotes", "'a'", .syntax),
        InvalidDocument("mismatched brackets", "[}", .syntax),
        InvalidDocument("bare word", "undefined", .syntax),
        InvalidDocument("misspelt literal", "ture", .syntax),
        InvalidDocument("upper-case literal", "True", .syntax),
        InvalidDocument("comment", "[1] // c", .syntax),
        InvalidDocument("BOM", "\u{FEFF}{}", .syntax),
        // Numbers.
        InvalidDocument("leading zero", "01", .syntax),
        InvalidDocument("double zero", "00", .syntax),
        InvalidDocument("negative leading zero", "-01", .syntax),
        InvalidDocument("leading zero in array", "[012]", .syntax),
        InvalidDocument("leading zero with fraction", "00.5", .syntax),
        InvalidDocument("minus alone", "-", .syntax),
        InvalidDocument("minus then letter", "-a", .syntax),
        InvalidDocument("plus sign", "+1", .syntax),
        InvalidDocument("no integer part", ".5", .syntax),
        InvalidDocument("no fraction digits", "1.", .syntax),
        InvalidDocument("no exponent digits", "1e", .syntax),
        InvalidDocument("exponent sign only", "1e+", .syntax),
        InvalidDocument("hex", "0x10", .syntax),
        InvalidDocument("NaN", "NaN", .syntax),
        InvalidDocument("Infinity", "Infinity", .syntax),
        InvalidDocument("-Infinity", "-Infinity", .syntax),
        InvalidDocument("two dots", "1.2.3", .syntax),
        // Escapes.
        InvalidDocument("unknown escape", #""\x""#, .syntax),
        InvalidDocument("escaped single quote", #""\'""#, .syntax),
        InvalidDocument("short \\u", #""\u12""#, .syntax),
        InvalidDocument("non-hex \\u", #""\u12G4""#, .syntax),
        InvalidDocument("upper-case \\U", #""\U0041""#, .syntax),
        // Control characters in strings.
        InvalidDocument("raw U+0001", "\"a\u{01}b\"", .syntax),
        InvalidDocument("raw tab", "\"a\tb\"", .syntax),
        InvalidDocument("raw newline", "\"a\nb\"", .syntax),
        InvalidDocument("raw carriage return", "\"a\rb\"", .syntax),
        InvalidDocument("raw NUL", "\"a\u{0}b\"", .syntax),
        InvalidDocument("raw U+001F after an escape", "\"\\n\u{1F}\"", .syntax),
        InvalidDocument("raw control in a key", "{\"a\u{02}\":1}", .syntax),
        // Invalid UTF-8 inside strings.
        InvalidDocument("0xFF in a string", bytes: [0x22, 0xFF, 0x22], .invalidUTF8),
        InvalidDocument("lone continuation byte", bytes: [0x22, 0x61, 0x80, 0x22], .invalidUTF8),
        InvalidDocument("truncated 2-byte sequence", bytes: [0x22, 0xC3, 0x22], .invalidUTF8),
        InvalidDocument("truncated 4-byte sequence", bytes: [0x22, 0xF0, 0x9F, 0x98, 0x22], .invalidUTF8),
        InvalidDocument("overlong slash", bytes: [0x22, 0xC0, 0xAF, 0x22], .invalidUTF8),
        InvalidDocument("overlong NUL", bytes: [0x22, 0xE0, 0x80, 0x80, 0x22], .invalidUTF8),
        InvalidDocument("UTF-8 encoded surrogate", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22], .invalidUTF8),
        InvalidDocument("beyond U+10FFFF", bytes: [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], .invalidUTF8),
        InvalidDocument("0xFE after an escape", bytes: Array(#""\n"#.utf8) + [0xFE, 0x22], .invalidUTF8),
        InvalidDocument("invalid byte in a key", bytes: [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], .invalidUTF8),
        InvalidDocument(
            "invalid byte in a nested string", bytes: Array(#"{"a":["#.utf8) + [0x22, 0xC3, 0x28, 0x22, 0x5D, 0x7D],
            .invalidUTF8),
        // Invalid UTF-8 outside strings.
        InvalidDocument("0xFF alone", bytes: [0xFF], .invalidUTF8),
        InvalidDocument("0xFF as an array item", bytes: Array("[1,".utf8) + [0xFF] + Array("]".utf8), .invalidUTF8),
        InvalidDocument("invalid byte after the value", bytes: Array("{}".utf8) + [0x80], .invalidUTF8),
        InvalidDocument("invalid byte before the value", bytes: [0x20, 0xC3] + Array("[]".utf8), .invalidUTF8),
        InvalidDocument("invalid byte as a key", bytes: [0x7B, 0xC0, 0x3A, 0x31, 0x7D], .invalidUTF8),
        // Lone surrogates in \u escapes.
        InvalidDocument("lone high surrogate", #""\uD800""#, .invalidUTF8),
        InvalidDocument("lone low surrogate", #""\uDC00""#, .invalidUTF8),
        InvalidDocument("lone low surrogate, lower case", #""\udfff""#, .invalidUTF8),
        InvalidDocument("high surrogate then text", #""\uD83Dabcdefg""#, .invalidUTF8),
        InvalidDocument("high surrogate then non-surrogate", #""\uD83D\u0041""#, .invalidUTF8),
        InvalidDocument("two high surrogates", #""\uD83D\uD83D""#, .invalidUTF8),
        InvalidDocument("reversed pair", #""\uDE00\uD83D""#, .invalidUTF8),
        InvalidDocument("high surrogate at the end of a string", #"["\uD800", 1234]"#, .invalidUTF8),
        InvalidDocument("lone surrogate in a key", #"{"\uD800":1}"#, .invalidUTF8),
        // Duplicate keys.
        InvalidDocument("duplicate key", #"{"a":1,"a":2}"#, .duplicateKey),
        InvalidDocument("duplicate key with the same value", #"{"a":1,"a":1}"#, .duplicateKey),
        InvalidDocument("duplicate key, not adjacent", #"{"a":1,"b":2,"a":3}"#, .duplicateKey),
        InvalidDocument("duplicate key in a nested object", #"{"o":{"b":1,"b":null}}"#, .duplicateKey),
        InvalidDocument("duplicate key spelt with an escape", #"{"a":1,"\u0061":2}"#, .duplicateKey),
        InvalidDocument("duplicate empty key", #"{"":1,"":2}"#, .duplicateKey),
        // Nesting deeper than the maximum.
        InvalidDocument("65 nested arrays", nested(65, inner: "1"), .tooDeep),
        InvalidDocument("65 nested objects", nested(65, open: #"{"k":"#, close: "}", inner: "1"), .tooDeep),
        InvalidDocument("66 levels, mixed", nested(33, open: #"[{"k":"#, close: "}]", inner: "1"), .tooDeep),
        InvalidDocument("100,000 [", String(repeating: "[", count: 100_000), .tooDeep),
        InvalidDocument("100,000 [ then ]", nested(100_000), .tooDeep),
        InvalidDocument("100,000 {", String(repeating: #"{"a":"#, count: 100_000), .tooDeep),
    ]

    @Test(arguments: invalidDocuments)
    func rejectsInvalidDocument(_ document: InvalidDocument) {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(document.bytes) }
        #expect(error?.kind == document.kind)
        #expect(error?.message.isEmpty == false)
    }

    @Test(arguments: [("[1,]", 3), ("{} x", 3), ("1 2", 2), ("[1 2]", 3), ("[1,2", 4)])
    func errorOffsetPointsAtTheFault(_ text: String, _ offset: Int) {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
        #expect(error?.offset == offset)
    }

    @Test func hugeNestingFailsWithoutExhaustingTheStack() {
        let error = #expect(throws: JSONParseError.self) {
            try JSONParser.parse(String(repeating: "[", count: 100_000))
        }
        #expect(error?.kind == .tooDeep)
        #expect(error?.message == "nesting deeper than 64 levels")
    }

    /// Objects past the linear-scan size switch to a hash set of keys: duplicates are still
    /// found wherever they stand, and byte-distinct keys are still distinct.
    @Test(arguments: [
        (2, 1, 0), (16, 15, 0), (17, 16, 0), (17, 0, 16), (40, 39, 3), (40, 20, 19), (49_000, 48_999, 0),
        (49_000, 30_000, 29_999),
    ])
    func duplicateKeysAreFoundInObjectsOfAnySize(_ members: Int, _ duplicateAt: Int, _ original: Int) {
        var keys = (0..<members).map { "k\($0)" }
        keys[duplicateAt] = keys[original]
        let text = "{" + keys.map { #""\#($0)":0"# }.joined(separator: ",") + "}"
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
        #expect(error?.kind == .duplicateKey)
        #expect(error?.message == "duplicate key \"\(keys[original])\"")
    }

    /// 49,000 members parse in one pass (60,000 took 100 s when each member looked its key
    /// up in all the members before it), in wire order; precomposed and decomposed forms
    /// of a key stay two keys past the linear-scan size too.
    @Test func largeObjectsParseWhole() throws {
        var text = "{"
        for i in 0..<49_000 { text += #""\#(i)":\#(i),"# }
        text += #""\u00e9":1,"e\u0301":2}"#
        let object = try #require(try JSONParser.parse(text).objectValue)
        #expect(object.count == 49_002)
        #expect(object.entries[48_999].key == "48999")
        #expect(object.entries[48_999].value == 48_999)
        #expect(object.keys.suffix(2).map { Array($0.utf8) } == [[0xC3, 0xA9], [0x65, 0xCC, 0x81]])
    }

    /// A line holds at most 50,000 values (each array, object, string, number, literal):
    /// whatever its shape, it is parsed in milliseconds, and one more is refused.
    /// (shape, items, accepted): an array of `items` numbers (1 + items values), of
    /// `items` `[[]]` (1 + 2 × items), an object of `items` null members (1 + items).
    @Test(arguments: [
        ("numbers", 49_999, true), ("numbers", 50_000, false), ("nested pairs", 24_999, true),
        ("nested pairs", 25_000, false), ("members", 49_999, true), ("members", 50_000, false),
    ])
    func atMostFiftyThousandValues(_ shape: String, _ items: Int, _ accepted: Bool) {
        let text: String
        switch shape {
        case "numbers": text = "[" + Array(repeating: "1", count: items).joined(separator: ",") + "]"
        case "nested pairs": text = "[" + Array(repeating: "[[]]", count: items).joined(separator: ",") + "]"
        default:
            let members: [String] = (0..<items).map { #""k\#($0)":null"# }
            text = "{" + members.joined(separator: ",") + "}"
        }
        do {
            _ = try JSONParser.parse(text)
            #expect(accepted)
        } catch {
            #expect(!accepted)
            #expect(error.kind == .tooManyValues)
            #expect(error.message == "more than 50000 values in one line")
        }
    }
}

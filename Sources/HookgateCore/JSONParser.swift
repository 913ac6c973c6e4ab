/// Why a line is not acceptable JSON.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case invalidUTF8
        case syntax
        case tooDeep
        case tooManyValues
        case duplicateKey
    }

    public let kind: Kind
    public let message: String
    public let offset: Int

    public var description: String { message }
}

/// A strict RFC 8259 parser over UTF-8 bytes: rejects invalid UTF-8, lone surrogates,
/// control characters in strings, trailing garbage, duplicate keys, nesting deeper than
/// `maxDepth` (so no input can exhaust the stack) and more than `maxValues` values (so
/// no line, whatever its shape, takes long to parse: the tree costs an allocation per
/// array, object and long string).
public struct JSONParser {
    public static let defaultMaxDepth = 64
    /// Far more than any request needs (an event is at most `--max-event-bytes`, 256 KiB by
    /// default), and few enough that a line is parsed in milliseconds.
    public static let defaultMaxValues = 50_000

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let maxDepth: Int
    private let maxValues: Int
    private var values = 0

    public static func parse(
        _ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth, maxValues: Int = defaultMaxValues
    ) throws(JSONParseError) -> JSON {
        let result: Result<JSON, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            var parser = JSONParser(bytes: buffer, maxDepth: maxDepth, maxValues: maxValues)
            return Result { () throws(JSONParseError) in try parser.parseDocument() }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            var parser = JSONParser(bytes: buffer, maxDepth: maxDepth, maxValues: maxValues)
            return try parser.parseDocument()
        }
    }

    /// The non-generic entry, for callers in other modules on a hot path.
    public static func parse(
        buffer: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth, maxValues: Int = defaultMaxValues
    ) throws(JSONParseError) -> JSON {
        var parser = JSONParser(
            bytes: buffer.assumingMemoryBound(to: UInt8.self), maxDepth: maxDepth, maxValues: maxValues)
        return try parser.parseDocument()
    }

    public static func parse(
        _ text: String, maxDepth: Int = defaultMaxDepth, maxValues: Int = defaultMaxValues
    ) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth, maxValues: maxValues)
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, maxValues: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.maxValues = maxValues
    }

    private func fail(_ message: String, _ kind: JSONParseError.Kind = .syntax) -> JSONParseError {
        JSONParseError(kind: kind, message: message, offset: index)
    }

    private mutating func parseDocument() throws(JSONParseError) -> JSON {
        do {
            return try parseDocumentBody()
        } catch  where error.kind == .syntax {
            // Invalid UTF-8 anywhere in the line is the better explanation of a syntax error.
            if String(validating: bytes, as: UTF8.self) == nil {
                throw JSONParseError(kind: .invalidUTF8, message: "invalid UTF-8", offset: error.offset)
            }
            throw error
        }
    }

    private mutating func parseDocumentBody() throws(JSONParseError) -> JSON {
        skipWhitespace()
        if index == bytes.count { throw fail("empty input") }
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if index != bytes.count { throw fail("unexpected data after the JSON value at byte \(index)") }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSON {
        guard index < bytes.count else { throw fail("unexpected end of input") }
        values += 1
        if values > maxValues { throw fail("more than \(maxValues) values in one line", .tooManyValues) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default:
            throw fail("unexpected character at byte \(index)")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw fail("unexpected end of input") }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] {
            throw fail("invalid literal at byte \(index)")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSON {
        if depth > maxDepth { throw fail("nesting deeper than \(maxDepth) levels", .tooDeep) }
        index += 1
        var entries: [(key: String, value: JSON)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject(uniqueEntries: entries))
        }
        // Room for a protocol object's members at once: growing by doubling from one
        // copied the entries three or four times per object. Only near the top, where
        // protocol objects are: a deep pile of objects stays as small as it was.
        if depth <= 3 { entries.reserveCapacity(8) }
        // Duplicate keys are found by a linear scan while the object is small (protocol
        // objects are) and through a hash set of the keys once it is not, so parsing
        // stays linear in the number of members whatever the line holds.
        var seen: Set<ExactKey>?
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an object") }
            guard bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a key string at byte \(index)") }
            let key = try parseString()
            if isDuplicate(key, in: entries, seen: &seen) {
                throw fail("duplicate key \"\(key)\"", .duplicateKey)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("expected ':' at byte \(index)")
            }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            entries.append((key: key, value: value))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an object") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(JSONObject(uniqueEntries: entries))
            default: throw fail("expected ',' or '}' at byte \(index)")
            }
        }
    }

    /// Objects up to this many members are checked for duplicate keys by a linear scan.
    private static let linearKeyScanLimit = 16

    private func isDuplicate(_ key: String, in entries: [(key: String, value: JSON)], seen: inout Set<ExactKey>?)
        -> Bool
    {
        if seen == nil {
            if entries.count < Self.linearKeyScanLimit {
                // Lengths first: keys of one object rarely share one, and a native
                // string knows its length without being read.
                let length = key.utf8.count
                return entries.contains { $0.key.utf8.count == length && $0.key.hasSameBytes(as: key) }
            }
            seen = Set(entries.lazy.map { ExactKey($0.key) })
        }
        return !seen!.insert(ExactKey(key)).inserted
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSON {
        if depth > maxDepth { throw fail("nesting deeper than \(maxDepth) levels", .tooDeep) }
        index += 1
        var array: [JSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(array)
        }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input in an array") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(array)
            default: throw fail("expected ',' or ']' at byte \(index)")
            }
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number at byte \(start)") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number at byte \(start)") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number at byte \(start)") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, isDigit(bytes[index]) { throw fail("invalid number at byte \(start)") }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        return JSONNumber(validatedText: text)
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func parseString() throws(JSONParseError) -> String {
        index += 1
        let start = index
        var ascii = true
        // Fast path: no escapes, so the bytes are the string.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // ASCII is valid UTF-8 as it stands, and most strings are ASCII: the
                // validating initialiser costs several times the decoding one.
                if ascii { return String(decoding: slice, as: UTF8.self) }
                guard let string = String(validating: slice, as: UTF8.self) else {
                    index -= 1
                    throw fail("invalid UTF-8 in a string", .invalidUTF8)
                }
                return string
            }
            if byte >= 0x80 { ascii = false }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw fail("control character in a string at byte \(index)") }
            index += 1
        }
        var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                guard let string = String(validating: scalars, as: UTF8.self) else {
                    throw fail("invalid UTF-8 in a string", .invalidUTF8)
                }
                index += 1
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append(0x22)
                case UInt8(ascii: "\\"): scalars.append(0x5C)
                case UInt8(ascii: "/"): scalars.append(0x2F)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if code >= 0xD800 && code <= 0xDBFF {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw fail("unpaired surrogate in a string", .invalidUTF8) }
                        index += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else {
                            throw fail("unpaired surrogate in a string", .invalidUTF8)
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if code >= 0xDC00 && code <= 0xDFFF {
                        throw fail("unpaired surrogate in a string", .invalidUTF8)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                    UTF8.encode(scalar) { scalars.append($0) }
                default:
                    throw fail("invalid escape in a string at byte \(index - 1)")
                }
            default:
                if byte < 0x20 { throw fail("control character in a string at byte \(index)") }
                scalars.append(byte)
                index += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw fail("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}

#if canImport(Glibc)
    import Glibc
#endif

/// A JSON value that keeps what the wire carried: object key order, and each number's
/// literal text (so an event's body is passed through with the same values it came with,
/// and `1.5` can be told apart from `1`).
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public static func integer(_ value: Int64) -> JSON { .number(JSONNumber(value)) }
    public static func integer(_ value: Int) -> JSON { .number(JSONNumber(Int64(value))) }

    /// The JSON type's name as messages use it: "a string", "an object", ...
    public var typeDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public subscript(key: String) -> JSON? {
        objectValue?[key]
    }
}

/// A JSON number as its literal text, validated by the parser's grammar.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    public let text: String

    public init(_ value: Int64) { self.text = String(value) }

    /// A finite double as a JSON literal; nil for infinities and NaN.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        self.text = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }

    /// For the parser only: `text` must already satisfy JSON's number grammar.
    init(validatedText: String) { self.text = validatedText }

    /// The value when the literal is an integer (no fraction, no exponent) that fits Int64.
    public var int64Value: Int64? {
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int64(text)
    }

    public var doubleValue: Double? { Double(text) }

    /// True when the literal has no fraction and no exponent, whatever its size.
    public var isIntegerLiteral: Bool { !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) }

    public var description: String { text }

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        // Integers by value (`-0` is `0`); anything else by its literal text, since
        // doubles would call distinct literals such as 1e400 and 2e400 equal.
        if let l = lhs.int64Value, let r = rhs.int64Value { return l == r }
        return lhs.text == rhs.text
    }
}

/// A JSON object with its keys in wire order. Objects in this protocol are small, so a
/// linear lookup beats hashing.
public struct JSONObject: Sendable, Equatable, Sequence {
    public private(set) var entries: [(key: String, value: JSON)]

    public init() { self.entries = [] }

    public init(_ entries: [(String, JSON)]) {
        self.entries = entries.map { (key: $0.0, value: $0.1) }
    }

    /// For the parser, which has already refused duplicate keys.
    init(uniqueEntries: [(key: String, value: JSON)]) { self.entries = uniqueEntries }

    public var keys: [String] { entries.map(\.key) }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public subscript(key: String) -> JSON? {
        get {
            for entry in entries where entry.key.hasSameBytes(as: key) { return entry.value }
            return nil
        }
        set {
            if let index = entries.firstIndex(where: { $0.key.hasSameBytes(as: key) }) {
                if let newValue {
                    entries[index].value = newValue
                } else {
                    entries.remove(at: index)
                }
            } else if let newValue {
                entries.append((key: key, value: newValue))
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSON)]> {
        entries.makeIterator()
    }

    /// Order-insensitive: two objects are equal when they hold the same keys and values.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        for entry in lhs.entries {
            guard let other = rhs[entry.key], other == entry.value else { return false }
        }
        return true
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(JSONObject(elements)) }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSON)...) { self.init(elements) }
}

extension String {
    /// Byte-for-byte equality of the UTF-8 forms. (`==` compares Unicode-canonically, so
    /// "é" written precomposed or decomposed would be one key.)
    @inlinable
    public func hasSameBytes(as other: String) -> Bool {
        // Most keys compared differ in length, which native strings know at once.
        guard utf8.count == other.utf8.count else { return false }
        var this = self
        var that = other
        return this.withUTF8 { a in
            that.withUTF8 { b in
                guard a.count == b.count else { return false }
                guard let left = a.baseAddress, let right = b.baseAddress else { return true }
                return memcmp(left, right, a.count) == 0
            }
        }
    }
}

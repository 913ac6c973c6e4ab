/// Finds the scalar values of a few top-level keys of a JSON object without parsing the
/// rest: one pass over the bytes, no allocation but the values found. A request line
/// over a size limit is judged by its `cmd` before the whole line is parsed.
///
/// It does not validate: on malformed input it may find nothing, and the line is then
/// parsed as usual, which reports the error.
public enum JSONTopLevelScan {
    /// The values (strings and numbers only) of `keys` in the top-level object of `bytes`,
    /// parsed; keys whose value is another type, or absent, are not in the result.
    public static func scalars(of keys: Set<String>, in bytes: UnsafeRawBufferPointer) -> [String: JSON] {
        var found: [String: JSON] = [:]
        var index = 0
        let count = bytes.count
        var depth = 0
        // At depth 1: true after `{` or `,` (a key comes next); the key just read.
        var expectingKey = false
        var currentKey: Range<Int>?
        while index < count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                let start = index
                index += 1
                while index < count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard index < count else { return found }
                let string = start..<(index + 1)
                if depth == 1 && expectingKey {
                    currentKey = (start + 1)..<index
                    expectingKey = false
                } else if depth == 1, let key = currentKey {
                    record(key: key, value: string, bytes: bytes, keys: keys, into: &found)
                    currentKey = nil
                }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 { expectingKey = byte == UInt8(ascii: "{") }
                currentKey = depth == 2 ? nil : currentKey
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth <= 0 { return found }
            case UInt8(ascii: ","):
                if depth == 1 {
                    expectingKey = true
                    currentKey = nil
                }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                while index + 1 < count, isNumberByte(bytes[index + 1]) { index += 1 }
                if depth == 1, let key = currentKey {
                    record(key: key, value: start..<(index + 1), bytes: bytes, keys: keys, into: &found)
                    currentKey = nil
                }
            default:
                break
            }
            index += 1
        }
        return found
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
            UInt8(ascii: "e"), UInt8(ascii: "E"):
            return true
        default:
            return false
        }
    }

    private static func record(
        key: Range<Int>, value: Range<Int>, bytes: UnsafeRawBufferPointer, keys: Set<String>,
        into found: inout [String: JSON]
    ) {
        // Keys this scan looks for are short: a longer one cannot be among them.
        guard key.count <= 32 else { return }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[key]), as: UTF8.self)
        guard keys.contains(name), found[name] == nil,
            let parsed = try? JSONParser.parse(buffer: UnsafeRawBufferPointer(rebasing: bytes[value]))
        else { return }
        found[name] = parsed
    }
}

/// Page cursors are opaque to clients: a letter naming the list ("w" webhooks, "r" the
/// request log) and the last row's sequence number in decimal. Only the exact form
/// hookgate writes is accepted back: no sign, no leading zero, no zero.
enum PageCursor {
    static func encode(_ seq: Int64, prefix: Character) -> String { "\(prefix)\(seq)" }

    static func decode(_ cursor: String, prefix: Character) -> Int64? {
        guard cursor.first == prefix else { return nil }
        let digits = cursor.utf8.dropFirst()
        guard let first = digits.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"), digits.count <= 19,
            digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let seq = Int64(String(decoding: digits, as: UTF8.self))
        else { return nil }
        return seq
    }
}

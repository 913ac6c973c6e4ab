import Synchronization

/// Random bytes from the system's CSPRNG (getrandom(2) behind
/// `SystemRandomNumberGenerator`), drawn 4 KiB at a time: one system call serves 256
/// event ids instead of one call per 8 bytes.
final class RandomPool: Sendable {
    private struct State {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var next = 4096
    }

    private let state = Mutex(State())

    static let shared = RandomPool()

    func take(_ count: Int) -> [UInt8] {
        state.withLock { state in
            if state.next + count > state.bytes.count {
                var generator = SystemRandomNumberGenerator()
                state.bytes.withUnsafeMutableBytes { raw in
                    for i in stride(from: 0, to: raw.count, by: 8) {
                        raw.storeBytes(of: generator.next(), toByteOffset: i, as: UInt64.self)
                    }
                }
                state.next = 0
            }
            defer { state.next += count }
            return Array(state.bytes[state.next..<(state.next + count)])
        }
    }
}

/// Random identifiers and secrets.
public enum Identifiers {
    /// A random (version 4) UUID in lower-case canonical form.
    public static func uuid() -> String {
        var bytes = RandomPool.shared.take(16)
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return formatUUID(bytes)
    }

    /// A time-ordered (version 7) UUID: 48 bits of Unix milliseconds, then random bits.
    /// Event ids use it so that the store's index on them grows at its end instead of
    /// at random places, and so that ids sort by arrival.
    public static func timeOrderedUUID(at time: Timestamp) -> String {
        var bytes = RandomPool.shared.take(16)
        let milliseconds = UInt64(max(0, time.microseconds / 1000))
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(i))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return formatUUID(bytes)
    }

    static func formatUUID(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// When a time-ordered (version 7) UUID was made, to the millisecond; nil for any
    /// other text.
    public static func timeOfTimeOrderedUUID(_ text: String) -> Timestamp? {
        guard let canonical = canonicalUUID(text) else { return nil }
        let hex = Array(canonical.utf8).filter { $0 != UInt8(ascii: "-") }
        guard hex[12] == UInt8(ascii: "7") else { return nil }
        var milliseconds: Int64 = 0
        for digit in hex[0..<12] {
            let value = digit <= UInt8(ascii: "9") ? digit - UInt8(ascii: "0") : digit - UInt8(ascii: "a") + 10
            milliseconds = milliseconds << 4 | Int64(value)
        }
        return Timestamp(microseconds: milliseconds * 1000)
    }

    /// The canonical lower-case form of a UUID written in any case, or nil when `text` is
    /// not a UUID in 8-4-4-4-12 form.
    public static func canonicalUUID(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                out.append(byte)
                continue
            }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): out.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): out.append(byte + 32)
            default: return nil
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A signing secret: `whsec_` + base64 of 24 random bytes (the Standard Webhooks form).
    public static func webhookSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "whsec_" + Base64.encode(bytes)
    }
}

/// RFC 4648 base64 with padding.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        encode(bytes, appendingTo: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The encoding appended to `out`, with no string in between.
    public static func encode(_ bytes: some Collection<UInt8>, appendingTo out: inout [UInt8]) {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next()
            let b2 = iterator.next()
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            out.append(b1 == nil ? UInt8(ascii: "=") : alphabet[Int((b1! & 0x0F) << 2 | (b2 ?? 0) >> 6)])
            out.append(b2 == nil ? UInt8(ascii: "=") : alphabet[Int(b2! & 0x3F)])
        }
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            if padding > 0 { return nil }
            values.append(value)
        }
        guard (values.count + padding) % 4 == 0, padding <= 2 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i + 1 < values.count {
            out.append(values[i] << 2 | values[i + 1] >> 4)
            if i + 2 < values.count { out.append(values[i + 1] << 4 | values[i + 2] >> 2) }
            if i + 3 < values.count { out.append(values[i + 2] << 6 | values[i + 3]) }
            i += 4
        }
        return out
    }
}

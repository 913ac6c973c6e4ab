#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 address as its network-order bytes (4 or 16).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses the textual forms inet_pton(3) accepts (`192.0.2.1`, `2001:db8::1`,
    /// `::ffff:192.0.2.1`); an IPv6 literal may come in brackets.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(text), &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address an IPv6 address carries to reach it: IPv4-mapped
    /// (`::ffff:a.b.c.d`), NAT64 with the well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052)
    /// or 6to4 (`2002:aabb:ccdd::/48`, RFC 3056). Packets to such an address end up at the
    /// IPv4 address, so the guard judges that one.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        if let mapped = mappedIPv4 { return mapped }
        if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] {
            return IPAddress(bytes: Array(bytes[12..<16]))
        }
        if bytes[0] == 0x20, bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
    public var mappedIPv4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF
        else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    public var description: String {
        var buffer = [UInt8](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        buffer.withUnsafeMutableBufferPointer { out in
            out.withMemoryRebound(to: CChar.self) { chars in
                _ = bytes.withUnsafeBytes {
                    inet_ntop(family, $0.baseAddress, chars.baseAddress, socklen_t(chars.count))
                }
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/8`, or a single address (`127.0.0.1` = /32).
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maxLength = address.bytes.count * 8
        var length = maxLength
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber), let value = Int(parts[1]), value <= maxLength
            else { return nil }
            length = value
        }
        // Keep only the network bits, so 10.1.2.3/8 means 10.0.0.0/8.
        var bytes = address.bytes
        for i in 0..<bytes.count {
            let bitsHere = min(8, max(0, length - i * 8))
            bytes[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        network = IPAddress(bytes: bytes)!
        prefixLength = length
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.bytes.count == network.bytes.count else { return false }
        var remaining = prefixLength
        for i in 0..<network.bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address.bytes[i] & mask != network.bytes[i] { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String { "\(network)/\(prefixLength)" }
}

/// Which destinations deliveries may connect to (proto-spec/PROTOCOL.md "Delivery"): by default
/// not loopback, private, link-local, CGNAT, unique-local, multicast or unspecified
/// addresses, checked on the address actually connected; `--allow-destination` ranges
/// open exceptions. An IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64, 6to4)
/// is checked as that IPv4 address.
public struct AddressGuard: Sendable {
    public struct BlockedRange: Sendable {
        public let range: CIDR
        public let reason: String
    }

    public static let blockedByDefault: [BlockedRange] = [
        ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "CGNAT"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"), ("192.0.0.0/24", "IETF protocol assignment"),
        ("198.18.0.0/15", "benchmarking"), ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("::/96", "IPv4-compatible"),
        ("64:ff9b:1::/48", "local-use NAT64"), ("fe80::/10", "link-local"), ("fc00::/7", "unique-local"),
        ("ff00::/8", "multicast"),
    ].map { BlockedRange(range: CIDR($0.0)!, reason: $0.1) }

    public let allowed: [CIDR]

    public init(allowed: [CIDR] = []) { self.allowed = allowed }

    /// Nil when a delivery may connect to `address`; otherwise why not
    /// (`loopback address 127.0.0.1`).
    public func refusal(of address: IPAddress) -> String? {
        let checked = address.embeddedIPv4 ?? address
        if allowed.contains(where: { $0.contains(checked) || $0.contains(address) }) { return nil }
        for blocked in Self.blockedByDefault where blocked.range.contains(checked) {
            let carrier = checked == address || address.mappedIPv4 != nil ? "" : " inside \(address)"
            return "\(blocked.reason) address \(checked)\(carrier) (open it with --allow-destination)"
        }
        return nil
    }
}

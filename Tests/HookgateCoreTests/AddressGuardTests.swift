import HookgateCore
import Testing

@Suite("Address guard")
struct AddressGuardTests {
    // MARK: - IPAddress

    /// An IPv6 address's bytes: `head`, zeros, then `tail`.
    static func v6(_ head: [UInt8], _ tail: [UInt8]) -> [UInt8] {
        head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// (text, bytes, description).
    static let parsed: [(String, [UInt8], String)] = [
        ("1.2.3.4", [1, 2, 3, 4], "1.2.3.4"),
        ("0.0.0.0", [0, 0, 0, 0], "0.0.0.0"),
        ("255.255.255.255", [255, 255, 255, 255], "255.255.255.255"),
        ("93.184.216.34", [93, 184, 216, 34], "93.184.216.34"),
        ("127.0.0.1", [127, 0, 0, 1], "127.0.0.1"),
        ("::", v6([], []), "::"),
        ("::1", v6([], [1]), "::1"),
        ("[::1]", v6([], [1]), "::1"),
        ("2001:db8::1", v6([0x20, 0x01, 0x0D, 0xB8], [1]), "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", v6([0x20, 0x01, 0x0D, 0xB8], [1]), "2001:db8::1"),
        ("[2001:db8::1]", v6([0x20, 0x01, 0x0D, 0xB8], [1]), "2001:db8::1"),
        ("fe80::1", v6([0xFE, 0x80], [1]), "fe80::1"),
        (
            "2606:4700::1111", v6([0x26, 0x06, 0x47, 0x00], [0x11, 0x11]),
            "2606:4700::1111"
        ),
        (
            "2001:db8:0:0:1:0:0:1", [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
            "2001:db8::1:0:0:1"
        ),
        (
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            [UInt8](repeating: 0xFF, count: 16),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        ),
        // IPv4-mapped, in either notation.
        ("::ffff:192.0.2.1", v6([], [0xFF, 0xFF, 192, 0, 2, 1]), "::ffff:192.0.2.1"),
        ("::ffff:c000:201", v6([], [0xFF, 0xFF, 192, 0, 2, 1]), "::ffff:192.0.2.1"),
        ("[::ffff:127.0.0.1]", v6([], [0xFF, 0xFF, 127, 0, 0, 1]), "::ffff:127.0.0.1"),
    ]

    @Test(arguments: parsed)
    func parsesAddresses(_ text: String, _ bytes: [UInt8], _ description: String) {
        let address = IPAddress(text)
        #expect(address?.bytes == bytes)
        #expect(address?.isIPv4 == (bytes.count == 4))
        #expect(address?.description == description)
        // The description parses back to the same address.
        #expect(IPAddress(description) == address)
        #expect(IPAddress(bytes: bytes) == address)
    }

    @Test(arguments: [
        "",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.",
        ".1.2.3",
        "1..2.3",
        "127.1",
        "2130706433",
        "0x7f.0.0.1",
        "01.2.3.4",
        "1.2.3.-4",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4/32",
        "::g",
        ":::",
        "1::2::3",
        "12345::1",
        "1:2:3:4:5:6:7:8:9",
        "fe80::1%eth0",
        "[::1",
        "::1]",
        "[[::1]]",
        "[]",
        "localhost",
        "example.com",
    ])
    func rejectsInvalidAddresses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test(arguments: [0, 1, 3, 5, 15, 17, 32])
    func rejectsByteCountsOtherThan4Or16(_ count: Int) {
        #expect(IPAddress(bytes: [UInt8](repeating: 1, count: count)) == nil)
    }

    @Test(arguments: [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::ffff:8.8.8.8", "8.8.8.8"),
        ("::ffff:0.0.0.0", "0.0.0.0"),
    ])
    func mappedIPv4(_ text: String, _ inner: String) {
        #expect(IPAddress(text)?.mappedIPv4 == IPAddress(inner))
        #expect(IPAddress(text)?.mappedIPv4?.isIPv4 == true)
    }

    @Test(arguments: [
        "127.0.0.1", "::1", "::", "::127.0.0.1", "::fffe:127.0.0.1", "1::ffff:127.0.0.1", "64:ff9b::1.2.3.4",
    ])
    func notMappedIPv4(_ text: String) {
        #expect(IPAddress(text) != nil)
        #expect(IPAddress(text)?.mappedIPv4 == nil)
    }

    // MARK: - CIDR

    /// (text, description): host bits cleared; no prefix is a single address.
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("172.31.255.255/12", "172.16.0.0/12"),
        ("1.2.3.4/17", "1.2.0.0/17"),
        ("1.2.255.4/17", "1.2.128.0/17"),
        ("255.255.255.255/31", "255.255.255.254/31"),
        ("1.2.3.4/32", "1.2.3.4/32"),
        ("1.2.3.4/0", "0.0.0.0/0"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("127.0.0.1", "127.0.0.1/32"),
        ("::1", "::1/128"),
        ("::1/128", "::1/128"),
        ("[::1]", "::1/128"),
        ("::/0", "::/0"),
        ("ffff::1/0", "::/0"),
        ("fe80::1234/10", "fe80::/10"),
        ("febf:ffff::1/10", "fe80::/10"),
        ("fd12:3456::1/7", "fc00::/7"),
        ("2001:db8:abcd:1234::1/48", "2001:db8:abcd::/48"),
        ("2001:db8:abcd:1234::1/52", "2001:db8:abcd:1000::/52"),
        ("::ffff:10.1.2.3/104", "::ffff:10.0.0.0/104"),
        ("2001:db8::ffff/127", "2001:db8::fffe/127"),
    ])
    func parsesRanges(_ text: String, _ description: String) {
        #expect(CIDR(text)?.description == description)
        #expect(CIDR(description)?.description == description)
        #expect(CIDR(text) == CIDR(description))
    }

    @Test(arguments: [
        ("10.1.2.3/8", [UInt8(10), 0, 0, 0], 8),
        ("127.0.0.1", [127, 0, 0, 1], 32),
        ("192.168.255.255/16", [192, 168, 0, 0], 16),
    ])
    func rangeNetworkAndPrefix(_ text: String, _ network: [UInt8], _ prefixLength: Int) {
        #expect(CIDR(text)?.network.bytes == network)
        #expect(CIDR(text)?.prefixLength == prefixLength)
    }

    @Test(arguments: [
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/99",
        "::/129",
        "::1/200",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/8/8",
        "10.0.0.0/ 8",
        "10.0.0.0/8 ",
        "10.0.0.0/8a",
        "10.0.0.0/0x8",
        "10.0.0.0/٣",
        "10.0.0.0/99999999999999999999",
        "256.0.0.0/8",
        "10.0.0/8",
        "abc/8",
        "::g/64",
    ])
    func rejectsInvalidRanges(_ text: String) {
        #expect(CIDR(text) == nil)
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("172.16.0.0/12", "172.31.255.255", true),
        ("172.16.0.0/12", "172.32.0.0", false),
        ("172.16.0.0/12", "172.15.255.255", false),
        ("100.64.0.0/10", "100.127.255.255", true),
        ("100.64.0.0/10", "100.128.0.0", false),
        ("100.64.0.0/10", "100.63.255.255", false),
        ("1.2.128.0/17", "1.2.255.255", true),
        ("1.2.128.0/17", "1.2.127.255", false),
        ("1.2.3.4", "1.2.3.4", true),
        ("1.2.3.4", "1.2.3.5", false),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("0.0.0.0/0", "255.255.255.255", true),
        // Families never mix: a v4 range holds no v6 address, mapped or not.
        ("0.0.0.0/0", "::1", false),
        ("10.0.0.0/8", "::ffff:10.0.0.1", false),
        ("::/0", "1.2.3.4", false),
        ("::ffff:0.0.0.0/96", "10.0.0.1", false),
        ("::/0", "::1", true),
        ("::/0", "ffff::1", true),
        ("::1/128", "::1", true),
        ("::1/128", "::2", false),
        ("::1/128", "::", false),
        ("fe80::/10", "fe80::1", true),
        ("fe80::/10", "febf:ffff::1", true),
        ("fe80::/10", "fec0::1", false),
        ("fe80::/10", "fe7f::1", false),
        ("fc00::/7", "fdff:ffff::1", true),
        ("fc00::/7", "fe00::1", false),
        ("fc00::/7", "fbff::1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::", false),
        ("::ffff:0.0.0.0/96", "::ffff:10.0.0.1", true),
        ("::ffff:0.0.0.0/96", "::fffe:10.0.0.1", false),
    ])
    func rangeContains(_ range: String, _ address: String, _ expected: Bool) {
        #expect(CIDR(range)!.contains(IPAddress(address)!) == expected)
    }

    // MARK: - Default refusals

    /// (address, reason, the address as reported): every range the address guard blocks, at its
    /// edges; IPv4-mapped addresses are checked and reported as IPv4.
    static let refused: [(String, String, String)] = [
        ("127.0.0.1", "loopback", "127.0.0.1"),
        ("127.255.255.254", "loopback", "127.255.255.254"),
        ("127.0.0.0", "loopback", "127.0.0.0"),
        ("10.0.0.1", "private", "10.0.0.1"),
        ("10.255.255.255", "private", "10.255.255.255"),
        ("172.16.0.1", "private", "172.16.0.1"),
        ("172.31.255.254", "private", "172.31.255.254"),
        ("192.168.0.1", "private", "192.168.0.1"),
        ("192.168.255.255", "private", "192.168.255.255"),
        ("100.64.0.1", "CGNAT", "100.64.0.1"),
        ("100.127.255.254", "CGNAT", "100.127.255.254"),
        ("169.254.0.1", "link-local", "169.254.0.1"),
        ("169.254.169.254", "link-local", "169.254.169.254"),
        ("0.0.0.0", "unspecified", "0.0.0.0"),
        ("224.0.0.1", "multicast", "224.0.0.1"),
        ("239.255.255.250", "multicast", "239.255.255.250"),
        ("255.255.255.255", "reserved", "255.255.255.255"),
        ("::", "unspecified", "::"),
        ("::1", "loopback", "::1"),
        ("[::1]", "loopback", "::1"),
        ("fe80::1", "link-local", "fe80::1"),
        ("febf::1", "link-local", "febf::1"),
        ("fc00::1", "unique-local", "fc00::1"),
        ("fd12::1", "unique-local", "fd12::1"),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("ff02::1", "multicast", "ff02::1"),
        ("ff05::1:3", "multicast", "ff05::1:3"),
        ("::ffff:127.0.0.1", "loopback", "127.0.0.1"),
        ("::ffff:10.0.0.1", "private", "10.0.0.1"),
        ("::ffff:172.20.0.1", "private", "172.20.0.1"),
        ("::ffff:192.168.1.1", "private", "192.168.1.1"),
        ("::ffff:100.64.0.1", "CGNAT", "100.64.0.1"),
        ("::ffff:169.254.169.254", "link-local", "169.254.169.254"),
        ("::ffff:0.0.0.0", "unspecified", "0.0.0.0"),
        ("::ffff:224.0.0.1", "multicast", "224.0.0.1"),
        ("::ffff:7f00:1", "loopback", "127.0.0.1"),
        ("192.0.0.1", "IETF protocol assignment", "192.0.0.1"),
        ("192.0.0.255", "IETF protocol assignment", "192.0.0.255"),
        ("198.18.0.1", "benchmarking", "198.18.0.1"),
        ("198.19.255.255", "benchmarking", "198.19.255.255"),
        ("::2", "IPv4-compatible", "::2"),
        ("::127.0.0.1", "IPv4-compatible", "::127.0.0.1"),
        ("::ffff:ffff", "IPv4-compatible", "::255.255.255.255"),
        ("64:ff9b:1::1", "local-use NAT64", "64:ff9b:1::1"),
        // NAT64 (well-known prefix) and 6to4 carry an IPv4 address: it is the one judged.
        ("64:ff9b::127.0.0.1", "loopback", "127.0.0.1 inside 64:ff9b::7f00:1"),
        ("64:ff9b::10.1.2.3", "private", "10.1.2.3 inside 64:ff9b::a01:203"),
        ("64:ff9b::c0a8:101", "private", "192.168.1.1 inside 64:ff9b::c0a8:101"),
        ("64:ff9b::169.254.169.254", "link-local", "169.254.169.254 inside 64:ff9b::a9fe:a9fe"),
        ("2002:7f00:1::", "loopback", "127.0.0.1 inside 2002:7f00:1::"),
        ("2002:a00:1::1", "private", "10.0.0.1 inside 2002:a00:1::1"),
        ("2002:c612:1:1::1", "benchmarking", "198.18.0.1 inside 2002:c612:1:1::1"),
        ("2002:a9fe:a9fe::", "link-local", "169.254.169.254 inside 2002:a9fe:a9fe::"),
    ]

    @Test(arguments: refused)
    func refusesByDefault(_ text: String, _ reason: String, _ shown: String) {
        let address = IPAddress(text)!
        let message = AddressGuard().refusal(of: address)
        #expect(message == "\(reason) address \(shown) (open it with --allow-destination)")
    }

    @Test(arguments: [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "126.255.255.255",
        "128.0.0.1",
        "169.253.255.255",
        "169.255.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.167.255.255",
        "192.169.0.1",
        "223.255.255.255",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2a00:1450:4001:81c::200e",
        "fbff:ffff::1",
        "192.0.1.1",
        "191.255.255.255",
        "198.17.255.255",
        "198.20.0.1",
        "::1:0:0:0",
        "64:ff9b::8.8.8.8",
        "64:ff9b::5db8:d822",
        "64:ff9b:2::1",
        "2002:808:808::1",
        "2003::1",
        "::ffff:8.8.8.8",
        "::ffff:93.184.216.34",
        "[2606:4700::1111]",
    ])
    func allowsPublicAddresses(_ text: String) {
        #expect(AddressGuard().refusal(of: IPAddress(text)!) == nil)
    }

    // MARK: - --allow-destination

    /// (allowed ranges, address, the reason it is still refused or nil).
    @Test(
        arguments: [
            (["127.0.0.0/8"], "127.0.0.1", nil),
            (["127.0.0.0/8"], "127.255.255.254", nil),
            (["127.0.0.0/8"], "::ffff:127.0.0.1", nil),
            (["127.0.0.0/8"], "10.0.0.1", "private"),
            (["127.0.0.0/8"], "::ffff:10.0.0.1", "private"),
            (["127.0.0.0/8"], "::1", "loopback"),
            (["127.0.0.0/8"], "8.8.8.8", nil),
            (["::1/128"], "::1", nil),
            (["::1/128"], "127.0.0.1", "loopback"),
            (["::1/128"], "::", "unspecified"),
            (["::1"], "::1", nil),
            // A single address opens only itself.
            (["10.0.0.5"], "10.0.0.5", nil),
            (["10.0.0.5"], "::ffff:10.0.0.5", nil),
            (["10.0.0.5"], "10.0.0.6", "private"),
            (["10.0.0.5"], "10.0.0.4", "private"),
            (["127.0.0.1"], "127.0.0.1", nil),
            (["127.0.0.1"], "127.0.0.2", "loopback"),
            // Host bits in the flag are cleared: 10.1.2.3/16 opens 10.1.0.0/16.
            (["10.1.2.3/16"], "10.1.200.7", nil),
            (["10.1.2.3/16"], "10.2.0.1", "private"),
            // Several ranges.
            (["127.0.0.0/8", "fd00::/8"], "fd12::1", nil),
            (["127.0.0.0/8", "fd00::/8"], "127.0.0.1", nil),
            (["127.0.0.0/8", "fd00::/8"], "fc00::1", "unique-local"),
            (["127.0.0.0/8", "fd00::/8"], "192.168.1.1", "private"),
            (["172.16.0.0/12"], "172.31.0.1", nil),
            (["172.16.0.0/12"], "172.32.0.1", nil),
            (["100.64.0.0/10"], "100.100.100.100", nil),
            (["169.254.169.254"], "169.254.169.254", nil),
            (["169.254.169.254"], "169.254.169.253", "link-local"),
        ] as [([String], String, String?)])
    func allowDestinationOpensExceptions(_ ranges: [String], _ text: String, _ reason: String?) {
        let addressGuard = AddressGuard(allowed: ranges.map { CIDR($0)! })
        let message = addressGuard.refusal(of: IPAddress(text)!)
        if let reason {
            #expect(message?.hasPrefix("\(reason) address ") == true, "\(ranges) \(text): \(message ?? "allowed")")
        } else {
            #expect(message == nil, "\(ranges) \(text): \(message ?? "allowed")")
        }
    }

    @Test func defaultGuardOpensNothing() {
        #expect(AddressGuard().allowed.isEmpty)
        for blocked in AddressGuard.blockedByDefault {
            #expect(AddressGuard().refusal(of: blocked.range.network) != nil, "\(blocked.range)")
        }
    }
}

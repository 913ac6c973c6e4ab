import HookgateCore
import Testing

@Suite("Identifiers and Base64")
struct IdentifiersTests {
    // MARK: UUIDs

    @Test func uuidHasTheCanonicalVersion4Form() {
        for _ in 0..<1000 {
            let uuid = Identifiers.uuid()
            let bytes = Array(uuid.utf8)
            #expect(bytes.count == 36)
            for (i, byte) in bytes.enumerated() {
                if [8, 13, 18, 23].contains(i) {
                    #expect(byte == UInt8(ascii: "-"), "\(uuid)")
                } else {
                    #expect("0123456789abcdef".utf8.contains(byte), "\(uuid)")
                }
            }
            // Version nibble 4, variant bits 10.
            #expect(bytes[14] == UInt8(ascii: "4"), "\(uuid)")
            #expect("89ab".utf8.contains(bytes[19]), "\(uuid)")
            #expect(Identifiers.canonicalUUID(uuid) == uuid)
        }
    }

    @Test func uuidsAreUniqueAndUseEveryFreeBit() {
        let uuids = (0..<2000).map { _ in Identifiers.uuid() }
        #expect(Set(uuids).count == uuids.count)
        // Across 2000 random UUIDs every random position takes more than one value.
        for position in 0..<36 where ![8, 13, 14, 18, 23].contains(position) {
            let values = Set(uuids.map { Array($0.utf8)[position] })
            #expect(values.count > 1, "position \(position)")
        }
    }

    @Test(arguments: [
        ("67e3e4af-62e8-4515-8b67-6f20d0c51ffb", "67e3e4af-62e8-4515-8b67-6f20d0c51ffb"),
        ("67E3E4AF-62E8-4515-8B67-6F20D0C51FFB", "67e3e4af-62e8-4515-8b67-6f20d0c51ffb"),
        ("67e3E4aF-62E8-4515-8b67-6F20d0C51fFb", "67e3e4af-62e8-4515-8b67-6f20d0c51ffb"),
        ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
        ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ])
    func canonicalUUIDLowerCasesAValidUUID(_ text: String, _ canonical: String) {
        #expect(Identifiers.canonicalUUID(text) == canonical)
    }

    @Test(arguments: [
        "",
        "67e3e4af62e845158b676f20d0c51ffb",
        "{67e3e4af-62e8-4515-8b67-6f20d0c51ffb}",
        "urn:uuid:67e3e4af-62e8-4515-8b67-6f20d0c51ffb",
        "67e3e4af-62e8-4515-8b67-6f20d0c51ff",
        "67e3e4af-62e8-4515-8b67-6f20d0c51ffbb",
        "67e3e4af-62e8-4515-8b676-f20d0c51ffb",
        "67e3e4af62e8-4515-8b67-6f20d0c51ffb-",
        "67e3e4ag-62e8-4515-8b67-6f20d0c51ffb",
        "67e3e4af-62e8-4515-8b67-6f20d0c51ffg",
        "67e3e4af 62e8 4515 8b67 6f20d0c51ffb",
        " 7e3e4af-62e8-4515-8b67-6f20d0c51ffb",
        "67e3e4af_62e8_4515_8b67_6f20d0c51ffb",
        "67e3e4af-62e8-4515-8b67-6f20d0c51fé",
    ])
    func canonicalUUIDRejectsOtherForms(_ text: String) {
        #expect(Identifiers.canonicalUUID(text) == nil)
    }

    // MARK: secrets

    @Test func webhookSecretIsWhsecAndBase64Of24Bytes() throws {
        var seen: Set<String> = []
        for _ in 0..<200 {
            let secret = Identifiers.webhookSecret()
            #expect(secret.hasPrefix("whsec_"))
            let encoded = String(secret.dropFirst("whsec_".count))
            #expect(encoded.utf8.count == 32)
            #expect(!encoded.contains("="))
            let key = try #require(Base64.decode(encoded))
            #expect(key.count == 24)
            #expect(Base64.encode(key) == encoded)
            seen.insert(secret)
        }
        #expect(seen.count == 200)
    }

    // MARK: Base64

    static let vectors: [(String, String)] = [
        // RFC 4648, section 10.
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        // More.
        ("Hello, World!", "SGVsbG8sIFdvcmxkIQ=="),
        ("é😀", "w6nwn5iA"),
    ]

    @Test(arguments: vectors)
    func encodesTheRFC4648Vectors(_ plain: String, _ encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test(arguments: [
        ([UInt8](), ""),
        ([0x00], "AA=="),
        ([0x00, 0x00, 0x00], "AAAA"),
        ([0xFF], "/w=="),
        ([0xFF, 0xFF, 0xFF], "////"),
        ([0xFB, 0xFF], "+/8="),
        ([0xFF, 0xFE, 0xFD], "//79"),
        ([0x14, 0xFB, 0x9C, 0x03, 0xD9, 0x7E], "FPucA9l+"),
        ([0x14, 0xFB, 0x9C, 0x03, 0xD9], "FPucA9k="),
        ([0x14, 0xFB, 0x9C, 0x03], "FPucAw=="),
    ])
    func encodesAndDecodesBinary(_ bytes: [UInt8], _ encoded: String) {
        #expect(Base64.encode(bytes) == encoded)
        #expect(Base64.decode(encoded) == bytes)
    }

    @Test func roundTripsEveryLengthAndEveryByteValue() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64.encode(bytes)
            #expect(encoded.utf8.count == (length + 2) / 3 * 4)
            #expect(Base64.decode(encoded) == bytes, "length \(length)")
        }
        let all = (0...255).map(UInt8.init)
        #expect(Base64.decode(Base64.encode(all)) == all)
        #expect(Base64.decode(Base64.encode(all.reversed())) == Array(all.reversed()))
    }

    @Test func encodesAnyCollection() {
        let bytes: [UInt8] = Array("foobar".utf8)
        #expect(Base64.encode(bytes[1...3]) == "b29i")
        #expect(Base64.encode("foobar".utf8) == "Zm9vYmFy")
    }

    @Test(arguments: [
        "Zg=",
        "Zg",
        "Z",
        "Zm9vY",
        "Z===",
        "====",
        "=",
        "Zg==Zg==",
        "Zm9v=",
        "Zm=9",
        "Zm9v!",
        "Zm 9v",
        "Zm9v\n",
        "Zm9v-_",
        "Zm9vYmFy====",
    ])
    func rejectsMalformedBase64(_ text: String) {
        #expect(Base64.decode(text) == nil)
    }
}

import HookgateCore
import Testing

@Suite("Units")
struct UnitsTests {
    @Test(arguments: [
        ("250ms", Int64(250_000)),
        ("1ms", 1_000),
        ("0ms", 0),
        ("5s", 5_000_000),
        ("0s", 0),
        ("90s", 90_000_000),
        ("5m", 300_000_000),
        ("30m", 1_800_000_000),
        ("2h", 7_200_000_000),
        ("24h", 86_400_000_000),
        ("7d", 604_800_000_000),
        ("1d", 86_400_000_000),
        // A bare number is seconds.
        ("30", 30_000_000),
        ("0", 0),
        ("86400", 86_400_000_000),
        // Surrounding spaces are ignored.
        (" 5s ", 5_000_000),
        ("  10  ", 10_000_000),
        // The largest values that do not overflow.
        ("9223372036854775ms", 9_223_372_036_854_775_000),
        ("9223372036854s", 9_223_372_036_854_000_000),
    ])
    func parsesDurations(_ text: String, _ microseconds: Int64) {
        #expect(Units.durationMicroseconds(text) == microseconds)
    }

    @Test(arguments: [
        "",
        " ",
        "s",
        "ms",
        "h",
        "-1",
        "-5s",
        "-250ms",
        "1.5s",
        "0.5",
        "5x",
        "5 s",
        "5sec",
        "5S",
        "5H",
        "5M",
        "5ms5",
        "5hm",
        "s5",
        "five",
        "5s,6s",
        "1e3",
        // Overflow.
        "9223372036854775807",
        "9223372036854775807ms",
        "9223372036854776ms",
        "9223372036854776s",
        "106751992d",
        "99999999999999999999",
    ])
    func rejectsMalformedDurations(_ text: String) {
        #expect(Units.durationMicroseconds(text) == nil)
    }

    @Test(arguments: [
        ("0", 0),
        ("1", 1),
        ("1048576", 1_048_576),
        ("256KiB", 262_144),
        ("1KiB", 1_024),
        ("1MiB", 1_048_576),
        ("2GiB", 2_147_483_648),
        ("3TiB", 3_298_534_883_328),
        ("1T", 1_099_511_627_776),
        ("256KB", 262_144),
        ("1MB", 1_048_576),
        ("1GB", 1_073_741_824),
        ("64k", 65_536),
        ("64K", 65_536),
        ("4M", 4_194_304),
        ("1G", 1_073_741_824),
        ("0KiB", 0),
        (" 1KiB ", 1_024),
    ])
    func parsesByteCounts(_ text: String, _ bytes: Int) {
        #expect(Units.byteCount(text) == bytes)
    }

    @Test(arguments: [
        "",
        "KiB",
        "k",
        "-1",
        "-1KiB",
        "1.5MiB",
        "1 KiB",
        "1B",
        "1kib",
        "1mb",
        "1PiB",
        "9999999TiB",
        "1KiBs",
        "one",
        "1e3",
        "9223372036854775807KiB",
        "99999999999999999999",
    ])
    func rejectsMalformedByteCounts(_ text: String) {
        #expect(Units.byteCount(text) == nil)
    }
}

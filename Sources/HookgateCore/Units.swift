/// The textual forms flags take for durations and sizes.
public enum Units {
    /// `250ms`, `5s`, `5m`, `2h`, `7d`, or a bare number of seconds; nil when malformed
    /// or negative.
    public static func durationMicroseconds(_ text: String) -> Int64? {
        let units: [(suffix: String, micros: Int64)] = [
            ("ms", 1_000), ("s", 1_000_000), ("m", 60_000_000), ("h", 3_600_000_000), ("d", 86_400_000_000),
        ]
        let trimmed = text.trimmingSpaces
        // Digits only: Int64("+5") would take a sign.
        guard trimmed.first?.isASCII == true, trimmed.first?.isNumber == true else { return nil }
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            let number = trimmed.dropLast(unit.suffix.count)
            // "5ms" also ends in "s": only accept a suffix whose remainder is a number.
            guard let value = Int64(number), value >= 0 else { continue }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit.micros)
            return overflow ? nil : product
        }
        guard let seconds = Int64(trimmed), seconds >= 0 else { return nil }
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        return overflow ? nil : product
    }

    /// A duration written back in the largest unit that divides it (`7d`, `90m`, `250ms`),
    /// microseconds when none does.
    public static func durationText(_ microseconds: Int64) -> String {
        for (suffix, micros) in [
            ("d", Int64(86_400_000_000)), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000),
        ] where microseconds != 0 && microseconds % micros == 0 {
            return "\(microseconds / micros)\(suffix)"
        }
        return microseconds == 0 ? "0s" : "\(microseconds)µs"
    }

    /// `1048576`, `256KiB`, `1MiB` (also `KB`/`MB` as the same binary units, `k`/`M`).
    public static func byteCount(_ text: String) -> Int? {
        let units: [(suffix: String, factor: Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("KB", 1 << 10), ("MB", 1 << 20),
            ("GB", 1 << 30), ("TB", 1 << 40), ("k", 1 << 10), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30),
            ("T", 1 << 40),
        ]
        let trimmed = text.trimmingSpaces
        guard trimmed.first?.isASCII == true, trimmed.first?.isNumber == true else { return nil }
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            guard let value = Int(trimmed.dropLast(unit.suffix.count)), value >= 0 else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit.factor)
            return overflow ? nil : product
        }
        guard let value = Int(trimmed), value >= 0 else { return nil }
        return value
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars = scalars.dropFirst() }
        while scalars.last == " " { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

import HookgateCore

/// The text exposition with a `# HELP` line before each metric's `# TYPE` line.
/// swift-metrics passes no help text to its backend, and `promtool check metrics`
/// requires one; the texts are `HookgateMetrics.catalog`'s.
public enum MetricsExposition {
    public static func withHelp(_ exposition: [UInt8]) -> [UInt8] {
        let help = Dictionary(uniqueKeysWithValues: HookgateMetrics.catalog.map { ($0.name, $0.help) })
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + help.count * 96)
        let typePrefix = Array("# TYPE ".utf8)
        var start = 0
        while start < exposition.count {
            let end = exposition[start...].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? exposition.count
            let line = exposition[start..<end]
            if line.starts(with: typePrefix) {
                let nameStart = start + typePrefix.count
                let nameEnd = exposition[nameStart..<end].firstIndex(of: UInt8(ascii: " ")) ?? end
                let name = String(decoding: exposition[nameStart..<nameEnd], as: UTF8.self)
                if let text = help[name] { out.append(contentsOf: Array("# HELP \(name) \(text)\n".utf8)) }
            }
            out.append(contentsOf: line)
            start = end
        }
        return out
    }
}

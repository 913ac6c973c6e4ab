import HookgateCore
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `--log-format json`: one JSON object per line on standard error, as journald, Loki and
/// Kubernetes log pipelines ingest it: `ts` (RFC 3339 UTC, microseconds), `level`, `msg`,
/// `source`, then the metadata flattened in (a metadata key that is one of those four is
/// written with a `_` appended).
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level
    private let clock: any WallClock

    /// Lines from every thread go out whole, one `write` each, one at a time.
    private static let output = Mutex(())
    private static let reserved: Set<String> = ["ts", "level", "msg", "source"]

    init(level: Logger.Level, clock: any WallClock = SystemWallClock()) {
        logLevel = level
        self.clock = clock
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        Self.write(line(event))
    }

    /// The line for `event`, newline included.
    func line(_ event: LogEvent) -> [UInt8] {
        var object = JSONObject([
            ("ts", .string(clock.now().rfc3339)), ("level", .string(event.level.rawValue)),
            ("msg", .string(event.message.description)), ("source", .string(event.source)),
        ])
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let given = event.metadata { merged.merge(given) { $1 } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            object[Self.reserved.contains(key) ? key + "_" : key] = Self.json(value)
        }
        return JSONWriter.bytes(.object(object)) + [0x0A]
    }

    static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let convertible): return .string(convertible.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let entries):
            return .object(JSONObject(entries.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) }))
        }
    }

    private static func write(_ line: [UInt8]) {
        output.withLock { _ in
            line.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                    if written <= 0 {
                        if written < 0 && errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}

import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `--log-format json`: every line the daemon logs is one JSON object with `ts`, `level`,
/// `msg`, `source` and the metadata flattened in.
@Suite struct LogFormatTests {
    @Test func jsonLogsAreOneObjectPerLine() throws {
        let daemon = try Daemon(arguments: ["--log-format", "json"])
        let client = try daemon.client()
        _ = try client.request([
            "cmd": "create_webhook", "name": "Logged", "url": "https://user:pw@example.com/hook?token=1",
            "filter": ["event_type": ["SMS_STATUS"]],
        ])
        #expect(try daemon.stop() == 0)
        let lines = daemon.log.split(separator: "\n")
        #expect(lines.count >= 4, "\(daemon.log)")
        var messages: [String] = []
        for line in lines {
            let object = try JSONParser.parse(String(line))
            guard case .object(let fields) = object else {
                Issue.record("not an object: \(line)")
                continue
            }
            #expect(Array(fields.keys.prefix(4)) == ["ts", "level", "msg", "source"], "\(line)")
            let ts = try #require(fields["ts"]?.stringValue)
            #expect(ts.count == 27 && ts.hasSuffix("Z") && Timestamp(rfc3339: ts) != nil, "\(ts)")
            #expect(
                ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(
                    fields["level"]?.stringValue ?? ""))
            messages.append(fields["msg"]?.stringValue ?? "")
            if fields["msg"] == "listening" { #expect(fields["socket"]?.stringValue == daemon.socketPath) }
            #expect(!line.contains("pw@") && !line.contains("token=1"), "secrets stay out of the log: \(line)")
        }
        #expect(messages.contains("listening"))
        #expect(messages.contains("stopped"))
    }

    @Test func anUnknownLogFormatIsRefused() throws {
        let daemon = try Daemon(arguments: ["--log-format", "xml"], waitUntilReady: false)
        #expect(try daemon.waitForExit(timeout: 20) != 0)
        #expect(daemon.log.contains("--log-format"))
    }
}

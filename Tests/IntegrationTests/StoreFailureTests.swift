import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A disk that refuses writes, made without root: the daemon's file-size limit is lowered
/// to one byte with prlimit(2), so every write SQLite makes past the first byte of a file
/// fails (EFBIG), as on a full disk; raising it again is the disk freed.
@Suite struct StoreFailureTests {
    static func setFileSizeLimit(_ pid: pid_t, _ bytes: String) throws {
        try prlimit(pid, "--fsize=\(bytes):unlimited")
    }

    /// util-linux's prlimit(1) (prlimit(2) is not exported to Swift) on a running process.
    static func prlimit(_ pid: pid_t, _ limit: String) throws {
        let directory = try TemporaryDirectory()
        let output = directory.file("prlimit.out")
        let process = try ChildProcess(
            executable: "/usr/bin/prlimit", arguments: ["--pid", "\(pid)", limit],
            environment: ChildProcess.cleanEnvironment, outputPath: output)
        guard try process.waitForExit(timeout: 20) == 0 else {
            throw TestFailure("prlimit: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        }
    }

    /// While writes fail: emits answer `unavailable` and store nothing, reads still work,
    /// attempts already made are not made again (every delivery reaches the receiver
    /// exactly once), and nothing new is sent. Once writes work, delivery goes on without
    /// a restart and the log holds one line per attempt.
    @Test func aFailingDiskAnswersUnavailableAndRepeatsNoAttempt() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon()
        let client = try daemon.client()
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 20)
        for i in 0..<60 { #expect(try client.request(emit(statusEvent(), id: i)).isOK) }
        _ = try DeliveryTests.waitForRequests(sink, count: 5)

        try Self.setFileSizeLimit(daemon.pid, "1")
        var refused: JSON?
        for _ in 0..<100 {
            let response = try client.request(emit(statusEvent()))
            if !response.isOK {
                refused = response
                break
            }
            usleep(20_000)
        }
        #expect(refused?.errorCode == "unavailable", "\(String(describing: refused))")
        #expect(try client.request(["cmd": "stats"]).isOK)
        #expect(try client.request(["cmd": "list_webhooks"]).isOK)
        // In-flight attempts finish and their outcomes wait; nothing more goes out.
        usleep(1_000_000)
        let duringFailure = sink.requests.count
        usleep(1_500_000)
        #expect(sink.requests.count == duringFailure, "sent while outcomes could not be stored")
        #expect(duringFailure < 60)
        let accepted = try #require(try client.request(["cmd": "stats"])["events_accepted"]?.intValue)

        try Self.setFileSizeLimit(daemon.pid, "unlimited")
        let stats = try DeliveryTests.waitForStats(client) {
            $0[path: "deliveries", "delivered"]?.intValue == accepted
        }
        #expect(stats[path: "deliveries", "pending"] == 0)
        let requests = sink.requests
        let ids = requests.compactMap { $0[path: "headers", "webhook-id"]?.stringValue }
        #expect(ids.count == accepted, "POSTs: \(ids.count) for \(accepted) deliveries")
        #expect(Set(ids).count == ids.count, "a delivery was POSTed twice")
        let log = try client.request(["cmd": "list_requests", "limit": 1000])
        #expect(log["requests"]?.arrayValue?.count == accepted)
        #expect(try client.request(emit(statusEvent())).isOK)
        #expect(daemon.log.contains("recording attempts works again"), "\(daemon.log)")
    }
}

extension JSON {
    var intValue: Int? {
        if case .number(let number) = self { return number.int64Value.map { Int($0) } }
        return nil
    }
}

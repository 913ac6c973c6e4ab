import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Out of file descriptors with clients waiting to be accepted, the daemon refuses them
/// (one `unavailable` line each, with a descriptor it keeps spare for this) instead of
/// retrying accept in a loop (it spun a full core), and serves again once descriptors
/// are free.
@Suite struct FileDescriptorExhaustionTests {
    /// CPU seconds the process has used (user + system), from /proc.
    static func cpuSeconds(_ pid: pid_t) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test func exhaustedDescriptorsDoNotSpinTheEventLoop() throws {
        let daemon = try Daemon()
        let first = try daemon.client()
        #expect(try first.request(["cmd": "ping"]).isOK)
        // Two descriptors left: the first clients take them, the rest find none.
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd").count
        try StoreFailureTests.prlimit(daemon.pid, "--nofile=\(open + 2):")
        var waiting: [ControlClient] = []
        for _ in 0..<100 { waiting.append(try daemon.client()) }
        usleep(500_000)
        // The first few may have been accepted while descriptors lasted; the last were not.
        for client in waiting.suffix(3) {
            let refusal = try client.readResponse()
            #expect(refusal.errorCode == "unavailable", "\(refusal)")
            #expect(try client.readLine() == nil)
        }
        let before = try #require(Self.cpuSeconds(daemon.pid))
        usleep(2_000_000)
        let used = try #require(Self.cpuSeconds(daemon.pid)) - before
        print("CPU used in 2 s after 100 clients came with no descriptor free: \(used) s")
        #expect(used < 0.5, "the daemon used \(used) s of CPU in 2 s")
        // The connection it has still works.
        #expect(try first.request(["cmd": "ping"]).isOK)

        waiting.removeAll()
        try StoreFailureTests.prlimit(daemon.pid, "--nofile=4096:")
        var served = false
        for _ in 0..<100 where !served {
            served = (try? daemon.client().request(["cmd": "ping"]))?.isOK == true
            if !served { usleep(50_000) }
        }
        #expect(served)
        #expect(daemon.log.contains("out of file descriptors"), "\(daemon.log)")
    }
}

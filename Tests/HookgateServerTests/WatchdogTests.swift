import Logging
import Synchronization
import Testing

@testable import HookgateServer

@Suite("Watchdog")
struct WatchdogTests {
    /// A part that never answers is reported as such, and its probe is not sent again
    /// while it is out (so a wedged part does not pile up probes).
    @Test func aWedgedPartIsReportedAndProbedOnce() async {
        let sent = Mutex(0)
        let watchdog = Watchdog(
            intervalMicroseconds: nil,
            probes: [
                .init(name: "quick") {},
                .init(name: "wedged") {
                    sent.withLock { $0 += 1 }
                    try? await Task.sleep(for: .seconds(3600))
                },
            ], logger: Logger(label: "test"))
        // Only the wedged one is certain: probes run as tasks, and in the test process other
        // (blocking) tests may keep the concurrency pool from running the quick one for
        // a while. (That parts which answer let WATCHDOG=1 out is SocketActivationTests'.)
        #expect(await watchdog.unanswered(watchdog.probes, within: .milliseconds(50)).contains("wedged"))
        #expect(await watchdog.unanswered(watchdog.probes, within: .milliseconds(50)).contains("wedged"))
        #expect(sent.withLock { $0 } <= 1, "a probe still out was sent again")
    }
}

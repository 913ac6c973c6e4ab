import Logging
import Synchronization
import Testing

@testable import HookgateServer

@Suite("Watchdog")
struct WatchdogTests {
    /// A part that never answers is reported as such, and its probe is not sent again
    /// while it is out (so a wedged part does not pile up probes); parts that answer are not.
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
        // The quick one may not have been scheduled yet within 50 ms on a busy machine.
        #expect(await watchdog.unanswered(watchdog.probes, within: .milliseconds(50)).contains("wedged"))
        #expect(await watchdog.unanswered(watchdog.probes, within: .seconds(3)) == ["wedged"])
        #expect(sent.withLock { $0 } == 1)
    }

    @Test func partsThatAnswerAreNotReported() async {
        let watchdog = Watchdog(
            intervalMicroseconds: nil, probes: [.init(name: "a") {}, .init(name: "b") { await Task.yield() }],
            logger: Logger(label: "test"))
        // Generous: other tests may keep the concurrency pool busy; it returns at once
        // when both have answered.
        #expect(await watchdog.unanswered(watchdog.probes, within: .seconds(60)).isEmpty)
    }
}

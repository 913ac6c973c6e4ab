import Logging
import ServiceLifecycle
import Synchronization

/// systemd's watchdog as a service: `WATCHDOG=1` goes out at half the interval systemd
/// asked for, and only when every probe (the event loop, the store's writer, the delivery
/// engine) has answered within that half. A part that is wedged stops the pings, and
/// systemd restarts the daemon.
public final class Watchdog: Service {
    public struct Probe: Sendable {
        public let name: String
        public let answer: @Sendable () async -> Void

        /// `answer` returns once the part has run a piece of work submitted to it.
        public init(name: String, answer: @escaping @Sendable () async -> Void) {
            self.name = name
            self.answer = answer
        }
    }

    private let intervalMicroseconds: UInt64?
    let probes: [Probe]
    private let logger: Logger
    /// Probes sent and not yet answered.
    private let outstanding = Mutex<Set<String>>([])

    /// `intervalMicroseconds` is systemd's `WATCHDOG_USEC`; nil turns the service into one
    /// that only waits for shutdown.
    public init(intervalMicroseconds: UInt64?, probes: [Probe], logger: Logger) {
        self.intervalMicroseconds = intervalMicroseconds
        self.probes = probes
        self.logger = logger
    }

    public func run() async throws {
        guard let usec = intervalMicroseconds else {
            try? await gracefulShutdown()
            return
        }
        let interval = Duration.microseconds(Int64(usec / 2))
        logger.info("watchdog enabled", metadata: ["interval_us": "\(usec / 2)"])
        await cancelWhenGracefulShutdown {
            var silent: [String] = []
            while !Task.isCancelled {
                let started = ContinuousClock.now
                let unanswered = await self.unanswered(self.probes, within: interval)
                if unanswered.isEmpty {
                    Systemd.notify("WATCHDOG=1")
                    if !silent.isEmpty { self.logger.notice("watchdog: every part answers again") }
                } else if unanswered != silent {
                    self.logger.error(
                        "watchdog: not answering, so systemd is not told we are alive",
                        metadata: ["parts": "\(unanswered.joined(separator: ", "))"])
                }
                silent = unanswered
                try? await Task.sleep(until: started + interval)
            }
        }
    }

    /// The names of the probes that did not answer within `limit`. A probe still out
    /// from an earlier round is not sent again: it stays unanswered until it returns.
    func unanswered(_ probes: [Probe], within limit: Duration) async -> [String] {
        let deadline = ContinuousClock.now + limit
        for probe in probes {
            let isNew = outstanding.withLock { $0.insert(probe.name).inserted }
            guard isNew else { continue }
            Task {
                await probe.answer()
                _ = self.outstanding.withLock { $0.remove(probe.name) }
            }
        }
        while ContinuousClock.now < deadline, !outstanding.withLock({ $0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(2))
        }
        let out = outstanding.withLock { $0 }
        return probes.map(\.name).filter(out.contains)
    }
}

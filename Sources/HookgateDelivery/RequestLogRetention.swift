import Dispatch
import HookgateCore
import HookgateStore
import Logging

/// Keeps history bounded, in the background: the request log within `--log-retention`
/// (age) and `--log-max-rows` (count), and finished deliveries and events without an
/// unfinished delivery within `--event-retention`. Every few seconds it deletes at most
/// a batch of each, so the writer is never held for long, and goes on at once while a
/// pass finds more to do. Pending deliveries are never deleted.
///
/// `@unchecked Sendable`: `timer` and `running` are touched only on `queue`.
public final class RequestLogRetention: @unchecked Sendable {
    public static let interval = DispatchTimeInterval.seconds(2)
    /// Rows looked at per transaction at most; the store also ends a transaction after
    /// about 20 ms of deleting (10,000 rows held the writer, and every emit behind it,
    /// for over 100 ms). A pass that did not catch up is followed at once by the next.
    static let batch = 2000
    /// Deliveries and events looked at per transaction (each deleted one costs its
    /// indexes too).
    static let eventBatch = 500

    private let store: any Store
    private let maxAgeMicroseconds: Int64
    private let maxRows: Int
    private let eventMaxAgeMicroseconds: Int64
    private let clock: any WallClock
    private let logger: Logger
    private let queue = DispatchQueue(label: "hookgate.retention")
    private var timer: DispatchSourceTimer?
    private var running = false

    public init(
        store: any Store, maxAgeMicroseconds: Int64, maxRows: Int, eventMaxAgeMicroseconds: Int64,
        clock: any WallClock = SystemWallClock(), logger: Logger
    ) {
        self.store = store
        self.maxAgeMicroseconds = maxAgeMicroseconds
        self.maxRows = maxRows
        self.eventMaxAgeMicroseconds = eventMaxAgeMicroseconds
        self.clock = clock
        self.logger = logger
    }

    public func start() {
        queue.async {
            let timer = DispatchSource.makeTimerSource(queue: self.queue)
            timer.schedule(deadline: .now(), repeating: Self.interval)
            timer.setEventHandler { [weak self] in self?.prune() }
            timer.resume()
            self.timer = timer
        }
    }

    public func stop() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    private func prune() {
        guard !running, timer != nil else { return }
        running = true
        let before = clock.now().adding(microseconds: -maxAgeMicroseconds)
        store.pruneRequestLog(before: before, keepRows: maxRows, batch: Self.batch) { result in
            self.queue.async {
                self.running = false
                switch result {
                case .success(let progress):
                    if progress.deleted > 0 {
                        self.logger.debug("request log pruned", metadata: ["lines": "\(progress.deleted)"])
                    }
                    if !progress.caughtUp {
                        self.prune()
                        return
                    }
                    self.pruneEvents()
                case .failure(let error):
                    self.logger.error("pruning the request log failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    private func pruneEvents() {
        running = true
        let before = clock.now().adding(microseconds: -eventMaxAgeMicroseconds)
        store.pruneEvents(before: before, maxRows: Self.eventBatch) { result in
            self.queue.async {
                self.running = false
                switch result {
                case .success(let progress):
                    if progress.deleted > 0 {
                        self.logger.debug("events and deliveries pruned", metadata: ["rows": "\(progress.deleted)"])
                    }
                    if !progress.caughtUp && self.timer != nil { self.pruneEvents() }
                case .failure(let error):
                    self.logger.error("pruning events failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

import HookgateStore
import NIOCore
import Synchronization

/// Fans the request log out to `tail_requests` connections as its lines are committed.
///
/// Publishing never waits for a reader: it runs on the store's thread and only hands
/// each subscriber its lines. A subscriber holds at most `TailSubscriber.limitBytes` of
/// lines not yet written to its socket; a reader slower than that is told "tail
/// overflow" and closed, and delivery goes on at its own pace.
public final class RequestTail: Sendable {
    private let subscribers = Mutex<[ObjectIdentifier: TailSubscriber]>([:])

    /// Streams open now (`hookgate_tail_subscribers`).
    public var subscriberCount: Int { subscribers.withLock { $0.count } }

    public init() {}

    /// Called by the store (`observeRequestLog`) with lines just committed, in log order.
    public func publish(_ logged: [LoggedRequest]) {
        let current = subscribers.withLock { $0.isEmpty ? [] : Array($0.values) }
        for subscriber in current { subscriber.offer(logged) }
    }

    func subscribe(_ subscriber: TailSubscriber) {
        subscribers.withLock { $0[ObjectIdentifier(subscriber)] = subscriber }
    }

    func unsubscribe(_ subscriber: TailSubscriber) {
        _ = subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(subscriber)) }
    }
}

/// One `tail_requests` stream: filters the published lines and hands them to its
/// connection's event loop, counting what is handed over but not yet written.
final class TailSubscriber: Sendable {
    /// What a subscriber may hold unwritten before it overflows: a reader may fall a
    /// few seconds behind a busy gateway, not minutes.
    static let limitBytes = 4 << 20

    let webhookID: String?
    private let eventLoop: any EventLoop
    /// Runs on `eventLoop` with lines to write, or with nil once the stream overflowed.
    private let deliver: @Sendable ([LoggedRequest]?) -> Void
    private struct Backlog {
        var bytes = 0
        var overflowed = false
    }
    private let backlog = Mutex(Backlog())

    init(webhookID: String?, eventLoop: any EventLoop, deliver: @escaping @Sendable ([LoggedRequest]?) -> Void) {
        self.webhookID = webhookID
        self.eventLoop = eventLoop
        self.deliver = deliver
    }

    /// A line's share of the limit: its response body dominates; the rest is small.
    static func weight(_ logged: LoggedRequest) -> Int {
        512 + logged.record.responseBody.count + logged.record.url.utf8.count + (logged.record.error?.utf8.count ?? 0)
    }

    fileprivate func offer(_ logged: [LoggedRequest]) {
        let lines = webhookID.map { id in logged.filter { $0.record.webhookID == id } } ?? logged
        guard !lines.isEmpty else { return }
        let weight = lines.reduce(0) { $0 + Self.weight($1) }
        let accepted: Bool? = backlog.withLock { backlog in
            guard !backlog.overflowed else { return nil }
            // Batches are bounded where they are made (the engine records at most
            // `DeliveryEngine.recordBatchBytes` at once, cancellations go a few thousand
            // at a time), so a reader that keeps up never meets this bound.
            if backlog.bytes + weight > Self.limitBytes {
                backlog.overflowed = true
                return false
            }
            backlog.bytes += weight
            return true
        }
        guard let accepted else { return }
        let deliver = self.deliver
        eventLoop.execute { deliver(accepted ? lines : nil) }
    }

    /// The connection wrote `logged` to its channel: they no longer count.
    func written(_ logged: some Sequence<LoggedRequest>) {
        let weight = logged.reduce(0) { $0 + Self.weight($1) }
        backlog.withLock { $0.bytes -= weight }
    }
}

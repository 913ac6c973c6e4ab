import Foundation
import HookgateCore
import HookgateStore
import Logging
import Synchronization
import Testing

@testable import HookgateDelivery

/// A clock the test moves.
private final class ManualClock: WallClock {
    private let time = Mutex(Timestamp(microseconds: 1_744_592_372_000_000))

    func now() -> Timestamp { time.withLock { $0 } }

    func advance(milliseconds: Int64) { time.withLock { $0 = $0.adding(microseconds: milliseconds * 1000) } }
}

/// A receiver the test scripts: each request gets `answer`'s status at once, or (nil)
/// waits in `held` until the test answers it.
private final class ScriptedTransport: DeliverySending {
    typealias Completion = @Sendable (DeliveryResponse) -> Void

    private struct State {
        var answer: @Sendable (DeliveryRequest) -> Int? = { _ in 204 }
        var sent: [DeliveryRequest] = []
        var held: [(request: DeliveryRequest, completion: Completion)] = []
    }

    private let state = Mutex(State())

    var sent: [DeliveryRequest] { state.withLock { $0.sent } }
    var heldCount: Int { state.withLock { $0.held.count } }

    func answer(with answer: @escaping @Sendable (DeliveryRequest) -> Int?) {
        state.withLock { $0.answer = answer }
    }

    func send(_ requests: [DeliveryRequest], completion: @escaping Completion) {
        var now: [(DeliveryRequest, Int)] = []
        state.withLock { state in
            for request in requests {
                state.sent.append(request)
                if let status = state.answer(request) {
                    now.append((request, status))
                } else {
                    state.held.append((request, completion))
                }
            }
        }
        for (request, status) in now { completion(Self.response(request, status: status)) }
    }

    /// Answers the first `count` held requests (all by default) with `status`.
    func releaseHeld(status: Int, count: Int = .max) {
        let held = state.withLock { state in
            let taken = Array(state.held.prefix(count))
            state.held.removeFirst(taken.count)
            return taken
        }
        for (request, completion) in held { completion(Self.response(request, status: status)) }
    }

    func shutdown() {
        let held = state.withLock { state in
            defer { state.held.removeAll() }
            return state.held
        }
        for (request, completion) in held {
            completion(
                DeliveryResponse(
                    tag: request.tag, httpStatus: nil, failure: .network, error: CurlTransport.shutdownMessage,
                    latencyMicroseconds: 0, responseBody: [], retryAfter: nil))
        }
    }

    private static func response(_ request: DeliveryRequest, status: Int) -> DeliveryResponse {
        DeliveryResponse(
            tag: request.tag, httpStatus: status, failure: nil, error: nil, latencyMicroseconds: 100,
            responseBody: [], retryAfter: nil)
    }
}

/// The webhooks the engine said a 410 disabled.
private final class DisabledWebhooks: Sendable {
    let ids = Mutex<[String]>([])
}

private struct FixedRouter: EventRouter {
    let webhookIDs: [String]
    func route(_ events: [EventMatchKey]) -> [[String]] { events.map { _ in webhookIDs } }
}

/// The engine over a real store in a temporary directory, a scripted receiver and a
/// clock the test moves; the engine's timer is off, and the test ticks.
private final class Harness: Sendable {
    let clock = ManualClock()
    let transport = ScriptedTransport()
    let store: SQLiteStore
    let engine: DeliveryEngine
    let directory: String
    let disabledWebhooks = DisabledWebhooks()

    init(options: DeliveryEngine.Options) throws {
        directory = FileManager.default.temporaryDirectory.path + "/hookgate-engine-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try SQLiteStore(directory: directory)
        var options = options
        options.manualTicks = true
        let disabled = disabledWebhooks
        engine = DeliveryEngine(
            store: store, transport: transport, options: options, clock: clock, logger: Logger(label: "test"),
            onWebhookDisabled: { webhook in disabled.ids.withLock { $0.append(webhook.id) } })
    }

    func webhook(_ name: String, rateLimit: Int) async throws -> String {
        let webhook = Webhook.create(
            WebhookDefinition(
                name: name, url: "https://receiver.test/\(name)", filter: WebhookFilter(eventType: [.smsStatus]),
                rateLimit: rateLimit),
            at: clock.now())
        try await store.insertWebhook(webhook)
        return webhook.id
    }

    /// Stores `count` events for the webhooks, received at `receivedAt` (now by default):
    /// their deliveries are due then.
    func emit(_ count: Int, to webhookIDs: [String], receivedAt: Timestamp? = nil) async throws {
        let received = receivedAt ?? clock.now()
        for _ in 0..<count {
            let event = try EventValidator.event(
                [
                    "event_type": "SMS_STATUS",
                    "status": [
                        "id": "m1", "type": "SMS", "sender": "61400000009", "recipient": "447", "status": "SENT",
                    ],
                ], receivedAt: received)
            _ = try await store.appendEvent(
                NewEvent(id: Identifiers.uuid(), event: event, receivedAt: received, idempotencyKey: nil),
                router: FixedRouter(webhookIDs: webhookIDs))
        }
    }

    /// Waits until the engine waits only for time or the receiver.
    func settle() async {
        var calm = 0
        while calm < 3 {
            await store.afterPriorCalls()
            calm = await engine.isSettled ? calm + 1 : 0
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Moves the clock on by `milliseconds` and runs one tick, `times` times.
    func tick(every milliseconds: Int64 = 100, times: Int = 1) async {
        for _ in 0..<times {
            clock.advance(milliseconds: milliseconds)
            engine.tick()
            await settle()
        }
    }

    func sent(to webhookID: String) -> Int {
        transport.sent.filter { $0.url.hasSuffix("/" + webhookID) || $0.url.contains(webhookID) }.count
    }

    func close() async {
        await engine.stop(grace: .milliseconds(100))
        await store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

@Suite("Delivery engine scheduling")
struct DeliveryEngineTests {
    /// A webhook at 10 a second: a full bucket (one token) at once, then one per 100 ms.
    @Test func sendsWithinTheRateLimit() async throws {
        let harness = try Harness(options: .init(retryPolicy: RetryPolicy(delays: [1_000_000], jitter: 0)))
        let id = try await harness.webhook("slow", rateLimit: 10)
        try await harness.emit(40, to: [id])
        harness.engine.start()
        await harness.settle()
        #expect(harness.transport.sent.count == 1, "the bucket holds one token")
        await harness.tick(times: 10)
        #expect(harness.transport.sent.count == 11, "one more per 100 ms")
        await harness.tick(every: 1000, times: 1)
        #expect(harness.transport.sent.count == 12, "a bucket does not fill beyond its capacity")
        #expect(try await harness.store.stats().deliveries[.delivered] == 12)
        await harness.close()
    }

    @Test func inFlightAttemptsAreBoundedPerWebhook() async throws {
        let harness = try Harness(options: .init(maxInFlightPerWebhook: 4))
        harness.transport.answer { _ in nil }
        let id = try await harness.webhook("busy", rateLimit: 1000)
        try await harness.emit(30, to: [id])
        harness.engine.start()
        await harness.settle()
        await harness.tick(times: 5)
        #expect(harness.transport.sent.count == 4)
        #expect(harness.engine.inFlight(webhookID: id) == 4)
        harness.transport.releaseHeld(status: 204)
        await harness.settle()
        await harness.tick()
        #expect(harness.transport.sent.count == 8, "each answer frees a slot")
        await harness.close()
    }

    /// A failed attempt is retried at its due time: not a tick before, and at the first
    /// tick after (not at the next once-a-second scan).
    @Test func aRetryGoesOutAtItsDueTime() async throws {
        let harness = try Harness(options: .init(retryPolicy: RetryPolicy(delays: [1_000_000, 5_000_000], jitter: 0)))
        let id = try await harness.webhook("flaky", rateLimit: 100)
        let attempts = Mutex(0)
        harness.transport.answer { _ in
            attempts.withLock {
                $0 += 1; return $0 == 1 ? 500 : 204
            }
        }
        try await harness.emit(1, to: [id])
        harness.engine.start()
        await harness.settle()
        #expect(harness.transport.sent.count == 1)
        await harness.tick(times: 9)
        #expect(harness.transport.sent.count == 1, "900 ms after a failure whose retry is due at 1 s")
        await harness.tick(times: 2)
        #expect(harness.transport.sent.count == 2)
        let stats = try await harness.store.stats()
        #expect(stats.deliveries[.delivered] == 1)
        #expect(stats.deliveries[.pending] ?? 0 == 0)
        await harness.close()
    }

    /// A webhook whose lane is full (a long backlog at a low rate) neither hides another
    /// webhook's deliveries nor holds more than its lane in memory.
    @Test func aLongBacklogDoesNotHoldUpOthers() async throws {
        let harness = try Harness(options: .init(maxInFlightPerWebhook: 8, window: 64))
        harness.transport.answer { _ in nil }
        let backlog = try await harness.webhook("backlog", rateLimit: 1)
        try await harness.emit(300, to: [backlog])
        let quick = try await harness.webhook("quick", rateLimit: 1000)
        harness.engine.start()
        await harness.settle()
        await harness.tick(times: 3)
        try await harness.emit(5, to: [quick])
        await harness.settle()
        await harness.tick()
        #expect(harness.engine.inFlight(webhookID: quick) == 5, "sent as soon as they were stored")
        #expect(harness.engine.inFlight(webhookID: backlog) == 1, "at 1 a second")
        await harness.close()
    }

    /// The engine reads a busy webhook on from the last delivery it took; a delivery
    /// committed later but due earlier (an event received before, committed after) is
    /// still read at once, not at the next full resync.
    @Test func aDeliveryDueBeforeWhatWasTakenIsStillRead() async throws {
        let harness = try Harness(options: .init())
        harness.transport.answer { _ in nil }
        let id = try await harness.webhook("orders", rateLimit: 1000)
        try await harness.emit(3, to: [id])
        harness.engine.start()
        await harness.settle()
        #expect(harness.transport.sent.count == 3)
        try await harness.emit(1, to: [id], receivedAt: harness.clock.now().adding(microseconds: -10_000_000))
        await harness.settle()
        await harness.tick()
        #expect(harness.transport.sent.count == 4)
        await harness.close()
    }

    /// Deliveries a lane let go of (its webhook changed) are read again, though the engine
    /// had read past them.
    @Test func releasedDeliveriesAreReadAgain() async throws {
        let harness = try Harness(options: .init())
        let id = try await harness.webhook("slow", rateLimit: 1)
        try await harness.emit(10, to: [id])
        harness.engine.start()
        await harness.settle()
        #expect(harness.transport.sent.count == 1, "one token; the other nine wait in the lane")
        harness.engine.webhookChanged(id: id)
        await harness.settle()
        await harness.tick(every: 1000, times: 3)
        #expect(harness.transport.sent.count == 4)
        #expect(try await harness.store.stats().deliveries[.delivered] == 4)
        await harness.close()
    }

    /// New deliveries are read when they are committed, without waiting for a tick.
    @Test func newDeliveriesGoOutWithoutATick() async throws {
        let harness = try Harness(options: .init())
        let id = try await harness.webhook("orders", rateLimit: 100)
        harness.engine.start()
        await harness.settle()
        try await harness.emit(3, to: [id])
        await harness.settle()
        #expect(harness.transport.sent.count == 3)
        await harness.close()
    }

    @Test func goneDisablesTheWebhookAndCancelsTheRest() async throws {
        let harness = try Harness(options: .init(maxInFlightPerWebhook: 1))
        harness.transport.answer { _ in 410 }
        let id = try await harness.webhook("gone", rateLimit: 1000)
        try await harness.emit(20, to: [id])
        harness.engine.start()
        await harness.settle()
        await harness.tick(times: 3)
        #expect(harness.transport.sent.count == 1, "nothing more is sent after a 410")
        #expect(harness.disabledWebhooks.ids.withLock { $0 } == [id])
        let stats = try await harness.store.stats()
        #expect(stats.deliveries[.cancelled] == 20)
        #expect(stats.deliveries[.pending] ?? 0 == 0)
        #expect(try await harness.store.webhook(id: id)?.state == .disabled)
        await harness.close()
    }

    /// Siblings in flight that answer 410 after the disabling has committed do not disable
    /// the webhook again (nor restart its cancellation); every delivery ends once.
    @Test func lateSiblingsOfA410DisableOnce() async throws {
        let harness = try Harness(options: .init(maxInFlightPerWebhook: 4))
        harness.transport.answer { _ in nil }
        let id = try await harness.webhook("gone", rateLimit: 1000)
        try await harness.emit(10, to: [id])
        harness.engine.start()
        await harness.settle()
        #expect(harness.transport.heldCount == 4)
        harness.transport.releaseHeld(status: 410, count: 1)
        await harness.settle()
        await harness.tick()
        harness.transport.releaseHeld(status: 410)
        await harness.settle()
        await harness.tick(times: 3)
        #expect(harness.disabledWebhooks.ids.withLock { $0 } == [id])
        let stats = try await harness.store.stats()
        #expect(stats.deliveries[.cancelled] == 10)
        #expect(try await harness.store.listRequests(RequestQuery(limit: 100)).requests.count == 10)
        await harness.close()
    }

    /// Shutdown cuts an attempt off: nothing is logged, and it stays pending for the next
    /// start.
    @Test func anAttemptCutOffByShutdownStaysPending() async throws {
        let harness = try Harness(options: .init())
        harness.transport.answer { _ in nil }
        let id = try await harness.webhook("orders", rateLimit: 100)
        try await harness.emit(2, to: [id])
        harness.engine.start()
        await harness.settle()
        #expect(harness.transport.heldCount == 2)
        await harness.engine.stop(grace: .milliseconds(50))
        #expect(try await harness.store.stats().deliveries[.pending] == 2)
        #expect(try await harness.store.listRequests(RequestQuery()).requests.isEmpty)
        await harness.store.close()
        try? FileManager.default.removeItem(atPath: harness.directory)
    }
}

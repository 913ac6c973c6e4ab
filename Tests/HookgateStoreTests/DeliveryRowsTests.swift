import Foundation
import HookgateCore
import Synchronization
import Testing

@testable import HookgateStore

/// Routes every event to a fixed list of webhooks.
private struct FixedRouter: EventRouter {
    let webhookIDs: [String]
    func route(_ events: [EventMatchKey]) -> [[String]] { events.map { _ in webhookIDs } }
}

private let start = Timestamp(microseconds: 1_744_592_372_000_000)

private func seconds(_ n: Int64) -> Timestamp { start.adding(microseconds: n * 1_000_000) }

private func newEvent(at time: Timestamp, id: String = Identifiers.uuid()) throws -> NewEvent {
    let event = try EventValidator.event(
        [
            "event_type": "SMS_STATUS",
            "status": ["id": "m1", "type": "SMS", "sender": "61400000009", "recipient": "447", "status": "SENT"],
        ], receivedAt: time)
    return NewEvent(id: id, event: event, receivedAt: time, idempotencyKey: nil)
}

private func webhook(_ name: String) -> Webhook {
    Webhook.create(
        WebhookDefinition(
            name: name, url: "https://example.com/\(name)", filter: WebhookFilter(eventType: [.smsStatus]),
            rateLimit: 25),
        at: start)
}

private func attempt(_ due: DueDelivery, at: Timestamp, outcome: RequestOutcome, next: Timestamp? = nil)
    -> AttemptRecord
{
    AttemptRecord(
        deliverySeq: due.deliverySeq, at: at, webhookID: due.webhookID, eventID: due.eventID,
        eventType: due.eventType, attempt: due.attempts + 1, url: due.url,
        httpStatus: outcome == .delivered ? 204 : 500,
        errorClass: outcome == .delivered ? nil : "http", error: nil, latencyMicroseconds: 1200,
        userAgent: "hookgate/test", responseBody: Array("ok".utf8), outcome: outcome, nextAttemptAt: next)
}

/// A webhook `orders` with `count` deliveries pending, all due at 0, and the first
/// `read` of them as the scheduler reads them.
private func ordersWithPending(_ store: SQLiteStore, _ count: Int, read: Int = 10) async throws
    -> (Webhook, [DueDelivery])
{
    let hook = webhook("orders")
    try await store.insertWebhook(hook)
    for _ in 0..<count {
        _ = try await store.appendEvent(try newEvent(at: seconds(0)), router: FixedRouter(webhookIDs: [hook.id]))
    }
    return (hook, try await store.dueDeliveries(now: seconds(0), limit: read))
}

private func withStore(_ body: (SQLiteStore) async throws -> Void) async throws {
    let path = FileManager.default.temporaryDirectory.path + "/hookgate-delivery-rows-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let store = try SQLiteStore(directory: path)
    do {
        try await body(store)
    } catch {
        await store.close()
        throw error
    }
    await store.close()
}

extension SQLiteStore {
    /// Everything due at `now` across webhooks, oldest due first: the scheduler's view
    /// when it holds nothing and every lane has room.
    fileprivate func dueDeliveries(now: Timestamp, limit: Int) async throws -> [DueDelivery] {
        let queries = try await pendingWebhooks().keys.sorted().map { DueQuery(webhookID: $0, limit: limit) }
        let found = try await dueDeliveries(now: now, for: queries).flatMap(\.deliveries)
        return Array(
            found.sorted { ($0.nextAttemptAt, $0.deliverySeq) < ($1.nextAttemptAt, $1.deliverySeq) }.prefix(limit))
    }
}

@Suite("Delivery rows")
struct DeliveryRowsTests {
    @Test func dueDeliveriesCarryWhatAnAttemptNeeds() async throws {
        try await withStore { store in
            let hook = webhook("orders")
            try await store.insertWebhook(hook)
            let event = try newEvent(at: seconds(0))
            _ = try await store.appendEvent(event, router: FixedRouter(webhookIDs: [hook.id]))
            #expect(try await store.dueDeliveries(now: seconds(-1), limit: 10).isEmpty, "not due before its time")
            let due = try await store.dueDeliveries(now: seconds(0), limit: 10)
            #expect(due.count == 1)
            let delivery = try #require(due.first)
            #expect(delivery.eventID == event.id)
            #expect(delivery.eventType == .smsStatus)
            #expect(delivery.payload == event.payload)
            #expect(delivery.webhookID == hook.id)
            #expect(delivery.webhookName == "orders")
            #expect(delivery.url == "https://example.com/orders")
            #expect(delivery.rateLimit == 25)
            #expect(delivery.attempts == 0)
            #expect(delivery.secrets == [hook.secret])
        }
    }

    /// A webhook is read through its own index range, oldest due first, up to the limit,
    /// stepping over what the scheduler already holds; the answer says when to look again.
    @Test func aWebhookIsReadInDueOrderUpToItsLimit() async throws {
        try await withStore { store in
            let hook = webhook("orders")
            try await store.insertWebhook(hook)
            for i in 0..<5 {
                _ = try await store.appendEvent(
                    try newEvent(at: seconds(Int64(10 - i))), router: FixedRouter(webhookIDs: [hook.id]))
            }
            let query = [DueQuery(webhookID: hook.id, limit: 3)]
            let first = try #require(try await store.dueDeliveries(now: seconds(100), for: query).first)
            #expect(first.deliveries.map(\.nextAttemptAt) == [seconds(6), seconds(7), seconds(8)])
            #expect(first.nextDue == seconds(100), "cut short by the limit: more is due now")
            let held = Set(first.deliveries.map(\.deliverySeq))
            let rest = try #require(try await store.dueDeliveries(now: seconds(100), for: query, claimed: held).first)
            #expect(rest.deliveries.map(\.nextAttemptAt) == [seconds(9), seconds(10)])
            #expect(rest.nextDue == nil, "nothing else pending")
            let early = try #require(
                try await store.dueDeliveries(now: seconds(7), for: [DueQuery(webhookID: hook.id, limit: 10)]).first)
            #expect(early.deliveries.map(\.nextAttemptAt) == [seconds(6), seconds(7)])
            #expect(early.nextDue == seconds(8), "the next one's due time")
            // Held rows beyond one step of the walk are stepped over too.
            let all = try #require(
                try await store.dueDeliveries(now: seconds(100), for: [DueQuery(webhookID: hook.id, limit: 10)]).first)
            let holdingAllButLast = Set(all.deliveries.dropLast().map(\.deliverySeq))
            let last = try #require(
                try await store.dueDeliveries(
                    now: seconds(100), for: [DueQuery(webhookID: hook.id, limit: 10)], claimed: holdingAllButLast
                ).first)
            #expect(last.deliveries.map(\.deliverySeq) == [all.deliveries[4].deliverySeq])
        }
    }

    @Test func aWalkStepsOverMoreHeldRowsThanOnePage() async throws {
        try await withStore { store in
            let hook = webhook("orders")
            try await store.insertWebhook(hook)
            let count = DueRows.walkPage * 2 + 10
            for _ in 0..<count {
                _ = try await store.appendEvent(
                    try newEvent(at: seconds(0)), router: FixedRouter(webhookIDs: [hook.id]))
            }
            let query = [DueQuery(webhookID: hook.id, limit: count)]
            let all = try #require(try await store.dueDeliveries(now: seconds(1), for: query).first)
            #expect(all.deliveries.count == count)
            let held = Set(all.deliveries.prefix(count - 3).map(\.deliverySeq))
            let rest = try #require(try await store.dueDeliveries(now: seconds(1), for: query, claimed: held).first)
            #expect(rest.deliveries.map(\.deliverySeq) == all.deliveries.suffix(3).map(\.deliverySeq))
        }
    }

    /// A query with a cursor reads on after it, in due order (due time, then sequence),
    /// across rows due at the same time.
    @Test func aScanReadsOnAfterItsCursor() async throws {
        try await withStore { store in
            let hook = webhook("orders")
            try await store.insertWebhook(hook)
            for at in [3, 1, 2, 2, 5] as [Int64] {
                _ = try await store.appendEvent(
                    try newEvent(at: seconds(at)), router: FixedRouter(webhookIDs: [hook.id]))
            }
            let all = try #require(
                try await store.dueDeliveries(now: seconds(4), for: [DueQuery(webhookID: hook.id, limit: 10)]).first)
            #expect(all.deliveries.map(\.nextAttemptAt) == [seconds(1), seconds(2), seconds(2), seconds(3)])
            #expect(all.nextDue == seconds(5))
            let second = all.deliveries[1]
            let cursor = DueCursor(nextAttemptAt: second.nextAttemptAt, deliverySeq: second.deliverySeq)
            let rest = try #require(
                try await store.dueDeliveries(
                    now: seconds(4), for: [DueQuery(webhookID: hook.id, limit: 10, after: cursor)]
                ).first)
            #expect(rest.deliveries.map(\.deliverySeq) == all.deliveries.suffix(2).map(\.deliverySeq))
            #expect(rest.nextDue == seconds(5))
            let fromTheStart = try #require(
                try await store.dueDeliveries(
                    now: seconds(4), for: [DueQuery(webhookID: hook.id, limit: 10, after: .before(seconds(2)))]
                ).first)
            #expect(fromTheStart.deliveries.map(\.deliverySeq) == all.deliveries.suffix(3).map(\.deliverySeq))
        }
    }

    /// Only the webhooks asked for are read: one's backlog costs another's scan nothing.
    @Test func onlyTheWebhooksAskedForAreRead() async throws {
        try await withStore { store in
            let busy = webhook("busy")
            let quiet = webhook("quiet")
            try await store.insertWebhook(busy)
            try await store.insertWebhook(quiet)
            for i in 0..<4 {
                _ = try await store.appendEvent(
                    try newEvent(at: seconds(Int64(i))), router: FixedRouter(webhookIDs: [busy.id]))
            }
            _ = try await store.appendEvent(try newEvent(at: seconds(9)), router: FixedRouter(webhookIDs: [quiet.id]))
            let found = try await store.dueDeliveries(now: seconds(100), for: [DueQuery(webhookID: quiet.id, limit: 2)])
            #expect(found.map(\.webhookID) == [quiet.id])
            #expect(found.flatMap(\.deliveries).map(\.webhookID) == [quiet.id])
            #expect(try await store.pendingWebhooks() == [busy.id: seconds(0), quiet.id: seconds(9)])
            let all = try await store.dueDeliveries(now: seconds(100), limit: 10)
            #expect(all.count == 5)
        }
    }

    @Test func newDeliveriesAreAnnouncedOnceCommitted() async throws {
        try await withStore { store in
            let announced = Mutex<[[String: Timestamp]]>([])
            store.observeNewDeliveries { created in announced.withLock { $0.append(created) } }
            let first = webhook("first")
            let second = webhook("second")
            try await store.insertWebhook(first)
            try await store.insertWebhook(second)
            let event = try newEvent(at: seconds(0))
            _ = try await store.appendEvent(event, router: FixedRouter(webhookIDs: [first.id, second.id]))
            _ = try await store.appendEvent(try newEvent(at: seconds(1)), router: FixedRouter(webhookIDs: []))
            _ = try await store.redeliver(eventID: event.id, webhookID: second.id, at: seconds(2))
            // Each webhook with the earliest due time among its new deliveries.
            #expect(
                announced.withLock { $0 } == [[first.id: seconds(0), second.id: seconds(0)], [second.id: seconds(2)]])
        }
    }

    @Test func disabledWebhooksWaitAndRotatedSecretsSignBeside() async throws {
        try await withStore { store in
            let hook = webhook("orders")
            try await store.insertWebhook(hook)
            _ = try await store.appendEvent(try newEvent(at: seconds(0)), router: FixedRouter(webhookIDs: [hook.id]))
            _ = try await store.modifyWebhook(id: hook.id) {
                $0.settingState(.disabled, reason: "test", at: seconds(1))
            }
            #expect(try await store.dueDeliveries(now: seconds(5), limit: 10).isEmpty)
            let asked = try await store.dueDeliveries(now: seconds(5), for: [DueQuery(webhookID: hook.id, limit: 10)])
            #expect(asked == [DueWebhook(webhookID: hook.id, deliveries: [], nextDue: nil)], "a disabled webhook waits")
            let rotated = try #require(
                try await store.modifyWebhook(id: hook.id) {
                    $0.settingState(.active, reason: nil, at: seconds(2)).rotatingSecret(at: seconds(2))
                })
            let due = try await store.dueDeliveries(now: seconds(5), limit: 10)
            #expect(due.first?.secrets == [rotated.secret, hook.secret])
            let dayLater = try await store.dueDeliveries(now: seconds(2 + 24 * 3600), limit: 10)
            #expect(dayLater.first?.secrets == [rotated.secret], "the old secret stops after 24 hours")
        }
    }

    @Test func attemptsMoveDeliveriesOnAndCount() async throws {
        try await withStore { store in
            let (_, due) = try await ordersWithPending(store, 3)
            #expect(due.count == 3)
            try await store.recordAttempts([
                attempt(due[0], at: seconds(1), outcome: .delivered),
                attempt(due[1], at: seconds(1), outcome: .retrying, next: seconds(6)),
                attempt(due[2], at: seconds(1), outcome: .failed),
            ])
            let later = try await store.dueDeliveries(now: seconds(5), limit: 10)
            #expect(later.isEmpty, "the retry is not due yet")
            let retry = try await store.dueDeliveries(now: seconds(6), limit: 10)
            #expect(retry.map(\.deliverySeq) == [due[1].deliverySeq])
            #expect(retry.first?.attempts == 1)
            let stats = try await store.stats()
            #expect(stats.deliveries[.delivered] == 1)
            #expect(stats.deliveries[.failed] == 1)
            #expect(stats.deliveries[.pending] == 1)
        }
    }

    /// A batch larger than one statement's rows: every attempt is logged, in order, with
    /// what it carried, and each delivery moves on; one cancelled meanwhile stays
    /// cancelled and is not counted again.
    @Test func aLargeBatchIsLoggedAndMovedOnWhole() async throws {
        try await withStore { store in
            let count = DeliveryRows.rowsPerStatement * 2 + 5
            let (hook, due) = try await ordersWithPending(store, count, read: count)
            #expect(due.count == count)
            let outcomes: [RequestOutcome] = [.delivered, .retrying, .failed]
            let records = due.enumerated().map { index, delivery in
                let outcome = outcomes[index % 3]
                return attempt(
                    delivery, at: seconds(1), outcome: outcome, next: outcome == .retrying ? seconds(60) : nil)
            }
            // The webhook is deleted and one delivery cancelled before the batch is recorded.
            let cancelledSeq = due[DeliveryRows.rowsPerStatement].deliverySeq
            #expect(try await store.deleteWebhook(id: hook.id))
            let spared = due.map(\.deliverySeq).filter { $0 != cancelledSeq }
            #expect(try await store.cancelAllPending(webhookID: hook.id, except: spared, maxBatches: 5) == false)
            try await store.recordAttempts(records)
            let stats = try await store.stats()
            let expected = records.filter { $0.deliverySeq != cancelledSeq }
            #expect(stats.deliveries[.delivered] == expected.filter { $0.outcome == .delivered }.count)
            #expect(stats.deliveries[.failed] == expected.filter { $0.outcome == .failed }.count)
            #expect(stats.deliveries[.cancelled] == 1)
            #expect(stats.deliveries[.pending] == expected.filter { $0.outcome == .retrying }.count)
            let page = try await store.listRequests(RequestQuery(limit: 1000))
            // Newest first: the batch in reverse, after the cancellation's line.
            let attempts = page.requests.filter { $0.record.outcome != .cancelled }
            #expect(page.requests.count == count + 1)
            // The log keeps no next due time; everything else comes back as recorded.
            let logged = attempts.reversed().map(\.record)
            let asRecorded = records.map { record in
                var record = record
                record.nextAttemptAt = nil
                return record
            }
            #expect(logged.count == asRecorded.count)
            #expect(logged == asRecorded, "the log differs from what was recorded")
        }
    }

    /// A webhook deleted while one of its deliveries is being attempted: the attempt ends
    /// that delivery, whether it is recorded before the background cancellation gets to
    /// it or after (the engine spares what it has in flight); the others are cancelled.
    /// Each delivery has exactly one ending in the log.
    @Test(arguments: [false, true])
    func anAttemptInFlightEndsItsDeliveryOnce(_ cancellationFirst: Bool) async throws {
        try await withStore { store in
            let (hook, due) = try await ordersWithPending(store, 3)
            #expect(try await store.deleteWebhook(id: hook.id))
            #expect(try await store.stats().deliveries[.pending] == 3, "cancelled in the background, not at once")
            let inFlight = attempt(due[0], at: seconds(1), outcome: .delivered)
            if cancellationFirst {
                // Not done while the spared delivery is pending: its attempt may yet be
                // retried (then cancelled) or never recorded.
                #expect(
                    try await store.cancelAllPending(webhookID: hook.id, except: [due[0].deliverySeq], maxBatches: 5)
                        == false)
                #expect(try await store.cancellations() == [hook.id])
                try await store.recordAttempts([inFlight])
                #expect(try await store.cancelAllPending(webhookID: hook.id))
            } else {
                try await store.recordAttempts([inFlight])
                try await store.cancelAllPending(webhookID: hook.id)
            }
            let stats = try await store.stats()
            #expect(stats.deliveries[.cancelled] == 2)
            #expect(stats.deliveries[.delivered] == 1)
            #expect(stats.deliveries[.pending] == 0)
            let page = try await store.listRequests(RequestQuery())
            #expect(page.requests.count == 3)
            #expect(Set(page.requests.map(\.record.deliverySeq)).count == 3)
            #expect(page.requests.first { $0.record.deliverySeq == due[0].deliverySeq }?.record.outcome == .delivered)
        }
    }

    /// (outcomes at seconds 1, 2, 3, ...; last success, last failure, failing since) in seconds.
    static let healthCases: [([RequestOutcome], Int64?, Int64?, Int64?)] = [
        ([.delivered], 1, nil, nil),
        ([.retrying], nil, 1, 1),
        ([.retrying, .retrying, .failed], nil, 3, 1),
        ([.retrying, .delivered], 2, 1, nil),
        ([.delivered, .retrying, .failed], 1, 3, 2),
        ([.retrying, .delivered, .retrying], 2, 3, 3),
        ([.cancelled], nil, 1, 1),
    ]

    /// Endpoint health follows the attempts in order, within one batch or across batches.
    @Test(arguments: healthCases, [true, false])
    func endpointHealthFollowsTheAttempts(
        _ healthCase: ([RequestOutcome], Int64?, Int64?, Int64?), _ oneBatch: Bool
    ) async throws {
        let (outcomes, success, failure, failingSince) = healthCase
        try await withStore { store in
            let (hook, due) = try await ordersWithPending(store, outcomes.count)
            let records = outcomes.enumerated().map { index, outcome in
                attempt(due[index], at: seconds(Int64(index) + 1), outcome: outcome)
            }
            if oneBatch {
                try await store.recordAttempts(records)
            } else {
                for record in records { try await store.recordAttempts([record]) }
            }
            let health = try #require(try await store.webhook(id: hook.id)).health
            #expect(health.lastSuccessAt == success.map(seconds))
            #expect(health.lastFailureAt == failure.map(seconds))
            #expect(health.failingSince == failingSince.map(seconds))
        }
    }

    /// Answers come back out of order: an attempt made before the last success that fails
    /// afterwards (a timeout) does not start a failing spell, in one batch or in two.
    @Test(arguments: [true, false])
    func anOldFailureAnsweredLateDoesNotStartAFailingSpell(_ oneBatch: Bool) async throws {
        try await withStore { store in
            let (hook, due) = try await ordersWithPending(store, 3)
            let success = attempt(due[0], at: seconds(2), outcome: .delivered)
            let lateFailure = attempt(due[1], at: seconds(1), outcome: .retrying, next: seconds(40))
            if oneBatch {
                try await store.recordAttempts([success, lateFailure])
            } else {
                try await store.recordAttempts([success])
                try await store.recordAttempts([lateFailure])
            }
            var health = try #require(try await store.webhook(id: hook.id)).health
            #expect(health.lastSuccessAt == seconds(2))
            #expect(health.lastFailureAt == seconds(1))
            #expect(health.failingSince == nil)
            try await store.recordAttempts([attempt(due[2], at: seconds(3), outcome: .retrying, next: seconds(40))])
            health = try #require(try await store.webhook(id: hook.id)).health
            #expect(health.failingSince == seconds(3))
        }
    }

    /// A delivery that ends failed disables its webhook once it has been failing for
    /// longer than the threshold; not before, and not with a threshold of 0.
    @Test(arguments: [(Int64(5), true), (10, false), (0, false)])
    func aWebhookFailingTooLongIsDisabled(_ thresholdSeconds: Int64, _ disabled: Bool) async throws {
        try await withStore { store in
            let (hook, due) = try await ordersWithPending(store, 2)
            try await store.recordAttempts([attempt(due[0], at: seconds(1), outcome: .retrying, next: seconds(2))])
            let result = try await store.recordAttempts(
                [attempt(due[1], at: seconds(9), outcome: .failed)],
                disableFailingAfterMicroseconds: thresholdSeconds * 1_000_000)
            let stored = try #require(try await store.webhook(id: hook.id))
            #expect(result.map(\.id) == (disabled ? [hook.id] : []))
            #expect(stored.state == (disabled ? .disabled : .active))
            if disabled {
                #expect(stored.disabledReason == "failing: no successful delivery since \(seconds(1).rfc3339)")
                // Enabling starts afresh.
                let enabled = try #require(
                    try await store.modifyWebhook(id: hook.id) {
                        $0.settingState(.active, reason: nil, at: seconds(10))
                    })
                #expect(enabled.health.failingSince == nil)
                #expect(enabled.health.lastFailureAt == seconds(9))
            }
        }
    }

    @Test func recoverRequeuesWhatFailedInTheRange() async throws {
        try await withStore { store in
            let (hook, due) = try await ordersWithPending(store, 4)
            try await store.recordAttempts([
                attempt(due[0], at: seconds(1), outcome: .failed), attempt(due[1], at: seconds(5), outcome: .failed),
                attempt(due[2], at: seconds(9), outcome: .failed), attempt(due[3], at: seconds(5), outcome: .delivered),
            ])
            let count = try await store.startRecovery(
                webhookID: hook.id, since: seconds(1), until: seconds(5), at: seconds(20))
            #expect(count == 2)
            try await store.recoverAll(maxRows: 1)
            let again = try await store.dueDeliveries(now: seconds(20), limit: 10)
            #expect(Set(again.map(\.eventID)) == Set([due[0].eventID, due[1].eventID]))
            #expect(again.allSatisfy { $0.attempts == 0 && $0.nextAttemptAt == seconds(20) })
            #expect(try await store.stats().deliveries[.pending] == 2)
            await #expect(throws: StoreFailure.webhookNotFound) {
                _ = try await store.startRecovery(
                    webhookID: Identifiers.uuid(), since: seconds(1), until: seconds(5), at: seconds(20))
            }
            _ = try await store.modifyWebhook(id: hook.id) {
                $0.settingState(.disabled, reason: "test", at: seconds(21))
            }
            await #expect(throws: StoreFailure.webhookDisabled) {
                _ = try await store.startRecovery(
                    webhookID: hook.id, since: seconds(1), until: seconds(5), at: seconds(22))
            }
        }
    }

    @Test func theRequestLogKeepsEveryAttempt() async throws {
        try await withStore { store in
            let hook = webhook("orders")
            try await store.insertWebhook(hook)
            _ = try await store.appendEvent(try newEvent(at: seconds(0)), router: FixedRouter(webhookIDs: [hook.id]))
            let due = try await store.dueDeliveries(now: seconds(0), limit: 10)
            try await store.recordAttempts([attempt(due[0], at: seconds(1), outcome: .retrying, next: seconds(2))])
            let again = try await store.dueDeliveries(now: seconds(2), limit: 10)
            try await store.recordAttempts([attempt(again[0], at: seconds(3), outcome: .delivered)])
            let rows = try await store.requestLogRowCount()
            #expect(rows == 2)
        }
    }

    /// A 410 ends its own delivery with the attempt that got it (one log line), and
    /// cancels the webhook's other pending deliveries (a line each, attempt numbered as
    /// the one they stand for); the observer sees every committed line once.
    @Test func goneCancelsTheOthersAndLogsEachDeliveryOnce() async throws {
        try await withStore { store in
            let observed = Mutex<[LoggedRequest]>([])
            store.observeRequestLog { lines in observed.withLock { $0.append(contentsOf: lines) } }
            let (hook, due) = try await ordersWithPending(store, 4)
            try await store.recordAttempts([attempt(due[2], at: seconds(1), outcome: .retrying, next: seconds(9))])
            // due[0] got the 410; due[3] was in flight beside it; due[1] and due[2] wait.
            let disabled = try await store.disableWebhookAfterGone(id: hook.id, reason: "gone", at: seconds(2))
            #expect(disabled?.state == .disabled)
            #expect(try await store.cancellations() == [hook.id])
            // Being cancelled: none of its deliveries is due, even once it is enabled again.
            _ = try await store.modifyWebhook(id: hook.id) { $0.settingState(.active, reason: nil, at: seconds(2)) }
            #expect(try await store.dueDeliveries(now: seconds(100), limit: 10).isEmpty)
            #expect(
                try await store.cancelAllPending(
                    webhookID: hook.id, except: [due[0].deliverySeq, due[3].deliverySeq], maxRows: 1, maxBatches: 20)
                    == false)
            var gone = attempt(due[0], at: seconds(2), outcome: .cancelled)
            gone.httpStatus = 410
            try await store.recordAttempts([gone, attempt(due[3], at: seconds(2), outcome: .delivered)])
            #expect(try await store.cancelAllPending(webhookID: hook.id))
            #expect(try await store.cancellations().isEmpty)

            let page = try await store.listRequests(RequestQuery())
            let byDelivery = Dictionary(grouping: page.requests, by: \.record.deliverySeq)
            #expect(byDelivery[due[0].deliverySeq]?.map(\.record.httpStatus) == [410])
            #expect(byDelivery[due[1].deliverySeq]?.map(\.record.attempt) == [1])
            #expect(byDelivery[due[2].deliverySeq]?.map(\.record.attempt) == [2, 1], "newest first")
            #expect(byDelivery[due[3].deliverySeq]?.map(\.record.outcome) == [.delivered])
            #expect(byDelivery[due[1].deliverySeq]?.first?.record.error == "gone")
            let stats = try await store.stats()
            #expect(stats.deliveries[.cancelled] == 3)
            #expect(stats.deliveries[.delivered] == 1)
            #expect(stats.deliveries[.pending] == 0)
            let seen = observed.withLock { $0 }
            #expect(Set(seen.map(\.id)) == Set(page.requests.map(\.id)))
            #expect(seen.count == page.requests.count)
        }
    }
}

extension SQLiteStore {
    func requestLogRowCount() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            requestLogCount { continuation.resume(with: $0) }
        }
    }
}

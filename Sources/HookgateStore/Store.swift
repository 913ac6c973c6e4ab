import HookgateCore

/// One page of `list_webhooks`, oldest first.
public struct WebhookPage: Sendable, Equatable {
    public var webhooks: [Webhook]
    /// Where the next page starts; nil on the last page.
    public var nextCursor: String?

    public init(webhooks: [Webhook], nextCursor: String?) {
        self.webhooks = webhooks
        self.nextCursor = nextCursor
    }
}

/// Why a store call could not be carried out as asked.
public enum StoreFailure: Error, Sendable, Equatable {
    /// A list cursor this store did not issue.
    case invalidCursor
    /// No webhook has the id asked about.
    case webhookNotFound
    /// No event has the id asked about.
    case eventNotFound
    /// The event was deleted by retention (`--event-retention`).
    case eventPastRetention
    /// The webhook is disabled, and the request needs it active.
    case webhookDisabled
}

/// The durable registry (and, later, the event queue and attempt log). SQLite is the
/// embedded implementation; the protocol leaves room for a PostgreSQL one shared by
/// several gateways.
///
/// Calls are carried out in the order they are made, each completing through its
/// callback: a client's pipelined `create_webhook` then `list_webhooks` sees the new
/// webhook even though neither waited for the other. (An `async` method could not
/// promise that: tasks start in no particular order.)
public protocol Store: Sendable {
    typealias Completion<T> = @Sendable (Result<T, any Error>) -> Void

    func insertWebhook(_ webhook: Webhook, completion: @escaping Completion<Void>)
    func webhook(id: String, completion: @escaping Completion<Webhook?>)
    /// Webhooks oldest first, starting after `cursor` (nil: from the first).
    func listWebhooks(after cursor: String?, limit: Int, completion: @escaping Completion<WebhookPage>)
    /// Reads, transforms and writes back one webhook atomically: no other write to it
    /// can land between the read and the write. Nil when there is no such webhook.
    func modifyWebhook(
        id: String, transform: @escaping @Sendable (Webhook) -> Webhook, completion: @escaping Completion<Webhook?>)
    /// Deletes the webhook at once and starts cancelling its pending deliveries in the
    /// background (`cancelPending`). False when there was no such webhook.
    func deleteWebhook(id: String, completion: @escaping Completion<Bool>)
    /// Stores `event` and one pending delivery per webhook `router` names for it,
    /// committed before `completion` succeeds. Events submitted close together share
    /// one transaction (group commit); they are routed on the writer, in order with
    /// every other call, so a webhook change made before sees them. A repeated
    /// idempotency key within 24 hours creates nothing and answers the first event.
    func appendEvent(_ event: NewEvent, router: any EventRouter, completion: @escaping Completion<EventReceipt>)
    /// Runs `body` once every call made before this one has completed (their
    /// completions included), in order with later calls.
    func afterPriorCalls(_ body: @escaping @Sendable () -> Void)
    /// A due scan: for each query, the webhook's pending deliveries due at `now` that are
    /// not in `claimed` (the scheduler holds those already), oldest due first, at most
    /// `limit`, with everything an attempt needs, and when the webhook next has something
    /// to hand out. A webhook that is not active, or whose deliveries are being cancelled,
    /// gets nothing. Each webhook is read through its own index range, so the cost follows
    /// what is asked for and held, never the length of anyone's backlog. Read from the
    /// last commit without waiting for calls made before it: a row may predate an outcome
    /// recorded meanwhile, which the caller tells apart (it knows what it recorded).
    func dueDeliveries(
        now: Timestamp, for queries: [DueQuery], claimed: Set<Int64>, completion: @escaping Completion<[DueWebhook]>)
    /// Every webhook with a pending delivery, and when its earliest one falls due: where
    /// the scheduler starts, and how it checks it has missed nothing. One index seek per
    /// such webhook.
    func pendingWebhooks(completion: @escaping Completion<[String: Timestamp]>)
    /// `recover`: counts the webhook's deliveries that ended `failed` between `since` and
    /// `until` (inclusive) and records a recovery of them, which `continueRecovery` then
    /// works through in the background: a new pending delivery of the same event for each.
    /// Fails with `StoreFailure.webhookNotFound`, or `.webhookDisabled`.
    func startRecovery(
        webhookID: String, since: Timestamp, until: Timestamp, at time: Timestamp, completion: @escaping Completion<Int>
    )
    /// The next part of the oldest recovery (at most `maxRows` deliveries looked at); true
    /// once no recovery is left. New deliveries are announced like an emit's.
    func continueRecovery(maxRows: Int, completion: @escaping Completion<Bool>)
    /// The due time of the oldest delivery due at `now` to an active webhook (not being
    /// cancelled) that is not in `sent` (attempts in flight); nil when none is due. One
    /// index walk per webhook with pending deliveries.
    func oldestDue(now: Timestamp, sent: Set<Int64>, completion: @escaping Completion<Timestamp?>)
    /// Webhooks by state, for the `hookgate_webhooks` gauge.
    func webhookCounts(completion: @escaping Completion<[WebhookState: Int]>)
    /// A write on the writer, in order with every other call: whether the store takes
    /// writes (readiness).
    func probeWrite(at time: Timestamp, completion: @escaping Completion<Void>)
    /// Hands `observer` the webhooks that got new pending deliveries (emits, redeliveries,
    /// recoveries), each with the earliest due time among them, once the transaction that
    /// stored them has committed, on the store's own thread: it must return at once. One
    /// observer; a later call replaces it.
    func observeNewDeliveries(_ observer: @escaping @Sendable ([String: Timestamp]) -> Void)
    /// Logs attempts and moves their deliveries on, in one transaction: `delivered` and
    /// `failed` end a delivery, `retrying` sets its next due time. A delivery cancelled
    /// meanwhile (its webhook deleted) stays cancelled; its attempt is still logged.
    ///
    /// Each attempt also moves its webhook's endpoint health on (`last_success_at`,
    /// `last_failure_at`, `failing_since`). When a delivery ends `failed` and its webhook
    /// has been failing since longer than `disableFailingAfterMicroseconds` ago (0: never),
    /// the webhook is disabled (`failing: no successful delivery since …`); the completion
    /// gives the webhooks so disabled.
    func recordAttempts(
        _ records: [AttemptRecord], disableFailingAfterMicroseconds: Int64, completion: @escaping Completion<[Webhook]>)
    /// A new delivery of an event to a webhook, due now (`redeliver`); its sequence
    /// number. Fails with `StoreFailure.eventNotFound` / `.webhookNotFound`.
    func redeliver(eventID: String, webhookID: String, at time: Timestamp, completion: @escaping Completion<Int64>)
    /// Retention: deletes up to `batch` request-log lines older than `before` or beyond
    /// the newest `keepRows`, and idempotency keys past their 24 hours, in one transaction
    /// of about `RetentionRows.transactionBudget` at most; how many log lines went, and
    /// whether that was all there was.
    func pruneRequestLog(
        before: Timestamp, keepRows: Int, batch: Int, completion: @escaping Completion<RetentionProgress>)
    /// The request log, newest first, filtered, a page at a time, read from the last
    /// commit without waiting for calls made before it.
    func listRequests(_ query: RequestQuery, completion: @escaping Completion<RequestPage>)
    /// What a 410 Gone does: disables the webhook with `reason` and starts cancelling
    /// its pending deliveries (`cancelPending`). Nil when there is no such webhook.
    func disableWebhookAfterGone(
        id: String, reason: String, at time: Timestamp, completion: @escaping Completion<Webhook?>)
    /// The webhooks whose pending deliveries are being cancelled (deleted, or disabled by
    /// a 410). Their deliveries are never due; `cancelPending` works through them.
    func cancellations(completion: @escaping Completion<[String]>)
    /// Cancels the next part of a webhook's pending deliveries (at most `maxRows`
    /// deliveries looked at), each logged as a request item with outcome `cancelled`, all
    /// but those in `except` (attempts in flight, which record their own end). True once
    /// the cancellation is done.
    func cancelPending(
        webhookID: String, except: [Int64], maxRows: Int, completion: @escaping Completion<Bool>)
    /// Retention of history: deletes finished deliveries created before `before`, then
    /// events received before it that have no delivery left, looking at no more than
    /// `maxRows` of each.
    func pruneEvents(before: Timestamp, maxRows: Int, completion: @escaping Completion<RetentionProgress>)
    /// Hands `observer` every request-log line (attempt or cancellation) once the
    /// transaction that wrote it has committed, in log order, on the store's own thread:
    /// it must return at once (`tail_requests` fans out from here). One observer; a later
    /// call replaces it.
    func observeRequestLog(_ observer: @escaping @Sendable ([LoggedRequest]) -> Void)
    /// Counts for `stats`: all webhooks, or the one with `webhookID`.
    func stats(webhookID: String?, completion: @escaping Completion<StoreStats>)
    /// Finishes the calls already made and closes; later calls fail.
    func close() async
}

/// What one call of `pruneEvents` did.
public struct RetentionProgress: Sendable, Equatable {
    public var deleted: Int
    /// Nothing older is left to look at until time moves on: the next pass can wait.
    public var caughtUp: Bool

    public init(deleted: Int, caughtUp: Bool) {
        self.deleted = deleted
        self.caughtUp = caughtUp
    }
}

/// An event to store, validated, its payload already encoded (by the connection's
/// thread, not the writer's).
public struct NewEvent: Sendable {
    public var id: String
    public var type: EventType
    /// The event's JSON as it will be delivered, less `webhook_id` and `webhook_name`.
    public var payload: [UInt8]
    public var matchKey: EventMatchKey
    public var receivedAt: Timestamp
    public var idempotencyKey: String?

    public init(id: String, event: Event, receivedAt: Timestamp, idempotencyKey: String?) {
        self.id = id
        self.type = event.type
        self.payload = JSONWriter.bytes(.object(event.payload))
        self.matchKey = event.matchKey
        self.receivedAt = receivedAt
        self.idempotencyKey = idempotencyKey
    }
}

/// The answer to `emit_event`.
public struct EventReceipt: Sendable, Equatable {
    public var eventID: String
    public var deliveries: Int
    /// True when an earlier event with the same idempotency key answered instead.
    public var replayed: Bool

    public init(eventID: String, deliveries: Int, replayed: Bool) {
        self.eventID = eventID
        self.deliveries = deliveries
        self.replayed = replayed
    }
}

/// Names the webhooks that receive each event (the matcher).
public protocol EventRouter: Sendable {
    /// Webhook ids per event, in the events' order. Called on the store's writer.
    func route(_ events: [EventMatchKey]) -> [[String]]
}

public enum DeliveryState: String, Sendable, CaseIterable {
    case pending
    case inFlight = "in_flight"
    case delivered
    case failed
    case cancelled
}

public struct StoreStats: Sendable, Equatable {
    public var eventsAccepted: Int
    public var deliveries: [DeliveryState: Int]
    public var webhooks: Int
    /// Events received and waiting for their group commit.
    public var eventsAwaitingCommit: Int

    public init(eventsAccepted: Int, deliveries: [DeliveryState: Int], webhooks: Int, eventsAwaitingCommit: Int) {
        self.eventsAccepted = eventsAccepted
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.eventsAwaitingCommit = eventsAwaitingCommit
    }
}

/// What became of one attempt, or of a delivery without one.
public enum RequestOutcome: String, Sendable, CaseIterable {
    case delivered
    case retrying
    case failed
    case cancelled
}

/// One webhook's part of a due scan: at most `limit` of its due deliveries.
public struct DueQuery: Sendable, Equatable {
    public var webhookID: String
    public var limit: Int
    /// Where to start reading: after this position (nil: from the webhook's first pending
    /// delivery). The scheduler passes the last delivery it took, so a webhook whose
    /// earlier deliveries it holds is not walked through them again.
    public var after: DueCursor?

    public init(webhookID: String, limit: Int, after: DueCursor? = nil) {
        self.webhookID = webhookID
        self.limit = limit
        self.after = after
    }
}

/// A position among a webhook's pending deliveries, which are read in due order (due
/// time, then sequence number).
public struct DueCursor: Sendable, Hashable, Comparable {
    public var nextAttemptAt: Timestamp
    public var deliverySeq: Int64

    public init(nextAttemptAt: Timestamp, deliverySeq: Int64) {
        self.nextAttemptAt = nextAttemptAt
        self.deliverySeq = deliverySeq
    }

    /// Before every delivery due at `time` or later.
    public static func before(_ time: Timestamp) -> DueCursor {
        DueCursor(nextAttemptAt: time, deliverySeq: .min)
    }

    public static func < (lhs: DueCursor, rhs: DueCursor) -> Bool {
        (lhs.nextAttemptAt, lhs.deliverySeq) < (rhs.nextAttemptAt, rhs.deliverySeq)
    }
}

/// What a due scan found for one webhook.
public struct DueWebhook: Sendable, Equatable {
    public var webhookID: String
    /// Oldest due first.
    public var deliveries: [DueDelivery]
    /// When the webhook next has a pending delivery the scan did not hand out (claimed
    /// ones aside): the scan's `now` when the limit cut it short, the due time of its
    /// earliest retry, or nil when it has none (or is not active, or is being cancelled).
    public var nextDue: Timestamp?

    public init(webhookID: String, deliveries: [DueDelivery], nextDue: Timestamp?) {
        self.webhookID = webhookID
        self.deliveries = deliveries
        self.nextDue = nextDue
    }
}

/// A pending delivery that is due, joined with its event and webhook.
public struct DueDelivery: Sendable, Equatable {
    public var deliverySeq: Int64
    /// Attempts made so far.
    public var attempts: Int
    public var nextAttemptAt: Timestamp
    public var eventID: String
    public var eventType: EventType
    /// The event's JSON, less `webhook_id` and `webhook_name`.
    public var payload: [UInt8]
    public var webhookID: String
    public var webhookName: String
    public var url: String
    public var rateLimit: Int
    /// The secrets that sign at the time of the scan: the current one, and the one
    /// before a rotation while it lasts.
    public var secrets: [String]

    public init(
        deliverySeq: Int64, attempts: Int, nextAttemptAt: Timestamp, eventID: String, eventType: EventType,
        payload: [UInt8], webhookID: String, webhookName: String, url: String, rateLimit: Int, secrets: [String]
    ) {
        self.deliverySeq = deliverySeq
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.eventID = eventID
        self.eventType = eventType
        self.payload = payload
        self.webhookID = webhookID
        self.webhookName = webhookName
        self.url = url
        self.rateLimit = rateLimit
        self.secrets = secrets
    }
}

/// One line of the request log.
public struct AttemptRecord: Sendable, Equatable {
    public var deliverySeq: Int64
    public var at: Timestamp
    public var webhookID: String
    public var eventID: String
    public var eventType: EventType
    /// 1-based.
    public var attempt: Int
    public var url: String
    public var httpStatus: Int?
    /// `http`, `timeout`, `dns`, `connect`, `tls`, `network`, `blocked_destination`.
    public var errorClass: String?
    public var error: String?
    public var latencyMicroseconds: Int64?
    public var userAgent: String
    /// The first 4 KiB of the answer's body.
    public var responseBody: [UInt8]
    public var outcome: RequestOutcome
    /// For `retrying`: when the next attempt is due.
    public var nextAttemptAt: Timestamp?

    public init(
        deliverySeq: Int64, at: Timestamp, webhookID: String, eventID: String, eventType: EventType, attempt: Int,
        url: String, httpStatus: Int?, errorClass: String?, error: String?, latencyMicroseconds: Int64?,
        userAgent: String, responseBody: [UInt8], outcome: RequestOutcome, nextAttemptAt: Timestamp?
    ) {
        self.deliverySeq = deliverySeq
        self.at = at
        self.webhookID = webhookID
        self.eventID = eventID
        self.eventType = eventType
        self.attempt = attempt
        self.url = url
        self.httpStatus = httpStatus
        self.errorClass = errorClass
        self.error = error
        self.latencyMicroseconds = latencyMicroseconds
        self.userAgent = userAgent
        self.responseBody = responseBody
        self.outcome = outcome
        self.nextAttemptAt = nextAttemptAt
    }
}

/// Which request-log lines to list.
public struct RequestQuery: Sendable, Equatable {
    public var webhookID: String?
    public var eventID: String?
    public var outcome: RequestOutcome?
    /// At or after.
    public var since: Timestamp?
    /// Before.
    public var until: Timestamp?
    public var limit: Int
    public var cursor: String?

    public init(
        webhookID: String? = nil, eventID: String? = nil, outcome: RequestOutcome? = nil, since: Timestamp? = nil,
        until: Timestamp? = nil, limit: Int = 50, cursor: String? = nil
    ) {
        self.webhookID = webhookID
        self.eventID = eventID
        self.outcome = outcome
        self.since = since
        self.until = until
        self.limit = limit
        self.cursor = cursor
    }
}

/// A line of the request log as listed.
public struct LoggedRequest: Sendable, Equatable {
    public var id: String
    public var record: AttemptRecord

    public init(id: String, record: AttemptRecord) {
        self.id = id
        self.record = record
    }
}

public struct RequestPage: Sendable, Equatable {
    public var requests: [LoggedRequest]
    public var nextCursor: String?
}

/// The same calls for `async` callers that need no ordering with other calls.
extension Store {
    private func awaiting<T: Sendable>(_ call: (@escaping Completion<T>) -> Void) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            call { continuation.resume(with: $0) }
        }
    }

    public func insertWebhook(_ webhook: Webhook) async throws {
        try await awaiting { insertWebhook(webhook, completion: $0) }
    }

    public func webhook(id: String) async throws -> Webhook? {
        try await awaiting { webhook(id: id, completion: $0) }
    }

    /// Returns once every call submitted before it has run (the watchdog's probe of the
    /// writer).
    public func afterPriorCalls() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            afterPriorCalls { continuation.resume() }
        }
    }

    public func listWebhooks(after cursor: String?, limit: Int) async throws -> WebhookPage {
        try await awaiting { listWebhooks(after: cursor, limit: limit, completion: $0) }
    }

    public func modifyWebhook(id: String, _ transform: @escaping @Sendable (Webhook) -> Webhook) async throws
        -> Webhook?
    {
        try await awaiting { modifyWebhook(id: id, transform: transform, completion: $0) }
    }

    public func deleteWebhook(id: String) async throws -> Bool {
        try await awaiting { deleteWebhook(id: id, completion: $0) }
    }

    public func appendEvent(_ event: NewEvent, router: any EventRouter) async throws -> EventReceipt {
        try await awaiting { appendEvent(event, router: router, completion: $0) }
    }

    public func dueDeliveries(now: Timestamp, for queries: [DueQuery], claimed: Set<Int64> = []) async throws
        -> [DueWebhook]
    {
        try await awaiting { dueDeliveries(now: now, for: queries, claimed: claimed, completion: $0) }
    }

    public func redeliver(eventID: String, webhookID: String, at time: Timestamp) async throws -> Int64 {
        try await awaiting { redeliver(eventID: eventID, webhookID: webhookID, at: time, completion: $0) }
    }

    public func startRecovery(webhookID: String, since: Timestamp, until: Timestamp, at time: Timestamp)
        async throws -> Int
    {
        try await awaiting {
            startRecovery(webhookID: webhookID, since: since, until: until, at: time, completion: $0)
        }
    }

    /// Runs `continueRecovery` until no recovery is left.
    public func recoverAll(maxRows: Int = 1000) async throws {
        while try await !awaiting({ continueRecovery(maxRows: maxRows, completion: $0) }) {}
    }

    public func oldestDue(now: Timestamp, sent: Set<Int64> = []) async throws -> Timestamp? {
        try await awaiting { oldestDue(now: now, sent: sent, completion: $0) }
    }

    public func webhookCounts() async throws -> [WebhookState: Int] {
        try await awaiting { webhookCounts(completion: $0) }
    }

    public func probeWrite(at time: Timestamp) async throws {
        try await awaiting { probeWrite(at: time, completion: $0) }
    }

    public func pendingWebhooks() async throws -> [String: Timestamp] {
        try await awaiting { pendingWebhooks(completion: $0) }
    }

    public func listRequests(_ query: RequestQuery) async throws -> RequestPage {
        try await awaiting { listRequests(query, completion: $0) }
    }

    @discardableResult
    public func recordAttempts(_ records: [AttemptRecord], disableFailingAfterMicroseconds: Int64 = 0) async throws
        -> [Webhook]
    {
        try await awaiting {
            recordAttempts(records, disableFailingAfterMicroseconds: disableFailingAfterMicroseconds, completion: $0)
        }
    }

    public func stats(webhookID: String? = nil) async throws -> StoreStats {
        try await awaiting { stats(webhookID: webhookID, completion: $0) }
    }

    public func disableWebhookAfterGone(id: String, reason: String, at time: Timestamp) async throws -> Webhook? {
        try await awaiting { disableWebhookAfterGone(id: id, reason: reason, at: time, completion: $0) }
    }

    public func cancellations() async throws -> [String] {
        try await awaiting { cancellations(completion: $0) }
    }

    /// Runs a webhook's cancellation `maxRows` at a time until it is done, or (with
    /// deliveries spared) for at most `maxBatches`; whether it is done.
    @discardableResult
    public func cancelAllPending(
        webhookID: String, except: [Int64] = [], maxRows: Int = 1000, maxBatches: Int = 1_000_000
    ) async throws -> Bool {
        for _ in 0..<maxBatches {
            let done = try await awaiting {
                cancelPending(webhookID: webhookID, except: except, maxRows: maxRows, completion: $0)
            }
            if done { return true }
        }
        return false
    }

    public func pruneEvents(before: Timestamp, maxRows: Int) async throws -> RetentionProgress {
        try await awaiting { pruneEvents(before: before, maxRows: maxRows, completion: $0) }
    }
}

import CSQLite
import Dispatch
import HookgateCore
import Synchronization

/// The SQLite store: one connection in WAL mode, owned by one serial queue.
///
/// `@unchecked Sendable`: `connection` and the counters are touched only on `queue` (the
/// writer), every public method hops onto it; `ingest` is a Mutex; the rest is immutable.
public final class SQLiteStore: Store, @unchecked Sendable {
    /// How durable a commit is: `full` syncs the WAL on every commit (survives a power
    /// cut), `normal` syncs only at checkpoints (survives a process crash).
    public enum SyncMode: String, Sendable, CaseIterable {
        case full
        case normal
    }

    public static let databaseFileName = "hookgate.sqlite3"
    /// The database and the files SQLite keeps beside it in WAL mode.
    public static let databaseFileNames = [databaseFileName, databaseFileName + "-wal", databaseFileName + "-shm"]

    private let queue = DispatchQueue(label: "hookgate.store")
    private var connection: SQLiteConnection?
    /// Counters for `stats`, kept in memory (loaded at open, updated by each commit).
    var counts = DeliveryCounts()
    private var eventsAccepted = 0

    /// Events waiting for their group commit, in batches. The open batch takes new
    /// events until any other call is submitted: that call seals it, so the batch is
    /// committed before the call runs and calls keep their submission order.
    private struct Ingest {
        var openBatch = 0
        var batches: [Int: [PendingEvent]] = [:]
        var waiting = 0
    }

    private struct PendingEvent: Sendable {
        let event: NewEvent
        let router: any EventRouter
        let completion: Completion<EventReceipt>
    }

    private let ingest = Mutex(Ingest())

    /// Told of request-log lines once committed (`observeRequestLog`); on `queue`.
    private var requestLogObserver: (@Sendable ([LoggedRequest]) -> Void)?

    /// Opens (creating if needed) the database in `directory` and migrates it to the
    /// current schema.
    public init(directory: String, sync: SyncMode = .full) throws {
        let connection = try SQLiteConnection(path: directory + "/" + Self.databaseFileName)
        try connection.execute("PRAGMA journal_mode=WAL")
        try connection.execute("PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")")
        try connection.execute("PRAGMA foreign_keys=ON")
        try connection.execute("PRAGMA busy_timeout=5000")
        // 16 MiB of page cache (the default is 2 MiB): the event path's index pages stay
        // in memory instead of being read back for every batch.
        try connection.execute("PRAGMA cache_size=-16384")
        try SchemaMigrations.migrate(connection)
        self.connection = connection
        try loadCounters(connection)
    }

    private func loadCounters(_ connection: SQLiteConnection) throws(StoreError) {
        eventsAccepted = Int(
            try connection.scalarInteger("SELECT value FROM counters WHERE name = 'events_accepted'") ?? 0)
        try connection.query("SELECT webhook_id, state, COUNT(*) FROM deliveries GROUP BY webhook_id, state") { row in
            if let state = DeliveryState(rawValue: row.text(1)) {
                counts.add(webhookID: row.text(0), state: state, Int(row.integer(2)))
            }
        }
    }

    /// Queues `body` behind every earlier call and completes with its result.
    private func submit<T>(
        _ completion: @escaping Completion<T>, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) {
        ingest.withLock { ingest in
            // Seal the open event batch: its flush is already queued ahead of this call.
            if ingest.batches[ingest.openBatch] != nil { ingest.openBatch += 1 }
            queue.async {
                guard let connection = self.connection else {
                    completion(.failure(StoreError(code: SQLITE_MISUSE, message: "store is closed")))
                    return
                }
                completion(Result { try body(connection) })
            }
        }
    }

    public func insertWebhook(_ webhook: Webhook, completion: @escaping Completion<Void>) {
        submit(completion) { connection in
            try connection.transaction { () throws(StoreError) in
                try connection.query(WebhookRows.insert, WebhookRows.bindings(webhook))
            }
        }
    }

    public func webhook(id: String, completion: @escaping Completion<Webhook?>) {
        submit(completion) { connection in try WebhookRows.fetch(connection, id: id) }
    }

    public func listWebhooks(after cursor: String?, limit: Int, completion: @escaping Completion<WebhookPage>) {
        var afterSeq: Int64 = 0
        if let cursor {
            guard let seq = WebhookRows.decodeCursor(cursor) else {
                // Through the queue all the same, so completions keep the calls' order.
                submit(completion) { _ in throw StoreFailure.invalidCursor }
                return
            }
            afterSeq = seq
        }
        let start = afterSeq
        submit(completion) { connection in
            var rows: [(Int64, Webhook)] = []
            try connection.query(
                "SELECT seq, \(WebhookRows.columns) FROM webhooks WHERE seq > ? ORDER BY seq LIMIT ?",
                [.integer(start), .integer(Int64(limit) + 1)]
            ) { row throws(StoreError) in
                rows.append((row.integer(0), try WebhookRows.decode(row, offset: 1)))
            }
            let hasMore = rows.count > limit
            let page = rows.prefix(limit)
            return WebhookPage(
                webhooks: page.map(\.1),
                nextCursor: hasMore ? page.last.map { WebhookRows.encodeCursor($0.0) } : nil)
        }
    }

    public func modifyWebhook(
        id: String, transform: @escaping @Sendable (Webhook) -> Webhook, completion: @escaping Completion<Webhook?>
    ) {
        submit(completion) { connection in
            try connection.transaction { () throws(StoreError) -> Webhook? in
                guard let current = try WebhookRows.fetch(connection, id: id) else { return nil }
                let updated = transform(current)
                try connection.query(WebhookRows.update, WebhookRows.bindings(updated))
                return updated
            }
        }
    }

    public func deleteWebhook(id: String, completion: @escaping Completion<Bool>) {
        submit(completion) { connection in
            let cancelled = try connection.transaction { () throws(StoreError) -> [LoggedRequest]? in
                guard let webhook = try WebhookRows.fetch(connection, id: id) else { return nil }
                try connection.query("DELETE FROM webhooks WHERE id = ?", [.text(id)])
                return try DeliveryRows.cancelPending(
                    connection, webhookID: id, url: webhook.definition.url, at: SystemWallClock().now(),
                    reason: "webhook deleted")
            }
            guard let cancelled else { return false }
            self.cancelled(cancelled, webhookID: id)
            return true
        }
    }

    public func disableWebhookAfterGone(
        id: String, reason: String, at time: Timestamp, inFlight: [Int64],
        completion: @escaping Completion<Webhook?>
    ) {
        submit(completion) { connection in
            let result = try connection.transaction { () throws(StoreError) -> (Webhook, [LoggedRequest])? in
                guard let current = try WebhookRows.fetch(connection, id: id) else { return nil }
                let disabled = current.settingState(.disabled, reason: reason, at: time)
                try connection.query(WebhookRows.update, WebhookRows.bindings(disabled))
                let cancelled = try DeliveryRows.cancelPending(
                    connection, webhookID: id, url: current.definition.url, at: time, reason: reason,
                    except: inFlight)
                return (disabled, cancelled)
            }
            guard let (webhook, cancelled) = result else { return nil }
            self.cancelled(cancelled, webhookID: id)
            return webhook
        }
    }

    /// After a commit that cancelled a webhook's pending deliveries.
    private func cancelled(_ logged: [LoggedRequest], webhookID: String) {
        counts.add(webhookID: webhookID, state: .pending, -logged.count)
        counts.add(webhookID: webhookID, state: .cancelled, logged.count)
        published(logged)
    }

    public func observeRequestLog(_ observer: @escaping @Sendable ([LoggedRequest]) -> Void) {
        queue.async { self.requestLogObserver = observer }
    }

    /// Hands committed request-log lines to the observer; on `queue`.
    private func published(_ logged: [LoggedRequest]) {
        guard !logged.isEmpty, let observer = requestLogObserver else { return }
        observer(logged)
    }

    // MARK: - Events

    public func appendEvent(_ event: NewEvent, router: any EventRouter, completion: @escaping Completion<EventReceipt>)
    {
        let pending = PendingEvent(event: event, router: router, completion: completion)
        ingest.withLock { ingest in
            let batch = ingest.openBatch
            ingest.waiting += 1
            if ingest.batches[batch] == nil {
                ingest.batches[batch] = [pending]
                queue.async { self.commitBatch(batch) }
            } else {
                ingest.batches[batch]!.append(pending)
            }
        }
    }

    /// On `queue`: routes, stores and commits one batch of events in one transaction,
    /// then answers each. If the commit fails, no event of the batch is acknowledged.
    private func commitBatch(_ batchNumber: Int) {
        let batch = ingest.withLock { ingest -> [PendingEvent] in
            if ingest.openBatch == batchNumber { ingest.openBatch += 1 }
            let batch = ingest.batches.removeValue(forKey: batchNumber) ?? []
            ingest.waiting -= batch.count
            return batch
        }
        guard !batch.isEmpty else { return }
        guard let connection else {
            for pending in batch {
                pending.completion(.failure(StoreError(code: SQLITE_MISUSE, message: "store is closed")))
            }
            return
        }
        let routes = batch[0].router.route(batch.map(\.event.matchKey))
        var receipts: [EventReceipt] = []
        receipts.reserveCapacity(batch.count)
        do {
            try connection.transaction { () throws(StoreError) in
                // Keys compare byte for byte, as SQLite compares them across batches.
                var keysInBatch: [ExactKey: EventReceipt] = [:]
                var stored = 0
                for index in batch.indices {
                    let webhookIDs = routes[index]
                    let now = batch[index].event.receivedAt.microseconds
                    if let key = batch[index].event.idempotencyKey {
                        var earlier = keysInBatch[ExactKey(key)]
                        if earlier == nil { earlier = try EventRows.idempotentReceipt(connection, key: key, now: now) }
                        if let earlier {
                            receipts.append(
                                EventReceipt(eventID: earlier.eventID, deliveries: earlier.deliveries, replayed: true))
                            continue
                        }
                    }
                    let eventID = batch[index].event.id
                    try connection.query(
                        EventRows.insertEvent,
                        [
                            .text(eventID), .text(batch[index].event.type.rawValue),
                            .blob(batch[index].event.payload), .integer(now),
                            .optionalText(batch[index].event.idempotencyKey),
                        ])
                    let eventSeq = connection.lastInsertRowID
                    for webhookID in webhookIDs {
                        try connection.query(
                            EventRows.insertDelivery,
                            [.integer(eventSeq), .text(webhookID), .integer(now), .integer(now), .integer(now)])
                    }
                    let receipt = EventReceipt(eventID: eventID, deliveries: webhookIDs.count, replayed: false)
                    if let key = batch[index].event.idempotencyKey {
                        try connection.query(
                            EventRows.upsertIdempotencyKey,
                            [.text(key), .text(eventID), .integer(Int64(webhookIDs.count)), .integer(now)])
                        keysInBatch[ExactKey(key)] = receipt
                    }
                    receipts.append(receipt)
                    stored += 1
                }
                try connection.query(
                    "UPDATE counters SET value = value + ? WHERE name = 'events_accepted'", [.integer(Int64(stored))])
            }
        } catch {
            for index in batch.indices { batch[index].completion(.failure(error)) }
            return
        }
        for (receipt, webhookIDs) in zip(receipts, routes) where !receipt.replayed {
            eventsAccepted += 1
            for webhookID in webhookIDs { counts.add(webhookID: webhookID, state: .pending, 1) }
        }
        for index in batch.indices { batch[index].completion(.success(receipts[index])) }
    }

    // MARK: - Deliveries

    public func dueDeliveries(
        now: Timestamp, after cursor: DueCursor?, excluding: [String], limit: Int,
        completion: @escaping Completion<[DueDelivery]>
    ) {
        let excluded = JSONWriter.string(.array(excluding.map { .string($0) }))
        let start = cursor ?? DueCursor(nextAttemptMicroseconds: Int64.min, deliverySeq: Int64.min)
        submit(completion) { connection in
            var due: [DueDelivery] = []
            try connection.query(
                DeliveryRows.due,
                [
                    .integer(now.microseconds), .integer(start.nextAttemptMicroseconds), .integer(start.deliverySeq),
                    .integer(Int64(limit)), .text(excluded),
                ]
            ) { row throws(StoreError) in
                guard let type = EventType(exactly: row.text(4)) else {
                    throw StoreError(code: SQLITE_CORRUPT, message: "event \(row.text(3)) has an unknown type")
                }
                let secrets = Webhook.signingSecrets(
                    current: row.text(10), previous: row.optionalText(11),
                    previousExpiresAt: row.optionalInteger(12).map(Timestamp.init(microseconds:)), at: now)
                due.append(
                    DueDelivery(
                        deliverySeq: row.integer(0), attempts: Int(row.integer(1)),
                        nextAttemptAt: Timestamp(microseconds: row.integer(2)), eventID: row.text(3), eventType: type,
                        payload: row.blob(5), webhookID: row.text(6), webhookName: row.text(7), url: row.text(8),
                        rateLimit: Int(row.integer(9)), secrets: secrets))
            }
            return due
        }
    }

    public func recordAttempts(_ records: [AttemptRecord], completion: @escaping Completion<Void>) {
        submit(completion) { connection in
            var ended: [(String, DeliveryState)] = []
            var logged: [LoggedRequest] = []
            logged.reserveCapacity(records.count)
            try connection.transaction { () throws(StoreError) in
                for record in records {
                    logged.append(try DeliveryRows.logRequest(connection, record))
                    let state: DeliveryState
                    switch record.outcome {
                    case .delivered: state = .delivered
                    case .failed: state = .failed
                    case .cancelled: state = .cancelled
                    case .retrying: state = .pending
                    }
                    let next = record.nextAttemptAt?.microseconds ?? record.at.microseconds
                    try connection.query(
                        DeliveryRows.advance,
                        [
                            .text(state.rawValue), .integer(Int64(record.attempt)), .integer(next),
                            .integer(record.at.microseconds), .integer(record.deliverySeq),
                        ])
                    if connection.changes > 0, state != .pending { ended.append((record.webhookID, state)) }
                }
            }
            for (webhookID, state) in ended {
                self.counts.add(webhookID: webhookID, state: .pending, -1)
                self.counts.add(webhookID: webhookID, state: state, 1)
            }
            self.published(logged)
        }
    }

    public func redeliver(
        eventID: String, webhookID: String, at time: Timestamp, completion: @escaping Completion<Int64>
    ) {
        submit(completion) { connection in
            // Checked and inserted on the writer's queue: nothing can change between.
            guard let eventSeq = try connection.scalarInteger("SELECT seq FROM events WHERE id = ?", [.text(eventID)])
            else { throw StoreFailure.eventNotFound }
            guard try connection.scalarInteger("SELECT 1 FROM webhooks WHERE id = ?", [.text(webhookID)]) != nil
            else { throw StoreFailure.webhookNotFound }
            let now = time.microseconds
            let seq = try connection.transaction { () throws(StoreError) -> Int64 in
                try connection.query(
                    EventRows.insertDelivery,
                    [.integer(eventSeq), .text(webhookID), .integer(now), .integer(now), .integer(now)])
                return connection.lastInsertRowID
            }
            self.counts.add(webhookID: webhookID, state: .pending, 1)
            return seq
        }
    }

    public func listRequests(_ query: RequestQuery, completion: @escaping Completion<RequestPage>) {
        var afterSeq: Int64?
        if let cursor = query.cursor {
            guard let seq = PageCursor.decode(cursor, prefix: "r") else {
                submit(completion) { _ in throw StoreFailure.invalidCursor }
                return
            }
            afterSeq = seq
        }
        var conditions: [String] = []
        var bindings: [SQLValue] = []
        if let afterSeq {
            conditions.append("seq < ?")
            bindings.append(.integer(afterSeq))
        }
        if let id = query.webhookID {
            conditions.append("webhook_id = ?")
            bindings.append(.text(id))
        }
        if let id = query.eventID {
            conditions.append("event_id = ?")
            bindings.append(.text(id))
        }
        if let outcome = query.outcome {
            conditions.append("outcome = ?")
            bindings.append(.text(outcome.rawValue))
        }
        if let since = query.since {
            conditions.append("at_us >= ?")
            bindings.append(.integer(since.microseconds))
        }
        if let until = query.until {
            conditions.append("at_us < ?")
            bindings.append(.integer(until.microseconds))
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT seq, \(DeliveryRows.requestColumns) FROM requests \(filter) ORDER BY seq DESC LIMIT ?"
        bindings.append(.integer(Int64(query.limit) + 1))
        let limit = query.limit
        let values = bindings
        submit(completion) { connection in
            var rows: [(Int64, LoggedRequest)] = []
            try connection.query(sql, values) { row throws(StoreError) in
                rows.append((row.integer(0), try DeliveryRows.decodeRequest(row, offset: 1)))
            }
            let page = rows.prefix(limit)
            return RequestPage(
                requests: page.map(\.1),
                nextCursor: rows.count > limit ? page.last.map { PageCursor.encode($0.0, prefix: "r") } : nil)
        }
    }

    public func pruneRequestLog(before: Timestamp, keepRows: Int, batch: Int, completion: @escaping Completion<Int>) {
        submit(completion) { connection in
            try connection.transaction { () throws(StoreError) -> Int in
                // The newest line that falls outside the count bound, if any.
                let countBound =
                    try connection.scalarInteger(
                        "SELECT seq FROM requests ORDER BY seq DESC LIMIT 1 OFFSET ?", [.integer(Int64(keepRows))]) ?? 0
                try connection.query(
                    """
                    DELETE FROM requests WHERE seq IN (
                        SELECT seq FROM requests WHERE seq <= ? OR at_us < ? ORDER BY seq LIMIT ?)
                    """, [.integer(countBound), .integer(before.microseconds), .integer(Int64(batch))])
                let deleted = connection.changes
                try connection.query(
                    "DELETE FROM idempotency_keys WHERE created_us < ?",
                    [.integer(SystemWallClock().now().microseconds - EventRows.idempotencyWindowMicroseconds)])
                return deleted
            }
        }
    }

    /// How many lines the request log holds (for retention by count, and tests).
    func requestLogCount(completion: @escaping Completion<Int>) {
        submit(completion) { connection in Int(try connection.scalarInteger("SELECT COUNT(*) FROM requests") ?? 0) }
    }

    public func afterPriorCalls(_ body: @escaping @Sendable () -> Void) {
        submit({ _ in body() }) { _ in }
    }

    public func stats(webhookID: String?, completion: @escaping Completion<StoreStats>) {
        submit(completion) { connection in
            let waiting = self.ingest.withLock { $0.waiting }
            if let webhookID {
                guard try connection.scalarInteger("SELECT 1 FROM webhooks WHERE id = ?", [.text(webhookID)]) != nil
                else { throw StoreFailure.webhookNotFound }
                let deliveries = self.counts.byState(webhookID: webhookID)
                return StoreStats(
                    eventsAccepted: deliveries.values.reduce(0, +), deliveries: deliveries,
                    webhooks: 1, eventsAwaitingCommit: waiting)
            }
            let webhooks = Int(try connection.scalarInteger("SELECT COUNT(*) FROM webhooks") ?? 0)
            return StoreStats(
                eventsAccepted: self.eventsAccepted, deliveries: self.counts.totals, webhooks: webhooks,
                eventsAwaitingCommit: waiting)
        }
    }

    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.connection?.close()
                self.connection = nil
                continuation.resume()
            }
        }
    }
}

/// The schema, one entry per version; `PRAGMA user_version` records how far a database
/// has come. Entries are append-only: a released migration never changes.
enum SchemaMigrations {
    static let steps: [String] = [
        // 1: the webhook registry.
        """
        CREATE TABLE webhooks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            url TEXT NOT NULL,
            filter TEXT NOT NULL,
            rate_limit INTEGER NOT NULL,
            is_sandbox INTEGER NOT NULL,
            state TEXT NOT NULL,
            disabled_reason TEXT,
            secret TEXT NOT NULL,
            previous_secret TEXT,
            previous_secret_expires_us INTEGER,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL
        );
        """,
        // 2: events, their deliveries, idempotency keys, counters.
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            payload BLOB NOT NULL,
            received_us INTEGER NOT NULL,
            idempotency_key TEXT
        );
        CREATE TABLE deliveries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_seq INTEGER NOT NULL REFERENCES events(seq),
            webhook_id TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_us INTEGER NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL
        );
        CREATE INDEX deliveries_due ON deliveries(state, next_attempt_us);
        CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            deliveries INTEGER NOT NULL,
            created_us INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO counters (name, value) VALUES ('events_accepted', 0);
        """,
        // 3: the request log, one row per attempt (and per cancellation).
        """
        CREATE TABLE requests (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            at_us INTEGER NOT NULL,
            delivery_seq INTEGER NOT NULL,
            webhook_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            url TEXT NOT NULL,
            http_status INTEGER,
            error_class TEXT,
            error TEXT,
            latency_us INTEGER,
            user_agent TEXT NOT NULL,
            response_body BLOB NOT NULL,
            outcome TEXT NOT NULL
        );
        CREATE INDEX requests_by_webhook ON requests(webhook_id, seq);
        CREATE INDEX requests_by_event ON requests(event_id, seq);
        CREATE INDEX requests_by_time ON requests(at_us);
        """,
    ]

    static var currentVersion: Int64 { Int64(steps.count) }

    static func migrate(_ connection: SQLiteConnection) throws(StoreError) {
        let version = try connection.scalarInteger("PRAGMA user_version") ?? 0
        if version > currentVersion {
            throw StoreError(
                code: SQLITE_ERROR,
                message: "the database has schema version \(version), newer than this hookgate's \(currentVersion)")
        }
        for next in (version + 1)..<(currentVersion + 1) {
            try connection.transaction { () throws(StoreError) in
                try connection.execute(steps[Int(next - 1)])
                try connection.execute("PRAGMA user_version = \(next)")
            }
        }
    }
}

/// The mapping between `Webhook` and its row.
enum WebhookRows {
    static let columns = """
        id, name, url, filter, rate_limit, is_sandbox, state, disabled_reason, secret, \
        previous_secret, previous_secret_expires_us, created_us, updated_us
        """

    static let insert = "INSERT INTO webhooks (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    static let update = """
        UPDATE webhooks SET name = ?2, url = ?3, filter = ?4, rate_limit = ?5, is_sandbox = ?6, state = ?7,
        disabled_reason = ?8, secret = ?9, previous_secret = ?10, previous_secret_expires_us = ?11,
        created_us = ?12, updated_us = ?13 WHERE id = ?1
        """

    static func bindings(_ webhook: Webhook) -> [SQLValue] {
        [
            .text(webhook.id),
            .text(webhook.definition.name),
            .text(webhook.definition.url),
            .text(JSONWriter.string(webhook.definition.filter.json)),
            .integer(Int64(webhook.definition.rateLimit)),
            .integer(webhook.definition.isSandbox ? 1 : 0),
            .text(webhook.state.rawValue),
            .optionalText(webhook.disabledReason),
            .text(webhook.secret),
            .optionalText(webhook.previousSecret),
            .optionalInteger(webhook.previousSecretExpiresAt?.microseconds),
            .integer(webhook.createdAt.microseconds),
            .integer(webhook.updatedAt.microseconds),
        ]
    }

    static func fetch(_ connection: SQLiteConnection, id: String) throws(StoreError) -> Webhook? {
        var result: Webhook?
        try connection.query("SELECT \(columns) FROM webhooks WHERE id = ?", [.text(id)]) { row throws(StoreError) in
            result = try decode(row, offset: 0)
        }
        return result
    }

    static func decode(_ row: SQLRow, offset: Int32) throws(StoreError) -> Webhook {
        let filterText = row.text(offset + 3)
        guard let filter = decodeFilter(filterText) else {
            throw StoreError(code: SQLITE_CORRUPT, message: "webhook \(row.text(offset)) has an unreadable filter")
        }
        let state = WebhookState(rawValue: row.text(offset + 6)) ?? .disabled
        return Webhook(
            id: row.text(offset),
            definition: WebhookDefinition(
                name: row.text(offset + 1),
                url: row.text(offset + 2),
                filter: filter,
                rateLimit: Int(row.integer(offset + 4)),
                isSandbox: row.integer(offset + 5) != 0),
            state: state,
            disabledReason: row.optionalText(offset + 7),
            secret: row.text(offset + 8),
            previousSecret: row.optionalText(offset + 9),
            previousSecretExpiresAt: row.optionalInteger(offset + 10).map(Timestamp.init(microseconds:)),
            createdAt: Timestamp(microseconds: row.integer(offset + 11)),
            updatedAt: Timestamp(microseconds: row.integer(offset + 12)))
    }

    static func decodeFilter(_ text: String) -> WebhookFilter? {
        guard case .object(let object)? = try? JSONParser.parse(text) else { return nil }
        func strings(_ key: String) -> [String]? {
            guard let items = object[key]?.arrayValue else { return nil }
            let strings = items.compactMap(\.stringValue)
            return strings.count == items.count ? strings : nil
        }
        guard let types = strings("event_type"), let sender = strings("sender"), let status = strings("status"),
            let messageRef = strings("message_ref"), let campaignId = strings("campaign_id")
        else { return nil }
        let eventTypes = types.compactMap(EventType.init(exactly:))
        guard eventTypes.count == types.count else { return nil }
        return WebhookFilter(
            eventType: eventTypes, sender: sender, status: status, messageRef: messageRef, campaignId: campaignId)
    }

    static func encodeCursor(_ seq: Int64) -> String { PageCursor.encode(seq, prefix: "w") }

    static func decodeCursor(_ cursor: String) -> Int64? { PageCursor.decode(cursor, prefix: "w") }
}

/// The statements of the event path.
enum EventRows {
    static let insertEvent =
        "INSERT INTO events (id, event_type, payload, received_us, idempotency_key) VALUES (?, ?, ?, ?, ?)"

    static let insertDelivery = """
        INSERT INTO deliveries (event_seq, webhook_id, state, attempts, next_attempt_us, created_us, updated_us)
        VALUES (?, ?, 'pending', 0, ?, ?, ?)
        """

    static let upsertIdempotencyKey = """
        INSERT INTO idempotency_keys (key, event_id, deliveries, created_us) VALUES (?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, deliveries = excluded.deliveries,
        created_us = excluded.created_us
        """

    /// How long a repeated idempotency key answers the first event.
    static let idempotencyWindowMicroseconds: Int64 = 24 * 3600 * 1_000_000

    /// The receipt of the event first stored under `key`, if that was within the window.
    static func idempotentReceipt(_ connection: SQLiteConnection, key: String, now: Int64) throws(StoreError)
        -> EventReceipt?
    {
        var receipt: EventReceipt?
        try connection.query(
            "SELECT event_id, deliveries FROM idempotency_keys WHERE key = ? AND created_us > ?",
            [.text(key), .integer(now - idempotencyWindowMicroseconds)]
        ) { row in
            receipt = EventReceipt(eventID: row.text(0), deliveries: Int(row.integer(1)), replayed: true)
        }
        return receipt
    }
}

/// Deliveries per webhook and state, for `stats`.
struct DeliveryCounts {
    /// The five states' counts inline: a dictionary per webhook would cost far more
    /// memory with 100,000 webhooks.
    struct ByState: Equatable {
        private var values = (0, 0, 0, 0, 0)

        subscript(state: DeliveryState) -> Int {
            get {
                switch state {
                case .pending: return values.0
                case .inFlight: return values.1
                case .delivered: return values.2
                case .failed: return values.3
                case .cancelled: return values.4
                }
            }
            set {
                switch state {
                case .pending: values.0 = newValue
                case .inFlight: values.1 = newValue
                case .delivered: values.2 = newValue
                case .failed: values.3 = newValue
                case .cancelled: values.4 = newValue
                }
            }
        }

        static func == (lhs: ByState, rhs: ByState) -> Bool {
            DeliveryState.allCases.allSatisfy { lhs[$0] == rhs[$0] }
        }

        var dictionary: [DeliveryState: Int] {
            Dictionary(uniqueKeysWithValues: DeliveryState.allCases.map { ($0, self[$0]) })
        }
    }

    private var byWebhook: [String: ByState] = [:]
    private var all = ByState()

    mutating func add(webhookID: String, state: DeliveryState, _ count: Int) {
        byWebhook[webhookID, default: ByState()][state] += count
        all[state] += count
    }

    var totals: [DeliveryState: Int] { all.dictionary }

    func byState(webhookID: String) -> [DeliveryState: Int] { (byWebhook[webhookID] ?? ByState()).dictionary }
}

/// The statements of the delivery path.
enum DeliveryRows {
    static let requestColumns = """
        id, at_us, delivery_seq, webhook_id, event_id, event_type, attempt, url, http_status, error_class, error, \
        latency_us, user_agent, response_body, outcome
        """

    static func decodeRequest(_ row: SQLRow, offset: Int32) throws(StoreError) -> LoggedRequest {
        guard let type = EventType(exactly: row.text(offset + 5)),
            let outcome = RequestOutcome(rawValue: row.text(offset + 14))
        else { throw StoreError(code: SQLITE_CORRUPT, message: "request \(row.text(offset)) is unreadable") }
        return LoggedRequest(
            id: row.text(offset),
            record: AttemptRecord(
                deliverySeq: row.integer(offset + 2), at: Timestamp(microseconds: row.integer(offset + 1)),
                webhookID: row.text(offset + 3), eventID: row.text(offset + 4), eventType: type,
                attempt: Int(row.integer(offset + 6)), url: row.text(offset + 7),
                httpStatus: row.optionalInteger(offset + 8).map { Int($0) }, errorClass: row.optionalText(offset + 9),
                error: row.optionalText(offset + 10), latencyMicroseconds: row.optionalInteger(offset + 11),
                userAgent: row.text(offset + 12), responseBody: row.blob(offset + 13), outcome: outcome,
                nextAttemptAt: nil))
    }

    /// Cancels a webhook's pending deliveries, logging each as a request item with
    /// outcome `cancelled` and no attempt made; the lines logged. Through the due
    /// index's `state` prefix: cancelling is rare, and an index on webhook_id would cost
    /// every event an insert at a random place.
    static func cancelPending(
        _ connection: SQLiteConnection, webhookID: String, url: String, at time: Timestamp, reason: String,
        except spared: [Int64] = []
    ) throws(StoreError) -> [LoggedRequest] {
        var pending: [(seq: Int64, attempts: Int64, eventID: String, eventType: String)] = []
        try connection.query(
            """
            SELECT d.seq, d.attempts, e.id, e.event_type FROM deliveries d JOIN events e ON e.seq = d.event_seq
            WHERE d.state = 'pending' AND d.webhook_id = ? AND d.seq NOT IN (SELECT value FROM json_each(?))
            """, [.text(webhookID), .text(JSONWriter.string(.array(spared.map { .integer($0) })))]
        ) { row in
            pending.append((row.integer(0), row.integer(1), row.text(2), row.text(3)))
        }
        var logged: [LoggedRequest] = []
        for delivery in pending {
            guard let eventType = EventType(exactly: delivery.eventType) else {
                throw StoreError(code: SQLITE_CORRUPT, message: "event \(delivery.eventID) has an unreadable type")
            }
            let record = AttemptRecord(
                deliverySeq: delivery.seq, at: time, webhookID: webhookID, eventID: delivery.eventID,
                eventType: eventType, attempt: Int(delivery.attempts) + 1, url: url, httpStatus: nil,
                errorClass: nil, error: reason, latencyMicroseconds: nil, userAgent: "", responseBody: [],
                outcome: .cancelled, nextAttemptAt: nil)
            logged.append(try logRequest(connection, record))
            try connection.query(
                "UPDATE deliveries SET state = 'cancelled', updated_us = ? WHERE seq = ?",
                [.integer(time.microseconds), .integer(delivery.seq)])
        }
        return logged
    }

    static let due = """
        SELECT d.seq, d.attempts, d.next_attempt_us, e.id, e.event_type, e.payload, w.id, w.name, w.url,
               w.rate_limit, w.secret, w.previous_secret, w.previous_secret_expires_us
        FROM deliveries d
        JOIN events e ON e.seq = d.event_seq
        JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.state = 'pending' AND d.next_attempt_us <= ?1 AND w.state = 'active'
          AND (d.next_attempt_us, d.seq) > (?2, ?3)
          AND d.webhook_id NOT IN (SELECT value FROM json_each(?5))
        ORDER BY d.next_attempt_us, d.seq
        LIMIT ?4
        """

    /// Writes one request-log line.
    static func logRequest(_ connection: SQLiteConnection, _ record: AttemptRecord) throws(StoreError)
        -> LoggedRequest
    {
        let id = Identifiers.timeOrderedUUID(at: record.at)
        try connection.query(
            insertRequest,
            [
                .text(id), .integer(record.at.microseconds), .integer(record.deliverySeq), .text(record.webhookID),
                .text(record.eventID), .text(record.eventType.rawValue), .integer(Int64(record.attempt)),
                .text(record.url), .optionalInteger(record.httpStatus.map(Int64.init)),
                .optionalText(record.errorClass), .optionalText(record.error),
                .optionalInteger(record.latencyMicroseconds), .text(record.userAgent), .blob(record.responseBody),
                .text(record.outcome.rawValue),
            ])
        return LoggedRequest(id: id, record: record)
    }

    private static let insertRequest = """
        INSERT INTO requests (id, at_us, delivery_seq, webhook_id, event_id, event_type, attempt, url, http_status,
                              error_class, error, latency_us, user_agent, response_body, outcome)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// Only a pending delivery moves on: a cancelled one stays cancelled.
    static let advance = """
        UPDATE deliveries SET state = ?1, attempts = ?2, next_attempt_us = ?3, updated_us = ?4
        WHERE seq = ?5 AND state = 'pending'
        """
}

import CSQLite
import Dispatch
import HookgateCore
import Synchronization

/// The SQLite store: one connection in WAL mode, owned by one serial queue.
///
/// `@unchecked Sendable`: `connection` and the counters are touched only on `queue` (the
/// writer), `reader` only on `readQueue`; every public method hops onto one of them;
/// `ingest` is a Mutex; the rest is immutable.
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
    /// A read-only connection on its own queue for the due scan and `list_requests`:
    /// they neither wait for group commits nor hold the writer while they read.
    private let readQueue = DispatchQueue(label: "hookgate.store.read")
    private var reader: SQLiteConnection?
    /// Copies the WAL into the database beside the writer rather than inside its commits.
    private let checkpointer: WALCheckpointer
    /// Counters for `stats`, kept in memory (loaded at open, updated by each commit).
    var counts = DeliveryCounts()
    private var eventsAccepted = 0
    /// Retention has deleted the finished events received before this: an event id of
    /// that age that is not found is past retention, not unknown.
    private var eventsPrunedBefore = Timestamp(microseconds: 0)
    /// Where the next retention pass goes on from, through deliveries and events by
    /// sequence (nil: from the oldest row).
    private var retentionCursors = RetentionCursors()

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
    private var newDeliveriesObserver: (@Sendable ([String: Timestamp]) -> Void)?
    /// The request log's interned names; on `queue`.
    private var requestLogKeys = RequestLogKeys()
    private let metrics: HookgateMetrics

    /// Opens (creating if needed) the database in `directory` and migrates it to the
    /// current schema.
    public init(directory: String, sync: SyncMode = .full, metrics: HookgateMetrics = .disabled) throws {
        self.metrics = metrics
        let connection = try SQLiteConnection(path: directory + "/" + Self.databaseFileName)
        try connection.execute("PRAGMA journal_mode=WAL")
        try connection.execute("PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")")
        // The one reference between tables (a delivery's event) is kept by the store
        // itself: events are deleted only by retention, and only once no delivery refers
        // to them (`pruneEvents`). SQLite's own check made every multi-row insert of an
        // event's deliveries keep a statement journal, a quarter of the writer's work
        // with ten matches per event.
        try connection.execute("PRAGMA foreign_keys=OFF")
        try connection.execute("PRAGMA busy_timeout=5000")
        // 16 MiB of page cache (the default is 2 MiB): the event path's index pages stay
        // in memory instead of being read back for every batch.
        try connection.execute("PRAGMA cache_size=-16384")
        // Statement journals in memory: a statement that writes several rows (an event's
        // deliveries, a batch of attempts) keeps one in case it must be undone alone, and
        // in a temporary file that cost a write call per page, some 40 per event.
        try connection.execute("PRAGMA temp_store=MEMORY")
        try SchemaMigrations.migrate(connection)
        checkpointer = try WALCheckpointer(path: directory + "/" + Self.databaseFileName)
        checkpointer.serve(connection)
        self.connection = connection
        let reader = try SQLiteConnection(path: directory + "/" + Self.databaseFileName, readOnly: true)
        try reader.execute("PRAGMA busy_timeout=5000")
        try reader.execute("PRAGMA cache_size=-8192")
        self.reader = reader
        try loadCounters(connection)
    }

    /// Runs `body` on the read-only connection, in order with other reads only.
    private func read<T>(
        _ completion: @escaping Completion<T>, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) {
        readQueue.async {
            guard let reader = self.reader else {
                completion(.failure(StoreError(code: SQLITE_MISUSE, message: "store is closed")))
                return
            }
            completion(Result { try body(reader) })
        }
    }

    /// What startup reads: counters and counts kept as rows, never a scan of history.
    private func loadCounters(_ connection: SQLiteConnection) throws(StoreError) {
        eventsAccepted = Int(
            try connection.scalarInteger("SELECT value FROM counters WHERE name = 'events_accepted'") ?? 0)
        eventsPrunedBefore = Timestamp(
            microseconds: try connection.scalarInteger(
                "SELECT value FROM counters WHERE name = 'events_pruned_before_us'") ?? 0)
        try counts.load(connection)
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
            try connection.transaction { () throws(StoreError) -> Bool in
                guard let webhook = try WebhookRows.fetch(connection, id: id) else { return false }
                try connection.query("DELETE FROM webhooks WHERE id = ?", [.text(id)])
                try DeliveryRows.startCancellation(
                    connection, webhookID: id, url: webhook.definition.url, at: SystemWallClock().now(),
                    reason: "webhook deleted")
                return true
            }
        }
    }

    public func disableWebhookAfterGone(
        id: String, reason: String, at time: Timestamp, completion: @escaping Completion<Webhook?>
    ) {
        submit(completion) { connection in
            try connection.transaction { () throws(StoreError) -> Webhook? in
                guard let current = try WebhookRows.fetch(connection, id: id) else { return nil }
                let disabled = current.settingState(.disabled, reason: reason, at: time)
                try connection.query(WebhookRows.update, WebhookRows.bindings(disabled))
                try DeliveryRows.startCancellation(
                    connection, webhookID: id, url: current.definition.url, at: time, reason: reason)
                return disabled
            }
        }
    }

    public func cancellations(completion: @escaping Completion<[String]>) {
        submit(completion) { connection in
            var ids: [String] = []
            try connection.query("SELECT webhook_id FROM cancellations") { row in ids.append(row.text(0)) }
            return ids
        }
    }

    public func cancelPending(
        webhookID: String, except spared: [Int64], maxRows: Int, completion: @escaping Completion<Bool>
    ) {
        submit(completion) { connection in
            var changes = CountChanges()
            let (done, logged) = try self.loggingTransaction(connection) { () throws(StoreError) in
                try DeliveryRows.continueCancellation(
                    connection, webhookID: webhookID, except: spared, maxRows: maxRows, changes: &changes,
                    keys: &self.requestLogKeys)
            }
            changes.apply(to: &self.counts)
            self.published(logged)
            return done
        }
    }

    public func observeRequestLog(_ observer: @escaping @Sendable ([LoggedRequest]) -> Void) {
        queue.async { self.requestLogObserver = observer }
    }

    /// A transaction that writes request-log lines: the names it interned are kept only
    /// if it commits. On `queue`.
    private func loggingTransaction<T>(_ connection: SQLiteConnection, _ body: () throws(StoreError) -> T)
        throws(StoreError) -> T
    {
        do {
            let result = try connection.transaction(body)
            requestLogKeys.committed()
            return result
        } catch {
            requestLogKeys.rolledBack()
            throw error
        }
    }

    /// Hands committed request-log lines to the observer; on `queue`.
    private func published(_ logged: [LoggedRequest]) {
        guard !logged.isEmpty else { return }
        for line in logged {
            metrics.attempt(outcome: line.record.outcome.rawValue, errorClass: line.record.errorClass)
        }
        requestLogObserver?(logged)
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
        let started = DispatchTime.now().uptimeNanoseconds
        let routes = batch[0].router.route(batch.map(\.event.matchKey))
        var receipts: [EventReceipt] = []
        receipts.reserveCapacity(batch.count)
        var changes = CountChanges()
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
                    try EventRows.insertDeliveries(connection, eventSeq: eventSeq, webhookIDs: webhookIDs, now: now)
                    for webhookID in webhookIDs { changes.created(webhookID: webhookID, due: now) }
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
                try changes.write(connection)
            }
        } catch {
            for index in batch.indices { batch[index].completion(.failure(error)) }
            return
        }
        metrics.commitDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        var created = 0
        for index in batch.indices where !receipts[index].replayed {
            metrics.eventAccepted(batch[index].event.type)
            created += receipts[index].deliveries
        }
        if created > 0 { metrics.deliveriesCreated.increment(by: created) }
        eventsAccepted += receipts.lazy.filter { !$0.replayed }.count
        changes.apply(to: &counts)
        for index in batch.indices { batch[index].completion(.success(receipts[index])) }
        // Only new deliveries change counts here.
        if !changes.newDeliveries.isEmpty { newDeliveriesObserver?(changes.newDeliveries) }
    }

    // MARK: - Deliveries

    public func dueDeliveries(
        now: Timestamp, for queries: [DueQuery], claimed: Set<Int64>, completion: @escaping Completion<[DueWebhook]>
    ) {
        read(completion) { connection in
            try connection.snapshot { () throws(StoreError) in
                var found: [DueWebhook] = []
                found.reserveCapacity(queries.count)
                for query in queries { found.append(try DueRows.scan(connection, query, now: now, claimed: claimed)) }
                return found
            }
        }
    }

    public func pendingWebhooks(completion: @escaping Completion<[String: Timestamp]>) {
        read(completion) { connection in try DueRows.pendingWebhooks(connection) }
    }

    public func startRecovery(
        webhookID: String, since: Timestamp, until: Timestamp, at time: Timestamp, completion: @escaping Completion<Int>
    ) {
        submit(completion) { connection in
            try RecoveryRows.start(connection, webhookID: webhookID, since: since, until: until, at: time)
        }
    }

    public func continueRecovery(maxRows: Int, completion: @escaping Completion<Bool>) {
        submit(completion) { connection in
            var changes = CountChanges()
            let (done, created) = try connection.transaction { () throws(StoreError) -> (Bool, Int) in
                try RecoveryRows.continueRecovery(connection, maxRows: maxRows, changes: &changes)
            }
            changes.apply(to: &self.counts)
            if created > 0 {
                self.metrics.deliveriesCreated.increment(by: created)
                self.newDeliveriesObserver?(changes.newDeliveries)
            }
            return done
        }
    }

    public func oldestDue(now: Timestamp, sent: Set<Int64>, completion: @escaping Completion<Timestamp?>) {
        read(completion) { connection in
            try connection.snapshot { () throws(StoreError) in try DueRows.oldestDue(connection, now: now, sent: sent) }
        }
    }

    public func webhookCounts(completion: @escaping Completion<[WebhookState: Int]>) {
        read(completion) { connection in
            var counts: [WebhookState: Int] = [:]
            try connection.query("SELECT state, COUNT(*) FROM webhooks GROUP BY state") { row in
                if let state = WebhookState(rawValue: row.text(0)) { counts[state] = Int(row.integer(1)) }
            }
            return counts
        }
    }

    public func probeWrite(at time: Timestamp, completion: @escaping Completion<Void>) {
        submit(completion) { connection in
            try connection.transaction { () throws(StoreError) in
                try connection.query(
                    "INSERT INTO counters (name, value) VALUES ('health_probe_us', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [.integer(time.microseconds)])
            }
        }
    }

    public func observeNewDeliveries(_ observer: @escaping @Sendable ([String: Timestamp]) -> Void) {
        queue.async { self.newDeliveriesObserver = observer }
    }

    public func recordAttempts(
        _ records: [AttemptRecord], disableFailingAfterMicroseconds: Int64, completion: @escaping Completion<[Webhook]>
    ) {
        submit(completion) { connection in
            var changes = CountChanges()
            var logged: [LoggedRequest] = []
            logged.reserveCapacity(records.count)
            let disabled = try self.loggingTransaction(connection) { () throws(StoreError) -> [Webhook] in
                var health = EndpointHealthChanges()
                // Endpoint health follows the attempts in the order they were made, not
                // the order their answers came back in.
                for record in records.sorted(by: { $0.at < $1.at }) { health.add(record) }
                logged = try DeliveryRows.logRequests(connection, records, keys: &self.requestLogKeys)
                let moved = try DeliveryRows.advance(connection, records)
                for record in records where moved.contains(record.deliverySeq) {
                    let state = DeliveryRows.state(after: record.outcome)
                    if state != .pending { changes.end(webhookID: record.webhookID, as: state) }
                }
                try changes.write(connection)
                try health.write(connection)
                guard disableFailingAfterMicroseconds > 0 else { return [] }
                return try health.disableFailing(connection, after: disableFailingAfterMicroseconds)
            }
            changes.apply(to: &self.counts)
            self.published(logged)
            return disabled
        }
    }

    public func redeliver(
        eventID: String, webhookID: String, at time: Timestamp, completion: @escaping Completion<Int64>
    ) {
        submit(completion) { connection in
            // Checked and inserted on the writer's queue: nothing can change between.
            guard let eventSeq = try connection.scalarInteger("SELECT seq FROM events WHERE id = ?", [.text(eventID)])
            else {
                // Event ids carry the time they were received (UUIDv7).
                if let received = Identifiers.timeOfTimeOrderedUUID(eventID), received < self.eventsPrunedBefore {
                    throw StoreFailure.eventPastRetention
                }
                throw StoreFailure.eventNotFound
            }
            guard try connection.scalarInteger("SELECT 1 FROM webhooks WHERE id = ?", [.text(webhookID)]) != nil
            else { throw StoreFailure.webhookNotFound }
            let now = time.microseconds
            var changes = CountChanges()
            changes.created(webhookID: webhookID, due: now)
            let seq = try connection.transaction { () throws(StoreError) -> Int64 in
                try connection.query(
                    EventRows.insertDelivery,
                    [.integer(eventSeq), .text(webhookID), .integer(now), .integer(now), .integer(now)])
                let seq = connection.lastInsertRowID
                try changes.write(connection)
                return seq
            }
            changes.apply(to: &self.counts)
            self.metrics.deliveriesCreated.increment()
            self.newDeliveriesObserver?(changes.newDeliveries)
            return seq
        }
    }

    public func listRequests(_ query: RequestQuery, completion: @escaping Completion<RequestPage>) {
        var afterSeq: Int64?
        if let cursor = query.cursor {
            guard let seq = PageCursor.decode(cursor, prefix: "r") else {
                read(completion) { _ in throw StoreFailure.invalidCursor }
                return
            }
            afterSeq = seq
        }
        var conditions: [String] = []
        var bindings: [SQLValue] = []
        if let afterSeq {
            conditions.append("r.seq < ?")
            bindings.append(.integer(afterSeq))
        }
        if let id = query.webhookID {
            // One key per webhook: its lines are read in order through (webhook, seq).
            conditions.append("r.webhook = (SELECT key FROM request_webhooks WHERE webhook_id = ?)")
            bindings.append(.text(id))
        }
        if let id = query.eventID {
            conditions.append("r.event_id = ?")
            bindings.append(.text(id))
        }
        if let outcome = query.outcome {
            conditions.append("r.outcome = ?")
            bindings.append(.text(outcome.rawValue))
        }
        if let since = query.since {
            conditions.append("r.at_us >= ?")
            bindings.append(.integer(since.microseconds))
        }
        if let until = query.until {
            conditions.append("r.at_us < ?")
            bindings.append(.integer(until.microseconds))
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = """
            SELECT r.seq, \(DeliveryRows.requestColumns) FROM \(DeliveryRows.requestsJoined) \(filter)
            ORDER BY r.seq DESC LIMIT ?
            """
        bindings.append(.integer(Int64(query.limit) + 1))
        let limit = query.limit
        let values = bindings
        // The request log is written by the engine and by cancellations, never by a
        // client's own command: a read from the last commit loses no ordering a client
        // can see, and never waits for the writer.
        read(completion) { connection in
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

    public func pruneRequestLog(
        before: Timestamp, keepRows: Int, batch: Int, completion: @escaping Completion<RetentionProgress>
    ) {
        submit(completion) { connection in
            try connection.transaction { () throws(StoreError) -> RetentionProgress in
                // Lines are numbered without gaps and deleted oldest first, so the newest
                // line beyond the count bound is found by arithmetic, not by counting.
                let newest = try connection.scalarInteger("SELECT MAX(seq) FROM requests") ?? 0
                let countBound = newest - Int64(keepRows)
                let idempotencyBound =
                    SystemWallClock().now().microseconds - EventRows.idempotencyWindowMicroseconds
                var deleted = 0
                var more = true
                let started = ContinuousClock.now
                while more, deleted < batch, ContinuousClock.now - started < RetentionRows.transactionBudget {
                    let chunk = min(RetentionRows.chunkRows, batch - deleted)
                    // Each bound through its own index, so a pass with nothing to delete
                    // reads nothing (one query for both scanned the whole log).
                    try connection.query(
                        "DELETE FROM requests WHERE seq IN (SELECT seq FROM requests WHERE seq <= ? ORDER BY seq LIMIT ?)",
                        [.integer(countBound), .integer(Int64(chunk))])
                    var lines = connection.changes
                    if lines < chunk {
                        try connection.query(
                            """
                            DELETE FROM requests WHERE seq IN (
                                SELECT seq FROM requests INDEXED BY requests_by_time WHERE at_us < ? ORDER BY at_us LIMIT ?)
                            """, [.integer(before.microseconds), .integer(Int64(chunk - lines))])
                        lines += connection.changes
                    }
                    try connection.query(
                        """
                        DELETE FROM idempotency_keys WHERE key IN (
                            SELECT key FROM idempotency_keys WHERE created_us < ? ORDER BY created_us LIMIT ?)
                        """, [.integer(idempotencyBound), .integer(Int64(chunk))])
                    let keys = connection.changes
                    deleted += lines
                    more = lines == chunk || keys == chunk
                }
                return RetentionProgress(deleted: deleted, caughtUp: !more)
            }
        }
    }

    public func pruneEvents(before: Timestamp, maxRows: Int, completion: @escaping Completion<RetentionProgress>) {
        submit(completion) { connection in
            let cutoff = before.microseconds
            var cursors = self.retentionCursors
            let deleted = try connection.transaction { () throws(StoreError) -> Int in
                // Deliveries first: an event goes once it has none left.
                let deliveries = try RetentionRows.prune(
                    connection, table: "deliveries", timeColumn: "created_us", deletable: "state != 'pending'",
                    before: cutoff, maxRows: maxRows, cursor: &cursors.deliveries)
                let events = try RetentionRows.prune(
                    connection, table: "events", timeColumn: "received_us",
                    deletable: "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)",
                    before: cutoff, maxRows: maxRows, cursor: &cursors.events)
                if events > 0 {
                    try connection.query(
                        "UPDATE counters SET value = MAX(value, ?) WHERE name = 'events_pruned_before_us'",
                        [.integer(cutoff)])
                }
                return deliveries + events
            }
            self.retentionCursors = cursors
            if deleted > 0 { self.eventsPrunedBefore = max(self.eventsPrunedBefore, before) }
            return RetentionProgress(deleted: deleted, caughtUp: cursors.deliveries == nil && cursors.events == nil)
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
            readQueue.async {
                self.reader?.close()
                self.reader = nil
                self.queue.async {
                    // The writer goes first (its last commit may still ask the
                    // checkpointer); the checkpointer, closed last, copies what is left
                    // and removes the WAL.
                    self.connection?.close()
                    self.connection = nil
                    self.checkpointer.close()
                    continuation.resume()
                }
            }
        }
    }
}

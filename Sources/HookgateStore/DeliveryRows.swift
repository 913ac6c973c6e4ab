import CSQLite
import HookgateCore

/// The statements of the delivery path.
enum DeliveryRows {
    /// The request log with its interned names (migration 7), as `r`.
    static let requestsJoined = """
        requests r JOIN request_webhooks w ON w.key = r.webhook JOIN request_endpoints e ON e.key = r.endpoint
        """

    /// What `decodeRequest` reads, from `requestsJoined`.
    static let requestColumns = """
        r.id, r.at_us, r.delivery_seq, w.webhook_id, r.event_id, r.event_type, r.attempt, e.url, r.http_status, \
        r.error_class, r.error, r.latency_us, e.user_agent, r.response_body, r.outcome
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

    /// Records that a webhook's pending deliveries are to be cancelled: every delivery
    /// there is now, from the oldest to the newest, is looked at in the background
    /// (`continueCancellation`), so no transaction holds the writer for long however
    /// large the backlog.
    static func startCancellation(
        _ connection: SQLiteConnection, webhookID: String, url: String, at time: Timestamp, reason: String
    ) throws(StoreError) {
        try connection.query(
            """
            INSERT INTO cancellations (webhook_id, url, reason, at_us, next_seq, last_seq)
            VALUES (?1, ?2, ?3, ?4, (SELECT IFNULL(MIN(seq), 0) FROM deliveries), (SELECT IFNULL(MAX(seq), 0) FROM deliveries))
            ON CONFLICT (webhook_id) DO UPDATE SET url = excluded.url, reason = excluded.reason,
                at_us = excluded.at_us, next_seq = MIN(next_seq, excluded.next_seq), last_seq = excluded.last_seq
            """, [.text(webhookID), .text(url), .text(reason), .integer(time.microseconds)])
    }

    /// Cancels the webhook's pending deliveries among the next `maxRows` sequence numbers
    /// of its cancellation, each logged as a request item with outcome `cancelled` and no
    /// attempt made, all but `spared`; whether the cancellation is done, and the lines
    /// logged. The deliveries are read by sequence range (the table's own order), so a
    /// batch costs the same whatever the rest of the table holds (`NOT INDEXED`: the
    /// per-webhook index would walk the webhook's whole backlog for every batch).
    static func continueCancellation(
        _ connection: SQLiteConnection, webhookID: String, except spared: [Int64], maxRows: Int,
        changes: inout CountChanges, keys: inout RequestLogKeys
    ) throws(StoreError) -> (done: Bool, logged: [LoggedRequest]) {
        var job: (url: String, reason: String, at: Timestamp, next: Int64, last: Int64)?
        try connection.query(
            "SELECT url, reason, at_us, next_seq, last_seq FROM cancellations WHERE webhook_id = ?", [.text(webhookID)]
        ) { row in
            job = (row.text(0), row.text(1), Timestamp(microseconds: row.integer(2)), row.integer(3), row.integer(4))
        }
        guard let job else { return (true, []) }
        let end = min(job.next + Int64(maxRows), job.last + 1)
        var pending: [(seq: Int64, attempts: Int64, eventID: String, eventType: String)] = []
        try connection.query(
            """
            SELECT d.seq, d.attempts, e.id, e.event_type FROM deliveries d NOT INDEXED JOIN events e ON e.seq = d.event_seq
            WHERE d.seq >= ? AND d.seq < ? AND d.state = 'pending' AND d.webhook_id = ?
              AND d.seq NOT IN (SELECT value FROM json_each(?))
            """,
            [
                .integer(job.next), .integer(end), .text(webhookID),
                .text(JSONWriter.string(.array(spared.map { .integer($0) }))),
            ]
        ) { row in
            pending.append((row.integer(0), row.integer(1), row.text(2), row.text(3)))
        }
        var records: [AttemptRecord] = []
        records.reserveCapacity(pending.count)
        for delivery in pending {
            guard let eventType = EventType(exactly: delivery.eventType) else {
                throw StoreError(code: SQLITE_CORRUPT, message: "event \(delivery.eventID) has an unreadable type")
            }
            records.append(
                AttemptRecord(
                    deliverySeq: delivery.seq, at: job.at, webhookID: webhookID, eventID: delivery.eventID,
                    eventType: eventType, attempt: Int(delivery.attempts) + 1, url: job.url, httpStatus: nil,
                    errorClass: nil, error: job.reason, latencyMicroseconds: nil, userAgent: "", responseBody: [],
                    outcome: .cancelled, nextAttemptAt: nil))
            try connection.query(
                "UPDATE deliveries SET state = 'cancelled', updated_us = ? WHERE seq = ?",
                [.integer(job.at.microseconds), .integer(delivery.seq)])
        }
        let logged = try logRequests(connection, records, keys: &keys)
        changes.end(webhookID: webhookID, as: .cancelled, pending.count)
        try changes.write(connection)
        var next = end
        if end > job.last {
            // The range is done, but a spared delivery still pending (its attempt not
            // recorded yet) keeps the cancellation open from there: if the attempt is
            // retried, or never recorded (the daemon stopped), it is cancelled later.
            next =
                try connection.scalarInteger(
                    """
                    SELECT MIN(seq) FROM deliveries NOT INDEXED
                    WHERE seq IN (SELECT value FROM json_each(?)) AND state = 'pending' AND webhook_id = ?
                    """, [.text(JSONWriter.string(.array(spared.map { .integer($0) }))), .text(webhookID)]) ?? end
        }
        let done = next > job.last
        if done {
            try connection.query("DELETE FROM cancellations WHERE webhook_id = ?", [.text(webhookID)])
        } else {
            try connection.query(
                "UPDATE cancellations SET next_seq = ? WHERE webhook_id = ?", [.integer(next), .text(webhookID)])
        }
        return (done, logged)
    }

    /// Rows per statement when a batch of attempts is logged and their deliveries moved
    /// on: a statement's run costs about what a row does, so rows share one. The
    /// statements are `OR FAIL`: any failure rolls the whole transaction back, so none
    /// needs a statement journal to undo just itself.
    static let rowsPerStatement = 16

    /// Writes request-log lines, in order, up to `rowsPerStatement` per statement.
    static func logRequests(
        _ connection: SQLiteConnection, _ records: [AttemptRecord], keys: inout RequestLogKeys
    ) throws(StoreError) -> [LoggedRequest] {
        var logged: [LoggedRequest] = []
        logged.reserveCapacity(records.count)
        for chunk in records.indices.chunks(of: rowsPerStatement) {
            var bindings: [SQLValue] = []
            bindings.reserveCapacity(14 * chunk.count)
            for record in records[chunk] {
                let line = LoggedRequest(id: Identifiers.timeOrderedUUID(at: record.at), record: record)
                try appendBindings(of: line, to: &bindings, connection, keys: &keys)
                logged.append(line)
            }
            try connection.query(insertRequests[chunk.count - 1], bindings)
        }
        return logged
    }

    /// The delivery state an attempt's outcome leaves behind.
    static func state(after outcome: RequestOutcome) -> DeliveryState {
        switch outcome {
        case .delivered: .delivered
        case .failed: .failed
        case .cancelled: .cancelled
        case .retrying: .pending
        }
    }

    /// Moves each record's delivery on (`advance`), up to `rowsPerStatement` per
    /// statement; the sequence numbers of the deliveries that were still pending (a
    /// cancelled one stays as it is).
    static func advance(_ connection: SQLiteConnection, _ records: [AttemptRecord]) throws(StoreError) -> Set<Int64> {
        var moved: Set<Int64> = []
        for chunk in records.indices.chunks(of: rowsPerStatement) {
            var bindings: [SQLValue] = []
            bindings.reserveCapacity(5 * chunk.count)
            for record in records[chunk] {
                bindings.append(.integer(record.deliverySeq))
                bindings.append(.text(state(after: record.outcome).rawValue))
                bindings.append(.integer(Int64(record.attempt)))
                bindings.append(.integer(record.nextAttemptAt?.microseconds ?? record.at.microseconds))
                bindings.append(.integer(record.at.microseconds))
            }
            try connection.query(advanceMany[chunk.count - 1], bindings) { row in moved.insert(row.integer(0)) }
        }
        return moved
    }

    /// The 14 values of `insertRequests` for one line.
    private static func appendBindings(
        of line: LoggedRequest, to bindings: inout [SQLValue], _ connection: SQLiteConnection,
        keys: inout RequestLogKeys
    ) throws(StoreError) {
        let record = line.record
        let webhook = try keys.webhook(record.webhookID, connection)
        let endpoint = try keys.endpoint(url: record.url, userAgent: record.userAgent, connection)
        bindings.append(contentsOf: [
            .text(line.id), .integer(record.at.microseconds), .integer(record.deliverySeq), .integer(webhook),
            .integer(endpoint), .text(record.eventID), .text(record.eventType.rawValue),
            .integer(Int64(record.attempt)), .optionalInteger(record.httpStatus.map(Int64.init)),
            .optionalText(record.errorClass), .optionalText(record.error),
            .optionalInteger(record.latencyMicroseconds),
            record.responseBody.isEmpty ? .null : .blob(record.responseBody), .text(record.outcome.rawValue),
        ])
    }

    private static let insertRequests: [String] = (1...rowsPerStatement).map { count in
        """
        INSERT OR FAIL INTO requests (id, at_us, delivery_seq, webhook, endpoint, event_id, event_type, attempt, http_status,
                              error_class, error, latency_us, response_body, outcome)
        VALUES \((0..<count).map { _ in "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" }.joined(separator: ", "))
        """
    }

    /// `advance` for many deliveries: each `VALUES` row is (seq, state, attempts,
    /// next_attempt_us, updated_us); the seqs of the rows changed come back.
    private static let advanceMany: [String] = (1...rowsPerStatement).map { count in
        """
        UPDATE OR FAIL deliveries SET state = v.column2, attempts = v.column3, next_attempt_us = v.column4,
            updated_us = v.column5
        FROM (VALUES \((0..<count).map { _ in "(?, ?, ?, ?, ?)" }.joined(separator: ", "))) AS v
        WHERE deliveries.seq = v.column1 AND deliveries.state = 'pending'
        RETURNING deliveries.seq
        """
    }
}

import HookgateCore

/// `recover`'s rows: a recovery names a webhook and a time range; each delivery of that
/// webhook that ended `failed` in the range gets a new pending delivery of the same
/// event. They are found through `deliveries_failed` (failed rows by webhook and the time
/// they failed), a bounded page per transaction, so a large recovery never holds the
/// writer for long.
enum RecoveryRows {
    /// On the writer: nothing changes between the checks and the insert.
    static func start(
        _ connection: SQLiteConnection, webhookID: String, since: Timestamp, until: Timestamp, at time: Timestamp
    ) throws -> Int {
        guard let state = try WebhookRows.fetch(connection, id: webhookID)?.state else {
            throw StoreFailure.webhookNotFound
        }
        guard state == .active else { throw StoreFailure.webhookDisabled }
        // Only what has failed by now: a delivery failing later (one this recovery made,
        // say) is not swept up by a walk still under way.
        let until = min(until, time)
        let count =
            try connection.scalarInteger(
                """
                SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_failed
                WHERE webhook_id = ? AND state = 'failed' AND updated_us >= ? AND updated_us <= ?
                """, [.text(webhookID), .integer(since.microseconds), .integer(until.microseconds)]) ?? 0
        guard count > 0 else { return 0 }
        try connection.transaction { () throws(StoreError) in
            try connection.query(
                """
                INSERT INTO recoveries (webhook_id, since_us, until_us, at_us, after_us, after_seq)
                VALUES (?, ?, ?, ?, ?, -1)
                """,
                [
                    .text(webhookID), .integer(since.microseconds), .integer(until.microseconds),
                    .integer(time.microseconds), .integer(since.microseconds),
                ])
        }
        return Int(count)
    }

    /// The next `maxRows` failed deliveries of the oldest recovery; whether none is left,
    /// and how many deliveries were created.
    static func continueRecovery(_ connection: SQLiteConnection, maxRows: Int, changes: inout CountChanges)
        throws(StoreError) -> (done: Bool, created: Int)
    {
        var job: (id: Int64, webhookID: String, until: Int64, at: Int64, afterUs: Int64, afterSeq: Int64)?
        try connection.query(
            "SELECT id, webhook_id, until_us, at_us, after_us, after_seq FROM recoveries ORDER BY id LIMIT 1"
        ) { row in
            job = (row.integer(0), row.text(1), row.integer(2), row.integer(3), row.integer(4), row.integer(5))
        }
        guard let job else { return (true, 0) }
        // A webhook deleted meanwhile gets nothing more (its backlog is being cancelled).
        guard try WebhookRows.fetch(connection, id: job.webhookID) != nil else {
            try connection.query("DELETE FROM recoveries WHERE id = ?", [.integer(job.id)])
            return (false, 0)
        }
        var found: [(failedUs: Int64, seq: Int64, eventSeq: Int64)] = []
        try connection.query(
            """
            SELECT updated_us, seq, event_seq FROM deliveries INDEXED BY deliveries_failed
            WHERE webhook_id = ?1 AND state = 'failed' AND (updated_us, seq) > (?2, ?3) AND updated_us <= ?4
            ORDER BY updated_us, seq LIMIT ?5
            """,
            [
                .text(job.webhookID), .integer(job.afterUs), .integer(job.afterSeq), .integer(job.until),
                .integer(Int64(maxRows)),
            ]
        ) { row in found.append((row.integer(0), row.integer(1), row.integer(2))) }
        for delivery in found {
            try connection.query(
                EventRows.insertDelivery,
                [
                    .integer(delivery.eventSeq), .text(job.webhookID), .integer(job.at), .integer(job.at),
                    .integer(job.at),
                ])
            changes.created(webhookID: job.webhookID, due: job.at)
        }
        try changes.write(connection)
        if let last = found.last, found.count == maxRows {
            try connection.query(
                "UPDATE recoveries SET after_us = ?, after_seq = ? WHERE id = ?",
                [.integer(last.failedUs), .integer(last.seq), .integer(job.id)])
        } else {
            try connection.query("DELETE FROM recoveries WHERE id = ?", [.integer(job.id)])
        }
        return (false, found.count)
    }
}

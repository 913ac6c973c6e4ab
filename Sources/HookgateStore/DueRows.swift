import CSQLite
import HookgateCore

/// The scheduler's reads: each webhook's pending deliveries through the
/// `deliveries_pending` index, `(webhook_id, next_attempt_us, seq)` over pending rows.
enum DueRows {
    /// Rows of one webhook's index range read per step of a walk.
    static let walkPage = 256

    /// One query of a due scan; see `Store.dueDeliveries(now:for:claimed:completion:)`.
    static func scan(
        _ connection: SQLiteConnection, _ query: DueQuery, now: Timestamp, claimed: Set<Int64>
    ) throws(StoreError) -> DueWebhook {
        var webhook: (name: String, url: String, rateLimit: Int, secrets: [String])?
        try connection.query(
            """
            SELECT w.name, w.url, w.rate_limit, w.secret, w.previous_secret, w.previous_secret_expires_us
            FROM webhooks w
            WHERE w.id = ? AND w.state = 'active'
              AND NOT EXISTS (SELECT 1 FROM cancellations c WHERE c.webhook_id = w.id)
            """, [.text(query.webhookID)]
        ) { row in
            let secrets = Webhook.signingSecrets(
                current: row.text(3), previous: row.optionalText(4),
                previousExpiresAt: row.optionalInteger(5).map(Timestamp.init(microseconds:)), at: now)
            webhook = (row.text(0), row.text(1), Int(row.integer(2)), secrets)
        }
        guard let webhook, query.limit > 0 else {
            return DueWebhook(webhookID: query.webhookID, deliveries: [], nextDue: webhook == nil ? nil : now)
        }
        // Walk the webhook's range in due order from the query's cursor, stepping over what
        // the scheduler holds, until the limit is reached or a delivery not yet due shows
        // when to look again. Each row comes with its event, read only for rows taken.
        var deliveries: [DueDelivery] = []
        var nextDue: Timestamp?
        try walkPending(connection, .withEvents, webhookID: query.webhookID, after: query.after) {
            seq, next, row throws(StoreError) in
            if next > now.microseconds {
                nextDue = Timestamp(microseconds: next)
                return false
            }
            if deliveries.count == query.limit {
                nextDue = now
                return false
            }
            guard !claimed.contains(seq) else { return true }
            guard let type = EventType(exactly: row.text(4)) else {
                throw StoreError(code: SQLITE_CORRUPT, message: "event \(row.text(3)) has an unknown type")
            }
            deliveries.append(
                DueDelivery(
                    deliverySeq: seq, attempts: Int(row.integer(2)), nextAttemptAt: Timestamp(microseconds: next),
                    eventID: row.text(3), eventType: type, payload: row.blob(5), webhookID: query.webhookID,
                    webhookName: webhook.name, url: webhook.url, rateLimit: webhook.rateLimit,
                    secrets: webhook.secrets))
            return true
        }
        return DueWebhook(webhookID: query.webhookID, deliveries: deliveries, nextDue: nextDue)
    }

    /// What a walk reads per row: columns 0 and 1 are always the delivery's seq and due
    /// time.
    private enum WalkColumns {
        /// The index alone.
        case dueOrder
        /// With the delivery's attempts (2) and its event's id, type and payload (3–5).
        case withEvents

        var sql: String {
            switch self {
            case .dueOrder:
                """
                SELECT d.seq, d.next_attempt_us FROM deliveries d INDEXED BY deliveries_pending
                WHERE d.webhook_id = ?1 AND d.state = 'pending' AND (d.next_attempt_us, d.seq) > (?2, ?3)
                ORDER BY d.next_attempt_us, d.seq LIMIT ?4
                """
            case .withEvents:
                """
                SELECT d.seq, d.next_attempt_us, d.attempts, e.id, e.event_type, e.payload
                FROM deliveries d INDEXED BY deliveries_pending JOIN events e ON e.seq = d.event_seq
                WHERE d.webhook_id = ?1 AND d.state = 'pending' AND (d.next_attempt_us, d.seq) > (?2, ?3)
                ORDER BY d.next_attempt_us, d.seq LIMIT ?4
                """
            }
        }
    }

    /// Visits a webhook's pending deliveries in due order after `start` (nil: from the
    /// first), `walkPage` index entries per query, until `visit` returns false or the
    /// range ends.
    private static func walkPending(
        _ connection: SQLiteConnection, _ columns: WalkColumns, webhookID: String, after start: DueCursor? = nil,
        _ visit: (_ seq: Int64, _ next: Int64, _ row: SQLRow) throws(StoreError) -> Bool
    ) throws(StoreError) {
        var after = (next: start?.nextAttemptAt.microseconds ?? .min, seq: start?.deliverySeq ?? .min)
        let sql = columns.sql
        while true {
            var rows = 0
            var stopped = false
            try connection.queryRows(
                sql, [.text(webhookID), .integer(after.next), .integer(after.seq), .integer(Int64(walkPage))],
                while: { row throws(StoreError) in
                    rows += 1
                    after = (row.integer(1), row.integer(0))
                    stopped = try !visit(after.seq, after.next, row)
                    return !stopped
                })
            if stopped || rows < walkPage { return }
        }
    }

    /// Every webhook with a pending delivery and its earliest due time: one seek per
    /// webhook the kept counts name.
    static func pendingWebhooks(_ connection: SQLiteConnection) throws(StoreError) -> [String: Timestamp] {
        var pending: [String: Timestamp] = [:]
        try connection.query(
            """
            SELECT c.webhook_id,
                   (SELECT MIN(d.next_attempt_us) FROM deliveries d INDEXED BY deliveries_pending
                    WHERE d.webhook_id = c.webhook_id AND d.state = 'pending')
            FROM delivery_counts c WHERE c.state = 'pending' AND c.count > 0
            """
        ) { row in
            if let first = row.optionalInteger(1) { pending[row.text(0)] = Timestamp(microseconds: first) }
        }
        return pending
    }

    /// See `Store.oldestDue(now:sent:completion:)`.
    static func oldestDue(_ connection: SQLiteConnection, now: Timestamp, sent: Set<Int64>) throws(StoreError)
        -> Timestamp?
    {
        var webhooks: [String] = []
        try connection.query(
            """
            SELECT c.webhook_id FROM delivery_counts c JOIN webhooks w ON w.id = c.webhook_id
            WHERE c.state = 'pending' AND c.count > 0 AND w.state = 'active'
              AND NOT EXISTS (SELECT 1 FROM cancellations x WHERE x.webhook_id = c.webhook_id)
            """
        ) { row in webhooks.append(row.text(0)) }
        var oldest: Int64?
        for id in webhooks {
            try walkPending(connection, .dueOrder, webhookID: id) { seq, next, _ in
                guard next <= now.microseconds else { return false }
                guard sent.contains(seq) else {
                    oldest = min(oldest ?? .max, next)
                    return false
                }
                return true
            }
        }
        return oldest.map(Timestamp.init(microseconds:))
    }
}

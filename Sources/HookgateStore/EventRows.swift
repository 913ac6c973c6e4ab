import HookgateCore

/// The statements of the event path.
enum EventRows {
    static let insertEvent =
        "INSERT INTO events (id, event_type, payload, received_us, idempotency_key) VALUES (?, ?, ?, ?, ?)"

    static let insertDelivery = """
        INSERT INTO deliveries (event_seq, webhook_id, state, attempts, next_attempt_us, created_us, updated_us)
        VALUES (?, ?, 'pending', 0, ?, ?, ?)
        """

    /// Rows per statement of `insertDeliveries`.
    static let deliveriesPerStatement = 16

    /// `insertDelivery` for `count` webhooks at once (1...`deliveriesPerStatement`):
    /// `?1` the event's seq, `?2` the time, `?3`... the webhook ids. One statement per
    /// event's fan-out, not per webhook: each statement run costs about what a row does.
    /// `OR FAIL`: a failed row fails the whole transaction anyway (it is rolled back), so
    /// the statement needs no journal of its own to undo just itself.
    static let insertDeliveries: [String] = (1...deliveriesPerStatement).map { count in
        "INSERT OR FAIL INTO deliveries (event_seq, webhook_id, state, attempts, next_attempt_us, created_us, updated_us) VALUES "
            + (0..<count).map { "(?1, ?\($0 + 3), 'pending', 0, ?2, ?2, ?2)" }.joined(separator: ", ")
    }

    /// Pending deliveries of the event with `eventSeq` to each of `webhookIDs`, due at `now`.
    static func insertDeliveries(
        _ connection: SQLiteConnection, eventSeq: Int64, webhookIDs: [String], now: Int64
    ) throws(StoreError) {
        for chunk in webhookIDs.indices.chunks(of: deliveriesPerStatement) {
            var bindings: [SQLValue] = [.integer(eventSeq), .integer(now)]
            bindings.reserveCapacity(2 + chunk.count)
            for id in webhookIDs[chunk] { bindings.append(.text(id)) }
            try connection.query(insertDeliveries[chunk.count - 1], bindings)
        }
    }

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

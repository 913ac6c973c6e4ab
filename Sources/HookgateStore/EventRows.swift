import HookgateCore

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

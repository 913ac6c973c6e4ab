import HookgateCore

/// What one batch of attempt outcomes does to its webhooks' endpoint health, gathered per
/// webhook in the order the attempts were made, then written with one statement per
/// webhook (the delivery path pays no statement per attempt).
struct EndpointHealthChanges {
    private struct Change {
        var lastSuccess: Int64?
        var lastFailure: Int64?
        /// A 2xx came in this batch: `failing_since` is replaced, not kept.
        var succeeded = false
        /// The first failure after the batch's last 2xx (or in the batch, without one).
        var firstFailure: Int64?
        /// The latest delivery of the webhook that ended `failed` in this batch.
        var endedFailed: Int64?
    }

    private var changes: [ExactKey: Change] = [:]

    mutating func add(_ record: AttemptRecord) {
        let at = record.at.microseconds
        var change = changes[ExactKey(record.webhookID)] ?? Change()
        if record.outcome == .delivered {
            change.lastSuccess = max(change.lastSuccess ?? at, at)
            change.succeeded = true
            change.firstFailure = nil
        } else {
            change.lastFailure = max(change.lastFailure ?? at, at)
            if change.firstFailure == nil { change.firstFailure = at }
            if record.outcome == .failed { change.endedFailed = max(change.endedFailed ?? at, at) }
        }
        changes[ExactKey(record.webhookID)] = change
    }

    func write(_ connection: SQLiteConnection) throws(StoreError) {
        for (key, change) in changes {
            if change.succeeded {
                try connection.query(
                    """
                    UPDATE webhooks SET last_success_us = MAX(IFNULL(last_success_us, ?1), ?1),
                        last_failure_us = CASE WHEN ?2 IS NULL THEN last_failure_us
                                               ELSE MAX(IFNULL(last_failure_us, ?2), ?2) END,
                        failing_since_us = ?3
                    WHERE id = ?4
                    """,
                    [
                        .optionalInteger(change.lastSuccess), .optionalInteger(change.lastFailure),
                        .optionalInteger(change.firstFailure), .text(key.text),
                    ])
            } else if let lastFailure = change.lastFailure {
                try connection.query(
                    """
                    UPDATE webhooks SET last_failure_us = MAX(IFNULL(last_failure_us, ?1), ?1),
                        failing_since_us = IFNULL(failing_since_us, ?2)
                    WHERE id = ?3
                    """, [.integer(lastFailure), .optionalInteger(change.firstFailure), .text(key.text)])
            }
        }
    }

    /// Disables each active webhook a delivery of which ended `failed` in this batch and
    /// that has been failing since more than `after` microseconds before that; the
    /// webhooks disabled.
    func disableFailing(_ connection: SQLiteConnection, after: Int64) throws(StoreError) -> [Webhook] {
        var disabled: [Webhook] = []
        for (key, change) in changes {
            guard let endedAt = change.endedFailed,
                let failingSince = try connection.scalarInteger(
                    "SELECT failing_since_us FROM webhooks WHERE id = ? AND state = 'active'", [.text(key.text)]),
                endedAt - failingSince > after
            else { continue }
            let since = Timestamp(microseconds: failingSince).rfc3339
            try connection.query(
                "UPDATE webhooks SET state = 'disabled', disabled_reason = ?, updated_us = ? WHERE id = ?",
                [.text("failing: no successful delivery since \(since)"), .integer(endedAt), .text(key.text)])
            if let webhook = try WebhookRows.fetch(connection, id: key.text) { disabled.append(webhook) }
        }
        return disabled
    }
}

import HookgateCore

/// What one batch of attempt outcomes does to its webhooks' endpoint health, gathered per
/// webhook in the order the attempts were made, then written with one statement per
/// webhook (the delivery path pays no statement per attempt).
struct EndpointHealthChanges {
    private struct Change {
        var lastSuccess: Int64?
        /// Every failed attempt of the batch, in the order they were made.
        var failures: [Int64] = []
        /// The latest delivery of the webhook that ended `failed` in this batch.
        var endedFailed: Int64?
    }

    private var changes: [ExactKey: Change] = [:]

    /// Records must come in the order their attempts were made.
    mutating func add(_ record: AttemptRecord) {
        let at = record.at.microseconds
        var change = changes[ExactKey(record.webhookID)] ?? Change()
        if record.outcome == .delivered {
            change.lastSuccess = max(change.lastSuccess ?? at, at)
        } else {
            change.failures.append(at)
            if record.outcome == .failed { change.endedFailed = max(change.endedFailed ?? at, at) }
        }
        changes[ExactKey(record.webhookID)] = change
    }

    /// Merges each webhook's batch with what is stored: `failing_since` is the first
    /// failure after the latest success, whichever batch either came in (an attempt that
    /// timed out after a later one succeeded does not start a failing spell before it).
    func write(_ connection: SQLiteConnection) throws(StoreError) {
        for (key, change) in changes {
            var stored: (success: Int64?, failure: Int64?, failingSince: Int64?)?
            try connection.query(
                "SELECT last_success_us, last_failure_us, failing_since_us FROM webhooks WHERE id = ?",
                [.text(key.text)]
            ) { row in stored = (row.optionalInteger(0), row.optionalInteger(1), row.optionalInteger(2)) }
            guard let stored else { continue }
            let lastSuccess = [stored.success, change.lastSuccess].compactMap { $0 }.max()
            let lastFailure = ([stored.failure].compactMap { $0 } + change.failures).max()
            let after = lastSuccess ?? Int64.min
            let failingSince = ([stored.failingSince].compactMap { $0 } + change.failures).filter { $0 > after }.min()
            try connection.query(
                "UPDATE webhooks SET last_success_us = ?, last_failure_us = ?, failing_since_us = ? WHERE id = ?",
                [
                    .optionalInteger(lastSuccess), .optionalInteger(lastFailure), .optionalInteger(failingSince),
                    .text(key.text),
                ])
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

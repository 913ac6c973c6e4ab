import CSQLite
import HookgateCore

/// The mapping between `Webhook` and its row.
enum WebhookRows {
    static let columns = """
        id, name, url, filter, rate_limit, is_sandbox, state, disabled_reason, secret, \
        previous_secret, previous_secret_expires_us, created_us, updated_us, last_success_us, last_failure_us, \
        failing_since_us
        """

    static let insert = "INSERT INTO webhooks (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    static let update = """
        UPDATE webhooks SET name = ?2, url = ?3, filter = ?4, rate_limit = ?5, is_sandbox = ?6, state = ?7,
        disabled_reason = ?8, secret = ?9, previous_secret = ?10, previous_secret_expires_us = ?11,
        created_us = ?12, updated_us = ?13, last_success_us = ?14, last_failure_us = ?15, failing_since_us = ?16
        WHERE id = ?1
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
            .optionalInteger(webhook.health.lastSuccessAt?.microseconds),
            .optionalInteger(webhook.health.lastFailureAt?.microseconds),
            .optionalInteger(webhook.health.failingSince?.microseconds),
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
            updatedAt: Timestamp(microseconds: row.integer(offset + 12)),
            health: EndpointHealth(
                lastSuccessAt: row.optionalInteger(offset + 13).map(Timestamp.init(microseconds:)),
                lastFailureAt: row.optionalInteger(offset + 14).map(Timestamp.init(microseconds:)),
                failingSince: row.optionalInteger(offset + 15).map(Timestamp.init(microseconds:))))
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

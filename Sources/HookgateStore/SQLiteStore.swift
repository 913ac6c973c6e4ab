import CSQLite
import Dispatch
import HookgateCore

/// The SQLite store: one connection in WAL mode, owned by one serial queue.
///
/// `@unchecked Sendable`: `connection` is touched only on `queue`, every public method
/// hops onto it; the other properties are immutable.
public final class SQLiteStore: Store, @unchecked Sendable {
    /// How durable a commit is: `full` syncs the WAL on every commit (survives a power
    /// cut), `normal` syncs only at checkpoints (survives a process crash).
    public enum SyncMode: String, Sendable, CaseIterable {
        case full
        case normal
    }

    public static let databaseFileName = "hookgate.sqlite3"

    private let queue = DispatchQueue(label: "hookgate.store")
    private var connection: SQLiteConnection?

    /// Opens (creating if needed) the database in `directory` and migrates it to the
    /// current schema.
    public init(directory: String, sync: SyncMode = .full) throws {
        let connection = try SQLiteConnection(path: directory + "/" + Self.databaseFileName)
        try connection.execute("PRAGMA journal_mode=WAL")
        try connection.execute("PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")")
        try connection.execute("PRAGMA foreign_keys=ON")
        try connection.execute("PRAGMA busy_timeout=5000")
        try SchemaMigrations.migrate(connection)
        self.connection = connection
    }

    /// Queues `body` behind every earlier call and completes with its result.
    private func submit<T>(
        _ completion: @escaping Completion<T>, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) {
        queue.async {
            guard let connection = self.connection else {
                completion(.failure(StoreError(code: SQLITE_MISUSE, message: "store is closed")))
                return
            }
            completion(Result { try body(connection) })
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
                try connection.query("DELETE FROM webhooks WHERE id = ?", [.text(id)])
                return connection.changes > 0
            }
        }
    }

    public func allWebhooks(completion: @escaping Completion<[Webhook]>) {
        submit(completion) { connection in
            var webhooks: [Webhook] = []
            try connection.query("SELECT \(WebhookRows.columns) FROM webhooks ORDER BY seq") { row throws(StoreError) in
                webhooks.append(try WebhookRows.decode(row, offset: 0))
            }
            return webhooks
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
        """
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

    /// Cursors are opaque to clients: "w" and the last row's sequence number.
    static func encodeCursor(_ seq: Int64) -> String { "w\(seq)" }

    static func decodeCursor(_ cursor: String) -> Int64? {
        guard cursor.hasPrefix("w"), let seq = Int64(cursor.dropFirst()), seq >= 0 else { return nil }
        return seq
    }
}

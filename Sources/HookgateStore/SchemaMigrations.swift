import CSQLite

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
        """,
        // 2: events, their deliveries, idempotency keys, counters.
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            payload BLOB NOT NULL,
            received_us INTEGER NOT NULL,
            idempotency_key TEXT
        );
        CREATE TABLE deliveries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_seq INTEGER NOT NULL REFERENCES events(seq),
            webhook_id TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_us INTEGER NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL
        );
        CREATE INDEX deliveries_due ON deliveries(state, next_attempt_us);
        CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            deliveries INTEGER NOT NULL,
            created_us INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO counters (name, value) VALUES ('events_accepted', 0);
        """,
        // 3: the request log, one row per attempt (and per cancellation).
        """
        CREATE TABLE requests (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            at_us INTEGER NOT NULL,
            delivery_seq INTEGER NOT NULL,
            webhook_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            url TEXT NOT NULL,
            http_status INTEGER,
            error_class TEXT,
            error TEXT,
            latency_us INTEGER,
            user_agent TEXT NOT NULL,
            response_body BLOB NOT NULL,
            outcome TEXT NOT NULL
        );
        CREATE INDEX requests_by_webhook ON requests(webhook_id, seq);
        CREATE INDEX requests_by_event ON requests(event_id, seq);
        CREATE INDEX requests_by_time ON requests(at_us);
        """,
        // 4: bounded history and bounded work. Deliveries found by event (retention
        // deletes an event once it has none; the index grows at its end, as event_seq
        // does), idempotency keys purged by age, counts kept per webhook and state (so
        // startup reads no finished row), and webhooks whose pending deliveries are
        // being cancelled in the background, with how far that has come.
        """
        CREATE INDEX deliveries_by_event ON deliveries(event_seq);
        CREATE INDEX idempotency_keys_by_time ON idempotency_keys(created_us);
        CREATE TABLE delivery_counts (
            webhook_id TEXT NOT NULL,
            state TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (webhook_id, state)
        ) WITHOUT ROWID;
        INSERT INTO delivery_counts (webhook_id, state, count)
            SELECT webhook_id, state, COUNT(*) FROM deliveries GROUP BY webhook_id, state;
        CREATE TABLE cancellations (
            webhook_id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            reason TEXT NOT NULL,
            at_us INTEGER NOT NULL,
            next_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO counters (name, value) VALUES ('events_pruned_before_us', 0);
        """,
        // 5: pending deliveries indexed per webhook, in due order. The scheduler reads
        // each webhook's range, so a long backlog it cannot take yet (a low rate_limit, a
        // webhook being cancelled or disabled) is never walked; the index holds pending
        // rows only, and replaces the global one.
        """
        CREATE INDEX deliveries_pending ON deliveries(webhook_id, next_attempt_us, seq) WHERE state = 'pending';
        DROP INDEX deliveries_due;
        """,
        // 6: endpoint health, kept from attempt outcomes; failed deliveries by webhook and
        // the time they failed (few, and what `recover` looks for); recoveries under way,
        // with how far each has come.
        """
        ALTER TABLE webhooks ADD COLUMN last_success_us INTEGER;
        ALTER TABLE webhooks ADD COLUMN last_failure_us INTEGER;
        ALTER TABLE webhooks ADD COLUMN failing_since_us INTEGER;
        CREATE INDEX deliveries_failed ON deliveries(webhook_id, updated_us, seq) WHERE state = 'failed';
        CREATE TABLE recoveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            webhook_id TEXT NOT NULL,
            since_us INTEGER NOT NULL,
            until_us INTEGER NOT NULL,
            at_us INTEGER NOT NULL,
            after_us INTEGER NOT NULL,
            after_seq INTEGER NOT NULL
        );
        """,
        // 7: a compact request log. Each attempt wrote a row of some 310 bytes with three
        // text-keyed index entries; the webhook id, URL and user agent are now interned
        // (request_webhooks, request_endpoints) and rows carry their integer keys, an
        // empty response body is NULL, and the webhook index is keyed by integer. The
        // rows are copied over as they are; the sequence goes on from where it was.
        """
        CREATE TABLE request_webhooks (
            key INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL UNIQUE
        );
        CREATE TABLE request_endpoints (
            key INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            user_agent TEXT NOT NULL,
            UNIQUE (url, user_agent)
        );
        CREATE TABLE requests_compact (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            at_us INTEGER NOT NULL,
            delivery_seq INTEGER NOT NULL,
            webhook INTEGER NOT NULL,
            endpoint INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            http_status INTEGER,
            error_class TEXT,
            error TEXT,
            latency_us INTEGER,
            response_body BLOB,
            outcome TEXT NOT NULL
        );
        INSERT INTO request_webhooks (webhook_id) SELECT DISTINCT webhook_id FROM requests ORDER BY webhook_id;
        INSERT INTO request_endpoints (url, user_agent)
            SELECT DISTINCT url, user_agent FROM requests ORDER BY url, user_agent;
        INSERT INTO requests_compact (seq, id, at_us, delivery_seq, webhook, endpoint, event_id, event_type, attempt,
                                      http_status, error_class, error, latency_us, response_body, outcome)
            SELECT r.seq, r.id, r.at_us, r.delivery_seq, w.key, e.key, r.event_id, r.event_type, r.attempt,
                   r.http_status, r.error_class, r.error, r.latency_us, NULLIF(r.response_body, x''), r.outcome
            FROM requests r JOIN request_webhooks w ON w.webhook_id = r.webhook_id
            JOIN request_endpoints e ON e.url = r.url AND e.user_agent = r.user_agent
            ORDER BY r.seq;
        DELETE FROM sqlite_sequence WHERE name = 'requests_compact';
        INSERT INTO sqlite_sequence (name, seq)
            SELECT 'requests_compact', MAX(seq) FROM (
                SELECT seq FROM sqlite_sequence WHERE name = 'requests'
                UNION ALL SELECT IFNULL(MAX(seq), 0) FROM requests_compact);
        DROP TABLE requests;
        ALTER TABLE requests_compact RENAME TO requests;
        CREATE INDEX requests_by_webhook ON requests(webhook, seq);
        CREATE INDEX requests_by_event ON requests(event_id, seq);
        CREATE INDEX requests_by_time ON requests(at_us);
        """,
    ]

    static var currentVersion: Int64 { Int64(steps.count) }

    /// Migrates the database to `target` (the current schema unless a test asks for an
    /// earlier one, to write a database as an older hookgate would have).
    static func migrate(_ connection: SQLiteConnection, to target: Int64 = currentVersion) throws(StoreError) {
        let version = try connection.scalarInteger("PRAGMA user_version") ?? 0
        if version > currentVersion {
            throw StoreError(
                code: SQLITE_ERROR,
                message: "the database has schema version \(version), newer than this hookgate's \(currentVersion)")
        }
        for next in (version + 1)..<(max(version, target) + 1) {
            try connection.transaction { () throws(StoreError) in
                try connection.execute(steps[Int(next - 1)])
                try connection.execute("PRAGMA user_version = \(next)")
            }
        }
    }
}

import CSQLite
import HookgateCore

/// The request log's interned names (migration 7): each row carries a small integer for
/// its webhook id and one for its URL and user agent, instead of the texts, so a row and
/// its webhook index entry are a third of the size. The keys are remembered once looked
/// up; one added inside a transaction that then rolls back is forgotten with it.
/// Owned by the store's writer queue.
struct RequestLogKeys {
    private struct Endpoint: Hashable {
        var url: ExactKey
        var userAgent: ExactKey
    }

    private var webhooks: [ExactKey: Int64] = [:]
    private var endpoints: [Endpoint: Int64] = [:]
    /// Learnt in the transaction under way.
    private var addedWebhooks: [ExactKey] = []
    private var addedEndpoints: [Endpoint] = []
    /// Past this many of either, the remembered keys start over (they are looked up again).
    static let bound = 100_000

    /// The key of `webhookID`, added if it has none.
    mutating func webhook(_ webhookID: String, _ connection: SQLiteConnection) throws(StoreError) -> Int64 {
        let name = ExactKey(webhookID)
        if let key = webhooks[name] { return key }
        try connection.query(
            "INSERT INTO request_webhooks (webhook_id) VALUES (?) ON CONFLICT (webhook_id) DO NOTHING",
            [.text(webhookID)])
        guard
            let key = try connection.scalarInteger(
                "SELECT key FROM request_webhooks WHERE webhook_id = ?", [.text(webhookID)])
        else { throw StoreError(code: SQLITE_INTERNAL, message: "no request-log key for webhook \(webhookID)") }
        if webhooks.count >= Self.bound, addedWebhooks.isEmpty { webhooks.removeAll() }
        webhooks[name] = key
        addedWebhooks.append(name)
        return key
    }

    /// The key of a URL and user agent, added if they have none.
    mutating func endpoint(url: String, userAgent: String, _ connection: SQLiteConnection) throws(StoreError)
        -> Int64
    {
        let endpoint = Endpoint(url: ExactKey(url), userAgent: ExactKey(userAgent))
        if let key = endpoints[endpoint] { return key }
        try connection.query(
            "INSERT INTO request_endpoints (url, user_agent) VALUES (?, ?) ON CONFLICT (url, user_agent) DO NOTHING",
            [.text(url), .text(userAgent)])
        guard
            let key = try connection.scalarInteger(
                "SELECT key FROM request_endpoints WHERE url = ? AND user_agent = ?", [.text(url), .text(userAgent)])
        else { throw StoreError(code: SQLITE_INTERNAL, message: "no request-log key for \(url)") }
        if endpoints.count >= Self.bound, addedEndpoints.isEmpty { endpoints.removeAll() }
        endpoints[endpoint] = key
        addedEndpoints.append(endpoint)
        return key
    }

    /// The transaction committed: what it added is in the database for good.
    mutating func committed() {
        addedWebhooks.removeAll()
        addedEndpoints.removeAll()
    }

    /// The transaction rolled back: the keys it added are gone from the database.
    mutating func rolledBack() {
        for name in addedWebhooks { webhooks[name] = nil }
        for endpoint in addedEndpoints { endpoints[endpoint] = nil }
        committed()
    }
}

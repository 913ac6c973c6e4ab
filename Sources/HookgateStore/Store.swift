import HookgateCore

/// One page of `list_webhooks`, oldest first.
public struct WebhookPage: Sendable, Equatable {
    public var webhooks: [Webhook]
    /// Where the next page starts; nil on the last page.
    public var nextCursor: String?

    public init(webhooks: [Webhook], nextCursor: String?) {
        self.webhooks = webhooks
        self.nextCursor = nextCursor
    }
}

/// Why a store call could not be carried out as asked.
public enum StoreFailure: Error, Sendable, Equatable {
    /// A list cursor this store did not issue.
    case invalidCursor
}

/// The durable registry (and, later, the event queue and attempt log). SQLite is the
/// embedded implementation; the protocol leaves room for a PostgreSQL one shared by
/// several gateways.
public protocol Store: Sendable {
    func insertWebhook(_ webhook: Webhook) async throws
    func webhook(id: String) async throws -> Webhook?
    /// Webhooks oldest first, starting after `cursor` (nil: from the first).
    func listWebhooks(after cursor: String?, limit: Int) async throws -> WebhookPage
    /// Reads, transforms and writes back one webhook atomically: no other write to it
    /// can land between the read and the write. Nil when there is no such webhook.
    func modifyWebhook(id: String, _ transform: @escaping @Sendable (Webhook) -> Webhook) async throws -> Webhook?
    /// False when there was no such webhook.
    func deleteWebhook(id: String) async throws -> Bool
    func allWebhooks() async throws -> [Webhook]
    /// Finishes pending writes and closes; later calls fail.
    func close() async
}

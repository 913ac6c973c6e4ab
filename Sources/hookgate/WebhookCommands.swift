import ArgumentParser
import HookgateClient
import HookgateCore

struct WebhooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhooks", abstract: "Create, read, change and delete webhooks.",
        subcommands: [
            CreateWebhook.self, GetWebhook.self, ListWebhooks.self, UpdateWebhook.self, DeleteWebhook.self,
            EnableWebhook.self, DisableWebhook.self, RotateSecret.self,
        ])
}

/// The create and update fields as flags; the filter arrays repeat (`--event-type A --event-type B`).
struct WebhookFields: ParsableArguments {
    @Option(help: "2..100 characters.") var name: String?
    @Option(help: "An absolute https URL.") var url: String?
    @Option(name: .customLong("event-type"), help: "An event type to receive (repeat for more).")
    var eventTypes: [String] = []
    @Option(name: .customLong("sender"), help: "filter.sender (repeat for more).") var senders: [String] = []
    @Option(name: .customLong("status"), help: "filter.status (repeat for more).") var statuses: [String] = []
    @Option(name: .customLong("message-ref"), help: "filter.message_ref (repeat for more).")
    var messageRefs: [String] = []
    @Option(name: .customLong("campaign-id"), help: "filter.campaign_id (repeat for more).")
    var campaignIDs: [String] = []
    @Option(help: "Deliveries per second, 0..10000 (0: the daemon's default).") var rateLimit: Int?

    var givesFilter: Bool {
        !(eventTypes.isEmpty && senders.isEmpty && statuses.isEmpty && messageRefs.isEmpty && campaignIDs.isEmpty)
    }

    /// The request's fields: those given, over `current` (the webhook's present ones) for an update.
    func request(command: String, over current: JSONObject? = nil) -> JSONObject {
        var request: JSONObject = ["cmd": .string(command)]
        for key in ["name", "url", "filter", "rate_limit"] {
            if let value = current?[key] { request[key] = value }
        }
        if let name { request["name"] = .string(name) }
        if let url { request["url"] = .string(url) }
        if let rateLimit { request["rate_limit"] = .integer(rateLimit) }
        if givesFilter || current == nil {
            var filter = current?["filter"]?.objectValue ?? JSONObject()
            for (key, values) in [
                ("event_type", eventTypes), ("sender", senders), ("status", statuses), ("message_ref", messageRefs),
                ("campaign_id", campaignIDs),
            ] where !values.isEmpty || current == nil {
                filter[key] = .array(values.map { .string($0) })
            }
            request["filter"] = .object(filter)
        }
        return request
    }
}

extension Output {
    /// One webhook: the answer line as JSON, or its fields as a table.
    func webhook(_ answer: JSONObject) throws {
        let webhook = try WebhookResource(json: answer["webhook"]?.objectValue ?? [:])
        self.answer(answer) {
            let filter = webhook.definition.filter
            var rows: [(String, String)] = [
                ("id", webhook.id), ("name", webhook.definition.name), ("url", webhook.definition.url),
                ("state", webhook.state.rawValue + (webhook.disabledReason.map { " (\($0))" } ?? "")),
                ("event types", filter.eventType.map(\.rawValue).joined(separator: ", ")),
            ]
            for (label, values) in [
                ("sender", filter.sender), ("status", filter.status), ("message ref", filter.messageRef),
                ("campaign id", filter.campaignId),
            ] where !values.isEmpty {
                rows.append((label, values.joined(separator: ", ")))
            }
            rows += [
                ("rate limit", webhook.definition.rateLimit == 0 ? "default" : "\(webhook.definition.rateLimit)/s"),
                ("created", time(webhook.createdAt)), ("updated", time(webhook.updatedAt)),
                ("last success", time(webhook.health.lastSuccessAt)),
                ("last failure", time(webhook.health.lastFailureAt)),
                ("failing since", time(webhook.health.failingSince)),
            ]
            if let secret = webhook.secret { rows.append(("secret", secret)) }
            for warning in answer["warnings"]?.arrayValue ?? [] {
                rows.append(("warning", warning.stringValue ?? JSONWriter.string(warning)))
            }
            return TextTable.fields(rows)
        }
    }
}

struct CreateWebhook: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a webhook; the answer carries its secret.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var fields: WebhookFields

    func validate() throws {
        guard fields.name != nil, fields.url != nil else { throw ValidationError("--name and --url are required") }
    }

    func run(client: HookgateClient, output: Output) async throws {
        try output.webhook(try await client.send(fields.request(command: "create_webhook")))
    }
}

struct GetWebhook: ClientCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one webhook.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String
    @Flag(help: "Show its signing secret too.") var includeSecret = false

    func run(client: HookgateClient, output: Output) async throws {
        try output.webhook(
            try await client.send([
                "cmd": "get_webhook", "webhook_id": .string(webhookID), "include_secret": .bool(includeSecret),
            ]))
    }
}

struct ListWebhooks: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List webhooks, oldest first (every page unless --limit is given).")
    @OptionGroup var options: ClientOptions
    @Option(help: "At most this many (one page, 1..1000).") var limit: Int?
    @Option(help: "Start after this page's next_cursor.") var cursor: String?

    func run(client: HookgateClient, output: Output) async throws {
        var webhooks: [JSONObject] = []
        var cursor = self.cursor
        repeat {
            var request: JSONObject = ["cmd": "list_webhooks"]
            if let limit { request["limit"] = .integer(limit) }
            if let cursor { request["cursor"] = .string(cursor) }
            let answer = try await client.send(request)
            webhooks += answer["webhooks"]?.arrayValue?.compactMap(\.objectValue) ?? []
            cursor = answer["next_cursor"]?.stringValue
        } while cursor != nil && limit == nil
        let resources = try webhooks.map { try WebhookResource(json: $0) }
        output.items(webhooks) {
            var table = TextTable(["ID", "NAME", "STATE", "EVENT TYPES", "RATE", "LAST SUCCESS", "CREATED", "URL"])
            for webhook in resources {
                table.add([
                    webhook.id, webhook.definition.name, webhook.state.rawValue,
                    webhook.definition.filter.eventType.map(\.rawValue).joined(separator: ","),
                    webhook.definition.rateLimit == 0 ? "default" : "\(webhook.definition.rateLimit)/s",
                    output.time(webhook.health.lastSuccessAt), output.time(webhook.createdAt), webhook.definition.url,
                ])
            }
            return table
        }
    }
}

struct UpdateWebhook: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a webhook: the fields given replace the present ones, the others are kept.",
        discussion: """
            A filter flag replaces that filter array (--sender A --sender B gives [A, B]); \
            arrays not named are kept. The daemon's update_webhook replaces every field: this \
            reads the webhook first and sends its present values for the fields not given.
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String
    @OptionGroup var fields: WebhookFields

    func run(client: HookgateClient, output: Output) async throws {
        let current = try await client.send(["cmd": "get_webhook", "webhook_id": .string(webhookID)])
        var request = fields.request(command: "update_webhook", over: current["webhook"]?.objectValue)
        request["webhook_id"] = .string(webhookID)
        try output.webhook(try await client.send(request))
    }
}

struct DeleteWebhook: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a webhook; its pending deliveries are cancelled.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String

    func run(client: HookgateClient, output: Output) async throws {
        let answer = try await client.send(["cmd": "delete_webhook", "webhook_id": .string(webhookID)])
        output.answer(answer) { TextTable.fields([("deleted", answer["deleted"]?.stringValue ?? webhookID)]) }
    }
}

struct EnableWebhook: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable", abstract: "Enable a webhook: its waiting deliveries go out.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String

    func run(client: HookgateClient, output: Output) async throws {
        try output.webhook(try await client.send(["cmd": "enable_webhook", "webhook_id": .string(webhookID)]))
    }
}

struct DisableWebhook: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable", abstract: "Disable a webhook: it receives no new events; pending ones wait.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String

    func run(client: HookgateClient, output: Output) async throws {
        try output.webhook(try await client.send(["cmd": "disable_webhook", "webhook_id": .string(webhookID)]))
    }
}

struct RotateSecret: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-secret", abstract: "Give a webhook a new secret; the old one signs beside it for 24 hours."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String

    func run(client: HookgateClient, output: Output) async throws {
        try output.webhook(try await client.send(["cmd": "rotate_secret", "webhook_id": .string(webhookID)]))
    }
}

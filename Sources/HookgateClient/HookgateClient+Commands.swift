import HookgateCore

/// One typed call per protocol command (proto-spec/PROTOCOL.md). Each builds the request,
/// sends it on the shared connection and reads the answer into HookgateCore's models;
/// `send` takes any request as JSON.
extension HookgateClient {
    public func ping() async throws -> Ping {
        let fields = AnswerFields(try await send(["cmd": "ping"]), "")
        return Ping(version: try fields.string("version"), uptimeSeconds: try fields.integer("uptime_s"))
    }

    public func createWebhook(_ definition: WebhookDefinition) async throws -> WebhookResource {
        try await webhook(in: send(Self.webhookRequest("create_webhook", definition)))
    }

    public func getWebhook(id: String, includeSecret: Bool = false) async throws -> WebhookResource {
        try await webhook(
            in: send(["cmd": "get_webhook", "webhook_id": .string(id), "include_secret": .bool(includeSecret)]))
    }

    /// A page of webhooks, oldest first; `limit` defaults to the daemon's 100.
    public func listWebhooks(limit: Int? = nil, cursor: String? = nil) async throws -> Page<WebhookResource> {
        var request: JSONObject = ["cmd": "list_webhooks"]
        if let limit { request["limit"] = .integer(limit) }
        if let cursor { request["cursor"] = .string(cursor) }
        let answer = try await send(request)
        let items = try AnswerFields(answer, "").objects("webhooks").map { object throws(HookgateClientError) in
            try WebhookResource(json: object)
        }
        return Page(items: items, nextCursor: answer["next_cursor"]?.stringValue)
    }

    /// Replaces the webhook's definition; its secret, state and creation time are kept.
    public func updateWebhook(id: String, _ definition: WebhookDefinition) async throws -> WebhookResource {
        var request = Self.webhookRequest("update_webhook", definition)
        request["webhook_id"] = .string(id)
        return try await webhook(in: send(request))
    }

    /// Deletes the webhook (its pending deliveries are cancelled); returns its id.
    public func deleteWebhook(id: String) async throws -> String {
        try AnswerFields(try await send(["cmd": "delete_webhook", "webhook_id": .string(id)]), "").string("deleted")
    }

    public func enableWebhook(id: String) async throws -> WebhookResource {
        try await webhook(in: send(["cmd": "enable_webhook", "webhook_id": .string(id)]))
    }

    public func disableWebhook(id: String) async throws -> WebhookResource {
        try await webhook(in: send(["cmd": "disable_webhook", "webhook_id": .string(id)]))
    }

    /// A new secret; the old one keeps signing beside it for 24 hours.
    public func rotateSecret(id: String) async throws -> WebhookResource {
        try await webhook(in: send(["cmd": "rotate_secret", "webhook_id": .string(id)]))
    }

    /// Answers once the event and its deliveries are committed.
    public func emit(_ event: JSON, idempotencyKey: String? = nil) async throws -> EmitResult {
        var request: JSONObject = ["cmd": "emit_event", "event": event]
        if let idempotencyKey { request["idempotency_key"] = .string(idempotencyKey) }
        let fields = AnswerFields(try await send(request), "")
        return EmitResult(eventID: try fields.string("event_id"), deliveries: try fields.integer("deliveries"))
    }

    /// A dry run: nothing is stored.
    public func match(_ event: JSON, limit: Int? = nil) async throws -> MatchResult {
        var request: JSONObject = ["cmd": "match_event", "event": event]
        if let limit { request["limit"] = .integer(limit) }
        let fields = AnswerFields(try await send(request), "")
        let matches = try fields.objects("matches").map { object throws(HookgateClientError) in
            let item = AnswerFields(object, "matches")
            return MatchResult.Match(webhookID: try item.string("webhook_id"), name: try item.string("name"))
        }
        let rejections = try fields.objects("rejections").map { object throws(HookgateClientError) in
            let item = AnswerFields(object, "rejections")
            return MatchResult.Rejection(webhookID: try item.string("webhook_id"), reason: try item.string("reason"))
        }
        return MatchResult(
            matches: matches, rejections: rejections, rejectionsTotal: try fields.integer("rejections_total"))
    }

    /// The filters of `list_requests`; nil places no condition.
    public struct RequestQuery: Sendable {
        public var webhookID: String?
        public var eventID: String?
        public var outcome: String?
        public var since: String?
        public var until: String?
        public var limit: Int?
        public var cursor: String?

        public init(
            webhookID: String? = nil, eventID: String? = nil, outcome: String? = nil, since: String? = nil,
            until: String? = nil, limit: Int? = nil, cursor: String? = nil
        ) {
            self.webhookID = webhookID
            self.eventID = eventID
            self.outcome = outcome
            self.since = since
            self.until = until
            self.limit = limit
            self.cursor = cursor
        }

        /// The `list_requests` request object.
        public var request: JSONObject {
            var request: JSONObject = ["cmd": "list_requests"]
            for (key, value) in [
                ("webhook_id", webhookID), ("event_id", eventID), ("outcome", outcome), ("since", since),
                ("until", until), ("cursor", cursor),
            ] {
                if let value { request[key] = .string(value) }
            }
            if let limit { request["limit"] = .integer(limit) }
            return request
        }
    }

    /// A page of the request log, newest first.
    public func listRequests(_ query: RequestQuery = RequestQuery()) async throws -> Page<RequestItem> {
        let answer = try await send(query.request)
        let items = try AnswerFields(answer, "").objects("requests").map { object throws(HookgateClientError) in
            try RequestItem(json: object)
        }
        return Page(items: items, nextCursor: answer["next_cursor"]?.stringValue)
    }

    /// Every attempt as it finishes, from now on, for one webhook or all.
    public nonisolated func tailRequests(webhookID: String? = nil) -> HookgateStream<RequestItem> {
        var request: JSONObject = ["cmd": "tail_requests"]
        if let webhookID { request["webhook_id"] = .string(webhookID) }
        return stream(request) { line in try RequestItem(json: line) }
    }

    /// A new series of attempts for the event and webhook; returns its delivery id (the
    /// store's sequence number).
    public func redeliver(eventID: String, webhookID: String) async throws -> Int {
        let answer = try await send([
            "cmd": "redeliver", "event_id": .string(eventID), "webhook_id": .string(webhookID),
        ])
        return try AnswerFields(answer, "").integer("delivery_id")
    }

    /// Sends again what failed for good in the window; returns how many.
    public func recover(webhookID: String, since: String, until: String? = nil) async throws -> Int {
        var request: JSONObject = ["cmd": "recover", "webhook_id": .string(webhookID), "since": .string(since)]
        if let until { request["until"] = .string(until) }
        return try AnswerFields(try await send(request), "").integer("recovering")
    }

    public func stats(webhookID: String? = nil) async throws -> Stats {
        var request: JSONObject = ["cmd": "stats"]
        if let webhookID { request["webhook_id"] = .string(webhookID) }
        let answer = try await send(request)
        let fields = AnswerFields(answer, "")
        var deliveries: [String: Int] = [:]
        for (state, count) in try fields.object("deliveries") {
            if case .number(let number) = count, let value = number.int64Value { deliveries[state] = Int(value) }
        }
        return Stats(
            eventsAccepted: try fields.integer("events_accepted"), deliveries: deliveries,
            webhooks: try fields.integer("webhooks"), json: answer)
    }

    public func health() async throws -> HealthReport {
        let fields = AnswerFields(try await send(["cmd": "health"]), "")
        let checks = try fields.objects("checks").map { object throws(HookgateClientError) in
            let check = AnswerFields(object, "checks")
            return HealthReport.Check(
                name: try check.string("name"), ok: object["ok"]?.boolValue ?? false,
                detail: object["detail"]?.stringValue ?? "")
        }
        return HealthReport(status: try fields.string("status"), checks: checks)
    }

    private func webhook(in answer: JSONObject) throws -> WebhookResource {
        try WebhookResource(json: try AnswerFields(answer, "").object("webhook"))
    }

    static func webhookRequest(_ command: String, _ definition: WebhookDefinition) -> JSONObject {
        [
            "cmd": .string(command), "name": .string(definition.name), "url": .string(definition.url),
            "filter": definition.filter.json, "rate_limit": .integer(definition.rateLimit),
        ]
    }
}

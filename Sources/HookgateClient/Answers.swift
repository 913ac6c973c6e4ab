import HookgateCore

/// `ping`.
public struct Ping: Sendable, Equatable {
    public var version: String
    public var uptimeSeconds: Int
}

/// `emit_event`: the event's id and how many deliveries it made, once durable.
public struct EmitResult: Sendable, Equatable {
    public var eventID: String
    public var deliveries: Int
}

/// `match_event`: who would receive the event, and the first check each other fails.
public struct MatchResult: Sendable, Equatable {
    public struct Match: Sendable, Equatable {
        public var webhookID: String
        public var name: String

        public init(webhookID: String, name: String) {
            self.webhookID = webhookID
            self.name = name
        }
    }
    public struct Rejection: Sendable, Equatable {
        public var webhookID: String
        public var reason: String
    }
    public var matches: [Match]
    public var rejections: [Rejection]
    public var rejectionsTotal: Int
}

/// A page of `list_webhooks` or `list_requests`; `nextCursor` is nil on the last.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: String?
}

/// One delivery attempt, or a cancellation, from the request log.
public struct RequestItem: Sendable, Equatable {
    public var id: String
    public var at: Timestamp
    public var webhookID: String
    public var eventID: String
    public var eventType: String
    public var attempt: Int
    public var url: String
    public var httpStatus: Int?
    public var errorClass: String?
    public var error: String?
    public var latencyMilliseconds: Double?
    /// `delivered`, `retrying`, `failed` or `cancelled`.
    public var outcome: String
    /// The item as the daemon sent it (with `response_body` and the rest).
    public var json: JSONObject

    public init(json object: JSONObject) throws(HookgateClientError) {
        let fields = AnswerFields(object, "request")
        id = try fields.string("id")
        at = try fields.timestamp("at")
        webhookID = try fields.string("webhook_id")
        eventID = try fields.string("event_id")
        eventType = try fields.string("event_type")
        attempt = (try? fields.integer("attempt")) ?? 0
        url = try fields.string("url")
        httpStatus = try? fields.integer("http_status")
        errorClass = object["error_class"]?.stringValue
        error = object["error"]?.stringValue
        if case .number(let latency)? = object["latency_ms"] { latencyMilliseconds = latency.doubleValue }
        outcome = try fields.string("outcome")
        json = object
    }
}

/// `health`: `ok` when every check passes, else `degraded`.
public struct HealthReport: Sendable, Equatable {
    public struct Check: Sendable, Equatable {
        public var name: String
        public var ok: Bool
        public var detail: String
    }
    public var status: String
    public var checks: [Check]
    public var isOK: Bool { status == "ok" }
}

/// `stats`, for the whole daemon or one webhook.
public struct Stats: Sendable, Equatable {
    public var eventsAccepted: Int
    /// Counts by state: `pending`, `in_flight`, `delivered`, `failed`, `cancelled`.
    public var deliveries: [String: Int]
    public var webhooks: Int
    /// The answer as sent, with the queue depths.
    public var json: JSONObject
}

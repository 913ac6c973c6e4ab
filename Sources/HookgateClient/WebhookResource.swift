import HookgateCore

/// A webhook as the daemon answers it (`webhook`, `webhooks`): the definition it was
/// created or last updated with, its state and its endpoint's health.
public struct WebhookResource: Sendable, Equatable {
    public var id: String
    public var definition: WebhookDefinition
    public var state: WebhookState
    public var disabledReason: String?
    /// Only in the answers of `create_webhook`, `rotate_secret`, and `get_webhook` with
    /// `includeSecret`.
    public var secret: String?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var health: EndpointHealth
    /// The object as the daemon sent it.
    public var json: JSONObject

    public init(json object: JSONObject) throws(HookgateClientError) {
        let fields = AnswerFields(object, "webhook")
        id = try fields.string("id")
        let filterFields = AnswerFields(try fields.object("filter"), "webhook.filter")
        let filter = WebhookFilter(
            eventType: try filterFields.strings("event_type").compactMap(EventType.init(exactly:)),
            sender: try filterFields.strings("sender"), status: try filterFields.strings("status"),
            messageRef: try filterFields.strings("message_ref"), campaignId: try filterFields.strings("campaign_id"))
        definition = WebhookDefinition(
            name: try fields.string("name"), url: try fields.string("url"), filter: filter,
            rateLimit: try fields.integer("rate_limit"), isSandbox: object["is_sandbox"]?.boolValue ?? false)
        guard let state = WebhookState(rawValue: try fields.string("state")) else {
            throw .badResponse("webhook.state: not active or disabled")
        }
        self.state = state
        disabledReason = object["disabled_reason"]?.stringValue
        secret = object["secret"]?.stringValue
        createdAt = try fields.timestamp("created_at")
        updatedAt = try fields.timestamp("updated_at")
        health = EndpointHealth(
            lastSuccessAt: try fields.optionalTimestamp("last_success_at"),
            lastFailureAt: try fields.optionalTimestamp("last_failure_at"),
            failingSince: try fields.optionalTimestamp("failing_since"))
        json = object
    }
}

/// Reads an answer's fields, naming the one that is missing or of the wrong type.
struct AnswerFields {
    let object: JSONObject
    let path: String

    init(_ object: JSONObject, _ path: String) {
        self.object = object
        self.path = path
    }

    private func missing(_ key: String, _ what: String) -> HookgateClientError {
        .badResponse("\(path.isEmpty ? "" : path + ".")\(key): expected \(what)")
    }

    func string(_ key: String) throws(HookgateClientError) -> String {
        guard let value = object[key]?.stringValue else { throw missing(key, "a string") }
        return value
    }

    func integer(_ key: String) throws(HookgateClientError) -> Int {
        guard case .number(let number)? = object[key], let value = number.int64Value else {
            throw missing(key, "an integer")
        }
        return Int(value)
    }

    func object(_ key: String) throws(HookgateClientError) -> JSONObject {
        guard let value = object[key]?.objectValue else { throw missing(key, "an object") }
        return value
    }

    func objects(_ key: String) throws(HookgateClientError) -> [JSONObject] {
        guard let items = object[key]?.arrayValue else { throw missing(key, "an array") }
        var objects: [JSONObject] = []
        for item in items {
            guard let object = item.objectValue else { throw missing(key, "an array of objects") }
            objects.append(object)
        }
        return objects
    }

    func strings(_ key: String) throws(HookgateClientError) -> [String] {
        guard let items = object[key]?.arrayValue else { throw missing(key, "an array") }
        return items.compactMap(\.stringValue)
    }

    func timestamp(_ key: String) throws(HookgateClientError) -> Timestamp {
        guard let text = object[key]?.stringValue, let time = Timestamp(rfc3339: text) else {
            throw missing(key, "an RFC 3339 time")
        }
        return time
    }

    func optionalTimestamp(_ key: String) throws(HookgateClientError) -> Timestamp? {
        guard let value = object[key], value != .null else { return nil }
        return try timestamp(key)
    }
}

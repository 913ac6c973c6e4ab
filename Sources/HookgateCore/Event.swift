/// An event accepted by `emit_event` or `match_event`: the platform's payload (without
/// `webhook_id`/`webhook_name`, which each delivery adds), with `timestamp` filled in.
public struct Event: Sendable, Equatable {
    public var type: EventType
    /// `event_type`, `timestamp` and the family's body, as the client sent them (the
    /// body's unknown fields included); `timestamp` stamped when absent.
    public var payload: JSONObject
    public var matchKey: EventMatchKey

    public init(type: EventType, payload: JSONObject, matchKey: EventMatchKey) {
        self.type = type
        self.payload = payload
        self.matchKey = matchKey
    }
}

/// Validation of an event (proto-spec/PROTOCOL.md "Events"). Every failure names the
/// field by its path from the request's root (`event.status.recipient`).
public enum EventValidator {
    /// Checks `value` (the request's `event`) and returns the event, stamped with
    /// `receivedAt` when it has no `timestamp`.
    public static func event(_ value: JSON?, receivedAt: Timestamp, path: String = "event") throws(ProtocolError)
        -> Event
    {
        guard let value, value != .null else { throw .invalid(path, "required") }
        guard case .object(let object) = value else { throw .invalid(path, "must be an object") }

        guard let typeValue = object["event_type"], typeValue != .null else {
            throw .invalid("\(path).event_type", "required")
        }
        guard case .string(let typeName) = typeValue else { throw .invalid("\(path).event_type", "must be a string") }
        guard let type = EventType(exactly: typeName) else {
            throw .invalid(
                "\(path).event_type", "unknown event type \"\(typeName)\"; expected one of \(EventType.namesList)")
        }
        let bodyKey = type.family.bodyKey
        for key in object.keys where key != "event_type" && key != "timestamp" && key != bodyKey {
            if EventFamily.allCases.contains(where: { $0.bodyKey == key }) {
                throw .invalid("\(path).\(key)", "not allowed for \(typeName), whose body is \(bodyKey)")
            }
            throw .unknownField("\(path).\(key)")
        }

        var payload = JSONObject()
        payload["event_type"] = typeValue
        switch object["timestamp"] {
        case nil, .null?:
            payload["timestamp"] = .string(receivedAt.rfc3339)
        case .string(let text)?:
            guard let timestamp = Timestamp(rfc3339: text) else {
                throw .invalid(
                    "\(path).timestamp",
                    "must be an RFC 3339 date-time in the years 0001 to 9999 UTC, such as 2025-04-23T00:05:18.567890Z")
            }
            // Delivered in UTC, as the platform sends it: an offset is converted.
            payload["timestamp"] = .string(timestamp.rfc3339)
        case let other?:
            throw .invalid("\(path).timestamp", "must be an RFC 3339 date-time string, not \(other.typeDescription)")
        }

        let bodyPath = "\(path).\(bodyKey)"
        guard let bodyValue = object[bodyKey], bodyValue != .null else { throw .invalid(bodyPath, "required") }
        guard case .object(let body) = bodyValue else { throw .invalid(bodyPath, "must be an object") }
        let matchKey: EventMatchKey
        switch type.family {
        case .status: matchKey = try statusBody(body, type: type, path: bodyPath)
        case .inbound: matchKey = try inboundBody(body, type: type, path: bodyPath)
        case .linkHit: matchKey = try linkHitBody(body, type: type, path: bodyPath)
        case .optOut: matchKey = try optOutBody(body, type: type, path: bodyPath)
        }
        payload[bodyKey] = bodyValue
        return Event(type: type, payload: payload, matchKey: matchKey)
    }

    private static func statusBody(_ body: JSONObject, type: EventType, path: String) throws(ProtocolError)
        -> EventMatchKey
    {
        try requireStrings(body, ["id"], path: path)
        try requireChannel(body, type: type, path: path)
        let sender = try requiredString(body, "sender", path: path)
        try requireStrings(body, ["recipient"], path: path)
        let status = try requiredString(body, "status", path: path)
        let messageRef = try optionalString(body, "message_ref", path: path)
        let campaignId = try optionalString(body, "campaign_id", path: path)
        return EventMatchKey(
            eventType: type,
            sender: .value(raw: sender, key: FilterValue.senderKey(sender)),
            status: .value(raw: status, key: FilterValue.statusKey(status)),
            messageRef: exact(messageRef, missing: "no message_ref"),
            campaignId: exact(campaignId, missing: "no campaign_id"))
    }

    private static func inboundBody(_ body: JSONObject, type: EventType, path: String) throws(ProtocolError)
        -> EventMatchKey
    {
        try requireStrings(body, ["id"], path: path)
        try requireChannel(body, type: type, path: path)
        try requireStrings(body, ["sender"], path: path)
        // The account's own number that received the message: what filter.sender reads.
        let recipient = try requiredString(body, "recipient", path: path)
        var messageRef = FilterInput.missing(reason: "no last_message")
        var campaignId = FilterInput.missing(reason: "no last_message")
        if let last = body["last_message"], last != .null {
            let message = try messageObject(last, path: "\(path).last_message")
            messageRef = exact(message.messageRef, missing: "no last_message.message_ref")
            campaignId = exact(message.campaignId, missing: "no last_message.campaign_id")
        }
        return EventMatchKey(
            eventType: type,
            sender: .value(raw: recipient, key: FilterValue.senderKey(recipient)),
            status: .ignored, messageRef: messageRef, campaignId: campaignId)
    }

    private static func linkHitBody(_ body: JSONObject, type: EventType, path: String) throws(ProtocolError)
        -> EventMatchKey
    {
        try requireStrings(body, ["url"], path: path)
        guard let hits = body["hits"], hits != .null else { throw .invalid("\(path).hits", "required") }
        guard case .number(let number) = hits, number.isIntegerLiteral else {
            throw .invalid("\(path).hits", "must be an integer")
        }
        return try sourceMessageKey(body, type: type, path: path)
    }

    private static func optOutBody(_ body: JSONObject, type: EventType, path: String) throws(ProtocolError)
        -> EventMatchKey
    {
        try requireStrings(body, ["source"], path: path)
        return try sourceMessageKey(body, type: type, path: path)
    }

    /// LINK_HIT and OPT_OUT: `sender` and `message_ref` read `source_message`.
    private static func sourceMessageKey(_ body: JSONObject, type: EventType, path: String) throws(ProtocolError)
        -> EventMatchKey
    {
        guard let source = body["source_message"], source != .null else {
            throw .invalid("\(path).source_message", "required")
        }
        let message = try messageObject(source, path: "\(path).source_message")
        return EventMatchKey(
            eventType: type,
            sender: .value(raw: message.sender, key: FilterValue.senderKey(message.sender)),
            status: .ignored,
            messageRef: exact(message.messageRef, missing: "no source_message.message_ref"),
            campaignId: .ignored)
    }

    private struct MessageFields {
        var sender: String
        var messageRef: String?
        var campaignId: String?
    }

    /// A message object (`source_message`, `last_message`): `id`, `type`, `sender`,
    /// `recipient` required as strings; `message_ref`, `campaign_id` strings when present.
    private static func messageObject(_ value: JSON, path: String) throws(ProtocolError) -> MessageFields {
        guard case .object(let message) = value else { throw .invalid(path, "must be an object") }
        try requireStrings(message, ["id", "type"], path: path)
        let sender = try requiredString(message, "sender", path: path)
        try requireStrings(message, ["recipient"], path: path)
        return MessageFields(
            sender: sender,
            messageRef: try optionalString(message, "message_ref", path: path),
            campaignId: try optionalString(message, "campaign_id", path: path))
    }

    private static func exact(_ value: String?, missing reason: String) -> FilterInput {
        guard let value else { return .missing(reason: reason) }
        return .value(raw: value, key: ExactKey(value))
    }

    private static func requireChannel(_ body: JSONObject, type: EventType, path: String) throws(ProtocolError) {
        let channel = try requiredString(body, "type", path: path)
        guard let expected = type.channel, channel.utf8.elementsEqual(expected.utf8) else {
            throw .invalid("\(path).type", "must be \(type.channel ?? "") for \(type.rawValue), not \"\(channel)\"")
        }
    }

    private static func requireStrings(_ object: JSONObject, _ keys: [String], path: String) throws(ProtocolError) {
        for key in keys { _ = try requiredString(object, key, path: path) }
    }

    /// A present, non-empty string.
    private static func requiredString(_ object: JSONObject, _ key: String, path: String) throws(ProtocolError)
        -> String
    {
        let text = try RequestFields.requiredString(object, key, path: path + ".")
        if text.isEmpty { throw .invalid("\(path).\(key)", "must not be empty") }
        return text
    }

    private static func optionalString(_ object: JSONObject, _ key: String, path: String) throws(ProtocolError)
        -> String?
    {
        try RequestFields.optionalString(object, key, path: path + ".")
    }
}

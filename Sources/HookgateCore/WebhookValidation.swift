/// Validation of the create/update fields (proto-spec/PROTOCOL.md "Create and update fields"). Every failure names
/// the field at fault by its path from the request's root and the rule it broke.
public struct WebhookValidator: Sendable {
    public static let webhookFields: [String] = ["name", "url", "filter", "rate_limit", "is_sandbox", "event_type"]
    public static let nameLengths = 2...100
    public static let rateLimits = 0...10_000
    public static let maxURLBytes = 2048

    public var allowHTTP: Bool

    public init(allowHTTP: Bool) { self.allowHTTP = allowHTTP }

    /// Validates the webhook fields at the request's top level. `envelopeKeys` are the
    /// command's own fields (`cmd`, `id`, `webhook_id`, ...); any other key is unknown.
    public func definition(from request: JSONObject, envelopeKeys: Set<String>) throws(ProtocolError) -> (
        WebhookDefinition, warnings: [String]
    ) {
        try RequestFields.rejectUnknown(in: request, allowed: envelopeKeys.union(Self.webhookFields), path: "")
        var warnings: [String] = []

        let name = try RequestFields.requiredString(request, "name")
        let nameLength = name.count
        if !Self.nameLengths.contains(nameLength) {
            throw .invalid(
                "name",
                "length must be between \(Self.nameLengths.lowerBound) and \(Self.nameLengths.upperBound) characters (got \(nameLength))"
            )
        }

        let url = try RequestFields.requiredString(request, "url")
        if let rule = WebhookURLRule.violation(of: url, allowHTTP: allowHTTP) {
            throw .invalid("url", rule)
        }

        var filter = try parseFilter(request["filter"])

        if let deprecated = request["event_type"], deprecated != .null {
            guard case .string(let text) = deprecated else { throw .invalid("event_type", "must be a string") }
            guard let type = EventType(exactly: text) else {
                throw .invalid("event_type", "unknown event type \"\(text)\"; expected one of \(EventType.namesList)")
            }
            if !filter.eventType.contains(type) { filter.eventType.append(type) }
            warnings.append("event_type: deprecated; merged into filter.event_type")
        }
        if filter.eventType.isEmpty {
            throw .invalid("filter.event_type", "required: at least one event type")
        }

        let rateLimit = try RequestFields.optionalInteger(request, "rate_limit", range: Self.rateLimits) ?? 0

        var isSandbox = false
        if let value = request["is_sandbox"], value != .null {
            guard case .bool(let flag) = value else { throw .invalid("is_sandbox", "must be a boolean") }
            isSandbox = flag
            warnings.append("is_sandbox: deprecated; accepted and echoed, it has no effect")
        }

        return (
            WebhookDefinition(name: name, url: url, filter: filter, rateLimit: rateLimit, isSandbox: isSandbox),
            warnings
        )
    }

    private func parseFilter(_ value: JSON?) throws(ProtocolError) -> WebhookFilter {
        guard let value, value != .null else { return WebhookFilter() }
        guard case .object(let object) = value else { throw .invalid("filter", "must be an object") }
        try RequestFields.rejectUnknown(in: object, allowed: Set(WebhookFilter.fieldNames), path: "filter.")
        var filter = WebhookFilter()
        for (i, text) in try stringArray(object, "event_type").enumerated() {
            guard let type = EventType(exactly: text) else {
                throw .invalid(
                    "filter.event_type[\(i)]", "unknown event type \"\(text)\"; expected one of \(EventType.namesList)")
            }
            if !filter.eventType.contains(type) { filter.eventType.append(type) }
        }
        filter.sender = try stringArray(object, "sender")
        filter.status = try stringArray(object, "status")
        filter.messageRef = try stringArray(object, "message_ref")
        filter.campaignId = try stringArray(object, "campaign_id")
        return filter
    }

    private func stringArray(_ object: JSONObject, _ key: String) throws(ProtocolError) -> [String] {
        let path = "filter.\(key)"
        guard let value = object[key], value != .null else { return [] }
        guard case .array(let items) = value else { throw .invalid(path, "must be an array of strings") }
        var strings: [String] = []
        strings.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case .string(let text) = item else { throw .invalid("\(path)[\(i)]", "must be a string") }
            if text.isEmpty { throw .invalid("\(path)[\(i)]", "must not be empty") }
            strings.append(text)
        }
        return strings
    }
}

/// The webhook URL rule: absolute, https (http only when allowed), with a host.
public enum WebhookURLRule {
    /// The broken rule, or nil when `url` is acceptable.
    public static func violation(of url: String, allowHTTP: Bool) -> String? {
        if url.isEmpty { return "required" }
        if url.utf8.count > WebhookValidator.maxURLBytes {
            return "longer than \(WebhookValidator.maxURLBytes) bytes"
        }
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0.value > 0x7E }) {
            return "must not contain spaces, control or non-ASCII characters (percent-encode them)"
        }
        guard let schemeEnd = url.firstRange(of: "://") else {
            return "must be an absolute URL (https://host/path)"
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }),
            scheme.first!.isLetter
        else {
            return "must be an absolute URL (https://host/path)"
        }
        switch scheme {
        case "https": break
        case "http":
            if !allowHTTP { return "must use https (plain http needs the daemon's --allow-http)" }
        default:
            return "scheme \"\(scheme)\" is not allowed; use https"
        }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { (c: Character) -> Bool in "/?#".contains(c) }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = authority
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return "invalid IPv6 host" }
            let ipv6 = authority[authority.index(after: authority.startIndex)..<close]
            if ipv6.isEmpty || !ipv6.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) {
                return "invalid IPv6 host"
            }
            let afterHost = authority[authority.index(after: close)...]
            if afterHost.isEmpty { return nil }
            guard afterHost.hasPrefix(":") else { return "invalid host" }
            return portViolation(afterHost.dropFirst())
        }
        if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            if let violation = portViolation(authority[authority.index(after: colon)...]) { return violation }
        }
        if host.isEmpty { return "must have a host" }
        if !host.allSatisfy({ $0.isLetter || $0.isNumber || "-._~%".contains($0) }) {
            return "invalid host \"\(host)\""
        }
        return nil
    }

    private static func portViolation(_ port: Substring) -> String? {
        guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isNumber), let value = Int(port),
            (1...65535).contains(value)
        else {
            return "invalid port \"\(port)\""
        }
        return nil
    }
}

/// Typed access to a request's fields, each failure a `validation` error naming the field.
public enum RequestFields {
    /// Rejects the first key, in wire order, that `allowed` does not hold.
    public static func rejectUnknown(in object: JSONObject, allowed: Set<String>, path: String) throws(ProtocolError) {
        for key in object.keys where !allowed.contains(where: { $0.hasSameBytes(as: key) }) {
            throw .unknownField(path + key)
        }
    }

    public static func requiredString(_ object: JSONObject, _ key: String, path: String = "") throws(ProtocolError)
        -> String
    {
        guard let value = object[key], value != .null else { throw .invalid(path + key, "required") }
        guard case .string(let text) = value else { throw .invalid(path + key, "must be a string") }
        return text
    }

    public static func optionalString(_ object: JSONObject, _ key: String, path: String = "") throws(ProtocolError)
        -> String?
    {
        guard let value = object[key], value != .null else { return nil }
        guard case .string(let text) = value else { throw .invalid(path + key, "must be a string") }
        return text
    }

    public static func optionalBool(_ object: JSONObject, _ key: String, path: String = "") throws(ProtocolError)
        -> Bool?
    {
        guard let value = object[key], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw .invalid(path + key, "must be a boolean") }
        return flag
    }

    /// An integer within `range`; `1.5`, `1e3`, `"10"` and `true` are not integers.
    public static func optionalInteger(
        _ object: JSONObject, _ key: String, range: ClosedRange<Int>, path: String = ""
    ) throws(ProtocolError) -> Int? {
        guard let value = object[key], value != .null else { return nil }
        let field = path + key
        guard case .number(let number) = value else { throw .invalid(field, "must be an integer") }
        guard let integer = number.int64Value else {
            // An integer literal too long for 64 bits is still an integer, just out of range.
            let digits = number.text.hasPrefix("-") ? number.text.dropFirst() : Substring(number.text)
            if !digits.isEmpty, digits.allSatisfy(\.isNumber) {
                throw number.text.hasPrefix("-")
                    ? .invalid(field, "less than the minimum value of \(range.lowerBound)")
                    : .invalid(field, "greater than the maximum value of \(range.upperBound)")
            }
            throw .invalid(field, "must be an integer")
        }
        if integer < Int64(range.lowerBound) {
            throw .invalid(field, "less than the minimum value of \(range.lowerBound)")
        }
        if integer > Int64(range.upperBound) {
            throw .invalid(field, "greater than the maximum value of \(range.upperBound)")
        }
        return Int(integer)
    }

    /// A webhook id in canonical UUID form, lower-cased.
    public static func webhookID(_ object: JSONObject, _ key: String = "webhook_id") throws(ProtocolError) -> String {
        let text = try requiredString(object, key)
        guard let id = Identifiers.canonicalUUID(text) else { throw .invalid(key, "invalid webhook ID") }
        return id
    }
}

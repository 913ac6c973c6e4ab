import HookgateCore
import HookgateStore

extension CommandDispatcher {
    /// A request item as `list_requests` and `tail_requests` show it.
    static func requestItem(_ logged: LoggedRequest) -> JSON {
        let record = logged.record
        var item = JSONObject([
            ("id", .string(logged.id)),
            ("at", .string(record.at.rfc3339)),
            ("webhook_id", .string(record.webhookID)),
            ("event_id", .string(record.eventID)),
            ("event_type", .string(record.eventType.rawValue)),
            ("attempt", .integer(record.attempt)),
            ("url", .string(record.url)),
            ("http_status", record.httpStatus.map { .integer($0) } ?? .null),
            ("error_class", record.errorClass.map { .string($0) } ?? .null),
            ("error", record.error.map { .string($0) } ?? .null),
            (
                "latency_ms",
                record.latencyMicroseconds.flatMap { JSONNumber(Double($0) / 1000).map { .number($0) } } ?? .null
            ),
            ("user_agent", .string(record.userAgent)),
        ])
        if let text = String(validating: record.responseBody, as: UTF8.self) {
            item["response_body"] = .string(text)
        } else {
            item["response_body"] = .string(Base64.encode(record.responseBody))
            item["response_body_encoding"] = "base64"
        }
        item["outcome"] = .string(record.outcome.rawValue)
        return .object(item)
    }
}

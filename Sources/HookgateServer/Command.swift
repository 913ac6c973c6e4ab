/// The commands this daemon knows.
enum Command: String, CaseIterable {
    case ping
    case createWebhook = "create_webhook"
    case getWebhook = "get_webhook"
    case listWebhooks = "list_webhooks"
    case updateWebhook = "update_webhook"
    case deleteWebhook = "delete_webhook"
    case enableWebhook = "enable_webhook"
    case disableWebhook = "disable_webhook"
    case rotateSecret = "rotate_secret"
    case emitEvent = "emit_event"
    case matchEvent = "match_event"
    case stats
    case listRequests = "list_requests"
    case redeliver
    case tailRequests = "tail_requests"
    case health
    case recover

    /// Commands whose line is bounded by `--max-event-bytes`.
    var carriesEvent: Bool { self == .emitEvent || self == .matchEvent }

    /// The fields every request may carry.
    static let envelope: Set<String> = ["cmd", "id"]

    static let namesList = allCases.map(\.rawValue).joined(separator: ", ")
}

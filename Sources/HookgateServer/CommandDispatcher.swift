import HookgateCore
import HookgateStore
import Logging

/// What the dispatcher made of one request line.
enum DispatchOutcome: Sendable {
    /// The response line, known without waiting (parse and envelope errors, ping).
    case immediate([UInt8])
    /// Work that needs the store; it yields the response line.
    case deferred(@Sendable () async -> [UInt8])
    /// A line with nothing on it: no request, no response.
    case ignored
}

/// Turns request lines into response lines: parses the envelope, validates, runs the
/// command against the store. Holds no per-connection state.
public final class CommandDispatcher: Sendable {
    public struct Options: Sendable {
        public var allowHTTP: Bool
        public init(allowHTTP: Bool = false) { self.allowHTTP = allowHTTP }
    }

    static let maxListLimit = 1000
    static let defaultListLimit = 100

    private let store: any Store
    private let clock: any WallClock
    private let validator: WebhookValidator
    private let startedAt: Timestamp
    private let logger: Logger

    public init(store: any Store, options: Options, clock: any WallClock = SystemWallClock(), logger: Logger) {
        self.store = store
        self.clock = clock
        self.validator = WebhookValidator(allowHTTP: options.allowHTTP)
        self.startedAt = clock.now()
        self.logger = logger
    }

    func dispatch(line: some Collection<UInt8>) -> DispatchOutcome {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return .ignored }
        let value: JSON
        do {
            value = try JSONParser.parse(line)
        } catch {
            let message = error.kind == .invalidUTF8 ? "request is not valid UTF-8" : "invalid JSON: \(error.message)"
            return .immediate(Self.failure(ProtocolError(.badJSON, message), id: nil))
        }
        guard case .object(let request) = value else {
            return .immediate(
                Self.failure(ProtocolError(.badRequest, "request must be a JSON object, not \(value.typeDescription)"), id: nil))
        }
        let id: JSON?
        switch request["id"] {
        case nil, .null?: id = nil
        case .string?, .number?: id = request["id"]
        case let other?:
            return .immediate(
                Self.failure(.invalid("id", "must be a string or a number, not \(other.typeDescription)"), id: nil))
        }
        guard let cmdValue = request["cmd"] else {
            return .immediate(Self.failure(ProtocolError(.badRequest, "cmd: required", field: "cmd"), id: id))
        }
        guard case .string(let cmd) = cmdValue else {
            return .immediate(Self.failure(ProtocolError(.badRequest, "cmd: must be a string", field: "cmd"), id: id))
        }
        guard let command = Command(rawValue: cmd) else {
            return .immediate(
                Self.failure(
                    ProtocolError(.unknownCommand, "unknown command \"\(cmd)\"; known: \(Command.namesList)", field: "cmd"),
                    id: id))
        }
        if command == .ping {
            return .immediate(Self.respond(id: id) { () throws(ProtocolError) in try self.ping(request) })
        }
        return .deferred {
            await Self.respond(id: id) { () async throws(ProtocolError) in try await self.run(command, request) }
        }
    }

    // MARK: - Responses

    static func failure(_ error: ProtocolError, id: JSON?) -> [UInt8] {
        var object = JSONObject([("ok", .bool(false))])
        if let id { object["id"] = id }
        object["error"] = error.json
        return JSONWriter.bytes(.object(object))
    }

    static func success(_ fields: JSONObject, id: JSON?) -> [UInt8] {
        var object = JSONObject([("ok", .bool(true))])
        if let id { object["id"] = id }
        for (key, value) in fields { object[key] = value }
        return JSONWriter.bytes(.object(object))
    }

    private static func respond(id: JSON?, _ body: () throws(ProtocolError) -> JSONObject) -> [UInt8] {
        do {
            return success(try body(), id: id)
        } catch {
            return failure(error, id: id)
        }
    }

    private static func respond(id: JSON?, _ body: () async throws(ProtocolError) -> JSONObject) async -> [UInt8] {
        do {
            return success(try await body(), id: id)
        } catch {
            return failure(error, id: id)
        }
    }

    // MARK: - Commands

    private func run(_ command: Command, _ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        switch command {
        case .ping: return try ping(request)
        case .createWebhook: return try await createWebhook(request)
        case .getWebhook: return try await getWebhook(request)
        case .listWebhooks: return try await listWebhooks(request)
        case .updateWebhook: return try await updateWebhook(request)
        case .deleteWebhook: return try await deleteWebhook(request)
        case .enableWebhook: return try await setState(request, .active)
        case .disableWebhook: return try await setState(request, .disabled)
        case .rotateSecret: return try await rotateSecret(request)
        }
    }

    private func ping(_ request: JSONObject) throws(ProtocolError) -> JSONObject {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope, path: "")
        let uptime = (clock.now().microseconds - startedAt.microseconds) / 1_000_000
        return JSONObject([("version", .string(HookgateVersion.current)), ("uptime_s", .integer(uptime))])
    }

    private func createWebhook(_ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        let (definition, warnings) = try validator.definition(from: request, envelopeKeys: Command.envelope)
        let webhook = Webhook.create(definition, at: clock.now())
        try await storeCall { try await self.store.insertWebhook(webhook) }
        logger.info("webhook created", metadata: ["webhook_id": "\(webhook.id)", "url": "\(definition.url)"])
        return Self.webhookResult(webhook, includeSecret: true, warnings: warnings)
    }

    private func getWebhook(_ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        try RequestFields.rejectUnknown(
            in: request, allowed: Command.envelope.union(["webhook_id", "include_secret"]), path: "")
        let id = try RequestFields.webhookID(request)
        let includeSecret = try RequestFields.optionalBool(request, "include_secret") ?? false
        guard let webhook = try await storeCall({ try await self.store.webhook(id: id) }) else {
            throw Self.webhookNotFound
        }
        return Self.webhookResult(webhook, includeSecret: includeSecret, warnings: [])
    }

    private func listWebhooks(_ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope.union(["limit", "cursor"]), path: "")
        let limit =
            try RequestFields.optionalInteger(request, "limit", range: 1...Self.maxListLimit) ?? Self.defaultListLimit
        let cursor = try RequestFields.optionalString(request, "cursor")
        let page: WebhookPage
        do {
            page = try await store.listWebhooks(after: cursor, limit: limit)
        } catch StoreFailure.invalidCursor {
            throw .invalid("cursor", "not a cursor from list_webhooks")
        } catch {
            throw storeFailure(error)
        }
        var result = JSONObject([("webhooks", .array(page.webhooks.map { $0.json(includeSecret: false) }))])
        if let next = page.nextCursor { result["next_cursor"] = .string(next) }
        return result
    }

    private func updateWebhook(_ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        let (definition, warnings) = try validator.definition(
            from: request, envelopeKeys: Command.envelope.union(["webhook_id"]))
        let id = try RequestFields.webhookID(request)
        let now = clock.now()
        let updated = try await storeCall {
            try await self.store.modifyWebhook(id: id) { $0.replacing(with: definition, at: now) }
        }
        guard let updated else { throw Self.webhookNotFound }
        logger.info("webhook updated", metadata: ["webhook_id": "\(id)"])
        return Self.webhookResult(updated, includeSecret: false, warnings: warnings)
    }

    private func deleteWebhook(_ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        let id = try webhookIDOnly(request)
        guard try await storeCall({ try await self.store.deleteWebhook(id: id) }) else { throw Self.webhookNotFound }
        logger.info("webhook deleted", metadata: ["webhook_id": "\(id)"])
        return JSONObject([("deleted", .string(id))])
    }

    static let disabledByClientReason = "disabled by disable_webhook"

    private func setState(_ request: JSONObject, _ state: WebhookState) async throws(ProtocolError) -> JSONObject {
        let id = try webhookIDOnly(request)
        let now = clock.now()
        let updated = try await storeCall {
            try await self.store.modifyWebhook(id: id) { webhook in
                // Enabling an active webhook, or disabling a disabled one, changes nothing.
                guard webhook.state != state else { return webhook }
                return webhook.settingState(state, reason: Self.disabledByClientReason, at: now)
            }
        }
        guard let updated else { throw Self.webhookNotFound }
        logger.info("webhook state set", metadata: ["webhook_id": "\(id)", "state": "\(state.rawValue)"])
        return Self.webhookResult(updated, includeSecret: false, warnings: [])
    }

    private func rotateSecret(_ request: JSONObject) async throws(ProtocolError) -> JSONObject {
        let id = try webhookIDOnly(request)
        let now = clock.now()
        let updated = try await storeCall {
            try await self.store.modifyWebhook(id: id) { $0.rotatingSecret(at: now) }
        }
        guard let updated else { throw Self.webhookNotFound }
        logger.info("webhook secret rotated", metadata: ["webhook_id": "\(id)"])
        return Self.webhookResult(updated, includeSecret: true, warnings: [])
    }

    // MARK: - Helpers

    private func webhookIDOnly(_ request: JSONObject) throws(ProtocolError) -> String {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope.union(["webhook_id"]), path: "")
        return try RequestFields.webhookID(request)
    }

    static let webhookNotFound = ProtocolError(.notFound, "Webhook not found", field: "webhook_id")

    private static func webhookResult(_ webhook: Webhook, includeSecret: Bool, warnings: [String]) -> JSONObject {
        var result = JSONObject([("webhook", webhook.json(includeSecret: includeSecret))])
        if !warnings.isEmpty { result["warnings"] = .array(warnings.map { .string($0) }) }
        return result
    }

    private func storeCall<T: Sendable>(_ body: @Sendable () async throws -> T) async throws(ProtocolError) -> T {
        do {
            return try await body()
        } catch {
            throw storeFailure(error)
        }
    }

    /// A store failure as the client sees it: the disk's trouble is `unavailable` (try
    /// again later), anything else `internal`. Either way the log has the detail.
    private func storeFailure(_ error: any Error) -> ProtocolError {
        logger.error("store call failed", metadata: ["error": "\(error)"])
        if let storeError = error as? StoreError, storeError.isResourceFailure {
            return ProtocolError(.unavailable, "storage unavailable: \(storeError.message)")
        }
        return ProtocolError(.internal, "internal error; the daemon's log has the detail")
    }
}

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

    /// The fields every request may carry.
    static let envelope: Set<String> = ["cmd", "id"]

    static let namesList = allCases.map(\.rawValue).joined(separator: ", ")
}

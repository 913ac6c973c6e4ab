import Dispatch
import HookgateCore
import HookgateStore
import Logging
import NIOCore
import Synchronization

/// Turns request lines into response lines: parses the envelope, validates, runs the
/// command against the store. Holds no per-connection state.
public final class CommandDispatcher: Sendable {
    public struct Options: Sendable {
        public var allowHTTP: Bool
        /// The longest `emit_event`/`match_event` line (`--max-event-bytes`).
        public var maxEventBytes: Int
        /// `--min-free-disk`: below it, commands that make the store grow are refused.
        public var freeDiskSpace: FreeDiskSpace?
        public var metrics: HookgateMetrics
        /// What `health` reports.
        public var health: HealthMonitor
        /// `--event-retention`: `recover` cannot reach further back.
        public var eventRetentionMicroseconds: Int64

        public init(
            allowHTTP: Bool = false, maxEventBytes: Int = 256 * 1024, freeDiskSpace: FreeDiskSpace? = nil,
            metrics: HookgateMetrics = .disabled, health: HealthMonitor = HealthMonitor(probes: []),
            eventRetentionMicroseconds: Int64 = 7 * 86_400_000_000
        ) {
            self.eventRetentionMicroseconds = eventRetentionMicroseconds
            self.metrics = metrics
            self.health = health
            self.allowHTTP = allowHTTP
            self.maxEventBytes = maxEventBytes
            self.freeDiskSpace = freeDiskSpace
        }
    }

    /// Every command's name (the `command` label of `hookgate_requests_total`).
    public static let commandNames = Command.allCases.map(\.rawValue)

    static let maxListLimit = 1000
    static let defaultListLimit = 100

    static let maxIdempotencyKeyLength = 255

    private let store: any Store
    private let matcher: ShardedMatcher
    private let router: MatcherRouter
    private let clock: any WallClock
    private let validator: WebhookValidator
    private let options: Options
    private let startedAt: Timestamp
    private let logger: Logger
    /// A failing disk fails every call: one log line per interval, not one per call.
    private let storeFailures = Mutex(RepeatLimiter())
    private let delivery: DeliveryHooks

    /// `matcher` must already hold the store's webhooks; the dispatcher keeps it in step
    /// with every change it makes.
    public init(
        store: any Store, matcher: ShardedMatcher, options: Options, clock: any WallClock = SystemWallClock(),
        logger: Logger, delivery: DeliveryHooks = DeliveryHooks()
    ) {
        self.delivery = delivery
        self.store = store
        self.matcher = matcher
        self.router = MatcherRouter(matcher: matcher)
        self.clock = clock
        self.validator = WebhookValidator(allowHTTP: options.allowHTTP)
        self.options = options
        self.startedAt = clock.now()
        self.logger = logger
    }

    /// Parses and validates `line` at once; a command that needs the store is submitted
    /// to it before this returns, so commands take effect in the order they arrive.
    /// `promise` receives the response of a `.pending` outcome.
    func dispatch(line: UnsafeRawBufferPointer, promise: @autoclosure () -> EventLoopPromise<Reply>)
        -> DispatchOutcome
    {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return .ignored }
        let readAt = DispatchTime.now().uptimeNanoseconds
        let outcome = dispatch(line: line, readAt: readAt, promise: promise())
        if case .immediate(let answer) = outcome.dispatched {
            options.metrics.request(command: outcome.command ?? HookgateMetrics.unknownCommand, outcome: outcome.code)
            return .immediate(answer)
        }
        return outcome.dispatched
    }

    /// What `dispatch` made of a line, with what the request counter needs of an
    /// immediate answer.
    private struct Dispatched {
        var dispatched: DispatchOutcome
        var command: String?
        var code: String
    }

    private func dispatch(
        line: UnsafeRawBufferPointer, readAt: UInt64, promise: @autoclosure () -> EventLoopPromise<Reply>
    )
        -> Dispatched
    {
        func immediate(_ error: ProtocolError, id: JSON?, command: String? = nil) -> Dispatched {
            Dispatched(dispatched: .immediate(Self.failure(error, id: id)), command: command, code: error.code.rawValue)
        }
        if line.count > options.maxEventBytes, let refusal = refuseOversizedEvent(line) {
            return Dispatched(
                dispatched: .immediate(refusal.line), command: refusal.command, code: ErrorCode.payloadTooLarge.rawValue
            )
        }
        let value: JSON
        do {
            value = try JSONParser.parse(buffer: line)
        } catch {
            let message = error.kind == .invalidUTF8 ? "request is not valid UTF-8" : "invalid JSON: \(error.message)"
            return immediate(ProtocolError(.badJSON, message), id: nil)
        }
        guard case .object(let request) = value else {
            return immediate(
                ProtocolError(.badRequest, "request must be a JSON object, not \(value.typeDescription)"), id: nil)
        }
        let id: JSON?
        switch request["id"] {
        case nil, .null?: id = nil
        case .string?, .number?: id = request["id"]
        case let other?:
            return immediate(.invalid("id", "must be a string or a number, not \(other.typeDescription)"), id: nil)
        }
        guard let cmdValue = request["cmd"] else {
            return immediate(ProtocolError(.badRequest, "cmd: required", field: "cmd"), id: id)
        }
        guard case .string(let cmd) = cmdValue else {
            return immediate(ProtocolError(.badRequest, "cmd: must be a string", field: "cmd"), id: id)
        }
        guard let command = Command(rawValue: cmd) else {
            return immediate(
                ProtocolError(.unknownCommand, "unknown command \"\(cmd)\"; known: \(Command.namesList)", field: "cmd"),
                id: id)
        }
        if command.carriesEvent, line.count > options.maxEventBytes {
            return immediate(eventTooLarge(lineBytes: line.count), id: id, command: command.rawValue)
        }
        if command == .ping {
            do {
                return Dispatched(
                    dispatched: .immediate(Self.success(try ping(request), id: id)), command: "ping", code: "ok")
            } catch {
                return immediate(error, id: id, command: "ping")
            }
        }
        let responder = Responder(
            id: id, promise: promise(), command: command, metrics: options.metrics, readAt: readAt)
        do {
            try submit(command, request, responder)
        } catch {
            responder.fail(error)
        }
        let outcome: DispatchOutcome =
            command == .tailRequests ? .pendingStream : .pending(answerBytes: Self.answerBytes(command, request))
        return Dispatched(dispatched: outcome, command: command.rawValue, code: "ok")
    }

    /// What a command's answer may take at most, roughly: lists by their limit (a request
    /// item with a response body runs to a few KiB), everything else a line.
    static func answerBytes(_ command: Command, _ request: JSONObject) -> Int {
        func limit(default value: Int) -> Int {
            guard case .number(let number)? = request["limit"], let limit = number.int64Value else { return value }
            return Int(max(1, min(limit, Int64(maxListLimit))))
        }
        switch command {
        case .listRequests: return 1024 + limit(default: defaultRequestsLimit) * 2048
        case .listWebhooks: return 1024 + limit(default: defaultListLimit) * 1024
        case .matchEvent: return 1024 + limit(default: defaultListLimit) * 128
        default: return 1024
        }
    }

    /// The answer to a line over `--max-event-bytes` whose `cmd` carries an event, found
    /// without parsing the line; nil when the line is parsed as usual.
    private func refuseOversizedEvent(_ line: UnsafeRawBufferPointer) -> (line: [UInt8], command: String)? {
        let found = JSONTopLevelScan.scalars(of: ["cmd", "id"], in: line)
        guard let cmd = found["cmd"]?.stringValue, let command = Command(rawValue: cmd), command.carriesEvent
        else { return nil }
        return (Self.failure(eventTooLarge(lineBytes: line.count), id: found["id"]), command.rawValue)
    }

    private func eventTooLarge(lineBytes: Int) -> ProtocolError {
        ProtocolError(
            .payloadTooLarge,
            "event: request line of \(lineBytes) bytes is over the limit of \(options.maxEventBytes) bytes",
            field: "event")
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

    // MARK: - Commands

    /// Validates the request (throwing at once when it is bad) and submits its store work.
    private func submit(_ command: Command, _ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        switch command {
        case .ping: responder.succeed(try ping(request))
        case .createWebhook: try createWebhook(request, responder)
        case .getWebhook: try getWebhook(request, responder)
        case .listWebhooks: try listWebhooks(request, responder)
        case .updateWebhook: try updateWebhook(request, responder)
        case .deleteWebhook: try deleteWebhook(request, responder)
        case .enableWebhook: try setState(request, .active, responder)
        case .disableWebhook: try setState(request, .disabled, responder)
        case .rotateSecret: try rotateSecret(request, responder)
        case .emitEvent: try emitEvent(request, responder)
        case .matchEvent: try matchEvent(request, responder)
        case .stats: try stats(request, responder)
        case .listRequests: try listRequests(request, responder)
        case .redeliver: try redeliver(request, responder)
        case .tailRequests: try tailRequests(request, responder)
        case .health: try health(request, responder)
        case .recover: try recover(request, responder)
        }
    }

    private func ping(_ request: JSONObject) throws(ProtocolError) -> JSONObject {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope, path: "")
        let uptime = (clock.now().microseconds - startedAt.microseconds) / 1_000_000
        return JSONObject([("version", .string(HookgateVersion.current)), ("uptime_s", .integer(uptime))])
    }

    private func createWebhook(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        let (definition, warnings) = try validator.definition(from: request, envelopeKeys: Command.envelope)
        try refuseWhenDiskIsNearlyFull()
        let webhook = Webhook.create(definition, at: clock.now())
        store.insertWebhook(webhook) { result in
            self.complete(responder, result) { _ in
                self.matcher.apply(.upsert(MatchTarget(webhook)))
                self.logger.info(
                    "webhook created",
                    metadata: ["webhook_id": "\(webhook.id)", "url": "\(LogRedaction.url(definition.url))"])
                return Self.webhookResult(webhook, includeSecret: true, warnings: warnings)
            }
        }
    }

    private func getWebhook(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(
            in: request, allowed: Command.envelope.union(["webhook_id", "include_secret"]), path: "")
        let id = try RequestFields.webhookID(request)
        let includeSecret = try RequestFields.optionalBool(request, "include_secret") ?? false
        store.webhook(id: id) { result in
            self.complete(responder, result) { webhook throws(ProtocolError) in
                guard let webhook else { throw Self.webhookNotFound }
                return Self.webhookResult(webhook, includeSecret: includeSecret, warnings: [])
            }
        }
    }

    private func listWebhooks(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope.union(["limit", "cursor"]), path: "")
        let limit =
            try RequestFields.optionalInteger(request, "limit", range: 1...Self.maxListLimit) ?? Self.defaultListLimit
        let cursor = try RequestFields.optionalString(request, "cursor")
        store.listWebhooks(after: cursor, limit: limit) { result in
            if case .failure(StoreFailure.invalidCursor) = result {
                responder.fail(.invalid("cursor", "not a cursor from list_webhooks"))
                return
            }
            self.complete(responder, result) { page in
                var fields = JSONObject([("webhooks", .array(page.webhooks.map { $0.json(includeSecret: false) }))])
                if let next = page.nextCursor { fields["next_cursor"] = .string(next) }
                return fields
            }
        }
    }

    private func updateWebhook(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        let (definition, warnings) = try validator.definition(
            from: request, envelopeKeys: Command.envelope.union(["webhook_id"]))
        let id = try RequestFields.webhookID(request)
        let now = clock.now()
        store.modifyWebhook(id: id, transform: { $0.replacing(with: definition, at: now) }) { result in
            self.complete(responder, result) { updated throws(ProtocolError) in
                guard let updated else { throw Self.webhookNotFound }
                self.matcher.apply(.upsert(MatchTarget(updated)))
                self.delivery.webhookChanged(id)
                self.logger.info("webhook updated", metadata: ["webhook_id": "\(id)"])
                return Self.webhookResult(updated, includeSecret: false, warnings: warnings)
            }
        }
    }

    private func deleteWebhook(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        let id = try webhookIDOnly(request)
        store.deleteWebhook(id: id) { result in
            self.complete(responder, result) { deleted throws(ProtocolError) in
                guard deleted else { throw Self.webhookNotFound }
                self.matcher.apply(.remove(id: id))
                self.delivery.webhookChanged(id)
                self.logger.info("webhook deleted", metadata: ["webhook_id": "\(id)"])
                return JSONObject([("deleted", .string(id))])
            }
        }
    }

    static let disabledByClientReason = "disabled by disable_webhook"

    private func setState(_ request: JSONObject, _ state: WebhookState, _ responder: Responder) throws(ProtocolError) {
        let id = try webhookIDOnly(request)
        let now = clock.now()
        let transform: @Sendable (Webhook) -> Webhook = { webhook in
            // Enabling an active webhook, or disabling a disabled one, changes nothing.
            guard webhook.state != state else { return webhook }
            return webhook.settingState(state, reason: Self.disabledByClientReason, at: now)
        }
        store.modifyWebhook(id: id, transform: transform) { result in
            self.complete(responder, result) { updated throws(ProtocolError) in
                guard let updated else { throw Self.webhookNotFound }
                self.matcher.apply(.upsert(MatchTarget(updated)))
                self.delivery.webhookChanged(id)
                self.logger.info("webhook state set", metadata: ["webhook_id": "\(id)", "state": "\(state.rawValue)"])
                if state == .disabled, updated.disabledReason == Self.disabledByClientReason, updated.updatedAt == now {
                    self.options.metrics.webhookDisabled(reason: "manual")
                }
                return Self.webhookResult(updated, includeSecret: false, warnings: [])
            }
        }
    }

    private func rotateSecret(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        let id = try webhookIDOnly(request)
        let now = clock.now()
        store.modifyWebhook(id: id, transform: { $0.rotatingSecret(at: now) }) { result in
            self.complete(responder, result) { updated throws(ProtocolError) in
                guard let updated else { throw Self.webhookNotFound }
                self.delivery.webhookChanged(id)
                self.logger.info("webhook secret rotated", metadata: ["webhook_id": "\(id)"])
                return Self.webhookResult(updated, includeSecret: true, warnings: [])
            }
        }
    }

    private func emitEvent(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(
            in: request, allowed: Command.envelope.union(["event", "idempotency_key"]), path: "")
        let receivedAt = clock.now()
        let event = try EventValidator.event(request["event"], receivedAt: receivedAt)
        let key = try RequestFields.optionalString(request, "idempotency_key")
        if let key, key.isEmpty || key.unicodeScalars.count > Self.maxIdempotencyKeyLength {
            throw .invalid(
                "idempotency_key", "length must be between 1 and \(Self.maxIdempotencyKeyLength) code points")
        }
        try refuseWhenDiskIsNearlyFull()
        let newEvent = NewEvent(
            id: Identifiers.timeOrderedUUID(at: receivedAt), event: event, receivedAt: receivedAt, idempotencyKey: key)
        store.appendEvent(newEvent, router: router) { result in
            self.complete(responder, result) { receipt in
                return JSONObject([
                    ("event_id", .string(receipt.eventID)), ("deliveries", .integer(receipt.deliveries)),
                ])
            }
        }
    }

    /// A valid request that would make the store grow, while the disk is nearly full.
    private func refuseWhenDiskIsNearlyFull() throws(ProtocolError) {
        if let shortage = options.freeDiskSpace?.shortage { throw ProtocolError(.unavailable, shortage) }
    }

    private func matchEvent(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope.union(["event", "limit"]), path: "")
        let event = try EventValidator.event(request["event"], receivedAt: clock.now())
        let limit =
            try RequestFields.optionalInteger(request, "limit", range: 1...Self.maxListLimit) ?? Self.defaultListLimit
        // Webhook changes reach the matcher when the store has committed them: run the dry
        // run behind every call submitted before it, so it sees what they changed.
        let matcher = self.matcher
        store.afterPriorCalls {
            let explanation = matcher.explain(event.matchKey, rejectionLimit: limit)
            responder.succeed(
                JSONObject([
                    (
                        "matches",
                        .array(explanation.matches.map { ["webhook_id": .string($0.id), "name": .string($0.name)] })
                    ),
                    (
                        "rejections",
                        .array(
                            explanation.rejections.map {
                                ["webhook_id": .string($0.webhookID), "reason": .string($0.reason)]
                            })
                    ),
                    ("rejections_total", .integer(explanation.rejectionsTotal)),
                ]))
        }
    }

    /// Queues a new attempt series for each of the webhook's deliveries that ended
    /// `failed` in [since, until]; answers with how many at once, the work runs in the
    /// background.
    private func recover(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(
            in: request, allowed: Command.envelope.union(["webhook_id", "since", "until"]), path: "")
        let webhookID = try RequestFields.webhookID(request)
        let now = clock.now()
        func time(_ key: String) throws(ProtocolError) -> Timestamp? {
            guard let text = try RequestFields.optionalString(request, key) else { return nil }
            guard let time = Timestamp(rfc3339: text) else {
                throw .invalid(
                    key, "must be an RFC 3339 date-time in the years 0001 to 9999 UTC, such as 2025-04-23T00:05:18Z")
            }
            return time
        }
        guard let since = try time("since") else { throw .invalid("since", "required") }
        let until = try time("until") ?? now
        if since < now.adding(microseconds: -options.eventRetentionMicroseconds) {
            throw .invalid(
                "since",
                "older than --event-retention (\(Units.durationText(options.eventRetentionMicroseconds))): deliveries that old are no longer kept"
            )
        }
        if until < since { throw .invalid("until", "before since") }
        store.startRecovery(webhookID: webhookID, since: since, until: until, at: now) { result in
            switch result {
            case .failure(StoreFailure.webhookNotFound):
                responder.fail(Self.webhookNotFound)
            case .failure(StoreFailure.webhookDisabled):
                responder.fail(
                    ProtocolError(.conflict, "webhook is disabled: enable the webhook first", field: "webhook_id"))
            default:
                self.complete(responder, result) { count in
                    if count > 0 { self.delivery.recoveryStarted() }
                    self.logger.info(
                        "recovery started", metadata: ["webhook_id": "\(webhookID)", "deliveries": "\(count)"])
                    return JSONObject([("recovering", .integer(count))])
                }
            }
        }
    }

    /// The readiness verdict `/readyz` gives, with every check's detail.
    private func health(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope, path: "")
        let monitor = options.health
        Task {
            let report = await monitor.report()
            responder.succeed(report.fields)
        }
    }

    private func stats(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope.union(["webhook_id"]), path: "")
        let webhookID: String? =
            request["webhook_id"] == nil || request["webhook_id"] == .null ? nil : try RequestFields.webhookID(request)
        store.stats(webhookID: webhookID) { result in
            if case .failure(StoreFailure.webhookNotFound) = result {
                responder.fail(Self.webhookNotFound)
                return
            }
            self.complete(responder, result) { stats in
                // Attempts in flight are pending in the store until their outcome is stored.
                // (A delivery cancelled while its attempt runs is counted as cancelled.)
                var counts = stats.deliveries
                let inFlight = min(self.delivery.inFlight(webhookID), counts[.pending] ?? 0)
                counts[.pending] = (counts[.pending] ?? 0) - inFlight
                counts[.inFlight] = inFlight
                var deliveries = JSONObject()
                for state in DeliveryState.allCases {
                    deliveries[state.rawValue] = .integer(counts[state] ?? 0)
                }
                var fields = JSONObject()
                if let webhookID { fields["webhook_id"] = .string(webhookID) }
                fields["events_accepted"] = .integer(stats.eventsAccepted)
                fields["deliveries"] = .object(deliveries)
                fields["queue_depths"] = ["awaiting_commit": .integer(stats.eventsAwaitingCommit)]
                fields["webhooks"] = .integer(stats.webhooks)
                return fields
            }
        }
    }

    static let defaultRequestsLimit = 50

    /// A new series of attempts for an event and a webhook, first attempt now, with the
    /// same `webhook-id` as before.
    private func redeliver(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(
            in: request, allowed: Command.envelope.union(["event_id", "webhook_id"]), path: "")
        let eventText = try RequestFields.requiredString(request, "event_id")
        guard let eventID = Identifiers.canonicalUUID(eventText) else { throw .invalid("event_id", "invalid event ID") }
        let webhookID = try RequestFields.webhookID(request)
        store.redeliver(eventID: eventID, webhookID: webhookID, at: clock.now()) { result in
            switch result {
            case .failure(StoreFailure.eventNotFound):
                responder.fail(ProtocolError(.notFound, "Event not found", field: "event_id"))
            case .failure(StoreFailure.eventPastRetention):
                responder.fail(
                    ProtocolError(
                        .notFound,
                        "Event not found: it passed retention (--event-retention) and is no longer stored",
                        field: "event_id"))
            case .failure(StoreFailure.webhookNotFound):
                responder.fail(Self.webhookNotFound)
            default:
                self.complete(responder, result) { seq in JSONObject([("delivery_id", .integer(seq))]) }
            }
        }
    }

    /// Starts a stream of request items as they are logged, for one webhook when one is
    /// named (it must exist, in order with the calls before).
    private func tailRequests(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(in: request, allowed: Command.envelope.union(["webhook_id"]), path: "")
        guard request["webhook_id"] != nil, request["webhook_id"] != .null else {
            responder.startStream(TailStream(webhookID: nil))
            return
        }
        let webhookID = try RequestFields.webhookID(request)
        store.webhook(id: webhookID) { result in
            switch result {
            case .failure(let error): responder.fail(self.storeFailure(error))
            case .success(nil): responder.fail(Self.webhookNotFound)
            case .success(.some): responder.startStream(TailStream(webhookID: webhookID))
            }
        }
    }

    private func listRequests(_ request: JSONObject, _ responder: Responder) throws(ProtocolError) {
        try RequestFields.rejectUnknown(
            in: request,
            allowed: Command.envelope.union(["webhook_id", "event_id", "outcome", "since", "until", "limit", "cursor"]),
            path: "")
        var query = RequestQuery()
        if request["webhook_id"] != nil, request["webhook_id"] != .null {
            query.webhookID = try RequestFields.webhookID(request)
        }
        if let eventID = try RequestFields.optionalString(request, "event_id") {
            guard let canonical = Identifiers.canonicalUUID(eventID) else {
                throw .invalid("event_id", "invalid event ID")
            }
            query.eventID = canonical
        }
        if let outcome = try RequestFields.optionalString(request, "outcome") {
            guard let value = RequestOutcome(rawValue: outcome) else {
                throw .invalid(
                    "outcome",
                    "unknown outcome \"\(outcome)\"; expected one of \(RequestOutcome.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            query.outcome = value
        }
        for key in ["since", "until"] {
            guard let text = try RequestFields.optionalString(request, key) else { continue }
            guard let time = Timestamp(rfc3339: text) else {
                throw .invalid(
                    key, "must be an RFC 3339 date-time in the years 0001 to 9999 UTC, such as 2025-04-23T00:05:18Z")
            }
            if key == "since" { query.since = time } else { query.until = time }
        }
        query.limit =
            try RequestFields.optionalInteger(request, "limit", range: 1...Self.maxListLimit)
            ?? Self.defaultRequestsLimit
        query.cursor = try RequestFields.optionalString(request, "cursor")
        store.listRequests(query) { result in
            if case .failure(StoreFailure.invalidCursor) = result {
                responder.fail(.invalid("cursor", "not a cursor from list_requests"))
                return
            }
            self.complete(responder, result) { page in
                var fields = JSONObject([("requests", .array(page.requests.map(Self.requestItem)))])
                if let next = page.nextCursor { fields["next_cursor"] = .string(next) }
                return fields
            }
        }
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

    /// Answers a store call: its failure as `unavailable`/`internal`, else `fields(value)`.
    private func complete<T>(
        _ responder: Responder, _ result: Result<T, any Error>,
        _ fields: (T) throws(ProtocolError) -> JSONObject
    ) {
        switch result {
        case .failure(let error):
            responder.fail(storeFailure(error))
        case .success(let value):
            do {
                responder.succeed(try fields(value))
            } catch {
                responder.fail(error)
            }
        }
    }

    /// A store failure as the client sees it: the disk's trouble is `unavailable` (try
    /// again later), anything else `internal`. Either way the log has the detail.
    private func storeFailure(_ error: any Error) -> ProtocolError {
        let (log, suppressed) = storeFailures.withLock { $0.occurrence(at: clock.now()) }
        if log {
            logger.error(
                "store call failed", metadata: ["error": "\(error)", "similar_lines_left_out": "\(suppressed)"])
        }
        if let storeError = error as? StoreError, storeError.isResourceFailure {
            return ProtocolError(.unavailable, "storage unavailable: \(storeError.message)")
        }
        return ProtocolError(.internal, "internal error; the daemon's log has the detail")
    }
}

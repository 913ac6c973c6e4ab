import ArgumentParser
import Foundation
import HookgateClient
import HookgateCore

/// An event from a JSON file (`-` for standard input), or built from flags for the status
/// and inbound families' common fields.
struct EventInput: ParsableArguments {
    @Argument(help: "A file holding the event as JSON, or - for standard input.") var file: String?
    @Option(help: "The event type, when the event is given by flags (SMS_STATUS, SMS_INBOUND, ...).")
    var eventType: String?
    @Option(help: "The message id (default: a new UUID).") var messageID: String?
    @Option(help: "The sender.") var sender: String?
    @Option(help: "The recipient.") var recipient: String?
    @Option(help: "The status (status events).") var status: String?
    @Option(help: "message_ref.") var messageRef: String?
    @Option(help: "campaign_id.") var campaignID: String?
    @Option(help: "The event's timestamp (RFC 3339).") var timestamp: String?

    func validate() throws {
        if file != nil, eventType != nil {
            throw ValidationError("give the event as a file or by --event-type and its flags, not both")
        }
        if file == nil, eventType == nil {
            throw ValidationError("give the event as a file (- for standard input) or by --event-type and its flags")
        }
        if let eventType {
            guard let type = EventType(exactly: eventType), type.family == .status || type.family == .inbound else {
                throw ValidationError(
                    "--event-type: flags build status and inbound events only (SMS_STATUS, SMS_INBOUND, ...); give other events as a file"
                )
            }
            guard sender != nil, recipient != nil else {
                throw ValidationError("--sender and --recipient are required with --event-type")
            }
            if type.family == .status, status == nil {
                throw ValidationError("--status is required for a status event")
            }
        }
    }

    func event() throws -> JSON {
        if let file {
            let bytes: Data
            do {
                bytes =
                    file == "-"
                    ? FileHandle.standardInput.readDataToEndOfFile()
                    : try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            do {
                return try JSONParser.parse(Array(bytes))
            } catch {
                throw ValidationError("\(file == "-" ? "standard input" : file): not JSON: \(error)")
            }
        }
        guard let eventType, let type = EventType(exactly: eventType), let channel = type.channel else {
            throw ValidationError("--event-type: not a status or inbound event type")
        }
        var body: JSONObject = [
            "id": .string(messageID ?? UUID().uuidString.lowercased()), "type": .string(channel),
            "sender": .string(sender ?? ""), "recipient": .string(recipient ?? ""),
        ]
        if let status { body["status"] = .string(status) }
        if let messageRef { body["message_ref"] = .string(messageRef) }
        if let campaignID { body["campaign_id"] = .string(campaignID) }
        var event: JSONObject = ["event_type": .string(type.rawValue)]
        if let timestamp { event["timestamp"] = .string(timestamp) }
        event[type.family.bodyKey] = .object(body)
        return .object(event)
    }
}

struct EmitCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit", abstract: "Emit an event; answered once it and its deliveries are stored.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var input: EventInput
    @Option(help: "Repeating a key within 24 hours answers the first event and stores nothing.")
    var idempotencyKey: String?

    func run(client: HookgateClient, output: Output) async throws {
        var request: JSONObject = ["cmd": "emit_event", "event": try input.event()]
        if let idempotencyKey { request["idempotency_key"] = .string(idempotencyKey) }
        let answer = try await client.send(request)
        output.answer(answer) {
            TextTable.fields([
                ("event id", answer["event_id"]?.stringValue ?? ""),
                ("deliveries", answer["deliveries"].map { JSONWriter.string($0) } ?? "0"),
            ])
        }
    }
}

struct MatchCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "match", abstract: "Which webhooks would receive an event, and why the others would not.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var input: EventInput
    @Option(help: "At most this many rejections (default 100).") var limit: Int?

    func run(client: HookgateClient, output: Output) async throws {
        var request: JSONObject = ["cmd": "match_event", "event": try input.event()]
        if let limit { request["limit"] = .integer(limit) }
        let answer = try await client.send(request)
        output.answer(answer) {
            var table = TextTable(["WEBHOOK", "MATCH", "NAME OR REASON"])
            for match in answer["matches"]?.arrayValue ?? [] {
                table.add([match["webhook_id"]?.stringValue ?? "", "yes", match["name"]?.stringValue ?? ""])
            }
            for rejection in answer["rejections"]?.arrayValue ?? [] {
                table.add([rejection["webhook_id"]?.stringValue ?? "", "no", rejection["reason"]?.stringValue ?? ""])
            }
            return table
        }
    }
}

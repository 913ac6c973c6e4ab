import ArgumentParser
import HookgateClient
import HookgateCore

struct RequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests", abstract: "The log of delivery attempts.",
        subcommands: [ListRequests.self, TailRequests.self])
}

extension Output {
    static let requestHeader = [
        "AT", "OUTCOME", "HTTP", "ERROR", "ATTEMPT", "LATENCY", "EVENT TYPE", "WEBHOOK", "EVENT",
    ]

    func requestRow(_ item: RequestItem) -> [String] {
        [
            time(item.at), item.outcome, item.httpStatus.map(String.init) ?? "-", item.errorClass ?? "-",
            String(item.attempt), item.latencyMilliseconds.map { "\(Int($0.rounded()))ms" } ?? "-", item.eventType,
            item.webhookID, item.eventID,
        ]
    }
}

struct ListRequests: ClientCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Delivery attempts, newest first.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only this webhook's.") var webhookID: String?
    @Option(help: "Only this event's.") var eventID: String?
    @Option(help: "delivered, retrying, failed or cancelled.") var outcome: String?
    @Option(help: "At or after this time (RFC 3339).") var since: String?
    @Option(help: "Before this time (RFC 3339).") var until: String?
    @Option(help: "At most this many (default 50, max 1000).") var limit: Int?
    @Option(help: "The next page, from an answer's next_cursor.") var cursor: String?

    func run(client: HookgateClient, output: Output) async throws {
        let query = HookgateClient.RequestQuery(
            webhookID: webhookID, eventID: eventID, outcome: outcome, since: since, until: until, limit: limit,
            cursor: cursor)
        let answer = try await client.send(query.request)
        let items = answer["requests"]?.arrayValue?.compactMap(\.objectValue) ?? []
        let parsed = try items.map { try RequestItem(json: $0) }
        output.items(items) {
            var table = TextTable(Output.requestHeader)
            for item in parsed { table.add(output.requestRow(item)) }
            return table
        }
        if output.format == .table, let next = answer["next_cursor"]?.stringValue {
            output.line("more: --cursor \(next)")
        }
    }
}

struct TailRequests: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail", abstract: "Follow delivery attempts as they finish, until Ctrl-C.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Only this webhook's.") var webhookID: String?

    func run(client: HookgateClient, output: Output) async throws {
        var request: JSONObject = ["cmd": "tail_requests"]
        if let webhookID { request["webhook_id"] = .string(webhookID) }
        if output.format == .table { output.line(Output.requestHeader.joined(separator: "  ")) }
        for try await line in client.stream(request) {
            switch output.format {
            case .json: output.line(JSONWriter.string(.object(line)))
            case .table:
                // Times are "just now" as they arrive: the clock time says more here.
                var row = output.requestRow(try RequestItem(json: line))
                row[0] = line["at"]?.stringValue ?? row[0]
                output.line(row.joined(separator: "  "))
            }
        }
    }
}

struct RedeliverCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "redeliver", abstract: "Send an event to a webhook again, as a new series of attempts.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The event's id.") var eventID: String
    @Argument(help: "The webhook's id.") var webhookID: String

    func run(client: HookgateClient, output: Output) async throws {
        let answer = try await client.send([
            "cmd": "redeliver", "event_id": .string(eventID), "webhook_id": .string(webhookID),
        ])
        output.answer(answer) {
            TextTable.fields([("delivery id", answer["delivery_id"].map { JSONWriter.string($0) } ?? "")])
        }
    }
}

struct RecoverCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover", abstract: "Send again every delivery of a webhook that failed for good in a window.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The webhook's id.") var webhookID: String
    @Option(help: "From this time (RFC 3339).") var since: String
    @Option(help: "Until this time (RFC 3339; default now).") var until: String?

    func run(client: HookgateClient, output: Output) async throws {
        var request: JSONObject = ["cmd": "recover", "webhook_id": .string(webhookID), "since": .string(since)]
        if let until { request["until"] = .string(until) }
        let answer = try await client.send(request)
        output.answer(answer) {
            TextTable.fields([("recovering", answer["recovering"].map { JSONWriter.string($0) } ?? "0")])
        }
    }
}

import ArgumentParser
import HookgateClient
import HookgateCore

struct PingCommand: ClientCommand {
    static let configuration = CommandConfiguration(commandName: "ping", abstract: "Check that the daemon answers.")
    @OptionGroup var options: ClientOptions

    func run(client: HookgateClient, output: Output) async throws {
        let answer = try await client.send(["cmd": "ping"])
        output.answer(answer) {
            TextTable.fields([
                ("version", answer["version"]?.stringValue ?? ""),
                ("uptime", answer["uptime_s"].map { JSONWriter.string($0) + "s" } ?? ""),
            ])
        }
    }
}

struct StatsCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Events accepted, deliveries by state, queue depths.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "One webhook's figures only.") var webhookID: String?

    func run(client: HookgateClient, output: Output) async throws {
        var request: JSONObject = ["cmd": "stats"]
        if let webhookID { request["webhook_id"] = .string(webhookID) }
        let answer = try await client.send(request)
        output.answer(answer) {
            var rows: [(String, String)] = []
            for (key, value) in answer where key != "ok" && key != "id" {
                if let object = value.objectValue {
                    for (inner, count) in object { rows.append(("\(key).\(inner)", JSONWriter.string(count))) }
                } else {
                    rows.append((key, value.stringValue ?? JSONWriter.string(value)))
                }
            }
            return TextTable.fields(rows)
        }
    }
}

struct HealthCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "The daemon's health checks; exits 1 when it is degraded.",
        discussion: "The exit code suits a container's HEALTHCHECK: 0 ok, 1 degraded, 3 no answer.")
    @OptionGroup var options: ClientOptions

    func run(client: HookgateClient, output: Output) async throws {
        let answer = try await client.send(["cmd": "health"])
        output.answer(answer) {
            var table = TextTable(["CHECK", "OK", "DETAIL"])
            for check in answer["checks"]?.arrayValue ?? [] {
                table.add([
                    check["name"]?.stringValue ?? "", check["ok"]?.boolValue == true ? "yes" : "no",
                    check["detail"]?.stringValue ?? "",
                ])
            }
            table.add([
                "status", answer["status"]?.stringValue == "ok" ? "yes" : "no", answer["status"]?.stringValue ?? "",
            ])
            return table
        }
        if answer["status"]?.stringValue != "ok" { throw ExitCode(1) }
    }
}

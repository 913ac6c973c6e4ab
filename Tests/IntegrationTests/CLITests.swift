import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `hookgate` subcommands against the real daemon: every subcommand in both output
/// formats, and every exit code.
@Suite struct CLITests {
    let sink: Sink
    let daemon: Daemon

    init() throws {
        sink = try Sink()
        daemon = try DeliveryTests.daemon(["--retry-schedule", "1h"])
    }

    func hookgate(_ arguments: [String], stdin: String? = nil) throws -> CLIRun {
        try CLI.run(arguments + ["--socket", daemon.socketPath], stdin: stdin)
    }

    /// Creates a webhook on the sink through the CLI and returns its id and secret.
    func createWebhook(path: String = "/status/204", name: String = "Orders") throws -> (id: String, secret: String) {
        let run = try hookgate([
            "webhooks", "create", "--name", name, "--url", sink.url(path), "--event-type", "SMS_STATUS",
            "--sender", "+61 400 000 009", "-o", "json",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let answer = try run.json
        return (
            try #require(answer[path: "webhook", "id"]?.stringValue),
            try #require(answer[path: "webhook", "secret"]?.stringValue)
        )
    }

    static let emitFlags = [
        "--event-type", "SMS_STATUS", "--sender", "61400000009", "--recipient", "61400000000", "--status", "DELIVERED",
    ]

    @Test func pingAnswersInBothFormats() throws {
        let json = try hookgate(["ping", "-o", "json"])
        #expect(json.status == 0)
        #expect(try json.json["ok"] == true)
        #expect(try json.json["version"] == .string(HookgateVersion.current))
        let table = try hookgate(["ping", "-o", "table"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("version  \(HookgateVersion.current)"))
        // Not a terminal: JSON unless told otherwise.
        #expect(try hookgate(["ping"]).json["ok"] == true)
    }

    @Test func aWebhookIsManagedFromCreationToDeletion() throws {
        let (id, secret) = try createWebhook()
        #expect(secret.hasPrefix("whsec_"))

        let got = try hookgate(["webhooks", "get", id, "-o", "json"])
        #expect(try got.json[path: "webhook", "name"] == "Orders")
        #expect(try got.json[path: "webhook", "secret"] == nil)
        #expect(
            try hookgate(["webhooks", "get", id, "--include-secret"]).json[path: "webhook", "secret"] == .string(secret)
        )
        let gotTable = try hookgate(["webhooks", "get", id, "-o", "table"])
        #expect(gotTable.stdout.contains("name           Orders"))
        #expect(gotTable.stdout.contains("sender         +61 400 000 009"))
        #expect(gotTable.stdout.contains("created        just now") || gotTable.stdout.contains("s ago"))

        _ = try createWebhook(name: "Second")
        let listed = try hookgate(["webhooks", "list", "-o", "json"]).jsonLines
        #expect(listed.map { $0["name"] } == ["Orders", "Second"])
        #expect(listed.allSatisfy { $0["ok"] == nil && $0["secret"] == nil })
        let onePage = try hookgate(["webhooks", "list", "--limit", "1"]).jsonLines
        #expect(onePage.count == 1)
        let listTable = try hookgate(["webhooks", "list", "-o", "table"]).stdout.split(separator: "\n")
        #expect(listTable.count == 3)
        #expect(listTable[0].hasPrefix("ID  "))
        #expect(listTable[0].contains("NAME") && listTable[0].contains("STATE") && listTable[0].contains("URL"))
        // Aligned: every row's second column starts where the header's does.
        let column = try #require(listTable[0].range(of: "NAME")).lowerBound.utf16Offset(in: listTable[0])
        for row in listTable.dropFirst() {
            #expect(row.dropFirst(column).hasPrefix("Orders") || row.dropFirst(column).hasPrefix("Second"))
        }

        // Only the fields given change.
        let updated = try hookgate(["webhooks", "update", id, "--rate-limit", "7", "-o", "json"]).json
        #expect(updated[path: "webhook", "rate_limit"] == 7)
        #expect(updated[path: "webhook", "name"] == "Orders")
        #expect(updated[path: "webhook", "filter", "sender"] == ["+61 400 000 009"])
        let renamed = try hookgate(["webhooks", "update", id, "--name", "Renamed", "--status", "failed", "-o", "table"])
        #expect(renamed.status == 0)
        #expect(
            renamed.stdout.contains("Renamed") && renamed.stdout.contains("7/s") && renamed.stdout.contains("failed"))

        let disabled = try hookgate(["webhooks", "disable", id])
        #expect(try disabled.json[path: "webhook", "state"] == "disabled")
        #expect(try hookgate(["webhooks", "disable", id, "-o", "table"]).stdout.contains("state          disabled"))
        #expect(try hookgate(["webhooks", "enable", id]).json[path: "webhook", "state"] == "active")
        #expect(try hookgate(["webhooks", "enable", id, "-o", "table"]).stdout.contains("state          active"))

        let rotated = try hookgate(["webhooks", "rotate-secret", id]).json
        let newSecret = try #require(rotated[path: "webhook", "secret"]?.stringValue)
        #expect(newSecret != secret && newSecret.hasPrefix("whsec_"))
        #expect(
            try hookgate(["webhooks", "rotate-secret", id, "-o", "table"]).stdout.contains("secret         whsec_"))

        #expect(try hookgate(["webhooks", "delete", id]).json["deleted"] == .string(id))
        let gone = try hookgate(["webhooks", "delete", id, "-o", "table"])
        #expect(gone.status == 1)
        #expect(gone.stderr == "error: not_found: Webhook not found (webhook_id)\n")
    }

    @Test func eventsAreEmittedFromFlagsFilesAndStandardInput() throws {
        let (id, _) = try createWebhook()
        let fromFlags = try hookgate(["emit"] + Self.emitFlags + ["-o", "json"])
        #expect(fromFlags.status == 0, "\(fromFlags.stderr)")
        #expect(try fromFlags.json["deliveries"] == 1)

        let event = JSONWriter.string(statusEvent())
        let directory = try TemporaryDirectory()
        let file = directory.file("event.json")
        try event.write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try hookgate(["emit", file, "--idempotency-key", "k1"])
        #expect(try fromFile.json["deliveries"] == 1)
        let again = try hookgate(["emit", "-", "--idempotency-key", "k1"], stdin: event)
        #expect(try again.json["event_id"] == fromFile.json["event_id"])
        let table = try hookgate(["emit", "-", "-o", "table"], stdin: event)
        #expect(table.stdout.contains("deliveries  1"))

        let matched = try hookgate(["match"] + Self.emitFlags)
        #expect(try matched.json["matches"] == [["webhook_id": .string(id), "name": "Orders"]])
        let rejected = try hookgate(
            ["match", "-", "-o", "table"], stdin: JSONWriter.string(statusEvent(sender: "MyShop")))
        #expect(rejected.stdout.contains("\(id)  no     sender MyShop not in filter.sender"))

        // The daemon's validation error: exit 1, its code, message and field.
        let invalid = try hookgate(["emit", "-"], stdin: #"{"event_type":"SMS_STATUS","status":{}}"#)
        #expect(invalid.status == 1)
        #expect(invalid.stderr.hasPrefix("error: validation: event.status.id"))
        #expect(invalid.stderr.hasSuffix("(event.status.id)\n"))
        // Not JSON, or no event at all: usage errors, nothing sent.
        #expect(try hookgate(["emit", "-"], stdin: "{nope").status == 64)
        #expect(try hookgate(["emit"]).status == 64)
        #expect(try hookgate(["emit", "--event-type", "LINK_HIT", "--sender", "1", "--recipient", "2"]).status == 64)
    }

    @Test func requestsAreListedTailedRedeliveredAndRecovered() throws {
        let (id, _) = try createWebhook()
        let tailOutput = try TemporaryDirectory()
        let tail = try ChildProcess(
            executable: HookgateBinary.path,
            arguments: ["requests", "tail", "--socket", daemon.socketPath, "-o", "json"],
            environment: ChildProcess.cleanEnvironment, outputPath: tailOutput.file("tail"))
        // The stream is open once the daemon counts its subscriber; give it a moment.
        usleep(500_000)
        let eventID = try #require(try hookgate(["emit"] + Self.emitFlags).json["event_id"]?.stringValue)
        try EndpointHealthTests.waitFor("the tail to print the attempt") {
            let text = (try? String(contentsOfFile: tailOutput.file("tail"), encoding: .utf8)) ?? ""
            return text.contains(eventID)
        }
        tail.signal(SIGINT)
        _ = try tail.waitForExit(timeout: 10)
        let streamed = try #require(
            try String(contentsOfFile: tailOutput.file("tail"), encoding: .utf8).split(separator: "\n").first)
        let item = try JSONParser.parse(String(streamed))
        #expect(item["event_id"] == .string(eventID) && item["outcome"] == "delivered")

        let listed = try hookgate(["requests", "list", "--webhook-id", id]).jsonLines
        #expect(listed.count == 1 && listed[0]["event_id"] == .string(eventID))
        let table = try hookgate(["requests", "list", "-o", "table"]).stdout
        #expect(table.hasPrefix("AT "))
        #expect(table.contains("delivered  204"))

        let redelivered = try hookgate(["redeliver", eventID, id])
        #expect(redelivered.status == 0)
        guard case .number(let deliveryID)? = try redelivered.json["delivery_id"] else {
            Issue.record("redeliver: \(redelivered.stdout)")
            return
        }
        #expect(
            try hookgate(["redeliver", eventID, id, "-o", "table"]).stdout.contains(
                "delivery id  \(deliveryID.int64Value.map { $0 + 1 } ?? 0)"))

        let since = Timestamp(microseconds: SystemWallClock().now().microseconds - 3_600_000_000).rfc3339
        let recovered = try hookgate(["recover", id, "--since", since])
        #expect(recovered.status == 0, "\(recovered.stderr)")
        #expect(try recovered.json["recovering"] == 0)
        #expect(try hookgate(["recover", id, "--since", since, "-o", "table"]).stdout.contains("recovering  0"))
        let tooOld = try hookgate(["recover", id, "--since", "2020-01-01T00:00:00Z"])
        #expect(tooOld.status == 1 && tooOld.stderr.hasPrefix("error: validation: since: "))
    }

    @Test func statsAndHealthInBothFormats() throws {
        let (id, _) = try createWebhook()
        let stats = try hookgate(["stats"]).json
        #expect(stats["webhooks"] == 1)
        #expect(stats[path: "deliveries", "pending"] != nil)
        #expect(try hookgate(["stats", id]).json["webhook_id"] == .string(id))
        #expect(try hookgate(["stats", "-o", "table"]).stdout.contains("deliveries.delivered"))

        let health = try hookgate(["health"])
        #expect(health.status == 0)
        #expect(try health.json["status"] == "ok")
        let table = try hookgate(["health", "-o", "table"]).stdout
        #expect(table.hasPrefix("CHECK"))
        #expect(table.contains("store"))
    }

    @Test func theExitCodesSayWhatWentWrong() throws {
        // 3: no daemon at that socket, and the message names the path and the reason.
        let missing = daemon.directory.file("nobody.sock")
        let unreachable = try CLI.run(["ping", "--socket", missing])
        #expect(unreachable.status == 3)
        #expect(unreachable.stderr == "error: cannot connect to \(missing): No such file or directory (errno 2)\n")
        // The socket is found through HOOKGATE_SOCKET as serve finds it.
        let fromEnvironment = try CLI.run(["ping"], environment: ["HOOKGATE_SOCKET": daemon.socketPath])
        #expect(fromEnvironment.status == 0)
        // 64: usage.
        #expect(try hookgate(["webhooks", "create", "--name", "x"]).status == 64)
        #expect(try hookgate(["ping", "-o", "yaml"]).status == 64)
        #expect(try hookgate(["webhooks", "frobnicate"]).status == 64)
        // 1: the daemon's error answer.
        let refused = try hookgate(["webhooks", "create", "--name", "x", "--url", "ftp://nowhere"])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("error: validation: name"))
        #expect(refused.stdout.isEmpty)
        // Completion scripts name the subcommands.
        for shell in ["bash", "zsh"] {
            let script = try CLI.run(["--generate-completion-script", shell])
            #expect(script.status == 0)
            #expect(script.stdout.contains("rotate-secret") && script.stdout.contains("receive"))
        }
        // 0, and --version at the root.
        let version = try CLI.run(["--version"])
        #expect(version.status == 0 && version.stdout == HookgateVersion.current + "\n")
    }
}

import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ConnectionTests {
    /// 1,000 requests written at once, mixing commands answered at once (ping, errors)
    /// with ones that wait for the store: the answers come back in request order.
    @Test func thousandPipelinedRequestsAnsweredInOrder() throws {
        let daemon = try Daemon()
        let client = try daemon.client()
        var batch: [UInt8] = []
        for i in 0..<1000 {
            let request: JSON
            switch i % 4 {
            case 0: request = createRequest(name: "pipelined \(i)", extra: ["id": .integer(i)])
            case 1: request = ["cmd": "ping", "id": .integer(i)]
            case 2: request = ["cmd": "list_webhooks", "limit": 1, "id": .integer(i)]
            default: request = ["cmd": "get_webhook", "webhook_id": "nope", "id": .integer(i)]
            }
            batch += JSONWriter.bytes(request) + [0x0A]
        }
        try client.send(bytes: batch)
        for i in 0..<1000 {
            let response = try client.readResponse()
            #expect(response["id"] == .integer(i), "response \(i) out of order: \(response)")
            switch i % 4 {
            case 3: #expect(response.errorField == "webhook_id")
            default: #expect(response.isOK, "\(response)")
            }
        }
        let all = try client.request(["cmd": "list_webhooks", "limit": 1000])
        #expect(all["webhooks"]?.arrayValue?.count == 250)
    }

    /// 20 clients at once, each creating and reading its own webhooks.
    @Test func twentyClientsAtOnce() async throws {
        let daemon = try Daemon()
        let socketPath = daemon.socketPath
        let created = try await withThrowingTaskGroup(of: [String].self) { group in
            for clientIndex in 0..<20 {
                group.addTask {
                    let client = try ControlClient(path: socketPath)
                    var ids: [String] = []
                    for i in 0..<10 {
                        let response = try client.request(createRequest(name: "client \(clientIndex) hook \(i)"))
                        guard let id = response[path: "webhook", "id"]?.stringValue else {
                            throw TestFailure("create failed: \(response)")
                        }
                        ids.append(id)
                    }
                    for id in ids {
                        let fetched = try client.request(["cmd": "get_webhook", "webhook_id": .string(id)])
                        guard fetched[path: "webhook", "name"]?.stringValue?.hasPrefix("client \(clientIndex) ") == true
                        else { throw TestFailure("client \(clientIndex) read \(fetched)") }
                    }
                    return ids
                }
            }
            var all: [String] = []
            for try await ids in group { all += ids }
            return all
        }
        #expect(Set(created).count == 200)
        let list = try daemon.client().request(["cmd": "list_webhooks", "limit": 1000])
        #expect(Set(list["webhooks"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []) == Set(created))
    }

    @Test func registrySurvivesRestartAndKill9() throws {
        let directory = try TemporaryDirectory()
        var daemon: Daemon? = try Daemon(directory: directory)
        let first = try daemon!.client().request(createRequest(name: "before restart"))
        let firstID = try #require(first[path: "webhook", "id"]?.stringValue)
        let firstSecret = try #require(first[path: "webhook", "secret"]?.stringValue)
        #expect(try daemon!.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon!.socketPath), "a bound socket is removed on exit")

        daemon = try Daemon(directory: directory)
        let afterRestart = try daemon!.client().request([
            "cmd": "get_webhook", "webhook_id": .string(firstID), "include_secret": true,
        ])
        #expect(afterRestart[path: "webhook", "name"] == "before restart")
        #expect(afterRestart[path: "webhook", "secret"] == .string(firstSecret))

        // Acknowledged writes survive SIGKILL; the stale socket file is replaced on restart.
        let client = try daemon!.client()
        let second = try client.request(createRequest(name: "before kill"))
        let secondID = try #require(second[path: "webhook", "id"]?.stringValue)
        let renamed = try client.request([
            "cmd": "update_webhook", "webhook_id": .string(firstID), "name": "renamed before kill",
            "url": "https://example.com/renamed", "filter": ["event_type": ["OPT_OUT"]],
        ])
        #expect(renamed.isOK)
        try daemon!.kill9()
        #expect(FileManager.default.fileExists(atPath: daemon!.socketPath), "SIGKILL leaves the socket file")

        daemon = try Daemon(directory: directory)
        let list = try daemon!.client().request(["cmd": "list_webhooks"])
        let webhooks = try #require(list["webhooks"]?.arrayValue)
        #expect(webhooks.map { $0["id"]?.stringValue } == [firstID, secondID])
        #expect(webhooks.first?["name"] == "renamed before kill")
        #expect(webhooks.first?[path: "filter", "event_type"] == ["OPT_OUT"])
        #expect(try daemon!.stop() == 0)
    }

    @Test func liveSocketIsNotTakenOver() throws {
        let daemon = try Daemon()
        let second = try Daemon(
            arguments: ["--data-dir", daemon.directory.file("other-data")], directory: daemon.directory,
            waitUntilReady: false)
        let status = try second.waitForExit(timeout: 20)
        #expect(status != 0)
        #expect(second.log.contains("already listening"), "\(second.log)")
        #expect(try daemon.client().request(["cmd": "ping"]).isOK, "the first daemon still serves")
    }

    @Test func nonSocketFileIsNotReplaced() throws {
        let directory = try TemporaryDirectory()
        _ = FileManager.default.createFile(atPath: directory.file("hookgate.sock"), contents: Data("keep".utf8))
        let daemon = try Daemon(directory: directory, waitUntilReady: false)
        #expect(try daemon.waitForExit(timeout: 20) != 0)
        #expect(try String(contentsOfFile: directory.file("hookgate.sock"), encoding: .utf8) == "keep")
    }

    @Test(arguments: [(nil, 0o600), ("0660", 0o660)] as [(String?, Int)])
    func socketFileMode(flag: String?, expected: Int) throws {
        let daemon = try Daemon(arguments: flag.map { ["--socket-mode", $0] } ?? [])
        var info = stat()
        #expect(lstat(daemon.socketPath, &info) == 0)
        #expect(Int(info.st_mode & 0o777) == expected)
    }

    @Test func helpDocumentsEveryFlagAndItsVariable() throws {
        let directory = try TemporaryDirectory()
        let help = try ChildProcess(
            // The daemon's flags are serve's; `hookgate --help` lists the subcommands.
            executable: HookgateBinary.path, arguments: ["serve", "--help"], environment: ChildProcess.cleanEnvironment,
            outputPath: directory.file("help.txt"))
        #expect(try help.waitForExit(timeout: 20) == 0)
        let output = try String(contentsOfFile: directory.file("help.txt"), encoding: .utf8)
        for flag in [
            "socket", "socket-mode", "data-dir", "max-line-bytes", "max-event-bytes", "shards", "allow-http", "sync",
            "shutdown-grace", "log-level", "workers", "connect-timeout", "request-timeout", "ca-file",
            "allow-destination", "retry-schedule", "default-rate-limit", "max-in-flight-per-webhook", "log-retention",
            "log-max-rows",
        ] {
            #expect(output.contains("--\(flag)"), "help lists --\(flag)")
            let variable = "HOOKGATE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
            #expect(output.contains(variable), "help names \(variable)")
        }
    }
}

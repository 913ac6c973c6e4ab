import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `hookgate receive` as a developer runs it: real deliveries from the daemon, signed,
/// verified through a secret rotation; a tampered body and an old timestamp refused.
@Suite struct ReceiveCommandTests {
    /// A running `hookgate receive` and the JSON lines it printed.
    final class Receiver {
        let port: Int
        let directory: TemporaryDirectory
        private let child: ChildProcess

        init(port: Int, secrets: [String], status: Int = 204) throws {
            self.port = port
            directory = try TemporaryDirectory()
            child = try ChildProcess(
                executable: HookgateBinary.path,
                arguments: ["receive", "--listen", "127.0.0.1:\(port)", "-o", "json", "--status", String(status)]
                    + secrets.flatMap { ["--secret", $0] },
                environment: ChildProcess.cleanEnvironment, outputPath: directory.file("out"))
            try EndpointHealthTests.waitFor("the receiver to listen") { self.output.contains("listening on") }
        }

        var output: String { (try? String(contentsOfFile: directory.file("out"), encoding: .utf8)) ?? "" }

        var deliveries: [JSON] {
            output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap { try? JSONParser.parse(String($0)) }
        }

        func waitForDeliveries(_ count: Int) throws -> [JSON] {
            try EndpointHealthTests.waitFor("\(count) deliveries at the receiver") { self.deliveries.count >= count }
            return deliveries
        }

        func stop() throws {
            child.signal(SIGTERM)
            _ = try child.waitForExit(timeout: 10)
        }
    }

    @Test func deliveriesVerifyThroughARotationAndForgeriesAreRefused() throws {
        let daemon = try Daemon(arguments: ["--allow-http", "--allow-destination", "127.0.0.1/32"])
        let admin = try daemon.client()
        let port = try HTTPGet.freePort()
        let (id, secret) = try DeliveryTests.webhook(admin, url: "http://127.0.0.1:\(port)/hook", name: "Local")

        var receiver = try Receiver(port: port, secrets: [secret])
        let first = try #require(try admin.request(emit(statusEvent()))["event_id"]?.stringValue)
        let seen = try receiver.waitForDeliveries(1)[0]
        #expect(seen["verified"] == true && seen["status"] == 204)
        #expect(seen["event_type"] == "SMS_STATUS" && seen["webhook_id"] == .string(id))
        #expect(seen["webhook_name"] == "Local" && seen["message_id"] == .string("msg_\(first)_\(id)"))
        #expect(seen[path: "body", "status", "status"] == "DELIVERED")
        try receiver.stop()

        // After a rotation both secrets sign: a receiver that knows only the new one verifies.
        let rotated = try admin.request(["cmd": "rotate_secret", "webhook_id": .string(id)])
        let newSecret = try #require(rotated[path: "webhook", "secret"]?.stringValue)
        receiver = try Receiver(port: port, secrets: [newSecret])
        _ = try admin.request(emit(statusEvent()))
        #expect(try receiver.waitForDeliveries(1)[0]["verified"] == true)
        try EndpointHealthTests.waitFor("both attempts to be logged as delivered") {
            let logged = try admin.request(["cmd": "list_requests", "webhook_id": .string(id)])
            return logged["requests"]?.arrayValue?.filter { $0["outcome"] == "delivered" }.count == 2
        }

        // Forgeries: signed right but tampered with, or signed right but too old.
        let body = Array(#"{"event_type":"SMS_STATUS","webhook_id":"x"}"#.utf8)
        let now = SystemWallClock().now().seconds
        func post(_ body: [UInt8], signedAs signedBody: [UInt8], at timestamp: Int64) throws -> HTTPResponse {
            let signature = WebhookSigner.signatureHeader(
                messageID: "msg_forged", timestamp: timestamp, body: signedBody, secrets: [newSecret])
            return try HTTPGet.request(
                "POST", port: port, path: "/hook",
                headers: [
                    ("Content-Type", "application/json"), ("webhook-id", "msg_forged"),
                    ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature),
                ], body: body)
        }
        #expect(try post(body, signedAs: body, at: now).status == 204)
        var tampered = body
        tampered[tampered.count - 3] = UInt8(ascii: "y")
        #expect(try post(tampered, signedAs: body, at: now).status == 401)
        #expect(try post(body, signedAs: body, at: now - 600).status == 401)
        let lines = try receiver.waitForDeliveries(4)
        #expect(lines[1]["verified"] == true)
        #expect(lines[2]["verified"] == false && lines[2]["verification"] == "no signature matches")
        #expect(lines[3]["verified"] == false)
        #expect(lines[3]["verification"]?.stringValue?.hasPrefix("timestamp 60") == true)
        try receiver.stop()
    }

    @Test func theTableShowsTheDeliveryAndItsBodyPrettyPrinted() throws {
        let port = try HTTPGet.freePort()
        let directory = try TemporaryDirectory()
        let child = try ChildProcess(
            executable: HookgateBinary.path,
            arguments: ["receive", "--listen", "127.0.0.1:\(port)", "-o", "table", "--status", "202"],
            environment: ChildProcess.cleanEnvironment, outputPath: directory.file("out"))
        let output = { (try? String(contentsOfFile: directory.file("out"), encoding: .utf8)) ?? "" }
        try EndpointHealthTests.waitFor("the receiver to listen") { output().contains("listening on") }
        let body = Array(
            #"{"event_type":"OPT_OUT","webhook_id":"w1","webhook_name":"Opt-outs","opt_out":{"source":"SMS"}}"#.utf8)
        #expect(try HTTPGet.request("POST", port: port, path: "/hook", body: body).status == 202)
        try EndpointHealthTests.waitFor("the delivery to be printed") { output().contains("\"source\": \"SMS\"") }
        #expect(output().contains("OPT_OUT  webhook \"Opt-outs\" (w1)  signature not checked (no --secret)  → 202"))
        #expect(output().contains("{\n  \"event_type\": \"OPT_OUT\",\n"))
        child.signal(SIGTERM)
        _ = try child.waitForExit(timeout: 10)
        // Bad flags are usage errors.
        #expect(try CLI.run(["receive", "--secret", "nope"]).status == 64)
        #expect(try CLI.run(["receive", "--listen", "nowhere"]).status == 64)
    }
}

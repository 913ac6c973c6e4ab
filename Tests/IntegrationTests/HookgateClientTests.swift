import Foundation
import HookgateClient
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `HookgateClient` against the real daemon: pipelining, reconnection, timeouts, typed
/// calls and errors, and a tail stream that closes its connection when cancelled.
@Suite struct HookgateClientTests {
    static let orders = WebhookDefinition(
        name: "Orders", url: "https://example.com/hook", filter: WebhookFilter(eventType: [.smsStatus]))

    static func event(sender: String = "61400000009") -> JSON { statusEvent(sender: sender) }

    /// Waits for `check` without holding a thread: these tests' own tasks (a stream being
    /// opened) need the few threads Swift concurrency has.
    static func eventually(_ what: String, timeout: Duration = .seconds(30), _ check: () throws -> Bool)
        async throws
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try check() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("\(what) did not happen within \(timeout)")
    }

    @Test func callsFromManyTasksShareOneConnectionAndEachGetsItsOwnAnswer() async throws {
        let daemon = try Daemon()
        let client = HookgateClient(socketPath: daemon.socketPath)
        let webhook = try await client.createWebhook(Self.orders)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<300 {
                group.addTask {
                    if i % 3 == 0 {
                        let answer = try await client.send(["cmd": "ping", "id": .integer(i)])
                        #expect(answer["id"] == .integer(i))
                    } else if i % 3 == 1 {
                        let emitted = try await client.emit(Self.event(), idempotencyKey: "key-\(i)")
                        #expect(emitted.deliveries == 1)
                        // The same key answers the same event: this answer is this call's own.
                        #expect(try await client.emit(Self.event(), idempotencyKey: "key-\(i)") == emitted)
                    } else {
                        #expect(try await client.getWebhook(id: webhook.id).definition == Self.orders)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await client.connectionsOpened == 1)
        #expect(try await client.stats().eventsAccepted == 100)
    }

    @Test func aPipelinedCreateThenEmitSeesTheWebhook() async throws {
        let daemon = try Daemon()
        let client = HookgateClient(socketPath: daemon.socketPath)
        let create: JSONObject = [
            "cmd": "create_webhook", "name": "Orders", "url": "https://example.com/hook",
            "filter": ["event_type": ["SMS_STATUS"]],
        ]
        let answers = try await client.pipeline([
            create, ["cmd": "emit_event", "event": Self.event()], ["cmd": "nope"],
        ])
        #expect(answers.count == 3)
        #expect(try answers[0].get()["webhook"] != nil)
        #expect(try answers[1].get()["deliveries"] == 1)
        #expect(throws: HookgateClientError.self) { try answers[2].get() }
        if case .failure(let error) = answers[2] { #expect(error.errorCode == .unknownCommand) }
    }

    @Test func theClientReconnectsOnceTheDaemonIsBack() async throws {
        let directory = try TemporaryDirectory()
        var daemon = try Daemon(directory: directory)
        let client = HookgateClient(socketPath: daemon.socketPath)
        let webhook = try await client.createWebhook(Self.orders)
        try daemon.stop()
        // Down: a call says it cannot connect, and to what.
        await #expect(throws: HookgateClientError.cannotConnect(socketPath: daemon.socketPath, reason: "")) {
            do { _ = try await client.ping() } catch HookgateClientError.cannotConnect(let path, _) {
                throw HookgateClientError.cannotConnect(socketPath: path, reason: "")
            }
        }
        daemon = try Daemon(directory: directory)
        #expect(try await client.getWebhook(id: webhook.id).id == webhook.id)
        #expect(await client.connectionsOpened == 2)
        try daemon.kill9()
        daemon = try Daemon(directory: directory)
        #expect(try await client.ping().version == HookgateVersion.current)
        #expect(await client.connectionsOpened == 3)
    }

    @Test func aCallWithNoAnswerTimesOut() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("silent.sock")
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        let address = try #require(UnixSocketAddress(path: path))
        #expect(address.withSockaddr { bind(listener, $0, $1) } == 0)
        #expect(listen(listener, 8) == 0)
        let client = HookgateClient(socketPath: path, timeout: .milliseconds(200))
        await #expect(throws: HookgateClientError.timedOut(seconds: 0.2)) { _ = try await client.ping() }
    }

    @Test func typedCallsCoverEveryCommandAndErrorsCarryCodeMessageAndField() async throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--retry-schedule", "1h"])
        let client = HookgateClient(socketPath: daemon.socketPath)
        #expect(try await client.ping().version == HookgateVersion.current)
        var definition = Self.orders
        definition.url = sink.url("/status/204")
        let created = try await client.createWebhook(definition)
        #expect(created.secret?.hasPrefix("whsec_") == true && created.state == .active)
        #expect(try await client.getWebhook(id: created.id).secret == nil)
        #expect(try await client.getWebhook(id: created.id, includeSecret: true).secret == created.secret)
        #expect(try await client.listWebhooks().items.map(\.id) == [created.id])
        definition.rateLimit = 9
        #expect(try await client.updateWebhook(id: created.id, definition).definition.rateLimit == 9)
        #expect(try await client.disableWebhook(id: created.id).state == .disabled)
        #expect(try await client.enableWebhook(id: created.id).state == .active)
        #expect(try await client.rotateSecret(id: created.id).secret != created.secret)

        #expect(try await client.match(Self.event()).matches == [.init(webhookID: created.id, name: "Orders")])
        let rejected = try await client.match(Self.event(sender: "MyShop"))
        #expect(rejected.rejectionsTotal == 0 && rejected.matches.count == 1)
        let emitted = try await client.emit(Self.event())
        try await Self.eventually("the attempt to be logged") { sink.requests.count == 1 }
        var page = try await client.listRequests(.init(webhookID: created.id))
        for _ in 0..<100 where page.items.isEmpty {
            usleep(50_000)
            page = try await client.listRequests(.init(webhookID: created.id))
        }
        let item = try #require(page.items.first)
        #expect(item.eventID == emitted.eventID && item.outcome == "delivered" && item.httpStatus == 204)
        #expect(try await client.redeliver(eventID: emitted.eventID, webhookID: created.id) > 0)
        let since = Timestamp(microseconds: SystemWallClock().now().microseconds - 60_000_000).rfc3339
        #expect(try await client.recover(webhookID: created.id, since: since) == 0)
        #expect(try await client.stats(webhookID: created.id).webhooks == 1)
        #expect(try await client.health().checks.map(\.name) == ["store", "delivery", "disk", "backlog"])
        #expect(try await client.deleteWebhook(id: created.id) == created.id)

        await #expect(
            throws: HookgateClientError.server(
                code: "not_found", message: "Webhook not found", field: "webhook_id")
        ) { _ = try await client.getWebhook(id: created.id) }
        do {
            _ = try await client.createWebhook(WebhookDefinition(name: "x", url: "ftp://no", filter: WebhookFilter()))
            Issue.record("a one-letter name was accepted")
        } catch let error as HookgateClientError {
            #expect(error.errorCode == .validation)
            guard case .server(_, let message, let field) = error else { throw error }
            #expect(field == "name" && message.hasPrefix("name: "))
        }
    }

    @Test func aTailStreamSeesAttemptsAndClosesItsConnectionWhenCancelled() async throws {
        let sink = try Sink()
        let port = try HTTPGet.freePort()
        let daemon = try DeliveryTests.daemon(["--metrics-listen", "127.0.0.1:\(port)"])
        try HTTPGet.waitUntilListening(port: port)
        let client = HookgateClient(socketPath: daemon.socketPath)
        var definition = Self.orders
        definition.url = sink.url("/status/204")
        let webhook = try await client.createWebhook(definition)

        func subscribers() throws -> Double? {
            Exposition(try HTTPGet.request(port: port, path: "/metrics").body)["hookgate_tail_subscribers"]
        }
        let firstItem = Task { () throws -> RequestItem? in
            for try await item in client.tailRequests(webhookID: webhook.id) { return item }
            return nil
        }
        try await Self.eventually("the stream to open") { try subscribers() == 1 }
        let emitted = try await client.emit(Self.event())
        let item = try #require(try await firstItem.value)
        #expect(item.eventID == emitted.eventID && item.webhookID == webhook.id)
        // Leaving the loop ended the stream, and with it the connection.
        try await Self.eventually("the first stream to close") { try subscribers() == 0 }

        // A consumer cancelled while it waits: its loop ends and the connection closes.
        let waiting = Task { () throws -> Int in
            var count = 0
            for try await _ in client.tailRequests() { count += 1 }
            return count
        }
        try await Self.eventually("the second stream to open") { try subscribers() == 1 }
        waiting.cancel()
        _ = try? await waiting.value
        try await Self.eventually("the cancelled stream to close") { try subscribers() == 0 }
        // The shared connection was not involved.
        #expect(await client.connectionsOpened == 1)
    }

    @Test func aTailConsumerThatFallsBehindStopsTheReadingAndGetsTheDaemonsOverflow() async throws {
        let sink = try Sink()
        let port = try HTTPGet.freePort()
        let daemon = try DeliveryTests.daemon(["--metrics-listen", "127.0.0.1:\(port)"])
        try HTTPGet.waitUntilListening(port: port)
        let client = HookgateClient(socketPath: daemon.socketPath)
        var definition = Self.orders
        definition.url = sink.url("/status/204")
        definition.rateLimit = 10_000
        _ = try await client.createWebhook(definition)
        let stream = client.tailRequests()
        try await Self.eventually("the stream to open") {
            Exposition(try HTTPGet.request(port: port, path: "/metrics").body)["hookgate_tail_subscribers"] == 1
        }
        // Far more attempts than the daemon holds for one subscriber (4 MiB) and the
        // client buffers (1,024 lines), while nobody reads the stream.
        let events = 15_000
        for _ in 0..<(events / 1000) {
            let answers = try await client.pipeline(
                Array(repeating: ["cmd": "emit_event", "event": Self.event()], count: 1000))
            #expect(answers.allSatisfy { (try? $0.get()) != nil })
        }
        var delivered = 0
        for _ in 0..<1200 where delivered < events {
            delivered = try await client.stats().deliveries["delivered"] ?? 0
            if delivered < events { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(delivered == events)
        var seen = 0
        do {
            // Every attempt arriving would mean the client read on while nobody consumed.
            for try await _ in stream {
                seen += 1
                if seen == events { break }
            }
            Issue.record("no overflow: the stream gave \(seen) items")
        } catch let error as HookgateClientError {
            #expect(error.errorCode == .unavailable, "\(error)")
        }
        #expect(seen < events)
    }

    @Test func aStreamingCommandIsRefusedOnTheSharedConnection() async throws {
        let daemon = try Daemon()
        let client = HookgateClient(socketPath: daemon.socketPath)
        await #expect(throws: HookgateClientError.streamingCommand("tail_requests")) {
            _ = try await client.send(["cmd": "tail_requests"])
        }
        await #expect(throws: HookgateClientError.streamingCommand("tail_requests")) {
            _ = try await client.pipeline([["cmd": "ping"], ["cmd": "tail_requests"]])
        }
        #expect(try await client.ping().version == HookgateVersion.current)
    }
}

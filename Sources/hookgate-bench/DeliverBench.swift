import Foundation
import HookgateCore
import HookgateDelivery
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// deliver: the real daemon POSTing to a loopback nginx sink (keep-alive, `return 204`),
/// against two ceilings measured in the same run with the same body and connections: a
/// bare libcurl multi loop (contrib/bench/curl-loop.c, the transport's) and wrk (the
/// machine's). Then hookgate, a fresh daemon for each figure, all at `--sync full` unless
/// said otherwise:
///
/// 1. the delivery path alone: a backlog stored first, then delivered with nothing else
///    to do (scan, sign, send, record), against curl-loop;
/// 2. emit and delivery together: from the first emit until the last is delivered
///    (`--sync full` and `normal`), against curl-loop;
/// 3. ingest with 10-way fan-out while the engine delivers what it stores;
/// 4. ingest with one match per event while the engine delivers;
/// 5. the rate one webhook is held to at 10, 1,000 and 10,000 per second, and the latency
///    from `emit_event` to the sink's receipt at a moderate load.
///
/// A table of every figure beside its target closes the run (the benchmark asserts none).
struct DeliverBench {
    /// Where run.sh put the sink and the ceilings' tools.
    var sinkPort: Int
    /// nginx's log of requests under /timed/: "<unix time in ms> <webhook-id>" a line.
    var timedLog: String
    var curlLoop: String
    var wrkScript: String
    var binary: String
    var connections: Int
    var deliveries: Int
    var workDirectory: String

    /// Webhooks sharing the throughput run: every event matches one of them, and
    /// together they may use `connections` at once.
    static let webhooks = 8

    /// Webhooks each event matches in the fan-out ingest run.
    static let fanOut = 10

    /// Events per ingest run: half the deliveries of the other runs (the fan-out run
    /// stores ten per event), and enough to last a few seconds at the targets.
    var ingestEvents: Int { max(deliveries / 2, 20_000) }

    var sinkURL: String { "http://127.0.0.1:\(sinkPort)/hook" }

    func run() throws {
        print("")
        print("delivery: \(binary) to nginx on 127.0.0.1:\(sinkPort) (keep-alive, return 204)")
        let bodyFile = workDirectory + "/body.json"
        let body = JSONWriter.bytes(Self.deliveredBody(Self.event(sender: Population.phone(0))))
        try Data(body).write(to: URL(fileURLWithPath: bodyFile))
        print("  body \(body.count) bytes, \(connections) connections")

        let wrk = try Self.figure(
            of: "/usr/bin/env",
            ["wrk", "-t", "2", "-c", String(connections), "-d", "10s", "-s", wrkScript, sinkURL],
            environment: ["WRK_BODY_FILE": bodyFile], line: "wrk-post:")
        print("  wrk (the machine's ceiling):          \(wrk.line)")
        let curl = try Self.figure(
            of: curlLoop,
            [
                "--url", sinkURL, "--body-file", bodyFile, "--connections", String(connections), "--requests",
                String(max(deliveries, 100_000)),
            ], line: "curl-loop:")
        print("  curl-loop (the transport's ceiling):  \(curl.line)")
        let alone = try transportAlone(body: body, requests: max(deliveries, 100_000))
        print(
            String(
                format:
                    "  hookgate's transport alone (CurlTransport, 2 workers, no engine, no store): %.0f req/s = %.2f × curl-loop",
                alone, alone / curl.rate))

        var summary = [
            SummaryRow(what: "wrk (the machine's ceiling)", measured: String(format: "%.0f req/s", wrk.rate)),
            SummaryRow(what: "curl-loop (the transport's ceiling)", measured: String(format: "%.0f req/s", curl.rate)),
            SummaryRow(
                what: "transport alone (CurlTransport, no engine, no store)",
                measured: String(format: "%.0f req/s = %.2f × curl-loop", alone, alone / curl.rate)),
        ]

        let backlog = try backlogDelivery()
        print(
            String(
                format:
                    "  hookgate, delivery path alone (backlog stored, --sync full): %8.0f deliveries/s = %.2f × curl-loop (target ≥ 0.7 × curl-loop)",
                backlog, backlog / curl.rate))
        summary.append(
            SummaryRow(
                what: "1. delivery path alone (backlog stored)",
                measured: String(format: "%.0f deliveries/s = %.2f × curl-loop", backlog, backlog / curl.rate),
                target: ("≥ 0.70 × curl-loop", backlog >= 0.7 * curl.rate)))

        for sync in ["full", "normal"] {
            let rate = try throughput(sync: sync)
            print(
                String(
                    format:
                        "  hookgate --sync %@: %8.0f deliveries/s = %.2f × curl-loop, %.2f × wrk (target ≥ 0.5 × curl-loop)",
                    sync, rate, rate / curl.rate, rate / wrk.rate))
            summary.append(
                SummaryRow(
                    what: "2. emit and delivery together, --sync \(sync)",
                    measured: String(format: "%.0f deliveries/s = %.2f × curl-loop", rate, rate / curl.rate),
                    target: ("≥ 0.50 × curl-loop", rate >= 0.5 * curl.rate)))
        }

        // Ingest with the engine delivering at the daemon's default rate_limit (100 a second
        // per webhook: the target's setting), then with every webhook allowed 10,000 a
        // second, when delivering takes the cores ingest would use.
        for (matches, target) in [(Self.fanOut, 30_000.0), (1, 60_000.0)] {
            for rateLimit in [100, 10_000] {
                let rate = try ingest(matches: matches, events: ingestEvents, rateLimit: rateLimit)
                let what =
                    "\(matches == 1 ? "4. ingest, 1 match" : "3. ingest, \(matches)-way fan-out"), engine delivering"
                    + (rateLimit == 100 ? "" : " flat out")
                print(
                    String(
                        format: "  hookgate %@ (rate_limit %d): %8.0f events/s = %.0f deliveries stored/s",
                        what, rateLimit, rate, rate * Double(matches)))
                summary.append(
                    SummaryRow(
                        what: what,
                        measured: String(
                            format: "%.0f events/s = %.0f deliveries stored/s", rate, rate * Double(matches)),
                        target: rateLimit == 100 ? (String(format: "≥ %.0f events/s", target), rate >= target) : nil))
            }
        }

        let rates = try rateHeld()
        let errors = rates.map { ($0.rate - Double($0.limit)) / Double($0.limit) * 100 }
        summary.append(
            SummaryRow(
                what: "5. rate held, rate_limit " + rates.map { String($0.limit) }.joined(separator: " / "),
                measured: zip(rates, errors).map { String(format: "%.1f (%+.2f%%)", $0.rate, $1) }.joined(
                    separator: " / ") + " per second",
                target: ("±5% each", errors.allSatisfy { abs($0) <= 5 })))
        let receipt = try latency()
        summary.append(
            SummaryRow(
                what: "5. latency, emit_event → sink receipt, \(receipt.rate) events/s",
                measured: String(
                    format: "p50 %.1f ms, p99 %.1f ms, max %.1f ms", receipt.p50, receipt.p99, receipt.max)))
        Self.printSummary(summary)
    }

    /// The libcurl worker pool as the engine drives it (`--workers` 2), kept at
    /// `connections` requests in flight, with the headers hookgate sends: where the
    /// delivery path's time goes, transport or engine and store.
    func transportAlone(body: [UInt8], requests: Int) throws -> Double {
        let transport = try CurlTransport(
            options: DeliveryTransportOptions(
                workers: 2, bundleDirectory: workDirectory, addressGuard: AddressGuard(allowed: [CIDR("127.0.0.0/8")!]),
                allowHTTP: true))
        defer { transport.shutdown() }
        let request = DeliveryRequest(
            tag: 0, url: sinkURL,
            headers: [
                "Content-Type: application/json", "User-Agent: hookgate/\(HookgateVersion.current)",
                "webhook-id: msg_3f2c8a9e-6b1d-4e7a-9c3f-2a8b7d6e5f41_9b7e4c2a-1d3f-4a6b-8e5c-7f2d1a9b3c60",
                "webhook-timestamp: 1745366718", "webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
            ],
            body: body)
        struct Counts {
            var started = 0
            var finished = 0
            var failed = 0
        }
        let counts = Mutex(Counts())
        let done = DispatchSemaphore(value: 0)
        @Sendable func finished(_ response: DeliveryResponse) {
            let (more, last) = counts.withLock { counts -> (Bool, Bool) in
                counts.finished += 1
                if !response.isSuccess { counts.failed += 1 }
                guard counts.started < requests else { return (false, counts.finished == requests) }
                counts.started += 1
                return (true, false)
            }
            if more { transport.send(request, completion: finished) }
            if last { done.signal() }
        }
        let start = monotonicNanoseconds()
        let first = min(connections, requests)
        counts.withLock { $0.started = first }
        transport.send(Array(repeating: request, count: first), completion: finished)
        done.wait()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let failed = counts.withLock { $0.failed }
        if failed > 0 { throw BenchError("\(failed) transport requests failed") }
        return Double(requests) / seconds
    }

    // MARK: - Delivery path alone

    /// Stores a backlog of `deliveries` (each event matches one of 8 webhooks) while every
    /// webhook allows 1 delivery a second, so almost none goes out meanwhile; then raises
    /// each limit to 10,000 with `update_webhook` and times from just before the first
    /// update until `stats` shows all delivered. Nothing else runs meanwhile: the engine's
    /// scan, signing, sending and recording alone, which curl-loop bounds. Deliveries
    /// made before the updates are not counted.
    func backlogDelivery() throws -> Double {
        let daemon = try startDaemon("backlog", sync: "full", webhooks: Self.webhooks)
        defer { daemon.stop() }
        let admin = try SocketConnection(path: daemon.socketPath)
        let senders = (0..<Self.webhooks).map { Population.phone($0) }
        let ids = try senders.enumerated().map { i, sender in
            try create(admin, name: "backlog \(i)", url: sinkURL, rateLimit: 1, sender: sender)
        }
        let lines = (0..<deliveries).map { i in Self.emitLine(sender: senders[i % Self.webhooks]) }
        let (emitSeconds, emitted) = try EmitBench.emitRun(lines, connections: 1, socketPath: daemon.socketPath)
        guard emitted == deliveries else { throw BenchError("\(emitted) deliveries stored, expected \(deliveries)") }
        // The updates go down together (pipelined), so every webhook is lifted at once.
        let updates = ids.enumerated().flatMap { i, id in
            JSONWriter.bytes(
                webhookRequest(
                    updating: id, name: "backlog \(i)", url: sinkURL, rateLimit: 10_000, sender: senders[i]))
                + [0x0A]
        }
        let (deliveredBefore, _) = try delivered(admin, webhookID: nil)
        let start = monotonicNanoseconds()
        try admin.write(updates)
        for _ in ids {
            let answer = try JSONParser.parse(try admin.readLine())
            guard answer["ok"]?.boolValue == true else { throw BenchError("update failed: \(answer)") }
        }
        let done = try waitDelivered(admin, deliveries, webhookID: nil)
        let seconds = Double(done - start) / 1e9
        print(
            String(
                format:
                    "    %d events stored in %.2f s at rate_limit 1 (%d delivered meanwhile); the other %d delivered in %.2f s once lifted to 10000; RSS %.1f MiB",
                deliveries, emitSeconds, deliveredBefore, deliveries - deliveredBefore, seconds, daemon.residentMiB))
        return Double(deliveries - deliveredBefore) / seconds
    }

    // MARK: - Throughput

    /// Emits `deliveries` events (each matches one of 8 webhooks) down one pipelined
    /// connection and times them from the first emit until the last is delivered.
    func throughput(sync: String) throws -> Double {
        let daemon = try startDaemon("throughput-\(sync)", sync: sync, webhooks: Self.webhooks)
        defer { daemon.stop() }
        let admin = try SocketConnection(path: daemon.socketPath)
        for i in 0..<Self.webhooks {
            _ = try create(admin, name: "bench \(i)", url: sinkURL, rateLimit: 10_000, sender: Population.phone(i))
        }
        let lines = (0..<deliveries).map { i in
            Self.emitLine(sender: Population.phone(i % Self.webhooks))
        }
        let start = monotonicNanoseconds()
        let (_, emitted) = try EmitBench.emitRun(lines, connections: 1, socketPath: daemon.socketPath)
        guard emitted == deliveries else { throw BenchError("\(emitted) deliveries stored, expected \(deliveries)") }
        let (deliveredWhileEmitting, emitEnd) = try delivered(admin, webhookID: nil)
        let emitSeconds = Double(emitEnd - start) / 1e9
        let done = try waitDelivered(admin, deliveries, webhookID: nil)
        let seconds = Double(done - start) / 1e9
        // After the emits, the daemon does nothing but deliver: the delivery path alone.
        let rest = Double(deliveries - deliveredWhileEmitting) / (Double(done - emitEnd) / 1e9)
        print(
            String(
                format:
                    "    --sync %@: %d events emitted in %.2f s (%d delivered meanwhile), all delivered in %.2f s; the rest at %.0f deliveries/s; RSS %.1f MiB",
                sync, deliveries, emitSeconds, deliveredWhileEmitting, seconds, rest, daemon.residentMiB))
        return Double(deliveries) / seconds
    }

    // MARK: - Ingest while delivering

    /// `matches` webhooks at the sink, all filtered on the same sender and allowing
    /// `rateLimit` a second each, so every event stores `matches` deliveries and the engine
    /// sends them while the events come in. `events` emitted down one pipelined
    /// connection, timed from the first emit to the last answer, in events a second; how
    /// many were delivered by then is printed beside.
    func ingest(matches: Int, events: Int, rateLimit: Int) throws -> Double {
        let daemon = try startDaemon("ingest-\(matches)", sync: "full", webhooks: matches)
        defer { daemon.stop() }
        let admin = try SocketConnection(path: daemon.socketPath)
        let sender = Population.phone(0)
        for i in 0..<matches {
            _ = try create(admin, name: "ingest \(i)", url: sinkURL, rateLimit: rateLimit, sender: sender)
        }
        let lines = Array(repeating: Self.emitLine(sender: sender), count: events)
        let (seconds, stored) = try EmitBench.emitRun(lines, connections: 1, socketPath: daemon.socketPath)
        guard stored == events * matches else {
            throw BenchError("\(stored) deliveries stored, expected \(events * matches)")
        }
        let (deliveredMeanwhile, _) = try delivered(admin, webhookID: nil)
        print(
            String(
                format:
                    "    %d webhook%@ at rate_limit %d: %d events (%d deliveries stored) in %.2f s, %d delivered by the last answer; RSS %.1f MiB",
                matches, matches == 1 ? "" : "s", rateLimit, events, stored, seconds, deliveredMeanwhile,
                daemon.residentMiB))
        return Double(events) / seconds
    }

    // MARK: - Rate held

    /// One webhook at each rate with a backlog to send: deliveries counted by `stats`
    /// over a window that starts a second in (past the bucket's initial burst). Each
    /// limit with the rate held, for the summary.
    func rateHeld() throws -> [(limit: Int, rate: Double)] {
        print("  rate held by one webhook (a backlog waiting, receiver keeping up):")
        var rates: [(limit: Int, rate: Double)] = []
        for (limit, window) in [(10, 20.0), (1000, 10.0), (10_000, 10.0)] {
            let directory = workDirectory + "/rate-\(limit)"
            try? FileManager.default.removeItem(atPath: directory)
            let daemon = try DaemonProcess(binary: binary, directory: directory, arguments: daemonArguments)
            defer { daemon.stop() }
            let admin = try SocketConnection(path: daemon.socketPath)
            let id = try create(
                admin, name: "rate \(limit)", url: sinkURL, rateLimit: limit, sender: Population.phone(0))
            // Delivery starts while the backlog is being emitted: twice what the window
            // needs keeps it from running dry before the window closes (checked below).
            let backlog = Int(Double(limit) * (window + 3) * 2)
            let line = Self.emitLine(sender: Population.phone(0))
            _ = try EmitBench.emitRun(
                Array(repeating: line, count: backlog), connections: 1, socketPath: daemon.socketPath)
            // Everything is stored before the window opens: emitting does not share it.
            _ = try waitDelivered(admin, 1, webhookID: id)
            usleep(1_000_000)
            let (startCount, startTime) = try delivered(admin, webhookID: id)
            usleep(UInt32(window * 1_000_000))
            let (endCount, endTime) = try delivered(admin, webhookID: id)
            guard endCount < backlog else { throw BenchError("the backlog ran dry inside the window") }
            let rate = Double(endCount - startCount) / (Double(endTime - startTime) / 1e9)
            print(
                String(
                    format: "    rate_limit %5d: %9.1f deliveries/s over %.0f s, error %+.2f%% (target ±5%%)", limit,
                    rate, window, (rate - Double(limit)) / Double(limit) * 100))
            rates.append((limit, rate))
        }
        return rates
    }

    // MARK: - Latency

    /// 1,000 events a second for 5 s, each sent alone: from writing `emit_event` to the
    /// sink's log line for its webhook-id (nginx's clock has millisecond resolution: each
    /// receipt is taken as the middle of its millisecond). The rate and the percentiles in
    /// ms, for the summary.
    func latency() throws -> (rate: Int, p50: Double, p99: Double, max: Double) {
        let rate = 1000
        let count = 5000
        let directory = workDirectory + "/latency"
        try? FileManager.default.removeItem(atPath: directory)
        let daemon = try DaemonProcess(binary: binary, directory: directory, arguments: daemonArguments)
        defer { daemon.stop() }
        let admin = try SocketConnection(path: daemon.socketPath)
        let url = "http://127.0.0.1:\(sinkPort)/timed/hook"
        let id = try create(admin, name: "latency", url: url, rateLimit: 10_000, sender: Population.phone(0))
        let line = Self.emitLine(sender: Population.phone(0))
        var sentAt: [String: Double] = [:]
        let start = monotonicNanoseconds()
        for i in 0..<count {
            let due = start + UInt64(i) * 1_000_000_000 / UInt64(rate)
            while monotonicNanoseconds() < due { usleep(100) }
            let now = Self.wallClockSeconds()
            try admin.write(line)
            let answer = try JSONParser.parse(try admin.readLine())
            guard let eventID = answer["event_id"]?.stringValue else { throw BenchError("emit failed: \(answer)") }
            sentAt["msg_\(eventID)_\(id)"] = now
        }
        try waitDelivered(admin, count, webhookID: id)
        usleep(200_000)
        let log = (try? String(contentsOfFile: timedLog, encoding: .utf8)) ?? ""
        var latencies: [Double] = []
        for entry in log.split(separator: "\n") {
            let fields = entry.split(separator: " ")
            guard fields.count == 2, let received = Double(fields[0]), let sent = sentAt[String(fields[1])] else {
                continue
            }
            // $msec is truncated to the millisecond: the receipt lies within the next one.
            latencies.append((received + 0.0005 - sent) * 1000)
        }
        latencies.sort()
        guard latencies.count == count else {
            throw BenchError("the sink logged \(latencies.count) of \(count) deliveries in \(timedLog)")
        }
        print(
            String(
                format: "  emit_event → sink receipt, %d events/s, one webhook: p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                rate, percentile(latencies, 0.5), percentile(latencies, 0.99), latencies.last ?? 0))
        return (rate, percentile(latencies, 0.5), percentile(latencies, 0.99), latencies.last ?? 0)
    }

    // MARK: - Helpers

    var daemonArguments: [String] {
        ["--allow-http", "--allow-destination", "127.0.0.0/8", "--log-retention", "1h"]
    }

    /// A daemon in a fresh `workDirectory/name` for a run with `webhooks` webhooks, each
    /// allowed `connections / webhooks` deliveries in flight: together they use the
    /// connections the ceilings were measured with.
    func startDaemon(_ name: String, sync: String, webhooks: Int) throws -> DaemonProcess {
        let directory = workDirectory + "/" + name
        try? FileManager.default.removeItem(atPath: directory)
        return try DaemonProcess(
            binary: binary, directory: directory,
            arguments: daemonArguments + [
                "--sync", sync, "--max-in-flight-per-webhook", String(max(1, connections / webhooks)),
            ])
    }

    /// A bench event from `sender` (an SMS status, as the platform sends most).
    static func event(sender: String) -> JSON {
        [
            "event_type": "SMS_STATUS", "timestamp": "2025-04-23T00:05:18Z",
            "status": [
                "id": "5f2c8a9e-6b1d-4e7a-9c3f-2a8b7d6e5f41", "type": "SMS", "sender": .string(sender),
                "recipient": "61400000002", "status": "DELIVERED", "status_code": "200",
                "message_ref": "order-1234567", "campaign_id": "c0b1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e",
                "delivered_at": "2025-04-23T00:05:17Z",
            ],
        ]
    }

    /// An `emit_event` request line for `event(sender:)`.
    static func emitLine(sender: String) -> [UInt8] {
        JSONWriter.bytes(["cmd": "emit_event", "event": event(sender: sender)]) + [0x0A]
    }

    /// The body hookgate sends for `event`: `webhook_id` and `webhook_name` after the timestamp.
    static func deliveredBody(_ event: JSON) -> JSON {
        [
            "event_type": event["event_type"] ?? .null, "timestamp": event["timestamp"] ?? .null,
            "webhook_id": "9b7e4c2a-1d3f-4a6b-8e5c-7f2d1a9b3c60", "webhook_name": "bench 0",
            "status": event["status"] ?? .null,
        ]
    }

    /// A `create_webhook` request for SMS statuses from `sender`; with `webhookID`, the
    /// `update_webhook` that gives that webhook this definition (update is a full replace:
    /// it takes every field create does).
    func webhookRequest(
        updating webhookID: String? = nil, name: String, url: String, rateLimit: Int, sender: String
    ) -> JSON {
        var request: JSONObject = ["cmd": "create_webhook"]
        if let webhookID {
            request["cmd"] = "update_webhook"
            request["webhook_id"] = .string(webhookID)
        }
        request["name"] = .string(name)
        request["url"] = .string(url)
        request["rate_limit"] = .integer(rateLimit)
        request["filter"] = ["event_type": ["SMS_STATUS"], "sender": [.string(sender)]]
        return .object(request)
    }

    func create(_ admin: SocketConnection, name: String, url: String, rateLimit: Int, sender: String) throws -> String {
        let answer = try admin.request(webhookRequest(name: name, url: url, rateLimit: rateLimit, sender: sender))
        guard let id = answer["webhook"]?["id"]?.stringValue else { throw BenchError("create failed: \(answer)") }
        return id
    }

    /// Delivered so far (one webhook's or all), and when that was read.
    func delivered(_ admin: SocketConnection, webhookID: String?) throws -> (Int, UInt64) {
        var request: JSONObject = ["cmd": "stats"]
        if let webhookID { request["webhook_id"] = .string(webhookID) }
        let stats = try admin.request(.object(request))
        let time = monotonicNanoseconds()
        func count(_ key: String) -> Int? {
            guard case .number(let n)? = stats["deliveries"]?[key] else { return nil }
            return n.int64Value.map { Int($0) }
        }
        guard let delivered = count("delivered") else { throw BenchError("stats failed: \(stats)") }
        if let failed = count("failed"), failed > 0 {
            throw BenchError("\(failed) deliveries failed: is the sink up?")
        }
        return (delivered, time)
    }

    @discardableResult
    func waitDelivered(_ admin: SocketConnection, _ count: Int, webhookID: String?) throws -> UInt64 {
        let deadline = monotonicNanoseconds() + 600 * 1_000_000_000
        while monotonicNanoseconds() < deadline {
            let (delivered, time) = try delivered(admin, webhookID: webhookID)
            if delivered >= count { return time }
            usleep(10_000)
        }
        throw BenchError("not all \(count) deliveries were made within 10 minutes")
    }

    static func wallClockSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Runs a ceiling tool and finds its figures line: the line and its req/s.
    static func figure(
        of executable: String, _ arguments: [String], environment: [String: String] = [:], line prefix: String
    )
        throws -> (line: String, rate: Double)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0,
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }).map(String.init),
            case let words = line.split(separator: " "),
            let index = words.firstIndex(where: { $0.hasPrefix("req/s") }), index > 0,
            let rate = Double(words[index - 1])
        else { throw BenchError("\(executable) \(arguments.joined(separator: " ")) failed:\n\(text)") }
        return (line, rate)
    }

    // MARK: - Summary

    /// A line of the closing table.
    struct SummaryRow {
        var what: String
        var measured: String
        /// The figure's target, and whether this run met it; nil where there is none.
        var target: (text: String, met: Bool)? = nil
    }

    /// The closing table: every figure of the run on one line beside its target, so a run
    /// reads at a glance (the lines above have the detail).
    static func printSummary(_ rows: [SummaryRow]) {
        let header = SummaryRow(what: "what", measured: "measured")
        let whatWidth = ([header] + rows).map(\.what.count).max() ?? 0
        let measuredWidth = ([header] + rows).map(\.measured.count).max() ?? 0
        func padded(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.count))
        }
        print("")
        print("summary (delivery):")
        print("  " + padded("what", whatWidth) + "  " + padded("measured", measuredWidth) + "  target")
        for row in rows {
            var line = "  " + padded(row.what, whatWidth) + "  " + padded(row.measured, measuredWidth)
            if let target = row.target { line += "  " + target.text + (target.met ? " (met)" : " (NOT met)") }
            print(line.replacingOccurrences(of: " +$", with: "", options: .regularExpression))
        }
    }
}

import Dispatch
import Foundation
import HookgateCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// hookgate's benchmark: prints figures, asserts nothing (README "Performance" has the targets).
///
///   hookgate-bench [--binary PATH] [--events N] [--only emit|match|deliver] [--webhooks 1,1000,100000]
///                  [--sync full,normal] [--metrics-listen ADDR]
///                  [--sink-port P --timed-log F --curl-loop PATH --wrk-script F [--connections C]
///                   [--deliveries N]]
///
/// emit: the real daemon (release build) over its socket: `emit_event` throughput on one
/// pipelined connection and on 8, with 1, 1,000 and 100,000 webhooks, at `--sync full`
/// (durable, the default) and `--sync normal`, and the daemon's resident memory.
/// match: the matcher in process with 100,000 webhooks of mixed filters: latency per
/// event (p50/p99/p99.9) and the memory the index takes.
/// deliver (needs the sink that contrib/bench/run.sh starts): see `DeliverBench`. wrk and
/// curl-loop against the sink, then hookgate: the delivery path alone (a stored backlog of
/// `--deliveries`), emit and delivery together, ingest with 10 matches and with 1 match
/// per event while the engine delivers (`--deliveries` / 2 events, at least 20,000), the
/// rate held and the latency; a summary table of the figures against their targets last.
@main
struct BenchMain {
    static func main() throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
            defer { arguments.removeSubrange(index...(index + 1)) }
            return arguments[index + 1]
        }
        let executableDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        let binary = option("--binary") ?? executableDirectory + "/hookgate"
        let events = option("--events").flatMap(Int.init) ?? 100_000
        let only = option("--only")
        let webhookCounts = option("--webhooks").map { $0.split(separator: ",").compactMap { Int($0) } }
        let syncModes = option("--sync").map { $0.split(separator: ",").map(String.init) }
        let sinkPort = option("--sink-port").flatMap(Int.init)
        let timedLog = option("--timed-log")
        let curlLoop = option("--curl-loop")
        let wrkScript = option("--wrk-script")
        let connections = option("--connections").flatMap(Int.init) ?? 64
        let deliveries = option("--deliveries").flatMap(Int.init) ?? 200_000
        // Every daemon started keeps and serves its metrics (127.0.0.1:0: a port of its
        // own, which nothing scrapes): the figures with metrics on.
        if let metricsListen = option("--metrics-listen") { setenv("BENCH_METRICS_LISTEN", metricsListen, 1) }

        if let file = option("--parse") {
            // The parser alone on one line (contrib/bench/hardening.py's shapes): CPU per parse.
            let line = Array(try Data(contentsOf: URL(fileURLWithPath: file)).dropLast())
            let clock = ContinuousClock()
            var best = Duration.seconds(1000)
            for _ in 0..<10 {
                let start = clock.now
                _ = try? JSONParser.parse(line)
                best = min(best, clock.now - start)
            }
            print("parse \(file): \(line.count) bytes, best of 10: \(best)")
            return
        }
        print("hookgate-bench \(HookgateVersion.current)")
        print("machine: \(Machine.description)")
        if only == nil || only == "match" { MatchBench.run() }
        if only == nil || only == "emit" {
            try EmitBench.run(
                binary: binary, events: events, webhookCounts: webhookCounts ?? [1, 1000, 100_000],
                syncModes: syncModes ?? ["full", "normal"])
        }
        if only == nil || only == "deliver" {
            guard let sinkPort, let timedLog, let curlLoop, let wrkScript else {
                if only == nil { return }
                throw BenchError(
                    "deliver needs --sink-port, --timed-log, --curl-loop and --wrk-script (run.sh sets them)")
            }
            let directory = NSTemporaryDirectory() + "hookgate-bench-deliver-\(getpid())"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try DeliverBench(
                sinkPort: sinkPort, timedLog: timedLog, curlLoop: curlLoop, wrkScript: wrkScript, binary: binary,
                connections: connections, deliveries: deliveries, workDirectory: directory
            ).run()
        }
    }
}

enum Machine {
    static var description: String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let memory = ProcessInfo.processInfo.physicalMemory / (1 << 30)
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(model), \(memory) GiB"
    }

    static var residentMiB: Double { residentMiB(process: "self") }

    /// A process's resident memory in MiB, from /proc (`self` or a pid).
    static func residentMiB(process: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0) / 1024
        }
        return 0
    }
}

/// The benchmark's webhook population: every event type, mostly sender-filtered
/// (phone numbers written with `+` and spaces), some filtered on message_ref instead,
/// half of the status webhooks also on status. An event from one of the senders
/// matches about one webhook, as in a real multi-tenant registry.
enum Population {
    static func phone(_ i: Int) -> String {
        let digits = String(i)
        return "614" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The emit benchmark measures accepting events, not sending them: receivers are on
    /// loopback, which the daemon's address guard refuses without connecting, and each
    /// webhook allows one attempt per second, so delivery work stays out of the figures.
    static func url(_ i: Int) -> String { "https://127.0.0.1:9/hooks/\(i)" }

    static func definition(_ i: Int, total: Int) -> WebhookDefinition {
        if total == 1 {
            return WebhookDefinition(
                name: "bench 0", url: url(0), filter: WebhookFilter(eventType: [.smsStatus]), rateLimit: 1)
        }
        let type = EventType.allCases[i % EventType.allCases.count]
        var filter = WebhookFilter(eventType: [type])
        if i % 20 == 19 {
            filter.messageRef = ["ref-\(i)"]
        } else {
            let number = phone(i)
            filter.sender = ["+" + number.prefix(2) + " " + number.dropFirst(2)]
        }
        if type.family == .status && i % 2 == 0 { filter.status = ["delivered", "read"] }
        return WebhookDefinition(name: "bench \(i)", url: url(i), filter: filter, rateLimit: 1)
    }

    static func request(_ i: Int, total: Int) -> JSON {
        let d = definition(i, total: total)
        return [
            "cmd": "create_webhook", "name": .string(d.name), "url": .string(d.url),
            "rate_limit": .integer(d.rateLimit),
            "filter": [
                "event_type": .array(d.filter.eventType.map { .string($0.rawValue) }),
                "sender": .array(d.filter.sender.map { .string($0) }),
                "status": .array(d.filter.status.map { .string($0) }),
                "message_ref": .array(d.filter.messageRef.map { .string($0) }),
            ],
        ]
    }

    /// An SMS_STATUS event from the sender of a random SMS_STATUS webhook.
    static func event<G: RandomNumberGenerator>(total: Int, using generator: inout G) -> JSON {
        let smsStatusIndex = EventType.allCases.firstIndex(of: .smsStatus)!
        let groups = max(1, total / EventType.allCases.count)
        let i = Int.random(in: 0..<groups, using: &generator) * EventType.allCases.count + smsStatusIndex
        return [
            "event_type": "SMS_STATUS",
            "status": [
                "id": .string("msg-\(UInt32.random(in: 0...UInt32.max, using: &generator))"), "type": "SMS",
                "sender": .string(phone(i)), "recipient": "447507222200", "status": "DELIVERED",
                "message_ref": .string("ref-\(Int.random(in: 0..<max(1, total), using: &generator))"),
            ],
        ]
    }
}

/// SplitMix64: a small seeded generator, so every run offers the same events.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

enum MatchBench {
    static func run() {
        let total = 100_000
        let baseline = Machine.residentMiB
        let now = Timestamp(microseconds: 1_700_000_000_000_000)
        let webhooks = (0..<total).map { Webhook.create(Population.definition($0, total: total), at: now) }
        let shardCount = ProcessInfo.processInfo.activeProcessorCount
        let matcher = ShardedMatcher(shardCount: shardCount)
        let loadStart = monotonicNanoseconds()
        matcher.load(webhooks)
        let loadSeconds = Double(monotonicNanoseconds() - loadStart) / 1e9
        var index = MatcherIndex()
        for webhook in webhooks { index.upsert(MatchTarget(webhook)) }
        let memory = Machine.residentMiB - baseline

        var generator = SplitMix64(state: 42)
        let keys = (0..<100_000).map { _ in
            try! EventValidator.event(Population.event(total: total, using: &generator), receivedAt: now).matchKey
        }
        print("")
        print("match: \(total) webhooks of mixed filters, \(shardCount) shards, \(keys.count) SMS_STATUS events")
        print(
            String(
                format: "  load into shards: %.2f s; process RSS for webhooks + indexes: %.0f MiB", loadSeconds, memory)
        )

        // 1. The index alone: the CPU cost of matching one event against all webhooks.
        var latencies: [Double] = []
        latencies.reserveCapacity(keys.count)
        var matched = 0
        var result: [MatchTarget] = []
        for key in keys {
            result.removeAll(keepingCapacity: true)
            let start = monotonicNanoseconds()
            index.matches(key, into: &result)
            latencies.append(Double(monotonicNanoseconds() - start) / 1000)
            matched += result.count
        }
        report("index lookup, one event", latencies, matched: matched, events: keys.count)

        // 2. The sharded matcher, one event at a time (includes the hops to the shard queues).
        latencies.removeAll(keepingCapacity: true)
        matched = 0
        for key in keys.prefix(20_000) {
            let start = monotonicNanoseconds()
            let found = matcher.match([key])
            latencies.append(Double(monotonicNanoseconds() - start) / 1000)
            matched += found[0].count
        }
        report("sharded matcher, one event per call", latencies, matched: matched, events: 20_000)

        // 3. The sharded matcher in batches, as group commit calls it; cost per event.
        latencies.removeAll(keepingCapacity: true)
        matched = 0
        let batchSize = 256
        var offset = 0
        while offset < keys.count {
            let batch = Array(keys[offset..<min(keys.count, offset + batchSize)])
            let start = monotonicNanoseconds()
            let found = matcher.match(batch)
            latencies.append(Double(monotonicNanoseconds() - start) / 1000 / Double(batch.count))
            matched += found.reduce(0) { $0 + $1.count }
            offset += batchSize
        }
        report("sharded matcher, batches of \(batchSize), per event", latencies, matched: matched, events: keys.count)
    }

    static func report(_ label: String, _ latencies: [Double], matched: Int, events: Int) {
        let sorted = latencies.sorted()
        print(
            String(
                format: "  %@: p50 %.2f µs, p99 %.2f µs, p99.9 %.2f µs (%.2f matches per event)", label,
                percentile(sorted, 0.5), percentile(sorted, 0.99), percentile(sorted, 0.999),
                Double(matched) / Double(events)))
    }
}

enum EmitBench {
    static func run(binary: String, events: Int, webhookCounts: [Int], syncModes: [String]) throws {
        print("")
        print("emit_event: the \(binary) daemon over its socket, \(events) events per run")
        for webhookCount in webhookCounts {
            let directory = NSTemporaryDirectory() + "hookgate-bench-\(getpid())-\(webhookCount)"
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }

            // Registering is not what is measured: do it without syncing every commit.
            let setup = try DaemonProcess(binary: binary, directory: directory, arguments: ["--sync", "normal"])
            let idle = setup.residentMiB
            let setupStart = monotonicNanoseconds()
            try register(webhookCount, socketPath: setup.socketPath)
            let setupSeconds = Double(monotonicNanoseconds() - setupStart) / 1e9
            setup.stop()
            print(
                String(
                    format: "  %d webhooks (registered in %.1f s; idle RSS before %.1f MiB):", webhookCount,
                    setupSeconds, idle))

            for sync in syncModes {
                let daemon = try DaemonProcess(binary: binary, directory: directory, arguments: ["--sync", sync])
                let loaded = daemon.residentMiB
                var generator = SplitMix64(state: UInt64(webhookCount))
                let lines = (0..<events).map { i in
                    JSONWriter.bytes(
                        [
                            "cmd": "emit_event", "id": .integer(i),
                            "event": Population.event(total: webhookCount, using: &generator),
                        ]
                    ) + [0x0A]
                }
                for connections in [1, 8] {
                    let (seconds, deliveries) = try emitRun(
                        lines, connections: connections, socketPath: daemon.socketPath)
                    print(
                        String(
                            format:
                                "    --sync %@, %d connection%@: %8.0f events/s, %.2f deliveries per event, RSS %.1f MiB (%.1f after loading)",
                            sync, connections, connections == 1 ? " " : "s", Double(events) / seconds,
                            Double(deliveries) / Double(events), daemon.residentMiB, loaded))
                }
                daemon.stop()
            }
            // A fresh start over everything those runs left pending: the memory it holds.
            let restarted = try DaemonProcess(binary: binary, directory: directory, arguments: [])
            let stats = try SocketConnection(path: restarted.socketPath).request(["cmd": "stats"])
            let pending = stats["deliveries"]?["pending"].map { JSONWriter.string($0) } ?? "?"
            print(
                String(
                    format: "    restarted with %@ pending deliveries: RSS %.1f MiB", pending, restarted.residentMiB))
            restarted.stop()
        }
    }

    static func register(_ count: Int, socketPath: String) throws {
        let connection = try SocketConnection(path: socketPath)
        var sent = 0
        while sent < count {
            let chunk = min(1000, count - sent)
            var bytes: [UInt8] = []
            for i in sent..<(sent + chunk) { bytes += JSONWriter.bytes(Population.request(i, total: count)) + [0x0A] }
            try connection.write(bytes)
            for _ in 0..<chunk {
                let line = try connection.readLine()
                guard line.starts(with: Array(#"{"ok":true"#.utf8)) else {
                    throw BenchError("create failed: \(String(decoding: line, as: UTF8.self))")
                }
            }
            sent += chunk
        }
    }

    /// Sends `lines` split over `connections` pipelined connections, each with a writer
    /// thread, and reads every answer; the elapsed seconds and deliveries counted.
    static func emitRun(_ lines: [[UInt8]], connections: Int, socketPath: String) throws -> (Double, Int) {
        let sockets = try (0..<connections).map { _ in try SocketConnection(path: socketPath) }
        let shares = (0..<connections).map { c in stride(from: c, to: lines.count, by: connections).map { lines[$0] } }
        let start = monotonicNanoseconds()
        let group = DispatchGroup()
        let failures = Counter()
        let deliveries = Counter()
        for (socket, share) in zip(sockets, shares) {
            let writer = Thread {
                var buffer: [UInt8] = []
                for line in share {
                    buffer += line
                    if buffer.count >= 128 * 1024 {
                        try? socket.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                try? socket.write(buffer)
            }
            writer.start()
            group.enter()
            let reader = Thread {
                defer { group.leave() }
                let marker = Array(#""deliveries":"#.utf8)
                for _ in share {
                    guard let line = try? socket.readLine() else {
                        failures.add(1)
                        return
                    }
                    guard line.starts(with: Array(#"{"ok":true"#.utf8)) else {
                        failures.add(1)
                        continue
                    }
                    if let range = line.firstRange(of: marker) {
                        let digits = line[range.upperBound...].prefix { $0 >= 0x30 && $0 <= 0x39 }
                        deliveries.add(Int(String(decoding: digits, as: UTF8.self)) ?? 0)
                    }
                }
            }
            reader.start()
        }
        group.wait()
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        if failures.value > 0 { throw BenchError("\(failures.value) emits failed") }
        return (seconds, deliveries.value)
    }
}

/// A thread-safe counter for the reader threads.
final class Counter: Sendable {
    private let storage = Mutex(0)
    func add(_ n: Int) { storage.withLock { $0 += n } }
    var value: Int { storage.withLock { $0 } }
}

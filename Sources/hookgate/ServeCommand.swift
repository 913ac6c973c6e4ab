import ArgumentParser
import Foundation
import HookgateCore
import HookgateDelivery
import HookgateServer
import HookgateStore
import Logging
import Prometheus
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon (the default subcommand).",
        discussion: """
            hookgate serves newline-delimited JSON commands on a Unix socket. Under systemd
            socket activation it serves the socket it was handed; otherwise it binds --socket.
            Every flag can also be set by an environment variable, HOOKGATE_ and the flag's
            name in upper case with '-' as '_' (HOOKGATE_DATA_DIR for --data-dir); a flag on
            the command line wins. Durations are written 250ms, 5s, 5m, 2h, 7d (a bare number
            is seconds).
            """
    )

    static let environmentFlags: [EnvironmentFlag] = [
        .init(name: "socket", kind: .value),
        .init(name: "socket-mode", kind: .value),
        .init(name: "data-dir", kind: .value),
        .init(name: "max-line-bytes", kind: .value),
        .init(name: "allow-http", kind: .boolean),
        .init(name: "max-event-bytes", kind: .value),
        .init(name: "shards", kind: .value),
        .init(name: "sync", kind: .value),
        .init(name: "workers", kind: .value),
        .init(name: "connect-timeout", kind: .value),
        .init(name: "request-timeout", kind: .value),
        .init(name: "ca-file", kind: .value),
        .init(name: "allow-destination", kind: .repeatable),
        .init(name: "retry-schedule", kind: .value),
        .init(name: "default-rate-limit", kind: .value),
        .init(name: "max-in-flight-per-webhook", kind: .value),
        .init(name: "log-retention", kind: .value),
        .init(name: "log-max-rows", kind: .value),
        .init(name: "shutdown-grace", kind: .value),
        .init(name: "log-level", kind: .value),
        .init(name: "max-connections", kind: .value),
        .init(name: "max-connections-per-host", kind: .value),
        .init(name: "event-retention", kind: .value),
        .init(name: "min-free-disk", kind: .value),
        .init(name: "metrics-listen", kind: .value),
        .init(name: "ready-max-backlog-age", kind: .value),
        .init(name: "log-format", kind: .value),
        .init(name: "disable-after", kind: .value),
    ]

    @Option(
        help: ArgumentHelp(
            """
            Unix socket to bind when not socket-activated (env HOOKGATE_SOCKET). Default: \
            $RUNTIME_DIRECTORY/hookgate.sock, else /run/hookgate/hookgate.sock as root, else \
            $XDG_RUNTIME_DIR/hookgate.sock.
            """, valueName: "path"))
    var socket: String?

    @Option(
        help: ArgumentHelp(
            "File mode of a socket hookgate binds itself, in octal (env HOOKGATE_SOCKET_MODE).", valueName: "mode"))
    var socketMode: String = "0600"

    @Option(
        help: ArgumentHelp(
            """
            Directory of the database (env HOOKGATE_DATA_DIR). Default: $STATE_DIRECTORY, else \
            /var/lib/hookgate as root, else $XDG_STATE_HOME/hookgate (~/.local/state/hookgate).
            """, valueName: "path"))
    var dataDir: String?

    @Option(
        help: ArgumentHelp(
            "Longest request line accepted, e.g. 1048576 or 1MiB (env HOOKGATE_MAX_LINE_BYTES); a longer one gets line_too_long and the connection is closed.",
            valueName: "bytes"))
    var maxLineBytes: String = "1MiB"

    @Option(
        help: ArgumentHelp(
            "Longest emit_event or match_event request line, e.g. 262144 or 256KiB (env HOOKGATE_MAX_EVENT_BYTES); a longer one gets payload_too_large.",
            valueName: "bytes"))
    var maxEventBytes: String = "256KiB"

    @Option(
        help: ArgumentHelp(
            "Matcher shards, each a serial queue owning part of the webhook index (env HOOKGATE_SHARDS). Default: the number of cores.",
            valueName: "count"))
    var shards: Int?

    @Flag(help: "Accept plain http:// webhook URLs (env HOOKGATE_ALLOW_HTTP=1). For local development only.")
    var allowHTTP = false

    @Option(
        help: ArgumentHelp(
            "full: every commit is synced to disk (survives a power cut); normal: synced at checkpoints (survives a crash of hookgate) (env HOOKGATE_SYNC).",
            valueName: "full|normal"))
    var sync: String = "full"

    @Option(
        help: ArgumentHelp(
            "Delivery worker threads, each with one libcurl multi handle (env HOOKGATE_WORKERS).", valueName: "count"))
    var workers: Int = 2

    @Option(help: ArgumentHelp("Time to connect to a receiver (env HOOKGATE_CONNECT_TIMEOUT).", valueName: "duration"))
    var connectTimeout: String = "5s"

    @Option(
        help: ArgumentHelp("Time for a whole delivery request (env HOOKGATE_REQUEST_TIMEOUT).", valueName: "duration"))
    var requestTimeout: String = "15s"

    @Option(
        help: ArgumentHelp(
            "PEM file of CA certificates trusted in addition to the system's (env HOOKGATE_CA_FILE).",
            valueName: "path"))
    var caFile: String?

    @Option(
        help: ArgumentHelp(
            "A range deliveries may connect to although the address guard refuses it by default (loopback, private, link-local, CGNAT, unique-local, multicast, unspecified); repeatable (env HOOKGATE_ALLOW_DESTINATION, comma-separated).",
            valueName: "CIDR"))
    var allowDestination: [String] = []

    @Option(
        help: ArgumentHelp(
            "Delays before each retry after the first attempt, each ±20% (env HOOKGATE_RETRY_SCHEDULE).",
            valueName: "durations"))
    var retrySchedule: String = RetryPolicy.defaultSchedule

    @Option(
        help: ArgumentHelp(
            "Deliveries per second for a webhook whose rate_limit is 0 (env HOOKGATE_DEFAULT_RATE_LIMIT).",
            valueName: "per-second"))
    var defaultRateLimit: Int = 100

    @Option(
        help: ArgumentHelp(
            "Requests in flight to one webhook at most, so a slow receiver cannot take the pool (env HOOKGATE_MAX_IN_FLIGHT_PER_WEBHOOK).",
            valueName: "count"))
    var maxInFlightPerWebhook: Int = 64

    @Option(
        help: ArgumentHelp(
            "How long request-log lines are kept (env HOOKGATE_LOG_RETENTION).", valueName: "duration"))
    var logRetention: String = "7d"

    @Option(
        help: ArgumentHelp(
            "Most request-log lines kept; the oldest go first (env HOOKGATE_LOG_MAX_ROWS).", valueName: "count"))
    var logMaxRows: Int = 1_000_000

    @Option(
        help: ArgumentHelp(
            "How long finished deliveries, and events with no unfinished delivery, are kept (env HOOKGATE_EVENT_RETENTION). Pending deliveries are never deleted.",
            valueName: "duration"))
    var eventRetention: String = "7d"

    @Option(
        help: ArgumentHelp(
            "Below this much free space on the data directory's disk, emit_event and create_webhook answer unavailable; delivery and retention go on (env HOOKGATE_MIN_FREE_DISK).",
            valueName: "bytes"))
    var minFreeDisk: String = "256MiB"

    @Option(
        help: ArgumentHelp(
            "How long, on SIGTERM, clients get to receive the answers to requests they have sent, and then delivery attempts in flight get to finish (env HOOKGATE_SHUTDOWN_GRACE).",
            valueName: "duration"))
    var shutdownGrace: String = "10s"

    @Option(
        help: ArgumentHelp(
            "Client connections served at once; one more gets an unavailable line and is closed (env HOOKGATE_MAX_CONNECTIONS).",
            valueName: "count"))
    var maxConnections: Int = 1024

    @Option(
        help: ArgumentHelp(
            "Connections open to one receiving host at most, shared by the workers (env HOOKGATE_MAX_CONNECTIONS_PER_HOST).",
            valueName: "count"))
    var maxConnectionsPerHost: Int = 32

    @Option(
        help: ArgumentHelp(
            "trace, debug, info, notice, warning, error or critical (env HOOKGATE_LOG_LEVEL).", valueName: "level"))
    var logLevel: String = "info"

    @Option(
        help: ArgumentHelp(
            "text, or json: one object per line with ts, level, msg, source and the metadata (env HOOKGATE_LOG_FORMAT).",
            valueName: "format"))
    var logFormat: String = "text"

    @Option(
        help: ArgumentHelp(
            "Serve /metrics (Prometheus), /healthz and /readyz over HTTP at HOST:PORT (127.0.0.1:9464, [::1]:9464) or unix:PATH (env HOOKGATE_METRICS_LISTEN). Off by default.",
            valueName: "address"))
    var metricsListen: String?

    @Option(
        help: ArgumentHelp(
            "A webhook with no 2xx for this long is disabled when one of its deliveries fails for good (disabled_reason \"failing: ...\"); 0 never (env HOOKGATE_DISABLE_AFTER).",
            valueName: "duration"))
    var disableAfter: String = "5d"

    @Option(
        help: ArgumentHelp(
            "/readyz and health degrade when the oldest due delivery has waited longer than this; 0 turns the check off (env HOOKGATE_READY_MAX_BACKLOG_AGE).",
            valueName: "duration"))
    var readyMaxBacklogAge: String = "5m"

    func validate() throws {
        guard parsedSocketMode != nil else {
            throw ValidationError("--socket-mode: '\(socketMode)' is not an octal file mode such as 0600 or 0660")
        }
        guard let bytes = Units.byteCount(maxLineBytes), bytes >= 64 else {
            throw ValidationError("--max-line-bytes: '\(maxLineBytes)' is not a size of at least 64 bytes")
        }
        guard let eventBytes = Units.byteCount(maxEventBytes), eventBytes >= 64 else {
            throw ValidationError("--max-event-bytes: '\(maxEventBytes)' is not a size of at least 64 bytes")
        }
        if let shards, !(1...256).contains(shards) {
            throw ValidationError("--shards: \(shards) is not between 1 and 256")
        }
        guard (1...64).contains(workers) else { throw ValidationError("--workers: \(workers) is not between 1 and 64") }
        for (name, value) in [("--connect-timeout", connectTimeout), ("--request-timeout", requestTimeout)] {
            guard let micros = Units.durationMicroseconds(value), micros >= 1000 else {
                throw ValidationError("\(name): '\(value)' is not a duration of at least 1ms")
            }
        }
        for range in allowDestination where CIDR(range) == nil {
            throw ValidationError("--allow-destination: '\(range)' is not an address or a CIDR range")
        }
        guard RetryPolicy.parseSchedule(retrySchedule) != nil else {
            throw ValidationError("--retry-schedule: '\(retrySchedule)' is not a comma-separated list of durations")
        }
        guard let retention = Units.durationMicroseconds(logRetention), retention > 0 else {
            throw ValidationError("--log-retention: '\(logRetention)' is not a duration such as 7d")
        }
        guard let eventAge = Units.durationMicroseconds(eventRetention), eventAge > 0 else {
            throw ValidationError("--event-retention: '\(eventRetention)' is not a duration such as 7d")
        }
        guard Units.byteCount(minFreeDisk) != nil else {
            throw ValidationError("--min-free-disk: '\(minFreeDisk)' is not a size such as 256MiB")
        }
        guard logMaxRows >= 1 else { throw ValidationError("--log-max-rows: \(logMaxRows) is not at least 1") }
        guard (1...10_000).contains(defaultRateLimit) else {
            throw ValidationError("--default-rate-limit: \(defaultRateLimit) is not between 1 and 10000")
        }
        guard (1...10_000).contains(maxInFlightPerWebhook) else {
            throw ValidationError("--max-in-flight-per-webhook: \(maxInFlightPerWebhook) is not between 1 and 10000")
        }
        guard SQLiteStore.SyncMode(rawValue: sync) != nil else {
            throw ValidationError("--sync: '\(sync)' must be full or normal")
        }
        guard Units.durationMicroseconds(shutdownGrace) != nil else {
            throw ValidationError("--shutdown-grace: '\(shutdownGrace)' is not a duration such as 10s")
        }
        guard (1...10_000).contains(maxConnectionsPerHost) else {
            throw ValidationError("--max-connections-per-host: \(maxConnectionsPerHost) is not between 1 and 10000")
        }
        guard maxConnections >= 1 else {
            throw ValidationError("--max-connections: \(maxConnections) is not at least 1")
        }
        if let metricsListen, MetricsListenAddress(metricsListen) == nil {
            throw ValidationError(
                "--metrics-listen: '\(metricsListen)' is not HOST:PORT (127.0.0.1:9464, [::1]:9464) or unix:PATH")
        }
        guard Units.durationMicroseconds(disableAfter) != nil else {
            throw ValidationError("--disable-after: '\(disableAfter)' is not a duration such as 5d, or 0")
        }
        guard Units.durationMicroseconds(readyMaxBacklogAge) != nil else {
            throw ValidationError("--ready-max-backlog-age: '\(readyMaxBacklogAge)' is not a duration such as 5m, or 0")
        }
        guard logFormat == "text" || logFormat == "json" else {
            throw ValidationError("--log-format: '\(logFormat)' must be text or json")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level: '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
    }

    private var parsedSocketMode: UInt32? {
        guard let mode = UInt32(socketMode, radix: 8), mode <= 0o777 else { return nil }
        return mode
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hookgate")
        do {
            try await serve(logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode.failure
        }
    }

    private func serve(logger: Logger) async throws {
        let activated = try Systemd.listenSockets()
        let source: ControlSocketSource
        if activated.isEmpty {
            source = .path(try DefaultPaths.socket(flag: socket), mode: parsedSocketMode ?? 0o600)
        } else {
            if socket != nil { logger.notice("socket-activated: --socket is ignored") }
            source = .activated(activated)
        }
        // Files hookgate creates are private to its user, whatever umask it inherited.
        umask(0o077)
        // A file-size limit reached is an error for the store to report (and retry), not a
        // signal that kills the daemon.
        signal(SIGXFSZ, SIG_IGN)
        let dataDirectoryPath = try DefaultPaths.dataDirectory(flag: dataDir)
        let databaseFiles = SQLiteStore.databaseFileNames
        let dataDirectory = try DataDirectory(path: dataDirectoryPath, databaseFiles: databaseFiles)
        for change in dataDirectory.tightened {
            logger.notice("data directory made private", metadata: ["change": "\(change)"])
        }
        // Metrics are made through the Prometheus exporter's factory only when they are
        // served; otherwise every handle is swift-metrics' no-op.
        let registry = PrometheusCollectorRegistry()
        let metricsAddress = metricsListen.flatMap(MetricsListenAddress.init)
        let metrics =
            metricsAddress == nil
            ? HookgateMetrics.disabled
            : HookgateMetrics(
                factory: Self.metricsFactory(registry), version: HookgateVersion.current,
                commands: CommandDispatcher.commandNames, outcomes: RequestOutcome.allCases.map(\.rawValue))
        let store = try SQLiteStore(
            directory: dataDirectoryPath, sync: SQLiteStore.SyncMode(rawValue: sync) ?? .full, metrics: metrics)
        for change in try dataDirectory.restrictFiles(databaseFiles) {
            logger.notice("data directory made private", metadata: ["change": "\(change)"])
        }
        logger.info("store opened", metadata: ["data_dir": "\(dataDirectoryPath)", "sync": "\(sync)"])

        let matcher = ShardedMatcher(shardCount: shards ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        // Page by page, so that the whole registry is never held twice in memory.
        var loaded = 0
        var cursor: String?
        repeat {
            let page = try await store.listWebhooks(after: cursor, limit: 1000)
            matcher.load(page.webhooks)
            loaded += page.webhooks.count
            cursor = page.nextCursor
        } while cursor != nil
        logger.info("matcher loaded", metadata: ["webhooks": "\(loaded)", "shards": "\(matcher.shardCount)"])

        var extraCertificates: [UInt8] = []
        if let caFile {
            guard let contents = FileManager.default.contents(atPath: caFile) else {
                throw ValidationError("--ca-file: cannot read \(caFile)")
            }
            extraCertificates = Array(contents)
        }
        let transport = try CurlTransport(
            options: DeliveryTransportOptions(
                workers: workers,
                connectTimeoutMicroseconds: Units.durationMicroseconds(connectTimeout) ?? 5_000_000,
                requestTimeoutMicroseconds: Units.durationMicroseconds(requestTimeout) ?? 15_000_000,
                extraCertificatesPEM: extraCertificates, bundleDirectory: dataDirectoryPath,
                addressGuard: AddressGuard(allowed: allowDestination.compactMap(CIDR.init)), allowHTTP: allowHTTP,
                maxConnectionsPerHost: maxConnectionsPerHost))
        let engine = DeliveryEngine(
            store: store, transport: transport,
            options: DeliveryEngine.Options(
                retryPolicy: RetryPolicy(delays: RetryPolicy.parseSchedule(retrySchedule) ?? []),
                defaultRateLimit: defaultRateLimit, maxInFlightPerWebhook: maxInFlightPerWebhook,
                disableFailingAfterMicroseconds: Units.durationMicroseconds(disableAfter) ?? 5 * 86_400_000_000),
            logger: logger, metrics: metrics,
            onWebhookDisabled: { webhook in matcher.apply(.upsert(MatchTarget(webhook))) })
        let freeDiskSpace = FreeDiskSpace(
            path: dataDirectoryPath, minimumBytes: UInt64(Units.byteCount(minFreeDisk) ?? 256 << 20),
            clock: SystemWallClock())
        let health = Readiness(
            store: store, engine: engine, freeDiskSpace: freeDiskSpace,
            maxBacklogAgeMicroseconds: Units.durationMicroseconds(readyMaxBacklogAge) ?? 300_000_000
        ).monitor

        let dispatcher = CommandDispatcher(
            store: store, matcher: matcher,
            options: .init(
                allowHTTP: allowHTTP, maxEventBytes: Units.byteCount(maxEventBytes) ?? 256 * 1024,
                freeDiskSpace: freeDiskSpace, metrics: metrics, health: health,
                eventRetentionMicroseconds: Units.durationMicroseconds(eventRetention) ?? 7 * 86_400_000_000),
            logger: logger,
            delivery: DeliveryHooks(
                webhookChanged: { engine.webhookChanged(id: $0) }, recoveryStarted: { engine.recoveryStarted() },
                inFlight: { id in id.map { engine.inFlight(webhookID: $0) } ?? engine.inFlight }))
        let retention = RequestLogRetention(
            store: store, maxAgeMicroseconds: Units.durationMicroseconds(logRetention) ?? 7 * 86_400_000_000,
            maxRows: logMaxRows,
            eventMaxAgeMicroseconds: Units.durationMicroseconds(eventRetention) ?? 7 * 86_400_000_000, logger: logger)
        let graceMicros = Units.durationMicroseconds(shutdownGrace) ?? 10_000_000
        let grace = Duration.microseconds(graceMicros)
        let requestTail = RequestTail()
        store.observeRequestLog { requestTail.publish($0) }
        let server = ControlServer(
            configuration: ControlServerConfiguration(
                socket: source,
                maxLineBytes: Units.byteCount(maxLineBytes) ?? 1 << 20,
                shutdownGrace: grace, maxConnections: maxConnections),
            dispatcher: dispatcher, requestTail: requestTail, logger: logger)
        let watchdog = Watchdog(
            intervalMicroseconds: Systemd.watchdogMicroseconds(),
            probes: [
                .init(name: "event loop") { await server.probeEventLoops() },
                .init(name: "store writer") { await store.afterPriorCalls() },
                .init(name: "delivery engine") { await engine.probe() },
            ], logger: logger)
        var metricsServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsAddress {
            let sampler = MetricsSampler(
                registry: registry, metrics: metrics, store: store, engine: engine, server: server,
                requestTail: requestTail, freeDiskSpace: freeDiskSpace)
            metricsServices.append(
                .init(
                    service: MetricsServer(
                        address: metricsAddress,
                        endpoints: MetricsEndpoints(
                            metrics: { await sampler.exposition() }, readiness: { await health.report() }),
                        logger: logger)))
        }
        // Started in this order; on SIGTERM stopped in the reverse one: the metrics
        // listener, the socket (clients get their answers), then delivery (attempts in
        // flight finish and are recorded), retention, and the store last.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: StoreService(store: store)),
                    .init(
                        service: ServedService(
                            socketServed: server.ready, start: { retention.start() }, stop: { retention.stop() })),
                    .init(
                        service: ServedService(
                            socketServed: server.ready, start: { engine.start() },
                            stop: { await engine.stop(grace: grace) })),
                    .init(service: server),
                ] + metricsServices + [.init(service: watchdog)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        // The lock is held until every service has stopped.
        withExtendedLifetime(dataDirectory) {}
        logger.info("stopped")
    }
}

extension ServeCommand {
    /// The Prometheus exporter's factory, with histogram buckets from 100 µs (an emit's
    /// answer) to 30 s (an attempt that times out).
    static func metricsFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
            .seconds(30),
        ]
        return factory
    }
}

/// The default socket and data paths, following systemd's and XDG's conventions.
enum DefaultPaths {
    static func socket(flag: String?) throws -> String {
        if let flag, !flag.isEmpty { return flag }
        if let runtime = firstPath(EnvironmentFlag.getenv("RUNTIME_DIRECTORY")) { return runtime + "/hookgate.sock" }
        if geteuid() == 0 { return "/run/hookgate/hookgate.sock" }
        if let xdg = firstPath(EnvironmentFlag.getenv("XDG_RUNTIME_DIR")) { return xdg + "/hookgate.sock" }
        throw ValidationError("no socket path: pass --socket PATH (XDG_RUNTIME_DIR is not set)")
    }

    static func dataDirectory(flag: String?) throws -> String {
        if let flag, !flag.isEmpty { return flag }
        if let state = firstPath(EnvironmentFlag.getenv("STATE_DIRECTORY")) { return state }
        if geteuid() == 0 { return "/var/lib/hookgate" }
        if let xdg = firstPath(EnvironmentFlag.getenv("XDG_STATE_HOME")) { return xdg + "/hookgate" }
        if let home = firstPath(EnvironmentFlag.getenv("HOME")) { return home + "/.local/state/hookgate" }
        throw ValidationError("no data directory: pass --data-dir PATH (neither XDG_STATE_HOME nor HOME is set)")
    }

    /// systemd passes several directories colon-separated; hookgate uses the first.
    private static func firstPath(_ value: String?) -> String? {
        guard let value, let first = value.split(separator: ":").first, !first.isEmpty else { return nil }
        return String(first)
    }

}

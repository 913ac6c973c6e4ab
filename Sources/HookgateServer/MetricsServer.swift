import HookgateCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// What the metrics listener serves; the daemon fills it in.
public struct MetricsEndpoints: Sendable {
    /// The exposition, text format 0.0.4 (the gauges sampled first).
    public var metrics: @Sendable () async -> [UInt8]
    /// The readiness verdict, as `health` gives it.
    public var readiness: @Sendable () async -> HealthReport

    public init(
        metrics: @escaping @Sendable () async -> [UInt8], readiness: @escaping @Sendable () async -> HealthReport
    ) {
        self.metrics = metrics
        self.readiness = readiness
    }
}

/// `--metrics-listen` as a service: plain HTTP/1.1 on its own event loop, so a slow
/// scrape never holds up the control socket. `GET /metrics`, `/healthz` (200 while the
/// process serves) and `/readyz` (200 `ok`, or 503 with a line per failing check); 404
/// for other paths, 405 for other methods.
public final class MetricsServer: Service {
    private let address: MetricsListenAddress
    private let endpoints: MetricsEndpoints
    private let logger: Logger

    public init(address: MetricsListenAddress, endpoints: MetricsEndpoints, logger: Logger) {
        self.address = address
        self.endpoints = endpoints
        self.logger = logger
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoints = self.endpoints
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(endpoints: endpoints))
                }
            }
        let channel: any Channel
        do {
            switch address {
            case .tcp(let host, let port):
                channel = try await bootstrap.bind(host: host, port: port).get()
            case .unix(let path):
                try UnixSocketFile.prepare(path)
                channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false).get()
            }
        } catch {
            try? await group.shutdownGracefully()
            throw ControlServerError("--metrics-listen \(address): cannot listen: \(error)")
        }
        logger.info("metrics listening", metadata: ["address": "\(address)"])
        try? await gracefulShutdown()
        try? await channel.close()
        if case .unix(let path) = address { unlink(path) }
        try? await group.shutdownGracefully()
    }
}

/// One HTTP connection of the metrics listener. The pipeline's assistance hands it one
/// request at a time, so an answer made asynchronously is never overtaken.
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: MetricsEndpoints
    private var head: HTTPRequestHead?

    init(endpoints: MetricsEndpoints) { self.endpoints = endpoints }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private enum Route {
        case metrics, healthz, readyz
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let route: Route
        switch path {
        case "/metrics": route = .metrics
        case "/healthz": route = .healthz
        case "/readyz": route = .readyz
        default:
            write(status: .notFound, body: Array("not found: GET /metrics, /healthz or /readyz\n".utf8), head, context)
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            write(
                status: .methodNotAllowed, body: Array("method not allowed: use GET\n".utf8), head, context,
                extra: [("Allow", "GET, HEAD")])
            return
        }
        if case .healthz = route {
            write(status: .ok, body: Array("ok\n".utf8), head, context)
            return
        }
        let endpoints = self.endpoints
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: (HTTPResponseStatus, [UInt8], String).self)
        promise.completeWithTask {
            switch route {
            case .metrics:
                return (.ok, await endpoints.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            case .readyz, .healthz:
                let report = await endpoints.readiness()
                return (
                    report.isOK ? .ok : .serviceUnavailable, Array(report.readyzBody.utf8), "text/plain; charset=utf-8"
                )
            }
        }
        promise.futureResult.whenSuccess { status, body, type in
            let (handler, context) = loopBound.value
            handler.write(status: status, body: body, head, context, contentType: type)
        }
    }

    private func write(
        status: HTTPResponseStatus, body: [UInt8], _ request: HTTPRequestHead, _ context: ChannelHandlerContext,
        contentType: String = "text/plain; charset=utf-8", extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.count)")])
        headers.add(contentsOf: extra)
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil)
        if request.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

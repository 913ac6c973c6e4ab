import ArgumentParser
import Foundation
import HookgateCore
import HookgateServer
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// `hookgate receive`: a local receiver for development. It serves plain HTTP, checks
/// each request's Standard Webhooks signature against the secrets given, prints what
/// came, and answers `--status` (401 for a request that fails the check).
struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive deliveries locally and print them, checking their signatures.",
        discussion: """
            Point a webhook at it (the daemon needs --allow-http --allow-destination \
            127.0.0.1/32 for a loopback URL). With --secret, each request must carry a \
            webhook-signature made with one of the secrets (give the old and the new one \
            during a rotation) and a webhook-timestamp within --tolerance of now; one that \
            does not is answered 401. Runs until Ctrl-C.
            """)

    @Option(help: ArgumentHelp("Where to listen, HOST:PORT (port 0: any free one).", valueName: "address"))
    var listen: String = "127.0.0.1:8080"

    @Option(
        name: .customLong("secret"), help: ArgumentHelp("A webhook's whsec_ secret (repeatable).", valueName: "secret"))
    var secrets: [String] = []

    @Option(help: "The HTTP status to answer a delivery with.") var status: Int = 204

    @Option(help: ArgumentHelp("How far a webhook-timestamp may be from now.", valueName: "duration"))
    var tolerance: String = "5m"

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: "table (readable, the body pretty-printed) or json (one line per delivery). Default: table on a terminal."
    )
    var output: OutputFormat?

    func validate() throws {
        guard case .tcp? = MetricsListenAddress(listen) else {
            throw ValidationError("--listen: '\(listen)' is not HOST:PORT such as 127.0.0.1:8080")
        }
        for secret in secrets where SigningKey(secret: secret) == nil {
            throw ValidationError("--secret: '\(secret.prefix(10))…' is not a whsec_ secret")
        }
        guard (200...599).contains(status) else { throw ValidationError("--status: \(status) is not 200..599") }
        guard let micros = Units.durationMicroseconds(tolerance), micros >= 1_000_000 else {
            throw ValidationError("--tolerance: '\(tolerance)' is not a duration of at least 1s")
        }
    }

    func run() async throws {
        guard case .tcp(let host, let port)? = MetricsListenAddress(listen) else { throw ExitCode(64) }
        let receiver = Receiver(
            keys: secrets.compactMap(SigningKey.init(secret:)), status: status,
            toleranceSeconds: (Units.durationMicroseconds(tolerance) ?? 300_000_000) / 1_000_000,
            format: OutputFormat.chosen(output))
        // One event loop: deliveries are printed one at a time, never interleaved.
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup(numberOfThreads: 1))
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ReceiverHandler(receiver: receiver))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        FileHandle.standardError.write(
            Data(
                "hookgate receive: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(bound)/ (Ctrl-C stops)\n"
                    .utf8))
        try await channel.closeFuture.get()
    }
}

/// What the receiver does with a whole request: check, print, choose the answer.
struct Receiver: Sendable {
    let keys: [SigningKey]
    let status: Int
    let toleranceSeconds: Int64
    let format: OutputFormat

    /// The status to answer.
    func receive(head: HTTPRequestHead, body: [UInt8], now: Timestamp) -> Int {
        let verdict: WebhookVerifier.Verdict? =
            keys.isEmpty
            ? nil
            : WebhookVerifier.verify(
                messageID: head.headers.first(name: "webhook-id"),
                timestamp: head.headers.first(name: "webhook-timestamp"),
                signatures: head.headers.first(name: "webhook-signature"), body: body, keys: keys,
                nowSeconds: now.seconds, toleranceSeconds: toleranceSeconds)
        let answer = verdict.map { $0.isVerified ? status : 401 } ?? status
        let parsed = try? JSONParser.parse(body)
        let eventType = parsed?["event_type"]?.stringValue
        let webhookID = parsed?["webhook_id"]?.stringValue
        let webhookName = parsed?["webhook_name"]?.stringValue
        var text: String
        switch format {
        case .json:
            var line: JSONObject = [
                "at": .string(now.rfc3339), "method": .string(head.method.rawValue), "path": .string(head.uri),
                "event_type": eventType.map { .string($0) } ?? .null,
                "webhook_id": webhookID.map { .string($0) } ?? .null,
                "webhook_name": webhookName.map { .string($0) } ?? .null,
                "message_id": head.headers.first(name: "webhook-id").map { .string($0) } ?? .null,
                "verified": verdict.map { .bool($0.isVerified) } ?? .null,
            ]
            if let verdict, !verdict.isVerified { line["verification"] = .string(verdict.description) }
            line["status"] = .integer(answer)
            line["body"] = parsed ?? .string(String(decoding: body, as: UTF8.self))
            text = JSONWriter.string(.object(line)) + "\n"
        case .table:
            let signature = verdict.map { $0.isVerified ? "signature verified" : "NOT VERIFIED: \($0.description)" }
            text =
                [
                    now.rfc3339, eventType ?? "\(head.method.rawValue) \(head.uri)",
                    webhookName.map { "webhook \"\($0)\" (\(webhookID ?? "?"))" } ?? "no webhook in the body",
                    signature ?? "signature not checked (no --secret)", "→ \(answer)",
                ].joined(separator: "  ") + "\n"
            text += (parsed.map(JSONPrettyWriter.string) ?? String(decoding: body, as: UTF8.self)) + "\n\n"
        }
        FileHandle.standardOutput.write(Data(text.utf8))
        return answer
    }
}

/// One HTTP connection of the receiver: gathers each request, answers it, keeps the
/// connection open as HTTP/1.1 asks.
final class ReceiverHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// A larger body is answered 413 and not printed.
    static let maxBodyBytes = 8 << 20

    private let receiver: Receiver
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(receiver: Receiver) { self.receiver = receiver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.removeAll(keepingCapacity: true)
            tooLarge = false
        case .body(let buffer):
            if body.count + buffer.readableBytes > Self.maxBodyBytes {
                tooLarge = true
            } else {
                body.append(contentsOf: buffer.readableBytesView)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let status =
                tooLarge ? 413 : receiver.receive(head: head, body: body, now: SystemWallClock().now())
            var headers = HTTPHeaders([("content-length", "0")])
            if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: headers))),
                promise: nil)
            let keepAlive = head.isKeepAlive
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}

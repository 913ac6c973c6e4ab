import HookgateCore
import NIOCore
import NIOPosix

/// A client of the daemon's control socket (proto-spec/PROTOCOL.md), safe to share
/// between tasks. Calls made from several tasks share one connection: each writes its
/// request at once, without waiting for earlier answers, and the daemon answers in
/// request order. When the connection drops, the calls waiting on it fail with
/// `connectionLost` and the next call connects again. Streams (`tailRequests`) get a
/// connection of their own, closed when the stream ends or its consumer stops.
public actor HookgateClient {
    public nonisolated let socketPath: String
    /// How long a call waits for its answer.
    public nonisolated let timeout: Duration
    private let group: any EventLoopGroup
    private var connection: ClientConnection?
    private var connecting: Task<ClientConnection, any Error>?
    /// Connections opened so far (the first and every reconnection).
    public private(set) var connectionsOpened = 0
    /// Counts `close()` calls: a connection that opens after one is closed at once.
    private var generation = 0

    public init(
        socketPath: String, timeout: Duration = .seconds(30),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.socketPath = socketPath
        self.timeout = timeout
        self.group = group
    }

    /// Sends one request object (`cmd` and its fields; no `id` needed) and returns the
    /// whole `ok: true` answer, or throws the daemon's error.
    public func send(_ request: JSONObject) async throws -> JSONObject {
        try Self.refuseStreaming(request)
        let connection = try await liveConnection()
        return try await connection.request(JSONWriter.bytes(.object(request)), timeout: timeout)
    }

    /// Writes every request before reading any answer, and gives the answers in the same
    /// order: a pipelined `create_webhook` then `emit_event` sees the webhook.
    public func pipeline(_ requests: [JSONObject]) async throws -> [Result<JSONObject, HookgateClientError>] {
        for request in requests { try Self.refuseStreaming(request) }
        let connection = try await liveConnection()
        return await connection.requests(requests.map { JSONWriter.bytes(.object($0)) }, timeout: timeout)
    }

    /// Every line after the daemon's acknowledgement of a streaming `request`, on a
    /// connection of its own. Ends with the daemon's error (a slow reader's `tail
    /// overflow`), or `connectionLost` when the daemon closes; leaving the loop,
    /// cancelling the consuming task, or dropping the stream closes the connection.
    public nonisolated func stream(_ request: JSONObject) -> HookgateStream<JSONObject> {
        stream(request) { $0 }
    }

    nonisolated func stream<Element: Sendable>(
        _ request: JSONObject, _ transform: @escaping @Sendable (JSONObject) throws -> Element
    ) -> HookgateStream<Element> {
        let (lines, continuation) = AsyncThrowingStream.makeStream(of: JSONObject.self, throwing: (any Error).self)
        let flow = StreamFlow()
        let line = JSONWriter.bytes(.object(request))
        let socketPath = self.socketPath
        let group = self.group
        let opening = Task {
            do {
                let connection = try await ClientConnection.connect(socketPath: socketPath, group: group)
                guard flow.opened(connection) else {
                    connection.close()
                    return
                }
                connection.stream(line, into: continuation, flow: flow)
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in
            opening.cancel()
            flow.end()
        }
        return HookgateStream(lines: lines, flow: flow, transform: transform)
    }

    /// Closes the shared connection (and one being opened); a later call opens another.
    public func close() {
        connection?.close()
        connection = nil
        generation += 1
    }

    deinit {
        connection?.close()
    }

    /// A streaming command would turn the shared connection into its stream.
    static func refuseStreaming(_ request: JSONObject) throws {
        if let command = request["cmd"]?.stringValue, Self.streamingCommands.contains(command) {
            throw HookgateClientError.streamingCommand(command)
        }
    }

    static let streamingCommands: Set<String> = ["tail_requests"]

    private func liveConnection() async throws -> ClientConnection {
        if let known = connection {
            if await !known.isClosed() { return known }
            // Closed while this call waited: drop it, unless another call has already.
            if connection?.channel === known.channel { connection = nil }
            if let replaced = connection { return replaced }
        }
        if let connecting { return try await connecting.value }
        let socketPath = self.socketPath
        let group = self.group
        let task = Task { try await ClientConnection.connect(socketPath: socketPath, group: group) }
        connecting = task
        defer { connecting = nil }
        let started = generation
        let opened = try await task.value
        guard generation == started else {
            opened.close()
            throw HookgateClientError.connectionLost(reason: "the client was closed")
        }
        connection = opened
        connectionsOpened += 1
        return opened
    }
}

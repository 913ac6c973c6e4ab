import HookgateCore
import HookgateWire
import NIOCore
import NIOPosix

/// One open connection to the daemon. Its handler lives on the channel's event loop;
/// every call hops there, so requests are written, and their waiters queued, in the
/// order the calls are made.
struct ClientConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<ResponseLineHandler>

    static func connect(socketPath: String, group: any EventLoopGroup) async throws -> ClientConnection {
        do {
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(LineFrameDecoder(maxLineBytes: ResponseLineHandler.maxLineBytes)))
                        try channel.pipeline.syncOperations.addHandler(ResponseLineHandler())
                    }
                }
                .connect(unixDomainSocketPath: socketPath).get()
            let handler = try await channel.eventLoop.submit {
                NIOLoopBound(
                    try channel.pipeline.syncOperations.handler(type: ResponseLineHandler.self),
                    eventLoop: channel.eventLoop)
            }.get()
            return ClientConnection(channel: channel, handler: handler)
        } catch {
            throw HookgateClientError.cannotConnect(socketPath: socketPath, reason: Self.reason(error))
        }
    }

    /// Known closed: the next call should connect anew.
    func isClosed() async -> Bool {
        let handler = self.handler
        return (try? await channel.eventLoop.submit { handler.value.isClosed }.get()) ?? true
    }

    /// The answer to `line`: an `ok: true` object, or the daemon's error thrown.
    func request(_ line: [UInt8], timeout: Duration) async throws -> JSONObject {
        try await requests([line], timeout: timeout)[0].get()
    }

    /// The answers to `lines`, all written at once, in order.
    func requests(_ lines: [[UInt8]], timeout: Duration) async -> [Result<JSONObject, HookgateClientError>] {
        let eventLoop = channel.eventLoop
        let promises = lines.map { _ in eventLoop.makePromise(of: JSONObject.self) }
        let handler = self.handler
        eventLoop.execute {
            for (line, promise) in zip(lines, promises) { handler.value.send(line, waiter: .answer(promise)) }
        }
        let deadline = eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            // The waiters stay queued, so late answers are matched to them and dropped.
            for promise in promises { promise.fail(HookgateClientError.timedOut(seconds: timeout.seconds)) }
        }
        var results: [Result<JSONObject, HookgateClientError>] = []
        results.reserveCapacity(lines.count)
        for promise in promises {
            do {
                let answer = try await promise.futureResult.get()
                if answer["ok"]?.boolValue == true {
                    results.append(.success(answer))
                } else {
                    results.append(.failure(.server(answer: answer)))
                }
            } catch let error as HookgateClientError {
                results.append(.failure(error))
            } catch {
                results.append(.failure(.connectionLost(reason: "\(error)")))
            }
        }
        deadline.cancel()
        return results
    }

    /// Writes `line` and gives every line after its acknowledgement to `continuation`.
    func stream(
        _ line: [UInt8], into continuation: AsyncThrowingStream<JSONObject, any Error>.Continuation, flow: StreamFlow
    ) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.send(line, waiter: .stream(continuation, flow)) }
    }

    func close() {
        channel.close(promise: nil)
    }

    /// "No such file or directory (errno: 2)" rather than NIO's type names.
    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)) + " (errno \(io.errnoCode))"
        }
        if let socketError = error as? SocketAddressError, case .unixDomainSocketPathTooLong = socketError {
            return "the path is too long for a Unix socket"
        }
        return "\(error)"
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension TimeAmount {
    /// Clamped to what TimeAmount holds (about 292 years).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (nanoseconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self =
            overflow
            ? .nanoseconds(seconds < 0 ? .min : .max) : .nanoseconds(nanoseconds &+ attoseconds / 1_000_000_000)
    }
}

import HookgateCore
import HookgateWire
import NIOCore

/// The client end of one connection, on its event loop: writes request lines and hands
/// each answer line (framed by `LineFrameDecoder` before it) to the caller waiting
/// longest, since the daemon answers in request order. A streaming request
/// (`tail_requests`) takes every line after it.
final class ResponseLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Waiter {
        case answer(EventLoopPromise<JSONObject>)
        case stream(AsyncThrowingStream<JSONObject, any Error>.Continuation, StreamFlow)
    }

    /// The longest answer line accepted: a `list_requests` page of 1,000 items with
    /// 4 KiB bodies each, with room to spare.
    static let maxLineBytes = 64 << 20

    private enum State {
        case waitingForActive
        case active(ChannelHandlerContext)
        case closed(reason: String)
    }

    private var state = State.waitingForActive
    private var waiters = CircularBuffer<Waiter>()
    /// Set once a stream's acknowledgement came: every later line is one of its items.
    private var streaming = false

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { state = .active(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        state = .active(context)
        context.fireChannelActive()
    }

    /// Writes `line` (no newline) and queues `waiter` for its answer.
    func send(_ line: [UInt8], waiter: Waiter) {
        guard case .active(let context) = state else {
            let reason: String
            if case .closed(let why) = state { reason = why } else { reason = "not connected" }
            fail(waiter, HookgateClientError.connectionLost(reason: reason))
            return
        }
        waiters.append(waiter)
        var buffer = context.channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        let answer: JSONObject
        do {
            guard case .object(let object) = try JSONParser.parse(line.readableBytesView, maxValues: Int.max) else {
                throw HookgateClientError.badResponse("an answer that is not a JSON object")
            }
            answer = object
        } catch {
            let reason = (error as? HookgateClientError) ?? .badResponse("\(error)")
            close(context: context, reason: "\(reason)")
            return
        }
        guard let waiter = waiters.first else {
            close(context: context, reason: "an answer no request was waiting for")
            return
        }
        switch waiter {
        case .answer(let promise):
            waiters.removeFirst()
            promise.succeed(answer)
        case .stream(let continuation, let flow):
            // Items carry no `ok`; the acknowledgement says true, a refusal or the
            // daemon's overflow line false.
            let refused = streaming ? answer["ok"]?.boolValue == false : answer["ok"]?.boolValue != true
            if refused {
                waiters.removeFirst()
                continuation.finish(throwing: HookgateClientError.server(answer: answer))
                context.close(promise: nil)
            } else if streaming {
                continuation.yield(answer)
                // A consumer that has fallen behind stops the reading; the daemon then
                // ends the stream with its overflow line once its own bound is reached.
                if flow.itemQueued() {
                    try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
                }
            } else {
                streaming = true  // The acknowledgement: items follow.
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(reason: "the daemon closed the connection")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? LineTooLongError {
            close(context: context, reason: "an answer line over \(tooLong.limit) bytes")
        } else {
            close(context: context, reason: "\(error)")
        }
    }

    private func close(context: ChannelHandlerContext, reason: String) {
        failAll(reason: reason)
        context.close(promise: nil)
    }

    private func failAll(reason: String) {
        if case .closed = state {} else { state = .closed(reason: reason) }
        let error = HookgateClientError.connectionLost(reason: reason)
        while let waiter = waiters.popFirst() { fail(waiter, error) }
    }

    private func fail(_ waiter: Waiter, _ error: HookgateClientError) {
        switch waiter {
        case .answer(let promise): promise.fail(error)
        case .stream(let continuation, _): continuation.finish(throwing: error)
        }
    }
}

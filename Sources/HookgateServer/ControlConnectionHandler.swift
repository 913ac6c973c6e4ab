import HookgateCore
import NIOCore

/// Asks a connection to finish what it has started and close (daemon shutdown).
struct DrainConnectionEvent {}

/// One client connection: runs each request line as it arrives (pipelining) and writes
/// the responses strictly in request order, whatever order they complete in.
///
/// Bounded: it stops reading while `maxOutstanding` requests are unanswered or while the
/// client is not reading its responses, so a client cannot make the daemon queue without
/// limit.
final class ControlConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let dispatcher: CommandDispatcher
    private let maxOutstanding: Int

    /// Sequence number of the next request read / response to write.
    private var nextRequest = 0
    private var nextResponse = 0
    /// Responses that completed before an earlier one, waiting their turn.
    private var completed: [Int: [UInt8]] = [:]
    private var readHeld = false
    private var inChannelRead = false
    private var flushScheduled = false
    private var needsFlush = false
    /// No more requests will be read: the client half-closed, sent a line that was too
    /// long, or the daemon is shutting down. The connection closes once answered.
    private var inputDone = false
    private var closing = false

    init(dispatcher: CommandDispatcher, maxOutstanding: Int = 4096) {
        self.dispatcher = dispatcher
        self.maxOutstanding = maxOutstanding
    }

    private var outstanding: Int { nextRequest - nextResponse }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !inputDone else { return }
        let line = unwrapInboundIn(data)
        var promise: EventLoopPromise<[UInt8]>?
        let outcome = line.withUnsafeReadableBytes { bytes in
            dispatcher.dispatch(
                line: bytes,
                promise: {
                    let made = context.eventLoop.makePromise(of: [UInt8].self)
                    promise = made
                    return made
                }())
        }
        switch outcome {
        case .ignored:
            return
        case .immediate(let response):
            let sequence = takeSequence()
            inChannelRead = true
            complete(sequence, response, context: context)
            inChannelRead = false
        case .pending:
            let sequence = takeSequence()
            promise?.futureResult.assumeIsolated().whenSuccess { response in
                self.complete(sequence, response, context: context)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
    }

    private func takeSequence() -> Int {
        defer { nextRequest += 1 }
        return nextRequest
    }

    private func complete(_ sequence: Int, _ response: [UInt8], context: ChannelHandlerContext) {
        completed[sequence] = response
        while let next = completed.removeValue(forKey: nextResponse) {
            var buffer = context.channel.allocator.buffer(capacity: next.count + 1)
            buffer.writeBytes(next)
            buffer.writeInteger(UInt8(ascii: "\n"))
            context.write(wrapOutboundOut(buffer), promise: nil)
            nextResponse += 1
            needsFlush = true
        }
        if !inChannelRead { scheduleFlush(context: context) }
        resumeReadingIfPossible(context: context)
        closeIfFinished(context: context)
    }

    /// Coalesces the flushes of responses that complete in the same event-loop tick.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard needsFlush, !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flushIfNeeded(context: context)
        }
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        context.flush()
    }

    // MARK: - Backpressure

    func read(context: ChannelHandlerContext) {
        if inputDone || outstanding >= maxOutstanding || !context.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible(context: context)
        context.fireChannelWritabilityChanged()
    }

    private func resumeReadingIfPossible(context: ChannelHandlerContext) {
        guard readHeld, !inputDone, outstanding < maxOutstanding / 2 + 1, context.channel.isWritable else { return }
        readHeld = false
        context.read()
    }

    // MARK: - Closing

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            finishInput(context: context)
        } else if event is DrainConnectionEvent {
            finishInput(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tooLong = error as? LineTooLongError {
            guard !inputDone else { return }
            let sequence = takeSequence()
            inputDone = true
            let response = CommandDispatcher.failure(
                ProtocolError(.lineTooLong, "line longer than \(tooLong.limit) bytes; closing the connection"), id: nil)
            complete(sequence, response, context: context)
            return
        }
        // Anything else (a reset, a broken pipe) ends the connection.
        context.close(promise: nil)
    }

    private func finishInput(context: ChannelHandlerContext) {
        inputDone = true
        closeIfFinished(context: context)
    }

    private func closeIfFinished(context: ChannelHandlerContext) {
        guard inputDone, outstanding == 0, !closing else { return }
        closing = true
        // Writes complete in order, so when this empty one has, every response is out;
        // closing before that would drop responses still queued in the socket.
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        needsFlush = false
        written.futureResult.assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

import HookgateCore
import HookgateStore
import NIOCore

/// Asks a connection to finish what it has started and close (daemon shutdown).
struct DrainConnectionEvent {}

/// One client connection: runs each request line as it arrives (pipelining) and writes
/// the responses strictly in request order, whatever order they complete in.
///
/// Bounded: it stops reading while `maxOutstanding` requests are unanswered or while the
/// client is not reading its responses, so a client cannot make the daemon queue without
/// limit.
///
/// `tail_requests` turns the connection into a stream once its answer is written: the
/// lines after it are not run, request items follow as they are logged.
final class ControlConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let dispatcher: CommandDispatcher
    private let requestTail: RequestTail
    private let maxOutstanding: Int

    /// Sequence number of the next request read / response to write.
    private var nextRequest = 0
    private var nextResponse = 0
    /// Responses that completed before an earlier one, waiting their turn.
    private var completed: [Int: Reply] = [:]
    /// The unanswered `tail_requests`, if any; the lines read after it wait in
    /// `heldLines` (and reading pauses) until it is answered.
    private var tailRequest: Int?
    private var heldLines: [ByteBuffer] = []
    /// A line too long came after the held ones: answered after them.
    private var heldLineTooLong: Int?
    /// The stream this connection became, and the items it has not written yet
    /// (the socket was full); both counted against the subscriber's limit.
    private var tail: TailSubscriber?
    private var tailBacklog: [LoggedRequest] = []
    /// How long an overflowed stream's client gets to read the overflow line.
    private static let overflowCloseSeconds: Int64 = 10
    private var readHeld = false
    private var inChannelRead = false
    private var flushScheduled = false
    private var needsFlush = false
    /// No more requests will be read: the client half-closed, sent a line that was too
    /// long, or the daemon is shutting down. The connection closes once answered.
    private var inputDone = false
    private var closing = false
    /// The daemon is shutting down: no stream starts.
    private var draining = false

    init(dispatcher: CommandDispatcher, requestTail: RequestTail, maxOutstanding: Int = 4096) {
        self.dispatcher = dispatcher
        self.requestTail = requestTail
        self.maxOutstanding = maxOutstanding
    }

    private var outstanding: Int { nextRequest - nextResponse }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A stream reads only to notice the client closing; what it sends is not run.
        guard !inputDone, tail == nil else { return }
        let line = unwrapInboundIn(data)
        if tailRequest != nil {
            heldLines.append(line)
            return
        }
        inChannelRead = true
        run(line, context: context)
        inChannelRead = false
    }

    private func run(_ line: ByteBuffer, context: ChannelHandlerContext) {
        var promise: EventLoopPromise<Reply>?
        let outcome = line.withUnsafeReadableBytes { bytes in
            dispatcher.dispatch(
                line: bytes,
                promise: {
                    let made = context.eventLoop.makePromise(of: Reply.self)
                    promise = made
                    return made
                }())
        }
        switch outcome {
        case .ignored:
            return
        case .immediate(let response):
            complete(takeSequence(), Reply(line: response), context: context)
        case .pending, .pendingStream:
            let sequence = takeSequence()
            if case .pendingStream = outcome { tailRequest = sequence }
            promise?.futureResult.assumeIsolated().whenSuccess { reply in
                self.complete(sequence, reply, context: context)
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

    private func complete(_ sequence: Int, _ reply: Reply, context: ChannelHandlerContext) {
        completed[sequence] = reply
        var tailAnswered = false
        while let next = completed.removeValue(forKey: nextResponse) {
            writeLine(next.line, context: context)
            if nextResponse == tailRequest {
                tailAnswered = true
                if let stream = next.stream {
                    // A stream from here on: the lines after the tail are not run. One
                    // that cannot start (the daemon is draining, the client has gone)
                    // closes instead.
                    heldLines.removeAll()
                    heldLineTooLong = nil
                    if !draining && context.channel.isActive {
                        startStreaming(stream, context: context)
                    } else {
                        inputDone = true
                    }
                }
            }
            nextResponse += 1
        }
        if !inChannelRead { scheduleFlush(context: context) }
        if tailAnswered {
            tailRequest = nil
            if tail == nil { runHeldLines(context: context) }
        }
        resumeReadingIfPossible(context: context)
        closeIfFinished(context: context)
    }

    private func writeLine(_ line: [UInt8], context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    /// The `tail_requests` before them failed: the held lines run as if just read,
    /// until one of them is another `tail_requests`.
    private func runHeldLines(context: ChannelHandlerContext) {
        while !heldLines.isEmpty, tailRequest == nil {
            run(heldLines.removeFirst(), context: context)
        }
        if tailRequest == nil, let limit = heldLineTooLong {
            heldLineTooLong = nil
            answerLineTooLong(limit: limit, context: context)
        }
        scheduleFlush(context: context)
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
        if tail != nil {
            context.read()
        } else if inputDone || tailRequest != nil || outstanding >= maxOutstanding || !context.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writeTailBacklog(context: context)
        resumeReadingIfPossible(context: context)
        context.fireChannelWritabilityChanged()
    }

    private func resumeReadingIfPossible(context: ChannelHandlerContext) {
        guard readHeld, !inputDone, tailRequest == nil, outstanding < maxOutstanding / 2 + 1, context.channel.isWritable
        else { return }
        readHeld = false
        context.read()
    }

    // MARK: - Closing

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            // A stream goes on after a half-close: the client may still be reading.
            if tail == nil { finishInput(context: context) }
        } else if event is DrainConnectionEvent {
            draining = true
            if tail != nil {
                stopStream()
                closeAfterWriting(nil, deadline: nil, context: context)
            }
            finishInput(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tooLong = error as? LineTooLongError {
            // A stream does not read requests, however long.
            guard !inputDone, tail == nil else { return }
            inputDone = true
            if tailRequest != nil {
                heldLineTooLong = tooLong.limit
            } else {
                answerLineTooLong(limit: tooLong.limit, context: context)
            }
            return
        }
        // After a line too long the decoder refuses whatever else arrives: those bytes
        // are not read as requests, and the answers owed still go out.
        if error is ByteToMessageDecoderError, inputDone || tail != nil { return }
        // Anything else (a reset, a broken pipe) ends the connection.
        context.close(promise: nil)
    }

    private func answerLineTooLong(limit: Int, context: ChannelHandlerContext) {
        let response = CommandDispatcher.failure(
            ProtocolError(.lineTooLong, "line longer than \(limit) bytes; closing the connection"), id: nil)
        complete(takeSequence(), Reply(line: response), context: context)
    }

    private func finishInput(context: ChannelHandlerContext) {
        inputDone = true
        closeIfFinished(context: context)
    }

    private func closeIfFinished(context: ChannelHandlerContext) {
        guard inputDone, outstanding == 0, heldLines.isEmpty, heldLineTooLong == nil, tail == nil else { return }
        closeAfterWriting(nil, deadline: nil, context: context)
    }

    /// Writes `line` (if any) after everything before it and closes once all of it is
    /// out, or at `deadline` if the client does not read it by then.
    private func closeAfterWriting(_ line: [UInt8]?, deadline: TimeAmount?, context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        if let line { writeLine(line, context: context) }
        // Writes complete in order, so when this empty one has, every response is out;
        // closing before that would drop responses still queued in the socket.
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: written)
        needsFlush = false
        let forced = deadline.map {
            context.eventLoop.assumeIsolated().scheduleTask(in: $0) { context.close(promise: nil) }
        }
        written.futureResult.assumeIsolated().whenComplete { _ in
            forced?.cancel()
            context.close(promise: nil)
        }
    }

    // MARK: - tail_requests

    private func startStreaming(_ stream: TailStream, context: ChannelHandlerContext) {
        let target = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let subscriber = TailSubscriber(webhookID: stream.webhookID, eventLoop: context.eventLoop) { lines in
            let (handler, context) = target.value
            handler.streamed(lines, context: context)
        }
        tail = subscriber
        requestTail.subscribe(subscriber)
        // Reads may have paused while the answer was awaited; a stream reads to see EOF.
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// Lines published for this stream, or nil when it overflowed.
    private func streamed(_ lines: [LoggedRequest]?, context: ChannelHandlerContext) {
        guard tail != nil, !closing else { return }
        guard let lines else {
            overflowed(context: context)
            return
        }
        tailBacklog.append(contentsOf: lines)
        writeTailBacklog(context: context)
    }

    /// Writes what the socket takes now; the rest waits for it to drain.
    private func writeTailBacklog(context: ChannelHandlerContext) {
        guard let tail, !closing, !tailBacklog.isEmpty else { return }
        var written = 0
        while written < tailBacklog.count, context.channel.isWritable {
            writeLine(JSONWriter.bytes(CommandDispatcher.requestItem(tailBacklog[written])), context: context)
            written += 1
        }
        guard written > 0 else { return }
        tail.written(tailBacklog[..<written])
        tailBacklog.removeFirst(written)
        flushIfNeeded(context: context)
    }

    /// The client fell too far behind: it is told so after what it has been sent, and
    /// the connection closes once that is read (or after a while if it never is).
    private func overflowed(context: ChannelHandlerContext) {
        stopStream()
        closeAfterWriting(
            CommandDispatcher.failure(ProtocolError(.unavailable, "tail overflow"), id: nil),
            deadline: .seconds(Self.overflowCloseSeconds), context: context)
    }

    /// Ends the subscription (the subscriber, and its count of what was held, go with
    /// it); what is written stays written.
    private func stopStream() {
        guard let tail else { return }
        // Still not a connection that runs requests: it closes.
        inputDone = true
        requestTail.unsubscribe(tail)
        tailBacklog.removeAll()
        self.tail = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopStream()
        context.fireChannelInactive()
    }
}

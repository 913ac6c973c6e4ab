import HookgateCore
import HookgateStore
import HookgateWire
import NIOCore

/// Asks a connection to finish what it has started and close (daemon shutdown).
struct DrainConnectionEvent {}

/// What runs a connection's request lines: the command dispatcher, or a stand-in in tests.
protocol RequestDispatching: Sendable {
    func dispatch(line: UnsafeRawBufferPointer, promise: @autoclosure () -> EventLoopPromise<Reply>)
        -> DispatchOutcome
}

extension CommandDispatcher: RequestDispatching {}

/// One client connection: runs each request line as it arrives (pipelining) and writes
/// the answers strictly in request order, whatever order they complete in.
///
/// Bounded in bytes: answers the client has not read wait in the connection's outbox
/// (the channel is written only while it is writable), and no new request runs while
/// the outbox, the answers completed out of turn and the answers still being made
/// (by their estimate) reach `maxBufferedBytes`, or while `maxOutstanding` requests are
/// unanswered. Reading pauses meanwhile, so a client that never reads costs at most that
/// much memory, whatever it sends.
///
/// `tail_requests` turns the connection into a stream once its answer is written: the
/// lines after it are not run, request items follow as they are logged.
final class ControlConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Where the connection is in its life. Everything else the handler keeps is
    /// bookkeeping of requests and bytes, valid in any phase.
    enum Phase {
        /// Reads request lines and runs them.
        case running
        /// A `tail_requests` is unanswered: lines read after it wait in `waiting` (and
        /// reading pauses) until its answer says whether the connection is a stream.
        case awaitingTail(sequence: Int, input: Input)
        /// A `tail_requests` stream: request items are written as they are logged.
        case streaming(TailSubscriber)
        /// No more input (the client half-closed, sent a line too long, or the daemon is
        /// draining): what is waiting still runs, and the connection closes once every
        /// answer is written. `draining`: the daemon is shutting down, so a
        /// `tail_requests` among the waiting lines starts no stream.
        case finishing(draining: Bool)
        /// Closing: nothing more is run or written but the close's own line.
        case closing
    }

    /// While a `tail_requests` is awaited: whether input may still come.
    enum Input {
        case open
        /// The client half-closed (a stream may still start: it may be reading).
        case ended
        /// The daemon is shutting down: no stream starts.
        case draining
    }

    /// A line read but not run yet, or the line too long that ended the input.
    private enum WaitingInput {
        case line(ByteBuffer)
        case tooLong(limit: Int)
    }

    private let dispatcher: any RequestDispatching
    private let requestTail: RequestTail
    private let maxOutstanding: Int
    private let maxBufferedBytes: Int

    private(set) var phase = Phase.running

    /// Sequence number of the next request read / answer to write.
    private var nextRequest = 0
    private var nextResponse = 0
    /// Answers that completed before an earlier one, waiting their turn.
    private var completed: [Int: Reply] = [:]
    private var completedBytes = 0
    /// What the answers still being made may take, by their estimates.
    private var reservedBytes = 0
    /// Lines read but not run: behind an unanswered `tail_requests`, or over the bounds.
    private var waiting = CircularBuffer<WaitingInput>()
    /// Answers in order, not yet handed to the channel because it was not writable.
    private var outbox = CircularBuffer<[UInt8]>()
    private var outboxBytes = 0
    /// A stream's items not yet written (the socket was full); counted by its subscriber.
    private var tailBacklog = CircularBuffer<LoggedRequest>()
    /// How long an overflowed stream's client gets to read the overflow line.
    private static let overflowCloseSeconds: Int64 = 10
    private var readHeld = false
    private var inChannelRead = false
    private var flushScheduled = false
    private var needsFlush = false

    init(
        dispatcher: any RequestDispatching, requestTail: RequestTail, maxOutstanding: Int = 4096,
        maxBufferedBytes: Int = 8 << 20
    ) {
        self.dispatcher = dispatcher
        self.requestTail = requestTail
        self.maxOutstanding = maxOutstanding
        self.maxBufferedBytes = maxBufferedBytes
    }

    private var outstanding: Int { nextRequest - nextResponse }

    /// Bytes of answers held for this client: written to no socket yet, or being made.
    var heldBytes: Int { outboxBytes + completedBytes + reservedBytes }

    /// Whether another request may run now: below both bounds. (A request whose answer
    /// alone is estimated past the byte bound still runs when nothing else is held.)
    private var mayRunAnother: Bool { outstanding < maxOutstanding && heldBytes < maxBufferedBytes }

    // MARK: - Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A stream reads only to notice the client closing; what it sends is not run.
        guard case .running = phase else {
            if case .awaitingTail = phase { waiting.append(.line(unwrapInboundIn(data))) }
            return
        }
        let line = unwrapInboundIn(data)
        inChannelRead = true
        if waiting.isEmpty && mayRunAnother {
            run(line, context: context)
        } else {
            waiting.append(.line(line))
        }
        inChannelRead = false
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
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
        let sequence: Int
        var estimate = 0
        switch outcome {
        case .ignored:
            return
        case .immediate(let response):
            complete(takeSequence(), Reply(line: response), context: context)
            return
        case .pending(let answerBytes):
            sequence = takeSequence()
            estimate = answerBytes
            reservedBytes += answerBytes
        case .pendingStream:
            sequence = takeSequence()
            phase = .awaitingTail(sequence: sequence, input: phase.inputAfterTail)
        }
        promise?.futureResult.assumeIsolated().whenSuccess { reply in
            self.reservedBytes -= estimate
            self.complete(sequence, reply, context: context)
        }
    }

    private func takeSequence() -> Int {
        defer { nextRequest += 1 }
        return nextRequest
    }

    /// Runs the lines that wait, in order, as far as the phase and the bounds allow.
    private func runWaiting(context: ChannelHandlerContext) {
        while let first = waiting.first, phase.runsWaitingLines, mayRunAnother {
            waiting.removeFirst()
            switch first {
            case .line(let line): run(line, context: context)
            case .tooLong(let limit): answerLineTooLong(limit: limit, context: context)
            }
        }
    }

    private func complete(_ sequence: Int, _ reply: Reply, context: ChannelHandlerContext) {
        guard !phase.isClosing else { return }
        completed[sequence] = reply
        completedBytes += reply.line.count + 1
        var tailAnswer: Reply?
        while let next = completed.removeValue(forKey: nextResponse) {
            completedBytes -= next.line.count + 1
            outbox.append(next.line)
            outboxBytes += next.line.count + 1
            if case .awaitingTail(let tailSequence, _) = phase, tailSequence == nextResponse { tailAnswer = next }
            nextResponse += 1
        }
        if let tailAnswer, case .awaitingTail(_, let input) = phase {
            tailAnswered(tailAnswer, input, context: context)
        }
        runWaiting(context: context)
        writeOutbox(context: context)
        if !inChannelRead { scheduleFlush(context: context) }
        resumeReadingIfPossible(context: context)
        closeIfFinished(context: context)
    }

    /// The `tail_requests` answer is next in the outbox: the connection becomes a stream,
    /// or (refused, or a stream that cannot start) goes on as before.
    private func tailAnswered(_ reply: Reply, _ input: Input, context: ChannelHandlerContext) {
        guard let stream = reply.stream else {
            phase = input == .open ? .running : .finishing(draining: input == .draining)
            return
        }
        // The lines after the tail are not run.
        waiting.removeAll()
        if input != .draining && context.channel.isActive {
            startStreaming(stream, context: context)
        } else {
            phase = .finishing(draining: input == .draining)
        }
    }

    /// Hands the outbox to the channel while it is writable; a stream's items follow once
    /// the outbox is empty.
    private func writeOutbox(context: ChannelHandlerContext) {
        while let line = outbox.first, context.channel.isWritable {
            outbox.removeFirst()
            outboxBytes -= line.count + 1
            writeLine(line, context: context)
        }
        if outbox.isEmpty { writeTailBacklog(context: context) }
    }

    private func writeLine(_ line: [UInt8], context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    /// Coalesces the flushes of answers that complete in the same event-loop tick.
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
        switch phase {
        case .streaming:
            context.read()
        case .running where waiting.isEmpty && mayRunAnother:
            context.read()
        default:
            readHeld = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeOutbox(context: context)
            flushIfNeeded(context: context)
            runWaiting(context: context)
            writeOutbox(context: context)
            scheduleFlush(context: context)
            resumeReadingIfPossible(context: context)
            closeIfFinished(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// Reading resumes once the lines read have run and the bounds are well clear (half
    /// the unanswered requests, half the bytes), not at the first free slot.
    private func resumeReadingIfPossible(context: ChannelHandlerContext) {
        guard readHeld, phase.isRunning, waiting.isEmpty, outstanding < maxOutstanding / 2 + 1,
            heldBytes < maxBufferedBytes / 2
        else { return }
        readHeld = false
        context.read()
    }

    // MARK: - Closing

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            // A stream goes on after a half-close: the client may still be reading.
            endInput(.ended, context: context)
        } else if event is DrainConnectionEvent {
            if case .streaming = phase {
                stopStream()
                closeAfterWriting(nil, deadline: nil, context: context)
                return
            }
            endInput(.draining, context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func endInput(_ how: Input, context: ChannelHandlerContext) {
        switch phase {
        case .running:
            phase = .finishing(draining: how == .draining)
        case .finishing(draining: false) where how == .draining:
            phase = .finishing(draining: true)
        case .awaitingTail(let sequence, let input) where input != .draining:
            phase = .awaitingTail(sequence: sequence, input: how)
        default:
            return
        }
        runWaiting(context: context)
        closeIfFinished(context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let tooLong = error as? LineTooLongError {
            // Answered after the lines before it; nothing after it is read.
            switch phase {
            case .running:
                waiting.append(.tooLong(limit: tooLong.limit))
                phase = .finishing(draining: false)
                runWaiting(context: context)
            case .awaitingTail(let sequence, let input) where input == .open:
                waiting.append(.tooLong(limit: tooLong.limit))
                phase = .awaitingTail(sequence: sequence, input: .ended)
            default:
                // A stream does not read requests, however long.
                break
            }
            return
        }
        // After a line too long the decoder refuses whatever else arrives: those bytes
        // are not read as requests, and the answers owed still go out.
        if error is ByteToMessageDecoderError, !phase.isRunning { return }
        // Anything else (a reset, a broken pipe) ends the connection.
        context.close(promise: nil)
    }

    private func answerLineTooLong(limit: Int, context: ChannelHandlerContext) {
        let response = CommandDispatcher.failure(
            ProtocolError(.lineTooLong, "line longer than \(limit) bytes; closing the connection"), id: nil)
        complete(takeSequence(), Reply(line: response), context: context)
    }

    private func closeIfFinished(context: ChannelHandlerContext) {
        guard case .finishing = phase, outstanding == 0, waiting.isEmpty, outbox.isEmpty else { return }
        closeAfterWriting(nil, deadline: nil, context: context)
    }

    /// Writes `line` (if any) after everything before it and closes once all of it is
    /// out, or at `deadline` if the client does not read it by then.
    private func closeAfterWriting(_ line: [UInt8]?, deadline: TimeAmount?, context: ChannelHandlerContext) {
        guard !phase.isClosing else { return }
        phase = .closing
        // Whatever the outbox holds goes out first (the client reads it, or the deadline
        // closes the connection): answers are never dropped by a close.
        while let queued = outbox.popFirst() { writeLine(queued, context: context) }
        outboxBytes = 0
        if let line { writeLine(line, context: context) }
        // Writes complete in order, so when this empty one has, every answer is out;
        // closing before that would drop answers still queued in the socket.
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
        phase = .streaming(subscriber)
        requestTail.subscribe(subscriber)
        // Reads may have paused while the answer was awaited; a stream reads to see EOF.
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// Lines published for this stream, or nil when it overflowed.
    private func streamed(_ lines: [LoggedRequest]?, context: ChannelHandlerContext) {
        guard case .streaming = phase else { return }
        guard let lines else {
            overflowed(context: context)
            return
        }
        tailBacklog.append(contentsOf: lines)
        writeOutbox(context: context)
        flushIfNeeded(context: context)
    }

    /// Writes what the socket takes now; the rest waits for it to drain.
    private func writeTailBacklog(context: ChannelHandlerContext) {
        guard case .streaming(let tail) = phase, !tailBacklog.isEmpty else { return }
        var written: [LoggedRequest] = []
        while let item = tailBacklog.first, context.channel.isWritable {
            tailBacklog.removeFirst()
            writeLine(JSONWriter.bytes(CommandDispatcher.requestItem(item)), context: context)
            written.append(item)
        }
        if !written.isEmpty { tail.written(written) }
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
    /// it); what is written stays written. The connection then finishes.
    private func stopStream() {
        guard case .streaming(let tail) = phase else { return }
        requestTail.unsubscribe(tail)
        tailBacklog.removeAll()
        phase = .finishing(draining: true)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopStream()
        context.fireChannelInactive()
    }
}

extension ControlConnectionHandler.Phase {
    fileprivate var isRunning: Bool {
        if case .running = self { return true }
        return false
    }

    /// What a `tail_requests` run now knows of the input.
    fileprivate var inputAfterTail: ControlConnectionHandler.Input {
        switch self {
        case .running: return .open
        case .finishing(draining: true): return .draining
        default: return .ended
        }
    }

    fileprivate var isClosing: Bool {
        if case .closing = self { return true }
        return false
    }

    /// Lines that were read may run: while running, and while finishing (they were read
    /// before the input ended).
    fileprivate var runsWaitingLines: Bool {
        switch self {
        case .running, .finishing: return true
        case .awaitingTail, .streaming, .closing: return false
        }
    }
}

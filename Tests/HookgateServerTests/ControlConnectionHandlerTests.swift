import HookgateCore
import HookgateWire
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import HookgateServer

/// A dispatcher whose lines say what to do: `now:X` answers X at once, `later:X` leaves
/// the answer to the test (`answer("X")`), `big:X:N` is `later:X` estimated at N bytes,
/// `tail` is a `tail_requests`.
final class ScriptedDispatcher: RequestDispatching {
    private let pending = Mutex<[String: EventLoopPromise<Reply>]>([:])
    private let runLines = Mutex<[String]>([])

    /// Every line dispatched, in order.
    var dispatched: [String] { runLines.withLock { $0 } }

    func dispatch(line: UnsafeRawBufferPointer, promise: @autoclosure () -> EventLoopPromise<Reply>)
        -> DispatchOutcome
    {
        let text = String(decoding: line, as: UTF8.self)
        runLines.withLock { $0.append(text) }
        let parts = text.split(separator: ":").map(String.init)
        switch parts.first {
        case "now": return .immediate(Array(parts[1].utf8))
        case "later":
            let made = promise()
            pending.withLock { $0[parts[1]] = made }
            return .pending(answerBytes: 100)
        case "big":
            let made = promise()
            pending.withLock { $0[parts[1]] = made }
            return .pending(answerBytes: Int(parts[2]) ?? 0)
        case "tail":
            let made = promise()
            pending.withLock { $0["tail"] = made }
            return .pendingStream
        default: return .ignored
        }
    }

    func answer(_ key: String, with line: String? = nil, stream: Bool = false) {
        let promise = pending.withLock { $0.removeValue(forKey: key) }
        promise?.succeed(Reply(line: Array((line ?? key).utf8), stream: stream ? TailStream(webhookID: nil) : nil))
    }
}

/// Counts the reads the connection asks of the channel.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    let reads = Mutex(0)

    func read(context: ChannelHandlerContext) {
        reads.withLock { $0 += 1 }
        context.read()
    }
}

@Suite("Control connection handler")
struct ControlConnectionHandlerTests {
    final class Harness {
        let channel = EmbeddedChannel()
        let dispatcher = ScriptedDispatcher()
        let reads = ReadCounter()
        let handler: ControlConnectionHandler

        init(maxOutstanding: Int = 4096, maxBufferedBytes: Int = 8 << 20) throws {
            handler = ControlConnectionHandler(
                dispatcher: dispatcher, requestTail: RequestTail(), maxOutstanding: maxOutstanding,
                maxBufferedBytes: maxBufferedBytes)
            try channel.pipeline.syncOperations.addHandler(reads)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func send(_ lines: String...) throws {
            for line in lines { try channel.writeInbound(ByteBuffer(string: line)) }
            channel.pipeline.fireChannelReadComplete()
            channel.embeddedEventLoop.run()
        }

        /// The lines written so far (each ends in a newline, which is dropped).
        func written() throws -> [String] {
            var lines: [String] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                let text = String(buffer: buffer)
                if text.isEmpty { continue }
                #expect(text.hasSuffix("\n"))
                lines.append(String(text.dropLast()))
            }
            return lines
        }

        var readCount: Int { reads.reads.withLock { $0 } }

        func setWritable(_ writable: Bool) {
            channel.isWritable = writable
            channel.pipeline.fireChannelWritabilityChanged()
            channel.embeddedEventLoop.run()
        }
    }

    @Test func answersGoOutInRequestOrderWhateverOrderTheyComplete() throws {
        let harness = try Harness()
        try harness.send("later:a", "now:b", "later:c", "now:d")
        #expect(try harness.written().isEmpty)
        harness.dispatcher.answer("c")
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.written().isEmpty)
        harness.dispatcher.answer("a")
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.written() == ["a", "b", "c", "d"])
        #expect(harness.handler.heldBytes == 0)
    }

    /// A client that does not read: answers wait in the outbox, no request runs past the
    /// byte bound and reading stops; once the client reads, it all goes on in order.
    @Test func aClientThatDoesNotReadIsHeldAtTheByteBound() throws {
        let harness = try Harness(maxBufferedBytes: 1000)
        harness.setWritable(false)
        let answer = String(repeating: "x", count: 199)
        for i in 0..<20 { try harness.send("now:\(i)\(answer)") }
        // 200 bytes an answer: the fifth reaches 1000, and the rest wait unrun.
        #expect(harness.dispatcher.dispatched.count == 5)
        #expect(try harness.written().isEmpty)
        let readsBefore = harness.readCount
        harness.channel.read()
        #expect(harness.readCount == readsBefore, "reading goes on past the bound")

        harness.setWritable(true)
        #expect(harness.dispatcher.dispatched.count == 20)
        let lines = try harness.written()
        #expect(lines.map { $0.prefix { $0 != "x" } } == (0..<20).map { Substring("\($0)") })
        #expect(harness.readCount > readsBefore, "reading resumes once the answers are out")
    }

    /// Answers still being made count by their estimate: a large one holds the next
    /// requests back until it is answered; one always runs, however large.
    @Test func estimatesOfAnswersBeingMadeCount() throws {
        let harness = try Harness(maxBufferedBytes: 1000)
        try harness.send("big:a:5000", "now:b", "later:c")
        #expect(harness.dispatcher.dispatched == ["big:a:5000"])
        harness.dispatcher.answer("a")
        harness.channel.embeddedEventLoop.run()
        #expect(harness.dispatcher.dispatched == ["big:a:5000", "now:b", "later:c"])
        harness.dispatcher.answer("c")
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.written() == ["a", "b", "c"])
    }

    @Test func maxOutstandingHoldsTheNextRequest() throws {
        let harness = try Harness(maxOutstanding: 2)
        try harness.send("later:a", "later:b", "later:c")
        #expect(harness.dispatcher.dispatched == ["later:a", "later:b"])
        harness.dispatcher.answer("a")
        harness.channel.embeddedEventLoop.run()
        #expect(harness.dispatcher.dispatched == ["later:a", "later:b", "later:c"])
    }

    /// Lines after a `tail_requests` wait for its answer: refused, they run in order.
    @Test func linesAfterARefusedTailRun() throws {
        let harness = try Harness()
        try harness.send("tail", "now:x", "now:y")
        #expect(harness.dispatcher.dispatched == ["tail"])
        harness.dispatcher.answer("tail", with: "refused")
        harness.channel.embeddedEventLoop.run()
        #expect(harness.dispatcher.dispatched == ["tail", "now:x", "now:y"])
        #expect(try harness.written() == ["refused", "x", "y"])
        guard case .running = harness.handler.phase else {
            Issue.record("not running: \(harness.handler.phase)")
            return
        }
    }

    /// A tail that becomes a stream: the lines after it are never run.
    @Test func linesAfterAStreamingTailAreNotRun() throws {
        let harness = try Harness()
        try harness.send("tail", "now:x")
        harness.dispatcher.answer("tail", with: "streaming", stream: true)
        harness.channel.embeddedEventLoop.run()
        try harness.send("now:z")
        #expect(harness.dispatcher.dispatched == ["tail"])
        #expect(try harness.written() == ["streaming"])
        guard case .streaming = harness.handler.phase else {
            Issue.record("not streaming: \(harness.handler.phase)")
            return
        }
    }

    /// The daemon draining while a tail is awaited: no stream starts, the connection
    /// closes once answered.
    @Test func drainingStartsNoStream() throws {
        let harness = try Harness()
        try harness.send("tail")
        harness.channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent())
        harness.dispatcher.answer("tail", with: "streaming", stream: true)
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.written() == ["streaming"])
        #expect(!harness.channel.isActive)
    }

    /// A half-close: what was sent is answered, then the connection closes.
    @Test func halfCloseClosesOnceAnswered() throws {
        let harness = try Harness()
        try harness.send("later:a", "now:b")
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        harness.channel.embeddedEventLoop.run()
        #expect(harness.channel.isActive)
        harness.dispatcher.answer("a")
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.written() == ["a", "b"])
        #expect(!harness.channel.isActive)
    }

    /// A half-close while answers wait for the client to read: they all go out first.
    @Test func halfCloseOfAClientNotReadingWaitsForItsAnswers() throws {
        let harness = try Harness()
        harness.setWritable(false)
        try harness.send("now:a", "now:b")
        harness.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        harness.channel.embeddedEventLoop.run()
        #expect(harness.channel.isActive)
        harness.setWritable(true)
        #expect(try harness.written() == ["a", "b"])
        #expect(!harness.channel.isActive)
    }

    /// A line too long is answered after the lines before it, and nothing after it runs.
    @Test func aLineTooLongIsAnsweredInItsTurn() throws {
        let harness = try Harness()
        try harness.send("later:a")
        harness.channel.pipeline.fireErrorCaught(LineTooLongError(limit: 64))
        try harness.send("now:after")
        harness.channel.embeddedEventLoop.run()
        #expect(harness.channel.isActive)
        harness.dispatcher.answer("a")
        harness.channel.embeddedEventLoop.run()
        let lines = try harness.written()
        #expect(lines.count == 2)
        #expect(lines.first == "a")
        #expect(lines.last?.contains(#""code":"line_too_long""#) == true)
        #expect(harness.dispatcher.dispatched == ["later:a"])
        #expect(!harness.channel.isActive)
    }
}

import Dispatch
import HookgateCore
import HookgateStore
import HookgateWire
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization

@testable import HookgateServer

#if canImport(Glibc)
    import Glibc
#endif

/// What every input goes through: the line decoder, the JSON parser and the top-level
/// scan, the text parsers that read client input, and command dispatch against a real
/// store. Any crash, hang or malformed answer is a finding.
final class FuzzTarget: Sendable {
    static let shared = FuzzTarget()

    private let loopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let dispatcher: CommandDispatcher

    private init() {
        var template = Array("/tmp/hookgate-fuzz.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("mkdtemp failed")
        }
        let directory = String(cString: made)
        do {
            let store = try SQLiteStore(directory: directory, sync: .normal)
            dispatcher = CommandDispatcher(
                store: store, matcher: ShardedMatcher(shardCount: 2),
                options: .init(allowHTTP: false, maxEventBytes: 2048),
                logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            fatalError("cannot open a store in \(directory): \(error)")
        }
    }

    func run(_ input: UnsafeRawBufferPointer) {
        _ = try? JSONParser.parse(buffer: input)
        _ = JSONTopLevelScan.scalars(of: ["cmd", "id"], in: input)
        if let text = String(validating: input, as: UTF8.self) {
            _ = Timestamp(rfc3339: text)
            _ = LogRedaction.url(text)
            _ = IPAddress(text)
            _ = CIDR(text)
            _ = Units.byteCount(text)
            _ = Units.durationMicroseconds(text)
            _ = Identifiers.timeOfTimeOrderedUUID(text)
            _ = RetryAfter.delay(text, now: Timestamp(microseconds: 1_700_000_000_000_000))
        }
        for line in decodeLines(input) { dispatch(line) }
    }

    /// The input as the control socket would frame it (a small line limit, so long lines
    /// are refused as they would be).
    private func decodeLines(_ input: UnsafeRawBufferPointer) -> [ByteBuffer] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maxLineBytes: 1024)))
        var buffer = channel.allocator.buffer(capacity: input.count)
        buffer.writeBytes(input)
        do {
            try channel.writeInbound(buffer)
        } catch is LineTooLongError {
        } catch {
            fatalError("the line decoder failed: \(error)")
        }
        _ = try? channel.finish(acceptAlreadyClosed: true)
        var lines: [ByteBuffer] = []
        while let line = try? channel.readInbound(as: ByteBuffer.self) { lines.append(line) }
        return lines
    }

    /// Runs one line and checks its answer: one JSON object with `ok`, within a few
    /// seconds.
    private func dispatch(_ line: ByteBuffer) {
        let loop = loopGroup.next()
        let promise = loop.makePromise(of: Reply.self)
        let outcome = line.withUnsafeReadableBytes { dispatcher.dispatch(line: $0, promise: promise) }
        let answer: [UInt8]
        switch outcome {
        case .ignored:
            promise.succeed(Reply(line: []))
            return
        case .immediate(let bytes):
            promise.succeed(Reply(line: []))
            answer = bytes
        case .pending, .pendingStream:
            let done = DispatchSemaphore(value: 0)
            let result = Mutex<[UInt8]?>(nil)
            promise.futureResult.whenSuccess { reply in
                result.withLock { $0 = reply.line }
                done.signal()
            }
            guard done.wait(timeout: .now() + 10) == .success, let bytes = result.withLock({ $0 }) else {
                fatalError("no answer within 10 s to: \(String(buffer: line))")
            }
            answer = bytes
        }
        guard case .object(let object)? = try? JSONParser.parse(answer), object["ok"]?.boolValue != nil,
            !answer.contains(UInt8(ascii: "\n"))
        else {
            fatalError("a malformed answer \(String(decoding: answer, as: UTF8.self)) to: \(String(buffer: line))")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.shared.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}

#if FUZZING
    /// libFuzzer's driver, for a program with its own `main` (SwiftPM gives every
    /// executable one).
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
    ) -> CInt
#endif

/// Built with `-sanitize=fuzzer -DFUZZING`: libFuzzer's driver with its usual flags.
/// An ordinary build: replays the files named on the command line (a corpus, or a crash
/// a fuzzing run saved) through the same target.
@main
struct FuzzMain {
    static func main() {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzzOneInput($0, $1) })
        #else
            var replayed = 0
            for path in CommandLine.arguments.dropFirst() {
                guard let file = fopen(path, "rb") else {
                    print("cannot open \(path)")
                    exit(2)
                }
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = fread(&chunk, 1, chunk.count, file)
                    if count <= 0 { break }
                    bytes += chunk[..<count]
                }
                fclose(file)
                bytes.withUnsafeBytes { _ = fuzzOneInput($0.baseAddress, $0.count) }
                replayed += 1
            }
            print("replayed \(replayed) inputs")
        #endif
    }
}

import Dispatch
import HookgateCore
import HookgateStore
import NIOCore

/// What the dispatcher made of one request line.
enum DispatchOutcome: Sendable {
    /// The response line, known without waiting (parse and validation errors, ping).
    case immediate([UInt8])
    /// The command was handed to the store; the response line completes the promise.
    /// `answerBytes` is what its answer may take, so a connection can bound what it holds.
    case pending(answerBytes: Int)
    /// `tail_requests`: pending like the others, but its reply may turn the connection
    /// into a stream, so the lines after it wait until it is answered.
    case pendingStream
    /// A line with nothing on it: no request, no response.
    case ignored
}

/// A response line, and whether the connection becomes a `tail_requests` stream once
/// it is written.
struct Reply: Sendable {
    var line: [UInt8]
    var stream: TailStream?
}

/// What a `tail_requests` stream shows: every webhook's attempts, or one's.
struct TailStream: Sendable {
    var webhookID: String?
}

/// Completes one request's response from wherever the work finishes, and counts it.
struct Responder: Sendable {
    let id: JSON?
    let promise: EventLoopPromise<Reply>
    let command: Command
    let metrics: HookgateMetrics
    /// When the request's line was read (`DispatchTime` nanoseconds).
    let readAt: UInt64

    func succeed(_ fields: JSONObject) {
        answered(outcome: "ok")
        promise.succeed(Reply(line: CommandDispatcher.success(fields, id: id)))
    }

    func fail(_ error: ProtocolError) {
        answered(outcome: error.code.rawValue)
        promise.succeed(Reply(line: CommandDispatcher.failure(error, id: id)))
    }

    func startStream(_ stream: TailStream) {
        answered(outcome: "ok")
        promise.succeed(Reply(line: CommandDispatcher.success(["streaming": true], id: id), stream: stream))
    }

    private func answered(outcome: String) {
        metrics.request(command: command.rawValue, outcome: outcome)
        if command == .emitEvent {
            metrics.emitDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds &- readAt))
        }
    }
}

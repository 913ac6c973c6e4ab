import HookgateCore

/// Why a call failed: the daemon's own error answer, or the connection.
public enum HookgateClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The daemon answered `{"ok":false,"error":{...}}`. `code` is the protocol's
    /// snake_case code as sent (`ErrorCode(rawValue:)` names the known ones).
    case server(code: String, message: String, field: String?)
    /// No connection could be made to `socketPath`.
    case cannotConnect(socketPath: String, reason: String)
    /// The connection closed before the answer came. The request may or may not have
    /// taken effect; the next call connects again.
    case connectionLost(reason: String)
    /// No answer within the call's timeout. The connection stays open: a late answer is
    /// dropped, and later calls are answered in order as usual.
    case timedOut(seconds: Double)
    /// The daemon's line was not the protocol's JSON.
    case badResponse(String)
    /// A streaming command (`tail_requests`) given to `send` or `pipeline`: it would turn
    /// the shared connection into its stream. `stream(_:)` takes it.
    case streamingCommand(String)

    /// The protocol error code, for a server error with a known code.
    public var errorCode: ErrorCode? {
        if case .server(let code, _, _) = self { return ErrorCode(rawValue: code) }
        return nil
    }

    public var description: String {
        switch self {
        case .server(let code, let message, let field):
            return field.map { "\(code): \(message) (\($0))" } ?? "\(code): \(message)"
        case .cannotConnect(let socketPath, let reason): return "cannot connect to \(socketPath): \(reason)"
        case .connectionLost(let reason): return "connection lost: \(reason)"
        case .timedOut(let seconds): return "no answer within \(seconds) s"
        case .badResponse(let detail): return "bad response: \(detail)"
        case .streamingCommand(let command): return "\(command) streams: use stream(_:), not send or pipeline"
        }
    }

    /// The error of an `ok: false` answer.
    static func server(answer: JSONObject) -> HookgateClientError {
        let error = answer["error"]?.objectValue
        return .server(
            code: error?["code"]?.stringValue ?? "internal", message: error?["message"]?.stringValue ?? "",
            field: error?["field"]?.stringValue)
    }
}

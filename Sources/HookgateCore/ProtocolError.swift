/// The stable error codes of control protocol v1.
public enum ErrorCode: String, Sendable, CaseIterable {
    case badJSON = "bad_json"
    case badRequest = "bad_request"
    case unknownCommand = "unknown_command"
    case validation
    case notFound = "not_found"
    case payloadTooLarge = "payload_too_large"
    case lineTooLong = "line_too_long"
    case unavailable
    /// The request is valid, but the resource's state forbids it (`recover` on a disabled
    /// webhook).
    case conflict
    case `internal`
}

/// A failed request: the `error` object of a response.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String
    /// The JSON path of the one field at fault, from the request's root.
    public let field: String?

    public init(_ code: ErrorCode, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    /// A `validation` error in the platform's style: "`field`: `rule`".
    public static func invalid(_ field: String, _ rule: String) -> ProtocolError {
        ProtocolError(.validation, "\(field): \(rule)", field: field)
    }

    public static func unknownField(_ field: String) -> ProtocolError {
        invalid(field, "unknown field")
    }

    public var json: JSON {
        var object = JSONObject([("code", .string(code.rawValue)), ("message", .string(message))])
        if let field { object["field"] = .string(field) }
        return .object(object)
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

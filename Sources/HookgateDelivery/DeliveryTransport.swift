import HookgateCore

/// One POST to a webhook's URL.
public struct DeliveryRequest: Sendable {
    /// The caller's tag, echoed in the response.
    public var tag: UInt64
    public var url: String
    /// Header lines, `Name: value`.
    public var headers: [String]
    public var body: [UInt8]

    public init(tag: UInt64, url: String, headers: [String], body: [UInt8]) {
        self.tag = tag
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// How an attempt failed before (or instead of) an HTTP answer; `http` is an answer
/// that was not 2xx. The names are the request log's `error_class`.
public enum DeliveryErrorClass: String, Sendable, CaseIterable {
    case http
    case timeout
    case dns
    case connect
    case tls
    case network
    case blockedDestination = "blocked_destination"
}

/// What came of one POST.
public struct DeliveryResponse: Sendable {
    public var tag: UInt64
    /// The HTTP status, when an answer arrived.
    public var httpStatus: Int?
    /// Set when no answer arrived (transport failure or a refused destination).
    public var failure: DeliveryErrorClass?
    /// What went wrong, in words (curl's message or the address guard's).
    public var error: String?
    public var latencyMicroseconds: Int64
    /// The first `DeliveryTransportOptions.maxResponseBodyBytes` of the answer's body.
    public var responseBody: [UInt8]
    /// The answer's `Retry-After` header, as sent.
    public var retryAfter: String?

    public init(
        tag: UInt64, httpStatus: Int?, failure: DeliveryErrorClass?, error: String?, latencyMicroseconds: Int64,
        responseBody: [UInt8], retryAfter: String?
    ) {
        self.tag = tag
        self.httpStatus = httpStatus
        self.failure = failure
        self.error = error
        self.latencyMicroseconds = latencyMicroseconds
        self.responseBody = responseBody
        self.retryAfter = retryAfter
    }

    public var isSuccess: Bool { failure == nil && (200...299).contains(httpStatus ?? 0) }
}

public struct DeliveryTransportOptions: Sendable {
    public var workers: Int
    public var connectTimeoutMicroseconds: Int64
    public var requestTimeoutMicroseconds: Int64
    /// PEM certificates trusted in addition to the system's bundle (`--ca-file`).
    public var extraCertificatesPEM: [UInt8]
    /// Where the system's bundle is read from.
    public var systemBundlePath: String
    /// Where the system's bundle and the extra certificates are written as one file
    /// when there are extra certificates (curl copies an in-memory bundle into every
    /// transfer; a file it reads once per connection).
    public var bundleDirectory: String
    public var addressGuard: AddressGuard
    public var allowHTTP: Bool
    /// Connections open to one receiving host at most (`--max-connections-per-host`),
    /// shared evenly by the workers: each multi handle gets `max(1, cap / workers)`.
    public var maxConnectionsPerHost: Int
    public static let maxResponseBodyBytes = 4096

    public init(
        workers: Int = 2, connectTimeoutMicroseconds: Int64 = 5_000_000, requestTimeoutMicroseconds: Int64 = 15_000_000,
        extraCertificatesPEM: [UInt8] = [], systemBundlePath: String = "/etc/ssl/certs/ca-certificates.crt",
        bundleDirectory: String, addressGuard: AddressGuard = AddressGuard(), allowHTTP: Bool = false,
        maxConnectionsPerHost: Int = 32
    ) {
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.bundleDirectory = bundleDirectory
        self.workers = workers
        self.connectTimeoutMicroseconds = connectTimeoutMicroseconds
        self.requestTimeoutMicroseconds = requestTimeoutMicroseconds
        self.extraCertificatesPEM = extraCertificatesPEM
        self.systemBundlePath = systemBundlePath
        self.addressGuard = addressGuard
        self.allowHTTP = allowHTTP
    }
}

/// What the delivery engine sends through: `CurlTransport` in the daemon, a scripted
/// receiver in the engine's unit tests.
public protocol DeliverySending: Sendable {
    /// Sends each request; `completion` is called once per request, from any thread.
    func send(_ requests: [DeliveryRequest], completion: @escaping @Sendable (DeliveryResponse) -> Void)
    /// Ends what is in flight: each gets a response whose error is `CurlTransport.shutdownMessage`.
    func shutdown()
}

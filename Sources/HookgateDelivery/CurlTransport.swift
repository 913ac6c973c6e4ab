import CCurl
import Foundation
import HookgateCore
import Synchronization

/// The libcurl worker pool: `workers` threads, each owning one multi handle (keep-alive
/// connection reuse, HTTP/2 where offered), fed round-robin.
public final class CurlTransport: Sendable {
    /// The `error` of a transfer abandoned at shutdown: no answer, and no attempt to log.
    public static let shutdownMessage = "abandoned: hookgate is shutting down"

    private let workers: [CurlWorker]
    private let next = Mutex(0)

    public init(options: DeliveryTransportOptions) throws {
        CurlGlobal.initialise()
        let settings = CurlWorker.Settings(
            connectTimeoutMilliseconds: Int(options.connectTimeoutMicroseconds / 1000),
            requestTimeoutMilliseconds: Int(options.requestTimeoutMicroseconds / 1000),
            caFile: try Self.caFile(options), addressGuard: options.addressGuard, allowHTTP: options.allowHTTP,
            maxConnectionsPerHost: max(1, options.maxConnectionsPerHost / max(1, options.workers)))
        workers = try (0..<max(1, options.workers)).map { try CurlWorker(number: $0, settings: settings) }
    }

    /// The CA file curl reads: the system's bundle, or with extra certificates (`--ca-file`
    /// adds to the system's bundle rather than replacing it) both written to one file.
    static func caFile(_ options: DeliveryTransportOptions) throws -> String {
        guard !options.extraCertificatesPEM.isEmpty else { return options.systemBundlePath }
        var bundle = FileManager.default.contents(atPath: options.systemBundlePath).map { Array($0) } ?? []
        bundle.append(0x0A)
        bundle.append(contentsOf: options.extraCertificatesPEM)
        let path = options.bundleDirectory + "/ca-bundle.pem"
        do {
            try Data(bundle).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw DeliveryError("cannot write the CA bundle \(path): \(error)")
        }
        return path
    }

    /// Sends `request`; `completion` runs on a worker thread when it is done.
    public func send(_ request: DeliveryRequest, completion: @escaping @Sendable (DeliveryResponse) -> Void) {
        send([request], completion: completion)
    }

    /// Sends `requests`, spread over the workers (one wake-up each); `completion` runs on
    /// a worker's thread once per request as each is done (the response's `tag` says which).
    public func send(_ requests: [DeliveryRequest], completion: @escaping @Sendable (DeliveryResponse) -> Void) {
        guard !requests.isEmpty else { return }
        let first = next.withLock { value -> Int in
            defer { value = (value + 1) % workers.count }
            return value
        }
        let shares = min(workers.count, requests.count)
        for share in 0..<shares {
            let part = stride(from: share, to: requests.count, by: shares).map { requests[$0] }
            workers[(first + share) % workers.count].submit(part, completion: completion)
        }
    }

    /// Stops every worker: transfers still running are abandoned and completed as
    /// `network` failures ("shutting down").
    public func shutdown() {
        for worker in workers { worker.stop() }
    }
}

/// curl_global_init must run once, before any other thread uses libcurl.
enum CurlGlobal {
    private static let done = Mutex(false)

    static func initialise() {
        done.withLock { done in
            guard !done else { return }
            curl_global_init(Int(CURL_GLOBAL_DEFAULT))
            done = true
        }
    }
}

/// One worker thread and its multi handle.
///
/// `@unchecked Sendable`: `multi` and the running transfers are touched only on the
/// worker's own thread; other threads reach it only through `inbox` (a Mutex) and
/// curl_multi_wakeup, which libcurl documents as callable from any thread.
final class CurlWorker: @unchecked Sendable {
    struct Settings: Sendable {
        var connectTimeoutMilliseconds: Int
        var requestTimeoutMilliseconds: Int
        var caFile: String
        var addressGuard: AddressGuard
        var allowHTTP: Bool
        /// This worker's share of `--max-connections-per-host`; transfers past it wait
        /// in libcurl for a connection to that host to be free.
        var maxConnectionsPerHost: Int
    }

    private struct Job: Sendable {
        let request: DeliveryRequest
        let completion: @Sendable (DeliveryResponse) -> Void
    }

    private struct Inbox {
        var jobs: [Job] = []
        var stopping = false
    }

    private let settings: Settings
    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    private let finished = Mutex(false)
    private var thread: Thread?

    init(number: Int, settings: Settings) throws {
        self.settings = settings
        guard let multi = curl_multi_init() else { throw DeliveryError("curl_multi_init failed") }
        self.multi = multi
        // Let HTTP/2 carry many requests over one connection where the server offers it.
        _ = hookgate_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        _ = hookgate_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, settings.maxConnectionsPerHost)
        let thread = Thread { [self] in self.run() }
        thread.name = "hookgate.curl\(number)"
        self.thread = thread
        thread.start()
    }

    func submit(_ requests: [DeliveryRequest], completion: @escaping @Sendable (DeliveryResponse) -> Void) {
        let accepted = inbox.withLock { inbox -> Bool in
            guard !inbox.stopping else { return false }
            for request in requests { inbox.jobs.append(Job(request: request, completion: completion)) }
            return true
        }
        if accepted {
            curl_multi_wakeup(multi)
        } else {
            for request in requests {
                completion(Transfer.failed(request.tag, .network, CurlTransport.shutdownMessage))
            }
        }
    }

    func stop() {
        inbox.withLock { $0.stopping = true }
        curl_multi_wakeup(multi)
        while !finished.withLock({ $0 }) { usleep(1000) }
    }

    // MARK: - The worker thread

    private var running: [UnsafeMutableRawPointer: Transfer] = [:]
    /// Finished handles with the shared options set, for the next transfers.
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private static let maxIdleHandles = 256

    private func run() {
        var stillRunning: Int32 = 0
        while true {
            let (jobs, stopping) = inbox.withLock { inbox -> ([Job], Bool) in
                defer { inbox.jobs.removeAll() }
                return (inbox.jobs, inbox.stopping)
            }
            for job in jobs { start(job) }
            if stopping { break }
            curl_multi_perform(multi, &stillRunning)
            collectFinished()
            var descriptors: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &descriptors)
        }
        for (easy, transfer) in running {
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
            transfer.complete(Transfer.failed(transfer.tag, .network, CurlTransport.shutdownMessage))
        }
        running.removeAll()
        for easy in idleHandles { curl_easy_cleanup(easy) }
        idleHandles.removeAll()
        curl_multi_cleanup(multi)
        finished.withLock { $0 = true }
    }

    private func start(_ job: Job) {
        let easy: UnsafeMutableRawPointer
        if let reused = idleHandles.popLast() {
            easy = reused
        } else {
            guard let made = curl_easy_init() else {
                job.completion(Transfer.failed(job.request.tag, .network, "curl_easy_init failed"))
                return
            }
            if let problem = configureShared(made) {
                curl_easy_cleanup(made)
                job.completion(Transfer.failed(job.request.tag, .network, problem))
                return
            }
            easy = made
        }
        let transfer = Transfer(job.request, completion: job.completion, guard: settings.addressGuard)
        if let problem = configure(easy, transfer) {
            curl_easy_cleanup(easy)
            job.completion(Transfer.failed(job.request.tag, .network, problem))
            return
        }
        running[easy] = transfer
        curl_multi_add_handle(multi, easy)
    }

    /// A finished transfer's handle goes back to the idle list (up to a bound), its
    /// pointers to the transfer's memory cleared.
    private func recycle(_ easy: UnsafeMutableRawPointer) {
        guard idleHandles.count < Self.maxIdleHandles else {
            curl_easy_cleanup(easy)
            return
        }
        _ = hookgate_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, nil)
        _ = hookgate_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, nil)
        _ = hookgate_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, nil)
        _ = hookgate_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, nil)
        _ = hookgate_curl_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, nil)
        idleHandles.append(easy)
    }

    /// The options every transfer shares, set once per handle.
    private func configureShared(_ easy: UnsafeMutableRawPointer) -> String? {
        var options = OptionResults()
        func check(_ code: CURLcode, _ name: String) { options.check(code, name) }
        // Only the scheme the URL rule allows; never another protocol through a redirect.
        check(
            hookgate_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, settings.allowHTTP ? "https,http" : "https"),
            "protocols")
        check(hookgate_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        check(hookgate_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        // An empty proxy disables proxies, environment variables included: curl must
        // connect to the receiver itself, where the address guard can check it.
        check(hookgate_curl_setopt_string(easy, CURLOPT_PROXY, ""), "PROXY")
        check(
            hookgate_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, settings.connectTimeoutMilliseconds), "timeout")
        check(hookgate_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, settings.requestTimeoutMilliseconds), "timeout")
        check(hookgate_curl_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)), "HTTP version")
        check(hookgate_curl_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1), "VERIFYPEER")
        check(hookgate_curl_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2), "VERIFYHOST")
        check(hookgate_curl_setopt_string(easy, CURLOPT_CAINFO, settings.caFile), "CA file")
        check(hookgate_curl_setopt_long(easy, CURLOPT_POST, 1), "POST")
        check(hookgate_curl_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteBody), "write callback")
        check(hookgate_curl_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlReadHeader), "header callback")
        check(hookgate_curl_setopt_opensocket_callback(easy, curlOpenSocket), "open socket callback")
        return options.failed
    }

    /// Sets up one transfer on a handle with the shared options; the name of the option
    /// that failed, or nil.
    private func configure(_ easy: UnsafeMutableRawPointer, _ transfer: Transfer) -> String? {
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var options = OptionResults()
        func check(_ code: CURLcode, _ name: String) { options.check(code, name) }
        check(hookgate_curl_setopt_string(easy, CURLOPT_URL, transfer.url), "URL")
        check(
            hookgate_curl_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(transfer.body.count)), "body size")
        transfer.body.withUnsafeBufferPointer { body in
            body.withMemoryRebound(to: CChar.self) {
                check(
                    hookgate_curl_setopt_pointer(
                        easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress)), "body")
            }
        }
        check(hookgate_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, transfer.headerList), "headers")
        check(hookgate_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, context), "write data")
        check(hookgate_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, context), "header data")
        check(hookgate_curl_setopt_pointer(easy, CURLOPT_OPENSOCKETDATA, context), "open socket data")
        check(hookgate_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer), "error buffer")
        return options.failed
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = hookgate_curl_msg_result(message)
            curl_multi_remove_handle(multi, easy)
            if let transfer = running.removeValue(forKey: easy) {
                transfer.complete(transfer.response(code: code, easy: easy))
            }
            recycle(easy)
        }
    }
}

/// The first curl_easy_setopt that failed among a handle's options, in words.
private struct OptionResults {
    private(set) var failed: String?

    mutating func check(_ code: CURLcode, _ name: String) {
        if code != CURLE_OK, failed == nil { failed = "\(name): \(String(cString: curl_easy_strerror(code)))" }
    }
}

public struct DeliveryError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The state of one transfer, owned by its worker thread; libcurl's callbacks reach it
/// through the context pointer.
final class Transfer {
    let tag: UInt64
    let url: String
    let body: [UInt8]
    let headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>
    let addressGuard: AddressGuard
    private let completion: @Sendable (DeliveryResponse) -> Void
    var responseBody: [UInt8] = []
    var retryAfter: String?
    var blockedReason: String?

    init(_ request: DeliveryRequest, completion: @escaping @Sendable (DeliveryResponse) -> Void, guard: AddressGuard) {
        tag = request.tag
        url = request.url
        body = request.body
        self.completion = completion
        addressGuard = `guard`
        var list: UnsafeMutablePointer<curl_slist>?
        // "Expect:" off: curl would otherwise wait for 100-continue on larger bodies.
        for line in request.headers + ["Expect:"] { list = curl_slist_append(list, line) }
        headerList = list
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    func complete(_ response: DeliveryResponse) { completion(response) }

    static func failed(_ tag: UInt64, _ failure: DeliveryErrorClass, _ error: String) -> DeliveryResponse {
        DeliveryResponse(
            tag: tag, httpStatus: nil, failure: failure, error: error, latencyMicroseconds: 0, responseBody: [],
            retryAfter: nil)
    }

    func response(code: CURLcode, easy: UnsafeMutableRawPointer) -> DeliveryResponse {
        var totalTime: Double = 0
        _ = hookgate_curl_getinfo_double(easy, CURLINFO_TOTAL_TIME, &totalTime)
        let latency = Int64(totalTime * 1_000_000)
        if code == CURLE_OK {
            var status = 0
            _ = hookgate_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            let success = (200...299).contains(status)
            return DeliveryResponse(
                tag: tag, httpStatus: status, failure: success ? nil : .http,
                error: success ? nil : Self.httpError(status), latencyMicroseconds: latency,
                responseBody: responseBody, retryAfter: retryAfter)
        }
        let detail = String(cString: errorBuffer)
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        if let blockedReason {
            return DeliveryResponse(
                tag: tag, httpStatus: nil, failure: .blockedDestination, error: "refused to connect: \(blockedReason)",
                latencyMicroseconds: latency, responseBody: [], retryAfter: nil)
        }
        return DeliveryResponse(
            tag: tag, httpStatus: nil, failure: Self.classify(code), error: message, latencyMicroseconds: latency,
            responseBody: responseBody, retryAfter: nil)
    }

    /// The request log's words for an answer that was not 2xx.
    static func httpError(_ status: Int) -> String {
        switch status {
        case 300..<400: "receiver answered HTTP \(status); redirects are not followed"
        case 410: "receiver answered HTTP 410 Gone"
        default: "receiver answered HTTP \(status)"
        }
    }

    static func classify(_ code: CURLcode) -> DeliveryErrorClass {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .dns
        case CURLE_COULDNT_CONNECT: return .connect
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_USE_SSL_FAILED,
            CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED:
            return .tls
        default: return .network
        }
    }
}

// MARK: - libcurl callbacks (C calling convention; the context is the Transfer)

private let curlWriteBody: hookgate_curl_data_callback = { data, size, count, context in
    let length = size * count
    guard let data, let context else { return length }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let room = DeliveryTransportOptions.maxResponseBodyBytes - transfer.responseBody.count
    if room > 0 {
        let bytes = UnsafeRawBufferPointer(start: data, count: min(room, length))
        transfer.responseBody.append(contentsOf: bytes)
    }
    // The rest is read and dropped, so that the connection stays reusable.
    return length
}

private let curlReadHeader: hookgate_curl_data_callback = { data, size, count, context in
    let length = size * count
    guard let data, let context else { return length }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let line = UnsafeRawBufferPointer(start: data, count: length)
    // Every answer's header lines pass here: only two kinds matter, and the rest cost
    // no allocation.
    if hasPrefixIgnoringCase(line, "http/") {
        transfer.retryAfter = nil  // A new response (after 1xx): forget the last one's headers.
    } else if hasPrefixIgnoringCase(line, "retry-after:") {
        let value = String(decoding: line.dropFirst("retry-after:".utf8.count), as: UTF8.self)
        transfer.retryAfter = value.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return length
}

/// ASCII case-insensitive prefix test; `prefix` is lowercase.
private func hasPrefixIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
    guard bytes.count >= prefix.utf8CodeUnitCount else { return false }
    for index in 0..<prefix.utf8CodeUnitCount {
        var byte = bytes[index]
        if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
        if byte != prefix.utf8Start[index] { return false }
    }
    return true
}

private let curlOpenSocket: hookgate_curl_opensocket_callback = { context, purpose, address in
    guard let context, let address else { return CURL_SOCKET_BAD }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let family = address.pointee.family
    var ip: IPAddress?
    withUnsafePointer(to: &address.pointee.addr) { pointer in
        if family == AF_INET {
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                ip = IPAddress(bytes: withUnsafeBytes(of: v4.pointee.sin_addr) { Array($0) })
            }
        } else if family == AF_INET6 {
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                ip = IPAddress(bytes: withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) })
            }
        }
    }
    // The address curl is about to connect to, after DNS: no rebinding gap.
    guard let ip else {
        transfer.blockedReason = "address family \(family) is not IPv4 or IPv6"
        return CURL_SOCKET_BAD
    }
    if let refusal = transfer.addressGuard.refusal(of: ip) {
        transfer.blockedReason = refusal
        return CURL_SOCKET_BAD
    }
    return socket(family, address.pointee.socktype, address.pointee.protocol)
}

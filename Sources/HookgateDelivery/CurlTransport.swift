import CCurl
import Foundation
import HookgateCore
import Synchronization

/// The libcurl worker pool: `workers` threads, each owning one multi handle (keep-alive
/// connection reuse, HTTP/2 where offered), fed round-robin.
public final class CurlTransport: DeliverySending {
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

    /// One receiving host's transfers on this worker, and how many of them libcurl gets
    /// at once; the rest wait here in order.
    ///
    /// A host whose connections carry one transfer each (HTTP/1.1) gets at most
    /// `maxConnectionsPerHost`, so that no transfer waits in libcurl for a connection:
    /// libcurl 7.88's own queue for one loses wake-ups (a waiting transfer woken when a
    /// connection frees up, but beaten to it by one added meanwhile, goes back to sleep,
    /// and only the next transfer to finish wakes it again; with nothing else running it
    /// waits for its timeout). Until the first answer tells, a host gets one transfer,
    /// so that over HTTP/2 the others share its connection rather than each opening one
    /// (a TLS handshake each) before it is known that they need not.
    private final class Host {
        enum Connections {
            case unknown
            /// HTTP/2: libcurl puts many transfers on each connection, and its cap on
            /// connections is the only bound.
            case multiplexed
            case oneTransferEach
        }

        var running = 0
        var connections = Connections.unknown
        private var waiting = FIFOQueue<Job>()

        var isIdle: Bool { running == 0 && waiting.isEmpty }

        func append(_ job: Job) { waiting.append(job) }

        func popFirst() -> Job? { waiting.popFirst() }
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
        // Idle connections kept for reuse. libcurl's default, 4 per transfer in the multi
        // handle, shrinks whenever few transfers run and closes connections that the next
        // burst must open again, a TLS handshake each (3,000 POSTs to one HTTP/1.1
        // receiver opened 207 connections under a cap of 32).
        _ = hookgate_curl_multi_setopt_long(
            multi, CURLMOPT_MAXCONNECTS, max(Self.minCachedConnections, 4 * settings.maxConnectionsPerHost))
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
    private var hosts: [String: Host] = [:]
    private var pruneHostsAbove = CurlWorker.idleHostsKept
    /// `hostKey` of the URLs seen lately: a webhook's URL is the same on every request,
    /// and working the key out takes more than the lookup.
    private var hostKeys: [String: String] = [:]
    private static let idleHostsKept = 1024
    /// Finished handles with the shared options set, for the next transfers.
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private static let maxIdleHandles = 256
    private static let minCachedConnections = 64
    /// How often a request that never reached the receiver is sent again, at once and on a
    /// new connection, before its failure is reported.
    static let maxResends = 3

    private func run() {
        var stillRunning: Int32 = 0
        while true {
            let (jobs, stopping) = inbox.withLock { inbox -> ([Job], Bool) in
                defer { inbox.jobs.removeAll() }
                return (inbox.jobs, inbox.stopping)
            }
            for job in jobs { admit(job) }
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
        for host in hosts.values {
            while let job = host.popFirst() {
                job.completion(Transfer.failed(job.request.tag, .network, CurlTransport.shutdownMessage))
            }
        }
        hosts.removeAll()
        for easy in idleHandles { curl_easy_cleanup(easy) }
        idleHandles.removeAll()
        curl_multi_cleanup(multi)
        finished.withLock { $0 = true }
    }

    /// Starts the job now, or queues it behind its host's transfers.
    private func admit(_ job: Job) {
        let key: String
        if let known = hostKeys[job.request.url] {
            key = known
        } else {
            key = Self.hostKey(job.request.url)
            if hostKeys.count >= Self.idleHostsKept { hostKeys.removeAll(keepingCapacity: true) }
            hostKeys[job.request.url] = key
        }
        let host: Host
        if let existing = hosts[key] {
            host = existing
        } else {
            host = Host()
            hosts[key] = host
        }
        if host.running < limit(host) {
            if start(job, host: key) { host.running += 1 }
        } else {
            host.append(job)
        }
    }

    private func limit(_ host: Host) -> Int {
        switch host.connections {
        case .unknown: 1
        case .multiplexed: Int.max
        case .oneTransferEach: settings.maxConnectionsPerHost
        }
    }

    /// A transfer to `key` is over: the next of its waiting jobs starts.
    private func release(host key: String) {
        guard let host = hosts[key] else { return }
        host.running -= 1
        while host.running < limit(host), let job = host.popFirst() {
            if start(job, host: key) { host.running += 1 }
        }
        // Idle hosts are kept (with what was learnt of them) up to a bound.
        if hosts.count > pruneHostsAbove {
            hosts = hosts.filter { !$0.value.isIdle }
            pruneHostsAbove = max(Self.idleHostsKept, 2 * hosts.count)
        }
    }

    /// Which connections a URL's transfers share: scheme, host and port, in lowercase
    /// (the port spelled out when it is the scheme's default).
    static func hostKey(_ url: String) -> String {
        let lowered = url.lowercased()
        guard let separator = lowered.range(of: "://") else { return lowered }
        let scheme = lowered[..<separator.lowerBound]
        var authority = lowered[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let hasPort =
            if authority.hasPrefix("[") {
                authority.firstIndex(of: "]").map { authority[$0...].contains(":") } ?? false
            } else {
                authority.contains(":")
            }
        let port = hasPort ? "" : (scheme == "http" ? ":80" : ":443")
        return "\(scheme)://\(authority)\(port)"
    }

    /// Starts the job's transfer; false when it could not start (its completion has run).
    private func start(_ job: Job, host: String) -> Bool {
        let easy: UnsafeMutableRawPointer
        if let reused = idleHandles.popLast() {
            easy = reused
        } else {
            guard let made = curl_easy_init() else {
                job.completion(Transfer.failed(job.request.tag, .network, "curl_easy_init failed"))
                return false
            }
            if let problem = configureShared(made) {
                curl_easy_cleanup(made)
                job.completion(Transfer.failed(job.request.tag, .network, problem))
                return false
            }
            easy = made
        }
        let transfer = Transfer(job.request, host: host, completion: job.completion, guard: settings.addressGuard)
        if let problem = configure(easy, transfer) {
            curl_easy_cleanup(easy)
            job.completion(Transfer.failed(job.request.tag, .network, problem))
            return false
        }
        running[easy] = transfer
        curl_multi_add_handle(multi, easy)
        return true
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
        _ = hookgate_curl_setopt_long(easy, CURLOPT_FRESH_CONNECT, 0)
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
        // No CA directory besides the file (Debian's libcurl has one built in): with one,
        // libcurl 7.88 does not keep the parsed bundle and parses the whole file again for
        // every new connection, about 50 ms of this thread's time each, during which none
        // of its other transfers move (a burst of new connections stalled them for 1.2 s).
        // Without, the bundle is parsed once per multi handle and kept.
        check(hookgate_curl_setopt_pointer(easy, CURLOPT_CAPATH, nil), "CA path")
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
            guard let transfer = running[easy] else {
                recycle(easy)
                continue
            }
            if transfer.resends < Self.maxResends, transfer.neverReachedReceiver(code: code, easy: easy) {
                resend(easy, transfer)
                continue
            }
            running[easy] = nil
            let response = transfer.response(code: code, easy: easy)
            if let host = hosts[transfer.host] {
                var version = 0
                if response.httpStatus != nil,
                    hookgate_curl_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK
                {
                    host.connections = version == Int(CURL_HTTP_VERSION_2_0) ? .multiplexed : .oneTransferEach
                } else if host.connections == .unknown {
                    // No answer to learn from: the waiting transfers are not held back
                    // one at a time behind a receiver that does not answer.
                    host.connections = .oneTransferEach
                }
            }
            transfer.complete(response)
            recycle(easy)
            release(host: transfer.host)
        }
    }

    /// Sends a request that never reached the receiver again, at once, on a new
    /// connection; the engine sees only how the last try ended.
    private func resend(_ easy: UnsafeMutableRawPointer, _ transfer: Transfer) {
        transfer.prepareResend(easy)
        _ = hookgate_curl_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1)
        curl_multi_add_handle(multi, easy)
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
    /// `CurlWorker.hostKey` of the URL.
    let host: String
    let body: [UInt8]
    let headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>
    let addressGuard: AddressGuard
    private let completion: @Sendable (DeliveryResponse) -> Void
    var responseBody: [UInt8] = []
    var retryAfter: String?
    var blockedReason: String?
    /// Some of an answer arrived (a header line at least).
    var answerStarted = false
    /// The status of the answer being read, from its status line.
    var status = 0
    /// The whole head of a final (not 1xx) answer arrived: the receiver has answered.
    var answered = false
    /// Times the request was sent again because it never reached the receiver, and
    /// what those earlier tries took.
    private(set) var resends = 0
    private var earlierMicroseconds: Int64 = 0

    init(
        _ request: DeliveryRequest, host: String, completion: @escaping @Sendable (DeliveryResponse) -> Void,
        guard: AddressGuard
    ) {
        tag = request.tag
        url = request.url
        self.host = host
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

    /// Whether a failed transfer never reached the receiver's application, so that it is
    /// sent again at once rather than counted as an attempt: not a byte of an answer came,
    /// it went over a connection that was already open, and it failed as a request does
    /// that the receiver did not take: a kept-alive connection the receiver had closed
    /// before the request was sent (a send error, or the connection found closed with
    /// nothing read), or an HTTP/2 connection the receiver was closing (GOAWAY) when the
    /// request was to open a stream on it. libcurl itself sends refused streams
    /// (REFUSED_STREAM, or above a GOAWAY's last stream) and requests on a kept-alive
    /// connection found dead again, up to 5 times; what it gives up on ends here.
    func neverReachedReceiver(code: CURLcode, easy: UnsafeMutableRawPointer) -> Bool {
        guard !answerStarted, blockedReason == nil else { return false }
        switch code {
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2: break
        default: return false
        }
        var headerBytes = 0
        var newConnections = 0
        guard hookgate_curl_getinfo_long(easy, CURLINFO_HEADER_SIZE, &headerBytes) == CURLE_OK, headerBytes == 0,
            hookgate_curl_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &newConnections) == CURLE_OK, newConnections == 0
        else { return false }
        return true
    }

    /// Forgets the failed try, keeping what it took for the latency.
    func prepareResend(_ easy: UnsafeMutableRawPointer) {
        var totalTime: Double = 0
        _ = hookgate_curl_getinfo_double(easy, CURLINFO_TOTAL_TIME, &totalTime)
        earlierMicroseconds += Int64(totalTime * 1_000_000)
        resends += 1
        responseBody.removeAll()
        retryAfter = nil
        answerStarted = false
        status = 0
        answered = false
        errorBuffer[0] = 0
    }

    func response(code: CURLcode, easy: UnsafeMutableRawPointer) -> DeliveryResponse {
        var totalTime: Double = 0
        _ = hookgate_curl_getinfo_double(easy, CURLINFO_TOTAL_TIME, &totalTime)
        let latency = earlierMicroseconds + Int64(totalTime * 1_000_000)
        // Once the head of the final answer is in, the receiver has answered, and what
        // fails after it does not undo that. libcurl 7.88 fails such transfers over HTTP/2:
        // a receiver may answer a POST before reading its body and close the stream
        // (RFC 9113 section 8.1), and libcurl then fails sending the body ("Stream error in
        // the HTTP/2 framing layer"); a stream that ends as its connection closes after a
        // GOAWAY is "Transferred a partial file".
        if code == CURLE_OK || answered {
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
    // Every answer's header lines pass here: only the status line, the blank line that
    // ends a head and Retry-After matter, and none of them costs an allocation.
    transfer.answerStarted = true
    if hasPrefixIgnoringCase(line, "http/") {
        transfer.retryAfter = nil  // A new response (after 1xx): forget the last one's headers.
        transfer.status = statusCode(line)
    } else if line.allSatisfy({ $0 == 0x0D || $0 == 0x0A }) {
        // The blank line that ends a head: a final answer's, or a 1xx one's.
        if transfer.status >= 200 { transfer.answered = true }
    } else if hasPrefixIgnoringCase(line, "retry-after:") {
        let value = String(decoding: line.dropFirst("retry-after:".utf8.count), as: UTF8.self)
        transfer.retryAfter = value.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return length
}

/// The status in a status line ("HTTP/1.1 204 No Content", "HTTP/2 204"), or 0.
private func statusCode(_ line: UnsafeRawBufferPointer) -> Int {
    guard let space = line.firstIndex(of: 0x20) else { return 0 }
    var status = 0
    var digits = 0
    for byte in line[(space + 1)...] {
        guard byte >= 0x30 && byte <= 0x39, digits < 3 else { break }
        status = status * 10 + Int(byte - 0x30)
        digits += 1
    }
    return digits == 3 ? status : 0
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

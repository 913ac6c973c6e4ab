import Foundation
import HookgateCore
import HookgateDelivery
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The libcurl worker pool against real HTTPS receivers on loopback, with a test CA.
@Suite struct CurlTransportTests {
    static var caPEM: [UInt8] {
        guard let certificates = TestCertificates.shared,
            let data = FileManager.default.contents(atPath: certificates.caPEM)
        else { return [] }
        return Array(data)
    }

    static func transport(
        allowing ranges: [String] = ["127.0.0.0/8"], requestTimeout: Int64 = 15_000_000, trustCA: Bool = true,
        allowHTTP: Bool = false
    ) throws -> CurlTransport {
        try CurlTransport(
            options: DeliveryTransportOptions(
                workers: 2, requestTimeoutMicroseconds: requestTimeout, extraCertificatesPEM: trustCA ? caPEM : [],
                bundleDirectory: TestCertificates.shared?.directory ?? "/tmp",
                addressGuard: AddressGuard(allowed: ranges.compactMap(CIDR.init)), allowHTTP: allowHTTP))
    }

    /// Sends and waits for the answer.
    static func send(_ transport: CurlTransport, _ url: String, body: String = #"{"event_type":"SMS_STATUS"}"#)
        throws -> DeliveryResponse
    {
        let result = ResultBox()
        transport.send(
            DeliveryRequest(
                tag: 7, url: url, headers: ["Content-Type: application/json", "User-Agent: hookgate/test"],
                body: Array(body.utf8))
        ) { result.set($0) }
        guard let response = result.wait(timeout: 30) else { throw TestFailure("no response from the transport") }
        return response
    }

    @Test func postsTheBodyAndHeadersAndReads2xx() throws {
        let sink = try Sink()
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/status/204"), body: #"{"a":"é"}"#)
        #expect(response.tag == 7)
        #expect(response.httpStatus == 204)
        #expect(response.failure == nil)
        #expect(response.isSuccess)
        let received = try #require(sink.requests.first)
        #expect(received["method"] == "POST")
        #expect(received["body"] == #"{"a":"é"}"#)
        #expect(received[path: "headers", "content-type"] == "application/json")
        #expect(received[path: "headers", "user-agent"] == "hookgate/test")
        #expect(received[path: "headers", "expect"] == nil)
    }

    @Test func answersThatAreNot2xxAreHTTPFailures() throws {
        let sink = try Sink()
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/body/10000"))
        #expect(response.httpStatus == 200)
        #expect(response.responseBody.count == 4096, "the first 4 KiB of the body")
        let failed = try Self.send(transport, sink.url("/status/500"))
        #expect(failed.httpStatus == 500)
        #expect(failed.failure == .http)
        #expect(!failed.isSuccess)
    }

    @Test func redirectsAreNotFollowed() throws {
        let sink = try Sink()
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/redirect/302"))
        #expect(response.httpStatus == 302)
        #expect(response.failure == .http)
        #expect(sink.requests.count == 1, "the Location was not requested")
    }

    @Test func retryAfterIsReported() throws {
        let sink = try Sink()
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/retry-after/429/120"))
        #expect(response.httpStatus == 429)
        #expect(response.retryAfter == "120")
    }

    @Test func aReceiverThatHangsTimesOut() throws {
        let sink = try Sink()
        let transport = try Self.transport(requestTimeout: 1_000_000)
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/hang/5"))
        #expect(response.failure == .timeout, "\(String(describing: response.error))")
        #expect(response.httpStatus == nil)
    }

    @Test func aConnectionResetIsANetworkFailure() throws {
        let sink = try Sink()
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/reset"))
        #expect(response.failure == .network, "\(String(describing: response.error))")
    }

    @Test func anUntrustedCertificateIsATLSFailure() throws {
        let certificates = try #require(TestCertificates.shared)
        let sink = try Sink(certificate: certificates.untrustedCertificate, key: certificates.untrustedKey)
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, sink.url("/status/200"))
        #expect(response.failure == .tls, "\(String(describing: response.error))")
        #expect(sink.requests.isEmpty)
        // The same server, trusted, is fine without the test CA? No: only with it.
        let trusted = try Sink()
        let withoutCA = try Self.transport(trustCA: false)
        defer { withoutCA.shutdown() }
        #expect(try Self.send(withoutCA, trusted.url("/status/200")).failure == .tls)
    }

    @Test func theAddressGuardRefusesLoopbackUnlessAllowed() throws {
        let sink = try Sink()
        let guarded = try Self.transport(allowing: [])
        defer { guarded.shutdown() }
        let refused = try Self.send(guarded, sink.url("/status/200"))
        #expect(refused.failure == .blockedDestination)
        #expect(refused.error?.contains("loopback") == true, "\(String(describing: refused.error))")
        // By name too: the check is on the address connected, after resolution.
        let byName = try Self.send(guarded, sink.url("/status/200", host: "localhost"))
        #expect(byName.failure == .blockedDestination)
        #expect(sink.requests.isEmpty, "nothing reached the receiver")
        let allowed = try Self.transport(allowing: ["127.0.0.1"])
        defer { allowed.shutdown() }
        #expect(try Self.send(allowed, sink.url("/status/200")).isSuccess)
    }

    @Test func nothingListeningIsAConnectFailure() throws {
        let transport = try Self.transport()
        defer { transport.shutdown() }
        let response = try Self.send(transport, "https://127.0.0.1:\(try Self.unusedPort())/")
        #expect(response.failure == .connect, "\(String(describing: response.error))")
    }

    @Test func plainHTTPOnlyWhenAllowed() throws {
        let sink = try Sink(plain: true)
        let strict = try Self.transport()
        defer { strict.shutdown() }
        #expect(try Self.send(strict, sink.url("/status/200", scheme: "http")).failure == .network)
        let relaxed = try Self.transport(allowHTTP: true)
        defer { relaxed.shutdown() }
        #expect(try Self.send(relaxed, sink.url("/status/200", scheme: "http")).isSuccess)
    }

    @Test func connectionsAreKeptAlive() throws {
        let sink = try Sink()
        let transport = try Self.transport()
        defer { transport.shutdown() }
        for _ in 0..<10 {
            let response = try Self.send(transport, sink.url("/status/200"))
            #expect(response.isSuccess)
        }
        let connections = Set(sink.requests.compactMap { $0["connection"].map { JSONWriter.string($0) } })
        #expect(sink.requests.count == 10)
        #expect(connections.count <= 2, "one connection per worker at most: \(connections)")
    }
}

extension CurlTransportTests {
    /// A loopback port nothing listens on: bound to learn a free one, then closed.
    static func unusedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw TestFailure("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A value handed over from a transport thread to the waiting test.
final class ResultBox: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let value = Mutex<DeliveryResponse?>(nil)

    func set(_ response: DeliveryResponse) {
        value.withLock { $0 = response }
        semaphore.signal()
    }

    func wait(timeout: Double) -> DeliveryResponse? {
        guard semaphore.wait(timeout: .now() + timeout) == .success else { return nil }
        return value.withLock { $0 }
    }
}

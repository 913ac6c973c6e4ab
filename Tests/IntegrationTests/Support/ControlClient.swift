import Foundation
import HookgateCore

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking client of the control socket, as a test (or socat) talks to it: raw bytes
/// over a Unix stream socket, responses read line by line.
final class ControlClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var sawEOF = false

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        guard let address = UnixSocketAddress(path: path) else { throw TestFailure("path too long: \(path)") }
        let rc = address.connect(fd)
        guard rc == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("connect \(path): \(message)")
        }
    }

    deinit { close(fd) }

    func send(bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    func send(line: String) throws { try send(bytes: Array(line.utf8) + [0x0A]) }

    func send(_ request: JSON) throws { try send(bytes: JSONWriter.bytes(request) + [0x0A]) }

    /// Closes the sending half (what socat does at the end of its input).
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// The next line, or nil at end of stream.
    func readLine(timeout: Double = 20) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if sawEOF { return nil }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw TestFailure("no response within \(timeout) s") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining, 1) * 1000))
            if ready < 0 && errno != EINTR { throw TestFailure("poll: \(String(cString: strerror(errno)))") }
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET {
                    sawEOF = true
                    continue
                }
                throw TestFailure("recv: \(String(cString: strerror(errno)))")
            }
            if count == 0 { sawEOF = true }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    func readResponse(timeout: Double = 20) throws -> JSON {
        guard let line = try readLine(timeout: timeout) else { throw TestFailure("connection closed, no response") }
        do {
            return try JSONParser.parse(line)
        } catch {
            throw TestFailure("response is not JSON: \(line)")
        }
    }

    /// Sends one request and reads its response.
    @discardableResult
    func request(_ request: JSON) throws -> JSON {
        try send(request)
        return try readResponse()
    }
}

extension JSON {
    /// `response["webhook"]?["id"]` as a plain string, for tests.
    subscript(path path: String...) -> JSON? {
        var current: JSON? = self
        for key in path { current = current?[key] }
        return current
    }

    var isOK: Bool { self["ok"] == .bool(true) }
    var errorCode: String? { self[path: "error", "code"]?.stringValue }
    var errorField: String? { self[path: "error", "field"]?.stringValue }
}

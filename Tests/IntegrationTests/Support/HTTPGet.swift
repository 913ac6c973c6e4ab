import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 client for the metrics listener: one request per connection
/// (`Connection: close`), over TCP to 127.0.0.1 or over a Unix socket.
struct HTTPResponse {
    var status: Int
    var body: String
}

enum HTTPGet {
    /// A TCP port nothing listens on (bound and released at once).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw TestFailure("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until the metrics listener answers: it starts beside the control socket, so
    /// the daemon's first answer on the socket does not mean it is there yet.
    static func waitUntilListening(port: Int? = nil, unixPath: String? = nil, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let port, (try? request(port: port, path: "/healthz"))?.status == 200 { return }
            if let unixPath, (try? request(unixPath: unixPath, path: "/healthz"))?.status == 200 { return }
            usleep(20_000)
        }
        throw TestFailure("the metrics listener did not answer within \(timeout) s")
    }

    static func request(
        _ method: String = "GET", port: Int, path: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws -> HTTPResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestFailure("cannot connect to 127.0.0.1:\(port)") }
        return try exchange(fd, method: method, path: path, headers: headers, body: body)
    }

    static func request(_ method: String = "GET", unixPath: String, path: String) throws -> HTTPResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in unixPath.utf8.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw TestFailure("cannot connect to \(unixPath)") }
        return try exchange(fd, method: method, path: path)
    }

    private static func exchange(
        _ fd: Int32, method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws -> HTTPResponse {
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head = "\(method) \(path) HTTP/1.1\r\nHost: hookgate\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else {
            throw TestFailure("cannot send the request")
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n"), let statusLine = text.split(separator: "\r\n").first,
            let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "")
        else { throw TestFailure("not an HTTP response: \(text.prefix(200))") }
        return HTTPResponse(status: status, body: String(text[headerEnd.upperBound...]))
    }
}

/// The samples of a text exposition, by series with its labels sorted
/// (`name{a="1",b="2"}`), so lookups do not depend on the order labels were written in.
struct Exposition {
    var samples: [String: Double] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[Self.key(String(line[..<space]))] = value
        }
    }

    subscript(_ series: String) -> Double? { samples[Self.key(series)] }

    /// Names of every series present.
    var names: Set<String> {
        Set(samples.keys.map { key in String(key.prefix { $0 != "{" }) })
    }

    static func key(_ series: String) -> String {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return series }
        let name = series[..<open]
        let labels = series[series.index(after: open)..<series.index(before: series.endIndex)]
            .split(separator: ",").map(String.init).sorted()
        return "\(name){\(labels.joined(separator: ","))}"
    }
}

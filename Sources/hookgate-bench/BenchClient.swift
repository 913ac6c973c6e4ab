import Foundation
import HookgateCore

#if canImport(Glibc)
    import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A raw Unix-socket connection to the daemon: bulk writes of pre-encoded request lines
/// and a line reader, with no JSON work on the hot path beyond what the caller asks for.
final class SocketConnection: @unchecked Sendable {
    // `@unchecked Sendable`: `fd` is immutable; `pending` is touched only by the one
    // thread that reads (the writer side uses `fd` alone, which the kernel serialises).
    let fd: Int32
    private var pending: [UInt8] = []
    private var pendingStart = 0

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard let address = UnixSocketAddress(path: path), address.connect(fd) == 0 else {
            close(fd)
            throw BenchError("connect \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BenchError("send: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// The next line's bytes (without the newline).
    func readLine() throws -> ArraySlice<UInt8> {
        while true {
            if let newline = pending[pendingStart...].firstIndex(of: 0x0A) {
                let line = pending[pendingStart..<newline]
                pendingStart = newline + 1
                return line
            }
            if pendingStart > 0 {
                pending.removeSubrange(..<pendingStart)
                pendingStart = 0
            }
            var chunk = [UInt8](repeating: 0, count: 256 * 1024)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BenchError("connection closed") }
            pending.append(contentsOf: chunk[..<n])
        }
    }

    func request(_ request: JSON) throws -> JSON {
        try write(JSONWriter.bytes(request) + [0x0A])
        return try JSONParser.parse(try readLine())
    }
}

/// A hookgate process for the benchmark.
final class DaemonProcess {
    let process = Process()
    let socketPath: String

    init(binary: String, directory: String, arguments: [String]) throws {
        socketPath = directory + "/hookgate.sock"
        process.executableURL = URL(fileURLWithPath: binary)
        // `hookgate-bench --metrics-listen ADDR`: every daemon keeps and serves its metrics.
        let metrics =
            ProcessInfo.processInfo.environment["BENCH_METRICS_LISTEN"].map { ["--metrics-listen", $0] } ?? []
        process.arguments =
            ["serve", "--socket", socketPath, "--data-dir", directory + "/data", "--log-level", "warning"] + metrics
            + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HOOKGATE_") }
        try process.run()
        for _ in 0..<1000 {
            if let connection = try? SocketConnection(path: socketPath),
                (try? connection.request(["cmd": "ping"])) != nil
            {
                return
            }
            usleep(20_000)
        }
        throw BenchError("hookgate did not start")
    }

    /// Resident memory in MiB, from /proc.
    var residentMiB: Double { Machine.residentMiB(process: String(process.processIdentifier)) }

    func stop() {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }
}

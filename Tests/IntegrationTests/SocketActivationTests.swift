import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A datagram socket standing in for systemd's notification socket.
final class NotifySocket {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard let address = UnixSocketAddress(path: path) else { throw TestFailure("path too long: \(path)") }
        let rc = address.withSockaddr { bind(fd, $0, $1) }
        guard rc == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// Waits for a datagram containing `line` (such as `READY=1`); all datagrams seen so far.
    func waitFor(_ line: String, timeout: Double = 20) throws -> [String] {
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let message = String(decoding: buffer[..<count], as: UTF8.self)
            seen.append(message)
            if message.split(separator: "\n").contains(Substring(line)) { return seen }
        }
        throw TestFailure("no \(line) within \(timeout) s; saw \(seen)")
    }
}

/// hookgate started by `systemd-socket-activate`, as systemd would on the first connection.
@Suite struct SocketActivationTests {
    static let activator = "/usr/bin/systemd-socket-activate"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: activator)))
    func servesThePassedSocketNotifiesAndNeverUnlinksIt() throws {
        let directory = try TemporaryDirectory()
        let socketPath = directory.file("activated.sock")
        let notify = try NotifySocket(path: directory.file("notify.sock"))
        let logPath = directory.file("activate.log")
        let process = try ChildProcess(
            executable: Self.activator,
            arguments: [
                "-l", socketPath, "--fdname=control", "-E", "NOTIFY_SOCKET=\(notify.path)", "-E",
                "WATCHDOG_USEC=1000000", HookgateBinary.path, "serve", "--data-dir", directory.file("data"),
            ],
            environment: ChildProcess.cleanEnvironment, outputPath: logPath)

        // systemd-socket-activate binds first and starts hookgate on the first connection.
        var client: ControlClient?
        for _ in 0..<500 where client == nil {
            client = try? ControlClient(path: socketPath)
            if client == nil { usleep(10_000) }
        }
        let connection = try #require(client)
        let pong = try connection.request(["cmd": "ping", "id": "activated"])
        #expect(pong["id"] == "activated")
        _ = try notify.waitFor("READY=1")
        _ = try notify.waitFor("WATCHDOG=1")

        let created = try connection.request(createRequest(name: "activated hook"))
        #expect(created.isOK)

        process.signal(SIGTERM)
        _ = try notify.waitFor("STOPPING=1")
        let status = try process.waitForExit(timeout: 20)
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("serving socket passed by systemd"), "\(log)")
        #expect(FileManager.default.fileExists(atPath: socketPath), "the socket systemd passed is never unlinked")

        // The same data directory, now standalone: the webhook is there.
        let standalone = try Daemon(arguments: ["--data-dir", directory.file("data")])
        let list = try standalone.client().request(["cmd": "list_webhooks"])
        #expect(list["webhooks"]?.arrayValue?.first?["name"] == "activated hook")
    }
}

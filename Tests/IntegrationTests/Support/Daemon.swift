import Foundation
import HookgateCore

#if canImport(Glibc)
    import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory removed at deinit. Short paths: a socket path must fit 107 bytes.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/hookgate-test.XXXXXX".utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestFailure("mkdtemp failed")
        }
        path = String(cString: result)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The hookgate binary under test: $HOOKGATE_BINARY, else the one SwiftPM built beside
/// this test bundle.
enum HookgateBinary {
    static var path: String {
        if let override = ProcessInfo.processInfo.environment["HOOKGATE_BINARY"] { return override }
        let testExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testExecutable.deletingLastPathComponent().appendingPathComponent("hookgate").path
    }
}

/// A hookgate process started by a test.
final class Daemon {
    let directory: TemporaryDirectory
    let socketPath: String
    let dataDirectory: String
    let logPath: String
    private let child: ChildProcess

    /// Starts `hookgate serve` on a socket and data directory of its own (or the ones
    /// given, to restart over the same state) and waits until it answers.
    init(
        arguments: [String] = [], environment: [String: String] = [:], directory: TemporaryDirectory? = nil,
        waitUntilReady: Bool = true
    ) throws {
        let directory = try directory ?? TemporaryDirectory()
        self.directory = directory
        socketPath = directory.file("hookgate.sock")
        dataDirectory = directory.file("data")
        logPath = directory.file("daemon-\(UInt32.random(in: 0...UInt32.max)).log")
        var env = ChildProcess.cleanEnvironment
        env.merge(environment) { $1 }
        child = try ChildProcess(
            executable: HookgateBinary.path,
            arguments: ["serve", "--socket", socketPath, "--data-dir", dataDirectory] + arguments,
            environment: env, outputPath: logPath)
        if waitUntilReady { try self.waitUntilReady() }
    }

    var pid: pid_t { child.pid }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func waitUntilReady(timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !child.isRunning {
                throw TestFailure("hookgate exited with \(try child.waitForExit(timeout: 1)) before answering:\n\(log)")
            }
            if let client = try? ControlClient(path: socketPath), (try? client.request(["cmd": "ping"])) != nil {
                return
            }
            usleep(20_000)
        }
        throw TestFailure("hookgate did not answer within \(timeout) s:\n\(log)")
    }

    func client() throws -> ControlClient { try ControlClient(path: socketPath) }

    /// SIGTERM, then the exit status.
    @discardableResult
    func stop(timeout: Double = 20) throws -> Int32 {
        child.signal(SIGTERM)
        return try child.waitForExit(timeout: timeout)
    }

    /// SIGKILL: no chance to clean up.
    func kill9() throws {
        child.signal(SIGKILL)
        _ = try child.waitForExit(timeout: 20)
    }

    func waitForExit(timeout: Double) throws -> Int32 { try child.waitForExit(timeout: timeout) }
}

import Foundation
import HookgateCore

#if canImport(Glibc)
    import Glibc
#endif

/// The repository's root, from this file's place in it.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}

/// A test CA and certificates made at test time by contrib/sink/make-test-ca.sh.
final class TestCertificates: Sendable {
    let directory: String

    var caPEM: String { directory + "/ca.pem" }
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server.key" }
    var untrustedCertificate: String { directory + "/untrusted.pem" }
    var untrustedKey: String { directory + "/untrusted.key" }

    /// Made once per test process.
    static let shared: TestCertificates? = try? TestCertificates()

    private init() throws {
        var template = Array("/tmp/hookgate-ca.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestFailure("mkdtemp failed")
        }
        directory = String(cString: made)
        let script = try ChildProcess(
            executable: "/bin/bash", arguments: [Repository.root + "/contrib/sink/make-test-ca.sh", directory],
            environment: ChildProcess.cleanEnvironment, outputPath: directory + "/make-test-ca.log")
        guard try script.waitForExit(timeout: 60) == 0 else {
            throw TestFailure(
                "make-test-ca.sh failed: \((try? String(contentsOfFile: directory + "/make-test-ca.log", encoding: .utf8)) ?? "")"
            )
        }
    }
}

/// contrib/sink/sink.py: an HTTPS (or plain HTTP) receiver on 127.0.0.1 whose answer
/// each request's path chooses, logging every request as a JSON line.
final class Sink {
    let port: Int
    let logPath: String
    let directory: TemporaryDirectory
    private let child: ChildProcess

    init(certificate: String? = nil, key: String? = nil, plain: Bool = false, port requestedPort: Int = 0) throws {
        guard let certificates = TestCertificates.shared else { throw TestFailure("no test certificates") }
        directory = try TemporaryDirectory()
        logPath = directory.file("requests.jsonl")
        let outputPath = directory.file("sink.out")
        var arguments = [
            Repository.root + "/contrib/sink/sink.py", "--port", String(requestedPort), "--log", logPath,
            "--cert", certificate ?? certificates.serverCertificate, "--key", key ?? certificates.serverKey,
        ]
        if plain { arguments.append("--plain") }
        child = try ChildProcess(
            executable: "/usr/bin/env", arguments: ["python3", "-u"] + arguments,
            environment: ChildProcess.cleanEnvironment, outputPath: outputPath)
        let deadline = Date().addingTimeInterval(20)
        var found: Int?
        while found == nil, Date() < deadline {
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("LISTENING ") }) {
                found = Int(line.dropFirst("LISTENING ".count).trimmingCharacters(in: .whitespaces))
            } else if !child.isRunning {
                throw TestFailure("sink exited: \(output)")
            } else {
                usleep(20_000)
            }
        }
        guard let found else { throw TestFailure("sink did not start") }
        port = found
    }

    func url(_ path: String, host: String = "127.0.0.1", scheme: String = "https") -> String {
        "\(scheme)://\(host):\(port)\(path)"
    }

    /// The requests received so far.
    var requests: [JSON] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    deinit {
        child.signal(SIGTERM)
        _ = try? child.waitForExit(timeout: 3)
    }
}

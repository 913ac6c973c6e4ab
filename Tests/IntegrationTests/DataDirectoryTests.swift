import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// One daemon per data directory, private files, and no delivery before the socket is
/// served.
@Suite struct DataDirectoryTests {
    private static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// A second daemon on a directory in use exits non-zero, naming the lock file and the
    /// holder's PID, and never serves its own socket; the first goes on untouched.
    @Test func theLockRefusesASecondDaemon() throws {
        let first = try Daemon()
        try first.client().request(createRequest(name: "first's hook"))
        let otherSocket = first.directory.file("other.sock")
        for socket in [otherSocket, first.socketPath] {
            let second = try Daemon(
                arguments: ["--socket", socket], directory: first.directory, waitUntilReady: false)
            let status = try second.waitForExit(timeout: 20)
            #expect(status != 0)
            let lockPath = first.dataDirectory + "/lock"
            #expect(second.log.contains("it holds the lock \(lockPath)"), "\(second.log)")
            #expect(second.log.contains("hookgate (pid \(first.pid))"), "\(second.log)")
        }
        #expect(!FileManager.default.fileExists(atPath: otherSocket))
        let list = try first.client().request(["cmd": "list_webhooks"])
        #expect(list["webhooks"]?.arrayValue?.count == 1)
        // Once the first has stopped, the directory is free again.
        #expect(try first.stop() == 0)
        let third = try Daemon(directory: first.directory)
        #expect(try third.client().request(["cmd": "list_webhooks"])["webhooks"]?.arrayValue?.count == 1)
    }

    /// A data directory readable by others, and database files made with a loose umask,
    /// are tightened to 0700 and 0600 with a log line for each change; a new directory is
    /// made private from the start.
    @Test func theDataDirectoryIsMadePrivate() throws {
        let fresh = try Daemon()
        #expect(Self.mode(fresh.dataDirectory) == 0o700)
        for name in ["hookgate.sqlite3", "hookgate.sqlite3-wal", "hookgate.sqlite3-shm", "lock"] {
            #expect(Self.mode(fresh.dataDirectory + "/" + name) == 0o600, "\(name)")
        }
        try fresh.stop()

        chmod(fresh.dataDirectory, 0o755)
        for name in ["hookgate.sqlite3", "lock"] { chmod(fresh.dataDirectory + "/" + name, 0o644) }
        let restarted = try Daemon(directory: fresh.directory)
        #expect(Self.mode(restarted.dataDirectory) == 0o700)
        #expect(Self.mode(restarted.dataDirectory + "/hookgate.sqlite3") == 0o600)
        #expect(Self.mode(restarted.dataDirectory + "/lock") == 0o600)
        let log = restarted.log
        #expect(log.contains("\(restarted.dataDirectory): mode 0755 -> 0700"), "\(log)")
        #expect(log.contains("\(restarted.dataDirectory)/hookgate.sqlite3: mode 0644 -> 0600"), "\(log)")
    }

    /// Webhook URLs may carry credentials: the log shows neither their userinfo nor their
    /// query.
    @Test func webhookURLsAreRedactedInTheLog() throws {
        let daemon = try Daemon()
        let created = try daemon.client().request(
            createRequest(url: "https://alice:s3cret@example.com/hooks?token=t0ken"))
        #expect(created.isOK)
        try daemon.stop()
        let log = daemon.log
        #expect(log.contains("https://[redacted]@example.com/hooks?[redacted]"), "\(log)")
        #expect(!log.contains("s3cret") && !log.contains("t0ken"), "\(log)")
    }

    /// A daemon that cannot serve its socket exits before its delivery engine sends
    /// anything: deliveries due in its data directory wait for a daemon that can.
    @Test func nothingIsDeliveredBeforeTheSocketIsServed() throws {
        let sink = try Sink()
        let directory = try TemporaryDirectory()
        let first = try DeliveryTests.daemon(["--retry-schedule", "1s"], directory: directory)
        let client = try first.client()
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 1)
        for i in 0..<5 { #expect(try client.request(emit(statusEvent(), id: i)).isOK) }
        _ = try DeliveryTests.waitForRequests(sink, count: 1)
        try first.kill9()
        usleep(300_000)
        let before = sink.requests.count
        #expect(before < 5)

        // A regular file where the socket should be: the bind fails.
        let blocked = directory.file("blocked.sock")
        _ = FileManager.default.createFile(atPath: blocked, contents: Data("not a socket".utf8))
        guard let certificates = TestCertificates.shared else { throw TestFailure("no test certificates") }
        let failing = try Daemon(
            arguments: [
                "--socket", blocked, "--allow-destination", "127.0.0.0/8", "--ca-file", certificates.caPEM,
            ], directory: directory, waitUntilReady: false)
        #expect(try failing.waitForExit(timeout: 20) != 0)
        #expect(failing.log.contains("is not a socket"), "\(failing.log)")
        usleep(1_500_000)
        #expect(sink.requests.count == before, "a daemon that never served its socket delivered")

        let next = try DeliveryTests.daemon(directory: directory)
        _ = try DeliveryTests.waitForRequests(sink, count: 5, timeout: 30)
        try next.stop()
    }
}

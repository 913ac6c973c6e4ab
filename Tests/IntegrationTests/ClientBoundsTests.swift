import Foundation
import HookgateCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What one client can make the daemon hold: bounded in bytes per connection, and in
/// connections.
@Suite struct ClientBoundsTests {
    /// The daemon's resident memory, from /proc.
    static func residentMiB(_ pid: pid_t) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kib / 1024
    }

    /// Sends as much of `bytes` as the socket takes without blocking for `patience`
    /// seconds; how many bytes went.
    static func sendWhatIsTaken(_ fd: Int32, _ bytes: [UInt8], patience: Double) -> Int {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var offset = 0
        var stalledSince = Date()
        while offset < bytes.count, Date().timeIntervalSince(stalledSince) < patience {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                offset += sent
                stalledSince = Date()
            } else {
                usleep(10_000)
            }
        }
        return offset
    }

    /// A client pipelines 20,000 `list_requests limit:1000` (each answer ~0.5 MB) and
    /// never reads. The daemon stops reading from it once it holds about 8 MiB of answers
    /// for it: most requests are never read, memory stays bounded, and other clients are
    /// served meanwhile. (Without the bound the daemon ran 4,096 of them and held GBs.)
    @Test func aClientThatNeverReadsIsBounded() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon()
        let client = try daemon.client()
        _ = try DeliveryTests.webhook(client, url: sink.url("/status/204"), rateLimit: 10_000)
        var batch: [UInt8] = []
        for i in 0..<1000 { batch += JSONWriter.bytes(emit(statusEvent(), id: i)) + [0x0A] }
        try client.send(bytes: batch)
        for _ in 0..<1000 { #expect(try client.readResponse().isOK) }
        _ = try DeliveryTests.waitForStats(client) { $0[path: "deliveries", "delivered"] == 1000 }
        let page = try client.request(["cmd": "list_requests", "limit": 1000])
        let answerBytes = JSONWriter.bytes(page).count
        #expect(answerBytes > 300_000)

        let rssBefore = try #require(Self.residentMiB(daemon.pid))
        let hostile = try daemon.client()
        let line = Array(#"{"cmd":"list_requests","limit":1000}"#.utf8) + [0x0A]
        let requests = [[UInt8]](repeating: line, count: 20_000).flatMap { $0 }
        let taken = Self.sendWhatIsTaken(hostile.fd, requests, patience: 3)
        let rssDuring = try #require(Self.residentMiB(daemon.pid))
        print(
            "a client that never reads: \(taken) of \(requests.count) request bytes taken, "
                + "RSS \(Int(rssBefore)) -> \(Int(rssDuring)) MiB (answers of \(answerBytes / 1024) KiB each)")
        #expect(taken < requests.count / 2, "the daemon kept reading from a client that does not read")
        #expect(rssDuring - rssBefore < 200, "RSS grew by \(rssDuring - rssBefore) MiB")
        #expect(try client.request(["cmd": "ping"]).isOK)
        #expect(try client.request(emit(statusEvent())).isOK)

        // Once it reads, its answers come.
        for _ in 0..<10 {
            let response = try #require(try hostile.readLine(timeout: 60))
            #expect(response.hasPrefix(#"{"ok":true,"requests":["#))
        }
    }

    /// --max-connections: one more connection gets one `unavailable` line and is closed;
    /// once one closes, a new one is served.
    @Test func maxConnectionsRefusesTheOneTooMany() throws {
        let daemon = try Daemon(arguments: ["--max-connections", "3"])
        // The readiness probe's connection is closed; give the daemon a moment to see it.
        usleep(300_000)
        var open: [ControlClient] = []
        for i in 0..<2 {
            let client = try daemon.client()
            #expect(try client.request(["cmd": "ping", "id": .integer(i)]).isOK)
            open.append(client)
        }
        let third = try daemon.client()
        #expect(try third.request(["cmd": "ping"]).isOK)
        let fourth = try daemon.client()
        let refusal = try fourth.readResponse()
        #expect(refusal.errorCode == "unavailable", "\(refusal)")
        #expect(refusal[path: "error", "message"]?.stringValue?.contains("--max-connections") == true)
        #expect(try fourth.readLine() == nil, "the refused connection is closed")
        #expect(try open[0].request(["cmd": "ping"]).isOK)

        open.removeAll()
        var served = false
        for _ in 0..<100 where !served {
            let next = try daemon.client()
            served = (try? next.request(["cmd": "ping"]))?.isOK == true
            if !served { usleep(20_000) }
        }
        #expect(served)
    }
}

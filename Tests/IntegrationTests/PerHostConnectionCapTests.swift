import Foundation
import HookgateCore
import Testing

/// --max-connections-per-host: many webhooks on one receiving host share a bounded number
/// of connections to it (1,000 webhooks on one host opened up to 866 at once).
@Suite struct PerHostConnectionCapTests {
    @Test func manyWebhooksOnOneHostShareTheCap() throws {
        let sink = try Sink()
        let daemon = try DeliveryTests.daemon(["--max-connections-per-host", "4", "--workers", "2"])
        let client = try daemon.client()
        for i in 0..<40 {
            _ = try DeliveryTests.webhook(client, url: sink.url("/hang/0.5?hook=\(i)"), name: "Hook \(i)")
        }
        #expect(try client.request(emit(statusEvent()))["deliveries"] == 40)
        let requests = try DeliveryTests.waitForRequests(sink, count: 40, timeout: 60)
        // Each request is answered half a second after it arrives: at no moment were
        // more than 4 in progress, so no more than 4 connections were open.
        let starts = DeliveryTests.receiptTimes(requests)
        let mostAtOnce = starts.indices.map { i in starts[i...].prefix { $0 < starts[i] + 0.45 }.count }.max() ?? 0
        #expect(mostAtOnce <= 4, "\(mostAtOnce) requests in progress at once")
        #expect(mostAtOnce >= 2, "the cap is shared by both workers")
        let connections = Set(requests.compactMap { $0["connection"]?.intValue })
        #expect(connections.count <= 8, "connections: \(connections.count)")
        _ = try DeliveryTests.waitForStats(client) { $0[path: "deliveries", "delivered"] == 40 }
    }
}

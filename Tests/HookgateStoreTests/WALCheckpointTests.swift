import Foundation
import HookgateCore
import Testing

@testable import HookgateStore

private struct NoRouter: EventRouter {
    func route(_ events: [EventMatchKey]) -> [[String]] { events.map { _ in [] } }
}

@Suite("WAL checkpoints")
struct WALCheckpointTests {
    /// Under a steady stream of commits the WAL is still copied in full from time to
    /// time, so SQLite starts it over: it stays near the checkpoint thresholds however
    /// much is written (a checkpoint running only beside the writer never catches up, and
    /// the WAL grows with everything written).
    @Test func theWALStaysBoundedUnderSteadyWrites() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/hookgate-wal-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStore(directory: directory, sync: .normal)
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 8192)
        let received = Timestamp(microseconds: 1_744_592_372_000_000)
        let event = try EventValidator.event(
            [
                "event_type": "SMS_STATUS",
                "status": ["id": "m1", "type": "SMS", "sender": "61400000009", "recipient": "447", "status": "SENT"],
            ], receivedAt: received)
        let rounds = 60
        let perRound = 200
        for _ in 0..<rounds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<perRound {
                    var new = NewEvent(
                        id: Identifiers.uuid(), event: event, receivedAt: received, idempotencyKey: nil)
                    new.payload = payload
                    let stored = new
                    group.addTask { _ = try await store.appendEvent(stored, router: NoRouter()) }
                }
                try await group.waitForAll()
            }
        }
        let written = rounds * perRound * payload.count
        let walBytes =
            try FileManager.default.attributesOfItem(
                atPath: directory + "/" + SQLiteStore.databaseFileName + "-wal")[.size] as? Int ?? 0
        print("WAL after \(written / 1_048_576) MiB of events: \(walBytes / 1024) KiB")
        #expect(written > 90 << 20)
        #expect(walBytes < 32 << 20)
        await store.close()
        #expect(!FileManager.default.fileExists(atPath: directory + "/" + SQLiteStore.databaseFileName + "-wal"))
    }
}

import Foundation
import HookgateCore
import Testing

@testable import HookgateStore

/// Migration 7 rewrites the request log in a compact layout: a database written by the
/// schema before it opens with every line as it was, filters and sequence intact.
@Suite("Request log migration")
struct RequestLogMigrationTests {
    /// Three lines as schema 6 stored them: a URL that changed between attempts, a user
    /// agent from an older hookgate, a response body, a cancellation (no attempt made, no
    /// user agent), and a webhook that no longer exists. Lines 10 to 12 were pruned, so
    /// the sequence stands at 12.
    static let oldLines: [(seq: Int64, line: LoggedRequest)] = [
        (
            5,
            line(
                "0193f0c2-1111-7000-8000-000000000001", at: 1_000_000, delivery: 1, webhook: "webhook-a",
                event: "0193f0c2-0000-7000-8000-00000000000a", url: "https://a.example/old", status: 500,
                errorClass: "http", error: nil, userAgent: "hookgate/0.0.9", body: Array("busy".utf8),
                outcome: .retrying)
        ),
        (
            7,
            line(
                "0193f0c2-1111-7000-8000-000000000002", at: 6_000_000, delivery: 1, webhook: "webhook-a",
                event: "0193f0c2-0000-7000-8000-00000000000a", url: "https://a.example/new", status: 204,
                errorClass: nil, error: nil, userAgent: "hookgate/0.1.0", body: [], outcome: .delivered)
        ),
        (
            9,
            line(
                "0193f0c2-1111-7000-8000-000000000003", at: 7_000_000, delivery: 2, webhook: "webhook-gone",
                event: "0193f0c2-0000-7000-8000-00000000000b", url: "https://b.example/", status: nil,
                errorClass: nil, error: "webhook deleted", userAgent: "", body: [], outcome: .cancelled)
        ),
    ]

    static func line(
        _ id: String, at: Int64, delivery: Int64, webhook: String, event: String, url: String, status: Int?,
        errorClass: String?, error: String?, userAgent: String, body: [UInt8], outcome: RequestOutcome
    ) -> LoggedRequest {
        LoggedRequest(
            id: id,
            record: AttemptRecord(
                deliverySeq: delivery, at: Timestamp(microseconds: at), webhookID: webhook, eventID: event,
                eventType: .smsStatus, attempt: outcome == .delivered ? 2 : 1, url: url, httpStatus: status,
                errorClass: errorClass, error: error, latencyMicroseconds: status == nil ? nil : 1500,
                userAgent: userAgent, responseBody: body, outcome: outcome, nextAttemptAt: nil))
    }

    /// Writes a database at schema 6 holding `oldLines`.
    static func writeSchema6Database(in directory: String) throws {
        let connection = try SQLiteConnection(path: directory + "/" + SQLiteStore.databaseFileName)
        defer { connection.close() }
        try SchemaMigrations.migrate(connection, to: 6)
        #expect(try connection.scalarInteger("PRAGMA user_version") == 6)
        for (seq, line) in oldLines {
            let record = line.record
            try connection.query(
                """
                INSERT INTO requests (seq, id, at_us, delivery_seq, webhook_id, event_id, event_type, attempt, url,
                                      http_status, error_class, error, latency_us, user_agent, response_body, outcome)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .integer(seq), .text(line.id), .integer(record.at.microseconds), .integer(record.deliverySeq),
                    .text(record.webhookID), .text(record.eventID), .text(record.eventType.rawValue),
                    .integer(Int64(record.attempt)), .text(record.url),
                    .optionalInteger(record.httpStatus.map(Int64.init)), .optionalText(record.errorClass),
                    .optionalText(record.error), .optionalInteger(record.latencyMicroseconds),
                    .text(record.userAgent), .blob(record.responseBody), .text(record.outcome.rawValue),
                ])
        }
        try connection.execute("UPDATE sqlite_sequence SET seq = 12 WHERE name = 'requests'")
    }

    @Test func theLogOfASchema6DatabaseComesThroughWhole() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/hookgate-log-migration-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.writeSchema6Database(in: directory)

        let store = try SQLiteStore(directory: directory)
        let newestFirst = Array(Self.oldLines.map(\.line).reversed())
        #expect(try await store.listRequests(RequestQuery()).requests == newestFirst)
        #expect(
            try await store.listRequests(RequestQuery(webhookID: "webhook-a")).requests == Array(newestFirst.suffix(2)))
        #expect(try await store.listRequests(RequestQuery(webhookID: "webhook-gone")).requests == [newestFirst[0]])
        #expect(try await store.listRequests(RequestQuery(webhookID: "no-such-webhook")).requests.isEmpty)
        #expect(
            try await store.listRequests(RequestQuery(eventID: "0193f0c2-0000-7000-8000-00000000000a")).requests
                == Array(newestFirst.suffix(2)))
        #expect(try await store.listRequests(RequestQuery(outcome: .retrying)).requests == [newestFirst[2]])
        #expect(
            try await store.listRequests(
                RequestQuery(since: Timestamp(microseconds: 6_000_000), until: Timestamp(microseconds: 7_000_000))
            ).requests == [newestFirst[1]])
        // Paging runs across the migrated lines as before.
        let first = try await store.listRequests(RequestQuery(limit: 2))
        #expect(first.requests == Array(newestFirst.prefix(2)))
        let cursor = try #require(first.nextCursor)
        #expect(try await store.listRequests(RequestQuery(limit: 2, cursor: cursor)).requests == [newestFirst[2]])

        // A new line goes after the pruned ones: sequence numbers are never reused.
        let new = Self.line(
            "unused", at: 8_000_000, delivery: 3, webhook: "webhook-a", event: "0193f0c2-0000-7000-8000-00000000000c",
            url: "https://a.example/new", status: 204, errorClass: nil, error: nil, userAgent: "hookgate/0.1.0",
            body: [], outcome: .delivered)
        _ = try await store.recordAttempts([new.record], disableFailingAfterMicroseconds: 0)
        let newest = try #require(try await store.listRequests(RequestQuery(limit: 1)).requests.first)
        #expect(newest.record == new.record)
        await store.close()

        let connection = try SQLiteConnection(path: directory + "/" + SQLiteStore.databaseFileName)
        defer { connection.close() }
        #expect(try connection.scalarInteger("PRAGMA user_version") == SchemaMigrations.currentVersion)
        #expect(try connection.scalarInteger("SELECT MAX(seq) FROM requests") == 13)
        // The URL and user agent used by both webhook-a lines are stored once.
        #expect(try connection.scalarInteger("SELECT COUNT(*) FROM request_endpoints") == 3)
        #expect(try connection.scalarInteger("SELECT COUNT(*) FROM request_webhooks") == 2)
    }
}

import Foundation
import HookgateCore
import Synchronization
import Testing

@testable import HookgateStore

/// A fresh directory under the system's temporary directory, removed afterwards.
@discardableResult
private func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = FileManager.default.temporaryDirectory.path + "/hookgate-store-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A store opened in a fresh directory, closed afterwards.
@discardableResult
private func withStore<T>(_ body: (SQLiteStore, String) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        let store = try SQLiteStore(directory: directory)
        do {
            let result = try await body(store, directory)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

private let epoch = Timestamp(microseconds: 1_744_592_372_758_190)

private func makeWebhook(_ index: Int) -> Webhook {
    let at = epoch.adding(microseconds: Int64(index) * 1_000_000)
    return Webhook(
        id: Identifiers.uuid(),
        definition: WebhookDefinition(
            name: "Hook \(index)", url: "https://example.com/hooks/\(index)",
            filter: WebhookFilter(eventType: [.smsStatus]), rateLimit: index),
        secret: Identifiers.webhookSecret(), createdAt: at, updatedAt: at)
}

/// A webhook with every optional part set, and text that needs escaping.
private func makeFullWebhook() -> Webhook {
    Webhook(
        id: "67e3e4af-62e8-4515-8b67-6f20d0c51ffb",
        definition: WebhookDefinition(
            name: "Ünïcode \"quoted\" 😀 'name'", url: "https://[2001:db8::1]:8443/a?b=c#d",
            filter: WebhookFilter(
                eventType: [.smsInbound, .linkHit, .optOut, .rcsStatus], sender: ["+61 400 000 009", "MyShop"],
                status: ["DELIVERED", "soft_bounce"], messageRef: ["order-42", "ref\nwith\\escapes"],
                campaignId: ["c1"]),
            rateLimit: 10_000, isSandbox: true),
        state: .disabled, disabledReason: "receiver answered 410 Gone",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", previousSecret: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        previousSecretExpiresAt: epoch.adding(microseconds: 86_400_000_000), createdAt: Timestamp(microseconds: -1),
        updatedAt: epoch)
}

private func insert(_ count: Int, into store: SQLiteStore) async throws -> [Webhook] {
    var webhooks: [Webhook] = []
    for index in 0..<count {
        let webhook = makeWebhook(index)
        try await store.insertWebhook(webhook)
        webhooks.append(webhook)
    }
    return webhooks
}

/// Every page from the first, following next_cursor.
private func allPages(of store: SQLiteStore, limit: Int) async throws -> [WebhookPage] {
    var pages: [WebhookPage] = []
    var cursor: String?
    repeat {
        let page = try await store.listWebhooks(after: cursor, limit: limit)
        pages.append(page)
        cursor = page.nextCursor
    } while cursor != nil && pages.count < 1000
    return pages
}

/// Counts calls from any thread.
private final class CallCounter: Sendable {
    private let count = Mutex(0)

    func record() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

private func schemaVersion(in directory: String) throws -> Int64? {
    let connection = try SQLiteConnection(path: directory + "/" + SQLiteStore.databaseFileName)
    defer { connection.close() }
    return try connection.scalarInteger("PRAGMA user_version")
}

@Suite("SQLiteStore")
struct SQLiteStoreTests {
    // MARK: insert and get

    @Test func insertedWebhooksComeBackFieldForField() async throws {
        try await withStore { store, _ in
            let full = makeFullWebhook()
            let plain = makeWebhook(1)
            try await store.insertWebhook(full)
            try await store.insertWebhook(plain)
            #expect(try await store.webhook(id: full.id) == full)
            #expect(try await store.webhook(id: plain.id) == plain)
            #expect(try await store.allWebhooks() == [full, plain])
        }
    }

    @Test(arguments: [
        "", "67e3e4af-62e8-4515-8b67-6f20d0c51ffb", "67E3E4AF-62E8-4515-8B67-6F20D0C51FFB", "' OR 1=1 --",
    ])
    func unknownIDsAreNil(_ id: String) async throws {
        try await withStore { store, _ in
            _ = try await insert(2, into: store)
            #expect(try await store.webhook(id: id) == nil)
        }
    }

    @Test func insertingADuplicateIDFailsAndKeepsTheOriginal() async throws {
        try await withStore { store, _ in
            let original = makeWebhook(1)
            try await store.insertWebhook(original)
            var duplicate = makeWebhook(2)
            duplicate.id = original.id
            await #expect(throws: StoreError.self) { try await store.insertWebhook(duplicate) }
            #expect(try await store.webhook(id: original.id) == original)
            #expect(try await store.allWebhooks() == [original])
            // The store is still usable after the failed transaction.
            let next = makeWebhook(3)
            try await store.insertWebhook(next)
            #expect(try await store.allWebhooks() == [original, next])
        }
    }

    // MARK: list

    @Test func anEmptyStoreListsNothing() async throws {
        try await withStore { store, _ in
            let page = try await store.listWebhooks(after: nil, limit: 100)
            #expect(page == WebhookPage(webhooks: [], nextCursor: nil))
            #expect(try await store.allWebhooks() == [])
        }
    }

    @Test(arguments: [(1, 5), (2, 3), (3, 2), (4, 2), (5, 1), (6, 1), (100, 1)])
    func listPagesOldestFirstUntilANilCursor(_ limit: Int, _ expectedPages: Int) async throws {
        try await withStore { store, _ in
            let inserted = try await insert(5, into: store)
            let pages = try await allPages(of: store, limit: limit)
            #expect(pages.count == expectedPages)
            #expect(pages.flatMap(\.webhooks) == inserted)
            for (i, page) in pages.enumerated() {
                if i < pages.count - 1 {
                    #expect(page.webhooks.count == limit)
                    #expect(page.nextCursor != nil)
                } else {
                    #expect(page.webhooks.count == 5 - limit * (pages.count - 1))
                    #expect(page.nextCursor == nil)
                }
            }
        }
    }

    @Test func aFullLastPageHasNoCursor() async throws {
        try await withStore { store, _ in
            let inserted = try await insert(4, into: store)
            let first = try await store.listWebhooks(after: nil, limit: 2)
            #expect(first.webhooks == Array(inserted[0..<2]))
            let cursor = try #require(first.nextCursor)
            let second = try await store.listWebhooks(after: cursor, limit: 2)
            #expect(second.webhooks == Array(inserted[2..<4]))
            #expect(second.nextCursor == nil)
        }
    }

    @Test func listOrderIsInsertionOrderNotCreatedAt() async throws {
        try await withStore { store, _ in
            var newer = makeWebhook(9)
            newer.createdAt = epoch.adding(microseconds: 1_000_000_000)
            var older = makeWebhook(1)
            older.createdAt = epoch
            try await store.insertWebhook(newer)
            try await store.insertWebhook(older)
            #expect(try await store.listWebhooks(after: nil, limit: 10).webhooks.map(\.id) == [newer.id, older.id])
        }
    }

    @Test(arguments: [
        "", "abc", "w", "W1", "x1", "1", "w-1", "wx", "w1.5", "w 1", "w99999999999999999999",
        // Forms hookgate never writes: a sign, leading zeros, zero, non-ASCII digits.
        "w+1", "w01", "w00", "w0", "w-0", "w１", "w1 ", " w1",
    ])
    func invalidCursorsThrow(_ cursor: String) async throws {
        try await withStore { store, _ in
            _ = try await insert(3, into: store)
            await #expect(throws: StoreFailure.invalidCursor) {
                try await store.listWebhooks(after: cursor, limit: 10)
            }
        }
    }

    @Test func aCursorStillWorksAfterItsRowIsDeleted() async throws {
        try await withStore { store, _ in
            let inserted = try await insert(5, into: store)
            let first = try await store.listWebhooks(after: nil, limit: 2)
            let cursor = try #require(first.nextCursor)
            #expect(try await store.deleteWebhook(id: inserted[1].id))
            #expect(try await store.deleteWebhook(id: inserted[2].id))
            let rest = try await store.listWebhooks(after: cursor, limit: 2)
            #expect(rest.webhooks == [inserted[3], inserted[4]])
            #expect(rest.nextCursor == nil)
        }
    }

    @Test func webhooksInsertedAfterTheLastPageAppearAfterItsCursor() async throws {
        try await withStore { store, _ in
            let inserted = try await insert(3, into: store)
            let first = try await store.listWebhooks(after: nil, limit: 2)
            let cursor = try #require(first.nextCursor)
            let late = makeWebhook(10)
            try await store.insertWebhook(late)
            let rest = try await store.listWebhooks(after: cursor, limit: 2)
            #expect(rest.webhooks == [inserted[2], late])
            #expect(rest.nextCursor == nil)
        }
    }

    // MARK: modify

    @Test func modifyWritesTheTransformedWebhookAndReturnsIt() async throws {
        try await withStore { store, _ in
            let inserted = try await insert(3, into: store)
            let target = inserted[1]
            let later = epoch.adding(microseconds: 3_600_000_000)
            let definition = WebhookDefinition(
                name: "Renamed", url: "https://other.example.com/", filter: WebhookFilter(eventType: [.optOut]),
                rateLimit: 77, isSandbox: true)
            let result = try await store.modifyWebhook(id: target.id) { current in
                current.replacing(with: definition, at: later).settingState(.disabled, reason: "manual", at: later)
            }
            let expected = target.replacing(with: definition, at: later).settingState(
                .disabled, reason: "manual", at: later)
            #expect(result == expected)
            #expect(try await store.webhook(id: target.id) == expected)
            // The others are untouched and the order is kept.
            #expect(try await store.allWebhooks() == [inserted[0], expected, inserted[2]])
        }
    }

    @Test func modifyOfAnUnknownIDIsNilAndDoesNotCallTheTransform() async throws {
        try await withStore { store, _ in
            let inserted = try await insert(2, into: store)
            let calls = CallCounter()
            let result = try await store.modifyWebhook(id: "00000000-0000-4000-8000-000000000000") { webhook in
                calls.record()
                return webhook
            }
            #expect(result == nil)
            #expect(calls.value == 0)
            #expect(try await store.allWebhooks() == inserted)
        }
    }

    @Test func concurrentModificationsAreAtomic() async throws {
        try await withStore { store, _ in
            var webhook = makeWebhook(0)
            webhook.definition.rateLimit = 0
            try await store.insertWebhook(webhook)
            let id = webhook.id
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        _ = try await store.modifyWebhook(id: id) { current in
                            var next = current
                            next.definition.rateLimit += 1
                            return next
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.webhook(id: id)?.definition.rateLimit == 200)
        }
    }

    @Test func rotationThroughModifyIsStored() async throws {
        try await withStore { store, _ in
            let webhook = makeWebhook(0)
            try await store.insertWebhook(webhook)
            let at = epoch.adding(microseconds: 5_000_000)
            let rotated = try #require(try await store.modifyWebhook(id: webhook.id) { $0.rotatingSecret(at: at) })
            let stored = try #require(try await store.webhook(id: webhook.id))
            #expect(stored == rotated)
            #expect(stored.previousSecret == webhook.secret)
            #expect(stored.previousSecretExpiresAt == at.adding(microseconds: Webhook.secretOverlapMicroseconds))
            #expect(stored.signingSecrets(at: at) == [rotated.secret, webhook.secret])
        }
    }

    // MARK: delete

    @Test func deleteRemovesOnlyThatWebhook() async throws {
        try await withStore { store, _ in
            let inserted = try await insert(3, into: store)
            #expect(try await store.deleteWebhook(id: inserted[1].id) == true)
            #expect(try await store.webhook(id: inserted[1].id) == nil)
            #expect(try await store.deleteWebhook(id: inserted[1].id) == false)
            #expect(try await store.deleteWebhook(id: "00000000-0000-4000-8000-000000000000") == false)
            #expect(try await store.allWebhooks() == [inserted[0], inserted[2]])
            let page = try await store.listWebhooks(after: nil, limit: 10)
            #expect(page == WebhookPage(webhooks: [inserted[0], inserted[2]], nextCursor: nil))
            #expect(try await store.modifyWebhook(id: inserted[1].id) { $0 } == nil)
        }
    }

    @Test func anIDCanBeReusedAfterDelete() async throws {
        try await withStore { store, _ in
            let first = makeWebhook(1)
            try await store.insertWebhook(first)
            #expect(try await store.deleteWebhook(id: first.id))
            var again = makeWebhook(2)
            again.id = first.id
            try await store.insertWebhook(again)
            #expect(try await store.webhook(id: first.id) == again)
        }
    }

    // MARK: durability across reopening

    @Test func reopeningTheDirectoryFindsEverything() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            let inserted = try await insert(4, into: store)
            let full = makeFullWebhook()
            try await store.insertWebhook(full)
            let later = epoch.adding(microseconds: 60_000_000)
            let modified = try #require(
                try await store.modifyWebhook(id: inserted[0].id) { $0.rotatingSecret(at: later) })
            #expect(try await store.deleteWebhook(id: inserted[2].id))
            await store.close()

            let reopened = try SQLiteStore(directory: directory)
            let expected = [modified, inserted[1], inserted[3], full]
            #expect(try await reopened.allWebhooks() == expected)
            #expect(try await reopened.webhook(id: full.id) == full)
            #expect(try await reopened.webhook(id: inserted[2].id) == nil)
            #expect(try await allPages(of: reopened, limit: 3).flatMap(\.webhooks) == expected)
            // New rows go after the old ones.
            let late = makeWebhook(20)
            try await reopened.insertWebhook(late)
            #expect(try await reopened.allWebhooks() == expected + [late])
            await reopened.close()

            let third = try SQLiteStore(directory: directory, sync: .normal)
            #expect(try await third.allWebhooks() == expected + [late])
            await third.close()
        }
    }

    @Test func aCursorFromBeforeAReopenStillWorks() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            let inserted = try await insert(3, into: store)
            let cursor = try #require(try await store.listWebhooks(after: nil, limit: 1).nextCursor)
            await store.close()
            let reopened = try SQLiteStore(directory: directory)
            let page = try await reopened.listWebhooks(after: cursor, limit: 10)
            #expect(page.webhooks == Array(inserted[1...]))
            await reopened.close()
        }
    }

    // MARK: schema

    @Test func schemaVersionIsTheNumberOfMigrations() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            _ = try await insert(1, into: store)
            await store.close()
            #expect(SchemaMigrations.currentVersion == Int64(SchemaMigrations.steps.count))
            #expect(try schemaVersion(in: directory) == Int64(SchemaMigrations.steps.count))

            // Opening again migrates nothing and keeps the version.
            let reopened = try SQLiteStore(directory: directory)
            #expect(try await reopened.allWebhooks().count == 1)
            await reopened.close()
            #expect(try schemaVersion(in: directory) == Int64(SchemaMigrations.steps.count))
        }
    }

    @Test func theDatabaseIsInWALMode() async throws {
        try await withStore { _, directory in
            let connection = try SQLiteConnection(path: directory + "/" + SQLiteStore.databaseFileName)
            defer { connection.close() }
            var mode = ""
            try connection.query("PRAGMA journal_mode") { row in mode = row.text(0) }
            #expect(mode == "wal")
        }
    }

    @Test func aDatabaseFromANewerVersionIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            let webhook = makeWebhook(1)
            try await store.insertWebhook(webhook)
            await store.close()
            do {
                let connection = try SQLiteConnection(path: directory + "/" + SQLiteStore.databaseFileName)
                try connection.execute("PRAGMA user_version = \(SchemaMigrations.currentVersion + 1)")
                connection.close()
            }
            #expect(throws: StoreError.self) { try SQLiteStore(directory: directory) }
            // Refusing did not touch the data or the version.
            #expect(try schemaVersion(in: directory) == SchemaMigrations.currentVersion + 1)
        }
    }

    // MARK: failures

    @Test func aMissingDirectoryIsAnError() async throws {
        try await withTemporaryDirectory { directory in
            #expect(throws: StoreError.self) { try SQLiteStore(directory: directory + "/does/not/exist") }
        }
    }

    @Test func aClosedStoreRefusesCalls() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(directory: directory)
            let webhook = makeWebhook(1)
            try await store.insertWebhook(webhook)
            await store.close()
            await #expect(throws: StoreError.self) { try await store.webhook(id: webhook.id) }
            await #expect(throws: StoreError.self) { try await store.insertWebhook(makeWebhook(2)) }
            await #expect(throws: StoreError.self) { try await store.listWebhooks(after: nil, limit: 10) }
            await #expect(throws: StoreError.self) { try await store.deleteWebhook(id: webhook.id) }
            // Closing twice is harmless.
            await store.close()
            let reopened = try SQLiteStore(directory: directory)
            #expect(try await reopened.allWebhooks() == [webhook])
            await reopened.close()
        }
    }
}

extension SQLiteStore {
    /// Every webhook, oldest first, through the paged listing.
    fileprivate func allWebhooks() async throws -> [Webhook] {
        var all: [Webhook] = []
        var cursor: String?
        repeat {
            let page = try await listWebhooks(after: cursor, limit: 1000)
            all += page.webhooks
            cursor = page.nextCursor
        } while cursor != nil
        return all
    }
}

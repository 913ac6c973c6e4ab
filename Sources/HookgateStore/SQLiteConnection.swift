import CSQLite

/// A failed SQLite call, with SQLite's own message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    /// True when the failure is the disk's (full, read-only, I/O), not a bug.
    public var isResourceFailure: Bool {
        let primary = code & 0xFF
        return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_READONLY
            || primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_CANTOPEN
    }

    public var description: String { "sqlite error \(code): \(message)" }
}

/// One SQLite connection and its cached prepared statements. Not thread-safe: its owner
/// (SQLiteStore's serial queue) is the only caller.
final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [(sql: String, statement: OpaquePointer)] = []

    /// `readOnly`: a second connection for reads that must not queue behind the writer
    /// (in WAL mode a reader sees the last commit and never waits for a sync).
    init(path: String, readOnly: Bool = false) throws(StoreError) {
        var db: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open \(path)"
            sqlite3_close(db)
            throw StoreError(code: rc, message: message)
        }
        self.handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { close() }

    func close() {
        for entry in statements { sqlite3_finalize(entry.statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Calls `hook` with `context` after each commit, with the pages the WAL holds; it
    /// replaces SQLite's automatic checkpoint (`WALCheckpointer`).
    func setWALHook(
        _ hook: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32,
        context: UnsafeMutableRawPointer
    ) {
        sqlite3_wal_hook(handle, hook, context)
    }

    /// Copies what it can of the WAL into the database without waiting for readers or
    /// the writer (a passive checkpoint); the WAL's frames and how many were copied.
    @discardableResult
    func checkpointPassively() throws(StoreError) -> (frames: Int32, copied: Int32) {
        var frames: Int32 = 0
        var copied: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied)
        guard rc == SQLITE_OK else { throw error(rc) }
        return (frames, copied)
    }

    private func error(_ rc: Int32) -> StoreError {
        StoreError(code: rc, message: handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed")
    }

    /// Runs SQL that returns no rows (several statements allowed).
    func execute(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error"
            sqlite3_free(message)
            throw StoreError(code: rc, message: text)
        }
    }

    /// Runs `body` in one transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on error.
    func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try inTransaction(begin: "BEGIN IMMEDIATE", body)
    }

    /// Runs `body` in one read transaction (BEGIN ... COMMIT): every query in it reads
    /// the same snapshot.
    func snapshot<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try inTransaction(begin: "BEGIN", body)
    }

    /// BEGIN and COMMIT go through prepared statements too: `sqlite3_exec` would parse
    /// them again for every transaction.
    private func inTransaction<T>(begin: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try query(begin)
        do {
            let result = try body()
            try query("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs a cached prepared statement with `bindings`, calling `row` for each result row.
    func query(_ sql: String, _ bindings: [SQLValue] = [], row: (SQLRow) throws(StoreError) -> Void = { _ in })
        throws(StoreError)
    {
        try queryRows(sql, bindings) { (result: SQLRow) throws(StoreError) -> Bool in
            try row(result)
            return true
        }
    }

    /// The same, stepping on only while `row` returns true: a walk that has found what it
    /// wants leaves the rest of its page unread.
    func queryRows(_ sql: String, _ bindings: [SQLValue], while row: (SQLRow) throws(StoreError) -> Bool)
        throws(StoreError)
    {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (i, value) in bindings.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .integer(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .text(let v): rc = Self.bindText(v, statement: statement, index: index)
            case .blob(let v):
                rc = v.withUnsafeBytes {
                    sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), hookgate_sqlite_transient())
                }
            }
            if rc != SQLITE_OK { throw error(rc) }
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            if rc != SQLITE_ROW { throw error(rc) }
            guard try row(SQLRow(statement: statement!)) else { return }
        }
    }

    /// Binds text by its UTF-8 length, never up to a NUL: text holding U+0000 is stored
    /// whole (an idempotency key "a\u0000b" is not "a").
    private static func bindText(_ text: String, statement: OpaquePointer?, index: Int32) -> Int32 {
        var text = text
        return text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                // An empty buffer may have no address, and a null pointer would bind NULL.
                guard let address = chars.baseAddress else {
                    return sqlite3_bind_text(statement, index, "", 0, hookgate_sqlite_transient())
                }
                return sqlite3_bind_text(statement, index, address, Int32(chars.count), hookgate_sqlite_transient())
            }
        }
    }

    /// The rowid of the last row inserted.
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// The number of rows the last INSERT/UPDATE/DELETE changed.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// The first column of the first row; nil when there is no row or the value is NULL
    /// (as MIN and MAX of no rows are).
    func scalarInteger(_ sql: String, _ bindings: [SQLValue] = []) throws(StoreError) -> Int64? {
        var result: Int64?
        try query(sql, bindings) { row in result = row.optionalInteger(0) }
        return result
    }

    private func prepared(_ sql: String) throws(StoreError) -> OpaquePointer? {
        // A linear scan of the few statements there are: comparing lengths, then text
        // (the same literal's storage compares at once), beats hashing the SQL each time.
        let length = sql.utf8.count
        for entry in statements where entry.sql.utf8.count == length && entry.sql == sql { return entry.statement }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        statements.append((sql, statement))
        return statement
    }
}

enum SQLValue {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])

    static func optionalText(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    static func optionalInteger(_ value: Int64?) -> SQLValue { value.map { .integer($0) } ?? .null }
}

/// A result row, valid only inside the `row` callback.
struct SQLRow {
    let statement: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func optionalInteger(_ column: Int32) -> Int64? { isNull(column) ? nil : integer(column) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

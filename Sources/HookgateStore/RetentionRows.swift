/// Where retention goes on from in each table it prunes.
struct RetentionCursors {
    var deliveries: Int64?
    var events: Int64?
}

/// Retention's statements: a table is walked by sequence number (its rowid, so a range
/// costs the rows in it, whatever the table holds) from the oldest row on, a bounded
/// range at a time.
enum RetentionRows {
    /// About how long one retention transaction may hold the writer: emits wait behind it.
    static let transactionBudget = Duration.milliseconds(20)
    /// Rows deleted per statement within that budget.
    static let chunkRows = 250
    /// Deletes the rows of `table` in the next `maxRows` sequence numbers after `cursor`
    /// that are older than `before` (by `timeColumn`) and `deletable`; how many went.
    /// Rows are in time order by sequence, so the walk stops at the first row that is not
    /// old yet; the next pass after that starts again from the oldest row left (pending
    /// deliveries stay behind, and are looked at again once they may have finished).
    static func prune(
        _ connection: SQLiteConnection, table: String, timeColumn: String, deletable: String, before: Int64,
        maxRows: Int, cursor: inout Int64?
    ) throws(StoreError) -> Int {
        let start: Int64
        if let cursor {
            start = cursor
        } else {
            guard let oldest = try connection.scalarInteger("SELECT MIN(seq) FROM \(table)") else { return 0 }
            start = oldest
        }
        let end = start + Int64(maxRows)
        // The first row of the range that is young enough to keep, if any.
        let young = try connection.scalarInteger(
            "SELECT MIN(seq) FROM \(table) WHERE seq >= ? AND seq < ? AND \(timeColumn) >= ?",
            [.integer(start), .integer(end), .integer(before)])
        let stop = young ?? end
        try connection.query(
            "DELETE FROM \(table) WHERE seq >= ? AND seq < ? AND \(timeColumn) < ? AND \(deletable)",
            [.integer(start), .integer(stop), .integer(before)])
        let deleted = connection.changes
        if young != nil {
            cursor = nil
        } else {
            let newest = try connection.scalarInteger("SELECT MAX(seq) FROM \(table)") ?? 0
            cursor = end > newest ? nil : end
        }
        return deleted
    }
}

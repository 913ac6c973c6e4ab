import CSQLite
import Dispatch
import Synchronization

/// Checkpoints the WAL on a connection and thread of its own. SQLite's automatic
/// checkpoint runs inside the commit that crosses its threshold, on the writer: that
/// commit (and every emit waiting behind it) pays for copying the WAL into the database
/// file and syncing it. Here a commit past `requestPages` asks, and the bulk of the copy
/// runs beside the writer (a passive checkpoint never blocks it). SQLite starts the WAL
/// over only once every frame is copied, which a checkpoint running beside a busy writer
/// never sees; so commits past `finishPages` stop asking and checkpoint on the writer, as
/// SQLite would, and find only the frames written since the last background pass began
/// left to copy (while that pass is still under way they return at once, and the next
/// commit tries again).
///
/// `@unchecked Sendable`: `connection` is touched only on `queue`; `requested` is atomic.
final class WALCheckpointer: @unchecked Sendable {
    /// WAL pages after which a commit asks for a checkpoint.
    static let requestPages: Int32 = 500
    /// WAL pages after which the writer's commits finish the checkpoint themselves
    /// (SQLite's own default threshold).
    static let finishPages: Int32 = 1000

    private let queue = DispatchQueue(label: "hookgate.store.checkpoint")
    private var connection: SQLiteConnection?
    private let requested = Atomic<Bool>(false)

    init(path: String) throws(StoreError) {
        let connection = try SQLiteConnection(path: path)
        try connection.execute("PRAGMA busy_timeout=5000")
        // A connection that has not read the database does not know it is in WAL
        // mode, and its checkpoints do nothing.
        try connection.execute("PRAGMA journal_mode=WAL")
        self.connection = connection
    }

    /// Makes `writer`'s commits ask this checkpointer instead of checkpointing
    /// themselves. `self` must outlive the writer's last commit (the store holds both,
    /// and closes the writer first).
    func serve(_ writer: SQLiteConnection) {
        writer.setWALHook(walHook, context: Unmanaged.passUnretained(self).toOpaque())
    }

    /// On the writer, after a commit that left `pages` in the WAL.
    fileprivate func committed(pages: Int32) {
        guard pages >= Self.requestPages, !requested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async {
            self.requested.store(false, ordering: .releasing)
            // A failure (the database busy past the timeout) is tried again at the next
            // commit's request; the writer's own pass bounds the WAL meanwhile.
            _ = try? self.connection?.checkpointPassively()
        }
    }

    /// Waits for a checkpoint under way, then closes the connection.
    func close() {
        queue.sync {
            connection?.close()
            connection = nil
        }
    }
}

private func walHook(
    _ context: UnsafeMutableRawPointer?, _ db: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ pages: Int32
) -> Int32 {
    guard let context else { return SQLITE_OK }
    if pages >= WALCheckpointer.finishPages {
        // SQLITE_BUSY at once while the background pass holds the checkpoint lock.
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    } else {
        Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(pages: pages)
    }
    return SQLITE_OK
}

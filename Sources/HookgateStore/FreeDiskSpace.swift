import HookgateCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Free space on the disk that holds the data directory, against `--min-free-disk`.
/// Below it, commands that make the store grow are refused so the daemon can go on
/// recording attempts and pruning (and drain) instead of wedging on a full disk.
/// statvfs(2) is read at most once per `refreshMicroseconds`, not once per event.
public final class FreeDiskSpace: Sendable {
    public let path: String
    public let minimumBytes: UInt64
    private let refreshMicroseconds: Int64
    private let clock: any WallClock
    private let cached = Mutex<(at: Timestamp, freeBytes: UInt64?)?>(nil)

    public init(path: String, minimumBytes: UInt64, refreshMicroseconds: Int64 = 250_000, clock: any WallClock) {
        self.path = path
        self.minimumBytes = minimumBytes
        self.refreshMicroseconds = refreshMicroseconds
        self.clock = clock
    }

    /// Bytes available to the daemon's user, or nil when statvfs fails.
    public var freeBytes: UInt64? {
        let now = clock.now()
        if let cached = cached.withLock({ $0 }), now.microseconds - cached.at.microseconds < refreshMicroseconds {
            return cached.freeBytes
        }
        var info = statvfs()
        let free = statvfs(path, &info) == 0 ? UInt64(info.f_bavail) * UInt64(info.f_frsize) : nil
        cached.withLock { $0 = (now, free) }
        return free
    }

    /// Why the store may not grow now ("disk nearly full: 12 MiB free, ..."), or nil.
    public var shortage: String? {
        guard minimumBytes > 0, let free = freeBytes, free < minimumBytes else { return nil }
        return "disk nearly full: \(free >> 20) MiB free on \(path), under --min-free-disk (\(minimumBytes >> 20) MiB)"
    }
}

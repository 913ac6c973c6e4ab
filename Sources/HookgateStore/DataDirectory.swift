#if canImport(Glibc)
    import Glibc
#endif

/// Why the data directory cannot be used.
public struct DataDirectoryError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The data directory: created private, tightened when it is not, and held by one daemon
/// at a time through an exclusive `flock` on `DATA_DIR/lock`.
///
/// The lock is held as long as this value lives (the kernel releases it when the process
/// ends, however it ends), so a second daemon on the same directory cannot run its own
/// matcher and engine against the same database and deliver everything twice.
public final class DataDirectory: Sendable {
    public static let lockFileName = "lock"

    public let path: String
    /// The open lock file; closing it releases the lock.
    private let lockDescriptor: Int32

    /// What was changed to make the directory and its files private, for the log.
    public let tightened: [String]

    /// Creates `path` (mode 0700) if needed, tightens an existing one to 0700, takes the
    /// lock, and tightens the database files to 0600.
    public init(path: String, databaseFiles: [String]) throws(DataDirectoryError) {
        self.path = path
        var tightened: [String] = []
        try Self.createParents(of: path)
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw DataDirectoryError("cannot create data directory \(path): \(Self.errorText())")
        }
        if let change = try Self.restrict(path, to: 0o700) { tightened.append(change) }

        let lockPath = path + "/" + Self.lockFileName
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DataDirectoryError("cannot open \(lockPath): \(Self.errorText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno == EWOULDBLOCK ? nil : Self.errorText()
            let holder = Self.holderPID(fd)
            close(fd)
            if let reason { throw DataDirectoryError("cannot lock \(lockPath): \(reason)") }
            let who = holder.map { "hookgate (pid \($0))" } ?? "another hookgate"
            throw DataDirectoryError(
                "\(who) already uses the data directory \(path): it holds the lock \(lockPath); "
                    + "one daemon per data directory")
        }
        // The holder's PID, for the message a second daemon prints.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        lockDescriptor = fd

        for name in [Self.lockFileName] + databaseFiles {
            if let change = try Self.restrict(path + "/" + name, to: 0o600) { tightened.append(change) }
        }
        self.tightened = tightened
    }

    deinit { close(lockDescriptor) }

    /// Tightens the files SQLite creates beside the database (`-wal`, `-shm`), which
    /// appear only once it is open.
    public func restrictFiles(_ names: [String]) throws(DataDirectoryError) -> [String] {
        var changes: [String] = []
        for name in names {
            if let change = try Self.restrict(path + "/" + name, to: 0o600) { changes.append(change) }
        }
        return changes
    }

    /// Removes group and other permissions beyond `mode` from `path`; what changed, or
    /// nil (also when the file does not exist).
    private static func restrict(_ path: String, to mode: mode_t) throws(DataDirectoryError) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw DataDirectoryError("cannot read the mode of \(path): \(errorText())")
        }
        let current = info.st_mode & 0o7777
        guard current & ~mode != 0 else { return nil }
        let wanted = current & mode
        guard chmod(path, wanted) == 0 else {
            throw DataDirectoryError("cannot set mode \(octal(wanted)) on \(path): \(errorText())")
        }
        return "\(path): mode \(octal(current)) -> \(octal(wanted))"
    }

    private static func createParents(of path: String) throws(DataDirectoryError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/").dropLast() {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw DataDirectoryError("cannot create directory \(current): \(errorText())")
            }
        }
    }

    private static func holderPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n").first ?? ""
        return Int32(text)
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

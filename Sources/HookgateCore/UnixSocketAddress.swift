#if canImport(Glibc)
    import Glibc
#endif

/// A Unix-domain socket address for a path: built once here rather than by every caller
/// that binds or connects (the daemon's stale-socket probe, the benchmark, the tests).
public struct UnixSocketAddress {
    private var storage = sockaddr_un()

    /// Nil when `path` does not fit the 107 bytes `sun_path` holds.
    public init?(path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: storage.sun_path) else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
    }

    /// Calls `body` with the address as a `sockaddr` and its length (for connect/bind).
    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        try withUnsafePointer(to: storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// Connects `fd` to the address; the result of connect(2).
    public func connect(_ fd: Int32) -> Int32 {
        withSockaddr { Glibc.connect(fd, $0, $1) }
    }
}

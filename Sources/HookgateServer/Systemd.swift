import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's side of systemd: sockets it was handed, and readiness notifications.
public enum Systemd {
    /// A listening socket passed by socket activation.
    public struct ListenSocket: Sendable {
        public let descriptor: Int32
        public let name: String
    }

    /// The listening Unix stream sockets passed through `LISTEN_FDS`/`LISTEN_PID`
    /// (starting at fd 3), with their `LISTEN_FDNAMES`. Empty without socket activation.
    /// Throws when activation passed descriptors that are not listening Unix stream
    /// sockets: serving something else would be a misconfiguration to report, not ignore.
    public static func listenSockets() throws -> [ListenSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        // unset_environment=1: a process this daemon starts must not think they are its.
        let count = sd_listen_fds_with_names(1, &names)
        if count < 0 { throw SystemdError("sd_listen_fds_with_names failed: \(String(cString: strerror(-count)))") }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        var sockets: [ListenSocket] = []
        for i in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
                throw SystemdError("fd \(fd) (\(name)) passed by systemd is not a listening Unix stream socket")
            }
            sockets.append(ListenSocket(descriptor: fd, name: name))
        }
        return sockets
    }

    /// Sends `state` (`READY=1`, `STATUS=...`, ...) to the service manager; a no-op
    /// when `NOTIFY_SOCKET` is unset.
    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// The watchdog interval systemd asked for (`WATCHDOG_USEC`), in microseconds, or nil.
    public static func watchdogMicroseconds() -> UInt64? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return usec
    }
}

public struct SystemdError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

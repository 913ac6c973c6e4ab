import HookgateCore
import HookgateStore
import HookgateWire
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where the control socket comes from.
public enum ControlSocketSource: Sendable {
    /// Sockets systemd bound and passed (socket activation); never unlinked by hookgate.
    case activated([Systemd.ListenSocket])
    /// A path hookgate binds itself, with the file mode to give it.
    case path(String, mode: UInt32)
}

public struct ControlServerConfiguration: Sendable {
    public var socket: ControlSocketSource
    public var maxLineBytes: Int
    /// How long connections get to finish their requests at shutdown.
    public var shutdownGrace: Duration
    public var eventLoopThreads: Int
    /// Connections served at once (`--max-connections`); one more is told so and closed.
    public var maxConnections: Int
    /// Answers one connection may hold for its client (see ControlConnectionHandler).
    public var maxBufferedBytesPerConnection: Int

    public init(
        socket: ControlSocketSource, maxLineBytes: Int, shutdownGrace: Duration, eventLoopThreads: Int = 1,
        maxConnections: Int = 1024, maxBufferedBytesPerConnection: Int = 8 << 20
    ) {
        self.socket = socket
        self.maxLineBytes = maxLineBytes
        self.shutdownGrace = shutdownGrace
        self.eventLoopThreads = eventLoopThreads
        self.maxConnections = maxConnections
        self.maxBufferedBytesPerConnection = maxBufferedBytesPerConnection
    }
}

public struct ControlServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The control socket as a service: binds (or adopts) the socket, serves connections,
/// tells systemd it is ready and raises `ready`; on graceful shutdown it stops accepting
/// and lets every connection finish the requests it has sent. The services after it in
/// the group (delivery, then the store) stop once it has returned.
public final class ControlServer: Service {
    private let configuration: ControlServerConfiguration
    private let dispatcher: CommandDispatcher
    private let requestTail: RequestTail
    private let logger: Logger
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let acceptFailures = Mutex(RepeatLimiter())
    private let group: MultiThreadedEventLoopGroup
    /// Raised once the socket is served.
    public let ready: ReadySignal

    public init(
        configuration: ControlServerConfiguration, dispatcher: CommandDispatcher,
        requestTail: RequestTail = RequestTail(), ready: ReadySignal = ReadySignal(), logger: Logger
    ) {
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.requestTail = requestTail
        self.ready = ready
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
    }

    /// Connections open now (`hookgate_connections`).
    public var connectionCount: Int { connections.withLock { $0.count } }

    /// Returns once every event loop has run a piece of work (the watchdog's probe).
    public func probeEventLoops() async {
        for loop in group.makeIterator() { try? await loop.submit({}).get() }
    }

    public func run() async throws {
        var listeners: [any Channel] = []
        var boundPath: (path: String, inode: UInt)?
        do {
            switch configuration.socket {
            case .activated(let sockets):
                for socket in sockets {
                    listeners.append(
                        try await bootstrap(group, listeningDescriptor: socket.descriptor)
                            .withBoundSocket(socket.descriptor).get())
                    logger.info(
                        "serving socket passed by systemd",
                        metadata: ["fd": "\(socket.descriptor)", "name": "\(socket.name)"])
                }
            case .path(let path, let mode):
                try UnixSocketFile.prepare(path)
                let descriptor = try UnixSocketFile.listen(path, mode: mode, backlog: 256)
                do {
                    listeners.append(
                        try await bootstrap(group, listeningDescriptor: descriptor).withBoundSocket(descriptor).get())
                } catch {
                    close(descriptor)
                    throw error
                }
                boundPath = (path, UnixSocketFile.inode(path) ?? 0)
                logger.info("listening", metadata: ["socket": "\(path)", "mode": "\(String(mode, radix: 8))"])
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            try? await group.shutdownGracefully()
            throw error
        }

        Systemd.notify("READY=1\nSTATUS=accepting commands")
        ready.signal()

        // Runs until SIGTERM/SIGINT (graceful shutdown) or cancellation.
        try? await gracefulShutdown()

        Systemd.notify("STOPPING=1\nSTATUS=shutting down")
        logger.info("shutting down")
        for listener in listeners { try? await listener.close() }
        if let boundPath, UnixSocketFile.inode(boundPath.path) == boundPath.inode {
            unlink(boundPath.path)
        }
        await drainConnections()
        try? await group.shutdownGracefully()
    }

    /// The bootstrap that serves the listening socket `listeningDescriptor` (bound and
    /// listening already).
    private func bootstrap(_ group: MultiThreadedEventLoopGroup, listeningDescriptor: Int32) -> ServerBootstrap {
        let dispatcher = self.dispatcher
        let requestTail = self.requestTail
        let maxLineBytes = configuration.maxLineBytes
        let maxBuffered = configuration.maxBufferedBytesPerConnection
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DescriptorExhaustionHandler(listeningDescriptor: listeningDescriptor) { shed in
                            let (log, suppressed) = self.acceptFailures.withLock {
                                $0.occurrence(at: SystemWallClock().now())
                            }
                            if log {
                                self.logger.error(
                                    "out of file descriptors: refusing the connections waiting to be accepted",
                                    metadata: ["refused": "\(shed)", "similar_lines_left_out": "\(suppressed)"])
                            }
                        })
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [weak self] channel in
                guard let self, self.admit(channel) else {
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            RefusedConnectionHandler(maxConnections: self?.configuration.maxConnections ?? 0))
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maxLineBytes: maxLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(
                        ControlConnectionHandler(
                            dispatcher: dispatcher, requestTail: requestTail, maxBufferedBytes: maxBuffered))
                }
            }
    }

    /// Tracks `channel` unless `--max-connections` are already open.
    private func admit(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let admitted = connections.withLock { connections in
            guard connections.count < configuration.maxConnections else { return false }
            connections[key] = channel
            return true
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { [weak self] _ in
            _ = self?.connections.withLock { $0.removeValue(forKey: key) }
        }
        return true
    }

    /// Asks every connection to stop reading and close once its requests are answered;
    /// after the grace period, closes what is left.
    private func drainConnections() async {
        let open = connections.withLock { Array($0.values) }
        guard !open.isEmpty else { return }
        for channel in open {
            channel.eventLoop.execute {
                channel.pipeline.fireUserInboundEventTriggered(DrainConnectionEvent())
            }
        }
        let grace = configuration.shutdownGrace
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for channel in open { try? await channel.closeFuture.get() }
            }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
        }
        for channel in open where channel.isActive {
            try? await channel.close()
        }
    }
}

/// The standalone socket file: stale ones are replaced, live ones are refused.
enum UnixSocketFile {
    static func prepare(_ path: String) throws {
        guard path.utf8.count < 108 else {
            throw ControlServerError("socket path \(path) is longer than the 107 bytes a Unix socket address holds")
        }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !directory.isEmpty { try Directories.create(directory, mode: 0o755) }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlServerError("\(path) exists and is not a socket; refusing to replace it")
        }
        if isAnswering(path) {
            throw ControlServerError("another daemon is already listening on \(path)")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ControlServerError("cannot remove stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// A listening socket bound to `path` with file mode `mode` (no moment with a looser
    /// one: the umask covers the bind).
    static func listen(_ path: String, mode: UInt32, backlog: Int32) throws -> Int32 {
        guard let address = UnixSocketAddress(path: path) else {
            throw ControlServerError("socket path \(path) is too long")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlServerError("cannot create a socket: \(String(cString: strerror(errno)))") }
        let previousMask = umask(0o177)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        umask(previousMask)
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ControlServerError("cannot bind \(path): \(reason)")
        }
        guard chmod(path, mode_t(mode)) == 0, Glibc.listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(path)
            throw ControlServerError("cannot set mode \(String(mode, radix: 8)) on and listen on \(path): \(reason)")
        }
        return fd
    }

    static func inode(_ path: String) -> UInt? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt(info.st_ino)
    }

    /// Whether something accepts connections on the socket at `path`.
    static func isAnswering(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let address = UnixSocketAddress(path: path) else { return false }
        return address.connect(fd) == 0
    }
}

/// `mkdir -p`.
public enum Directories {
    /// Creates `path` and its missing parents with `mode`.
    public static func create(_ path: String, mode: mode_t) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw ControlServerError("cannot create directory \(current): \(String(cString: strerror(errno)))")
            }
        }
    }
}

import HookgateCore
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// On the listening channel: when accept fails for want of file descriptors, the
/// connections waiting are accepted with a spare descriptor kept for this, told
/// `unavailable` and closed, so the listening socket stops being readable.
///
/// Without this the event loop spins a core: NIO leaves the listening socket registered
/// for reading after a failed accept (its read stays pending), epoll keeps reporting the
/// waiting connections, and every wake-up fails the same way. A pause in accepting (NIO's
/// AcceptBackoffHandler) cannot help, as no further read is asked for.
///
/// Owned by the listening channel's event loop: `spare` is touched only there.
final class DescriptorExhaustionHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    private let listeningDescriptor: Int32
    private var spare: Int32
    private let onShed: (Int) -> Void

    /// `onShed` is told how many connections were refused, each time.
    init(listeningDescriptor: Int32, onShed: @escaping (Int) -> Void) {
        self.listeningDescriptor = listeningDescriptor
        // NIO serves it non-blocking already; the shedding loop relies on that.
        _ = fcntl(listeningDescriptor, F_SETFL, fcntl(listeningDescriptor, F_GETFL) | O_NONBLOCK)
        self.spare = Self.openSpare()
        self.onShed = onShed
    }

    deinit { if spare >= 0 { close(spare) } }

    private static func openSpare() -> Int32 { open("/dev/null", O_RDONLY | O_CLOEXEC) }

    static let refusal: [UInt8] =
        CommandDispatcher.failure(
            ProtocolError(.unavailable, "the daemon is out of file descriptors; try again later"), id: nil) + [0x0A]

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let ioError = error as? IOError, ioError.errnoCode == EMFILE || ioError.errnoCode == ENFILE {
            let shed = shedWaitingConnections()
            onShed(shed)
            // Not even the spare descriptor could take one (the limit was lowered below
            // it, or the whole system is out): the loop would come straight back here,
            // so it is slowed to 50 wake-ups a second instead of spinning.
            if shed == 0 { usleep(20_000) }
            return
        }
        context.fireErrorCaught(error)
    }

    /// Accepts and refuses every connection waiting, one descriptor at a time: the
    /// spare one, freed for this and taken again after.
    private func shedWaitingConnections() -> Int {
        if spare >= 0 {
            close(spare)
            spare = -1
        }
        var shed = 0
        while true {
            let fd = accept(listeningDescriptor, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                break
            }
            _ = Self.refusal.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(fd)
            shed += 1
        }
        spare = Self.openSpare()
        return shed
    }
}

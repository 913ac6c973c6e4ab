import HookgateCore
import NIOCore

/// A connection over `--max-connections`: it gets one `unavailable` line and is closed,
/// and nothing it sends is read.
final class RefusedConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let maxConnections: Int

    init(maxConnections: Int) { self.maxConnections = maxConnections }

    func channelActive(context: ChannelHandlerContext) {
        let line = CommandDispatcher.failure(
            ProtocolError(
                .unavailable, "too many connections: \(maxConnections) are open (--max-connections); try again later"),
            id: nil)
        var buffer = context.channel.allocator.buffer(capacity: line.count + 1)
        buffer.writeBytes(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

import NIOCore

/// A line longer than the decoder's limit: the daemon answers `line_too_long` and closes
/// the connection; the client drops a connection that sends one.
public struct LineTooLongError: Error {
    public let limit: Int

    public init(limit: Int) { self.limit = limit }
}

/// Splits the byte stream into lines at `\n`, dropping a trailing `\r`, and refuses a line
/// longer than `maxLineBytes` as soon as that many bytes have arrived without a newline
/// (so a peer cannot make the other side buffer without bound). Each read scans only the
/// bytes that arrived since the last, so a long line costs time linear in its length.
/// The protocol's framing, used by both the daemon and `HookgateClient`.
public struct LineFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let maxLineBytes: Int
    /// How many readable bytes are already known to hold no newline.
    private var scanned = 0

    public init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let newline = view[(view.startIndex + scanned)...].firstIndex(of: UInt8(ascii: "\n")) else {
            scanned = view.count
            if view.count > maxLineBytes { throw LineTooLongError(limit: maxLineBytes) }
            return nil
        }
        var length = newline - view.startIndex
        scanned = 0
        if length > maxLineBytes { throw LineTooLongError(limit: maxLineBytes) }
        let hasCarriageReturn = length > 0 && view[newline - 1] == UInt8(ascii: "\r")
        if hasCarriageReturn { length -= 1 }
        let line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: hasCarriageReturn ? 2 : 1)
        return line
    }

    /// At end of input a last line without its newline is still a request.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let line = try decode(buffer: &buffer) { return line }
        guard buffer.readableBytes > 0 else { return nil }
        scanned = 0
        return buffer.readSlice(length: buffer.readableBytes)
    }
}

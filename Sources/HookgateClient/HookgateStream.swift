import HookgateCore
import NIOCore
import Synchronization

/// The lines of one streaming request (`tail_requests`), read from a connection of their
/// own, as the elements the caller asked for. Leaving the loop, dropping the stream or
/// cancelling the task that reads it closes the connection.
public struct HookgateStream<Element: Sendable>: AsyncSequence, Sendable {
    let lines: AsyncThrowingStream<JSONObject, any Error>
    let flow: StreamFlow
    let transform: @Sendable (JSONObject) throws -> Element

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<JSONObject, any Error>.AsyncIterator
        let flow: StreamFlow
        let transform: @Sendable (JSONObject) throws -> Element

        public mutating func next() async throws -> Element? {
            guard let line = try await base.next() else { return nil }
            flow.itemTaken()
            return try transform(line)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: lines.makeAsyncIterator(), flow: flow, transform: transform)
    }
}

/// One stream's connection and its consumer's pace, shared by the task that opens the
/// connection, the handler on its event loop, and the consumer: lines wait in the stream's
/// buffer, and past `pauseAt` of them the connection stops reading until the consumer
/// has taken them down to `resumeAt`. Ending the stream closes the connection, whether it
/// is open yet or still opening.
final class StreamFlow: Sendable {
    static let pauseAt = 1024
    static let resumeAt = 256

    private enum Phase {
        case opening
        case open(ClientConnection)
        case ended
    }

    private struct State {
        var phase = Phase.opening
        var buffered = 0
        var paused = false
    }

    private let state = Mutex(State())

    /// The connection is open: false when the stream has already ended (close it).
    func opened(_ connection: ClientConnection) -> Bool {
        state.withLock { state in
            guard case .opening = state.phase else { return false }
            state.phase = .open(connection)
            return true
        }
    }

    /// The stream ended (its consumer left, was cancelled, or the daemon ended it).
    func end() {
        let connection: ClientConnection? = state.withLock { state in
            defer { state.phase = .ended }
            if case .open(let connection) = state.phase { return connection }
            return nil
        }
        connection?.close()
    }

    /// A line went into the buffer; true when reading should pause.
    func itemQueued() -> Bool {
        state.withLock { state in
            state.buffered += 1
            guard state.buffered >= Self.pauseAt, !state.paused else { return false }
            state.paused = true
            return true
        }
    }

    /// The consumer took a line; reading resumes once the buffer has drained enough.
    func itemTaken() {
        let resume: ClientConnection? = state.withLock { state in
            state.buffered = max(0, state.buffered - 1)
            guard state.paused, state.buffered <= Self.resumeAt, case .open(let connection) = state.phase else {
                return nil
            }
            state.paused = false
            return connection
        }
        resume?.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
    }
}

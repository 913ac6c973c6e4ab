import ArgumentParser
import Foundation
import HookgateClient
import HookgateCore

#if canImport(Glibc)
    import Glibc
#endif

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json

    /// The one given, else a table for a person at a terminal and JSON for a program.
    static func chosen(_ given: OutputFormat?) -> OutputFormat {
        given ?? (isatty(STDOUT_FILENO) != 0 ? .table : .json)
    }
}

/// The options every client subcommand takes.
struct ClientOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The daemon's socket. Default: HOOKGATE_SOCKET, else where `serve` binds it.", valueName: "path"))
    var socket: String?

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: "table (aligned columns) or json (the protocol's answer). Default: table on a terminal, else json.")
    var output: OutputFormat?

    @Option(help: ArgumentHelp("How long to wait for each answer, e.g. 30s.", valueName: "duration"))
    var timeout: String = "30s"

    func validate() throws {
        guard let micros = Units.durationMicroseconds(timeout), micros > 0 else {
            throw ValidationError("--timeout: '\(timeout)' is not a duration such as 30s")
        }
    }

    var format: OutputFormat { OutputFormat.chosen(output) }

    func client() throws -> HookgateClient {
        let path = try DefaultPaths.socket(flag: socket ?? EnvironmentFlag.getenv("HOOKGATE_SOCKET"))
        let micros = Units.durationMicroseconds(timeout) ?? 30_000_000
        return HookgateClient(socketPath: path, timeout: .microseconds(micros))
    }
}

/// A subcommand that talks to the daemon. Its errors become the exit codes the CLI
/// promises: 1 for the daemon's error answer, 3 when the daemon cannot be reached (or
/// drops the connection, gives no answer in time, or answers outside the protocol).
protocol ClientCommand: AsyncParsableCommand {
    var options: ClientOptions { get }
    func run(client: HookgateClient, output: Output) async throws
}

extension ClientCommand {
    func run() async throws {
        let client = try options.client()
        let output = Output(format: options.format)
        do {
            try await run(client: client, output: output)
        } catch let error as HookgateClientError {
            output.error("\(error)")
            switch error {
            case .server, .streamingCommand: throw ExitCode(1)
            case .cannotConnect, .connectionLost, .timedOut, .badResponse: throw ExitCode(3)
            }
        }
        await client.close()
    }
}

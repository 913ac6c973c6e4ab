import ArgumentParser
import Foundation
import HookgateCore

@main
struct Main {
    static func main() async {
        // Before any thread of the daemon's allocates.
        MallocArenas.limitToCores(environment: ProcessInfo.processInfo.environment)
        do {
            let commandLine = Array(CommandLine.arguments.dropFirst())
            // HOOKGATE_* variables are the daemon's flags; a client subcommand reads only
            // HOOKGATE_SOCKET, itself.
            let arguments =
                HookgateCommand.namesAClientSubcommand(commandLine)
                ? commandLine
                : try EnvironmentFlag.arguments(merging: commandLine, flags: ServeCommand.environmentFlags)
            var command = try HookgateCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            HookgateCommand.exit(withError: error)
        }
    }
}

struct HookgateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hookgate",
        abstract: "A webhook gateway: register webhooks, emit events, hookgate delivers them.",
        discussion: """
            `hookgate serve` (the default) runs the daemon. The other subcommands talk to a
            running daemon over its socket, found as `serve` finds it (--socket, else
            HOOKGATE_SOCKET, else the default path). Output is a table on a terminal and
            the protocol's JSON otherwise (-o table|json). Exit codes: 0 ok, 1 the daemon
            answered an error, 3 cannot connect, 64 usage.
            """,
        version: HookgateVersion.current,
        subcommands: [
            ServeCommand.self, PingCommand.self, WebhooksCommand.self, EmitCommand.self, MatchCommand.self,
            RequestsCommand.self, RedeliverCommand.self, RecoverCommand.self, StatsCommand.self,
            HealthCommand.self, ReceiveCommand.self,
        ],
        defaultSubcommand: ServeCommand.self
    )

    /// True when the first argument names a subcommand other than `serve` (a subcommand
    /// comes first; without one, the arguments are serve's flags), or ArgumentParser's
    /// `help`.
    static func namesAClientSubcommand(_ arguments: [String]) -> Bool {
        guard let first = arguments.first else { return false }
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        return first != ServeCommand._commandName && names.contains(first)
    }
}

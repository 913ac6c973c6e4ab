#if canImport(Glibc)
    import Glibc
#endif

/// Every flag can also be set through `HOOKGATE_<FLAG>` (upper case, `-` as `_`). A flag
/// on the command line wins over its variable; a repeatable flag's variable holds
/// comma-separated values; a boolean flag's variable is `1`/`true`/`yes` or
/// `0`/`false`/`no`.
struct EnvironmentFlag {
    enum Kind { case value, boolean, repeatable }

    let name: String
    let kind: Kind

    var variable: String {
        "HOOKGATE_" + String(name.map { $0 == "-" ? "_" : Character($0.uppercased()) })
    }

    static func arguments(
        merging commandLine: [String], flags: [EnvironmentFlag],
        environment: (String) -> String? = EnvironmentFlag.getenv
    ) throws -> [String] {
        var fromEnvironment: [String] = []
        for flag in flags {
            let option = "--" + flag.name
            let onCommandLine = commandLine.contains { $0 == option || $0.hasPrefix(option + "=") }
            guard !onCommandLine, let value = environment(flag.variable) else { continue }
            switch flag.kind {
            case .value:
                fromEnvironment += [option, value]
            case .boolean:
                switch value.lowercased() {
                case "1", "true", "yes", "on": fromEnvironment.append(option)
                case "0", "false", "no", "off", "": break
                default: throw EnvironmentFlagError(variable: flag.variable, value: value)
                }
            case .repeatable:
                for item in value.split(separator: ",") where !item.isEmpty {
                    fromEnvironment += [option, String(item)]
                }
            }
        }
        // After everything on the command line, so after the `serve` subcommand.
        return commandLine + fromEnvironment
    }

    static func getenv(_ name: String) -> String? {
        guard let value = Glibc.getenv(name) else { return nil }
        return String(cString: value)
    }
}

struct EnvironmentFlagError: Error, CustomStringConvertible {
    let variable: String
    let value: String
    var description: String { "\(variable)=\(value): expected 1, true, yes, 0, false or no" }
}

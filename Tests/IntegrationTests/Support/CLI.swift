import Foundation
import HookgateCore

/// Runs the `hookgate` binary as a person or a script would, and what it printed.
struct CLIRun {
    let status: Int32
    let stdout: String
    let stderr: String

    /// Each stdout line parsed as JSON (the `-o json` output).
    var jsonLines: [JSON] {
        get throws {
            try stdout.split(separator: "\n").map { line in
                do { return try JSONParser.parse(String(line)) } catch {
                    throw TestFailure("not JSON: \(line)")
                }
            }
        }
    }

    /// The one JSON answer printed.
    var json: JSON {
        get throws {
            let lines = try jsonLines
            guard lines.count == 1 else { throw TestFailure("expected one JSON line, got \(stdout)") }
            return lines[0]
        }
    }
}

enum CLI {
    /// Runs to the end; output goes through files, so neither stream can fill and block.
    static func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> CLIRun {
        let directory = try TemporaryDirectory()
        let outPath = directory.file("out")
        let errPath = directory.file("err")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HookgateBinary.path)
        process.arguments = arguments
        process.environment = ChildProcess.cleanEnvironment.merging(environment) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        return CLIRun(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}

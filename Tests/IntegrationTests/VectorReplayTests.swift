import Foundation
import HookgateCore
import Testing

/// Replays proto-spec/vectors/*.jsonl against the real daemon (format: the README there).
@Suite struct VectorReplayTests {
    static let vectorsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("proto-spec/vectors")

    static var vectorFiles: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: vectorsDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".jsonl") }.sorted()
    }

    @Test func vectorFilesExist() {
        #expect(!Self.vectorFiles.isEmpty, "no vectors in \(Self.vectorsDirectory.path)")
    }

    @Test(arguments: vectorFiles)
    func replay(file: String) throws {
        let text = try String(contentsOf: Self.vectorsDirectory.appendingPathComponent(file), encoding: .utf8)
        // The vectors' receivers (example.com) cannot be reached from a test machine: short
        // timeouts end each attempt within 2 s, so an attempt in flight when its webhook is
        // deleted ends (and is cancelled) well inside an "eventually" vector's 10 s, whatever
        // the machine's resolver does with the name.
        let daemon = try Daemon(arguments: ["--connect-timeout", "1s", "--request-timeout", "2s"])
        let client = try daemon.client()
        var captures: [String: JSON] = [:]
        var count = 0
        for (number, line) in text.split(separator: "\n").enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let location = "\(file):\(number + 1)"
            let vector = try #require(try? JSONParser.parse(String(line)), "\(location) is not JSON")
            let name = vector["name"]?.stringValue ?? location
            let expected = try #require(vector["response"], "\(location): no response")
            // "eventually": the answer reflects work done in the background (a deleted
            // webhook's cancellations); the request is repeated until it matches.
            let deadline = Date().addingTimeInterval(vector["eventually"] == true ? 10 : 0)
            var actual: JSON = .null
            var problems: [String] = ["no request"]
            let capturedBefore = captures
            repeat {
                captures = capturedBefore
                if let request = vector["request"] {
                    try client.send(VectorMatcher.substitute(request, captures))
                } else if let raw = vector["request_raw"]?.stringValue {
                    try client.send(bytes: Array(raw.utf8) + [0x0A])
                } else if let hex = vector["request_hex"]?.stringValue {
                    try client.send(bytes: try #require(VectorMatcher.bytes(hex: hex), "\(location): bad hex") + [0x0A])
                } else {
                    Issue.record("\(location): no request")
                    break
                }
                actual = try client.readResponse()
                problems = []
                VectorMatcher.match(expected, actual, path: "$", captures: &captures, problems: &problems)
                if problems.isEmpty || Date() >= deadline { break }
                usleep(50_000)
            } while true
            #expect(problems.isEmpty, "\(location) \(name): \(problems.joined(separator: "; "))\n  actual: \(actual)")
            count += 1
        }
        #expect(count > 0)
        #expect(try daemon.stop() == 0)
    }
}

/// The placeholder rules of proto-spec/vectors/README.md.
enum VectorMatcher {
    static func substitute(_ value: JSON, _ captures: [String: JSON]) -> JSON {
        switch value {
        case .string(let text):
            if text.hasPrefix("${"), text.hasSuffix("}"), let whole = captures[String(text.dropFirst(2).dropLast())] {
                return whole
            }
            var result = text
            for (name, captured) in captures {
                if let string = captured.stringValue {
                    result = result.replacingOccurrences(of: "${\(name)}", with: string)
                }
            }
            return .string(result)
        case .array(let items): return .array(items.map { substitute($0, captures) })
        case .object(let object):
            return .object(JSONObject(object.entries.map { ($0.key, substitute($0.value, captures)) }))
        default: return value
        }
    }

    static func match(
        _ expected: JSON, _ actual: JSON, path: String, captures: inout [String: JSON], problems: inout [String]
    ) {
        if case .string(let pattern) = expected, let kind = placeholder(pattern) {
            if let problem = check(kind, actual, captures: &captures) { problems.append("\(path): \(problem)") }
            return
        }
        switch (expected, actual) {
        case (.object(let e), .object(let a)):
            let missing = Set(e.keys).subtracting(a.keys)
            let extra = Set(a.keys).subtracting(e.keys)
            if !missing.isEmpty { problems.append("\(path): missing keys \(missing.sorted())") }
            if !extra.isEmpty { problems.append("\(path): unexpected keys \(extra.sorted())") }
            for (key, value) in e {
                if let other = a[key] {
                    match(value, other, path: "\(path).\(key)", captures: &captures, problems: &problems)
                }
            }
        case (.array(let e), .array(let a)):
            if e.count != a.count { problems.append("\(path): \(a.count) items, expected \(e.count)") }
            for (i, pair) in zip(e, a).enumerated() {
                match(pair.0, pair.1, path: "\(path)[\(i)]", captures: &captures, problems: &problems)
            }
        default:
            if expected != actual {
                problems.append("\(path): expected \(JSONWriter.string(expected)), got \(JSONWriter.string(actual))")
            }
        }
    }

    enum Placeholder {
        case uuid, timestamp, secret, string, integer, any
        case capture(String)
        case reference(String)
    }

    static func placeholder(_ text: String) -> Placeholder? {
        switch text {
        case "<uuid>": return .uuid
        case "<timestamp>": return .timestamp
        case "<secret>": return .secret
        case "<string>": return .string
        case "<integer>": return .integer
        case "<any>": return .any
        default:
            if text.hasPrefix("<capture:"), text.hasSuffix(">") {
                return .capture(String(text.dropFirst(9).dropLast()))
            }
            if text.hasPrefix("${"), text.hasSuffix("}") { return .reference(String(text.dropFirst(2).dropLast())) }
            return nil
        }
    }

    static func check(_ kind: Placeholder, _ actual: JSON, captures: inout [String: JSON]) -> String? {
        switch kind {
        case .any: return nil
        case .string: return actual.stringValue == nil ? "expected a string, got \(actual)" : nil
        case .integer:
            if case .number(let n) = actual, n.int64Value != nil { return nil }
            return "expected an integer, got \(actual)"
        case .uuid:
            guard let text = actual.stringValue, Identifiers.canonicalUUID(text) == text else {
                return "expected a lower-case UUID, got \(actual)"
            }
            return nil
        case .timestamp:
            guard let text = actual.stringValue, let stamp = Timestamp(rfc3339: text), stamp.rfc3339 == text else {
                return "expected an RFC 3339 UTC timestamp with microseconds, got \(actual)"
            }
            return nil
        case .secret:
            guard let text = actual.stringValue, text.hasPrefix("whsec_"),
                Base64.decode(String(text.dropFirst(6)))?.count == 24
            else {
                return "expected a whsec_ secret, got \(actual)"
            }
            return nil
        case .capture(let name):
            captures[name] = actual
            return nil
        case .reference(let name):
            guard let captured = captures[name] else { return "nothing captured as \(name)" }
            return captured == actual ? nil : "expected \(name) = \(captured), got \(actual)"
        }
    }

    static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }
}

import HookgateCore
import Synchronization

/// One check of the readiness verdict.
public struct HealthCheckResult: Sendable, Equatable {
    public var name: String
    public var ok: Bool
    public var detail: String

    public init(name: String, ok: Bool, detail: String) {
        self.name = name
        self.ok = ok
        self.detail = detail
    }
}

/// The verdict `health` and `/readyz` give: `ok` when every check passes, else
/// `degraded`.
public struct HealthReport: Sendable, Equatable {
    public var checks: [HealthCheckResult]

    public init(checks: [HealthCheckResult]) { self.checks = checks }

    public var isOK: Bool { checks.allSatisfy(\.ok) }
    public var status: String { isOK ? "ok" : "degraded" }

    /// The `health` answer's fields.
    var fields: JSONObject {
        JSONObject([
            ("status", .string(status)),
            (
                "checks",
                .array(
                    checks.map {
                        .object(
                            JSONObject([
                                ("name", .string($0.name)), ("ok", .bool($0.ok)), ("detail", .string($0.detail)),
                            ]))
                    })
            ),
        ])
    }

    /// `/readyz`'s body: `ok`, or one line per failing check.
    public var readyzBody: String {
        isOK ? "ok\n" : checks.filter { !$0.ok }.map { "\($0.name): \($0.detail)\n" }.joined()
    }
}

/// A named check; `check` answers whether it passes and why.
public struct HealthProbe: Sendable {
    public var name: String
    public var check: @Sendable () async -> (ok: Bool, detail: String)

    public init(name: String, check: @escaping @Sendable () async -> (ok: Bool, detail: String)) {
        self.name = name
        self.check = check
    }
}

/// Runs the readiness checks side by side; a check that does not answer within
/// `timeout` fails (a wedged writer must not wedge `/readyz` too).
public final class HealthMonitor: Sendable {
    private let probes: [HealthProbe]
    private let timeout: Duration

    public init(probes: [HealthProbe], timeout: Duration = .seconds(5)) {
        self.probes = probes
        self.timeout = timeout
    }

    public func report() async -> HealthReport {
        var results: [HealthCheckResult?] = Array(repeating: nil, count: probes.count)
        await withTaskGroup(of: (Int, HealthCheckResult).self) { group in
            for (index, probe) in probes.enumerated() {
                let timeout = self.timeout
                group.addTask {
                    guard let answer = await Self.answer(within: timeout, probe.check) else {
                        let detail = "no answer within \(timeout.components.seconds) s"
                        return (index, HealthCheckResult(name: probe.name, ok: false, detail: detail))
                    }
                    return (index, HealthCheckResult(name: probe.name, ok: answer.ok, detail: answer.detail))
                }
            }
            for await (index, result) in group { results[index] = result }
        }
        return HealthReport(checks: results.compactMap { $0 })
    }

    /// `body`'s answer, or nil after `timeout`. The body runs in a task of its own: one
    /// that never returns is left behind rather than waited for.
    private static func answer<T: Sendable>(
        within timeout: Duration, _ body: @escaping @Sendable () async -> T
    ) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let once = ResumeOnce(continuation)
            Task {
                let value = await body()
                once.resume(value)
            }
            Task {
                try? await Task.sleep(for: timeout)
                once.resume(nil)
            }
        }
    }
}

/// Resumes a continuation with the first value offered; later ones are dropped.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T?, Never>?>

    init(_ continuation: CheckedContinuation<T?, Never>) { self.continuation = Mutex(continuation) }

    func resume(_ value: T?) {
        let taken = continuation.withLock { held -> CheckedContinuation<T?, Never>? in
            defer { held = nil }
            return held
        }
        taken?.resume(returning: value)
    }
}

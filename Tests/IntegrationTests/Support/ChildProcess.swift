import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with posix_spawn and reaped with waitpid, with its output
/// going to a file. (Foundation's Process was seen to wait forever in `waitUntilExit`
/// for a child it had been told to kill; here every wait has a deadline.)
final class ChildProcess {
    let pid: pid_t
    private var exitStatus: Int32?

    init(executable: String, arguments: [String], environment: [String: String], outputPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The child starts with no signal blocked, as under a shell or systemd: the
        // spawning thread (one of the test runner's) may block SIGTERM, and a child
        // inheriting that mask would ignore `signal(SIGTERM)` until it is SIGKILLed.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw TestFailure("posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// The environment of this test process without any HOOKGATE_* variable.
    static var cleanEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HOOKGATE_") }
    }

    var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            // Exit code, or 128 + signal number as a shell reports it.
            exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            return false
        }
        return result == 0
    }

    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits up to `timeout` seconds; SIGKILLs and throws when the child is still running.
    @discardableResult
    func waitForExit(timeout: Double) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() > deadline {
                kill(pid, SIGKILL)
                while isRunning { usleep(10_000) }
                throw TestFailure("process \(pid) did not exit within \(timeout) s")
            }
            usleep(10_000)
        }
        return exitStatus ?? -1
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = try? waitForExit(timeout: 10)
        }
    }
}

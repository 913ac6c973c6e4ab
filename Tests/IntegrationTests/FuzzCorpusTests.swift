import Foundation
import Testing

/// The fuzzing seed corpus (contrib/fuzz/corpus), replayed through the fuzz target by an
/// ordinary build: every input is answered, well formed, and nothing crashes. (CI also
/// fuzzes for a minute with contrib/fuzz/run.sh.)
@Suite struct FuzzCorpusTests {
    @Test func theSeedCorpusReplaysCleanly() throws {
        let binary = URL(fileURLWithPath: HookgateBinary.path).deletingLastPathComponent()
            .appendingPathComponent("hookgate-fuzz").path
        let corpus = Repository.root + "/contrib/fuzz/corpus"
        let inputs = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted().map { corpus + "/" + $0 }
        #expect(inputs.count > 100)
        let directory = try TemporaryDirectory()
        let output = directory.file("replay.out")
        let replay = try ChildProcess(
            executable: binary, arguments: inputs, environment: ChildProcess.cleanEnvironment, outputPath: output)
        let status = try replay.waitForExit(timeout: 120)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("replayed \(inputs.count) inputs"), "\(log)")
    }
}

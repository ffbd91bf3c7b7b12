import ArgumentParser
import Engine

/// Benchmarks of the engine and pipeline, reported against the machine's measured peak.
@main
struct SDBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdbench",
        abstract: "sdshell benchmarks (build with -c release).",
        subcommands: [OpsBenchmark.self, UNetBenchmark.self, VAEBenchmark.self, LoadBenchmark.self, PipelineBenchmark.self, TrainBenchmark.self]
    )

    /// The benchmarks measure what sdshell runs: libgomp's waiting threads passive (see
    /// `OpenMPWaitPolicy`; `OMP_WAIT_POLICY=ACTIVE` measures libgomp's default).
    static func main() {
        OpenMPWaitPolicy.passiveUnlessSet()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

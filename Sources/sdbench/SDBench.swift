import ArgumentParser

/// Benchmarks of the engine and pipeline, reported against the machine's measured peak.
@main
struct SDBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdbench",
        abstract: "sdshell benchmarks (build with -c release).",
        subcommands: [OpsBenchmark.self, UNetBenchmark.self, VAEBenchmark.self, LoadBenchmark.self, PipelineBenchmark.self, TrainBenchmark.self]
    )
}

import ArgumentParser
import Engine
import Formats
import Foundation
import Models

/// `sdbench load`: time and memory to load a full-size model (`--arch`) stored as f16
/// safetensors (a diffusers folder with random values, made on first use).
struct LoadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Load time and peak memory of a full-size f16 model.")

    @OptionGroup var model: BenchModelOptions

    @Flag(help: "Only write the model folder.")
    var make = false

    func run() throws {
        let dir = model.folder
        if make { try model.prepare(); return }
        if !FileManager.default.fileExists(atPath: dir + "/unet/diffusion_pytorch_model.safetensors") {
            // A separate process writes it, so that this one's peak memory is the load alone.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            p.arguments = ["load", "--make", "--dir", dir, "--arch", model.arch]
            try p.run()
            p.waitUntilExit()
        }
        let baseline = Memory.residentBytes()
        var start = DispatchTime.now().uptimeNanoseconds
        let file = try ModelFile.open(dir)
        let weights = try ModelWeights(file)
        let config = try ArchitectureDetector.detect(weights)
        let (missing, wrong) = ExpectedWeights.check(weights, config)
        let openTime = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        start = DispatchTime.now().uptimeNanoseconds
        var loaded: [String: Tensor] = [:]
        var bytes = 0
        for (name, t) in weights.tensors {
            let m = try t.materialize()
            bytes += m.count * m.dtype.size
            loaded[name] = m
        }
        let loadTime = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let peak = Memory.peakResidentBytes()
        print("model: \(dir) (\(weights.layout.rawValue), \(config.family)); \(weights.tensors.count) tensors, missing \(missing.count), wrong shape \(wrong.count)")
        print(String(format: "open + detect: %.3f s; materialise: %.2f s (%.2f GB/s)", openTime, loadTime, Double(bytes) / loadTime / 1e9))
        print(String(format: "tensors materialised: %.3f GB; peak resident growth: %.3f GB; ratio %.3f (limit 1.2)",
                     Double(bytes) / 1e9, Double(peak - baseline) / 1e9, Double(peak - baseline) / Double(bytes)))
        withExtendedLifetime(loaded) {}
    }
}

/// Resident memory of this process, from /proc/self/status.
enum Memory {
    private static func field(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }
    static func residentBytes() -> Int { field("VmRSS") }
    /// The peak resident size (getrusage's ru_maxrss, in KiB on Linux).
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}

import ArgumentParser
import Engine
import Formats
import Foundation
import Models

/// `sdbench load`: time and memory to load a full-size SD 1.5 model stored as f16 safetensors
/// (a diffusers folder with random values, made on first use).
struct LoadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Load time and peak memory of a full-size SD 1.5 f16 model.")

    @Option(help: "Folder of the generated model (made when missing).")
    var dir = NSTemporaryDirectory() + "sdshell-sd15-f16"

    @Flag(help: "Only write the model folder.")
    var make = false

    func run() throws {
        if make { try Self.makeModel(dir); return }
        if !FileManager.default.fileExists(atPath: dir + "/unet/diffusion_pytorch_model.safetensors") {
            // A separate process writes it, so that this one's peak memory is the load alone.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            p.arguments = ["load", "--make", "--dir", dir]
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

    /// Writes SD 1.5's UNet, VAE and text encoder as f16 safetensors with random values.
    static func makeModel(_ dir: String) throws {
        let config = ModelConfig(unet: UNetConfig(), vae: VAEConfig(), textEncoder: TextEncoderConfig())
        let parts: [(String, String, [String: [Int]], String)] = [
            ("unet", "diffusion_pytorch_model.safetensors", ExpectedWeights.unet(config.unet!), #"{"_class_name": "UNet2DConditionModel", "attention_head_dim": 8, "norm_num_groups": 32}"#),
            ("vae", "diffusion_pytorch_model.safetensors", ExpectedWeights.vae(config.vae!), #"{"_class_name": "AutoencoderKL", "norm_num_groups": 32}"#),
            ("text_encoder", "model.safetensors", ExpectedWeights.textEncoder(config.textEncoder!), #"{"architectures": ["CLIPTextModel"], "num_attention_heads": 12}"#),
        ]
        // 8 MiB of random half-precision values in [-0.05, 0.05), written at varying offsets.
        var state: UInt64 = 0x2545F4914F6CDD1D
        let pool = try Tensor(shape: [1 << 22], data: (0..<(1 << 22)).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 24) * 0.1 - 0.05
        }).to(.f16)
        let poolBytes = UnsafeRawBufferPointer(start: pool.storage.raw, count: pool.count * 2)
        for (component, fileName, shapes, json) in parts {
            try FileManager.default.createDirectory(atPath: dir + "/" + component, withIntermediateDirectories: true)
            try json.write(toFile: dir + "/\(component)/config.json", atomically: true, encoding: .utf8)
            let names = shapes.keys.sorted()
            try SafeTensorsFile.write(entries: names.map { ($0, StoredDType.F16, shapes[$0]!) }, to: dir + "/\(component)/\(fileName)") { i, w in
                var remaining = shapes[names[i]]!.reduce(1, *) * 2
                var offset = (i * 4099 * 2) % poolBytes.count
                while remaining > 0 {
                    let n = min(remaining, poolBytes.count - offset)
                    try w.write(UnsafeRawBufferPointer(rebasing: poolBytes[offset..<(offset + n)]))
                    remaining -= n
                    offset = 0
                }
            }
        }
        print("wrote \(dir)")
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

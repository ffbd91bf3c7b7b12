import ArgumentParser
import Formats
import Foundation
import Models

/// The model the pipeline, UNet and training benchmarks run: a full-size folder of one family's
/// base architecture (`--arch`: SD 1.5, SD 2.1 768-v, SDXL base) with random f16 weights, made by
/// `RandomModelFolder` when missing, loaded at a weight precision.
struct BenchModelOptions: ParsableArguments {
    @Option(help: "Architecture: sd15, sd2 (SD 2.1 768-v) or sdxl (SDXL base).") var arch = "sd15"
    @Option(help: "Model folder (made when missing; default: sdshell-ARCH-f16 in the temporary directory).") var dir: String?
    @Option(help: "Weights: full (f32), half (16-bit linear and convolution weights, as train precision=half), bf16 (bf16 weights and products where the CPU has bf16 dot products) or auto (the shell's default: half for this 16-bit folder).") var precision = "full"

    func validate() throws {
        guard precision == "auto" || WeightPrecision(rawValue: precision) != nil else { throw ValidationError("precision must be \(WeightPrecision.choicesInWords)") }
        guard Self.architectures[arch] != nil else { throw ValidationError("arch must be one of \(Self.architectures.keys.sorted().joined(separator: ", "))") }
    }

    static let architectures: [String: ModelFamily] = ["sd15": .sd1, "sd2": .sd2, "sdxl": .sdxl]

    /// The full-size configuration of the architecture (SD 2.1 is the 768-v model).
    var config: ModelConfig {
        var c = ModelConfig.reference(Self.architectures[arch] ?? .sd1)
        if c.family == .sd2 { c.prediction = .v }
        return c
    }

    var folder: String { dir ?? NSTemporaryDirectory() + "sdshell-\(arch)-f16" }

    /// The native image size of the architecture.
    var nativeSize: Int { config.nativeSize }

    /// Makes the folder if needed (before any timing or memory baseline is taken); a --dir that is
    /// a checkpoint file (a trained model, e.g. the demo model) is used as it is.
    func prepare() throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), !isFolder.boolValue { return }
        if !FileManager.default.fileExists(atPath: folder + "/unet/diffusion_pytorch_model.safetensors") {
            try RandomModelFolder.write(config, to: folder)
        }
    }

    func load() throws -> StableDiffusionModel {
        try StableDiffusionModel(path: folder, precision: WeightPrecision(rawValue: precision))
    }

    /// The UNet alone (what `scripts/bench_reference_unet.py` builds for its UNet step, so that
    /// the peak memory compares like with like), at the precision asked (auto: the checkpoint's).
    func loadUNet() throws -> UNet {
        let weights = try ModelWeights(try ModelFile.open(folder))
        let precision = WeightPrecision(rawValue: precision) ?? WeightPrecision.automatic(for: weights)
        guard let config = try ArchitectureDetector.detect(weights).unet else {
            throw ValidationError("\(folder) has no UNet")
        }
        precision.configureAllocator()
        return try UNet(weights, config: config, precision: precision)
    }
}

import ArgumentParser
import Foundation
import Models

/// The model the pipeline, UNet and training benchmarks run: the full-size SD 1.5-shaped folder
/// with random weights that `sdbench load` makes (made here when missing), at a weight precision.
struct SD15ModelOptions: ParsableArguments {
    @Option(help: "Model folder (made when missing).") var dir = NSTemporaryDirectory() + "sdshell-sd15-f16"
    @Option(help: "Weights: full (f32) or half (16-bit linear and convolution weights, as train precision=half).") var precision = "full"

    func validate() throws {
        guard WeightPrecision(rawValue: precision) != nil else { throw ValidationError("precision must be full or half") }
    }

    /// Makes the folder if needed (before any timing or memory baseline is taken).
    func prepare() throws {
        if !FileManager.default.fileExists(atPath: dir + "/unet/diffusion_pytorch_model.safetensors") { try LoadBenchmark.makeModel(dir) }
    }

    func load() throws -> StableDiffusionModel {
        try StableDiffusionModel(path: dir, precision: WeightPrecision(rawValue: precision)!)
    }
}

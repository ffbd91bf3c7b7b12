import ArgumentParser
import Engine
import Formats
import Foundation
import Models

/// `sdbench unet`: seconds per CFG step (one UNet pass at batch 2) of a full-size UNet (`--arch`:
/// SD 1.5, SD 2.1, SDXL) with random weights, its effective rate against the machine's measured
/// FMA peak (the direct algorithms' FLOPs, counted by `FLOPCounter`, over the time), and peak
/// memory. The same step in PyTorch: `scripts/bench_reference_unet.py --arch ARCH`.
struct UNetBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unet", abstract: "UNet step time and effective rate (SD 1.5, SD 2.1, SDXL).")

    @Option(help: "Image size in pixels (the latent is size/8; default 256 for sd15, else the native size).") var size: Int?
    @OptionGroup var weights: BenchModelOptions
    @OptionGroup var passes: TimedPassOptions
    @Option(help: "Write the pass's inputs and output (x, context, output; timestep 500) to this safetensors file, for scripts/check_unet_against_diffusers.py.")
    var saveTensors: String?
    @Option(help: "Also time the step with a random kohya LoRA of this rank on every attention, feed-forward and projection layer merged in (0: no).")
    var loraRank = 0

    func run() throws {
        // The UNet alone, as PyTorch's side builds it; the whole model only to merge a LoRA.
        let timer = try passes.timer(for: weights)
        let model = loraRank > 0 ? try weights.load() : nil
        let unet = try model?.unet ?? weights.loadUNet()
        var random = RandomFill()
        let size = self.size ?? (weights.arch == "sd15" ? 256 : weights.nativeSize)
        let l = size / 8
        let u = unet.config
        let x = try random.tensor([2, 4, l, l]), context = try random.tensor([2, 77, u.crossAttentionDim])
        let vector = try u.additionInputDim.map { try random.tensor([2, $0]) }
        var output: Tensor?
        let label = "\(weights.arch) \(size)x\(size), batch 2 (one CFG step), \(weights.precision) precision"
        try timer.run(label: label, unit: "step") {
            output = try unet(x, timesteps: [500, 500], context: context, vector: vector)
        }
        if let model {
            let path = NSTemporaryDirectory() + "sdbench-lora-r\(loraRank)-\(weights.arch).safetensors"
            let layers = try RandomLoRA.write(unet: u, family: model.family, rank: loraRank, to: path)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let network = try LoRANetwork(try ModelFile.open(path))
            let merged = try model.merging([AppliedNetwork(network: network, textEncoderMultiplier: 1, unetMultiplier: 0.8, shortHash: "")]).model
            print(String(format: "LoRA rank %d on %d layers merged in %.2f s", loraRank, layers, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
            try timer.run(label: label + ", LoRA rank \(loraRank) merged", unit: "step") {
                output = try merged.unet(x, timesteps: [500, 500], context: context, vector: vector)
            }
        }
        if let saveTensors, let output {
            try SafeTensorsFile.write(["x": x, "context": context, "output": output], metadata: ["timestep": "500"], to: saveTensors)
            print("wrote \(saveTensors)")
        }
    }
}

/// `sdbench vae`: the VAE decode of one latent (or the text encoder with `--text-encoder`) of the
/// full-size SD 1.5 model, reported as `sdbench unet` reports a step. PyTorch side by side:
/// `scripts/bench_reference_unet.py SIZE PASSES THREADS --vae` (or `--text`).
struct VAEBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vae", abstract: "SD 1.5 VAE decode (or text encoder) time and effective rate.")

    @Option(help: "Image size in pixels.") var size = 512
    @Flag(help: "Time the text encoder (77 tokens, batch 2 as one CFG step encodes) instead of the VAE decode.") var textEncoder = false
    @Flag(help: "Decode in tiles of 512x512 (64 latent pixels, a quarter overlapping), as vae_tiling does.") var tiled = false
    @OptionGroup var weights: BenchModelOptions
    @OptionGroup var passes: TimedPassOptions

    func run() throws {
        let (timer, model) = try passes.timer(loading: weights)
        var random = RandomFill()
        if textEncoder {
            // Start, 18 word ids, end padding: a prompt and an empty negative prompt's shape.
            let prompt = [49406] + (0..<18).map { 320 + 7 * $0 } + Array(repeating: 49407, count: 58)
            let empty = [49406] + Array(repeating: 49407, count: 76)
            try timer.run(label: "text encoder, batch 2 x 77 tokens", unit: "pass") {
                _ = try model.textEncoder(ids: [prompt, empty])
            }
            return
        }
        let z = try random.tensor([1, 4, size / 8, size / 8])
        try timer.run(label: "VAE decode \(size)x\(size)\(tiled ? " in tiles" : ""), batch 1, \(weights.precision) precision", unit: "decode") {
            _ = try tiled ? model.vae.decodeTiled(z, latentTile: 64) : model.vae.decode(z)
        }
    }
}

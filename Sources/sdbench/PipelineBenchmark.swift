import ArgumentParser
import Diffusion
import Engine
import Foundation
import Models
import Prompting

/// `sdbench pipeline`: seconds per sampling step (one CFG step = a UNet batch of 2), text
/// encoding and VAE decode time, and peak memory, on a full-size SD 1.5-shaped model with random
/// weights (the folder `sdbench load` makes).
struct PipelineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pipeline", abstract: "txt2img timing on a full-size SD 1.5-shaped model.")

    @Option(help: "Image sizes.") var sizes: [Int] = [256, 512]
    @Option(help: "Sampling steps per size.") var steps = 3
    @OptionGroup var model: BenchModelOptions
    @Option(help: "Backend: cpu, opencl or opencl:N (the samplers read each step's result, so steps are timed whole).") var backend = "cpu"
    @Option(help: "Images per size (prompt and seed i of a fixed set).") var images = 1
    @Option(help: "Also make every image at this precision (e.g. full) and report how many 8-bit values are within 2 levels of it.")
    var against: String?

    static let prompts = ["a photograph of an astronaut riding a horse", "a watercolour of a lighthouse at dusk",
                          "portrait of an old fisherman, detailed, film grain"]

    func settings(size: Int, image: Int) -> GenerationSettings {
        var s = GenerationSettings()
        s.prompt = Self.prompts[image % Self.prompts.count]
        s.steps = steps; s.sampler = .euler; s.schedule = .uniform; s.seed = Int64(1 + image); s.width = size; s.height = size
        return s
    }

    func run() throws {
        Engine.use(try Engine.backend(named: backend))
        try model.prepare()
        let baseline = Memory.residentBytes()
        var pipeline: TextToImage? = TextToImage(model: try model.load(), tokenizer: try CLIPTokenizer.shipped())
        print(String(format: "model loaded (\(model.precision) precision weights): resident %.2f GB", Double(Memory.residentBytes() - baseline) / 1e9))
        var made: [[UInt8]] = []
        for size in sizes {
            for image in 0..<images { made.append(try timedGeneration(pipeline!, settings(size: size, image: image))) }
        }
        guard let against else { return }
        guard let precision = WeightPrecision(rawValue: against) else { throw ValidationError("--against must be full, half or bf16") }
        pipeline = nil
        let other = TextToImage(model: try StableDiffusionModel(path: model.folder, precision: precision), tokenizer: try CLIPTokenizer.shipped())
        var within = 0, total = 0, largest = 0, index = 0
        for size in sizes {
            for image in 0..<images {
                let s = settings(size: size, image: image)
                let latents = try withNoGrad { try other.latents(s) }
                let reference = try other.decode(latents, shape: [4, size / other.model.vaeScale, size / other.model.vaeScale])
                let diffs = zip(made[index], reference).map { abs(Int($0) - Int($1)) }
                let close = diffs.filter { $0 <= 2 }.count
                // The reference's spread, so that a flat image (which any precision matches) shows as one.
                let mean = reference.reduce(0.0) { $0 + Double($1) } / Double(max(reference.count, 1))
                let spread = (reference.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(max(reference.count, 1))).squareRoot()
                print(String(format: "%dx%d image %d (seed %d): %.2f%% of values within 2 levels of %@ precision's, largest difference %d (its values: mean %.1f, standard deviation %.1f levels)",
                             size, size, image, s.seed, 100 * Double(close) / Double(max(diffs.count, 1)), against, diffs.max() ?? 0, mean, spread))
                within += close; total += diffs.count; largest = max(largest, diffs.max() ?? 0); index += 1
            }
        }
        print(String(format: "all images: %.2f%% of values within 2 levels of %@ precision's, largest difference %d",
                     100 * Double(within) / Double(max(total, 1)), against, largest))
    }

    /// Generates one image, printing its timing; its 8-bit RGB values.
    func timedGeneration(_ pipeline: TextToImage, _ s: GenerationSettings) throws -> [UInt8] {
        let size = s.width
        do {
            var t0 = DispatchTime.now().uptimeNanoseconds
            _ = try withNoGrad { try pipeline.conditioner.encode(pipeline.conditioner.chunks(s.prompt)) }
            try (Engine.backend as? OpenCLBackend)?.synchronize()
            let textTime = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            var stepTimes: [Double] = []
            var last = DispatchTime.now().uptimeNanoseconds
            t0 = last
            let latents = try withNoGrad {
                try pipeline.latents(s) { _, _ in
                    let now = DispatchTime.now().uptimeNanoseconds
                    stepTimes.append(Double(now - last) / 1e9)
                    last = now
                }
            }
            t0 = DispatchTime.now().uptimeNanoseconds
            let pixels = try pipeline.decode(latents, shape: [4, size / pipeline.model.vaeScale, size / pipeline.model.vaeScale])
            let decodeTime = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            // The first step includes both prompts' encoding; report the later steps.
            let later = stepTimes.dropFirst()
            let perStep = later.isEmpty ? stepTimes[0] : later.reduce(0, +) / Double(later.count)
            print(String(format: "%dx%d: %.2f s/step (CFG batch 2; steps %@), text encoder %.3f s, VAE decode %.2f s, peak resident %.2f GB",
                         size, size, perStep, stepTimes.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString,
                         textTime, decodeTime, Double(Memory.peakResidentBytes()) / 1e9))
            return pixels
        }
    }
}

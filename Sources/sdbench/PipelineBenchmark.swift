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

    func run() throws {
        Engine.use(try Engine.backend(named: backend))
        try model.prepare()
        let baseline = Memory.residentBytes()
        let pipeline = TextToImage(model: try model.load(), tokenizer: try CLIPTokenizer.shipped())
        print(String(format: "model loaded (\(model.precision) precision weights): resident %.2f GB", Double(Memory.residentBytes() - baseline) / 1e9))
        for size in sizes {
            var s = GenerationSettings()
            s.prompt = "a photograph of an astronaut riding a horse"
            s.steps = steps; s.sampler = .euler; s.schedule = .uniform; s.seed = 1; s.width = size; s.height = size
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
            _ = try pipeline.decode(latents, shape: [4, size / 8, size / 8])
            let decodeTime = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            // The first step includes both prompts' encoding; report the later steps.
            let later = stepTimes.dropFirst()
            let perStep = later.isEmpty ? stepTimes[0] : later.reduce(0, +) / Double(later.count)
            print(String(format: "%dx%d: %.2f s/step (CFG batch 2; steps %@), text encoder %.3f s, VAE decode %.2f s, peak resident %.2f GB",
                         size, size, perStep, stepTimes.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString,
                         textTime, decodeTime, Double(Memory.peakResidentBytes()) / 1e9))
        }
    }
}

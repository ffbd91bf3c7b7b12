import Engine
import TestSupport
import Testing
@testable import Diffusion
@testable import Models
@testable import Prompting

/// The tiny models' txt2img (SD 1.x; SD 2.x v-prediction; SDXL) on the OpenCL backend (PoCL in CI)
/// against the CPU backend: the same model code chosen at runtime, the 8-bit images equal in
/// >= 99% of bytes, none off by more than 2.
/// The OpenCL device of these tests, opened once.
private enum OpenCLTestBackend {
    static let backend: OpenCLBackend? = try? OpenCLBackend()
}

@Suite(.serialized, .enabled(if: OpenCLTestBackend.backend != nil, "no OpenCL device (install pocl-opencl-icd)"))
struct OpenCLPipelineTests {
    @Test("generation on OpenCL matches the CPU image (16-bit weights, SD 2.x v and SDXL too)",
          arguments: [("tiny-sd", Sampler.eulerAncestral, WeightPrecision.full), ("tiny-sd", .dpmpp2M, .full), ("tiny-sd", .eulerAncestral, .half),
                      ("tiny-sd2-v.safetensors", .eulerAncestral, .full), ("tiny-sdxl", .dpmpp2M, .full), ("tiny-sdxl", .eulerAncestral, .half)])
    func sameImage(_ modelName: String, _ sampler: Sampler, _ precision: WeightPrecision) throws {
        var s = GenerationSettings()
        s.prompt = "a red circle on a blue background"
        s.negativePrompt = "green"
        s.seed = 1234
        s.steps = 10
        s.sampler = sampler
        s.width = 32
        s.height = 32
        s.batchSize = 2
        // One model per backend, loaded on it (weights convert to f32 there) and resident between steps.
        func generate(_ backend: any Backend) throws -> [UInt8] {
            try Engine.withBackend(backend) {
                let model = try StableDiffusionModel(path: TestFixtures.fixturePath(modelName), precision: precision)
                let pipeline = TextToImage(model: model, tokenizer: try CLIPTokenizer.shipped())
                return try withNoGrad { try pipeline.generate(s).flatMap(\.rgb) }
            }
        }
        let clock = ContinuousClock()
        var cpu: [UInt8] = [], gpu: [UInt8] = []
        let cpuTime = try clock.measure { cpu = try generate(CPUBackend()) }
        let gpuTime = try clock.measure { gpu = try generate(OpenCLTestBackend.backend!) }
        print("\(modelName), \(sampler), \(precision): cpu \(cpuTime), opencl (\(OpenCLTestBackend.backend!.device.name)) \(gpuTime)")
        #expect(cpu.count == gpu.count && !cpu.isEmpty)
        let diffs = zip(cpu, gpu).map { abs(Int($0) - Int($1)) }
        let equal = diffs.filter { $0 == 0 }.count
        print("\(modelName), \(sampler), \(precision): \(equal) of \(diffs.count) bytes equal, largest difference \(diffs.max()!)")
        #expect(Double(equal) / Double(diffs.count) >= 0.99, "\(modelName), \(sampler), \(precision): \(equal) of \(diffs.count) bytes equal")
        #expect(diffs.max()! <= 2, "\(modelName), \(sampler), \(precision): largest difference \(diffs.max()!)")
    }
}

@Suite(.serialized, .enabled(if: OpenCLTestBackend.backend != nil, "no OpenCL device (install pocl-opencl-icd)"))
struct OpenCLSamplingTransferTests {
    /// The latent stays on the device through sampling: a generation uploads its initial noise
    /// and, per model call, only the call's timestep embedding, and reads back once, the final
    /// latent (the counts of the generations with 2 and with 6 steps say so step by step).
    @Test("sampling on OpenCL makes no per-step host round trip of the latent", arguments: [Sampler.euler, .dpmpp2M, .heun, .ddim])
    func noPerStepRoundTrip(_ sampler: Sampler) throws {
        // A device context of its own: other suites' work on the shared one does not count here.
        let backend = try OpenCLBackend()
        try Engine.withBackend(backend) {
            let model = try StableDiffusionModel(path: TestFixtures.tinyModelPath)
            let pipeline = TextToImage(model: model, tokenizer: try CLIPTokenizer.shipped())
            for steps in [2, 6] {
                var s = GenerationSettings()
                s.prompt = "a red circle"; s.seed = 3; s.steps = steps; s.sampler = sampler; s.width = 32; s.height = 32
                _ = try withNoGrad { try pipeline.latents(s) }   // weights and contexts resident
                let before = backend.transfers
                _ = try withNoGrad { try pipeline.latents(s) }
                let moved = backend.transfers.since(before)
                let calls = sampler == .heun ? 2 * steps - 1 : sampler == .ddim ? DDIMSampler.timesteps(steps: steps).count - 1 : steps
                print("\(sampler), \(steps) steps: \(calls) model calls, \(moved)")
                #expect(moved == DeviceTransfers(uploads: 1 + calls, readBacks: 1), "\(sampler), \(steps) steps, \(calls) model calls: \(moved)")
            }
        }
    }
}

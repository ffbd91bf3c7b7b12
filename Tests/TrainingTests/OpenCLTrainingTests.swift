import Engine
import Foundation
import Testing
@testable import Training

/// Textual-inversion training of the tiny model on the OpenCL backend (PoCL in CI): 20 steps on
/// 32x32 pictures end within 1e-3 relative of the same run on the CPU backend.
/// The OpenCL device of these tests, opened once.
private enum OpenCLTestBackend {
    static let backend: OpenCLBackend? = try? OpenCLBackend()
}

@Suite(.serialized, .enabled(if: OpenCLTestBackend.backend != nil, "no OpenCL device (install pocl-opencl-icd)"))
struct OpenCLTrainingTests {
    @Test("20 training steps on OpenCL end where the CPU run ends (1e-3 relative)")
    func sameEmbedding() throws {
        let options = TrainingOptions(steps: 20, learnRate: "0.005", seed: 7, saveEvery: 1000, latents: .once, flip: false)
        func train(_ backend: any Backend) throws -> [Float] {
            let setup = try TrainerResumeTests.Setup(size: 32)
            defer { try? FileManager.default.removeItem(atPath: setup.folder) }
            let path = try setup.start("run")
            try Engine.withBackend(backend) { try setup.trainer(path, options).run() }
            return try TrainerResumeTests.storedVectors(path).vectors
        }
        let start: [Float] = try {
            let setup = try TrainerResumeTests.Setup()
            defer { try? FileManager.default.removeItem(atPath: setup.folder) }
            return try TrainerResumeTests.storedVectors(try setup.start("untrained")).vectors
        }()
        let clock = ContinuousClock()
        var cpu: [Float] = [], gpu: [Float] = []
        let cpuTime = try clock.measure { cpu = try train(CPUBackend()) }
        let gpuTime = try clock.measure { gpu = try train(OpenCLTestBackend.backend!) }
        print("20 training steps: cpu \(cpuTime), opencl (\(OpenCLTestBackend.backend!.device.name)) \(gpuTime)")
        #expect(cpu != start, "training changed nothing")
        let maxDiff = zip(cpu, gpu).map { abs($0 - $1) }.max() ?? 0
        let scale = cpu.map { abs($0) }.max() ?? 1
        print("20 training steps: relative difference of the embeddings \(maxDiff / scale)")
        #expect(maxDiff / scale <= 1e-3, "relative difference \(maxDiff / scale)")
    }
}

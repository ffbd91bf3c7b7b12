import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
import Formats
@testable import Models
@testable import Prompting

/// `precision="bf16"` on the tiny model: bf16 weights, and products with bf16 operands and f32
/// sums where the CPU has bf16 dot products (`ProductPrecision`), against the f32 references of
/// `PipelineTests` (A1111's algorithm run with diffusers modules and k-diffusion samplers).
@Suite struct BF16ProductsTests {
    nonisolated(unsafe) static let pipeline: TextToImage = {
        let model = try! StableDiffusionModel(path: PipelineFixture.modelPath, precision: .bf16)
        return TextToImage(model: model, tokenizer: try! CLIPTokenizer.shipped())
    }()
    /// Bounds on the final latents' relative L2 error (||got - reference|| / ||reference||) over the
    /// fixture's 66 runs without embeddings, measured on a Zen 4 (AVX512_BF16; docs/performance.md,
    /// "bf16 products"): median 0.027, 0.009-0.074 for every sampler but DPM adaptive, whose
    /// step-size controller turns rounding into other steps (0.29; already 16x the others'
    /// spread between two f32 attention implementations in the reference, PipelineTests).
    static let medianBound: Float = 0.035, latentBound: Float = 0.1

    static func relativeL2(_ a: [Float], _ b: [Float]) -> Float {
        let diff = zip(a, b).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return (diff / max(b.reduce(Float(0)) { $0 + $1 * $1 }, 1e-30)).squareRoot()
    }

    /// Every run's final latents within `latentBound` of the f32 reference, and not equal to the
    /// full-precision ones (the products did change).
    @Test(.enabled(if: ProductPrecision.bf16Available)) func finalLatentsStayNearTheF32References() throws {
        var errors: [(String, Float)] = []
        for index in PipelineFixture.runs {
            let r = PipelineFixture.run(index)
            guard r["embeddings_dirs"] == nil else { continue }
            let latents = try withNoGrad { try Self.pipeline.latents(PipelineFixture.settings(r)) }
            errors.append((r["name"] as! String, Self.relativeL2(latents, PipelineFixture.floats(r["latents"]))))
        }
        let worst = errors.map(\.1).max() ?? 0
        print("bf16 products: final latents' relative L2 error \(errors.map(\.1).min() ?? 0)...\(worst) over \(errors.count) runs")
        for (name, error) in errors.sorted(by: { $0.1 > $1.1 }) { print("  \(name): \(error)") }
        #expect(errors.count >= 60)
        let median = errors.map(\.1).sorted()[errors.count / 2]
        #expect(median <= Self.medianBound, "median \(median)")
        for (name, error) in errors where !name.hasPrefix("DPM adaptive") { #expect(error <= Self.latentBound, "\(name): \(error)") }
        #expect(errors.allSatisfy { $0.1 > 1e-5 }, "bf16 products left some run's latents as f32 makes them")
    }

    /// A copy of the model folder whose linear and convolution weights (what `WeightLoader.matrix`
    /// loads: every tensor of rank 2 or more but the text encoder's embedding tables) are rounded to
    /// bf16, stored as f32.
    static func copyWithMatricesRoundedToBF16(_ source: String) throws -> String {
        let folder = NSTemporaryDirectory() + "sdshell-tiny-bf16-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.copyItem(atPath: source, toPath: folder)
        for file in try fm.subpathsOfDirectory(atPath: folder).filter({ $0.hasSuffix(".safetensors") }) {
            let original = try SafeTensorsFile(path: folder + "/" + file)
            var converted: [String: Tensor] = [:]
            for (name, stored) in original.tensors {
                let t = try stored.materialize()
                let matrix = t.shape.count >= 2 && !name.contains("embeddings.") && (t.dtype == .f32 || t.dtype == .f16)
                converted[name] = matrix ? try t.to(.f32).to(.bf16).to(.f32) : t
            }
            try SafeTensorsFile.write(converted, metadata: original.metadata, to: folder + "/" + file)
        }
        return folder
    }

    /// Without bf16 dot products the model still loads at bf16 (bf16 weights) with a message, and
    /// computes in f32: the latents equal full precision's over the weights rounded to bf16.
    @Test(.enabled(if: !ProductPrecision.bf16Available)) func withoutBF16DotProductsTheProductsAreF32() throws {
        #expect(WeightPrecision.bf16.bf16ProductsUnavailable != nil)
        let rounded = try Self.copyWithMatricesRoundedToBF16(PipelineFixture.modelPath)
        defer { try? FileManager.default.removeItem(atPath: rounded) }
        let full = TextToImage(model: try StableDiffusionModel(path: rounded, precision: .full), tokenizer: try CLIPTokenizer.shipped())
        let r = PipelineFixture.run(0)
        let s = PipelineFixture.settings(r)
        #expect(try withNoGrad { try Self.pipeline.latents(s) } == withNoGrad { try full.latents(s) })
    }
}

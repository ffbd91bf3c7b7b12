import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Models
@testable import Prompting

/// txt2img on the tiny SD 2.x (epsilon and v) and SDXL models against A1111's algorithm run with
/// diffusers modules and k-diffusion samplers (Tests/Fixtures/generators/make_family_fixtures.py):
/// each family's conditioning (OpenCLIP penultimate layer and padding; SDXL's two encoders, pooled
/// output, size conditioning and zeroed empty negative prompt), v-prediction, the samplers.
enum FamilyFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("families", in: .module)
    static var runs: [[String: Any]] { root["runs"] as! [[String: Any]] }
    static var names: [String] { runs.map { $0["name"] as! String } }
    static func run(_ name: String) -> [String: Any] { runs.first { $0["name"] as? String == name }! }
    /// The committed file forms of a fixture model ("sd2", "sd2-v", "sdxl"): form -> path in the repository.
    static func paths(_ model: String) -> [String: String] {
        ((root["models"] as! [String: Any])[model] as! [String: Any])["paths"] as! [String: String]
    }
    static func path(_ model: String) -> String {
        let forms = paths(model)
        let relative = forms["diffusers"] ?? forms["safetensors"] ?? forms.values.sorted().first!
        return TestFixtures.repositoryRoot + "/" + relative
    }

    nonisolated(unsafe) private static var pipelines: [String: TextToImage] = [:]
    private static let lock = NSLock()
    /// The pipeline of a fixture model, loaded once from its first form (a folder when there is one).
    static func pipeline(_ model: String) -> TextToImage {
        lock.lock(); defer { lock.unlock() }
        if let p = pipelines[model] { return p }
        let p = TextToImage(model: try! StableDiffusionModel(path: path(model)), tokenizer: try! CLIPTokenizer.shipped())
        pipelines[model] = p
        return p
    }

    /// A tensor record ({"shape", "data"}) or a plain list of numbers.
    static func floats(_ v: Any?) -> [Float] { ((v as? [NSNumber]) ?? ((v as! [String: Any])["data"] as! [NSNumber])).map(\.floatValue) }
    static func shape(_ v: Any?) -> [Int] { ((v as! [String: Any])["shape"] as! [NSNumber]).map(\.intValue) }
}

@Suite(.serialized) struct FamilyPipelineTests {
    /// Max |a - b| over max |b|.
    static func relative(_ a: [Float], _ b: [Float]) -> Float {
        (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / max(b.map { abs($0) }.max() ?? 1, 1e-12)
    }

    /// At least `equalFraction` of the bytes equal, none off by more than 2.
    static func expectImagesClose(_ actual: [UInt8], _ expected: [UInt8], _ what: String, equalFraction: Double = 0.99) {
        #expect(actual.count == expected.count, "\(what): \(actual.count) bytes, expected \(expected.count)")
        let diffs = zip(actual, expected).map { abs(Int($0) - Int($1)) }
        let equal = diffs.filter { $0 == 0 }.count
        #expect(Double(equal) >= equalFraction * Double(max(diffs.count, 1)), "\(what): \(equal) of \(diffs.count) bytes equal")
        #expect((diffs.max() ?? 0) <= 2, "\(what): largest difference \(diffs.max() ?? 0)")
    }

    @Test("conditioning, vector, sigmas, final latents and 8-bit images equal A1111's on tiny SD 2.x / SDXL (batch 2)",
          arguments: FamilyFixture.names)
    func run(_ name: String) throws {
        let r = FamilyFixture.run(name)
        try Self.check(r, FamilyFixture.pipeline(r["model"] as! String))
    }

    /// One reference run (families.json's layout): the text conditioning and SDXL vector of the
    /// prompt and the negative prompt, the sigmas, the final latents (within 1e-4 of the largest
    /// value) and the 8-bit images decoded from sdshell's own latents.
    static func check(_ r: [String: Any], _ p: TextToImage) throws {
        let name = r["name"] as! String
        let s = PipelineFixture.settings(r)
        try withNoGrad {
            for (side, text) in [("cond", s.prompt), ("uncond", s.negativePrompt)] {
                guard let expected = r["\(side)_context"] else { continue }
                let zeroed = side == "uncond" && p.model.family.zeroesEmptyNegativePrompt && text.isEmpty
                let text = zeroed ? try p.conditioner.zeros() : try p.conditioner.conditioning(p.conditioner.chunks(text), clipSkip: s.clipSkip)
                let c = try p.conditioning(text, s)
                #expect(c.context.shape == FamilyFixture.shape(expected), "\(name): \(side) context shape")
                #expect(relative(try c.context.toArray(), FamilyFixture.floats(expected)) <= 1e-5, "\(name): \(side) context")
                if let vector = r["\(side)_vector"] {
                    let v = try #require(c.vector, "\(name): no \(side) vector")
                    #expect(relative(try v.toArray(), FamilyFixture.floats(vector)) <= 1e-5, "\(name): \(side) vector")
                }
            }
            #expect(relative(p.sigmas(s), FamilyFixture.floats(r["sigmas"])) <= 1e-6, "\(name): sigmas")
            let latents = try p.latents(s)
            let error = relative(latents, FamilyFixture.floats(r["latents"]))
            print("\(name): final latents within \(error) of A1111's")
            #expect(error <= 1e-4, "\(name): final latents off by \(error)")
            let shape = [4, s.height / p.model.vaeScale, s.width / p.model.vaeScale], per = shape.reduce(1, *)
            var rgb: [UInt8] = []
            for i in 0..<s.batchSize { rgb += try p.decode(Array(latents[(i * per)..<((i + 1) * per)]), shape: shape) }
            let expected = [UInt8](Data(base64Encoded: r["image_uint8_base64"] as! String)!)
            expectImagesClose(rgb, expected, name)
        }
    }

    @Test("A1111's test pass tells the v model from the epsilon ones without a config; prediction= overrides it")
    func vPrediction() throws {
        let v = try StableDiffusionModel(path: FamilyFixture.path("sd2-v"))
        #expect(v.family == .sd2 && v.config.prediction == .v && v.predictionSource == "detected")
        #expect(v.nativeSize == (768, 768))
        let epsFile = TestFixtures.repositoryRoot + "/" + FamilyFixture.paths("sd2")["ckpt"]!
        let eps = try StableDiffusionModel(path: epsFile)
        #expect(eps.family == .sd2 && eps.config.prediction == .epsilon && eps.predictionSource == "detected")
        #expect(eps.nativeSize == (512, 512))
        // The means the reference recorded for A1111's test.
        for (model, loaded) in [("sd2-v", v), ("sd2", eps)] {
            let expected = ((FamilyFixture.root["models"] as! [String: Any])[model] as! [String: Any])["v_test_mean"] as! NSNumber
            let mean = try PredictionDetector.testMean(loaded.unet)
            #expect(abs(mean - expected.floatValue) <= 1e-4 * max(1, abs(expected.floatValue)), "\(model): test mean \(mean), A1111's \(expected)")
        }
        let forced = try StableDiffusionModel(path: FamilyFixture.path("sd2-v"), prediction: .epsilon)
        #expect(forced.config.prediction == .epsilon && forced.predictionSource == "given" && forced.predictionOverride == .epsilon)
        // A diffusers folder's scheduler_config.json decides for it.
        let folder = FamilyFixture.pipeline("sd2").model
        #expect(folder.config.prediction == .epsilon && folder.predictionSource == "config")
    }

    /// Writes the other single-file form of a committed one: a `.ckpt` (torch zip, "state_dict")
    /// from a `.safetensors`, or the reverse, with the same tensor names and values.
    private func otherForm(_ path: String) throws -> String {
        let file = try ModelFile.open(path)
        var tensors: [String: Tensor] = [:]
        for (name, t) in file.tensors { tensors[name] = try t.materialize() }
        let out = NSTemporaryDirectory() + "sdshell-form-\(UUID().uuidString)" + (path.hasSuffix(".ckpt") ? ".safetensors" : ".ckpt")
        if path.hasSuffix(".ckpt") {
            try SafeTensorsFile.write(tensors, to: out)
        } else {
            try TorchWriter.save(.dict([("state_dict", .dict(tensors.keys.sorted().map { ($0, .tensor(tensors[$0]!)) }))]), to: out)
        }
        return out
    }

    @Test("the three file forms (original single file, .ckpt, diffusers folder) give identical images", arguments: ["sd2", "sdxl"])
    func fileForms(_ model: String) throws {
        let committed = FamilyFixture.paths(model).values.sorted().map { TestFixtures.repositoryRoot + "/" + $0 }
        let single = try #require(committed.first { $0.hasSuffix(".ckpt") || $0.hasSuffix(".safetensors") })
        let derived = try otherForm(single)
        defer { try? FileManager.default.removeItem(atPath: derived) }
        let forms = committed + [derived]
        #expect(Set(forms.map { URL(fileURLWithPath: $0).pathExtension }) == ["", "ckpt", "safetensors"], "\(forms)")
        let r = FamilyFixture.run("\(model) / Euler a")
        let s = PipelineFixture.settings(r)
        var images: [[UInt8]] = []
        for path in forms {
            let m = try StableDiffusionModel(path: path)
            #expect(m.family == (model == "sdxl" ? .sdxl : .sd2) && m.config.prediction == .epsilon, "\(path)")
            let p = TextToImage(model: m, tokenizer: try CLIPTokenizer.shipped())
            images.append(try withNoGrad { try p.generate(s).flatMap(\.rgb) })
        }
        for (path, image) in zip(forms.dropFirst(), images.dropFirst()) { #expect(image == images[0], "\(path) differs from \(forms[0])") }
    }

    @Test("SDXL: an empty negative prompt conditions on zeros (context and pooled text); the size embeddings stay")
    func emptyNegative() throws {
        let p = FamilyFixture.pipeline("sdxl")
        var s = GenerationSettings()
        (s.width, s.height) = (16, 16)
        let empty = try p.conditioning(p.conditioner.zeros(), s)
        #expect(empty.context.shape == [1, 77, 24])
        #expect(try empty.context.toArray().allSatisfy { $0 == 0 })
        // The size embeddings stay: cos(0) = 1 in the crop's slots.
        #expect(try empty.vector!.toArray().contains { $0 != 0 })
        let r = FamilyFixture.run("sdxl / Euler / empty negative")
        #expect((r["settings"] as! [String: Any])["negative_prompt"] as? String == "")
        #expect(FamilyFixture.floats(r["uncond_context"]).allSatisfy { $0 == 0 })
    }

    @Test("clip skip does nothing on SD 2.x and SDXL (A1111 never reads it for OpenCLIP), as the reference run with clip_skip 2 says")
    func clipSkip() throws {
        for model in ["sd2", "sdxl"] {
            let p = FamilyFixture.pipeline(model)
            let chunks = p.conditioner.chunks("a red circle")
            let one = try withNoGrad { try p.conditioner.encode(chunks, clipSkip: 1).toArray() }
            let two = try withNoGrad { try p.conditioner.encode(chunks, clipSkip: 2).toArray() }
            #expect(one == two, "\(model)")
        }
        let one = FamilyFixture.floats(FamilyFixture.run("sd2 / Euler a")["latents"])
        let two = FamilyFixture.floats(FamilyFixture.run("sd2 / Euler a / clip skip 2")["latents"])
        #expect(one == two)
    }
}

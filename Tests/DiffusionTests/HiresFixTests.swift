import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Formats
@testable import Models
@testable import Prompting

/// The hires fix with A1111's latent upscalers on the tiny SD 1.x model, against A1111's
/// `sample_hr_pass` restated with diffusers modules and k-diffusion samplers
/// (Tests/Fixtures/generators/make_hires_fixtures.py): the target size and truncation, the
/// upscaled latents, the second pass's steps for the denoising strength, its fresh image noise,
/// the final latents and 8-bit images, and the infotext keys written and read back.
enum HiresFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("hires", in: .module)
    static var runs: [[String: Any]] { root["runs"] as! [[String: Any]] }
    static var names: [String] { runs.map { $0["name"] as! String } }
    static func run(_ name: String) -> [String: Any] { runs.first { $0["name"] as? String == name }! }

    nonisolated(unsafe) static let pipeline = TextToImage(model: try! StableDiffusionModel(path: TestFixtures.tinyModelPath),
                                                          tokenizer: try! CLIPTokenizer.shipped())

    /// A run's settings through the parameter table (sdshell's names, every other row at its default).
    static func settings(_ r: [String: Any]) throws -> GenerationSettings {
        let j = r["settings"] as! [String: Any]
        var values: [String: Value] = [:]
        for row in GenerationParameters.all where row.hasSettingsField { if let d = row.defaultValue { values[row.name] = d } }
        for (key, v) in j where key != "prompt" {
            switch v {
            case let n as NSNumber where ["seed", "steps", "batch", "hires_steps"].contains(key): values[key] = .integer(n.int64Value)
            case let n as NSNumber: values[key] = .real(n.doubleValue)
            case let text as String: values[key] = .string(text)
            case let size as [NSNumber]: values[key] = .size(width: size[0].intValue, height: size[1].intValue)
            default: Issue.record("\(key): unexpected value \(v)")
            }
        }
        return try GenerationParameters.settings(prompt: j["prompt"] as! String, values)
    }
}

@Suite(.serialized) struct HiresFixTests {
    @Test("hires fix: upscaled latents, second-pass steps, final latents and images equal A1111's (batch 2)", arguments: HiresFixture.names)
    func run(_ name: String) throws {
        let r = HiresFixture.run(name), hires = r["hires"] as! [String: Any]
        let p = HiresFixture.pipeline
        let s = try HiresFixture.settings(r).withSeedsDrawn()
        #expect(s.hires.enabled)
        // The target and the second pass's schedule.
        let size = p.outputSize(s)
        #expect(size.width == (hires["width"] as! Int) && size.height == (hires["height"] as! Int), "\(name): size \(size)")
        let steps = HiresFix.img2imgSteps(requested: s.hires.steps > 0 ? s.hires.steps : s.steps, denoise: s.hires.denoise)
        #expect(steps.total == hires["total"] as! Int && steps.start == hires["start_index"] as! Int, "\(name): steps \(steps)")
        try withNoGrad {
            // The upscaler, from the reference's own first pass.
            let first = r["first_pass"] as! [String: Any]
            let firstLatents = try Tensor(shape: FamilyFixture.shape(first["latents"]), data: FamilyFixture.floats(first["latents"]))
            let (second, upscaled) = try p.hiresPass(s, firstLatents)
            #expect(upscaled.shape == FamilyFixture.shape(hires["upscaled"]), "\(name): upscaled shape \(upscaled.shape)")
            #expect(FamilyPipelineTests.relative(try upscaled.toArray(), FamilyFixture.floats(hires["upscaled"])) <= 1e-5, "\(name): upscaled latents")
            #expect(p.sigmas({ var w = second; w.steps = steps.total; return w }()).count == FamilyFixture.floats(hires["sigmas"]).count)
            // The whole generation.
            let latents = try p.latents(s)
            let error = FamilyPipelineTests.relative(latents, FamilyFixture.floats(hires["latents"]))
            print("\(name): final latents within \(error) of A1111's")
            #expect(error <= 1e-4, "\(name): final latents off by \(error)")
            let shape = [4, size.height / p.model.vaeScale, size.width / p.model.vaeScale], per = shape.reduce(1, *)
            var rgb: [UInt8] = []
            for i in 0..<s.batchSize { rgb += try p.decode(Array(latents[(i * per)..<((i + 1) * per)]), shape: shape) }
            let image = r["image"] as! [String: Any]
            FamilyPipelineTests.expectImagesClose(rgb, [UInt8](Data(base64Encoded: image["uint8_base64"] as! String)!), name)
        }
    }

    @Test("hires fix infotext: A1111's keys, values and order written; a pasted A1111 infotext sets the same hires settings",
          arguments: HiresFixture.names)
    func infotext(_ name: String) throws {
        let r = HiresFixture.run(name)
        let s = try HiresFixture.settings(r)
        let expected = (r["infotext_parameters"] as! [[[String]]])[0]
        func hiresKeys(_ pairs: [(key: String, value: String)]) -> [String] {
            pairs.filter { $0.key.hasPrefix("Hires") || $0.key == "Denoising strength" }.map { "\($0.key): \($0.value)" }
        }
        let written = GenerationParameters.infotextParameters(s.image(0), model: [])
        #expect(hiresKeys(written) == hiresKeys(expected.map { ($0[0], $0[1]) }), "\(name)")
        // Read back from A1111's own text.
        let pasted = GenerationParameters.pasted(Infotext.parse((r["infotexts"] as! [String])[0]))
        #expect(pasted.notUnderstood.isEmpty, "\(name): not understood \(pasted.notUnderstood)")
        var values = Dictionary(uniqueKeysWithValues: GenerationParameters.all.compactMap { row in row.defaultValue.map { (row.name, $0) } })
        values["size"] = .size(width: s.width, height: s.height)
        for (key, value) in pasted.values { values[key] = try GenerationParameters.definition(key)!.checked(value) }
        let read = try GenerationParameters.settings(prompt: s.prompt, values)
        #expect(read.hires == s.hires, "\(name): \(read.hires) vs \(s.hires)")
    }
}

import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
@testable import Models
import Prompting

/// Half precision on a 16-bit checkpoint uses the weight matrices in place from the file's mapping,
/// and a generation keeps only the model part at work resident (see `MappedWeights`).
@Suite struct MappedWeightsTests {
    /// Kilobytes of `path`'s mappings resident in this process (/proc/self/smaps).
    static func residentKB(ofMappingsOf path: String) throws -> Int {
        // (read to the end: /proc files report size 0, and String(contentsOfFile:) stops at a page)
        let data = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data()
        let smaps = String(decoding: data, as: UTF8.self)
        var inFile = false, total = 0
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {
                inFile = fields.count >= 6 && fields[5...].joined(separator: " ") == path
            } else if inFile, fields.first == "Rss:", fields.count >= 2 {
                total += Int(fields[1]) ?? 0
            }
        }
        return total
    }

    /// A private copy of the tiny model (f16 throughout), so that no other test maps its files.
    static func privateCopy() throws -> String {
        let folder = NSTemporaryDirectory() + "sdshell-mapped-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: TestFixtures.tinyModelPath, toPath: folder)
        return folder
    }

    @Test func sixteenBitMatricesAreUsedInPlaceAndComputeAsAtFullPrecision() throws {
        let folder = try Self.privateCopy()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let half = try StableDiffusionModel(path: folder, precision: .half)
        let full = try StableDiffusionModel(path: folder)
        #expect(half.unet.convIn.weight.storage.isBorrowed)
        #expect(half.unet.convIn.weight.dtype == .f16)
        #expect(!half.unet.convIn.bias!.storage.isBorrowed)              // biases are f32 copies
        #expect(!full.unet.convIn.weight.storage.isBorrowed)             // widened to f32 at full precision
        #expect(full.unet.mappedWeights.bytes == 0)
        // Nearly all of the UNet file's bytes are its matrices, used in place.
        let unetFile = folder + "/unet/diffusion_pytorch_model.safetensors"
        let fileBytes = try FileManager.default.attributesOfItem(atPath: unetFile)[.size] as! Int
        #expect(Double(half.unet.mappedWeights.bytes) > 0.8 * Double(fileBytes))

        var s = GenerationSettings()
        s.prompt = "a red circle"; s.steps = 2; s.width = 64; s.height = 64; s.seed = 5
        let tokenizer = try CLIPTokenizer.shipped()
        let a = try TextToImage(model: half, tokenizer: tokenizer).generate(s)
        let b = try TextToImage(model: full, tokenizer: tokenizer).generate(s)
        #expect(a[0].latent == b[0].latent)
        #expect(a[0].rgb == b[0].rgb)
    }

    @Test func aGenerationReleasesEachPartsPagesWhenItsShareIsDone() throws {
        let folder = try Self.privateCopy()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = try StableDiffusionModel(path: folder, precision: .half)
        let files = ["unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                     "vae/diffusion_pytorch_model.safetensors"].map { folder + "/" + $0 }
        // Running the UNet makes its weights resident...
        let x = try Tensor(shape: [1, 4, 8, 8], data: (0..<256).map { Float($0 % 7) / 7 })
        let context = try Tensor(shape: [1, 77, model.config.textEncoder!.hiddenSize], data: Array(repeating: 0.1, count: 77 * model.config.textEncoder!.hiddenSize))
        _ = try withNoGrad { try model.unet(x, timesteps: [500], context: context) }
        let used = try Self.residentKB(ofMappingsOf: files[0])
        #expect(used * 1024 >= model.unet.mappedWeights.bytes * 9 / 10, "UNet mapping resident: \(used) kB")
        // ...and a generation leaves none of the three parts' weights resident (the file headers'
        // pages, read when the files were opened, may stay).
        var s = GenerationSettings()
        s.prompt = "a red circle"; s.steps = 2; s.width = 64; s.height = 64
        _ = try TextToImage(model: model, tokenizer: try CLIPTokenizer.shipped()).generate(s)
        for file in files {
            let kb = try Self.residentKB(ofMappingsOf: file)
            #expect(kb <= 96, "\(file): \(kb) kB resident after the generation")
        }
    }
}

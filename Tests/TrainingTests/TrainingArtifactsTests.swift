import Foundation
import Formats
import Testing
import TestSupport
@testable import Training

/// What a training leaves in `outdir/train/NAME`: numbered copies, previews with infotext, the
/// loss plot; for SD 1.x (`.pt`) and SDXL (`.safetensors`) embeddings.
@Suite(.serialized) struct TrainingArtifactsTests {
    @Test(arguments: ["tiny-sd", "tiny-sdxl"])
    func copiesPreviewsAndPlot(model: String) throws {
        let setup = try TrainerResumeTests.Setup(model: TestFixtures.fixturePath(model))
        let ext = setup.model.family.embeddingExtension
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        let path = try setup.start("artifacts")
        let folder = setup.folder + "/out/train/trainme"
        var options = TrainingOptions(steps: 4, learnRate: "0.01", seed: 3, saveEvery: 2)
        options.artifactsFolder = folder
        options.previewEvery = 2
        let trainer = try setup.trainer(path, options)
        try trainer.run()
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(names == ["loss.png", "trainme-2.png", "trainme-2.\(ext)", "trainme-4.png", "trainme-4.\(ext)"])
        // The last numbered copy is the embedding as saved; the first is the embedding at step 2.
        #expect(FileManager.default.contents(atPath: folder + "/trainme-4.\(ext)") == FileManager.default.contents(atPath: path))
        #expect(try TrainerResumeTests.storedVectorSets(folder + "/trainme-2.\(ext)", family: setup.model.family).step == 2)
        // The preview carries its infotext: the template's first line with the name and caption.
        let preview = try PNGFile.read(folder + "/trainme-4.png")
        #expect(preview.width == 64 && preview.height == 64)
        let info = Infotext.parse(try #require(preview.text("parameters")))
        #expect(info.prompt == trainer.previewText && info.prompt.contains("trainme"))
        #expect(info["Seed"] == "3" && info["Steps"] == "20" && info["Sampler"] == "Euler a")
        // The plot, with the blue moving average and the saved copies' green norm marks drawn.
        let plot = try PNGFile.read(folder + "/loss.png")
        #expect(plot.width == LossPlot.width && plot.height == LossPlot.height)
        #expect(stride(from: 0, to: plot.rgba.count, by: 4).contains { plot.rgba[$0] == 40 && plot.rgba[$0 + 1] == 150 && plot.rgba[$0 + 2] == 60 })
        #expect(stride(from: 0, to: plot.rgba.count, by: 4).contains { plot.rgba[$0] == 30 && plot.rgba[$0 + 1] == 80 && plot.rgba[$0 + 2] == 200 })
    }
}

import Engine
import Foundation
import Testing
import TestSupport
@testable import Diffusion
import Formats
@testable import Models
@testable import Prompting
@testable import Training

/// Interruption and resume lose nothing: runs that stop (after a save, as SIGKILL would leave them,
/// or on request, as Ctrl-C does) and resume from the files end with the same bits as one run, on
/// an SD 1.x model (A1111's `.pt`) and an SDXL one (kohya's `.safetensors` with `clip_l` and
/// `clip_g`, or the A1111-readable `.pt` of the two).
@Suite(.serialized) struct TrainerResumeTests {
    static let images = Bundle.module.resourcePath! + "/Fixtures/images"

    /// A training folder: an embedding made by `embedding new`, and a dataset of three pictures
    /// (`size` x `size` pixels).
    struct Setup {
        let model: StableDiffusionModel, tokenizer: CLIPTokenizer, dataset: TrainingDataset, folder: String
        init(model path: String = TrainingFixture.modelPath, size: Int = 64, captions: [String]? = nil) throws {
            model = try StableDiffusionModel(path: path)
            tokenizer = try CLIPTokenizer.shipped()
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("train-\(UUID())").path
            let pictures = folder + "/pictures"
            try FileManager.default.createDirectory(atPath: pictures, withIntermediateDirectories: true)
            for (fixture, name) in [("wide-37x23.png", "01-a wide picture.png"), ("photo-30x20.jpg", "02-a photo.jpg"),
                                    ("square-16x16.png", "03-a square.png")] {
                try FileManager.default.copyItem(atPath: "\(TrainerResumeTests.images)/\(fixture)", toPath: "\(pictures)/\(name)")
            }
            // Sidecar captions, one per picture in name order.
            for (caption, name) in zip(captions ?? [], ["01-a wide picture", "02-a photo", "03-a square"]) {
                try caption.write(toFile: "\(pictures)/\(name).txt", atomically: true, encoding: .utf8)
            }
            dataset = try TrainingDataset(folder: pictures, width: size, height: size)
        }

        /// A fresh copy of the untrained embedding in its own folder; returns its path.
        func start(_ run: String, format: String? = nil) throws -> String {
            let dir = folder + "/" + run
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return try EmbeddingCreation.create(name: "trainme", initText: "a cat", vectors: 2, model: model,
                                                tokenizer: tokenizer, directory: dir, format: format).path
        }

        func trainer(_ embedding: String, _ options: TrainingOptions) throws -> TextualInversionTrainer {
            try TextualInversionTrainer(model: model, tokenizer: tokenizer, dataset: dataset,
                                        template: try TrainingTemplate.load("subject_filewords"), embeddingPath: embedding, options: options)
        }
    }

    /// Each encoder's vectors in the file (by the family's keys) and its step.
    static func storedVectorSets(_ path: String, family: ModelFamily) throws -> (vectors: [[Float]], step: Int?) {
        let file = try #require(EmbeddingFile.recognize(try ModelFile.open(path)))
        return (try family.embeddingKeys.map { try #require(file.vectors[$0]).materialize().toArray() }, file.step)
    }

    /// The vectors of a one-encoder embedding file and its step.
    static func storedVectors(_ path: String) throws -> (vectors: [Float], step: Int?) {
        let (sets, step) = try storedVectorSets(path, family: .sd1)
        return (sets[0], step)
    }

    /// With tag shuffling and dropout on, a killed and resumed run draws the same captions as one
    /// run: the same vectors and loss.csv.
    @Test func interruptedRunsWithTagOptionsEndBitIdentical() throws {
        let setup = try Setup(captions: ["red, wide, soft light, a hill", "photo, blue, a cat, grain", "square, green, flat, studio"])
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        var options = TrainingOptions(steps: 6, learnRate: "0.05", seed: 9, saveEvery: 2)
        options.tags = TrainingCaption.TagOptions(shuffle: true, dropout: 0.3, keep: 1, captionDropout: 0.2)
        let straight = try setup.start("straight")
        try setup.trainer(straight, options).run()
        let killed = try setup.start("killed")
        try setup.trainer(killed, options).run(until: 5, saveAtEnd: false)
        try setup.trainer(killed, options).run()
        #expect(try Self.storedVectors(killed).vectors == Self.storedVectors(straight).vectors)
        #expect(try TrainingLossLog(path: killed + ".loss.csv", resumingAt: 100).rows == TrainingLossLog(path: straight + ".loss.csv", resumingAt: 100).rows)
        // The options change the prompts: another run than without them.
        var plain = options
        plain.tags = .init()
        let without = try setup.start("plain")
        try setup.trainer(without, plain).run()
        #expect(try Self.storedVectors(without).vectors != Self.storedVectors(straight).vectors)
    }

    /// Aspect-ratio buckets: pictures of three shapes keep their ratios, every batch holds one
    /// size, and a killed and resumed run ends bit-identical.
    @Test func bucketsBatchOneSizeAndResumeBitIdentical() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        // A tall picture beside the wide, 3:2 and square ones.
        var tall = [UInt8](repeating: 90, count: 24 * 48 * 3)
        for i in 0..<(24 * 48) {
            tall[i * 3] = UInt8(i % 24 * 10)
            tall[i * 3 + 1] = UInt8(i / 24 * 5)
        }
        try PNGFile.write(rgb: tall, width: 24, height: 48, text: [], to: setup.folder + "/pictures/04-a tall picture.png")
        let dataset = try TrainingDataset(folder: setup.folder + "/pictures", width: 64, height: 64, bucketStep: 16)
        let sizes = dataset.samples.map { "\($0.image.width)x\($0.image.height)" }
        #expect(sizes == ["80x48", "80x48", "64x64", "48x80"], "\(sizes)")
        #expect(dataset.buckets.count == 3 && dataset.usesBuckets)
        func trainer(_ path: String, _ options: TrainingOptions) throws -> TextualInversionTrainer {
            try TextualInversionTrainer(model: setup.model, tokenizer: setup.tokenizer, dataset: dataset,
                                        template: try TrainingTemplate.load("subject_filewords"), embeddingPath: path, options: options)
        }
        let options = TrainingOptions(steps: 6, learnRate: "0.05", seed: 5, saveEvery: 2, batchSize: 2)
        // Every batch is of one size; an epoch covers every picture once.
        let probe = try trainer(try setup.start("probe"), options)
        var seen: [Int] = []
        for _ in 0..<3 {
            let batch = probe.nextBatch()
            #expect(Set(batch.map { sizes[$0] }).count == 1 && (1...2).contains(batch.count), "\(batch)")
            seen += batch
        }
        #expect(seen.sorted() == [0, 1, 2, 3])
        let straight = try setup.start("straight")
        try trainer(straight, options).run()
        let killed = try setup.start("killed")
        try trainer(killed, options).run(until: 5, saveAtEnd: false)
        try trainer(killed, options).run()
        #expect(try Self.storedVectors(killed).vectors == Self.storedVectors(straight).vectors)
        #expect(try TrainingLossLog(path: killed + ".loss.csv", resumingAt: 100).rows == TrainingLossLog(path: straight + ".loss.csv", resumingAt: 100).rows)
    }

    @Test(arguments: ["tiny-sd", "tiny-sdxl"])
    func interruptedRunsEndBitIdentical(model: String) throws {
        let setup = try Setup(model: TestFixtures.fixturePath(model))
        let family = setup.model.family
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        let options = TrainingOptions(steps: 6, learnRate: "0.05:3, 0.01", seed: 42, saveEvery: 2, latents: .once, flip: true)

        let straight = try setup.start("straight")
        #expect(straight.hasSuffix(family == .sdxl ? "/trainme.safetensors" : "/trainme.pt"))
        try setup.trainer(straight, options).run()

        // Killed after the save at step 4, with step 5 done but not saved.
        let killed = try setup.start("killed")
        try setup.trainer(killed, options).run(until: 5, saveAtEnd: false)
        #expect(try Self.storedVectorSets(killed, family: family).step == 4)
        try setup.trainer(killed, options).run()

        // Ctrl-C during step 3: the step finishes, the state is saved, the run ends.
        let interrupted = try setup.start("interrupted")
        do {   // the stopped trainer is gone (and its lock released) before the resume, as its process would be
            let first = try setup.trainer(interrupted, options)
            try first.run(shouldStop: { first.step == 3 })
        }
        #expect(try Self.storedVectorSets(interrupted, family: family).step == 3)
        try setup.trainer(interrupted, options).run()

        let reference = try Self.storedVectorSets(straight, family: family)
        #expect(reference.step == 6)
        let start = try Self.storedVectorSets(try setup.start("untrained"), family: family)
        for (trained, untrained) in zip(reference.vectors, start.vectors) { #expect(trained != untrained, "training left a vector set unchanged") }
        for path in [killed, interrupted] {
            let resumed = try Self.storedVectorSets(path, family: family)
            #expect(resumed.step == 6)
            #expect(resumed.vectors == reference.vectors, "\(path): vectors differ from the uninterrupted run")
            let log = try TrainingLossLog(path: path + ".loss.csv", resumingAt: 100)
            #expect(log.rows.map(\.step) == Array(1...6), "\(path): loss.csv steps \(log.rows.map(\.step))")
            let referenceLog = try TrainingLossLog(path: straight + ".loss.csv", resumingAt: 100)
            #expect(log.rows == referenceLog.rows)
        }
        let rates = try TrainingLossLog(path: straight + ".loss.csv", resumingAt: 100).rows.map(\.learnRate)
        #expect(rates == [0.05, 0.05, 0.05, 0.01, 0.01, 0.01])

        guard family == .sdxl else { return }
        // The A1111-style `.pt` (just clip_g and clip_l, so no step in it) trains to the same bits
        // and resumes from the step kept in its optimizer state.
        let pt = try setup.start("pt", format: "pt")
        #expect(pt.hasSuffix("/trainme.pt"))
        try setup.trainer(pt, options).run(until: 5, saveAtEnd: false)
        #expect(try Self.storedVectorSets(pt, family: family).step == nil)
        let resumed = try setup.trainer(pt, options)
        #expect(resumed.step == 4)
        try resumed.run()
        #expect(try Self.storedVectorSets(pt, family: family).vectors == reference.vectors)
    }
}

import Engine
import Foundation
import Testing
@testable import Diffusion
import Formats
@testable import Models
@testable import Prompting
@testable import Training

/// Interruption and resume lose nothing: runs that stop (after a save, as SIGKILL would leave them,
/// or on request, as Ctrl-C does) and resume from the files end with the same bits as one run.
@Suite(.serialized) struct TrainerResumeTests {
    static let images = Bundle.module.resourcePath! + "/Fixtures/images"

    /// A training folder: an embedding made by `embedding new`, and a dataset of three pictures
    /// (`size` x `size` pixels).
    struct Setup {
        let model: StableDiffusionModel, tokenizer: CLIPTokenizer, dataset: TrainingDataset, folder: String
        init(size: Int = 64) throws {
            model = try StableDiffusionModel(path: TrainingFixture.modelPath)
            tokenizer = try CLIPTokenizer.shipped()
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("train-\(UUID())").path
            let pictures = folder + "/pictures"
            try FileManager.default.createDirectory(atPath: pictures, withIntermediateDirectories: true)
            for (fixture, name) in [("wide-37x23.png", "01-a wide picture.png"), ("photo-30x20.jpg", "02-a photo.jpg"),
                                    ("square-16x16.png", "03-a square.png")] {
                try FileManager.default.copyItem(atPath: "\(TrainerResumeTests.images)/\(fixture)", toPath: "\(pictures)/\(name)")
            }
            dataset = try TrainingDataset(folder: pictures, width: size, height: size)
        }

        /// A fresh copy of the untrained embedding in its own folder; returns its path.
        func start(_ run: String) throws -> String {
            let dir = folder + "/" + run
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return try EmbeddingCreation.create(name: "trainme", initText: "a cat", vectors: 2, model: model,
                                                tokenizer: tokenizer, directory: dir).path
        }

        func trainer(_ embedding: String, _ options: TrainingOptions) throws -> TextualInversionTrainer {
            var conditioner = Conditioner(textEncoder: model.textEncoder, tokenizer: tokenizer)
            conditioner.embeddings = EmbeddingDatabase(directories: [], width: 32, tokenizer: tokenizer)
            return try TextualInversionTrainer(model: model, conditioner: conditioner, dataset: dataset,
                                               template: try TrainingTemplate.load("subject_filewords"),
                                               embeddingPath: embedding, lossLogPath: embedding + ".loss.csv", options: options)
        }
    }

    static func storedVectors(_ path: String) throws -> (vectors: [Float], step: Int?) {
        let file = try #require(EmbeddingFile.recognize(try ModelFile.open(path)))
        return (try file.vectors["clip"]!.materialize().toArray(), file.step)
    }

    @Test func interruptedRunsEndBitIdentical() throws {
        let setup = try Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        let options = TrainingOptions(steps: 6, learnRate: "0.05:3, 0.01", seed: 42, saveEvery: 2, latents: .once, flip: true)

        let straight = try setup.start("straight")
        try setup.trainer(straight, options).run()

        // Killed after the save at step 4, with step 5 done but not saved.
        let killed = try setup.start("killed")
        try setup.trainer(killed, options).run(until: 5, saveAtEnd: false)
        #expect(try Self.storedVectors(killed).step == 4)
        try setup.trainer(killed, options).run()

        // Ctrl-C during step 3: the step finishes, the state is saved, the run ends.
        let interrupted = try setup.start("interrupted")
        do {   // the stopped trainer is gone (and its lock released) before the resume, as its process would be
            let first = try setup.trainer(interrupted, options)
            try first.run(shouldStop: { first.step == 3 })
        }
        #expect(try Self.storedVectors(interrupted).step == 3)
        try setup.trainer(interrupted, options).run()

        let reference = try Self.storedVectors(straight)
        #expect(reference.step == 6)
        let start = try Self.storedVectors(try setup.start("untrained"))
        #expect(reference.vectors != start.vectors, "training changed nothing")
        for path in [killed, interrupted] {
            let resumed = try Self.storedVectors(path)
            #expect(resumed.step == 6)
            #expect(resumed.vectors == reference.vectors, "\(path): vectors differ from the uninterrupted run")
            let log = try TrainingLossLog(path: path + ".loss.csv", resumingAt: 100)
            #expect(log.rows.map(\.step) == Array(1...6), "\(path): loss.csv steps \(log.rows.map(\.step))")
            let referenceLog = try TrainingLossLog(path: straight + ".loss.csv", resumingAt: 100)
            #expect(log.rows == referenceLog.rows)
        }
        let rates = try TrainingLossLog(path: straight + ".loss.csv", resumingAt: 100).rows.map(\.learnRate)
        #expect(rates == [0.05, 0.05, 0.05, 0.01, 0.01, 0.01])
    }
}

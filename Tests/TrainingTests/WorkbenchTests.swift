import Engine
import Foundation
import TestSupport
import Testing
@testable import Formats
@testable import Imaging
@testable import Models
@testable import Prompting
@testable import Training

/// The textual-inversion workbench against Python (Tests/Fixtures/generators/make_workbench_fixtures.py):
/// `embedding inspect`'s norms, cosines to the init vectors (A1111's create_embedding) and nearest
/// tokens on the tiny SD 1.x and SDXL models; the loss plot's moving average and round ticks on a
/// 3,000-step log; a training stopped by a NaN loss with its last save intact.
enum WorkbenchFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("workbench", in: .module)
    static var inspect: [String: Any] { root["inspect"] as! [String: Any] }
    nonisolated(unsafe) static let models: [String: StableDiffusionModel] = [
        "Tests/Fixtures/tiny-sd": try! StableDiffusionModel(path: TestFixtures.tinyModelPath),
        "Tests/Fixtures/tiny-sdxl": try! StableDiffusionModel(path: TestFixtures.fixturePath("tiny-sdxl")),
    ]
    static func floats(_ v: Any?) -> [Float] { ((v as! [String: Any])["data"] as! [NSNumber]).map(\.floatValue) }
}

@Suite(.serialized) struct WorkbenchTests {
    static var cases: [String] {
        (WorkbenchFixture.inspect["embeddings"] as! [[String: Any]]).map { "embedding " + ($0["name"] as! String) }
            + (WorkbenchFixture.inspect["words"] as! [[String: Any]]).indices.map { "word \($0)" }
    }

    @Test("embedding inspect: norms, cosines to A1111's init vectors and the nearest tokens equal numpy's (SD 1.x, SDXL, a word)",
          arguments: cases)
    func inspect(_ id: String) throws {
        let entry: [String: Any]
        if id.hasPrefix("word ") {
            entry = (WorkbenchFixture.inspect["words"] as! [[String: Any]])[Int(id.dropFirst(5))!]
        } else {
            entry = (WorkbenchFixture.inspect["embeddings"] as! [[String: Any]]).first { "embedding " + ($0["name"] as! String) == id }!
        }
        let model = WorkbenchFixture.models[entry["model"] as! String]!
        let encoders = entry["encoders"] as! [[String: Any]]
        let vectors = try encoders.map { e -> Tensor in
            let d = e["vec"] as! [String: Any]
            return try Tensor(shape: d["shape"] as! [Int], data: WorkbenchFixture.floats(d))
        }
        let report = try EmbeddingInspection(vectors: vectors, model: model, tokenizer: try CLIPTokenizer.shipped(),
                                             initText: WorkbenchFixture.inspect["init_text"] as? String, top: 5)
        for (e, expected) in encoders.enumerated() {
            for (i, v) in (expected["vectors"] as! [[String: Any]]).enumerated() {
                let mine = report.encoders[e][i]
                #expect(abs(mine.norm - (v["norm"] as! Double)) <= 1e-6 * max(1, mine.norm), "\(id) \(e) \(i): norm")
                #expect(abs((mine.initCosine ?? 9) - (v["init_cosine"] as! Double)) <= 1e-6, "\(id) \(e) \(i): init cosine \(String(describing: mine.initCosine))")
                let nearest = v["nearest"] as! [[String: Any]]
                #expect(mine.nearest.map(\.id) == nearest.map { $0["id"] as! Int }, "\(id) \(e) \(i): nearest \(mine.nearest.map(\.id))")
                for (m, n) in zip(mine.nearest, nearest) { #expect(abs(m.cosine - (n["cosine"] as! Double)) <= 1e-6) }
            }
        }
    }

    @Test("the loss plot's moving average equals Python's over a 3,000-step loss.csv, its ticks are round numbers, and it draws")
    func lossPlot() throws {
        let plot = WorkbenchFixture.root["loss_plot"] as! [String: Any]
        let log = try TrainingLossLog(path: TestFixtures.repositoryRoot + "/" + (plot["csv"] as! String), resumingAt: .max)
        #expect(log.rows.count == 3000)
        let average = LossPlot.movingAverage(log.rows.map(\.loss), window: 100)
        let stored = plot["moving_average"] as! [String: Any]
        let steps = stored["stored_steps"] as! [Int], values = (stored["windows"] as! [String: Any])["100"] as! [Double]
        for (step, value) in zip(steps, values) {
            #expect(abs(average[step - 1] - value) <= 1e-12, "step \(step): \(average[step - 1]) vs \(value)")
        }
        let nice = plot["nice_numbers"] as! [String: Any]
        for axis in ["loss_axis", "step_axis"] {
            let a = nice[axis] as! [String: Any]
            let ticks = LossPlot.ticks(a["data_min"] as! Double, a["data_max"] as! Double, count: a["ntick"] as! Int)
            #expect(ticks == a["tick_values"] as! [Double], "\(axis): \(ticks)")
            let labels = ticks.map { LossPlot.tickText($0, spacing: ticks[1] - ticks[0]) }
            #expect(labels == a["labels"] as! [String], "\(axis): \(labels)")
        }
        let pixels = try LossPlot.draw(log.rows, title: "a 3,000-step run", saved: [500, 1000, 1500, 2000, 2500, 3000], font: try GridFont())
        #expect(pixels.count == LossPlot.width * LossPlot.height * 3 && Set(pixels).count > 8)
        try PNGFile.write(rgb: pixels, width: LossPlot.width, height: LossPlot.height, text: [], to: NSTemporaryDirectory() + "sdshell-loss-3000.png")
        // Ten steps draw too.
        _ = try LossPlot.draw(Array(log.rows.prefix(10)), title: "ten steps", font: try GridFont())
    }

    @Test("a NaN loss (injected) stops the training with the embedding as last saved, and says where")
    func nonFiniteLossStops() throws {
        let setup = try TrainerResumeTests.Setup()
        let path = try setup.start("nan")
        var options = TrainingOptions(steps: 10, learnRate: "0.005", seed: 3, saveEvery: 2)
        options.artifactsFolder = nil
        let trainer = try setup.trainer(path, options)
        trainer.nonFiniteLossAtStep = 5
        do {
            try trainer.run()
            Issue.record("the run went on past a NaN loss")
        } catch let error as TrainingError {
            #expect(error.description.contains("NaN at step 5") && error.description.contains("as saved at step 4"), "\(error)")
        }
        #expect(trainer.step == 4)
        let (vectors, step) = try TrainerResumeTests.storedVectors(path)
        #expect(step == 4 && vectors.allSatisfy(\.isFinite))
    }

    @Test("a training's preview PNG carries the embedding (A1111's card), read back with equal vectors")
    func previewCard() throws {
        let setup = try TrainerResumeTests.Setup()
        let path = try setup.start("card")
        var options = TrainingOptions(steps: 2, learnRate: "0.005", seed: 3, saveEvery: 2)
        options.artifactsFolder = setup.folder + "/card-artifacts"
        options.previewEvery = 2
        let trainer = try setup.trainer(path, options)
        try trainer.run()
        let card = try #require(try EmbeddingImage.read(options.artifactsFolder! + "/trainme-2.png"))
        let (stored, _) = try TrainerResumeTests.storedVectors(path)
        #expect(card.vectors.flatMap { $0 } == stored && card.step == 2 && card.name == "trainme")
        // The loss plot's norm panel reads the saved copies: here the one at step 2.
        let norms = TextualInversionTrainer.savedNorms(in: options.artifactsFolder!, name: "trainme")
        func norm(_ r: Int) -> Double {
            var sum = 0.0
            for v in stored[(r * 32)..<((r + 1) * 32)] { sum += Double(v) * Double(v) }
            return sum.squareRoot()
        }
        let expected = (norm(0) + norm(1)) / 2
        #expect(norms.count == 1 && norms[0].step == 2 && abs(norms[0].norm - expected) < 1e-12, "\(norms)")
    }

    @Test("A1111's PNG-alpha loss weight: the weight map, and the weighted loss and gradient, equal torch's (1e-5, 1e-4)")
    func alphaWeightedLoss() throws {
        let a = WorkbenchFixture.root["alpha_loss"] as! [String: Any]
        let model = WorkbenchFixture.models["Tests/Fixtures/tiny-sd"]!
        let folder = TestFixtures.repositoryRoot + "/Tests/TrainingTests/Fixtures/alpha"
        let dataset = try TrainingDataset(folder: folder, width: 16, height: 16, alphaWeights: true)
        let weights = dataset.samples[0].lossWeight(width: 8, height: 8, channels: 4)
        let expectedMap = WorkbenchFixture.floats(a["weight_map"])
        #expect(Array(weights.prefix(64)) == expectedMap, "weight map")
        let tokenizer = try CLIPTokenizer.shipped()
        var conditioner = Conditioner(model: model, tokenizer: tokenizer)
        conditioner.embeddings = EmbeddingDatabase(directories: [], width: 32, tokenizer: tokenizer)
        let objective = TextualInversionLoss(model: model, conditioner: conditioner)
        let emb = a["embedding"] as! [String: Any]
        let latent = try Tensor(shape: [1, 4, 8, 8], data: WorkbenchFixture.floats(a["latent"]))
        let noise = try Tensor(shape: [1, 4, 8, 8], data: WorkbenchFixture.floats(a["noise"]))
        for (key, w) in [("weighted", try Tensor(shape: [1, 4, 8, 8], data: weights)), ("unweighted", nil)] as [(String, Tensor?)] {
            let vectors = try Tensor(shape: [2, 32], data: WorkbenchFixture.floats(emb["vec"]), requiresGrad: true)
            let loss = try objective(vectors: vectors, name: emb["name"] as! String, prompts: [a["prompt"] as! String], latents: latent,
                                     noise: noise, timesteps: [Int(a["timestep"] as! Int)], weights: w)
            try loss.backward()
            let expected = a[key] as! [String: Any]
            let l = try loss.toArray()[0], want = (expected["loss"] as! NSNumber).floatValue
            #expect(abs(l - want) / want <= 1e-5, "\(key): loss \(l) vs \(want)")
            let error = TrainingTests.relativeL2(try vectors.grad!.toArray(), WorkbenchFixture.floats(expected["grad"]))
            #expect(error <= 1e-4, "\(key): gradient off by \(error)")
        }
    }
}

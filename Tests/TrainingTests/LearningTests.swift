import Foundation
import Testing
@testable import Training

/// Learning happens: on a fixed evaluation set of (picture, timestep, noise), training lowers the
/// objective.
@Suite(.serialized) struct LearningTests {
    @Test(.disabled("the random tiny model's noise prediction barely depends on the prompt: 0.4% lower after 60 steps at lr 0.02, 1.3% at lr 0.2; this waits for a model that responds to text (issue 10)"))
    func evaluationLossFallsOverTraining() throws {
        let setup = try TrainerResumeTests.Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        let path = try setup.start("learn")
        let steps = Int(ProcessInfo.processInfo.environment["SDSHELL_LEARNING_STEPS"] ?? "300")!
        let trainer = try setup.trainer(path, TrainingOptions(steps: steps, learnRate: ProcessInfo.processInfo.environment["SDSHELL_LEARNING_LR"] ?? "0.02", seed: 1, saveEvery: steps, latents: .deterministic))
        let evaluation = try EvaluationSet(trainer: trainer)
        let before = try evaluation.loss(vectors: trainer.vectors)
        let started = Date()
        try trainer.run()
        let after = try evaluation.loss(vectors: trainer.vectors)
        print("learning: evaluation loss \(before) -> \(after) (\(String(format: "%.1f", 100 * (1 - after / before)))% lower) after \(steps) steps in \(Date().timeIntervalSince(started)) s")
        #expect(after <= 0.8 * before)
    }
}

import Engine
import Foundation
import Testing
import TestSupport
@testable import Training

/// Batches, gradient accumulation and clipping.
@Suite(.serialized) struct BatchAndClippingTests {
    @Test func clippingEqualsTorch() throws {
        let fixture = TestFixtures.json("clipping", in: .module)
        let gradient = (fixture["gradient"] as! [Double]).map(Float.init)
        for case let c as [String: Any] in fixture["cases"] as! [Any] {
            let text = "\(c["mode"] as! String):\(c["limit"] as! Double)"
            let clipping = try #require(GradientClipping(text))
            var g = gradient
            clipping.apply(&g)
            let expected = (c["clipped"] as! [Double]).map(Float.init)
            let scale = expected.map(abs).max()!
            let error = zip(g, expected).map { abs($0 - $1) }.max()!
            #expect(error <= 1e-6 * scale, "\(text): \(error)")
        }
        #expect(GradientClipping("norm:0.5") == .norm(0.5))
        #expect(GradientClipping("value:x") == nil && GradientClipping("max:1") == nil && GradientClipping("norm:-1") == nil)
    }

    /// Two batches of one, accumulated, take the same step as one batch of two (the loss is a mean).
    @Test func accumulationEqualsALargerBatch() throws {
        let setup = try TrainerResumeTests.Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        let a = try setup.start("batch2")
        let b = try setup.start("accumulate2")
        let batch = try setup.trainer(a, TrainingOptions(steps: 1, learnRate: "0.01", seed: 5, saveEvery: 1, flip: true, batchSize: 2))
        try batch.run()
        let accumulated = try setup.trainer(b, TrainingOptions(steps: 1, learnRate: "0.01", seed: 5, saveEvery: 1, flip: true,
                                                               batchSize: 1, accumulate: 2))
        try accumulated.run()
        let (x, _) = try TrainerResumeTests.storedVectors(a), (y, _) = try TrainerResumeTests.storedVectors(b)
        let start = try TrainerResumeTests.storedVectors(try setup.start("untouched")).vectors
        #expect(x != start)
        let moved = zip(x, start).map { abs($0 - $1) }.max()!
        #expect(zip(x, y).map { abs($0 - $1) }.max()! <= 1e-4 * moved)
        #expect(abs(batch.lossLog.rows[0].loss - accumulated.lossLog.rows[0].loss) <= 1e-5 * batch.lossLog.rows[0].loss)
    }

    @Test func aBatchLargerThanTheFolderIsRefused() throws {
        let setup = try TrainerResumeTests.Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        #expect(throws: TrainingDatasetError.invalidOptions("batch 4 is larger than the 3 pictures in \(setup.dataset.folder)")) {
            try setup.trainer(try setup.start("big"), TrainingOptions(steps: 1, batchSize: 4))
        }
    }
}

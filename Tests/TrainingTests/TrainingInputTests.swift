import Engine
import Foundation
import Formats
import Testing
@testable import Training

/// Bad input to a training: clear errors naming the file.
@Suite(.serialized) struct TrainingInputTests {
    @Test func anEmbeddingOfAnotherWidthIsRefused() throws {
        let setup = try TrainerResumeTests.Setup()
        defer { try? FileManager.default.removeItem(atPath: setup.folder) }
        let path = setup.folder + "/sd2.pt"
        try EmbeddingFile.writeA1111(name: "sd2", vectors: try Tensor.zeros([2, 1024]), step: 0, checkpointHash: nil,
                                     checkpointName: nil, to: path)
        #expect(throws: FormatError.unsupported(file: path, reason: "its vectors are 1024 wide; the model's text encoder (tiny-sd) needs 32")) {
            try setup.trainer(path, TrainingOptions(steps: 1))
        }
        let xl = setup.folder + "/xl.safetensors"
        try EmbeddingFile.write(name: "xl", vectors: [("clip_l", try Tensor.zeros([2, 32])), ("clip_g", try Tensor.zeros([2, 64]))], step: 0,
                                checkpointHash: nil, checkpointName: nil, to: xl)
        #expect(throws: FormatError.unsupported(file: xl, reason: "it holds clip_g and clip_l vectors; SD 1.x models (tiny-sd) train clip")) {
            try setup.trainer(xl, TrainingOptions(steps: 1))
        }
    }
}

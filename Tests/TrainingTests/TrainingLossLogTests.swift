import Foundation
import Testing
@testable import Training

@Suite struct TrainingLossLogTests {
    /// Tests/Fixtures/generators/loss_log_reference.py: Python's csv.DictWriter with A1111's formatting of these rows.
    static let rows: [(Int, Int, Int, Double, Double)] = [
        (1, 0, 0, 0.123456789, 0.005), (2, 0, 1, 0.5, 0.005), (3, 1, 0, 1.25e-3, 1e-05), (4, 1, 1, 0.0, 1e-3),
        (5, 2, 0, 2.0, 5e-06), (6, 2, 1, 0.3333333333, 0.0001), (7, 3, 0, 1e-9, 1.0), (8, 3, 1, 0.1, 2.5e-07),
    ]
    static let python = "step,epoch,epoch_step,loss,learn_rate\r\n1,0,0,0.1234568,0.005\r\n2,0,1,0.5000000,0.005\r\n3,1,0,0.0012500,1e-05\r\n4,1,1,0.0000000,0.001\r\n5,2,0,2.0000000,5e-06\r\n6,2,1,0.3333333,0.0001\r\n7,3,0,0.0000000,1.0\r\n8,3,1,0.1000000,2.5e-07\r\n"

    static func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("loss-\(UUID()).csv").path
    }

    @Test func formatEqualsA1111CSV() throws {
        var log = try TrainingLossLog(path: Self.path())
        for (s, e, es, l, r) in Self.rows { log.append(.init(step: s, epoch: e, epochStep: es, loss: l, learnRate: r)) }
        #expect(log.text == Self.python)
        #expect(TrainingLossLog.Row(step: 7, stepsPerEpoch: 3, loss: 0, learnRate: 0).epoch == 2)
        #expect(TrainingLossLog.Row(step: 7, stepsPerEpoch: 3, loss: 0, learnRate: 0).epochStep == 0)
    }

    /// A resumed run keeps the rows up to the saved step and drops later ones, so each step is once.
    @Test func resumeKeepsEveryStepOnce() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.python.write(toFile: path, atomically: true, encoding: .utf8)
        var log = try TrainingLossLog(path: path, resumingAt: 5)
        #expect(log.rows.map(\.step) == [1, 2, 3, 4, 5])
        #expect(log.rows[2].learnRate == 1e-05 && log.rows[0].loss == 0.1234568)
        for step in 6...8 { log.append(.init(step: step, stepsPerEpoch: 2, loss: 0.25, learnRate: 0.005)) }
        try log.save()
        let reread = try TrainingLossLog(path: path, resumingAt: 100)
        #expect(reread.rows.map(\.step) == Array(1...8))
    }

    @Test func foreignFilesAreRefusedByName() throws {
        let path = Self.path()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "a,b\n1,2\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try TrainingLossLog(path: path) } throws: { "\($0)".contains(path) && "\($0)".contains("not a loss log") }
        try "step,epoch,epoch_step,loss,learn_rate\n1,0,0,x,0.1\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try TrainingLossLog(path: path) } throws: { "\($0)".contains("line 2") }
    }
}

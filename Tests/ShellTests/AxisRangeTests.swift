import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// A1111's X/Y/Z plot range syntax for numeric grid axes; the expected lists are what A1111's
/// `xyz_grid.py` makes of the same text (Python `range`, numpy `arange` / `linspace`).
@Suite struct AxisRangeTests {
    func ints(_ text: String) throws -> [Int64] {
        try AxisRange.values(text, integer: true).map { if case let .integer(i) = $0 { return i }; return -999 }
    }
    func reals(_ text: String) throws -> [Double] {
        try AxisRange.values(text, integer: false).map { if case let .real(x) = $0 { return x }; return .nan }
    }

    @Test func integerRanges() throws {
        #expect(try ints("1-5") == [1, 2, 3, 4, 5])
        #expect(try ints("1-5 (+2)") == [1, 3, 5])
        #expect(try ints("10-1 (-3)") == [10, 7, 4])          // range(10, 1 + 1, -3): A1111 adds 1 to the end whatever the sign
        #expect(try ints("1-10 [5]") == [1, 3, 5, 7, 10])     // linspace, truncated
        #expect(try ints("1, 3-4, 7") == [1, 3, 4, 7])
    }

    @Test func realRanges() throws {
        #expect(try reals("0.5-1.5 (+0.25)") == [0.5, 0.75, 1.0, 1.25, 1.5])
        #expect(try reals("5-9 [3]") == [5, 7, 9])
        #expect(try reals("1-3 (+0.7)") == [1.0, 1.7, 2.4, 3.0999999999999996])   // np.arange overshoots as numpy does
        #expect(try reals("7, 7.5") == [7, 7.5])
    }

    @Test func badTextIsRefusedWithTheReason() {
        #expect(throws: AxisRange.Failure.self) { try ints("1-5 (+0)") }
        #expect(throws: AxisRange.Failure.self) { try ints("1-100000") }
        #expect(throws: AxisRange.Failure.self) { try ints("1.5") }
        #expect(throws: AxisRange.Failure.self) { try reals("a-b") }
        #expect(throws: AxisRange.Failure.self) { try reals(" , ") }
    }
}

/// A grid axis given as A1111's range text expands, is journalled as the list it made, and replays.
@Suite(.serialized) struct GridRangeTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("grid-range") }

    @Test func aRangeAxisMakesItsCellsAndReplays() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "out")
        try shell.run(source: "grid \"a red circle\" seed=4 steps=\"2-4 (+2)\" cfg=\"5-9 [2]\"", file: "t")
        let gridLine = try #require(host.lines.first { $0.contains("/txt2img-grids/") })
        #expect(gridLine.hasSuffix("grid 2x2"))
        let journal = try #require(shell.journal.path)
        let text = try String(contentsOfFile: journal, encoding: .utf8)
        #expect(text.contains("grid \"a red circle\" steps=[2, 4] cfg=[5, 9] "), "\(text)")
        #expect(TinySession.error(shell, "grid \"x\" steps=\"2-x\"")?.contains("steps: \"2-x\" is not an integer or a range") == true)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
    }

    @Test func aSamplerByScheduleGridReplays() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "samplers")
        try shell.run(source: "grid \"a red circle\" seed=4 sampler=[\"Euler\", \"DPM++ 2M\", \"DPM++ 3M SDE\"] schedule=[\"karras\", \"SGM Uniform\"]", file: "t")
        let gridLine = try #require(host.lines.first { $0.contains("/txt2img-grids/") })
        #expect(gridLine.hasSuffix("grid 3x2"))
        let journal = try #require(shell.journal.path)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/replayed-samplers\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
    }
}

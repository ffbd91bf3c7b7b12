import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// A1111's "Sigma churn", "Sigma tmin" and "Sigma tmax" (s_churn, s_tmin, s_tmax), which came in
/// as rows of the generation parameter table: written to the infotext as A1111 writes them, read
/// back from pasted infotext, journalled, and usable as grid axes. (Their numbers against
/// k-diffusion are PipelineTests' churn runs.)
@Suite(.serialized) struct SamplerOptionTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("sampler-options") }

    func pixels(_ host: RecordingHost) throws -> [[UInt8]] { try InterpreterTests.imagePaths(host).map { try PNGFile.read($0).rgba } }

    @Test func churnIsRecordedAsA1111WritesItForTheSamplersThatTakeIt() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "infotext")
        try shell.run(source: """
        generate "a red circle" seed=4 sampler="Euler" s_churn=1.5 s_tmin=0.5 s_tmax=10 steps=4
        generate "a red circle" seed=4 sampler="Euler" steps=4
        generate "a red circle" seed=4 sampler="Euler a" steps=4 s_churn=1.5 s_tmin=0.5 s_tmax=10
        """, file: "t")
        let paths = InterpreterTests.imagePaths(host)
        let infotexts = try paths.map { try #require(PNGFile.read($0).text("parameters")) }
        #expect(infotexts[0].contains(", Sigma churn: 1.5, Sigma tmin: 0.5, Sigma tmax: 10, Version: "), "\(infotexts[0])")
        // Defaults are left out, and A1111 passes no churn to Euler a (not in its extra params).
        #expect(!infotexts[1].contains("Sigma") && !infotexts[2].contains("Sigma"))
        let images = try pixels(host)
        #expect(images[0] != images[1], "churn changes the image")
        #expect(images[1] != images[2])
        // Journalled when set, left out at their defaults.
        let journal = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("generate ") }
        #expect(journal[0].contains(" s_noise=1 s_churn=1.5 s_tmin=0.5 s_tmax=10 ") == false && journal[0].contains("eta=1 s_churn=1.5 s_tmin=0.5 s_tmax=10 s_noise=1 "),
                "\(journal[0])")
        #expect(!journal[1].contains("s_churn"))
        #expect(TinySession.error(shell, "set s_churn=-1")?.contains("s_churn must be between 0 and 100") == true)
    }

    @Test func pastedInfotextWithChurnMakesTheSameImage() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "pasted")
        try shell.run(source: "generate \"a red circle\" seed=4 sampler=\"Euler\" steps=4 size=64x64 s_churn=1.5 s_tmin=0.5 s_tmax=10", file: "t")
        let made = try #require(PNGFile.read(InterpreterTests.imagePaths(host)[0]).text("parameters"))
        try shell.run(source: made, file: "paste")
        // The same text as A1111 would show it, typed in by hand.
        try shell.run(source: "a red circle\nSteps: 4, Sampler: Euler, Schedule type: Uniform, CFG scale: 7, Seed: 4, Size: 64x64, "
                      + "Sigma churn: 1.5, Sigma tmin: 0.5, Sigma tmax: 10, RNG: NV", file: "typed")
        let images = try pixels(host)
        #expect(images.count == 3 && images[1] == images[0] && images[2] == images[0])
        #expect(!host.warnings.contains { $0.contains("not applied") }, "\(host.warnings)")
        let journal = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("generate ") }
        #expect(journal.count == 3 && journal[1].contains("s_churn=1.5 s_tmin=0.5 s_tmax=10"))
    }

    @Test func churnWorksAsAGridAxis() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "grid")
        try shell.run(source: """
        grid "a red circle" seed=4 steps=4 sampler="Euler" s_churn=[0, 1.5] s_tmax=[0, 10]
        generate "a red circle" seed=4 steps=4 sampler="Euler" s_churn=1.5 s_tmax=10
        """, file: "t")
        // The grid's four cells, then the generate's image, numbered in the order they were made.
        let cells = try FileManager.default.contentsOfDirectory(atPath: tiny.folder + "/grid/txt2img").filter { $0.hasSuffix(".png") }.sorted()
        let images = try cells.map { try PNGFile.read(tiny.folder + "/grid/txt2img/" + $0).rgba }
        try #require(images.count == 5, "\(cells)")
        #expect(images[3] == images[4], "the cell (s_churn 1.5, s_tmax 10) is that generate's image")
        #expect(images[0] != images[1])
        let axis = Interpreter.GridAxis(name: "s_churn", values: [.real(1.5)])
        #expect(Interpreter.label(axis, .real(1.5)) == "Sigma Churn: 1.5")
        #expect(Interpreter.label(Interpreter.GridAxis(name: "s_tmax", values: []), .real(10)) == "Sigma max: 10")
        let gridLine = try #require(host.lines.first { $0.contains("/txt2img-grids/") })
        #expect(gridLine.hasSuffix("grid 2x2"))
    }
}

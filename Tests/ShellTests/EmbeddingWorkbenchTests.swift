import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// The textual-inversion workbench in a session: `embedding combine` is the arithmetic on its
/// inputs exactly (SD 1.x and SDXL), `embedding inspect` reports, a training that goes NaN stops
/// with its last save, one that does not move says so, and a grid over a training's saved steps.
@Suite(.serialized) struct EmbeddingWorkbenchTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("workbench") }

    static func floats(_ path: String, _ key: String) throws -> [Float] {
        try ModelFile.open(path).tensors[key]!.materialize().to(.f32).toArray()
    }

    @Test func combineIsTheArithmeticExactly() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host)
        let e = tiny.folder + "/embeddings"
        try shell.run(source: """
            embedding new "style-a" init="a cat" vectors=2
            embedding new "style-b" init="red" vectors=2
            embedding combine "mix" "style-a * 0.5 + style-b"
            embedding combine "joined" "[style-a, 'red dog']"
            embedding combine "part" "style-a[1:2] - 'cat' / 4"
            """, file: "t")
        let a = try Self.floats(e + "/style-a.pt", "string_to_param.*"), b = try Self.floats(e + "/style-b.pt", "string_to_param.*")
        let mix = try Self.floats(e + "/mix.pt", "string_to_param.*")
        #expect(mix == zip(a, b).map { $0 * Float(0.5) + $1 })
        let joined = try Self.floats(e + "/joined.pt", "string_to_param.*")
        #expect(joined.count == a.count + 2 * 32 && Array(joined.prefix(a.count)) == a)
        // 'cat' is one token: the second vector of style-a less a quarter of cat's row (x / 4 in float32).
        try shell.run(source: "embedding combine \"catrow\" \"'cat'\"", file: "t")
        let cat = try Self.floats(e + "/catrow.pt", "string_to_param.*")
        let part = try Self.floats(e + "/part.pt", "string_to_param.*")
        #expect(cat.count == 32 && part == zip(a[32...], cat).map { $0 - $1 / Float(4) })
        #expect(host.lines.contains { $0.contains("mix.pt: 2 vectors") })
        // Errors name the problem and the session goes on.
        #expect(TinySession.error(shell, "embedding combine \"x\" \"style-a + nothing-here\"")?.contains("no embedding named \"nothing-here\"") == true)
        #expect(TinySession.error(shell, "embedding combine \"x\" \"style-a * style-b\"")?.contains("multiplied by a number") == true)
        #expect(TinySession.error(shell, "embedding combine \"x\" \"[style-a, 'a red dog'] + style-b\"")?.contains("cannot be added") == true)
        #expect(TinySession.error(shell, "embedding combine \"x\" \"style-a[5:9]\"")?.contains("empty") == true)
        #expect(TinySession.error(shell, "embedding combine \"x\" \"(style-a\"")?.contains("expected \")\"") == true)
        // Nesting is bounded before it can exhaust the stack.
        let deep = String(repeating: "(", count: 5_00) + "style-a" + String(repeating: ")", count: 500)
        #expect(TinySession.error(shell, "embedding combine \"x\" \"\(deep)\"")?.contains("nested more than 64") == true)
    }

    @Test func combineOnSDXLKeepsBothEncoders() throws {
        let host = RecordingHost()
        let shell = Interpreter(host: host, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try shell.run(source: """
            model "\(TestFixtures.fixturePath("tiny-sdxl"))"
            set embeddings_dir="\(tiny.folder)/xl" outdir="\(tiny.folder)/xlout"
            embedding new "one" init="a cat" vectors=2
            embedding combine "two" "one * 2"
            """, file: "t")
        for key in ["clip_l", "clip_g"] {
            let one = try Self.floats(tiny.folder + "/xl/one.safetensors", key), two = try Self.floats(tiny.folder + "/xl/two.safetensors", key)
            #expect(two == one.map { $0 * 2 }, "\(key)")
        }
    }

    @Test func inspectReports() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host)
        try shell.run(source: "embedding new \"probe\" init=\"a cat\" vectors=2\nembedding inspect \"probe\" init=\"a cat\" top=3\nembedding inspect \"cat\"", file: "t")
        #expect(host.lines.contains { $0.hasPrefix("probe: 2 vectors of width 32, step 0") }, "\(host.lines)")
        // Untrained, each vector is its init row: cosine 1, and its own token nearest.
        let vectorLines = host.lines.filter { $0.contains("vector 0:") || $0.contains("vector 1:") }
        #expect(vectorLines.count == 3 && vectorLines.prefix(2).allSatisfy { $0.contains("cosine to init 1.0000") }, "\(vectorLines)")
        #expect(host.lines.contains { $0.hasPrefix("\"cat\" (no embedding of that name") })
    }

    @Test func aTrainingThatGoesNowhereSaysSo() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host)
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "embedding new \"still\" init=\"a cat\" vectors=1\ntrain \"still\" data=\"\(pictures)\" steps=2 size=64 lr=\"0\"", file: "t")
        #expect(host.warnings.contains { $0.contains("did not move") }, "\(host.warnings)")
    }

    /// A training's progress line: the loss averaged, the vector norm, how far it moved, and the time to the next save.
    @Test func aTrainingsProgressLine() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host)
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "embedding new \"pl\" init=\"a cat\" vectors=1\ntrain \"pl\" data=\"\(pictures)\" steps=4 size=64 save_every=3", file: "t")
        let first = try #require(host.progressLabels.first)
        #expect(first.contains("loss ") && first.contains("(mean of the last 1)") && first.contains("vector norm") && first.contains("moved")
                && first.contains("next save in"), "\(host.progressLabels)")
    }

    @Test func aGridOverTheSavedSteps() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "steps")
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "embedding new \"toy\" init=\"a cat\" vectors=1\ntrain \"toy\" data=\"\(pictures)\" steps=4 size=64 save_every=2 seed=1", file: "t")
        try shell.run(source: "grid \"a toy\" embedding_steps=\"toy\" seed=3", file: "t")
        let cells = host.lines.filter { $0.contains(".png") }
        #expect(cells.count >= 1, "\(host.lines)")
        #expect(host.lines.contains { $0.contains("grid 3x1") }, "\(host.lines)")
        let journal = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8)
        #expect(journal.contains("sr=[\"toy\", \"toy-2\", \"toy-4\"]"), "\(journal)")
    }

    @Test func alphaWeightedTraining() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "alpha")
        let pictures = TestFixtures.repositoryRoot + "/Tests/TrainingTests/Fixtures/alpha"
        try shell.run(source: """
            embedding new "flat" init="a cat" vectors=1
            embedding new "weighed" init="a cat" vectors=1
            train "flat" data="\(pictures)" steps=2 size=16 seed=1
            train "weighed" data="\(pictures)" steps=2 size=16 seed=1 alpha_weight=true
            """, file: "t")
        let e = tiny.folder + "/embeddings"
        #expect(try Self.floats(e + "/flat.pt", "string_to_param.*") != Self.floats(e + "/weighed.pt", "string_to_param.*"))
    }

    /// `preview_from_settings=true`: previews are made with the session's settings, as A1111's
    /// "read parameters from txt2img" makes them.
    @Test func previewsFromTheSessionsSettings() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "preview")
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: """
            set steps=3 sampler="Euler" cfg=4 seed=5 negative="blurry"
            embedding new "pv" init="a cat" vectors=1
            train "pv" data="\(pictures)" steps=2 size=64 preview_every=2 preview="a pv" preview_from_settings=true
            """, file: "t")
        let png = try PNGFile.read(tiny.folder + "/preview/train/pv/pv-2.png")
        let info = Infotext.parse(try #require(png.text("parameters")))
        #expect(info.prompt == "a pv" && info.negativePrompt == "blurry" && info["Steps"] == "3" && info["Sampler"] == "Euler"
                && info["CFG scale"] == "4" && info["Seed"] == "5", "\(info.parameters)")
    }
}

import Engine
import Foundation
import Formats
import Models
import Testing
import TestSupport
@testable import Script

/// The interpreter on the tiny model: generation, settings, errors, interruption, journals and
/// replay.
@Suite(.serialized) struct InterpreterTests {
    let tiny: TinySession
    var folder: String { tiny.folder }
    var model: String { tiny.model }

    init() throws { tiny = try TinySession("interp") }

    /// A session on the tiny model at 64x64, 2 steps, writing under the test folder.
    func session(_ host: RecordingHost = RecordingHost(), outdir: String = "out") throws -> Interpreter {
        try tiny.start(host, outdir: outdir)
    }

    /// The image files the session reported writing, in order.
    static func imagePaths(_ host: RecordingHost) -> [String] {
        host.lines.filter { $0.contains("/txt2img/") }.map { $0.split(separator: " ").first { $0.hasSuffix(".png") }.map(String.init) ?? "" }
    }

    func error(_ interpreter: Interpreter, _ text: String) -> String? { TinySession.error(interpreter, text) }

    @Test func aModelLoadedWithSixteenBitWeightsMakesTheSameImagesAndIsJournalled() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: "generate \"a red circle\" seed=4 sampler=\"Euler\"", file: "t")
        try shell.run(source: "model \"\(model)\" precision=\"half\"", file: "t")
        #expect(host.lines.contains { $0.hasSuffix(", 16-bit weights") })
        #expect(shell.model?.precision == .half)
        try shell.run(source: "set size=64x64 steps=2\ngenerate \"a red circle\" seed=4 sampler=\"Euler\"", file: "t")
        let images = Self.imagePaths(host)
        #expect(images.count == 2)
        // The tiny model is stored in f16, so 16-bit weights compute exactly what f32 ones do.
        let pixels = try images.map { try PNGFile.read($0).rgba }
        #expect(pixels[0] == pixels[1])
        let journal = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8)
        #expect(journal.contains("model \"\(model)\" precision=\"half\""))
        #expect(error(shell, "model \"\(model)\" precision=\"hlaf\"")?.hasPrefix("t:1:") == true)
        #expect(error(shell, "model \"\(model)\" precision=\"hlaf\"")?.contains("did you mean `half`?") == true)
    }

    /// precision="bf16": said on loading (and, on a CPU without bf16 dot products, that the
    /// products stay f32), journalled, and named in the infotext ("Precision: bf16"), whose paste
    /// into a session at another precision warns that the image will differ.
    @Test func aModelLoadedAtBF16IsJournalledAndNamedInTheInfotext() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: "model \"\(model)\" precision=\"bf16\"", file: "t")
        #expect(shell.model?.precision == .bf16)
        #expect(host.lines.contains { $0.hasSuffix(", bf16 weights and products") })
        #expect(host.lines.contains { $0.contains("no bf16 dot products") } == !ProductPrecision.bf16Available)
        try shell.run(source: "set size=64x64 steps=2\ngenerate \"a red circle\" seed=4 sampler=\"Euler\"", file: "t")
        let path = try #require(Self.imagePaths(host).first)
        let text = try #require(try PNGFile.read(path).text("parameters"))
        #expect(Infotext.parse(text)["Precision"] == "bf16")
        let journal = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8)
        #expect(journal.contains("model \"\(model)\" precision=\"bf16\""))
        // Pasted into a session at another precision, the infotext warns that the image will differ.
        try shell.run(source: "model \"\(model)\" precision=\"half\"", file: "t")
        try shell.run(source: text, file: "t")
        #expect(host.warnings.contains { $0.contains("made with bf16 products") }, "\(host.warnings)")
    }

    @Test func vaeTilingChangesThePixelsIsJournalledAndReplays() throws {
        let host = RecordingHost()
        let shell = try session(host)
        // 64x64 is larger than the tiny model's native 16x16, so the decode is tiled.
        try shell.run(source: """
        generate "a red circle" seed=4 sampler="Euler"
        generate "a red circle" seed=4 sampler="Euler" vae_tiling=true
        """, file: "t")
        let images = Self.imagePaths(host)
        #expect(images.count == 2)
        let pixels = try images.map { try PNGFile.read($0).rgba }
        #expect(pixels[0] != pixels[1])
        let journal = try #require(shell.journal.path)
        let lines = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("generate ") }
        #expect(lines.count == 2 && !lines[0].contains("vae_tiling") && lines[1].contains("vae_tiling=true"))
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(folder)/replayed-tiling\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 2/2"), "\(replayHost.lines)")
        #expect(error(shell, "set vae_tiling=1")?.contains("vae_tiling must be true or false") == true)
    }

    @Test func sixImagesAndAGridReplayFromTheJournal() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: """
        for s in 1..6 { generate "a red circle on a blue background" seed=s }
        grid "a red circle on a blue background" seed=[7, 8, 9] cfg=[5, 7] sampler="Euler"
        """, file: "make.sdscript")
        #expect(host.lines.filter { $0.contains("/txt2img/") }.count == 6)
        let gridLine = try #require(host.lines.first { $0.contains("/txt2img-grids/") })
        #expect(gridLine.hasSuffix("grid 3x2"))
        let journal = try #require(shell.journal.path)
        let text = try String(contentsOfFile: journal, encoding: .utf8)
        #expect(text.components(separatedBy: "\n#> ").count - 1 == 7)
        #expect(text.contains("generate \"a red circle on a blue background\" sampler=\"Euler a\" schedule=\"automatic\" steps=2 cfg=7 seed=3 "))
        #expect(text.contains("grid \"a red circle on a blue background\" seed=[7, 8, 9] cfg=[5, 7] sampler=\"Euler\""))
        #expect(text.contains("model \"\(model)\""))

        // A fresh session replays the journal alone (it loads the model itself).
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(folder)/replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 7/7"), "\(replayHost.lines)")

        // A grid cell with a different seed is caught.
        // (Only the model and grid statements, to keep the test short.)
        let tampered = folder + "/tampered.sdscript"
        let kept = text.split(separator: "\n").filter { $0.hasPrefix("model ") || $0.hasPrefix("grid ") || $0.hasPrefix("#> ") && $0.contains("grids") }
        try kept.joined(separator: "\n").replacingOccurrences(of: "seed=[7, 8, 9]", with: "seed=[7, 8, 10]")
            .write(toFile: tampered, atomically: true, encoding: .utf8)
        let third = RecordingHost()
        // A difference fails the statement (a script exits non-zero) after the report.
        #expect(throws: ScriptError.self) {
            try Interpreter(host: third, hashes: HashCache(location: folder + "/hashes.json"))
                .run(source: "set outdir=\"\(folder)/tampered-out\"\nreplay \"\(tampered)\" verify=true", file: "t")
        }
        #expect(third.lines.contains("reproduced 0/1"), "\(third.lines)")
        #expect(third.lines.contains { $0.hasPrefix("differs: ") && $0.contains("txt2img-grids") })

        // The grid PNG replays to the same pixels from its own sdscript chunk.
        let gridPath = String(gridLine.split(separator: " ")[0])
        let fourth = RecordingHost()
        try Interpreter(host: fourth, hashes: HashCache(location: folder + "/hashes.json"))
            .run(source: "model \"\(model)\"\nset outdir=\"\(folder)/grid-replay\"\nreplay \"\(gridPath)\" verify=true", file: "t")
        #expect(fourth.lines.contains("reproduced 1/1"), "\(fourth.lines)")
    }

    @Test func replayingAPNGReproducesItsBytes() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: "generate \"a cat\" seed=42 sampler=\"DPM++ 2M\" negative=\"blurry\" rng=\"nv\"", file: "t")
        let original = String(try #require(host.lines.first).split(separator: " ")[0])
        let other = RecordingHost()
        let replayer = try session(other, outdir: "again")
        try replayer.run(source: "replay \"\(original)\" verify=true", file: "t")
        #expect(other.lines.contains("reproduced 1/1"))
        let copy = String(try #require(other.lines.first).split(separator: " ")[0])
        #expect(copy != original)
        #expect(FileManager.default.contents(atPath: copy) == FileManager.default.contents(atPath: original))
    }

    /// The journal names the embeddings a generation used, with their hashes.
    @Test func theJournalRecordsEmbeddingsAndTheirHashes() throws {
        try FileManager.default.createDirectory(atPath: folder + "/embeddings", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestFixtures.repositoryRoot + "/Tests/PromptingTests/Fixtures/embeddings/bluestyle.pt",
                                          toPath: folder + "/embeddings/bluestyle.pt")
        let shell = try session()
        try shell.run(source: "generate \"a photo, bluestyle\" seed=1", file: "t")
        let text = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8)
        #expect(text.range(of: #"\n# embeddings: bluestyle [0-9a-f]{12}\ngenerate "a photo, bluestyle" "#, options: .regularExpression) != nil, "\(text)")
    }

    @Test func pastedInfotextGeneratesWithItsSettings() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: """
        a blue square
        Negative prompt: red
        Steps: 3, Sampler: Euler, CFG scale: 6.5, Seed: 1234, Size: 64x64, Model hash: 45dee52b
        """, file: "paste")
        let path = String(try #require(host.lines.first).split(separator: " ")[0])
        #expect(path.hasSuffix("-1234.png"))
        let info = Infotext.parse(try #require(try PNGFile.read(path).text("parameters")))
        #expect(info.prompt == "a blue square" && info.negativePrompt == "red")
        #expect(info["Steps"] == "3" && info["Sampler"] == "Euler" && info["CFG scale"] == "6.5" && info["RNG"] == "NV")
        #expect(host.warnings.contains { $0.contains("model hash 45dee52b") })
        #expect(Interpreter.modelHashWarning(recorded: "45dee52b", loadedHash: "45dee52b6f", loadedName: "m") == nil)
        #expect(Interpreter.modelHashWarning(recorded: "45dee52b", loadedHash: "0123456789", loadedName: "m")
                == "the parameters were made with model hash 45dee52b; the loaded model m is 0123456789")
    }

    @Test func settingsPersistAndOptionsApplyToOneStatement() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: "set cfg=5 sampler=\"dpm++ 2m karras\"\nshow cfg\nshow sampler\nshow rng", file: "t")
        #expect(host.lines == ["cfg = 5", "sampler = \"DPM++ 2M Karras\"", "rng = \"nv\""])
        host.lines = []
        try shell.run(source: "generate \"x\" cfg=9 seed=5 count=2 batch=1\nshow cfg\nlet n = 2\nprint \"n={n + 1}\" [1, 2] 3x4 1.5", file: "t")
        #expect(host.lines.count == 4)
        #expect(host.lines[0].hasSuffix("-5.png  seed 5") && host.lines[1].hasSuffix("-6.png  seed 6"))
        #expect(host.lines[2] == "cfg = 5")
        #expect(host.lines[3] == "n=3 [1, 2] 3x4 1.5")
    }

    @Test func errorsNameTheProblemAndTheNearestName() throws {
        let shell = try session()
        #expect(error(shell, "genrate \"x\"") == "t:1:1: unknown command `genrate`; did you mean `generate`?")
        #expect(error(shell, "generate \"x\" smapler=\"Euler\"") == "t:1:14: `generate` has no option `smapler`; did you mean `sampler`?")
        #expect(error(shell, "set sampler=\"Eular a\"")?.hasPrefix("t:1:5: unknown sampler \"Eular a\"; did you mean `Euler a`?") == true)
        #expect(error(shell, "set steps=\"many\"") == "t:1:5: steps must be an integer, not a string")
        #expect(error(shell, "set size=65x64") == "t:1:5: size 65x64 must be positive multiples of 8")
        #expect(error(shell, "let seed = 1\nprint sede") == "t:2:7: unknown variable `sede`; did you mean `seed`?")
        #expect(error(shell, "show cfgg") == "t:1:1: unknown setting `cfgg`; did you mean `cfg`?")
        #expect(error(shell, "print 1 + \"a\" + [1]") == nil)
        #expect(error(shell, "print true + 1") == "t:1:12: cannot add a boolean and an integer")
        #expect(error(shell, "model \"/nonexistent/m.safetensors\"")?.hasPrefix("t:1:7: no checkpoint \"/nonexistent/m.safetensors\"") == true)
        #expect(error(shell, "info \"/nonexistent.png\"")?.hasPrefix("t:1:1: ") == true)
        #expect(error(shell, "grid \"x\" seed=1") == "t:1:1: `grid` needs at least one option given a list of values (an axis), e.g. seed=[1, 2, 3]")
        #expect(error(shell, "grid \"x\" sr=[\"dog\", \"cat\"] seed=[1]") == "t:1:10: Prompt S/R: \"dog\" does not occur in the prompt")
        #expect(error(shell, "for x in 3 { print x }") == "t:1:1: `for` needs a list or range, not an integer")
        #expect(error(Interpreter(host: RecordingHost()), "generate \"x\"") == "t:1:1: no model loaded (use `model \"PATH\"` first)")
        // A script stops at the first error.
        let host = RecordingHost()
        let s = try session(host)
        #expect(error(s, "print 1\nprint nope\nprint 2") != nil)
        #expect(host.lines == ["1"])
    }

    /// Ctrl-C during `train` stops after the current step, saves, and the same `train` resumes.
    @Test func ctrlCStopsATrainingWhichResumes() throws {
        let host = RecordingHost()
        let shell = try session(host)
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "embedding new \"toy\" init=\"a cat\" vectors=2", file: "t")
        let train = "train \"toy\" data=\"\(pictures)\" steps=6 size=64 save_every=100 seed=2"
        host.interruptAfter = 2
        #expect(throws: Interrupted.self) { try shell.run(source: train, file: "t") }
        #expect(host.warnings.last == "interrupted at step 2; saved \(folder)/embeddings/toy.pt (run the same `train` again to resume)")
        try shell.run(source: train, file: "t")
        #expect(host.lines.contains("training toy from step 2 to 6 on 3 pictures"))
        #expect(host.lines.last == "trained \(folder)/embeddings/toy.pt to step 6")
        #expect(FileManager.default.fileExists(atPath: "\(folder)/out/train/toy/toy-6.pt"))
    }

    /// The tiny model is stored in f16, so it loads at half precision by default (`precision="auto"`);
    /// `precision="full"` trains on an f32 copy of the session's model (the session's own model is
    /// released meanwhile and loaded back afterwards, still 16-bit); a bad value names the choices.
    @Test func trainingAtAnotherPrecisionLeavesTheSessionModelAsLoaded() throws {
        let host = RecordingHost()
        let shell = try session(host)
        #expect(shell.model?.precision == .half)
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "embedding new \"toy\" init=\"a cat\" vectors=2", file: "t")
        #expect(error(shell, "train \"toy\" data=\"\(pictures)\" steps=2 size=64 precision=\"hlaf\"")
                == "t:1:\(37 + pictures.count): precision must be auto, full, half or bf16 (got \"hlaf\"); did you mean `half`?")
        try shell.run(source: "train \"toy\" data=\"\(pictures)\" steps=2 size=64 seed=2 precision=\"full\"", file: "t")
        #expect(host.lines.contains("loaded tiny-sd with 32-bit weights for training"))
        #expect(host.lines.last == "trained \(folder)/embeddings/toy.pt to step 2")
        #expect(shell.model?.precision == .half)
        try shell.run(source: "generate \"toy\" seed=1", file: "t")
    }

    @Test func ctrlCStopsAGenerationAndTheSessionGoesOn() throws {
        let host = RecordingHost()
        let shell = try session(host)
        host.interruptAfter = 2
        #expect(throws: Interrupted.self) { try shell.run(source: "generate \"x\" seed=1 steps=20", file: "t") }
        #expect(host.warnings.contains("interrupted after step 2; nothing saved"))
        #expect(host.lines.isEmpty)
        try shell.run(source: "generate \"x\" seed=1", file: "t")
        #expect(host.lines.count == 1)
    }
}

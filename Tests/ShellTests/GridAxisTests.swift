import Engine
import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// A1111's Prompt order, Checkpoint name and hires-fix axes on `grid`.
@Suite(.serialized) struct GridAxisTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("grid-axes") }

    @Test func promptOrderIsA1111sApplyOrder() {
        // xyz_grid.apply_order: the words taken out where they first occur, put back in the order given.
        #expect(Interpreter.reordered("a red circle, a blue square, green", ["blue square", "red circle"])
                == "a blue square, a red circle, green")
        #expect(Interpreter.reordered("cat, dog, bird", ["bird", "cat", "dog"]) == "bird, cat, dog")
        #expect(Interpreter.reordered("cat, dog, bird", ["cat", "dog", "bird"]) == "cat, dog, bird")
        // itertools.permutations order
        #expect(Interpreter.permutations(["a", "b", "c"]) == [["a", "b", "c"], ["a", "c", "b"], ["b", "a", "c"], ["b", "c", "a"], ["c", "a", "b"], ["c", "b", "a"]])
    }

    /// The cells a grid saved in `outdir`, in the order they were made (their numbered names).
    func cells(_ outdir: String) throws -> [String] {
        let dir = tiny.folder + "/" + outdir + "/txt2img"
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".png") }.sorted().map { dir + "/" + $0 }
    }

    static func infotext(_ path: String) throws -> Infotext { Infotext.parse(try #require(PNGFile.read(path).text("parameters"))) }

    @Test func aPromptOrderAxisMakesEveryOrderAndReplays() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "order")
        try shell.run(source: "grid \"a red circle, blue square, on green\" seed=3 order=[\"red circle\", \"blue square\"]", file: "t")
        #expect(try cells("order").map { try Self.infotext($0).prompt } == ["a red circle, blue square, on green", "a blue square, red circle, on green"])
        #expect(host.lines.contains { $0.hasSuffix("grid 2x1") }, "\(host.lines)")
        #expect(TinySession.error(shell, "grid \"a cat\" order=[\"dog\"]")?.contains("Prompt order: \"dog\" does not occur in the prompt") == true)
        #expect(TinySession.error(shell, "grid \"a b c d e f\" order=[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]")?.contains("1 to 5 strings") == true)
        let journal = try #require(shell.journal.path)
        #expect(try String(contentsOfFile: journal, encoding: .utf8).contains("order=[\"red circle\", \"blue square\"]"))
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/order-replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
    }

    /// Denoising and Hires upscaler axes (A1111's "Denoising", "Hires upscaler"); the cells carry
    /// the hires keys, the grid replays; a wrong upscaler or strength is named.
    @Test func hiresAxesMakeEachCellAndReplay() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "hires")
        try shell.run(source: "grid \"a red circle\" seed=3 size=32x32 hires_scale=2 hires_upscaler=[\"Latent\", \"Latent (nearest)\"] hires_denoise=[0.3, 0.6]", file: "t")
        #expect(host.lines.contains { $0.hasSuffix("grid 2x2") }, "\(host.lines)")
        let files = try cells("hires")
        let infotexts = try files.map { try Self.infotext($0) }
        #expect(infotexts.map { $0["Hires upscaler"] ?? "" } == ["Latent", "Latent (nearest)", "Latent", "Latent (nearest)"])
        #expect(infotexts.map { $0["Denoising strength"] ?? "" } == ["0.3", "0.3", "0.6", "0.6"])
        #expect(infotexts.allSatisfy { $0["Hires upscale"] == "2" && $0["Size"] == "32x32" })
        #expect(try files.allSatisfy { let png = try PNGFile.read($0); return png.width == 64 && png.height == 64 })
        let journal = try #require(shell.journal.path)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/hires-replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
        let unknown = TinySession.error(shell, "generate \"x\" hires_scale=2 hires_upscaler=\"4x-UltraSharp\"")
        #expect(unknown?.contains("unknown upscaler \"4x-UltraSharp\"") == true && unknown?.contains("Latent (nearest-exact)") == true, "\(unknown ?? "")")
        #expect(TinySession.error(shell, "generate \"x\" hires_scale=2 hires_denoise=1.5")?.contains("between 0 and 1") == true)
    }

    /// The tiny model with its UNet weights scaled by 0.9: another checkpoint, another image.
    func otherCheckpoint() throws -> String {
        let folder = tiny.folder + "/tiny-b"
        try FileManager.default.copyItem(atPath: tiny.model, toPath: folder)
        let file = folder + "/unet/diffusion_pytorch_model.safetensors"
        let original = try SafeTensorsFile(path: file)
        var scaled: [String: Tensor] = [:]
        for (name, stored) in original.tensors {
            let t = try stored.materialize()
            scaled[name] = t.dtype == .f32 || t.dtype == .f16 ? try t.to(.f32) * 0.9 : t
        }
        try SafeTensorsFile.write(scaled, metadata: original.metadata, to: file)
        return folder
    }

    @Test func aCheckpointAxisUsesEachModelRestoresTheSessionsAndReplays() throws {
        let other = try otherCheckpoint()
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "models")
        // The checkpoint on X: its cells are made together (the session's model first, then one
        // load of the other), laid out in grid order; the session's model is kept, not reloaded.
        try shell.run(source: "grid \"a red circle\" model=[\"\(tiny.model)\", \"\(other)\"] seed=[3, 4]", file: "t")
        #expect(host.lines.filter { $0.contains("for the grid's Checkpoint name axis") } == ["loaded tiny-b for the grid's Checkpoint name axis"], "\(host.lines)")
        let cells = try cells("models")
        try #require(cells.count == 4)
        let models = try cells.map { try Self.infotext($0).parameters.first { $0.key == "Model" }?.value }
        #expect(models == ["tiny-sd", "tiny-sd", "tiny-b", "tiny-b"], "\(models)")
        #expect(try PNGFile.read(cells[0]).rgba != PNGFile.read(cells[2]).rgba, "the other checkpoint made the same image")
        #expect(shell.model?.path == tiny.model, "the session's model is back")
        #expect(TinySession.error(shell, "grid \"a\" model=[\"nope.safetensors\"]")?.contains("Checkpoint name: no checkpoint \"nope.safetensors\"") == true)
        let journal = try #require(shell.journal.path)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/models-replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
    }
}

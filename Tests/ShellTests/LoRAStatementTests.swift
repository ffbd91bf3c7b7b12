import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// LoRA networks in a session: `loras` lists the folder, a pasted A1111 infotext with two networks
/// makes A1111's image, the journal replays it, and bad input is named with the session going on
/// and the checkpoint's own images unchanged.
@Suite(.serialized) struct LoRAStatementTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("lora") }

    static let folder = TestFixtures.repositoryRoot + "/Tests/ModelsTests/Fixtures/loras"
    static func run(_ index: Int) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/lora_images.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (root["runs"] as! [[String: Any]])[index]
    }

    @Test func listing() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host)
        try shell.run(source: "set loras_dir=\"\(Self.folder)\"\nloras", file: "t")
        let line = try #require(host.lines.first { $0.hasPrefix("sd_locon ") })
        #expect(line.contains("LoCon") && line.contains("for SD 1.x") && line.contains("trained on tiny-sd") && line.contains("hash 49c2dce21e19"), "\(line)")
        #expect(host.lines.contains { $0.hasPrefix("xl_lora ") && $0.contains("for SDXL") })
        #expect(host.lines.contains { $0.hasPrefix("broken ") && $0.contains("not usable") && $0.contains("broken.safetensors") }, "\(host.lines)")
        #expect(shell.loraNames.contains("sd_lokr"))
    }

    /// A1111's infotext of a two-network image (make_lora_fixtures.py), pasted, makes its image; its journal replays.
    @Test func pastedInfotextWithTwoNetworks() throws {
        let run = try Self.run(2)
        let text = try #require((run["infotexts"] as? [String])?.first)
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "pasted")
        try shell.run(source: "set loras_dir=\"\(Self.folder)\"", file: "t")
        try shell.run(source: text, file: "t")
        let path = try #require(host.lines.first { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) })
        let png = try PNGFile.read(path)
        let image = try #require(run["image"] as? [String: Any])
        let encoded = try #require(image["uint8_base64"] as? String)
        let expected = [UInt8](try #require(Data(base64Encoded: encoded)))
        let mine = (0..<(png.width * png.height)).flatMap { png.rgba[($0 * 4)..<($0 * 4 + 3)] }
        let diffs = zip(mine, expected.prefix(mine.count)).map { abs(Int($0) - Int($1)) }
        #expect(png.width == 16 && (diffs.max() ?? 99) <= 2 && Double(diffs.filter { $0 == 0 }.count) >= 0.99 * Double(diffs.count),
                "largest difference \(diffs.max() ?? -1)")
        let info = Infotext.parse(try #require(png.text("parameters")))
        #expect(info["Lora hashes"] == "sd_lora: 90e787ad392a, sd_loha: 8efd969f91c4", "\(info.parameters)")
        let journal = try #require(shell.journal.path)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/replayed\" loras_dir=\"\(Self.folder)\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
    }

    @Test func badInputIsNamedAndTheCheckpointIsUnchanged() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "bad")
        try shell.run(source: "set loras_dir=\"\(Self.folder)\" seed=3", file: "t")
        try shell.run(source: "generate \"a circle\"", file: "t")
        let plain = try #require(host.lines.last { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) })
        let missing = TinySession.error(shell, "generate \"a circle <lora:nowhere:1> <lora:gone:2>\"")
        #expect(missing?.contains("\"nowhere\", \"gone\"") == true && missing?.contains("known: broken") == true, "\(missing ?? "")")
        let damaged = TinySession.error(shell, "generate \"a circle <lora:broken:1>\"")
        #expect(damaged?.contains("broken.safetensors") == true, "\(damaged ?? "")")
        let weight = TinySession.error(shell, "generate \"a circle <lora:sd_lora:heavy>\"")
        #expect(weight?.contains("\"heavy\" is not a weight") == true, "\(weight ?? "")")
        // Another family's network: left out with a warning, the image made without it.
        try shell.run(source: "generate \"a circle <lora:xl_lora:1>\"", file: "t")
        #expect(host.warnings.contains { $0.contains("xl_lora") && $0.contains("for SDXL") }, "\(host.warnings)")
        try shell.run(source: "generate \"a circle <lora:sd_lokr:0.7>\"", file: "t")
        try shell.run(source: "generate \"a circle\"", file: "t")
        let again = try #require(host.lines.last { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) })
        #expect(try PNGFile.read(again).rgba == PNGFile.read(plain).rgba, "the checkpoint's own image, bit for bit")
    }

    /// `train loras=...` trains on the checkpoint with the networks merged (other vectors than
    /// without them) and records them in the embedding; the session's checkpoint is untouched.
    @Test func trainingWithANetwork() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "train")
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "set loras_dir=\"\(Self.folder)\"", file: "t")
        try shell.run(source: "embedding new \"plain\" init=\"a cat\" vectors=2\nembedding new \"styled\" init=\"a cat\" vectors=2", file: "t")
        try shell.run(source: "train \"plain\" data=\"\(pictures)\" steps=2 size=64 seed=2", file: "t")
        try shell.run(source: "train \"styled\" data=\"\(pictures)\" steps=2 size=64 seed=2 loras=\"<lora:sd_lora:0.8>\"", file: "t")
        let plain = try ModelFile.open(tiny.folder + "/embeddings/plain.pt"), styled = try ModelFile.open(tiny.folder + "/embeddings/styled.pt")
        #expect(styled.metadata[EmbeddingFile.networksKey] == "sd_lora: 90e787ad392a (te 0.8, unet 0.8)", "\(styled.metadata)")
        #expect(plain.metadata[EmbeddingFile.networksKey] == nil)
        let vectors = { (f: ModelFile) in try f.tensors["string_to_param.*"]!.materialize().toArray() }
        #expect(try vectors(plain) != vectors(styled))
        #expect(shell.model?.networks.isEmpty == true)
        let bad = TinySession.error(shell, "train \"styled\" data=\"\(pictures)\" steps=3 size=64 loras=\"sd_lora\"")
        #expect(bad?.contains("loras must be tags") == true, "\(bad ?? "")")
    }
}

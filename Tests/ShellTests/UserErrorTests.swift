import Foundation
import Formats
import Prompting
import Testing
import TestSupport
@testable import Script

/// Errors a user meets (issue #26 items 27, 28): what is not applied is said, messages name what
/// is wrong once and plainly.
@Suite(.serialized) struct UserErrorTests {
    let tiny: TinySession
    var folder: String { tiny.folder }
    var model: String { tiny.model }

    init() throws { tiny = try TinySession("usererr") }

    func session(_ host: RecordingHost = RecordingHost()) throws -> Interpreter {
        try tiny.start(host)
    }

    func error(_ interpreter: Interpreter, _ text: String) -> String? { TinySession.error(interpreter, text) }

    // Item 27: pasted parameters sdshell does not apply, and extra-network tags it does not run, are named.
    @Test func whatIsNotAppliedIsSaid() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: """
        a red circle
        Steps: 2, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64, Model: tiny-sd, Face restoration: CodeFormer, Lora hashes: "x: 0123abcd", Version: v1.10.1
        """, file: "t")
        #expect(host.warnings.contains { $0.hasSuffix("warning: not applied (sdshell does not do these yet): Face restoration: CodeFormer") },
                "\(host.warnings)")
        try shell.run(source: "generate \"a red circle <hypernet:detail:0.8>\" seed=5 sampler=\"Euler\"\ngenerate \"a red circle\" seed=5 sampler=\"Euler\"", file: "t")
        #expect(host.warnings.contains { $0.hasSuffix("removed from the prompt as A1111 does: <hypernet:detail:0.8>") }, "\(host.warnings)")
        // As in A1111, the tag leaves the prompt before conditioning: the same pixels as without it.
        let images = host.lines.filter { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) }
        #expect(images.count == 3)
        #expect(try PNGFile.read(images[1]).rgba == PNGFile.read(images[2]).rgba)
        #expect(try PNGFile.read(images[1]).text("parameters")?.hasPrefix("a red circle <hypernet:detail:0.8>") == true)
        // A LoRA tag names a network: one that is not in loras_dir is an error naming it.
        #expect(error(shell, "generate \"a red circle <lora:detail:0.8>\" seed=5")?.contains("LoRA \"detail\" not in") == true)
    }

    /// A1111's `re_extra_net` (`<(\w+):([^>]+)>`), checked against Python's `re.sub` on the same text.
    @Test func extraNetworkTagsAsA1111() {
        let text = "a <lora:x:1> b <no> <:x> <a:> <b:c><hypernet:n:0.5>< lora:x>"
        #expect(ExtraNetworkTags.strip(text) == "a  b <no> <:x> <a:> < lora:x>")
        #expect(ExtraNetworkTags.find(text) == ["<lora:x:1>", "<b:c>", "<hypernet:n:0.5>"])
    }

    // Item 28: the small things.
    @Test func plainMessages() throws {
        let host = RecordingHost()
        let shell = try session(host)
        // A sampler of A1111's family that sdshell lacks (Forge's Heun++ 2) is named as such, not
        // "corrected" to Heun.
        let missing = error(shell, "set sampler=\"Heun++ 2\"")
        #expect(missing?.contains("the sampler \"Heun++ 2\" is not implemented in sdshell yet") == true && missing?.contains("did you mean") == false, "\(missing ?? "")")
        try shell.run(source: "show vae_tiling", file: "t")
        #expect(host.lines.last == "vae_tiling = false")
        // An output folder that is a file: the reason, not a Foundation error dump.
        let file = folder + "/a-file"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let message = error(shell, "generate \"x\" seed=1 outdir=\"\(file)\"")
        #expect(message == "t:1:1: \(file)/txt2img: cannot create the folder: \(file): a file is in the way, not a folder", "\(message ?? "no error")")
        // A file that is not an embedding is named once in the report.
        try "garbage".write(toFile: folder + "/embeddings/bad.pt", atomically: true, encoding: .utf8)
        host.warnings = []
        host.lines = []
        try shell.run(source: "embeddings", file: "t")
        #expect(host.warnings.contains("embedding file \(folder)/embeddings/bad.pt skipped: not a valid file: not a safetensors, torch.save or pickle file (unknown magic bytes)"),
                "\(host.warnings)")
        #expect(host.lines.contains("  \(folder)/embeddings/bad.pt: not a valid file: not a safetensors, torch.save or pickle file (unknown magic bytes)"),
                "\(host.lines)")
    }

    // Item 26: `tokens` shows the AND parts and the prompt-editing schedule as generation uses them.
    @Test func tokensShowsPartsAndSchedule() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: "set steps=10\ntokens \"a [cat:dog:0.5] AND a tree:0.5\"", file: "t")
        #expect(host.lines.first == "AND part 1 of 2, weight 1: a [cat:dog:0.5]", "\(host.lines)")
        #expect(host.lines.contains("steps 1-5 of 10: a cat"), "\(host.lines)")
        #expect(host.lines.contains("steps 6-10 of 10: a dog"), "\(host.lines)")
        #expect(host.lines.contains("AND part 2 of 2, weight 0.5:  a tree"), "\(host.lines)")
        #expect(!host.lines.contains { $0.contains("AND</w>") || $0.contains(" [</w>") || $0.contains(":</w>") })
        // A plain prompt is shown as before: its chunks only.
        host.lines = []
        try shell.run(source: "tokens \"a cat\"", file: "t")
        #expect(host.lines.first == "2 tokens in 1 chunk of 75")
        // An edit step from a file can be any number: no trap.
        try shell.run(source: "tokens \"[a:b:1e300] [c:d:-1e300]\"\ngenerate \"[a:b:1e300]\" seed=1 steps=1", file: "t")
    }
}

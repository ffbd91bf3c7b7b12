import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// The `img2img` statement: the picture it makes carries A1111's "Denoising strength", the journal
/// records the statement with its init picture and replays it bit for bit, and bad input is named.
@Suite(.serialized) struct ImageToImageStatementTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("img2img") }

    static let picture = TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/img2img/wide_20x12.png"

    @Test func img2imgIsJournalledAndReplays() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "i2i")
        try shell.run(source: "img2img \"a red circle\" init=\"\(Self.picture)\" denoise=0.6 resize_mode=1 seed=4 sampler=\"Euler\"", file: "t")
        let path = try #require(host.lines.first { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) })
        let png = try PNGFile.read(path)
        #expect(png.width == 64 && png.height == 64)
        let info = Infotext.parse(try #require(png.text("parameters")))
        #expect(info["Denoising strength"] == "0.6" && info["Seed"] == "4" && info["Hires upscale"] == nil)
        let journal = try #require(shell.journal.path)
        let text = try String(contentsOfFile: journal, encoding: .utf8)
        #expect(text.contains("img2img \"a red circle\" init=\"\(Self.picture)\" denoise=0.6 resize_mode=1"), "\(text)")
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/i2i-replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 1/1"), "\(replayHost.lines)")
        // A weaker one starts later in the 2-step schedule (int(0.3 * 2) = 0 against int(0.6 * 2) = 1): another picture.
        try shell.run(source: "img2img \"a red circle\" init=\"\(Self.picture)\" denoise=0.3 resize_mode=1 seed=4 sampler=\"Euler\"", file: "t")
        let second = try #require(host.lines.last { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) })
        #expect(try PNGFile.read(second).rgba != png.rgba)
    }

    @Test func badInputIsNamedAndTheSessionGoesOn() throws {
        let shell = try tiny.start()
        #expect(TinySession.error(shell, "img2img \"x\"")?.contains("needs init=") == true)
        let missing = TinySession.error(shell, "img2img \"x\" init=\"\(tiny.folder)/nope.png\"")
        #expect(missing?.contains("nope.png") == true, "\(missing ?? "")")
        #expect(TinySession.error(shell, "img2img \"x\" init=\"\(Self.picture)\" denoise=1.5")?.contains("between 0 and 1") == true)
        #expect(TinySession.error(shell, "img2img \"x\" init=\"\(Self.picture)\" resize_mode=7")?.contains("resize_mode must be 0") == true)
        #expect(TinySession.error(shell, "img2img \"x\" init=\"\(Self.picture)\" denoise=0.5 seed=1") == nil)
    }
}

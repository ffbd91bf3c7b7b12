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

    static let inpaintFolder = TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/inpaint"

    @Test func inpaintingIsJournalledAndReplays() throws {
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "inpaint")
        let square = Self.inpaintFolder + "/square_24x24.png", disc = Self.inpaintFolder + "/disc_24x24.png"
        try shell.run(source: """
            img2img "a red circle" init="\(square)" mask="\(disc)" inpainting_fill=0 mask_blur=2 inpaint_full_res=true inpaint_full_res_padding=4 seed=4 sampler="Euler"
            img2img "a red circle" init="\(square)" mask="\(disc)" inpainting_fill=2 seed=5 sampler="Euler" size=24x24
            """, file: "t")
        let paths = host.lines.filter { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) }
        #expect(paths.count == 2 && paths.allSatisfy { $0.contains("/img2img/") }, "\(paths)")
        // "Only masked" gives back a picture of the init picture's size, with the area outside the mask unchanged.
        let onlyMasked = try PNGFile.read(paths[0]), initial = try PNGFile.read(square)
        #expect(onlyMasked.width == 24 && onlyMasked.height == 24)
        #expect(onlyMasked.rgba[0..<4] == initial.rgba[0..<4], "the corner, far from the mask, is the init picture's")
        let info = Infotext.parse(try #require(onlyMasked.text("parameters")))
        #expect(info["Inpaint area"] == "Only masked" && info["Masked area padding"] == "4" && info["Masked content"] == "fill"
                && info["Mask blur"] == "2" && info["Denoising strength"] == "0.75", "\(info.parameters)")
        let journal = try #require(shell.journal.path)
        let text = try String(contentsOfFile: journal, encoding: .utf8)
        #expect(text.contains("mask=\"\(disc)\" mask_blur=2 inpainting_mask_invert=0 inpainting_fill=0 inpaint_full_res=true inpaint_full_res_padding=4"), "\(text)")
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: tiny.folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(tiny.folder)/inpaint-replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 2/2"), "\(replayHost.lines)")
    }

    @Test func badInpaintingInputIsNamedAndTheSessionGoesOn() throws {
        let shell = try tiny.start()
        let square = Self.inpaintFolder + "/square_24x24.png"
        let missing = TinySession.error(shell, "img2img \"x\" init=\"\(square)\" mask=\"\(tiny.folder)/no-mask.png\"")
        #expect(missing?.contains("no-mask.png") == true, "\(missing ?? "")")
        let notAPicture = tiny.folder + "/mask.png"
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: notAPicture))
        #expect(TinySession.error(shell, "img2img \"x\" init=\"\(square)\" mask=\"\(notAPicture)\"")?.contains("mask.png") == true)
        #expect(TinySession.error(shell, "img2img \"x\" init=\"\(square)\" mask_blur=3")?.contains("needs mask=") == true)
        let fill = TinySession.error(shell, "img2img \"x\" init=\"\(square)\" mask=\"\(Self.inpaintFolder)/disc_24x24.png\" inpainting_fill=5")
        #expect(fill?.contains("inpainting_fill must be 0 (fill)") == true, "\(fill ?? "")")
        // A pasted inpainting infotext names the pictures it needs and the options that give them.
        let pasted = TinySession.error(shell, """
            a red circle
            Steps: 2, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 24x24, Denoising strength: 0.6, Mask blur: 2, Inpaint area: Only masked, Masked area padding: 4, Masked content: fill
            """)
        #expect(pasted?.contains("needs its init picture and its mask") == true
                && pasted?.contains("denoise=0.6 mask=\"MASK.png\" mask_blur=2 inpainting_fill=0 inpaint_full_res=true inpaint_full_res_padding=4") == true, "\(pasted ?? "")")
        let plain = TinySession.error(shell, "a red circle\nSteps: 2, Sampler: Euler, Seed: 3, Size: 24x24, Denoising strength: 0.6")
        #expect(plain?.contains("an img2img infotext: it needs its init picture") == true, "\(plain ?? "")")
        // The session goes on.
        #expect(TinySession.error(shell, "img2img \"x\" init=\"\(square)\" mask=\"\(Self.inpaintFolder)/soft_16x16.png\" size=24x24 seed=1") == nil)
    }

    /// A1111's own hires-fix infotext (make_hires_fixtures.py), pasted, makes A1111's image.
    @Test func pastedHiresInfotextReproducesTheReference() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestFixtures.repositoryRoot + "/Tests/DiffusionTests/Fixtures/hires.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let run = try #require((root["runs"] as? [[String: Any]])?.first)
        let text = try #require((run["infotexts"] as? [String])?.first)
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "pasted")
        try shell.run(source: text, file: "t")
        let path = try #require(host.lines.first { $0.contains(".png") }.map { String($0.split(separator: " ")[0]) })
        let png = try PNGFile.read(path)
        let image = try #require(run["image"] as? [String: Any]), shape = try #require(image["shape"] as? [Int])
        let encoded = try #require(image["uint8_base64"] as? String)
        let expected = [UInt8](try #require(Data(base64Encoded: encoded)))
        #expect(png.width == shape[2] && png.height == shape[1])
        let mine = (0..<(png.width * png.height)).flatMap { png.rgba[($0 * 4)..<($0 * 4 + 3)] }
        let diffs = zip(mine, expected.prefix(mine.count)).map { abs(Int($0) - Int($1)) }
        #expect((diffs.max() ?? 99) <= 2 && Double(diffs.filter { $0 == 0 }.count) >= 0.99 * Double(diffs.count),
                "largest difference \(diffs.max() ?? -1), \(diffs.filter { $0 == 0 }.count) of \(diffs.count) equal: \(text)")
    }
}

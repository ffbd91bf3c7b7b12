import Foundation
import Formats
import Imaging
import Testing
import TestSupport
@testable import Script

/// Pictures in the terminal: each protocol's escape sequences decoded back into the picture
/// (kitty and iTerm2: the PNG file's bytes; sixel: its pixels within the 6x6x6 cube's
/// quantisation), the terminal detected from its environment, the progress line's ETA on a fake
/// clock, and the real prompt drawing with each protocol, and nothing when told not to or when
/// its output is not a terminal.
@Suite(.serialized) struct TerminalImageTests {
    /// The base64 payloads of kitty's APC sequences, joined.
    static func kittyPayload(_ text: String) -> Data? {
        var payload = ""
        var rest = Substring(text)
        while let start = rest.range(of: "\u{1b}_G") {
            guard let semicolon = rest[start.upperBound...].firstIndex(of: ";"), let end = rest[semicolon...].range(of: "\u{1b}\\") else { return nil }
            payload += rest[rest.index(after: semicolon)..<end.lowerBound]
            rest = rest[end.upperBound...]
        }
        return Data(base64Encoded: payload)
    }

    static func iterm2Payload(_ text: String) -> Data? {
        guard let start = text.range(of: "\u{1b}]1337;File="), let colon = text[start.upperBound...].firstIndex(of: ":"),
              let bell = text[colon...].firstIndex(of: "\u{07}") else { return nil }
        return Data(base64Encoded: String(text[text.index(after: colon)..<bell]))
    }

    /// A sixel sequence's pixels (8-bit RGB) and size.
    static func sixelPixels(_ text: String) -> (rgb: [UInt8], width: Int, height: Int)? {
        guard let start = text.range(of: "\u{1b}Pq"), let end = text[start.upperBound...].range(of: "\u{1b}\\") else { return nil }
        let body = Array(text[start.upperBound..<end.lowerBound])
        var i = 0
        func number() -> Int {
            var n = 0
            while i < body.count, let d = body[i].wholeNumberValue { n = n * 10 + d; i += 1 }
            return n
        }
        guard body.first == "\"" else { return nil }
        i = 1
        _ = number(); i += 1; _ = number(); i += 1
        let width = number(); i += 1
        let height = number()
        var palette: [Int: (UInt8, UInt8, UInt8)] = [:]
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        var colour = 0, x = 0, band = 0
        while i < body.count {
            let c = body[i]
            if c == "#" {
                i += 1
                let n = number()
                if i < body.count, body[i] == ";" {
                    i += 1; _ = number(); i += 1
                    let r = number(); i += 1
                    let g = number(); i += 1
                    let b = number()
                    func byte(_ p: Int) -> UInt8 { UInt8((p * 255 + 50) / 100) }
                    palette[n] = (byte(r), byte(g), byte(b))
                }
                colour = n
            } else if c == "$" { x = 0; i += 1 } else if c == "-" { x = 0; band += 1; i += 1 } else {
                var count = 1
                if c == "!" { i += 1; count = number() }
                let bits = Int(body[i].asciiValue!) - 63
                i += 1
                for _ in 0..<count {
                    for dy in 0..<6 where bits & (1 << dy) != 0 {
                        let y = band * 6 + dy
                        guard y < height, x < width, let p = palette[colour] else { continue }
                        rgb[(y * width + x) * 3] = p.0; rgb[(y * width + x) * 3 + 1] = p.1; rgb[(y * width + x) * 3 + 2] = p.2
                    }
                    x += 1
                }
            }
        }
        return (rgb, width, height)
    }

    static func picture() -> (rgb: [UInt8], width: Int, height: Int) {
        let (w, h) = (23, 17)
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { rgb[(y * w + x) * 3] = UInt8(x * 11); rgb[(y * w + x) * 3 + 1] = UInt8(y * 15); rgb[(y * w + x) * 3 + 2] = UInt8((x * y) % 256) } }
        return (rgb, w, h)
    }

    @Test func eachProtocolDecodesToThePicture() throws {
        let (rgb, w, h) = Self.picture()
        let png = Data(try PNGFile.encode(rgb: rgb, width: w, height: h, text: []))
        #expect(Self.kittyPayload(TerminalImage.kitty(png: png)) == png)
        #expect(Self.kittyPayload(TerminalImage.kitty(png: Data(repeating: 7, count: 10_000), columns: 30)) == Data(repeating: 7, count: 10_000))
        #expect(TerminalImage.kitty(png: png, columns: 30).hasPrefix("\u{1b}_Ga=T,f=100,c=30,m=0;"))
        #expect(Self.iterm2Payload(TerminalImage.iterm2(png: png, columns: 12)) == png)
        let decoded = try #require(Self.sixelPixels(TerminalImage.sixel(rgb: rgb, width: w, height: h)))
        #expect(decoded.width == w && decoded.height == h)
        let expected = (0..<(w * h)).flatMap { p -> [UInt8] in
            let q = TerminalImage.quantised(rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2])
            return [q.0, q.1, q.2]
        }
        #expect(decoded.rgb == expected)
        #expect(zip(decoded.rgb, rgb).allSatisfy { abs(Int($0) - Int($1)) <= 25 }, "within the cube's quantisation")
    }

    @Test func theTerminalIsDetectedFromItsEnvironment() {
        #expect(TerminalImage.detect(environment: ["KITTY_WINDOW_ID": "1"]) == .kitty)
        #expect(TerminalImage.detect(environment: ["TERM_PROGRAM": "WezTerm"]) == .kitty)
        #expect(TerminalImage.detect(environment: ["TERM_PROGRAM": "iTerm.app"]) == .iterm2)
        #expect(TerminalImage.detect(environment: ["TERM": "foot"]) == .sixel)
        #expect(TerminalImage.detect(environment: ["TERM": "xterm-256color"]) == nil)
        #expect(TerminalImage.detect(environment: ["KITTY_WINDOW_ID": "1", "TMUX": "/tmp/x"]) == nil)
        #expect(TerminalImage.detect(environment: ["KITTY_WINDOW_ID": "1", "TMUX": "/tmp/x"], tmuxPassthrough: true) == .kitty)
        #expect(TerminalImage.detect(environment: ["LC_TERMINAL": "iTerm2", "TMUX": "/tmp/x", "TERM_PROGRAM": "tmux"], tmuxPassthrough: true) == .iterm2)
        #expect(TerminalImage.detect(environment: ["KITTY_WINDOW_ID": "1", "STY": "1.pts"], tmuxPassthrough: true) == nil)
    }

    /// A 20-step run at 1.5 s a step: after the first quarter the ETA is the time left; to a file
    /// the lines come at each tenth and carry no escape sequence.
    @Test func progressHasAnETAAndPlainLinesInFiles() {
        var meter = ProgressMeter(inPlace: true)
        var eta: Double?
        for step in 1...20 {
            let now = 1.5 * Double(step)
            _ = meter.update(step: step, total: 20, label: "Euler a", now: now)
            if step == 5 { eta = meter.remaining(step: step, total: 20, now: now) }
        }
        let actual = 1.5 * 15
        #expect(abs((eta ?? 0) - actual) <= 0.2 * actual, "ETA \(eta ?? -1) against \(actual)")
        var plain = ProgressMeter(inPlace: false)
        let lines = (1...20).compactMap { plain.update(step: $0, total: 20, label: "x", now: Double($0)) }
        #expect(lines.count == 11 && lines.allSatisfy { !$0.contains("\u{1b}") && !$0.contains("\r") }, "\(lines)")
        #expect(lines.last?.hasPrefix("step 20/20") == true)
    }

    /// The real prompt in a pseudo-terminal, with the tiny model loaded, asked to generate
    /// `out/txt2img/00000-2.png` in a new folder with `inline` set to `mode`.
    /// `environment` gives variables for the prompt from the folder (made before it is called).
    static func promptGenerating(inline mode: String, environment: (String) throws -> [String: String] = { _ in [:] }) throws -> (PseudoTerminal, String) {
        let folder = NSTemporaryDirectory() + "sdshell-inline-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/embeddings", withIntermediateDirectories: true)
        let t = try PromptSession.start(in: folder, environment: try environment(folder))
        _ = try t.waitFor("sd> ")
        t.send("model \"\(TestFixtures.tinyModelPath)\"\r")
        _ = try t.waitFor("loaded tiny-sd")
        t.send("generate \"x\" size=64x64 steps=1 seed=2 inline=\"\(mode)\" outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/embeddings\"\r")
        return (t, folder)
    }

    /// The prompt draws a generated image with each protocol named by `inline`, and nothing when it is off.
    @Test(arguments: ["kitty", "iterm2", "sixel", "off"])
    func thePromptDrawsWith(_ mode: String) throws {
        let (t, folder) = try Self.promptGenerating(inline: mode)
        _ = try t.waitFor("-2.png  seed 2")
        try t.waitUntilOutputEnds(with: "sd> ")   // the statement, its picture included, is done
        let raw = t.rawOutput
        let png = try Data(contentsOf: URL(fileURLWithPath: folder + "/out/txt2img/00000-2.png"))
        switch mode {
        case "kitty": #expect(Self.kittyPayload(raw) == png)
        case "iterm2": #expect(Self.iterm2Payload(raw) == png)
        case "sixel":
            if Self.sixelPixels(raw) == nil, let r = raw.range(of: "Pq") {
                Issue.record("sixel not decoded: \(raw[r.lowerBound...].prefix(80).debugDescription)")
            }
            let pixels = try #require(Self.sixelPixels(raw))
            let file = try RGBImage.read(folder + "/out/txt2img/00000-2.png")
            #expect(pixels.width == 64 && pixels.rgb == (0..<(64 * 64)).flatMap { p -> [UInt8] in
                let q = TerminalImage.quantised(file.rgb[p * 3], file.rgb[p * 3 + 1], file.rgb[p * 3 + 2])
                return [q.0, q.1, q.2]
            })
        default:
            #expect(!raw.contains("\u{1b}_G") && !raw.contains("\u{1b}]1337") && !raw.contains("\u{1b}Pq"))
        }
        try PromptSession.quit(t)
    }

    /// What tmux hands the outer terminal: each `ESC Ptmux; … ESC \` wrapper's content, ESCs undoubled.
    static func tmuxUnwrapped(_ text: String) -> String {
        var out = "", i = text.startIndex
        let opener = "\u{1b}Ptmux;"
        while let start = text[i...].range(of: opener) {
            var j = start.upperBound
            while j < text.endIndex {
                let c = text[j], next = text.index(after: j)
                if c == "\u{1b}", next < text.endIndex, text[next] == "\u{1b}" { out.append("\u{1b}"); j = text.index(after: next); continue }
                if c == "\u{1b}", next < text.endIndex, text[next] == "\\" { j = text.index(after: next); break }
                out.append(c)
                j = next
            }
            i = j
        }
        return out
    }

    @Test func tmuxPassthroughWrapsEachSequence() {
        let png = Data((0..<9000).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        let kitty = TerminalImage.kitty(png: png)
        let wrapped = TerminalImage.tmuxPassthrough(kitty)
        #expect(wrapped.components(separatedBy: "\u{1b}Ptmux;").count - 1 == kitty.components(separatedBy: "\u{1b}_G").count - 1)
        #expect(Self.tmuxUnwrapped(wrapped) == kitty)
        let iterm = TerminalImage.iterm2(png: png)
        #expect(Self.tmuxUnwrapped(TerminalImage.tmuxPassthrough(iterm)) == iterm)
    }

    /// Inside tmux (a stand-in `tmux` on PATH answers its allow-passthrough option): with
    /// passthrough on, the picture reaches the outer kitty terminal wrapped; with it off, nothing
    /// is drawn.
    @Test(arguments: ["on", "off"])
    func insideTmux(_ passthrough: String) throws {
        let (t, folder) = try Self.promptGenerating(inline: "auto") { folder in
            try FileManager.default.createDirectory(atPath: folder + "/bin", withIntermediateDirectories: true)
            try "#!/bin/sh\necho \(passthrough)\n".write(toFile: folder + "/bin/tmux", atomically: true, encoding: .utf8)
            chmod(folder + "/bin/tmux", 0o755)
            return ["TMUX": "/tmp/tmux-0/default,1,0", "TERM": "tmux-256color", "TERM_PROGRAM": "tmux", "KITTY_WINDOW_ID": "1",
                    "PATH": folder + "/bin:/usr/bin:/bin"]
        }
        _ = try t.waitFor("-2.png  seed 2")
        try t.waitUntilOutputEnds(with: "sd> ")
        let raw = t.rawOutput
        let png = try Data(contentsOf: URL(fileURLWithPath: folder + "/out/txt2img/00000-2.png"))
        if passthrough == "on" {
            #expect(raw.contains("\u{1b}Ptmux;\u{1b}\u{1b}_G"))
            #expect(Self.kittyPayload(Self.tmuxUnwrapped(raw)) == png)
        } else {
            #expect(!raw.contains("\u{1b}_G") && !raw.contains("Ptmux") && !raw.contains(TerminalImage.capabilityQuery))
        }
        try PromptSession.quit(t)
    }

    @Test func theTerminalsAnswerNamesItsProtocol() {
        #expect(TerminalImage.kind(fromReply: Array("\u{1b}_Gi=31;OK\u{1b}\\\u{1b}[?62;22c".utf8)) == .kitty)
        #expect(TerminalImage.kind(fromReply: Array("\u{1b}[?63;1;2;4;6;9;15;22c".utf8)) == .sixel)
        #expect(TerminalImage.kind(fromReply: Array("\u{1b}[?62;22c".utf8)) == nil)
        #expect(TerminalImage.kind(fromReply: Array("\u{1b}[?64;2;6;22c".utf8)) == nil, "attribute 4 only, not 64's digits")
        #expect(!TerminalImage.replyIsComplete(Array("\u{1b}_Gi=31;OK\u{1b}\\\u{1b}[?62;4".utf8)))
        #expect(TerminalImage.replyIsComplete(Array("\u{1b}[?1;2c".utf8)))
    }

    /// `inline="auto"` on a terminal its environment does not name (TERM=xterm): the prompt asks
    /// the terminal (kitty's graphics query, then DA1) and draws with what the answer shows, and
    /// nothing when the answer shows no image protocol.
    @Test(arguments: [("\u{1b}_Gi=31;OK\u{1b}\\\u{1b}[?62;22c", "kitty"), ("\u{1b}[?62;4;22c", "sixel"), ("\u{1b}[?62;22c", "none")])
    func thePromptAsksTheTerminal(_ answer: String, _ expected: String) throws {
        let (t, folder) = try Self.promptGenerating(inline: "auto")
        try t.waitForRaw(TerminalImage.capabilityQuery)
        t.send(answer)
        try t.waitUntilOutputEnds(with: "sd> ")
        let raw = t.rawOutput
        let png = try Data(contentsOf: URL(fileURLWithPath: folder + "/out/txt2img/00000-2.png"))
        let drawn = raw.components(separatedBy: TerminalImage.capabilityQuery).dropFirst().joined()
        switch expected {
        case "kitty": #expect(Self.kittyPayload(drawn) == png)
        case "sixel": #expect(Self.sixelPixels(drawn)?.width == 64)
        default: #expect(!drawn.contains("\u{1b}_G") && !drawn.contains("\u{1b}]1337") && !drawn.contains("\u{1b}Pq"))
        }
        #expect(!t.output.contains("?62;"), "the answer is not echoed")
        try PromptSession.quit(t)
    }

    /// A script whose output goes to a file: plain progress lines, no escape sequence, no image.
    @Test func aScriptRunToAFileWritesPlainLines() throws {
        guard let binary = SDShellBinary.path else { Issue.record("no sdshell binary"); return }
        let folder = NSTemporaryDirectory() + "sdshell-plain-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-e", "model \"\(TestFixtures.tinyModelPath)\"\ngenerate \"x\" size=64x64 steps=20 seed=2 inline=\"kitty\" outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/e\""]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let all = String(decoding: stdout + stderr, as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(all)")
        #expect(!all.contains("\u{1b}"), "no escape sequence when the output is not a terminal")
        #expect(all.contains("step 20/20") && all.contains("step 10/20"), "\(all)")
    }
}

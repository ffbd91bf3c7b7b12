import Foundation
import Formats
import Testing
import TestSupport

/// Issue #26 item 20: text from files reaches the terminal with its control characters made
/// visible, so a downloaded PNG cannot retitle the window, clear the screen or write the
/// clipboard (OSC 52) when its parameters are shown.
@Suite struct TerminalOutputTests {
    @Test func controlCharactersFromAFileAreEscaped() throws {
        let folder = NSTemporaryDirectory() + "sdshell-escape-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let png = folder + "/osc.png"
        let hostile = "a cat\u{1b}]52;c;ZXZpbA==\u{07}\u{1b}[2J\u{9b}31m\nSteps: 2, Seed: 1, Size: 64x64"
        try PNGFile.write(rgb: [UInt8](repeating: 0, count: 8 * 8 * 3), width: 8, height: 8, text: [("parameters", hostile)], to: png)
        let (status, out, err) = try CommandLineTests().run(["-e", "info \"\(png)\""])
        #expect(status == 0, "\(err)")
        #expect(!out.contains("\u{1b}") && !out.contains("\u{07}") && !out.contains("\u{9b}"))
        #expect(out.contains("a cat\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\u{9b}31m\nSteps: 2"), "\(out)")
    }
}

/// Issue #26 item 4: SIGTERM and SIGHUP stop a long statement as Ctrl-C does, and the journal
/// then names exactly the images that were kept.
@Suite(.serialized) struct TerminationSignalTests {
    @Test(arguments: [SIGTERM, SIGHUP, SIGINT]) func aSignalKeepsTheJournalWhole(_ signal: Int32) throws {
        let folder = NSTemporaryDirectory() + "sdshell-signal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/e", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let binary = try #require(SDShellBinary.path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-e", "model \"\(TestFixtures.tinyModelPath)\"",
                             "-e", "generate \"x\" size=64x64 steps=2 seed=4 count=200 outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/e\""]
        process.standardOutput = FileHandle.nullDevice
        // What the shell says, kept for the failure message (a crash names itself there).
        FileManager.default.createFile(atPath: folder + "/stderr", contents: nil)
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/stderr"))
        defer { try? errors.close() }
        process.standardError = errors
        try process.run()
        let images = folder + "/out/txt2img"
        // The wait ends at the third finished image (a picture being written is an empty claim of
        // its name and a temporary file until the finished file is renamed over the claim); its
        // bound only stops a hang (a loaded 2-core CI run once took over 60 s to make three 64x64
        // images while the suite's heavy tests ran).
        let deadline = Date().addingTimeInterval(300)
        func finished() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: images)) ?? []).filter {
                $0.hasSuffix(".png") && ((try? FileManager.default.attributesOfItem(atPath: images + "/" + $0)[.size] as? Int) ?? 0) > 0
            }.count
        }
        while finished() < 3, Date() < deadline { usleep(20_000) }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        // (Seen once in a loaded full-suite run: killed by signal 11. The reason tells a crash from an exit.)
        let said = ((try? String(contentsOfFile: folder + "/stderr", encoding: .utf8)) ?? "").split(separator: "\n").suffix(8)
        #expect(process.terminationStatus == 128 + signal && process.terminationReason == .exit,
                "status \(process.terminationStatus), \(process.terminationReason == .uncaughtSignal ? "killed by that signal" : "exited"); stderr ends: \(said.joined(separator: " | "))")
        let kept = try FileManager.default.contentsOfDirectory(atPath: images).filter { $0.hasSuffix(".png") }.sorted()
        #expect(kept.count >= 3 && kept.count < 200)
        let sessions = try FileManager.default.contentsOfDirectory(atPath: folder + "/out/sessions")
        let journal = try String(contentsOfFile: folder + "/out/sessions/" + sessions[0], encoding: .utf8)
        let named = journal.split(separator: "\n").filter { $0.hasPrefix("#> ") }.map { ($0.split(separator: " ")[1] as NSString).lastPathComponent }
        #expect(named.sorted() == kept)
    }
}

import Foundation
import Formats
import Testing

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

import Foundation
import Testing

/// Issue #26 on the real `sdshell` binary: Ctrl-C stops a script loop at the prompt and under
/// `-e`; an unknown word at the prompt is an error at once (the next line is not swallowed);
/// A1111 parameters pasted line by line are still recognised.
@Suite(.serialized)
struct PromptLimitsTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "sdshell-prompt-limits-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func start(_ arguments: [String] = []) throws -> PseudoTerminal { try PromptSession.start(in: folder, arguments: arguments) }

    func quit(_ terminal: PseudoTerminal) throws { try PromptSession.quit(terminal) }

    @Test func ctrlCStopsAScriptLoopAtThePrompt() throws {
        let t = try start()
        _ = try t.waitFor("sd> ")
        t.send("for i in 1..999999 { for j in 1..999999 { let x = j } }\r")
        usleep(300_000)
        t.send("\u{03}")
        // The inner loop (1:22) or, between its runs, the outer one (1:1) notices it.
        _ = try t.waitFor(": interrupted")
        try t.waitUntilOutputEnds(with: "sd> ")
        t.send("print \"still here\"\r")
        _ = try t.waitFor("still here")
        try quit(t)
    }

    @Test func ctrlCStopsAScriptLoopRunWithE() throws {
        let t = try start(["-e", "print \"started\"; for i in 1..999999 { for j in 1..999999 { let x = j } }"])
        _ = try t.waitFor("started")
        usleep(300_000)
        t.send("\u{03}")
        _ = try t.waitFor("interrupted")
        #expect(try t.waitForExit() == 130)
    }

    @Test func anUnknownWordAtThePromptIsAnErrorAtOnce() throws {
        let t = try start()
        _ = try t.waitFor("sd> ")
        t.send("clear\r")
        let out = try t.waitFor("unknown command `clear`; `help` lists the commands")
        #expect(!out.contains("..> "))
        try t.waitUntilOutputEnds(with: "sd> ")
        t.send("print 40 + 2\r")
        _ = try t.waitFor("42")
        try quit(t)
    }

    @Test func parametersPastedLineByLineAreOneStatement() throws {
        let t = try start()
        _ = try t.waitFor("sd> ")
        t.send("portrait of a cat, (masterpiece:1.2)\r")
        try t.waitUntilOutputEnds(with: "..> ")
        t.send("Negative prompt: lowres\r")
        try t.waitUntilOutputEnds(with: "..> ")
        t.send("Steps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64\r")
        // Read as a generation (which needs a model), not as commands.
        let out = try t.waitFor("sd> ")
        #expect(out.contains("model"), "\(out)")
        #expect(!out.contains("unknown command"), "\(out)")
        try quit(t)
    }
}

import Foundation
import Testing
import TestSupport

/// The interactive prompt on a pseudo-terminal, on the real `sdshell` binary: history after a
/// restart, Tab completion of a command, a sampler name and an embedding name, Ctrl-C during a
/// long generation, Ctrl-D.
@Suite(.serialized)
struct REPLTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "sdshell-repl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/embeddings", withIntermediateDirectories: true)
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../PromptingTests/Fixtures/embeddings/bluestyle.pt").standardizedFileURL.path
        try FileManager.default.copyItem(atPath: fixture, toPath: folder + "/embeddings/bluestyle.pt")
    }

    /// `sdshell` with no arguments: the prompt, with history and data under the test folder.
    func start(_ extra: [String: String] = [:]) throws -> PseudoTerminal {
        let terminal = try PromptSession.start(in: folder, environment: extra)
        _ = try terminal.waitFor("sd> ")
        return terminal
    }

    /// Types `model "<tiny model>"` and waits until it is loaded.
    func loadTinyModel(_ terminal: PseudoTerminal) throws {
        terminal.send("model \"\(TestFixtures.tinyModelPath)\"\r")
        _ = try terminal.waitFor("loaded tiny-sd")
    }

    func quit(_ terminal: PseudoTerminal) throws { try PromptSession.quit(terminal) }

    @Test func historyIsRecalledAfterARestart() throws {
        let first = try start()
        first.send("print \"remember \" + 42\r")
        _ = try first.waitFor("remember 42")
        try quit(first)
        #expect(try String(contentsOfFile: folder + "/data/sdshell/history", encoding: .utf8).contains("remember"))
        let second = try start()
        second.send("\u{1b}[A\r")
        let out = try second.waitFor("remember 42")
        #expect(out.contains("print \"remember \" + 42"))
        try quit(second)
    }

    @Test func tabCompletesCommandsSamplersAndEmbeddings() throws {
        let t = try start()
        try loadTinyModel(t)
        t.send("set embeddings_dir=\"\(folder)/embeddings\"\r")
        _ = try t.waitFor("sd> ")
        // A command name, then the rest of the line typed after it.
        t.send("sh\t")
        _ = try t.waitFor("show ")
        t.send("steps\r")
        _ = try t.waitFor("steps = 20")
        // A sampler name inside its string.
        t.send("set sampler=\"Heu\t\r")
        t.send("show sampler\r")
        _ = try t.waitFor("sampler = \"Heun\"")
        // An embedding name inside a prompt.
        t.send("tokens \"a photo, bluest\t\"\r")
        _ = try t.waitFor("embedding bluestyle")
        try quit(t)
    }

    /// An error at the prompt never ends the session; `inline=true` sends the image with the
    /// kitty graphics protocol when the terminal is kitty.
    @Test func errorsKeepTheSessionAndImagesShowInline() throws {
        let t = try start(["KITTY_WINDOW_ID": "1"])
        t.send("genrate \"x\"\r")
        _ = try t.waitFor("did you mean `generate`?")
        try loadTinyModel(t)
        t.send("generate \"x\" size=64x64 steps=1 seed=2 inline=true outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/embeddings\"\r")
        _ = try t.waitFor("-2.png  seed 2")
        _ = try t.waitFor("Ga=T,f=100,m=")   // ESC _ G a=T,f=100,m=1;<base64 PNG> ESC \ ...: a PNG sent inline
        _ = try t.waitFor(";iVBORw0KGgo")
        try quit(t)
    }

    @Test func ctrlCStopsALongGenerationAndTheSessionGoesOn() throws {
        let t = try start()
        try loadTinyModel(t)
        t.send("set size=64x64 outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/embeddings\"\r")
        t.send("generate \"a long one\" steps=2000 seed=1\r")
        _ = try t.waitFor("step 3/2000")
        t.send("\u{03}")
        // Ctrl-C reaches inside a step: "interrupted during a step" (or after one, if it came between).
        _ = try t.waitFor("interrupted ")
        _ = try t.waitFor("sd> ")
        // Same session: the model is still loaded and settings are kept.
        t.send("generate \"a short one\" steps=2 seed=7\r")
        _ = try t.waitFor("-7.png  seed 7")
        t.send("show size\r")
        _ = try t.waitFor("size = 64x64")
        // Ctrl-C on a half-typed line clears it.
        t.send("print \"never")
        t.send("\u{03}")
        t.send("print \"after\"\r")
        let out = try t.waitFor("after")
        #expect(!out.contains("never\n"))
        try quit(t)
    }
}

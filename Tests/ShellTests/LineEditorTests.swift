import Foundation
import Glibc
import Testing

/// Drives `sdshell line-editor-demo` on a pseudo-terminal: history across runs, Ctrl-C, no `!`
/// expansion, continuation lines, Tab completion, Ctrl-R, SIGINT after the prompt.
@Suite(.serialized)
struct LineEditorTests {
    /// A fresh folder for one test's history file (and HOME, so no ~/.editrc interferes).
    private func makeFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sdshell-line-editor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private func startDemo(in folder: URL, extraArguments: [String] = []) throws -> PseudoTerminal {
        let binary = try #require(SDShellBinary.path, "the sdshell executable was not found next to the test bundle")
        let historyFile = folder.appendingPathComponent("history")
        return try PseudoTerminal(executable: binary,
                                  arguments: ["line-editor-demo", "--history", historyFile.path] + extraArguments,
                                  environment: ["TERM": "xterm", "LANG": "C.UTF-8", "HOME": folder.path,
                                                "PATH": "/usr/bin:/bin"])
    }

    /// Ctrl-D at an empty prompt; the demo must end with status 0.
    private func quit(_ terminal: PseudoTerminal) throws {
        try terminal.waitUntilOutputEnds(with: "sd> ")
        terminal.send("\u{04}")
        #expect(try terminal.waitForExit() == 0)
    }

    @Test func historyPersistsAcrossRuns() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let history = folder.appendingPathComponent("history")

        let first = try startDemo(in: folder)
        try first.waitFor("sd> ")
        first.send("remember-this 42\r")
        try first.waitFor("got: remember-this 42")
        try quit(first)
        let saved = try String(contentsOf: history, encoding: .utf8)
        // libedit's format: a header line, then entries encoded with strvis (space is \040).
        #expect(saved.contains("remember-this\\04042"))

        let second = try startDemo(in: folder)
        try second.waitFor("sd> ")
        second.send("\u{1b}[A")
        try second.waitFor("remember-this 42")
        second.send("\r")
        try second.waitFor("got: remember-this 42")
        try quit(second)
    }

    @Test func historyIsCappedAtTheLimit() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let history = folder.appendingPathComponent("history")
        for run in 0..<2 {
            let terminal = try startDemo(in: folder, extraArguments: ["--history-limit", "3"])
            for n in 1...3 {
                try terminal.waitFor("sd> ")
                terminal.send("entry-\(run)-\(n)\r")
                try terminal.waitFor("got: entry-\(run)-\(n)")
            }
            try quit(terminal)
        }
        let entries = try String(contentsOf: history, encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(entries == ["entry-1-1", "entry-1-2", "entry-1-3"])
        // Saved under a temporary name, then renamed: nothing else is left in the folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["history"])
    }

    @Test func controlCAbandonsTheLine() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        try terminal.waitFor("sd> ")
        terminal.send("half typed")
        try terminal.waitFor("half typed")
        terminal.send("\u{1b}[D\u{1b}[D\u{03}")      // the cursor needn't be at the end
        try terminal.waitFor("^C")
        #expect(terminal.output.contains("sd> half typed^C"), "^C is shown at the end of the line")
        try terminal.waitFor("sd> ")
        terminal.send("next line\r")
        try terminal.waitFor("got: next line")
        try quit(terminal)
        #expect(!terminal.output.contains("got: half"))
        #expect(!terminal.output.contains("SIGINT"), "Ctrl-C at the prompt must not raise SIGINT")
    }

    @Test func exclamationMarksComeBackUnchanged() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        try terminal.waitFor("sd> ")
        terminal.send("earlier entry\r")
        try terminal.waitFor("got: earlier entry")
        try terminal.waitFor("sd> ")
        terminal.send("!! wow! !-1 !e\r")
        try terminal.waitFor("got: !! wow! !-1 !e")
        try quit(terminal)
    }

    @Test func unclosedBracketContinuesTheEntry() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        try terminal.waitFor("sd> ")
        terminal.send("print [1,\r")
        try terminal.waitFor("..> ")
        terminal.send("2]\r")
        try terminal.waitFor("got: print [1,\\n2]")
        try quit(terminal)
        #expect(terminal.output.components(separatedBy: "got:").count == 2)
    }

    @Test func tabCompletesAndLists() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        try terminal.waitFor("sd> ")
        terminal.send("gen\t")
        try terminal.waitFor("generate")
        terminal.send("\r")
        try terminal.waitFor("got: generate")
        try terminal.waitFor("sd> ")
        // "g": the common prefix adds nothing, so the candidates are listed and the line redrawn.
        terminal.send("x g\t")
        try terminal.waitFor("grid")
        try terminal.waitFor("sd> x g")
        terminal.send("r\t\r")
        try terminal.waitFor("got: x grid")
        try quit(terminal)
    }

    @Test func controlRSearchesTheHistory() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        for entry in ["alpha one", "beta two", "gamma three"] {
            try terminal.waitFor("sd> ")
            terminal.send(entry + "\r")
            try terminal.waitFor("got: \(entry)")
        }
        try terminal.waitFor("sd> ")
        terminal.send("\u{12}")
        terminal.send("alp")
        try terminal.waitFor("alpha one")
        terminal.send("\r")
        try terminal.waitFor("got: alpha one")
        try quit(terminal)
    }

    @Test func controlDTypedBeforeThePromptEnds() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        try terminal.waitFor("sd> ")
        // Typed while a command runs, the terminal in its normal mode: kept as an end-of-file mark
        // (which raw mode would turn into a NUL byte), it must end the next read.
        terminal.send("sleep 0.5\r")
        try terminal.waitFor("sleeping")
        terminal.send("\u{04}")
        try terminal.waitFor("slept")
        #expect(try terminal.waitForExit() == 0)
    }

    @Test func controlCRaisesSIGINTAfterTheRead() throws {
        let folder = try makeFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let terminal = try startDemo(in: folder)
        try terminal.waitFor("sd> ")
        terminal.send("sleep\r")
        try terminal.waitFor("sleeping")
        terminal.send("\u{03}")
        try terminal.waitFor("interrupted")
        try terminal.waitFor("sd> ")
        terminal.send("still here\r")
        try terminal.waitFor("got: still here")
        try quit(terminal)
    }

    @Test func withoutATerminalStdinIsReadPlainly() throws {
        let binary = try #require(SDShellBinary.path, "the sdshell executable was not found next to the test bundle")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["line-editor-demo"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("one!\nlist [1,\n2]\n".utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(String(decoding: data, as: UTF8.self) == "got: one!\ngot: list [1,\\n2]\n")
    }
}

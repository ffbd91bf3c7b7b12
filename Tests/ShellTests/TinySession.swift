import Foundation
import Testing
import Formats
import TestSupport
@testable import Script

/// What the interpreter suites share: a temporary folder (with `embeddings/`), sessions on the
/// tiny model at 64x64 and 2 steps writing under it, and a statement's error as text.
struct TinySession {
    let folder: String
    let model = TestFixtures.tinyModelPath

    init(_ name: String) throws {
        folder = NSTemporaryDirectory() + "sdshell-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/embeddings", withIntermediateDirectories: true)
    }

    /// A session with the tiny model loaded, writing to `folder/outdir` and reading `folder/embeddings`.
    func start(_ host: RecordingHost = RecordingHost(), journal: Journal = Journal(), outdir: String = "out") throws -> Interpreter {
        let interpreter = Interpreter(host: host, hashes: HashCache(location: folder + "/hashes.json"), journal: journal)
        try interpreter.run(source: """
        model "\(model)"
        set size=64x64 steps=2 outdir="\(folder)/\(outdir)" embeddings_dir="\(folder)/embeddings"
        """, file: "setup")
        host.lines = []
        return interpreter
    }

    /// The error `text` stops with, as printed; nil when it runs.
    static func error(_ interpreter: Interpreter, _ text: String) -> String? {
        do { try interpreter.run(source: text, file: "t"); return nil } catch { return "\(error)" }
    }
}

/// The prompt on the real binary, with history and data under `folder` (REPL suites).
enum PromptSession {
    static func start(in folder: String, arguments: [String] = [], environment extra: [String: String] = [:]) throws -> PseudoTerminal {
        guard let binary = SDShellBinary.path else { throw PseudoTerminal.Failure(description: "the sdshell executable was not found next to the test bundle") }
        return try PseudoTerminal(executable: binary, arguments: arguments,
                                  environment: ["TERM": "xterm", "LANG": "C.UTF-8", "HOME": folder, "XDG_DATA_HOME": folder + "/data",
                                                "PATH": "/usr/bin:/bin"].merging(extra) { $1 })
    }

    /// Ctrl-D at an idle prompt: the session ends with status 0.
    static func quit(_ terminal: PseudoTerminal) throws {
        try terminal.waitUntilOutputEnds(with: "sd> ")
        terminal.send("\u{04}")
        #expect(try terminal.waitForExit() == 0)
    }
}

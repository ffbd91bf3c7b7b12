import ArgumentParser
import Glibc

/// Set by the demo's SIGINT handler (installed with sigaction, without SA_RESTART).
nonisolated(unsafe) private var demoInterrupted: sig_atomic_t = 0

/// Hidden: a bare line-editor loop for developing and testing the prompt's editing.
///
/// Reads entries with `sd> ` (`..> ` while an entry continues: a trailing `\`, an unclosed bracket
/// or `"""`), prints `got: ENTRY` for each (newlines inside shown as `\n`), Ctrl-C abandons the
/// entry, Ctrl-D on an empty line ends. Tab completes the last word from `generate`, `grid`,
/// `sampler=`. The entry `sleep [SECONDS]` waits (5 s by default), printing `interrupted` if Ctrl-C (SIGINT, the terminal
/// being back in its normal mode) arrives meanwhile. Without a terminal, stdin is read plainly.
struct LineEditorDemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "line-editor-demo", shouldDisplay: false)

    @Option(help: "History file (kept between runs).") var history: String?
    @Option(help: "Most history entries kept.") var historyLimit = 1000

    func run() throws {
        installInterruptHandler()
        let words = ["generate", "grid", "sampler="]
        let completer: LineEditor.Completer = { before in
            let word = String(before.reversed().prefix { !$0.isWhitespace }.reversed())
            return Completion(replacing: word.count, candidates: words.filter { $0.hasPrefix(word) })
        }
        guard let editor = LineEditor(program: "sdshell", historyFile: history, historyLimit: historyLimit,
                                      completer: completer) else {
            var pending: [String] = []
            while let line = readLine() {
                pending.append(line)
                let entry = pending.joined(separator: "\n")
                if LineEditor.needsContinuation(entry) { continue }
                pending = []
                handle(entry)
            }
            return
        }
        var pending: [String] = []
        while true {
            switch editor.read(prompt: pending.isEmpty ? "sd> " : "..> ") {
            case .line(let line):
                pending.append(line)
                let entry = pending.joined(separator: "\n")
                if LineEditor.needsContinuation(entry) { continue }
                pending = []
                editor.remember(entry)
                handle(entry)
            case .interrupted:
                pending = []
                // Ctrl-C at the prompt is a key (ISIG is off while editing), never a signal.
                if demoInterrupted != 0 {
                    print("(SIGINT during the read)")
                    demoInterrupted = 0
                }
            case .endOfFile:
                return
            }
        }
    }

    private func handle(_ entry: String) {
        let words = entry.split(whereSeparator: \.isWhitespace)
        if words.first == "sleep", words.count <= 2, let seconds = words.count == 2 ? Double(words[1]) : 5 {
            sleepDemo(seconds: seconds)
        } else {
            print("got: " + entry.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n"))
        }
        fflush(nil)
    }

    /// A stand-in for a long computation that Ctrl-C can stop.
    private func sleepDemo(seconds: Double) {
        demoInterrupted = 0
        print("sleeping \(seconds) s (Ctrl-C interrupts)")
        fflush(nil)
        for _ in 0..<max(1, Int(seconds * 10)) where demoInterrupted == 0 {
            usleep(100_000)
        }
        print(demoInterrupted != 0 ? "interrupted" : "slept")
        demoInterrupted = 0
    }

    private func installInterruptHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in demoInterrupted = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }
}

import Foundation
import Engine
import Script

/// The interactive prompt: reads statements with the line editor (history, completion,
/// continuation lines while a bracket, `"""` string or pasted infotext is open) and runs them.
/// Errors and Ctrl-C never end the session; Ctrl-D or `quit` do.
struct REPL {
    let interpreter: Interpreter
    let host: TerminalHost

    /// `$XDG_DATA_HOME/sdshell/history` (default `~/.local/share/sdshell/history`).
    static var historyPath: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.local/share"
        return base + "/sdshell/history"
    }

    /// Completion candidates for the text before the cursor, with names from the session.
    func complete(_ text: String) -> Completion {
        let (replacing, candidates) = interpreter.completions(text)
        return Completion(replacing: replacing, candidates: candidates)
    }

    func run() -> Int32 {
        try? FileManager.default.createDirectory(atPath: (Self.historyPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard let editor = LineEditor(program: "sdshell", historyFile: Self.historyPath, completer: { complete($0) }) else {
            host.warn("error: the prompt needs a terminal")
            return 1
        }
        host.write("sdshell \(SDShellVersion.string): `help` lists commands, Tab completes, Ctrl-D exits")
        var buffer = ""
        while true {
            switch editor.read(prompt: buffer.isEmpty ? "sd> " : "..> ") {
            case .endOfFile:
                return 0
            case .interrupted:
                if terminationSignal != 0 { return 128 + terminationSignal }
                buffer = ""
                clearInterruptFlag()
                continue
            case let .line(line):
                buffer += (buffer.isEmpty ? "" : "\n") + line
            }
            let statements: [Statement]
            do {
                statements = try Parser.parse(buffer, file: "<prompt>")
            } catch let e as ScriptError where e.incomplete {
                continue
            } catch {
                editor.remember(buffer)
                buffer = ""
                host.warn("\(error)")
                continue
            }
            if !buffer.trimmingCharacters(in: .whitespaces).isEmpty { editor.remember(buffer) }
            buffer = ""
            clearInterruptFlag()
            do {
                for statement in statements { try interpreter.execute(statement) }
            } catch is QuitRequested {
                return 0
            } catch {
                host.warn("\(error)")
            }
            // SIGTERM or SIGHUP (the terminal closed): the job has stopped cleanly; the session ends.
            if terminationSignal != 0 { return 128 + terminationSignal }
            clearInterruptFlag()
        }
    }
}

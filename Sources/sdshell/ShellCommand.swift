import ArgumentParser
import Foundation
import Script

/// `sdshell [FILE] [-e TEXT]`: runs a script file, text, statements piped on standard input, or
/// (with none of these, on a terminal) the interactive prompt. All run the same interpreter.
struct ShellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell", abstract: "Run an .sdscript file, statements (-e), standard input, or the interactive prompt.")

    @ArgumentParser.Argument(help: "An .sdscript file to run.") var file: String?
    @Option(name: .customShort("e"), help: "Statements to run (may repeat).") var statements: [String] = []

    func run() throws {
        installInterruptHandler()
        // Over a file-size limit, writes fail with EFBIG (reported, previous files kept) instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        let host = TerminalHost()
        let interpreter = Interpreter(host: host)
        var sources: [(text: String, name: String)] = statements.map { ($0, "<-e>") }
        if let file {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                host.warn("error: cannot read \(file)")
                throw ExitCode.failure
            }
            sources.append((text, file))
        }
        if sources.isEmpty {
            if isatty(0) != 0 {
                let code = REPL(interpreter: interpreter, host: host).run()
                throw ExitCode(code)
            }
            let text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            sources.append((text, "<stdin>"))
        }
        for (text, name) in sources {
            do {
                try CommandLineStatement.run(text, file: name, interpreter: interpreter, host: host)
            } catch is QuitRequested {
                return
            }
        }
    }
}

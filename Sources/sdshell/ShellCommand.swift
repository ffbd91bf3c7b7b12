import ArgumentParser
import Foundation
import Script

/// `sdshell merge OUTDIR`: the shards of a sharded run put together (`ShardMerge`).
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge the shards of a sharded run (sdshell --shard K/N): grids and one journal.")

    @ArgumentParser.Argument(help: "The run's outdir (holding shards/K-of-N).") var outdir: String

    func run() throws {
        do {
            let result = try ShardMerge.merge(outdir: outdir)
            say("merged \(result.shards) shards (\(result.units) work units)")
            for grid in result.grids { say(grid + "  grid") }
            say("journal " + result.journal)
        } catch {
            complain("error: \(error)")
            throw ExitCode.failure
        }
    }
}

/// `sdshell [FILE] [-e TEXT]`: runs a script file, text, statements piped on standard input, or
/// (with none of these, on a terminal) the interactive prompt. All run the same interpreter.
struct ShellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell", abstract: "Run an .sdscript file, statements (-e), standard input, or the interactive prompt.")

    @ArgumentParser.Argument(help: "An .sdscript file to run.") var file: String?
    @Option(name: .customShort("e"), help: "Statements to run (may repeat).") var statements: [String] = []
    @Option(help: ArgumentHelp("Run shard K of N (K from 0): make only this shard's images and trainings, under OUTDIR/shards/K-of-N; `sdshell merge OUTDIR` puts the shards together. Without it, a Slurm array task (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job pod (JOB_COMPLETION_INDEX, with --shards) runs its shard.", valueName: "K/N"))
    var shard: String?
    @Option(help: "The shard count of a Kubernetes Indexed Job (its completions): JOB_COMPLETION_INDEX gives the shard.") var shards: Int?

    func run() throws {
        installInterruptHandler()
        // Over a file-size limit, writes fail with EFBIG (reported, previous files kept) instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        let host = TerminalHost()
        let interpreter = Interpreter(host: host)
        let sharded: Shard?
        do {
            sharded = try shard.map { text throws(ShardError) in try Shard(text) } ?? Shard.fromEnvironment(ProcessInfo.processInfo.environment, count: shards)
        } catch {
            host.warn("error: \(error)")
            throw ExitCode(2)
        }
        if let sharded {
            if shard == nil { host.warn("running shard \(sharded.index) of \(sharded.count) (from the scheduler's environment; --shard 0/1 runs everything)") }
            interpreter.runAsShard(sharded)
        }
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
                break
            }
        }
        do { try interpreter.finishShard() } catch {
            host.warn("error: \(error)")
            throw ExitCode.failure
        }
    }
}

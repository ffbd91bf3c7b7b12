import Foundation
import Diffusion
import Formats
import Testing
import TestSupport

/// `sdshell FILE`, `sdshell -e`, statements on standard input: one interpreter, exit status 0,
/// or 1 with `file:line:col: message` at the first error.
@Suite(.serialized) struct CommandLineTests {
    /// Runs the binary; returns (status, stdout, stderr).
    func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> (Int32, String, String) {
        let binary = try #require(SDShellBinary.path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func fileTextAndStandardInputRunTheSameStatements() throws {
        let folder = NSTemporaryDirectory() + "sdshell-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let script = "let x = 2\nfor i in 1..x { print \"line {i}\" }\nshow steps\n"
        try script.write(toFile: folder + "/s.sdscript", atomically: true, encoding: .utf8)
        let expected = "line 1\nline 2\nsteps = 20\n"
        #expect(try run([folder + "/s.sdscript"]) == (0, expected, ""))
        #expect(try run(["-e", "let x = 2", "-e", "for i in 1..x { print \"line {i}\" }; show steps"]) == (0, expected, ""))
        #expect(try run([], stdin: script) == (0, expected, ""))
    }

    @Test func aScriptStopsAtTheFirstErrorWithStatusOne() throws {
        let (status, out, err) = try run(["-e", "print 1\nprint \"a\" + nope\nprint 2"])
        #expect(status == 1)
        #expect(out == "1\n")
        #expect(err == "<-e>:2:13: unknown variable `nope`\n")
        let (missing, _, message) = try run(["/nonexistent/x.sdscript"])
        #expect(missing == 1 && message.contains("/nonexistent/x.sdscript"))
    }

    /// Piped, a generation prints its path on standard output, and its progress on standard error
    /// as plain lines (each tenth of the job), without escape sequences.
    @Test func plainProgressWhenNotATerminal() throws {
        let folder = NSTemporaryDirectory() + "sdshell-cli-\(UUID().uuidString)"
        // The embeddings folder exists (a missing one is reported on standard error).
        try FileManager.default.createDirectory(atPath: folder + "/e", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, out, err) = try run(["-e", "model \"\(TestFixtures.tinyModelPath)\"",
                                          "-e", "generate \"x\" size=64x64 steps=3 seed=4 outdir=\"\(folder)\" embeddings_dir=\"\(folder)/e\""])
        #expect(status == 0)
        #expect(out.hasSuffix("/txt2img/00000-4.png  seed 4\n"))
        let lines = err.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("step ") } && !err.contains("\u{1b}") && !err.contains("\r"), "\(err)")
    }

    /// `devices` lists the CPU and the OpenCL devices; without an OpenCL runtime it says why.
    @Test func devicesWithAndWithoutOpenCL() throws {
        let (status, out, _) = try run(["-e", "devices"])
        #expect(status == 0)
        #expect(out.hasPrefix("cpu 0: "))
        #expect(out.contains("\nopencl 0: ") && out.contains("Portable Computing Language"))
        let (noneStatus, none, _) = try run(["-e", "devices"], environment: ["OCL_ICD_VENDORS": "/nonexistent-vendors"])
        #expect(noneStatus == 0)
        #expect(none.contains("\nopencl: no OpenCL platform (clGetPlatformIDs: -1001); install an OpenCL driver"))
    }

    /// `--backend` and SDSHELL_BACKEND choose the backend at start; a missing OpenCL runtime is a
    /// clear error for the flag and a warning (staying on the CPU) for the variable.
    @Test func backendChosenAtStart() throws {
        let (status, out, _) = try run(["--backend", "opencl", "selftest"])
        #expect(status == 0)
        #expect(out.hasPrefix("sdshell ") && out.contains("engine selftest on opencl"))
        let (envStatus, envOut, _) = try run(["-e", "show backend"], environment: ["SDSHELL_BACKEND": "opencl:0"])
        #expect(envStatus == 0 && envOut == "backend = \"opencl\"\n")
        let none = ["OCL_ICD_VENDORS": "/nonexistent-vendors"]
        let (flagStatus, _, flagErr) = try run(["--backend=opencl", "selftest"], environment: none)
        #expect(flagStatus == 2)
        #expect(flagErr.hasPrefix("error: --backend opencl: ") && flagErr.contains("no OpenCL platform"))
        let (varStatus, varOut, varErr) = try run(["-e", "show backend"], environment: none.merging(["SDSHELL_BACKEND": "opencl"]) { $1 })
        #expect(varStatus == 0 && varOut == "backend = \"cpu\"\n")
        #expect(varErr.hasPrefix("sdshell: SDSHELL_BACKEND=opencl: ") && varErr.hasSuffix("keeping the cpu backend\n"))
    }

    @Test func quitEndsWithStatusZero() throws {
        #expect(try run(["-e", "print 1; quit; print 2"]) == (0, "1\n", ""))
    }

    /// `sdshell generate` and a script make the same image with their defaults (#16: `rng` nv and
    /// the model's native size in both).
    @Test func generateSubcommandAndScriptAgree() throws {
        let folder = NSTemporaryDirectory() + "sdshell-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/e", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status1, out1, err1) = try run(["generate", "--model", TestFixtures.tinyModelPath, "a red circle", "--seed", "4", "--steps", "2",
                                             "--outdir", folder + "/cli", "--embeddings-dir", folder + "/e"])
        #expect(status1 == 0, "\(err1)")
        let (status2, out2, err2) = try run(["-e", "model \"\(TestFixtures.tinyModelPath)\"",
                                             "-e", "generate \"a red circle\" seed=4 steps=2 outdir=\"\(folder)/script\" embeddings_dir=\"\(folder)/e\""])
        #expect(status2 == 0, "\(err2)")
        let cliLine = try #require(out1.split(separator: "\n").first { $0.contains(".png") })
        let cli = try PNGFile.read(String(cliLine.split(separator: " ")[0]))
        let line = try #require(out2.split(separator: "\n").first { $0.contains(".png") })
        let script = try PNGFile.read(String(line.split(separator: " ")[0]))
        #expect(cli.width == 16 && cli.height == 16)
        #expect(cli.rgba == script.rgba)
        #expect(cli.text("parameters")?.contains("RNG: NV") == true)
    }

    /// `sdshell generate --help` and the shell's `help generate` list the same parameters with the
    /// same defaults, in the same order: both come from the generation parameter table.
    @Test func generateHelpAndShellHelpListTheSameParameters() throws {
        let (status1, cli, _) = try run(["generate", "--help"])
        let (status2, shell, _) = try run(["-e", "help generate"])
        #expect(status1 == 0 && status2 == 0)
        // "  --clip-skip 1   ..." and "  clip_skip=1   ...": (name, default) pairs.
        func pairs(_ text: String, _ pattern: String) throws -> [String] {
            let regex = try NSRegularExpression(pattern: pattern, options: .anchorsMatchLines)
            return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
                let name = (text as NSString).substring(with: m.range(at: 1)).replacingOccurrences(of: "-", with: "_")
                return name + "=" + (text as NSString).substring(with: m.range(at: 2))
            }
        }
        let fromCLI = try pairs(cli, #"^  --([a-z-]+) (\S+|"[^"]*")  "#).filter { !$0.hasPrefix("outdir=") }
        let fromShell = try pairs(shell, #"^  ([a-z_]+)=(\S+|"[^"]*")  "#)
        #expect(fromCLI.count == GenerationParameters.all.count && fromCLI.map { $0.split(separator: "=")[0] }.contains("s_churn"), "\(fromCLI)")
        // The shell shows the native size before a model is loaded (512x512); the command line says "native".
        #expect(fromCLI.map { $0 == "size=native" ? "size=512x512" : $0 } == fromShell, "\(fromCLI)\n\(fromShell)")
        #expect(fromShell.contains("rng=\"nv\"") && fromShell.contains("steps=20") && fromShell.contains("sampler=\"Euler a\""))
    }

    /// `sdshell train --help` and the shell's `help train` list the same options and defaults.
    @Test func trainHelpAndShellHelpListTheSameOptions() throws {
        let (_, cli, _) = try run(["train", "--help"])
        let (_, shell, _) = try run(["-e", "help train"])
        func pairs(_ text: String, _ pattern: String) throws -> [String] {
            let regex = try NSRegularExpression(pattern: pattern, options: .anchorsMatchLines)
            return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
                (text as NSString).substring(with: m.range(at: 1)).replacingOccurrences(of: "-", with: "_") + "="
                    + (text as NSString).substring(with: m.range(at: 2))
            }
        }
        let fromCLI = try pairs(cli, #"^  --([a-z-]+) (\S+|"[^"]*")  "#).filter { !$0.hasPrefix("outdir=") && !$0.hasPrefix("embeddings_dir=") }
        let fromShell = try pairs(shell, #"^  ([a-z_]+)=(\S+|"[^"]*")  "#)
        #expect(fromCLI.count == 24 && fromCLI == fromShell, "\(fromCLI)\n\(fromShell)")
        #expect(fromShell.contains("steps=1000") && fromShell.contains("lr=\"0.005\""))
    }

    /// Command-line parameters are checked by the table's rules, with the option named.
    @Test func generateRefusesBadParametersByName() throws {
        let model = TestFixtures.tinyModelPath
        let (s1, _, e1) = try run(["generate", "--model", model, "x", "--steps", "0"])
        #expect(s1 != 0 && e1.contains("--steps: steps must be at least 1 (got 0)"), "\(e1)")
        let (s2, _, e2) = try run(["generate", "--model", model, "x", "--sampler", "Eular a"])
        #expect(s2 != 0 && e2.contains("unknown sampler \"Eular a\"") && e2.contains("Euler a"), "\(e2)")
        let (s3, _, e3) = try run(["generate", "--model", model, "x", "--stepz", "3"])
        #expect(s3 != 0 && e3.contains("unknown option --stepz; did you mean `--steps`?"), "\(e3)")
        let (s4, _, e4) = try run(["generate", "--model", model, "x", "--size", "64"])
        #expect(s4 != 0 && e4.contains("--size: \"64\" is not a size like 512x768"), "\(e4)")
    }
}

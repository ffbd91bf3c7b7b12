import ArgumentParser
import Engine
import Foundation

/// The sdshell command line: a thin layer over the library modules.
@main
struct SDShell: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdshell",
        abstract: "A Stable Diffusion shell: generate images, use and train textual-inversion embeddings.",
        discussion: """
        Run a script with `sdshell FILE.sdscript`, or start the interactive prompt with `sdshell`.
        Run statements with `sdshell -e '...'` or pipe them on standard input.
        Choose the compute backend with `--backend cpu|opencl|opencl:N` before the other arguments
        (or SDSHELL_BACKEND=...); the shell's `backend` command switches later.
        """,
        version: SDShellVersion.string,
        subcommands: [SelfTest.self, InspectCommand.self, GenerateCommand.self, TokensCommand.self, EmbeddingsCommand.self, TrainCommand.self,
                      LineEditorDemoCommand.self, KernelCommand.self, MergeCommand.self, ShellCommand.self],
        defaultSubcommand: ShellCommand.self
    )

    /// Chooses the backend (`SDSHELL_BACKEND`, then a leading `--backend NAME` / `--backend=NAME`,
    /// which every subcommand accepts), then parses the rest as usual.
    static func main() {
        OpenMPWaitPolicy.passiveUnlessSet()
        if let message = Engine.useEnvironmentBackend() { FileHandle.standardError.write(Data("sdshell: \(message)\n".utf8)) }
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let i = arguments.firstIndex(where: { $0 == "--backend" || $0.hasPrefix("--backend=") }) {
            let spec: String
            if arguments[i] == "--backend" {
                guard i + 1 < arguments.count else { exit(withError: ValidationError("--backend needs a value: cpu, opencl or opencl:N")) }
                spec = arguments[i + 1]
                arguments.removeSubrange(i...(i + 1))
            } else {
                spec = String(arguments[i].dropFirst("--backend=".count))
                arguments.remove(at: i)
            }
            do { Engine.use(try Engine.backend(named: spec)) } catch {
                FileHandle.standardError.write(Data("error: --backend \(spec): \(error)\n".utf8))
                Foundation.exit(2)
            }
        }
        main(arguments)
    }
}

/// Runs a small forward and backward computation on the engine and prints the result.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "selftest", abstract: "Run a small engine computation (conv, attention, autograd).")

    @Option(help: "Threads for the CPU kernels (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Engine.threads = threads }
        let x = try Tensor(shape: [1, 4, 8, 8], data: (0..<256).map { Float($0 % 7) / 7 - 0.5 }, requiresGrad: true)
        let w = try Tensor(shape: [8, 4, 3, 3], data: (0..<288).map { Float($0 % 5) / 10 - 0.2 }, requiresGrad: true)
        let h = try x.conv2d(weight: w, padding: 1).groupNorm(groups: 4, weight: nil, bias: nil).silu()
        let seq = try h.reshaped([1, 8, 64]).transposed(1, 2)          // [1, 64, 8]
        let a = try Tensor.scaledDotProductAttention(q: seq, k: seq, v: seq)
        let loss = try (a * a).sum()
        try loss.backward()
        let gx = try x.grad!.toArray(), gw = try w.grad!.toArray()
        print("sdshell \(SDShellVersion.string) engine selftest on \(Engine.backend.name), \(Engine.threads) threads")
        if let opencl = Engine.backend as? OpenCLBackend { print("opencl device \(opencl.device.index): \(opencl.device.name)") }
        print("loss \(try loss.toArray()[0])")
        print("|grad x| \(gx.map { $0 * $0 }.reduce(0, +).squareRoot())  |grad w| \(gw.map { $0 * $0 }.reduce(0, +).squareRoot())")
    }
}

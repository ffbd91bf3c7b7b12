import ArgumentParser
import Foundation
import Notebook

/// `sdshell kernel -f CONNECTION_FILE`: sdshell as a Jupyter kernel (started by Jupyter from the
/// kernelspec that `sdshell kernel install` writes).
struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel", abstract: "Run as a Jupyter kernel (started by Jupyter), or install its kernelspec.",
        discussion: "Jupyter starts `sdshell kernel -f CONNECTION_FILE` from the kernelspec `sdshell kernel install` writes.",
        subcommands: [KernelInstallCommand.self])

    @Option(name: .customShort("f"), help: "The connection file Jupyter wrote.") var connectionFile: String?

    func run() throws {
        guard let connectionFile else { throw ValidationError("give the connection file: sdshell kernel -f FILE (Jupyter does this)") }
        installInterruptHandler()
        signal(SIGXFSZ, SIG_IGN)
        let connection: ConnectionFile
        let kernel: Kernel
        do {
            connection = try ConnectionFile.read(connectionFile)
            kernel = try Kernel(connection: connection, interrupts: KernelInterrupts(
                requested: { interruptFlag != 0 }, clear: { clearInterruptFlag() },
                request: { SignalFlags.interrupt.store(1, ordering: .relaxed) }, terminated: { terminationSignal != 0 }))
        } catch {
            complain("error: \(error)")
            throw ExitCode.failure
        }
        kernel.run()
        // Every image and journal entry is on disk (written by rename): end without the exit handlers.
        CommandLineStatement.exitAfterInterrupt(terminationSignal != 0 ? 128 + terminationSignal : 0)
    }
}

/// `sdshell kernel install [--user | --prefix DIR]`: writes the kernelspec where Jupyter looks.
struct KernelInstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install", abstract: "Install the sdshell kernelspec for Jupyter.",
        discussion: """
        Without options the kernelspec goes to /usr/local/share/jupyter/kernels/sdshell (as `jupyter kernelspec \
        install` does); --user puts it in your Jupyter data folder, --prefix in PREFIX/share/jupyter/kernels/sdshell.
        """)

    @Flag(help: "Install for this user only.") var user = false
    @Option(help: "Install under this prefix (a virtual environment's, for instance).") var prefix: String?

    func run() throws {
        if user, prefix != nil { throw ValidationError("give --user or --prefix, not both") }
        let location: KernelSpec.Location = user ? .user : prefix.map { .prefix(($0 as NSString).standardizingPath) } ?? .system
        do {
            let folder = try KernelSpec.install(executable: Self.executablePath(), location: location)
            say("installed the sdshell kernelspec in \(folder)")
        } catch {
            complain("error: \(error)")
            throw ExitCode.failure
        }
    }

    /// This executable's absolute path (the kernelspec starts it by that path).
    static func executablePath() -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }
}

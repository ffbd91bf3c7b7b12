import Formats
import Foundation

/// The kernelspec that tells Jupyter how to start sdshell's kernel: `kernel.json` in a folder
/// named `sdshell` under a `share/jupyter/kernels` directory, where `jupyter kernelspec install`
/// places them.
public struct KernelSpec {
    /// Where the kernelspec goes.
    public enum Location: Equatable, Sendable {
        /// The system folder, `/usr/local/share/jupyter/kernels` (`jupyter kernelspec install`'s default).
        case system
        /// The user's Jupyter data folder: `$JUPYTER_DATA_DIR`, else `$XDG_DATA_HOME/jupyter`,
        /// else `~/.local/share/jupyter`; then `kernels`.
        case user
        /// `PREFIX/share/jupyter/kernels` (a virtual environment's or conda prefix).
        case prefix(String)
    }

    /// The kernel's name, and its folder's.
    public static let name = "sdshell"

    /// The folder `kernel.json` is written in for `location`.
    public static func directory(_ location: Location, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let kernels: String
        switch location {
        case .system: kernels = "/usr/local/share/jupyter/kernels"
        case let .prefix(prefix): kernels = prefix + "/share/jupyter/kernels"
        case .user:
            if let data = environment["JUPYTER_DATA_DIR"], !data.isEmpty {
                kernels = data + "/kernels"
            } else {
                let base = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
                kernels = base + "/jupyter/kernels"
            }
        }
        return kernels + "/" + name
    }

    /// `kernel.json` for an sdshell executable at `executable` (an absolute path). Interrupts come
    /// as SIGINT, as Ctrl-C does at the prompt (`interrupt_request` messages are honoured too).
    public static func json(executable: String) throws -> Data {
        let spec: [String: Any] = [
            "argv": [executable, "kernel", "-f", "{connection_file}"],
            "display_name": "sdshell",
            "language": "sdscript",
            "interrupt_mode": "signal",
            "metadata": ["debugger": false],
        ]
        return try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys])
    }

    /// Writes the kernelspec for `executable` into `location` (atomically); returns the folder.
    @discardableResult
    public static func install(executable: String, location: Location) throws -> String {
        let folder = directory(location)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw KernelError("\(folder): cannot create the kernelspec folder (\(error.localizedDescription))")
        }
        try AtomicFile.write(Array(try json(executable: executable)) + Array("\n".utf8), to: folder + "/kernel.json")
        return folder
    }
}

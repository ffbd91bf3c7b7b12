import Foundation
import Synchronization

/// Choosing a backend by name: `cpu`, `opencl` (the first GPU, else the first OpenCL device) or
/// `opencl:N` / device N of `OpenCLDevices.list()`, as `SDSHELL_BACKEND`, `sdshell --backend` and
/// the shell's `backend` command spell it.
extension Engine {
    /// The CPU backend (one per process).
    public static let cpu: CPUBackend = CPUBackend()

    /// Opened OpenCL backends by device index (-1: the default device), kept so that switching
    /// back and forth reuses the device context, its built kernels and the tensors resident there.
    private static let openCLBackends = Mutex<[Int: OpenCLBackend]>([:])

    /// The OpenCL backend on device `index` (nil: the first GPU, else the first device), opened on
    /// first use. Throws a clear error when there is no OpenCL runtime or no such device.
    public static func openCL(device index: Int? = nil) throws -> OpenCLBackend {
        try openCLBackends.withLock { open in
            if let b = open[index ?? -1] { return b }
            let b = try OpenCLBackend(deviceIndex: index)
            open[index ?? -1] = b
            return b
        }
    }

    /// The backend named `spec`: "cpu", "opencl" or "opencl:N".
    public static func backend(named spec: String) throws -> any Backend {
        let parts = spec.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        switch parts.first ?? "" {
        case "cpu" where parts.count == 1: return cpu
        case "opencl":
            if parts.count == 1 { return try openCL() }
            guard let n = Int(parts[1]), n >= 0 else {
                throw EngineError.invalidArgument(op: "backend", message: "`\(spec)`: the device is a number, as in opencl:0")
            }
            return try openCL(device: n)
        default:
            throw EngineError.invalidArgument(op: "backend", message: "unknown backend `\(spec)`: use cpu, opencl or opencl:N")
        }
    }

    /// Applies `SDSHELL_BACKEND` when set. Returns a message when the backend cannot be used (the
    /// engine keeps its backend: the CPU at start), nil otherwise.
    public static func useEnvironmentBackend(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let spec = environment["SDSHELL_BACKEND"], !spec.isEmpty else { return nil }
        do {
            use(try backend(named: spec))
            return nil
        } catch {
            return "SDSHELL_BACKEND=\(spec): \(error); keeping the \(backend.name) backend"
        }
    }

    /// One line describing the current backend (the shell's `backend` command prints it).
    public static var backendDescription: String {
        if let b = backend as? OpenCLBackend {
            let d = b.device
            return "backend opencl: device \(d.index), \(d.name) (\(d.kind), \(d.platform)), \(d.computeUnits) compute units, "
                + String(format: "%.1f GiB", Double(d.memoryBytes) / 1_073_741_824)
        }
        return "backend \(backend.name): \(threads) threads"
    }
}

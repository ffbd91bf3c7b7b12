import COpenCL
import Foundation

/// Builds the kernel program for a device, keeping the device binary on disk: PoCL (and many GPU
/// drivers) take seconds to compile, so the binary is stored under
/// `$SDSHELL_OPENCL_CACHE` (else `$XDG_CACHE_HOME/sdshell/opencl`, else `~/.cache/sdshell/opencl`)
/// as `<key>.bin`, the key hashing the source, build options, device, device version and driver
/// version. Writes go to a temporary file renamed into place, so concurrent processes never read a
/// partial binary; a binary the driver rejects is rebuilt from source.
enum OpenCLProgramCache {
    static let buildOptions = ""

    /// The cache directory.
    static var directory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["SDSHELL_OPENCL_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("sdshell/opencl")
    }

    /// 128-bit FNV-1a (two 64-bit lanes with different offsets) of the parts, as hex.
    static func key(_ parts: [String]) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x6c62_272e_07bb_0142
        for part in parts {
            for byte in part.utf8 + [0] {
                a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
                b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
        return String(format: "%016llx%016llx", a, b)
    }

    static func deviceString(_ device: cl_device_id, _ key: Int32) -> String {
        OpenCLDevices.string(0) { clGetDeviceInfo(device, cl_device_info(key), $0, $1, $2) }
    }

    /// The cache file of `source` on `device`.
    static func file(device: cl_device_id, source: String, in directory: URL = directory) -> URL {
        let identity = [source, buildOptions, deviceString(device, CL_DEVICE_NAME), deviceString(device, CL_DEVICE_VERSION),
                        deviceString(device, CL_DRIVER_VERSION), deviceString(device, CL_DEVICE_VENDOR)]
        return directory.appendingPathComponent(key(identity) + ".bin")
    }

    /// The built program, and whether it came from the disk cache in `directory`.
    static func program(context: cl_context, device: cl_device_id, source: String, directory: URL = directory) throws -> (cl_program, Bool) {
        let file = file(device: device, source: source, in: directory)
        if let binary = try? Data(contentsOf: file), !binary.isEmpty, let program = fromBinary(binary, context: context, device: device) {
            return (program, true)
        }
        let program = try fromSource(source, context: context, device: device)
        if let binary = binary(of: program) { store(binary, at: file) }
        return (program, false)
    }

    private static func fromBinary(_ binary: Data, context: cl_context, device: cl_device_id) -> cl_program? {
        var status: cl_int = 0, binaryStatus: cl_int = 0
        var id: cl_device_id? = device
        var length = binary.count
        let program: cl_program? = binary.withUnsafeBytes { bytes in
            var pointer: UnsafePointer<UInt8>? = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return clCreateProgramWithBinary(context, 1, &id, &length, &pointer, &binaryStatus, &status)
        }
        guard let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            if let program { clReleaseProgram(program) }
            return nil
        }
        guard clBuildProgram(program, 1, &id, buildOptions, nil, nil) == CL_SUCCESS else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    private static func fromSource(_ source: String, context: cl_context, device: cl_device_id) throws -> cl_program {
        var status: cl_int = 0
        var id: cl_device_id? = device
        let program: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context, 1, &pointer, nil, &status)
        }
        guard let program, status == CL_SUCCESS else {
            throw EngineError.backendFailure(op: "opencl", message: "clCreateProgramWithSource failed with status \(status)")
        }
        let build = clBuildProgram(program, 1, &id, buildOptions, nil, nil)
        if build != CL_SUCCESS {
            let log = OpenCLDevices.string(0) {
                clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
            }
            clReleaseProgram(program)
            throw EngineError.backendFailure(op: "opencl", message: "building the kernels failed (status \(build)):\n\(log)")
        }
        return program
    }

    private static func binary(of program: cl_program) -> Data? {
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
              size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        let status: cl_int = bytes.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &pointer, nil)
        }
        return status == CL_SUCCESS ? Data(bytes) : nil
    }

    /// Writes atomically (temporary file, then rename); a cache that cannot be written is skipped.
    private static func store(_ binary: Data, at file: URL) {
        let dir = file.deletingLastPathComponent()
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let temp = dir.appendingPathComponent(".\(file.lastPathComponent).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp")
        do {
            try binary.write(to: temp)
            if rename(temp.path, file.path) != 0 { try? FileManager.default.removeItem(at: temp) }
        } catch {
            try? FileManager.default.removeItem(at: temp)
        }
    }
}

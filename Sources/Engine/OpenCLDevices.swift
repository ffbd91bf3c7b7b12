import COpenCL

/// An OpenCL device as `devices` lists it.
public struct OpenCLDevice: Sendable, Equatable {
    public let index: Int
    public let platform: String
    public let name: String
    /// CPU, GPU or accelerator.
    public let kind: String
    public let computeUnits: Int
    public let memoryBytes: UInt64
    public let version: String
}

/// Why no OpenCL device list could be made.
public struct OpenCLUnavailable: Error, CustomStringConvertible, Equatable {
    public let description: String
}

/// OpenCL platforms and devices, numbered across platforms in the order the ICD loader reports
/// them (the `device=N` of `backend opencl`).
public enum OpenCLDevices {
    static func string(_ size: Int, _ fill: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) -> String {
        var length = 0
        guard fill(0, nil, &length) == CL_SUCCESS, length > 0 else { return "" }
        var bytes = [CChar](repeating: 0, count: length)
        _ = fill(length, &bytes, nil)
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The devices, or why there are none (no ICD loader configuration, no platform).
    public static func list() -> Result<[OpenCLDevice], OpenCLUnavailable> {
        enumerate().map { $0.map(\.device) }
    }

    /// The devices with their OpenCL handles.
    static func enumerate() -> Result<[(device: OpenCLDevice, platform: cl_platform_id, id: cl_device_id)], OpenCLUnavailable> {
        var count: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &count)
        guard status == CL_SUCCESS, count > 0 else {
            return .failure(OpenCLUnavailable(description: "no OpenCL platform (clGetPlatformIDs: \(status)); install an OpenCL driver "
                                              + "(an ICD in /etc/OpenCL/vendors, e.g. Debian's pocl-opencl-icd for the CPU)"))
        }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        clGetPlatformIDs(count, &platforms, nil)
        var out: [(device: OpenCLDevice, platform: cl_platform_id, id: cl_device_id)] = []
        for platform in platforms.compactMap({ $0 }) {
            let platformName = string(0) { clGetPlatformInfo(platform, cl_platform_info(CL_PLATFORM_NAME), $0, $1, $2) }
            var n: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n) == CL_SUCCESS, n > 0 else { continue }
            var devices = [cl_device_id?](repeating: nil, count: Int(n))
            clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &devices, nil)
            for device in devices.compactMap({ $0 }) {
                func info<T>(_ key: Int32, _ zero: T) -> T {
                    var value = zero
                    _ = withUnsafeMutableBytes(of: &value) { clGetDeviceInfo(device, cl_device_info(key), $0.count, $0.baseAddress, nil) }
                    return value
                }
                let type: cl_device_type = info(CL_DEVICE_TYPE, 0)
                let kind = type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 ? "GPU" : type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 ? "CPU" : "accelerator"
                out.append((OpenCLDevice(
                    index: out.count, platform: platformName,
                    name: string(0) { clGetDeviceInfo(device, cl_device_info(CL_DEVICE_NAME), $0, $1, $2) },
                    kind: kind, computeUnits: Int(info(CL_DEVICE_MAX_COMPUTE_UNITS, cl_uint(0))),
                    memoryBytes: info(CL_DEVICE_GLOBAL_MEM_SIZE, cl_ulong(0)),
                    version: string(0) { clGetDeviceInfo(device, cl_device_info(CL_DEVICE_VERSION), $0, $1, $2) }),
                    platform, device))
            }
        }
        return .success(out)
    }
}

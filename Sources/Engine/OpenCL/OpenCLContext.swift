import COpenCL
import Foundation

/// Throws a backend failure naming `what` unless `status` is CL_SUCCESS.
func clCheck(_ status: cl_int, _ what: String) throws {
    if status != CL_SUCCESS { throw EngineError.backendFailure(op: "opencl", message: "\(what) failed with OpenCL status \(status)") }
}

/// One argument of a kernel launch.
enum KernelArgument {
    /// A device buffer (held until the launch is queued; the queue retains it from then on).
    case buffer(OpenCLBuffer)
    case int(Int)
    case long(Int)
    case float(Float)
    /// A `long8` (shapes and strides of up to 8 dimensions; unused lanes are 0).
    case long8([Int])
}

/// An OpenCL device opened for computing: its context, one in-order command queue, and the
/// kernels of `OpenCLKernels` built for it (from the disk cache when possible).
final class OpenCLContext: @unchecked Sendable {
    let device: OpenCLDevice
    let deviceID: cl_device_id
    let context: cl_context
    let queue: cl_command_queue
    let program: cl_program
    /// Whether the program came from the disk cache.
    let programFromCache: Bool
    /// The most work-items a work-group of this device holds.
    let maxWorkGroupSize: Int
    /// Created kernels by name; kernel arguments are set and launched under `lock` (a kernel object
    /// holds its arguments, so launches from several threads must not interleave).
    private var kernels: [String: cl_kernel] = [:]
    /// Serialises every use of a queue and of buffers, across all contexts of the process: the API
    /// is thread-safe on paper, but PoCL 3.1 aborts (`PTHREAD ERROR in can_run_command`) when
    /// several threads enqueue at once. Taken after a storage's lock, never before.
    private var lock: NSLock { OpenCLContext.processLock }
    private static let processLock = NSLock()

    /// Per-kernel wall time and launch counts (CLBlast's calls included), kept when
    /// `SDSHELL_OPENCL_PROFILE` is set (each launch then waits for its kernel, so the figures are
    /// exact but the run slower).
    let profiling = ProcessInfo.processInfo.environment["SDSHELL_OPENCL_PROFILE"].map { !$0.isEmpty && $0 != "0" } ?? false
    private(set) var profile: [String: (launches: Int, seconds: Double)] = [:]
    /// Bytes moved between host and device.
    private(set) var uploadedBytes = 0, downloadedBytes = 0
    /// Tensor storages copied to and from the device (`DeviceTransfers`).
    private(set) var tensorUploads = 0, tensorReadBacks = 0

    /// Counts a tensor storage's copy to or from the device (under the lock).
    func countTensorCopy(upload: Bool) {
        if upload { tensorUploads += 1 } else { tensorReadBacks += 1 }
    }

    /// Counts a transfer (under the lock).
    func countTransfer(upload: Int = 0, download: Int = 0) {
        uploadedBytes += upload
        downloadedBytes += download
    }

    /// The profile as text, slowest kernels first.
    func profileReport() -> String {
        serialized {
            let rows = profile.sorted { $0.value.seconds > $1.value.seconds }.map {
                String(format: "%-24@ %7d launches %9.3f s", $0.key as NSString, $0.value.launches, $0.value.seconds)
            }
            return (rows + [String(format: "uploaded %.1f MiB, downloaded %.1f MiB", Double(uploadedBytes) / 1_048_576,
                                   Double(downloadedBytes) / 1_048_576)]).joined(separator: "\n")
        }
    }

    /// Runs `body` holding the OpenCL lock.
    func serialized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Opens device `index` of `OpenCLDevices.list()`, or the first GPU (else the first device);
    /// `cacheDirectory` replaces `OpenCLProgramCache.directory` (tests).
    init(deviceIndex: Int?, cacheDirectory: URL? = nil) throws {
        OpenCLContext.processLock.lock()
        defer { OpenCLContext.processLock.unlock() }
        let all: [(device: OpenCLDevice, platform: cl_platform_id, id: cl_device_id)]
        switch OpenCLDevices.enumerate() {
        case let .success(list): all = list
        case let .failure(reason): throw EngineError.backendFailure(op: "opencl", message: reason.description)
        }
        guard !all.isEmpty else { throw EngineError.backendFailure(op: "opencl", message: "OpenCL platforms found, but no devices") }
        let chosen: (device: OpenCLDevice, platform: cl_platform_id, id: cl_device_id)
        if let deviceIndex {
            guard all.indices.contains(deviceIndex) else {
                throw EngineError.invalidArgument(op: "opencl", message: "no OpenCL device \(deviceIndex); `devices` lists 0...\(all.count - 1)")
            }
            chosen = all[deviceIndex]
        } else {
            chosen = all.first { $0.device.kind == "GPU" } ?? all[0]
        }
        device = chosen.device
        deviceID = chosen.id
        var groupSize = 0
        clGetDeviceInfo(chosen.id, cl_device_info(CL_DEVICE_MAX_WORK_GROUP_SIZE), MemoryLayout<Int>.size, &groupSize, nil)
        maxWorkGroupSize = groupSize
        var status: cl_int = 0
        var id: cl_device_id? = chosen.id
        guard let ctx = clCreateContext(nil, 1, &id, nil, nil, &status), status == CL_SUCCESS else {
            throw EngineError.backendFailure(op: "opencl", message: "clCreateContext on \(device.name) failed with status \(status)")
        }
        context = ctx
        guard let q = clCreateCommandQueue(ctx, chosen.id, 0, &status), status == CL_SUCCESS else {
            clReleaseContext(ctx)
            throw EngineError.backendFailure(op: "opencl", message: "clCreateCommandQueue on \(device.name) failed with status \(status)")
        }
        queue = q
        do {
            (program, programFromCache) = try OpenCLProgramCache.program(context: ctx, device: chosen.id, source: OpenCLKernels.source,
                                                                             directory: cacheDirectory ?? OpenCLProgramCache.directory)
        } catch {
            clReleaseCommandQueue(q); clReleaseContext(ctx)
            throw error
        }
    }

    deinit {
        lock.lock()
        defer { lock.unlock() }
        for k in kernels.values { clReleaseKernel(k) }
        clReleaseProgram(program)
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// A new device buffer of `bytes` bytes.
    func makeBuffer(_ bytes: Int) throws -> OpenCLBuffer {
        var status: cl_int = 0
        let created = serialized { clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), max(bytes, 4), nil, &status) }
        guard let mem = created, status == CL_SUCCESS else {
            if status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES || status == CL_INVALID_BUFFER_SIZE {
                throw EngineError.outOfMemory(op: "opencl buffer on \(device.name)", shape: [bytes / 4], bytes: bytes)
            }
            throw EngineError.backendFailure(op: "opencl", message: "clCreateBuffer(\(bytes) bytes) failed with status \(status)")
        }
        return OpenCLBuffer(mem: mem, owner: self)
    }

    /// Enqueues kernel `name` over `global` work-items (`local` per work-group, or the driver's choice).
    func launch(_ name: String, _ args: [KernelArgument], global: [Int], local: [Int]? = nil) throws {
        if global.contains(0) { return }
        lock.lock()
        defer { lock.unlock() }
        let kernel: cl_kernel
        if let k = kernels[name] {
            kernel = k
        } else {
            var status: cl_int = 0
            guard let k = clCreateKernel(program, name, &status), status == CL_SUCCESS else {
                throw EngineError.backendFailure(op: "opencl", message: "clCreateKernel(\(name)) failed with status \(status)")
            }
            kernels[name] = k
            kernel = k
        }
        for (i, arg) in args.enumerated() {
            let index = cl_uint(i), status: cl_int
            switch arg {
            case let .buffer(buffer):
                var m: cl_mem? = buffer.mem
                status = clSetKernelArg(kernel, index, MemoryLayout<cl_mem?>.size, &m)
            case let .int(v):
                var x = cl_int(v)
                status = clSetKernelArg(kernel, index, 4, &x)
            case let .long(v):
                var x = cl_long(v)
                status = clSetKernelArg(kernel, index, 8, &x)
            case let .float(v):
                var x = v
                status = clSetKernelArg(kernel, index, 4, &x)
            case let .long8(v):
                var lanes = [cl_long](repeating: 0, count: 8)
                for (j, x) in v.prefix(8).enumerated() { lanes[j] = cl_long(x) }
                status = clSetKernelArg(kernel, index, 64, &lanes)
            }
            try clCheck(status, "clSetKernelArg(\(name), \(i))")
        }
        let g = global.map { Int($0) }
        let started = profiling ? DispatchTime.now().uptimeNanoseconds : 0
        defer { if profiling { record(name, since: started) } }
        let status: cl_int
        if let local {
            status = clEnqueueNDRangeKernel(queue, kernel, cl_uint(g.count), nil, g, local, 0, nil, nil)
        } else {
            status = clEnqueueNDRangeKernel(queue, kernel, cl_uint(g.count), nil, g, nil, 0, nil, nil)
        }
        try clCheck(status, "launching \(name) over \(global)")
    }

    /// With profiling on, waits for the queue and adds the time since `started` to `name` (under the lock).
    func record(_ name: String, since started: UInt64) {
        guard profiling else { return }
        clFinish(queue)
        let entry = profile[name] ?? (0, 0)
        profile[name] = (entry.launches + 1, entry.seconds + Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    /// Waits for every queued command.
    func finish() throws { try clCheck(serialized { clFinish(queue) }, "clFinish") }
}

/// A device buffer of an `OpenCLContext`, released with the storage (or scratch use) that owns it.
final class OpenCLBuffer: DeviceBuffer, @unchecked Sendable {
    let mem: cl_mem
    let owner: OpenCLContext
    var context: AnyObject { owner }

    init(mem: cl_mem, owner: OpenCLContext) {
        self.mem = mem
        self.owner = owner
    }

    deinit {
        let mem = mem
        owner.serialized { _ = clReleaseMemObject(mem) }
    }

    func counted(upload: Bool) { owner.serialized { owner.countTensorCopy(upload: upload) } }

    func upload(from host: UnsafeRawPointer, bytes: Int) throws {
        if bytes == 0 { return }
        let status = owner.serialized {
            owner.countTransfer(upload: bytes)
            return clEnqueueWriteBuffer(owner.queue, mem, cl_bool(CL_TRUE), 0, bytes, host, 0, nil, nil)
        }
        try clCheck(status, "writing \(bytes) bytes to the device")
    }

    func download(into host: UnsafeMutableRawPointer, bytes: Int) throws {
        if bytes == 0 { return }
        let status = owner.serialized {
            owner.countTransfer(download: bytes)
            return clEnqueueReadBuffer(owner.queue, mem, cl_bool(CL_TRUE), 0, bytes, host, 0, nil, nil)
        }
        try clCheck(status, "reading \(bytes) bytes from the device")
    }
}

import CKernels
import Foundation
import Synchronization

/// Source of storage identities (never reused within a process).
private let nextStorageID = Atomic<UInt64>(1)
/// How many times tensor elements were copied host to device (uploads) and device to host
/// (read-backs) in one device context (`OpenCLBackend.transfers`): a test takes two snapshots
/// around some work to see what it moved.
public struct DeviceTransfers: Sendable, Equatable {
    public let uploads: Int
    public let readBacks: Int

    public init(uploads: Int, readBacks: Int) { self.uploads = uploads; self.readBacks = readBacks }

    /// The transfers since `earlier`.
    public func since(_ earlier: DeviceTransfers) -> DeviceTransfers {
        DeviceTransfers(uploads: uploads - earlier.uploads, readBacks: readBacks - earlier.readBacks)
    }
}

/// A copy of a storage's elements in a device's memory (made by a device backend such as
/// `OpenCLBackend`; released when the storage is).
protocol DeviceBuffer: AnyObject, Sendable {
    /// The device context the buffer lives in: a storage moved to another context is copied through the host.
    var context: AnyObject { get }
    /// Counts a copy of tensor elements in the buffer's context (`DeviceTransfers`).
    func counted(upload: Bool)
    /// Copies `bytes` bytes from host memory into the buffer (blocking).
    func upload(from host: UnsafeRawPointer, bytes: Int) throws
    /// Copies `bytes` bytes of the buffer into host memory (blocking, after every queued command).
    func download(into host: UnsafeMutableRawPointer, bytes: Int) throws
}

extension DeviceBuffer {
    func counted(upload: Bool) {}
}

/// A block of memory holding tensor elements. Several tensors (views) may share one storage.
///
/// Residency: the elements live in host memory and, once a device backend has used the storage, in
/// a device buffer too; two flags say which copy is current. The host accessors (`raw`, `floats`,
/// `halves`) first copy device results back when only the device copy is current, and then make
/// the host copy the only current one (the caller may write through the pointer). With no device
/// copy current (always, on the CPU backend) they cost one atomic load.
public final class TensorStorage: @unchecked Sendable {
    public let dtype: DType
    /// Number of elements.
    public let count: Int
    /// Memory of `count * dtype.size` bytes: 64-byte aligned when the storage allocated it, or
    /// read-only memory that `owner` keeps alive (e.g. weights used in place from a mapped file).
    private let host: UnsafeMutableRawPointer
    /// The object keeping borrowed memory alive; nil when the storage allocated `host` itself.
    private let owner: AnyObject?
    /// A process-unique identity, used as the key of caches derived from immutable contents
    /// (e.g. convolution weights in oneDNN's blocked layout).
    public let id: UInt64
    /// Set when a backend cached something under `id`; the cache entry is dropped on deinit.
    var hasDerivedCache = false

    /// Which copies are current (`hostCurrent`, `deviceCurrent` bits); changed under `deviceLock`.
    /// Neither bit: newly allocated, no contents yet (a device backend writing into it, e.g. a
    /// concatenation filling it part by part, has nothing to upload first).
    private let residency: Atomic<UInt8>
    private static let hostCurrent: UInt8 = 1, deviceCurrent: UInt8 = 2
    /// The device copy, when a device backend made one.
    private let deviceLock = Mutex<DeviceBuffer?>(nil)
    /// Why the last read-back from the device failed, if it did.
    private let readBackFailure = Mutex<String?>(nil)

    /// Throws when reading this storage back from the device failed (its host copy is then NaN).
    public func checkReadBack() throws {
        if let message = readBackFailure.withLock({ $0 }) {
            throw EngineError.backendFailure(op: "read back", message: "reading a tensor back from the device failed: \(message)")
        }
    }

    /// Allocates uninitialised storage; `op` and `shape` name the request in the error on failure.
    public init(dtype: DType, count: Int, op: String, shape: [Int]) throws {
        residency = Atomic<UInt8>(0)
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, count >= 0 else { throw EngineError.outOfMemory(op: op, shape: shape, bytes: Int.max) }
        // Refuse requests that cannot be satisfied instead of relying on overcommit.
        if bytes > TensorStorage.maxBytes { throw EngineError.outOfMemory(op: op, shape: shape, bytes: bytes) }
        guard let p = ck_alloc_tensor(bytes) else { throw EngineError.outOfMemory(op: op, shape: shape, bytes: bytes) }
        self.dtype = dtype
        self.count = count
        self.host = p
        self.owner = nil
        self.id = nextStorageID.add(1, ordering: .relaxed).oldValue
        let live = TensorStorage.live.add(bytes, ordering: .relaxed).newValue
        TensorStorage.peak.max(live, ordering: .relaxed)
    }

    /// Storage over `count` elements of read-only memory that `owner` keeps alive (a file mapping:
    /// 16-bit weights used in place). Writing to it is a bug; it is not counted in `liveBytes`.
    /// The pointer must be aligned to the element size.
    public init(borrowing memory: UnsafeRawPointer, dtype: DType, count: Int, owner: AnyObject) {
        residency = Atomic<UInt8>(TensorStorage.hostCurrent)
        precondition(Int(bitPattern: memory) % dtype.size == 0, "borrowed tensor memory must be aligned to its element size")
        self.dtype = dtype
        self.count = count
        self.host = UnsafeMutableRawPointer(mutating: memory)
        self.owner = owner
        self.id = nextStorageID.add(1, ordering: .relaxed).oldValue
    }

    /// Whether the elements are borrowed read-only memory (see `init(borrowing:dtype:count:owner:)`).
    public var isBorrowed: Bool { owner != nil }

    private static let live = Atomic<Int>(0), peak = Atomic<Int>(0)
    /// Bytes of tensor elements allocated now, and the most at any time since the last
    /// `resetPeakBytes` (the benchmarks report them beside the resident memory).
    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    public static var peakBytes: Int { peak.load(ordering: .relaxed) }
    public static func resetPeakBytes() { peak.store(live.load(ordering: .relaxed), ordering: .relaxed) }

    deinit {
        if hasDerivedCache {
            ck_conv_forget_weights(id)
            DerivedWeights.forget(id)
        }
        if owner != nil { return }
        ck_free_tensor(host, count * dtype.size)
        TensorStorage.live.subtract(count * dtype.size, ordering: .relaxed)
    }

    /// Returns the freed large blocks the allocator keeps for reuse to the system (see
    /// `ck_alloc_tensor`): called between the phases of a generation, so that the next phase's
    /// peak does not carry the previous one's spare blocks.
    public static func releaseCachedBlocks() { ck_tensor_cache_trim() }

    /// Bytes of freed large blocks kept for reuse now.
    public static var cachedBlockBytes: Int { ck_tensor_cache_bytes() }

    /// The most bytes of freed large blocks kept for reuse (0 keeps none). The default, 512 MiB,
    /// spares a 512x512 VAE decode 0.4 s of page faults; the low-memory configuration (half
    /// precision) sets 128 MiB.
    /// `SDSHELL_TENSOR_CACHE_MB` overrides whatever is set.
    public static func setCachedBlockLimit(_ bytes: Int) {
        guard ProcessInfo.processInfo.environment["SDSHELL_TENSOR_CACHE_MB"] == nil else { return }
        ck_tensor_cache_set_limit(bytes)
    }

    /// Largest single allocation the engine attempts: the machine's physical memory.
    public static let maxBytes: Int = Int(ProcessInfo.processInfo.physicalMemory)

    /// Bytes of the elements.
    var byteCount: Int { count * dtype.size }

    /// The host memory, current (device results are copied back first); the host copy becomes the
    /// only current one, since the caller may write through it.
    public var raw: UnsafeMutableRawPointer {
        let state = residency.load(ordering: .acquiring)
        if state & TensorStorage.deviceCurrent != 0 {
            makeHostCurrent()
        } else if state == 0 {
            residency.store(TensorStorage.hostCurrent, ordering: .releasing)   // the caller fills it
        }
        return host
    }

    /// f32 view of the memory (valid when dtype is f32); see `raw`.
    public var floats: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }
    /// 16-bit view of the memory (valid when dtype is f16 or bf16); see `raw`.
    public var halves: UnsafeMutablePointer<UInt16> { raw.assumingMemoryBound(to: UInt16.self) }

    /// Whether the device copy is current and the host copy is not (results not read back yet).
    var isDeviceOnly: Bool { residency.load(ordering: .acquiring) == TensorStorage.deviceCurrent }

    private func makeHostCurrent() {
        deviceLock.withLock { buffer in
            let state = residency.load(ordering: .acquiring)
            if state & TensorStorage.hostCurrent == 0, let buffer {
                buffer.counted(upload: false)
                do { try buffer.download(into: host, bytes: byteCount) } catch {
                    // The accessors cannot throw: the host copy becomes NaN (all bits set), and
                    // `checkReadBack()` (which `Tensor.toArray()` calls) reports the failure.
                    memset(host, 0xFF, byteCount)
                    readBackFailure.withLock { $0 = "\(error)" }
                }
            }
            residency.store(TensorStorage.hostCurrent, ordering: .releasing)
        }
    }

    /// How a device backend is about to use the storage.
    enum DeviceAccess {
        /// Kernels read the elements.
        case read
        /// Kernels overwrite every element (the previous contents are not needed).
        case overwrite
        /// Kernels read and write (e.g. a copy into a strided region).
        case update
    }

    /// The device buffer of `context` for `access`: made with `make` when the storage has none in
    /// that context (a copy in another context is read back first), filled from the host when the
    /// kernels read and the device copy is stale; after a write only the device copy is current.
    func deviceBuffer<B: DeviceBuffer>(context: AnyObject, access: DeviceAccess, make: (Int) throws -> B) throws -> B {
        try deviceLock.withLock { buffer in
            var state = residency.load(ordering: .acquiring)
            if let old = buffer, old.context !== context {
                if state == TensorStorage.deviceCurrent {
                    old.counted(upload: false)
                    try old.download(into: host, bytes: byteCount)
                }
                buffer = nil
                state = TensorStorage.hostCurrent
                residency.store(state, ordering: .releasing)
            }
            let b: B
            if let existing = buffer as? B { b = existing } else { b = try make(max(byteCount, 4)); buffer = b }
            // Upload when the kernels read the elements and only the host copy holds them.
            if access != .overwrite, state == TensorStorage.hostCurrent {
                b.counted(upload: true)
                try b.upload(from: host, bytes: byteCount)
                state |= TensorStorage.deviceCurrent
            }
            if access != .read { state = TensorStorage.deviceCurrent }
            residency.store(state, ordering: .releasing)
            return b
        }
    }
}

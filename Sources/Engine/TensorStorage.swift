import CKernels
import Foundation
import Synchronization

/// Source of storage identities (never reused within a process).
private let nextStorageID = Atomic<UInt64>(1)

/// A block of host memory holding tensor elements. Several tensors (views) may share one storage.
public final class TensorStorage: @unchecked Sendable {
    public let dtype: DType
    /// Number of elements.
    public let count: Int
    /// 64-byte aligned memory of `count * dtype.size` bytes.
    public let raw: UnsafeMutableRawPointer
    /// A process-unique identity, used as the key of caches derived from immutable contents
    /// (e.g. convolution weights in oneDNN's blocked layout).
    public let id: UInt64
    /// Set when a backend cached something under `id`; the cache entry is dropped on deinit.
    var hasDerivedCache = false

    /// Allocates uninitialised storage; `op` and `shape` name the request in the error on failure.
    public init(dtype: DType, count: Int, op: String, shape: [Int]) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, count >= 0 else { throw EngineError.outOfMemory(op: op, shape: shape, bytes: Int.max) }
        // Refuse requests that cannot be satisfied instead of relying on overcommit.
        if bytes > TensorStorage.maxBytes { throw EngineError.outOfMemory(op: op, shape: shape, bytes: bytes) }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, 64, max(bytes, 64)) == 0, let p else {
            throw EngineError.outOfMemory(op: op, shape: shape, bytes: bytes)
        }
        self.dtype = dtype
        self.count = count
        self.raw = p
        self.id = nextStorageID.add(1, ordering: .relaxed).oldValue
    }

    deinit {
        if hasDerivedCache {
            ck_conv_forget_weights(id)
            WinogradConvolution.forget(id)
        }
        free(raw)
    }

    /// Largest single allocation the engine attempts: the machine's physical memory.
    public static let maxBytes: Int = Int(ProcessInfo.processInfo.physicalMemory)

    /// f32 view of the memory (valid when dtype is f32).
    public var floats: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }
    /// 16-bit view of the memory (valid when dtype is f16 or bf16).
    public var halves: UnsafeMutablePointer<UInt16> { raw.assumingMemoryBound(to: UInt16.self) }
}

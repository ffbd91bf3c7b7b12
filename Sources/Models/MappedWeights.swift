import Formats
import Synchronization

/// The weights a model part uses in place from its model file's memory mapping (16-bit weight
/// matrices at half precision, embedding tables), so that they can be dropped from resident
/// memory while the part is idle: `releaseResidentPages()` after the text encoder, the UNet or the
/// VAE has done its share of a generation. The pages stay in the kernel's page cache and are
/// mapped again (a minor fault, no copy) when the part next runs; a model loaded with weights in
/// process memory (f32 precision, or a file whose layout does not allow use in place) has nothing
/// here and is unaffected.
public final class MappedWeights: Sendable {
    private let tensors = Mutex<[StoredTensor]>([])

    init() {}

    /// Records a tensor used in place.
    func add(_ t: StoredTensor) { tensors.withLock { $0.append(t) } }

    /// Bytes of the tensors used in place.
    public var bytes: Int { tensors.withLock { $0.reduce(0) { $0 + $1.count * $1.dtype.size } } }

    /// Drops the pages of every tensor used in place from this process's resident memory.
    public func releaseResidentPages() {
        for t in tensors.withLock({ $0 }) { t.releasePages() }
    }
}

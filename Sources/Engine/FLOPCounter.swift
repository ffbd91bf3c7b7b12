import Synchronization

/// Counts the multiply-add work of the ops `matmul`, `linear`, `conv2d` and
/// `scaledDotProductAttention` as their direct algorithms do it (2 FLOP per multiply-add),
/// whatever algorithm ran: the measure of work `sdbench` divides by time (so Winograd's fewer
/// multiplies show as a rate above the machine's peak). Norms and element-wise ops are left out
/// (under 1% of a UNet's FLOPs); of a backward pass only its matrix products count.
public enum FLOPCounter {
    private static let total = Atomic<Int>(0)

    /// FLOPs counted since the process started (or the last `reset`).
    public static var count: Int { total.load(ordering: .relaxed) }
    public static func reset() { total.store(0, ordering: .relaxed) }
    static func add(_ flops: Int) { total.add(flops, ordering: .relaxed) }
}

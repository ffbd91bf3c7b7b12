import Synchronization

/// One block of memory shared by operations that need a large temporary for the length of one
/// call: the Winograd transforms of 16-bit weights and 16-bit weights widened to f32 for oneDNN.
/// It is kept at the largest size asked so far and reused, so that these temporaries are not fresh
/// pages faulted in at every call (a 16-bit checkpoint keeps no spare tensor blocks,
/// `TensorStorage`): a 1280 x 1280 transform took 57 ms into fresh pages against 22 ms into reused
/// memory (`scripts/dev/winograd_transform_timing.c`, docs/performance.md). A call that finds it
/// held (by another thread) gets fresh memory; the larger block is the one kept.
enum ScratchMemory {
    private final class Block: @unchecked Sendable {
        let memory: Tensor
        init(_ memory: Tensor) { self.memory = memory }
    }
    private static let held = Mutex<Block?>(nil)

    /// Runs `body` with at least `floats` floats of scratch (f32, contents undefined), which `body`
    /// must not keep.
    static func with<R>(floats: Int, op: String, _ body: (Tensor) throws -> R) throws -> R {
        let taken = held.withLock { block -> Block? in defer { block = nil }; return block }
        let memory = try taken.flatMap { $0.memory.count >= floats ? $0.memory : nil }
            ?? Tensor(uninitialized: [max(floats, 1)], op: op)
        defer {
            let kept = Block(memory)
            held.withLock { block in if (block?.memory.count ?? 0) < kept.memory.count { block = kept } }
        }
        return try body(memory)
    }
}

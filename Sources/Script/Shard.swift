import Formats
import Foundation

/// One machine's share of a script run on many (`sdshell --shard K/N FILE`): the script's work
/// units (each batch of each generation, img2img and grid cell, and each `train`) are numbered in
/// the order a single run makes them, and shard K makes the units whose number is K modulo N.
/// Everything else (settings, variables, models) runs on every shard, so each unit is made exactly
/// as one machine would make it. A shard writes under `OUTDIR/shards/K-of-N/`; `ShardMerge`
/// assembles the grids and one journal from all of them.
public struct Shard: Sendable, Equatable {
    /// 0-based.
    public let index: Int
    public let count: Int

    /// The largest shard count accepted.
    public static let maximumCount = 100_000

    public init(index: Int, count: Int) throws(ShardError) {
        guard count >= 1, count <= Self.maximumCount else { throw ShardError("the shard count must be 1 to \(Self.maximumCount), not \(count)") }
        guard index >= 0, index < count else { throw ShardError("shard \(index) of \(count) does not exist: shards are numbered 0 to \(count - 1)") }
        self.index = index
        self.count = count
    }

    /// Reads "K/N" (K from 0 to N-1).
    public init(_ text: String) throws(ShardError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw ShardError("--shard \"\(text.escapingControlCharacters)\" is not K/N (shard K of N, K from 0 to N-1), e.g. 0/3")
        }
        try self.init(index: k, count: n)
    }

    /// The shard a scheduler names in the environment: a Slurm array task (`SLURM_ARRAY_TASK_ID`
    /// of `count`, or of `SLURM_ARRAY_TASK_COUNT` for an array submitted as `--array=0-(N-1)`; a
    /// task resubmitted alone, `--array=K`, gives the count with `--shards N`), or a Kubernetes
    /// Indexed Job's `JOB_COMPLETION_INDEX` of `count` (the Job's completions, which the pod is not
    /// told: `--shards N`). nil when neither is there.
    public static func fromEnvironment(_ env: [String: String], count: Int? = nil) throws(ShardError) -> Shard? {
        func number(_ name: String) throws(ShardError) -> Int? {
            guard let text = env[name] else { return nil }
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)) else { throw ShardError("\(name)=\"\(text.escapingControlCharacters)\" is not a number") }
            return n
        }
        if let id = try number("SLURM_ARRAY_TASK_ID") {
            if let count { return try Shard(index: id, count: count) }
            guard let total = try number("SLURM_ARRAY_TASK_COUNT") else { throw ShardError("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT: give the count with --shards N") }
            guard try number("SLURM_ARRAY_TASK_MIN") ?? 0 == 0, try number("SLURM_ARRAY_TASK_STEP") ?? 1 == 1 else {
                throw ShardError("the Slurm array is not 0-\(total - 1): submit --array=0-\(total - 1), or give the shard count with --shards N")
            }
            return try Shard(index: id, count: total)
        }
        if let index = try number("JOB_COMPLETION_INDEX") {
            guard let count else { throw ShardError("JOB_COMPLETION_INDEX is set: give the Job's completions with --shards N") }
            return try Shard(index: index, count: count)
        }
        return nil
    }

    /// The shard's folder name under `OUTDIR/shards/`.
    public var folderName: String { "\(index)-of-\(count)" }

    /// Whether work unit `unit` is this shard's.
    public func owns(_ unit: Int) -> Bool { unit % count == index }

    /// The folder a shard writes in for the `outdir` the script names.
    public func outdir(_ base: String) -> String { base + "/shards/" + folderName }
}

/// A shard that cannot be given or merged, with the reason.
public struct ShardError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where a sharded run is: the units numbered so far, the unit being journalled, the grids.
struct ShardState {
    let shard: Shard
    /// Units numbered so far (the next unit's number).
    var units = 0
    /// The unit whose journal entry is being written, if any.
    var current: Int?
    /// Grid statements run so far (their manifests are named by it).
    var grids = 0
    /// Shard folders emptied in this run (a rerun replaces a shard's files).
    var cleared: Set<String> = []
    /// The locks on this run's shard folders (held until the process ends): a second copy of the
    /// same shard, running at the same time, is refused instead of mixing its files with ours.
    var locks: [FileLock] = []
    /// Why a shard folder could not be taken (reported at the next unit).
    var conflict: String?
    /// Embeddings trained in this run: a later generation naming one depends on another shard's work.
    var trained: Set<String> = []

    /// The journal entry's sort key: a unit's entry sorts by its unit, any other entry after the
    /// units before it (`ShardMerge` interleaves the shards' journals by it).
    var entryKey: Int { current.map { 2 * $0 + 1 } ?? 2 * units }
}

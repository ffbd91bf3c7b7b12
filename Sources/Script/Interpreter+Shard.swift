import Diffusion
import Formats
import Foundation

/// A sharded run (`Shard`): the units, the shard's folder, the grids' manifests, the end marker.
extension Interpreter {
    /// Makes this interpreter run shard `shard` of a script: it makes only its units, writes
    /// under `OUTDIR/shards/K-of-N/` (emptied first: a rerun replaces the shard's files), and
    /// puts a sort key first in every journal entry.
    public func runAsShard(_ shard: Shard) {
        shardState = ShardState(shard: shard)
        journal.entryComment = { [unowned self] in "shard key \(self.shardState?.entryKey ?? 0)" }
    }

    /// The shard's folder for the `outdir` the script names, emptied the first time it is used in this run.
    func shardOutdir(_ base: String) -> String {
        guard let state = shardState else { return base }
        let folder = state.shard.outdir(base)
        if !state.cleared.contains(folder) {
            shardState?.cleared.insert(folder)
            do {
                try Folder.create(base + "/shards")
                shardState?.locks.append(try FileLock(for: folder, purpose: "run shard \(state.shard.index) of \(state.shard.count)"))
            } catch {
                shardState?.conflict = "\(error)"
                return folder
            }
            // Out of the way first (one rename), then removed: a reader never sees half a folder.
            let trash = (folder as NSString).deletingLastPathComponent + "/.removing-\(state.shard.folderName)-\(UUID().uuidString)"
            if rename(folder, trash) == 0 { try? FileManager.default.removeItem(atPath: trash) }
        }
        return folder
    }

    /// Numbers the next work unit; whether this run makes it (always, when not sharded). Throws
    /// when the shard's folder is another process's (the same shard running twice).
    func nextShardUnit(at position: SourcePosition) throws -> (number: Int, owned: Bool) {
        guard let state = shardState else { return (0, true) }
        if let conflict = state.conflict { throw ScriptError(position, conflict) }
        shardState?.units += 1
        return (state.units, state.shard.owns(state.units))
    }

    static func randomSeedInShard(_ shard: Shard) -> String {
        "seed -1 draws a random seed, and each of the \(shard.count) shards would draw its own: give the seeds (seed=N) to run a script sharded"
    }

    /// A grid's layout and this shard's cells, for `ShardMerge` to compose the grid from all shards.
    struct GridManifest: Codable {
        var statement: String
        var columns: Int
        var rows: Int
        var columnLabels: [String]
        var rowLabels: [String]
        var zLabel: String?
        /// This shard's cells: index (row by row) to the file, relative to the shard's folder, and its seed.
        var cells: [String: Cell]
        struct Cell: Codable {
            var path: String
            var seed: Int64
        }
    }

    /// Writes grid `grid` (its `z`th picture)'s manifest into the shard's folder.
    func writeGridManifest(_ manifest: GridManifest, grid: Int, z: Int, outdir: String) throws {
        let folder = outdir + "/grids"
        try Folder.create(folder)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(Array(try encoder.encode(manifest)), to: folder + "/\(grid)-\(z).json")
    }

    /// Marks a finished shard: `done` in each folder it wrote, with its unit count (`ShardMerge`
    /// merges only finished shards, and checks they numbered the same units).
    public func finishShard() throws {
        guard shardState != nil else { return }
        if let conflict = shardState?.conflict { throw ShardError(conflict) }
        try journal.writePending(in: outdir)   // (the shard's folder for the outdir in force)
        guard let state = shardState else { return }
        let text = "shard \(state.shard.index) of \(state.shard.count)\nunits \(state.units)\n"
        for folder in state.cleared {
            try Folder.create(folder)
            try AtomicFile.write(Array(text.utf8), to: folder + "/done")
        }
    }
}

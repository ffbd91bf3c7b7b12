import Formats
import Foundation
import Imaging

/// `sdshell merge OUTDIR`: the shards of a sharded run (`OUTDIR/shards/K-of-N/`, `Shard`) put
/// together as one machine's run would have left them: each grid composed from the cells of all
/// shards into `OUTDIR/txt2img-grids/`, and one journal in `OUTDIR/sessions/` with every entry of
/// every shard in the single run's order, which `replay … verify=true` reproduces. A missing or
/// unfinished shard is named and nothing is written.
public enum ShardMerge {
    /// What a merge wrote.
    public struct Result {
        public var journal: String
        public var grids: [String]
        public var shards: Int
        public var units: Int
    }

    /// A journal entry of a shard: its sort key and lines (the key comment removed).
    struct Entry {
        var key: Int
        var grid: Int?
        var lines: [String]
    }

    /// The most shard folders read (a bound on what a folder listing can make us do).
    static let maximumShards = Shard.maximumCount
    /// The largest shard journal read.
    static let maximumJournalBytes = 256 << 20

    public static func merge(outdir: String) throws -> Result {
        let shardsFolder = outdir + "/shards"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: shardsFolder)) ?? []).filter { !$0.hasPrefix(".") }
        var counts: Set<Int> = []
        for name in names {
            let parts = name.split(separator: "-")
            guard parts.count == 3, parts[1] == "of", Int(parts[0]) != nil, let n = Int(parts[2]) else { continue }
            counts.insert(n)
        }
        guard let count = counts.first else { throw ShardError("\(shardsFolder): no shard folders (K-of-N) to merge") }
        guard counts.count == 1 else {
            throw ShardError("\(shardsFolder) holds shards of runs split \(counts.sorted().map(String.init).joined(separator: " and ")) ways: remove the other run's folders first")
        }
        guard count <= maximumShards else { throw ShardError("\(shardsFolder): \(count) shards are more than \(maximumShards)") }
        // Every shard finished, and with the same units.
        var missing: [String] = []
        var units: Set<Int> = []
        for k in 0..<count {
            let marker = shardsFolder + "/\(k)-of-\(count)/done"
            guard let text = try? String(contentsOfFile: marker, encoding: .utf8) else {
                missing.append("\(k) (no \(marker))")
                continue
            }
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("units ") }), let n = Int(line.dropFirst(6)) { units.insert(n) }
        }
        guard missing.isEmpty else {
            throw ShardError("\(outdir): \(missing.count) of \(count) shards missing or unfinished: shard " + missing.joined(separator: ", shard ")
                             + "; run them (again) and merge then. Nothing was written.")
        }
        guard units.count == 1, let unitCount = units.first else {
            throw ShardError("\(outdir): the shards numbered different work (\(units.sorted().map(String.init).joined(separator: ", ")) units): they ran different scripts or settings")
        }
        // The journals, interleaved by key: units from their shard, everything else from shard 0.
        var journals: [[Entry]] = []
        var header: [String] = []
        for k in 0..<count {
            let (lines, entries) = try readJournal(shardsFolder + "/\(k)-of-\(count)")
            if k == 0 { header = lines }
            journals.append(entries)
        }
        let shared = journals.map { $0.filter { $0.key % 2 == 0 } }
        for k in 1..<max(count, 1) where shared[k].map(\.lines) != shared[0].map(\.lines) {
            throw ShardError("\(outdir): shard \(k)'s journal differs from shard 0's outside its own images: the shards ran different scripts or settings")
        }
        var merged = shared[0]
        for (k, entries) in journals.enumerated() {
            for entry in entries where entry.key % 2 == 1 {
                guard (entry.key / 2) % count == k else { throw ShardError("\(outdir): shard \(k)'s journal has unit \(entry.key / 2), another shard's") }
                merged.append(entry)
            }
        }
        merged.sort { $0.key < $1.key }   // stable: shard 0's order among equal keys
        // The grids, composed in memory first: nothing is written unless every cell is there.
        let font = try GridFont()
        var pictures: [(grid: Int, cells: [(rgb: [UInt8], width: Int, height: Int)], layout: Interpreter.GridManifest, infotext: String, seed: Int64)] = []
        for grid in Set(merged.compactMap(\.grid)).sorted() {
            for z in 0... {
                var layout: Interpreter.GridManifest?
                var files: [Int: (path: String, seed: Int64)] = [:]
                for k in 0..<count {
                    let folder = shardsFolder + "/\(k)-of-\(count)"
                    let file = folder + "/grids/\(grid)-\(z).json"
                    guard let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int else { continue }
                    guard size <= 16 << 20, let data = FileManager.default.contents(atPath: file) else { throw ShardError("\(file): over 16 MiB, not a grid manifest") }
                    let manifest: Interpreter.GridManifest
                    do { manifest = try JSONDecoder().decode(Interpreter.GridManifest.self, from: data) } catch {
                        throw ShardError("\(folder)/grids/\(grid)-\(z).json: not a grid manifest")
                    }
                    if layout == nil { layout = manifest }
                    for (slot, cell) in manifest.cells {
                        guard let index = Int(slot), !cell.path.contains("..") else { throw ShardError("\(folder)/grids/\(grid)-\(z).json: a bad cell \(slot.escapingControlCharacters)") }
                        files[index] = (folder + "/" + cell.path, cell.seed)
                    }
                }
                guard let layout else {
                    if z == 0 { throw ShardError("\(outdir): no shard wrote grid \(grid)'s manifest") }
                    break
                }
                let (total, overflow) = layout.columns.multipliedReportingOverflow(by: layout.rows)
                guard layout.columns > 0, layout.rows > 0, !overflow, total <= 1 << 20 else {
                    throw ShardError("\(outdir): grid \(grid) has \(layout.columns) x \(layout.rows) cells")
                }
                var cells: [(rgb: [UInt8], width: Int, height: Int)] = []
                for index in 0..<total {
                    guard let file = files[index] else { throw ShardError("\(outdir): grid \(grid) has no cell \(index) in any shard. Nothing was written.") }
                    let image = try RGBImage.read(file.path)
                    cells.append((image.rgb, image.width, image.height))
                }
                let first = try PNGFile.read(files[0]!.path)
                pictures.append((grid, cells, layout, first.text("parameters") ?? "", files[0]!.seed))
            }
        }
        // Written: the grids, then the journal naming them.
        var gridLines: [Int: [String]] = [:]
        var gridPaths: [String] = []
        for picture in pictures {
            let (path, digest) = try Interpreter.saveGrid(cells: picture.cells, picture.layout, firstInfotext: picture.infotext,
                                                          firstSeed: picture.seed, font: font, outdir: outdir)
            gridLines[picture.grid, default: []].append(Journal.annotation(path: path, digest: digest))
            gridPaths.append(path)
        }
        var text = header
        text.append("# merged from \(count) shards (\(unitCount) work units) by `sdshell merge`")
        for entry in merged { text += entry.lines + (entry.grid.flatMap { gridLines[$0] } ?? []) }
        let sessions = outdir + "/sessions"
        try Folder.create(sessions)
        // A name of its own: two merges in the same second never overwrite each other.
        let stem = sessions + "/merged-\(count)-shards-\(Journal.fileStamp(Date()))"
        let bytes = Array((text.joined(separator: "\n") + "\n").utf8)
        for n in 1...10_000 {
            let path = n == 1 ? stem + ".sdscript" : "\(stem)-\(n).sdscript"
            if try AtomicFile.create(bytes, at: path) { return Result(journal: path, grids: gridPaths, shards: count, units: unitCount) }
        }
        throw ShardError("\(stem).sdscript: 10,000 merged journals were written in the same second")
    }

    /// A shard's one session journal, split into its header and its keyed entries.
    static func readJournal(_ folder: String) throws -> (header: [String], entries: [Entry]) {
        let sessions = folder + "/sessions"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: sessions)) ?? []).filter { $0.hasSuffix(".sdscript") }
        guard files.count <= 1 else { throw ShardError("\(sessions): \(files.count) journals, where a shard run writes one") }
        guard let file = files.first else { return ([], []) }   // a shard that made nothing and journalled nothing
        let path = sessions + "/" + file
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= maximumJournalBytes, let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ShardError("\(path): cannot read the journal (over \(maximumJournalBytes >> 20) MiB, or not UTF-8)")
        }
        var header: [String] = []
        var entries: [Entry] = []
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        for line in lines {
            if line.hasPrefix("# shard key "), let key = Int(line.dropFirst("# shard key ".count)) {
                entries.append(Entry(key: key, grid: nil, lines: []))
            } else if entries.isEmpty {
                if !line.isEmpty { header.append(line) }
            } else if line.hasPrefix("# shard grid "), let grid = Int(line.dropFirst("# shard grid ".count)) {
                entries[entries.count - 1].grid = grid
            } else {
                entries[entries.count - 1].lines.append(line)
            }
        }
        return (header, entries)
    }
}

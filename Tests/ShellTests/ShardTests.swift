import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// A script sharded over machines (`Shard`, `ShardMerge`), with the shards run one after another
/// in this process: the merged grid's pixels equal a single run's, the merged journal replays, a
/// missing shard is named with nothing written, a shard rerun after an interrupt replaces its own
/// files, sharded trainings give byte-identical embeddings, and bad shard values are refused.
@Suite(.serialized) struct ShardTests {
    let tiny: TinySession
    init() throws { tiny = try TinySession("shard") }

    static let gridScript = """
    generate "a red circle" seed=5 count=2
    grid "a red circle" seed=[1, 2, 3] cfg=[1, 4, 7]
    generate "a blue square" seed=9
    """

    /// Runs `script` in a fresh session writing to `outdir`, as `shard` when given.
    func run(_ script: String, outdir: String, shard: Shard? = nil, host: RecordingHost = RecordingHost()) throws -> Interpreter {
        let interpreter = try tiny.start(host, outdir: outdir)
        if let shard { interpreter.runAsShard(shard) }
        try interpreter.run(source: script, file: "grid.sdscript")
        try interpreter.finishShard()
        return interpreter
    }

    func grids(_ outdir: String) throws -> [String] {
        let folder = tiny.folder + "/" + outdir + "/txt2img-grids"
        return try FileManager.default.contentsOfDirectory(atPath: folder).sorted().map { folder + "/" + $0 }
    }

    @Test func aShardedGridMergesToTheSingleRunsPixelsAndReplays() throws {
        _ = try run(Self.gridScript, outdir: "single")
        for k in 0..<3 { _ = try run(Self.gridScript, outdir: "sharded", shard: try Shard(index: k, count: 3)) }
        // Each shard made its own units: 2 batches, 9 cells, 1 image = 12 units, 4 each.
        for k in 0..<3 {
            let images = try FileManager.default.contentsOfDirectory(atPath: tiny.folder + "/sharded/shards/\(k)-of-3/txt2img")
            #expect(images.count == 4, "shard \(k): \(images)")
        }
        let result = try ShardMerge.merge(outdir: tiny.folder + "/sharded")
        #expect(result.units == 12 && result.shards == 3 && result.grids.count == 1)
        let single = try RGBImage.read(try grids("single")[0]), merged = try RGBImage.read(result.grids[0])
        #expect(merged.width == single.width && merged.height == single.height)
        #expect(merged.rgb == single.rgb, "the merged grid's pixels are the single run's")

        // The merged journal lists the units in the single run's order and replays them all.
        let journal = try String(contentsOfFile: result.journal, encoding: .utf8)
        let generateLines = journal.split(separator: "\n").filter { $0.hasPrefix("generate ") || $0.hasPrefix("grid ") }
        #expect(generateLines.count == 4 && generateLines[0].contains("seed=5") && generateLines[1].contains("seed=6")
                && generateLines[2].hasPrefix("grid ") && generateLines[3].contains("seed=9"), "\(generateLines)")
        let host = RecordingHost()
        let replayer = try tiny.start(host, outdir: "replay")
        try replayer.run(source: "replay \"\(result.journal)\" verify=true", file: "t")
        #expect(host.lines.contains("reproduced 4/4"), "\(host.lines)")
    }

    @Test func aMissingShardIsNamedAndNothingIsWritten() throws {
        for k in [0, 2] { _ = try run(Self.gridScript, outdir: "partial", shard: try Shard(index: k, count: 3)) }
        let outdir = tiny.folder + "/partial"
        let error = #expect(throws: ShardError.self) { try ShardMerge.merge(outdir: outdir) }
        #expect(error?.description.contains("shard 1 (no \(outdir)/shards/1-of-3/done)") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: outdir + "/txt2img-grids"))
        #expect(!FileManager.default.fileExists(atPath: outdir + "/sessions"))
    }

    /// Shard 1 stopped in its grid, then run again: its folder is replaced, not added to.
    @Test func aRerunShardReplacesItsOwnFiles() throws {
        let stopped = RecordingHost()
        stopped.interruptAfter = 3   // in its first grid cell (its units are 1, 4, 7, 10, of 2 steps each)
        #expect(throws: Interrupted.self) { _ = try run(Self.gridScript, outdir: "rerun", shard: try Shard(index: 1, count: 3), host: stopped) }
        let folder = tiny.folder + "/rerun/shards/1-of-3"
        #expect(!FileManager.default.fileExists(atPath: folder + "/done"))
        #expect(throws: ShardError.self) { try ShardMerge.merge(outdir: tiny.folder + "/rerun") }
        for k in 0..<3 { _ = try run(Self.gridScript, outdir: "rerun", shard: try Shard(index: k, count: 3)) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/txt2img").count == 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/sessions").count == 1)
        let result = try ShardMerge.merge(outdir: tiny.folder + "/rerun")
        _ = try run(Self.gridScript, outdir: "single-rerun")
        #expect(try RGBImage.read(result.grids[0]).rgb == RGBImage.read(try grids("single-rerun")[0]).rgb)
    }

    /// A grid manifest from another machine is untrusted: a size whose cell count overflows is
    /// refused with the reason (no trap); two merges never overwrite each other's journal.
    @Test func hostileManifestsAreRefusedAndMergesDoNotOverwrite() throws {
        let script = "grid \"a red circle\" seed=[1, 2]"
        for k in 0..<2 { _ = try run(script, outdir: "hostile", shard: try Shard(index: k, count: 2)) }
        let outdir = tiny.folder + "/hostile"
        let first = try ShardMerge.merge(outdir: outdir), second = try ShardMerge.merge(outdir: outdir)
        #expect(first.journal != second.journal && FileManager.default.fileExists(atPath: first.journal))
        let manifest = outdir + "/shards/0-of-2/grids/0-0.json"
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifest))) as? [String: Any])
        json["columns"] = Int.max
        json["rows"] = 3
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: manifest))
        let error = #expect(throws: ShardError.self) { try ShardMerge.merge(outdir: outdir) }
        #expect(error?.description.contains("cells") == true, "\(String(describing: error))")
    }

    /// A second copy of a shard running at the same time (a double submission) is refused
    /// before it writes, and the first copy's files stay.
    @Test func theSameShardTwiceAtOnceIsRefused() throws {
        let first = try run(Self.gridScript, outdir: "twice", shard: try Shard(index: 0, count: 3))
        let second = try tiny.start(outdir: "twice")
        second.runAsShard(try Shard(index: 0, count: 3))
        #expect(TinySession.error(second, Self.gridScript)?.contains("another session") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tiny.folder + "/twice/shards/0-of-3/txt2img").count == 4)
        withExtendedLifetime(first) {}
    }

    @Test func shardedTrainingsGiveTheSameEmbeddings() throws {
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        func script(_ embeddings: String) -> String {
            """
            set embeddings_dir="\(tiny.folder)/\(embeddings)"
            embedding new "first" init="a cat" vectors=1
            train "first" data="\(pictures)" steps=3 size=64 save_every=2
            embedding new "second" init="a dog" vectors=2
            train "second" data="\(pictures)" steps=3 size=64 lr="0.01" save_every=2
            """
        }
        try FileManager.default.createDirectory(atPath: tiny.folder + "/one", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tiny.folder + "/two", withIntermediateDirectories: true)
        _ = try run(script("one"), outdir: "train-single")
        let hosts = [RecordingHost(), RecordingHost()]
        for k in 0..<2 { _ = try run(script("two"), outdir: "train-sharded", shard: try Shard(index: k, count: 2), host: hosts[k]) }
        #expect(hosts[0].lines.contains { $0.hasPrefix("trained ") && $0.contains("first.") }, "\(hosts[0].lines)")
        #expect(hosts[1].lines.contains { $0.hasPrefix("trained ") && $0.contains("second.") }, "\(hosts[1].lines)")
        for name in try FileManager.default.contentsOfDirectory(atPath: tiny.folder + "/one").filter({ $0.hasSuffix(".pt") || $0.hasSuffix(".safetensors") }) {
            let a = try Data(contentsOf: URL(fileURLWithPath: tiny.folder + "/one/" + name))
            let b = try Data(contentsOf: URL(fileURLWithPath: tiny.folder + "/two/" + name))
            #expect(a == b, "\(name) byte-identical")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tiny.folder + "/two").filter { $0.hasSuffix(".pt") }.count == 2)
    }

    @Test func badShardValuesAreRefused() throws {
        #expect(try Shard("1/3") == Shard(index: 1, count: 3))
        for bad in ["3/3", "0/0", "a/b", "1/2/3", "-1/3", "2", ""] {
            #expect(throws: ShardError.self, "\(bad)") { try Shard(bad) }
        }
        let slurm = try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"])
        #expect(slurm == (try Shard(index: 2, count: 3)))
        // A task resubmitted alone (--array=1) says it is 1 of 1: the count comes from --shards.
        #expect(throws: ShardError.self) { try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "1"]) }
        #expect(try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "1"], count: 3) == Shard(index: 1, count: 3))
        #expect(throws: ShardError.self) { try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "1"]) }
        #expect(try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "1"], count: 4) == Shard(index: 1, count: 4))
        #expect(try Shard.fromEnvironment(["HOME": "/"]) == nil)
        #expect(throws: ShardError.self) { try Shard.fromEnvironment(["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"]) }
        // A random seed cannot be sharded.
        let interpreter = try tiny.start()
        interpreter.runAsShard(try Shard(index: 0, count: 2))
        #expect(TinySession.error(interpreter, "generate \"x\" seed=-1")?.contains("seed -1 draws a random seed") == true)
        #expect(TinySession.error(interpreter, "grid \"x\" seed=[1, -1]")?.contains("seed -1 draws a random seed") == true)
        // A generation naming an embedding the script trains depends on another shard's training.
        let second = try tiny.start()
        second.runAsShard(try Shard(index: 1, count: 2))
        #expect(TinySession.error(second, "train \"dep\" data=\"nowhere\" steps=1\ngenerate \"a dep picture\" seed=1")?.contains("an embedding this script trains") == true)
    }

    /// The command line: a bad --shard is refused with the reason (exit 2) before anything runs;
    /// a Slurm array task's environment names the shard; merge names what is missing.
    @Test func theCommandLineChecksShards() throws {
        guard let binary = SDShellBinary.path else { Issue.record("no sdshell binary"); return }
        func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            process.environment = ["PATH": "/usr/bin:/bin", "HOME": tiny.folder].merging(environment) { $1 }
            process.currentDirectoryURL = URL(fileURLWithPath: tiny.folder)
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        for (bad, reason) in [("3/3", "shard 3 of 3 does not exist"), ("0/0", "the shard count must be 1"), ("x", "is not K/N")] {
            let (status, output) = try run(["--shard", bad, "-e", "print 1"])
            #expect(status == 2 && output.contains(reason) && !output.contains("\n1\n"), "\(bad): \(output)")
        }
        let slurm = try run(["-e", "print 1"], environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"])
        #expect(slurm.status == 0 && slurm.output.contains("running shard 1 of 2"), "\(slurm.output)")
        #expect(FileManager.default.fileExists(atPath: tiny.folder + "/outputs/shards/1-of-2/done"))
        let merge = try run(["merge", "outputs"])
        #expect(merge.status == 1 && merge.output.contains("shard 0 (no outputs/shards/0-of-2/done)"), "\(merge.output)")
    }
}

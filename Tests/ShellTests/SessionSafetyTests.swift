import Foundation
import Imaging
@testable import Formats
import Engine
import Diffusion
import Testing
import TestSupport
@testable import Script

/// What issue #26 found losing files or crashing the interpreter: the journal, output numbering,
/// interruption and the bounds on settings.
@Suite(.serialized) struct SessionSafetyTests {
    let tiny: TinySession
    var folder: String { tiny.folder }
    var model: String { tiny.model }

    init() throws { tiny = try TinySession("safety") }

    func session(_ host: RecordingHost = RecordingHost(), journal: Journal = Journal(), outdir: String = "out") throws -> Interpreter {
        try tiny.start(host, journal: journal, outdir: outdir)
    }

    func error(_ interpreter: Interpreter, _ text: String) -> String? { TinySession.error(interpreter, text) }

    // Item 3: a journal that cannot be written fails the statement instead of being dropped.
    @Test func aFailedJournalWriteIsAnError() throws {
        let shell = Interpreter(host: RecordingHost(), hashes: HashCache(location: folder + "/hashes.json"), journal: Journal(appendingTo: "/dev/full"))
        let message = try #require(error(shell, "set cfg=5"))
        #expect(message.hasPrefix("t:1:"), "\(message)")
        #expect(message.contains("/dev/full: the session journal cannot be written (No space left on device)"), "\(message)")
    }

    // Item 3: a failed append leaves the file ending with the last whole entry.
    @Test func aFailedAppendIsCutBack() throws {
        let path = folder + "/journal.sdscript"
        try "set cfg=5\n".write(toFile: path, atomically: true, encoding: .utf8)
        // A read-only descriptor makes every write fail.
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        #expect(throws: JournalError.self) { try Journal.append("generate \"x\" seed=1\n", fd: fd, path: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "set cfg=5\n")
    }

    // Item 4: each batch is journalled as it is saved, so an interrupted statement's journal
    // replays exactly the images that were kept.
    @Test func anInterruptedCountJournalsWhatWasKept() throws {
        let host = RecordingHost()
        let shell = try session(host)
        host.interruptAfter = 5   // two steps a batch: stops in the third batch
        #expect(throws: Interrupted.self) { try shell.run(source: "generate \"x\" seed=10 count=6 sampler=\"Euler\"", file: "t") }
        let kept = host.lines.filter { $0.contains(".png") }
        #expect(kept.count == 2, "\(host.lines)")
        let journal = try #require(shell.journal.path)
        let text = try String(contentsOfFile: journal, encoding: .utf8)
        let entries = text.split(separator: "\n").filter { $0.hasPrefix("generate ") }
        #expect(entries.count == 2 && entries[0].contains("seed=10") && entries[1].contains("seed=11") && entries.allSatisfy { $0.contains("count=1") },
                "\(text)")
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("#> ") }.count == 2)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(folder)/replayed\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 2/2"), "\(replayHost.lines)")
    }

    // Item 4, for grids: an interrupted grid journals the cells it kept, each as its `generate`.
    @Test func anInterruptedGridJournalsItsCells() throws {
        let host = RecordingHost()
        let shell = try session(host)
        host.interruptAfter = 5   // two steps a cell: stops in the third cell
        #expect(throws: Interrupted.self) { try shell.run(source: "grid \"x\" seed=[1, 2, 3] cfg=[5, 7] sampler=\"Euler\"", file: "t") }
        let journal = try #require(shell.journal.path)
        let text = try String(contentsOfFile: journal, encoding: .utf8)
        let entries = text.split(separator: "\n").filter { $0.hasPrefix("generate ") }
        #expect(entries.count == 2 && entries[0].contains("seed=1") && entries[0].contains("cfg=5") && entries[1].contains("seed=2"), "\(text)")
        #expect(!text.contains("\ngrid "))
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(folder)/replayed-grid\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 2/2"), "\(replayHost.lines)")
    }

    // Item 2: sessions sharing an output folder claim numbers atomically and never overwrite.
    @Test func concurrentSavesNeverOverwrite() throws {
        let root = folder + "/shared"
        let threads = 6, each = 5
        let group = DispatchGroup()
        let failures = Failures()
        for t in 0..<threads {
            DispatchQueue.global().async(group: group) {
                for i in 0..<each {
                    do {
                        try OutputFolder(root: root).save(rgb: [UInt8](repeating: UInt8(t * each + i), count: 8 * 8 * 3), width: 8, height: 8,
                                                          seed: Int64(t), text: [])
                    } catch { failures.add("\(error)") }
                }
            }
        }
        group.wait()
        #expect(failures.all.isEmpty, "\(failures.all)")
        let files = try FileManager.default.contentsOfDirectory(atPath: root + "/txt2img").filter { $0.hasSuffix(".png") }
        #expect(files.count == threads * each)
        let contents = Set(try files.map { try PNGFile.read(root + "/txt2img/" + $0).rgba[0] })
        #expect(contents.count == threads * each)
        // Nothing of the writes' temporaries is left.
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/txt2img").allSatisfy { !$0.hasPrefix(".") })
    }

    // Item 2: a claimed name is never replaced.
    @Test func creatingOverAnExistingFileIsRefused() throws {
        let path = folder + "/taken.png"
        try "mine".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try AtomicFile.create([1, 2, 3], at: path) == false)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "mine")
    }

    // Item 2, on file systems without hard links: the name is claimed with O_EXCL instead.
    @Test func creatingWithoutHardLinksClaimsTheName() throws {
        let path = folder + "/claimed.png"
        #expect(try AtomicFile.create([1, 2, 3], at: path, linking: false))
        #expect(try AtomicFile.create([4, 5, 6], at: path, linking: false) == false)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1, 2, 3]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).allSatisfy { !$0.contains(".tmp-") })
    }

    // Item 6: temporaries left by killed processes are cleaned on the next save; a live
    // process's are not.
    @Test func staleTemporariesOfDeadProcessesAreRemoved() throws {
        let dead = folder + "/.toy.pt.tmp-999999999-12345", live = folder + "/.toy.pt.tmp-\(getpid())-1"
        for p in [dead, live] { try "partial".write(toFile: p, atomically: false, encoding: .utf8) }
        try AtomicFile.write([1], to: folder + "/toy.pt")
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: live))
    }

    // Items 7, 9, 11, 12, 13: settings that used to write at the root, trap or allocate without bound.
    @Test func settingsAreBounded() throws {
        let shell = try session()
        let refusals = [
            ("set outdir=\"\"", "outdir must name a folder"),
            ("set models_dir=\"\"", "models_dir must name a folder"),
            ("set embeddings_dir=[]", "embeddings_dir must name at least one folder"),
            ("set cfg=1e20", "cfg must be between -100 and 100 (got 1e+20)"),
            ("set eta=1e400", "eta must be between"),
            ("set subseed_strength=2", "subseed_strength must be between"),
            ("set batch=100000", "batch must be at most 64"),
            ("set steps=9223372036854775807", "steps must be at most 10000"),
            ("set size=16384x64", "larger than 8192 pixels a side"),
            ("generate \"x\" seed=9223372036854775807 count=3 batch=2", "seed 9223372036854775807 with 6 images would pass the largest seed"),
            ("generate \"x\" subseed=9223372036854775807 count=2", "subseed 9223372036854775807 with 2 images would pass"),
        ]
        for (statement, expected) in refusals {
            let message = error(shell, statement)
            #expect(message?.hasPrefix("t:1:") == true && message?.contains(expected) == true, "\(statement): \(message ?? "no error")")
        }
        #expect(!FileManager.default.fileExists(atPath: "/txt2img"))
        // A batch too large for memory is refused before allocating.
        let message = error(shell, "generate \"x\" seed=1 batch=64 size=8192x8192")
        #expect(message?.contains("more than this machine's") == true, "\(message ?? "no error")")
    }

    // Item 15: Ctrl-C stops a generation inside a step, and very large sizes are warned about.
    @Test func ctrlCReachesInsideAStep() throws {
        let host = RecordingHost()
        let shell = try session(host)
        host.interrupted = true
        #expect(throws: Interrupted.self) { try shell.run(source: "generate \"x\" seed=1 steps=3 size=128x128", file: "t") }
        #expect(host.progressCalls == 0)
        #expect(host.warnings.contains("interrupted during a step; nothing saved"), "\(host.warnings)")
        #expect(host.warnings.contains { $0.contains("128x128 is 64 times the area of tiny-sd's native 16x16") }, "\(host.warnings)")
        try shell.run(source: "generate \"x\" seed=1", file: "t")
        #expect(host.lines.count == 1)
    }
}

extension SessionSafetyTests {
    // Item 5: an embedding being trained or created is locked; a second session gets a clear error.
    @Test func anEmbeddingInUseIsLocked() throws {
        let shell = try session()
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: "embedding new \"toy\" init=\"a cat\" vectors=2", file: "t")
        let path = folder + "/embeddings/toy.pt"
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        // Another session holds it (as its training does for as long as it runs).
        var other: FileLock? = try FileLock(for: path, purpose: "train it")
        let create = error(shell, "embedding new \"toy\" init=\"a dog\" vectors=2 overwrite=true")
        #expect(create?.contains("\(path): cannot create it: another session (process \(getpid())) is training or creating it") == true, "\(create ?? "no error")")
        let train = error(shell, "train \"toy\" data=\"\(pictures)\" steps=2 size=64")
        #expect(train?.contains("\(path): cannot train it: another session") == true, "\(train ?? "no error")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        // Released (or its process gone), the name is free again.
        other = nil
        _ = other
        try shell.run(source: "train \"toy\" data=\"\(pictures)\" steps=1 size=64", file: "t")
    }
}

extension SessionSafetyTests {
    // Item 24: a grid with a size axis lays its cells out as A1111 does.
    @Test func aGridWithASizeAxis() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try shell.run(source: "grid \"x\" size=[64x64, 96x64] seed=[1, 2] steps=1", file: "t")
        let line = try #require(host.lines.first { $0.contains("/txt2img-grids/") })
        let grid = try PNGFile.read(String(line.split(separator: " ")[0]))
        #expect(line.hasSuffix("grid 2x2"))
        #expect(grid.width >= 2 * 96 && grid.height >= 2 * 64)
    }
}

extension SessionSafetyTests {
    // Item 9: non-finite embeddings and weights are refused at load with the file named; a NaN
    // reaching the pixels never traps.
    @Test func nonFiniteValuesAreRefusedAtLoad() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try FileManager.default.createDirectory(atPath: folder + "/embeddings", withIntermediateDirectories: true)
        for (name, value) in [("nanword", Float.nan), ("infword", Float.infinity), ("hugeword", 3e38)] {
            var values = [Float](repeating: 0.1, count: 2 * 32)
            values[5] = value
            try EmbeddingFile.writeA1111(name: name, vectors: try Tensor(shape: [2, 32], data: values), step: 0, checkpointHash: nil,
                                         checkpointName: nil, to: folder + "/embeddings/\(name).pt")
        }
        // An embedding inside a PNG whose JSON says 1e39 (infinity as a Float).
        let row = (["1e39"] + [String](repeating: "0.1", count: 31)).joined(separator: ",")
        let json = #"{"string_to_param":{"*":{"TORCHTENSOR":[["# + row + #"]]}},"name":"pngword","step":1}"#
        try PNGFile.write(rgb: [UInt8](repeating: 0, count: 8 * 8 * 3), width: 8, height: 8,
                          text: [("sd-ti-embedding", Data(json.utf8).base64EncodedString())], to: folder + "/embeddings/pngword.png")
        try shell.run(source: "generate \"a nanword infword hugeword pngword\" seed=1", file: "t")
        #expect(host.warnings.contains { $0.contains("embedding file \(folder)/embeddings/pngword.png skipped") && $0.contains("vector component 0 is inf") },
                "\(host.warnings)")
        for name in ["nanword", "infword", "hugeword"] {
            #expect(host.warnings.contains { $0.contains("embedding file \(folder)/embeddings/\(name).pt skipped") && $0.contains("vector component 5 is") },
                    "\(host.warnings)")
        }
        #expect(host.lines.filter { $0.contains(".png") }.count == 1)

        // A checkpoint whose VAE has one NaN bias.
        let broken = folder + "/broken-sd"
        try FileManager.default.copyItem(atPath: model, toPath: broken)
        let vae = broken + "/vae/diffusion_pytorch_model.safetensors"
        let stored = try #require(try ModelFile.open(vae).tensors["decoder.conv_out.bias"])
        let handle = try #require(FileHandle(forUpdatingAtPath: vae))
        try handle.seek(toOffset: UInt64(stored.storageOffset + stored.elementOffset * stored.dtype.size))
        try handle.write(contentsOf: stored.dtype == .F16 ? Data([0x00, 0x7E]) : Data([0x00, 0x00, 0xC0, 0x7F]))
        try handle.close()
        let message = error(shell, "model \"\(broken)\"")
        #expect(message?.contains("\(broken): not a valid file: weight vae.decoder.conv_out.bias has 1 NaN and 0 infinite values") == true, "\(message ?? "no error")")
        // NaN reaching the pixels (what such weights made) is black, not a trap.
        let pipeline = try #require(shell.pipeline)
        let rgb = try pipeline.decode([Float](repeating: .nan, count: 4 * 8 * 8), shape: [4, 8, 8])
        #expect(!rgb.isEmpty && rgb.allSatisfy { $0 == 0 })
    }
}

/// Errors collected from several threads.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return list }
}

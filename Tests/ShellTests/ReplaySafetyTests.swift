import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// Replaying (issue #26 items 1, 22, 23): an image only remakes itself, a journal replays into a
/// folder of its own (embeddings it created included), and `verify` fails when pixels differ.
@Suite(.serialized) struct ReplaySafetyTests {
    let tiny: TinySession
    var folder: String { tiny.folder }
    var model: String { tiny.model }

    init() throws { tiny = try TinySession("replay") }

    func session(_ host: RecordingHost = RecordingHost(), outdir: String = "out") throws -> Interpreter {
        try tiny.start(host, outdir: outdir)
    }

    func error(_ interpreter: Interpreter, _ text: String) -> String? { TinySession.error(interpreter, text) }

    // Item 1: a downloaded PNG's sdscript chunk may only remake the image.
    @Test func anImageCannotRunOtherStatements() throws {
        let host = RecordingHost()
        let shell = try session(host)
        let victim = folder + "/embeddings/keep.pt"
        try "precious".write(toFile: victim, atomically: true, encoding: .utf8)
        let hostile = [
            "set outdir=\"\(folder)/elsewhere\"\nembedding new \"keep\" init=\"x\" overwrite=true",
            "embedding new \"keep\" init=\"x\" overwrite=true",
            "for i in [1] { set embeddings_dir=\"\(folder)/elsewhere\" }",
            "grid \"x\" seed=[1, 2] outdir=\"\(folder)/elsewhere\"",
        ]
        for (i, text) in hostile.enumerated() {
            let png = folder + "/hostile-\(i).png"
            try PNGFile.write(rgb: [UInt8](repeating: 0, count: 8 * 8 * 3), width: 8, height: 8,
                              text: [("parameters", "x\nSteps: 2, Seed: 1, Size: 64x64"), ("sdscript", text)], to: png)
            let message = error(shell, "replay \"\(png)\"")
            #expect(message?.contains("replaying an image only remakes that image, so it was not run") == true, "\(message ?? "no error")")
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        #expect(!FileManager.default.fileExists(atPath: folder + "/elsewhere"))
        #expect(shell.setting("outdir") == .string("\(folder)/out"))
    }

    // Item 23: verify=true fails when an image differs.
    @Test func verifyFailsWhenPixelsDiffer() throws {
        let shell = try session()
        try shell.run(source: "generate \"x\" seed=3 sampler=\"Euler\"", file: "t")
        let journal = try #require(shell.journal.path)
        var text = try String(contentsOfFile: journal, encoding: .utf8)
        let digest = try #require(text.split(separator: "\n").last { $0.hasPrefix("#> ") }?.split(separator: " ").last)
        text = text.replacingOccurrences(of: String(digest), with: String(repeating: "0", count: digest.count))
        let edited = folder + "/edited.sdscript"
        try text.write(toFile: edited, atomically: true, encoding: .utf8)
        let host = RecordingHost()
        let replayer = try session(host, outdir: "replayer")
        let message = error(replayer, "replay \"\(edited)\" verify=true")
        #expect(message == "t:1:1: 1 of 1 image from \(edited) differ", "\(message ?? "no error")")
        #expect(host.lines.contains("reproduced 0/1"))
    }

    // Item 22: a session that created and trained an embedding replays, into its own folder,
    // without touching the original embedding.
    @Test func aSessionThatCreatedAnEmbeddingReplays() throws {
        let host = RecordingHost()
        let shell = try session(host)
        let pictures = TestFixtures.repositoryRoot + "/examples/pictures"
        try shell.run(source: """
        embedding new "toy" init="a cat" vectors=2
        generate "a toy" seed=1 sampler="Euler"
        train "toy" data="\(pictures)" steps=2 size=64 seed=2 save_every=100
        generate "a toy" seed=1 sampler="Euler"
        """, file: "t")
        let original = try Data(contentsOf: URL(fileURLWithPath: folder + "/embeddings/toy.pt"))
        let journal = try #require(shell.journal.path)
        let replayHost = RecordingHost()
        let replayer = Interpreter(host: replayHost, hashes: HashCache(location: folder + "/hashes.json"))
        try replayer.run(source: "set outdir=\"\(folder)/again\"\nreplay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("reproduced 2/2"), "\(replayHost.lines)")
        let stem = ((journal as NSString).lastPathComponent as NSString).deletingPathExtension
        #expect(replayHost.lines.first == "replaying \(journal) into \(folder)/again/replays/\(stem)")
        #expect(FileManager.default.fileExists(atPath: "\(folder)/again/replays/\(stem)/embeddings/toy.pt"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/embeddings/toy.pt")) == original)
        // The replay's settings do not outlive it.
        #expect(replayer.setting("outdir") == .string("\(folder)/again"))
        // A second replay gets a folder of its own.
        try replayer.run(source: "replay \"\(journal)\" verify=true", file: "t")
        #expect(replayHost.lines.contains("replaying \(journal) into \(folder)/again/replays/\(stem)-2"))
    }

    // Item 28: a missing embeddings folder and an unreadable embedding used in a prompt are said.
    @Test func missingFoldersAndSkippedEmbeddingsAreReported() throws {
        let host = RecordingHost()
        let shell = try session(host)
        try "not an embedding".write(toFile: folder + "/embeddings/broken.pt", atomically: true, encoding: .utf8)
        try shell.run(source: "generate \"a broken thing\" seed=1", file: "t")
        #expect(host.warnings.contains { $0.contains("warning: broken is read as plain words: the embedding \(folder)/embeddings/broken.pt was not loaded") },
                "\(host.warnings)")
        try shell.run(source: "set embeddings_dir=\"\(folder)/nowhere\"\nembeddings", file: "t")
        #expect(host.warnings.contains("embeddings folder \(folder)/nowhere does not exist: no embeddings from it"), "\(host.warnings)")
    }
}

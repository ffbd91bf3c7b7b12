import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// Every script in `examples/` runs (on the demo model or the tiny one) and prints what its golden file says
/// (Fixtures/examples/NAME.txt; `SDSHELL_RECORD_GOLDEN=1` rewrites them). Paths under the
/// temporary output folder print as `$OUT`.
@Suite(.serialized) struct ExampleTests {
    static let root = TestFixtures.repositoryRoot
    static let examples = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/examples")) ?? [])
        .filter { $0.hasSuffix(".sdscript") }.sorted()

    @Test func everyExampleHasAGoldenFile() {
        #expect(Self.examples.count >= 5)
        for name in Self.examples {
            let golden = Self.root + "/Tests/ShellTests/Fixtures/examples/" + name.replacingOccurrences(of: ".sdscript", with: ".txt")
            #expect(FileManager.default.fileExists(atPath: golden), "\(golden)")
        }
    }

    @Test(arguments: examples) func exampleMatchesItsGolden(_ name: String) throws {
        let out = NSTemporaryDirectory() + "sdshell-example-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: out) }
        var text = try String(contentsOfFile: Self.root + "/examples/" + name, encoding: .utf8)
        // The examples name repository paths relative to its root.
        for folder in ["Tests/Fixtures/", "examples/", "models/"] {
            text = text.replacingOccurrences(of: "\"\(folder)", with: "\"\(Self.root)/\(folder)")
        }
        // The embeddings that ship in embeddings/, as a user's checkout has them.
        let shipped = Self.root + "/embeddings"
        try FileManager.default.createDirectory(atPath: out + "/embeddings", withIntermediateDirectories: true)
        for file in (try? FileManager.default.contentsOfDirectory(atPath: shipped)) ?? [] where file.hasSuffix(".pt") {
            try FileManager.default.copyItem(atPath: shipped + "/" + file, toPath: out + "/embeddings/" + file)
        }
        let host = RecordingHost()
        let shell = Interpreter(host: host, hashes: HashCache(location: out + "/hashes.json"))
        try shell.run(source: "set outdir=\"\(out)/outputs\" embeddings_dir=\"\(out)/embeddings\"", file: "setup")
        try shell.run(source: text, file: name)
        let lines = host.lines.map { $0.replacingOccurrences(of: out, with: "$OUT").replacingOccurrences(of: Self.root, with: "$ROOT") }
        let journal = try shell.journal.path.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? ""
        let statements = journal.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
            $0.replacingOccurrences(of: out, with: "$OUT").replacingOccurrences(of: Self.root, with: "$ROOT")
        }
        let actual = (lines + ["--- journal"] + statements).joined(separator: "\n") + "\n"
        let golden = Self.root + "/Tests/ShellTests/Fixtures/examples/" + name.replacingOccurrences(of: ".sdscript", with: ".txt")
        if ProcessInfo.processInfo.environment["SDSHELL_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: (golden as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try actual.write(toFile: golden, atomically: true, encoding: .utf8)
        }
        #expect(actual == (try? String(contentsOfFile: golden, encoding: .utf8)))
    }
}

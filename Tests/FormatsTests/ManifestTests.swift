import Crypto
import Engine
import Foundation
import Testing
@testable import Formats

/// Files written by torch itself (Tests/Fixtures/generators/make_model_file_fixtures.py) read back bit for bit.
enum Manifest {
    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.path
    nonisolated(unsafe) static let files: [[String: Any]] = {
        let data = FileManager.default.contents(atPath: folder + "/manifest.json")!
        let root = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return root["files"] as! [[String: Any]]
    }()
    static var readable: [String] { files.filter { ($0["tensors"] as? [Any])?.isEmpty == false }.map { $0["file"] as! String } }
    static var malicious: [String] { files.filter { $0["malicious_global"] != nil }.map { $0["file"] as! String } }
    static var broken: [String] { files.filter { $0["broken"] != nil }.map { $0["file"] as! String } }
    static func entry(_ name: String) -> [String: Any] { files.first { $0["file"] as? String == name }! }
    static func path(_ name: String) -> String { folder + "/" + name }
}

@Suite struct ManifestTests {
    @Test("every tensor of every torch-written file is read bit for bit", arguments: Manifest.readable)
    func tensorsMatch(_ name: String) throws {
        let file = try ModelFile.open(Manifest.path(name))
        let expected = Manifest.entry(name)["tensors"] as! [[String: Any]]
        #expect(Set(file.tensors.keys) == Set(expected.map { $0["name"] as! String }))
        #expect(file.format.rawValue == Manifest.entry(name)["kind"] as? String)
        for e in expected {
            let tensorName = e["name"] as! String
            let t = try #require(file.tensors[tensorName], "\(name): \(tensorName) missing")
            #expect(t.dtype.rawValue == e["dtype"] as? String, "\(tensorName) dtype")
            #expect(t.shape == (e["shape"] as! [NSNumber]).map(\.intValue), "\(tensorName) shape")
            let digest = SHA256.hash(data: Data(try t.contiguousBytes())).map { String(format: "%02x", $0) }.joined()
            #expect(digest == e["sha256"] as? String, "\(name): \(tensorName) bytes differ")
        }
    }

    @Test("malicious pickles are refused with the global named, and nothing runs", arguments: Manifest.malicious)
    func maliciousRefused(_ name: String) throws {
        let entry = Manifest.entry(name)
        let canary = entry["canary"] as? String ?? "/tmp/sdshell_canary"
        try? FileManager.default.removeItem(atPath: canary)
        do {
            _ = try ModelFile.open(Manifest.path(name))
            Issue.record("\(name) was accepted")
        } catch let FormatError.unsafeGlobal(file, global) {
            #expect(file.hasSuffix(name))
            #expect(global == entry["malicious_global"] as? String)
        }
        #expect(!FileManager.default.fileExists(atPath: canary))
    }

    @Test("broken files give a clear error, never a crash", arguments: Manifest.broken)
    func brokenRejected(_ name: String) throws {
        do {
            let file = try ModelFile.open(Manifest.path(name))
            for t in file.tensors.values { _ = try t.contiguousBytes() }
            Issue.record("\(name) was accepted")
        } catch let e as FormatError {
            #expect(e.description.contains(name), "\(e)")
        }
    }

    @Test("tensors holding NaN or infinity are named in a warning")
    func nonFiniteWarning() throws {
        let d = try FileDescription(try ModelFile.open(Manifest.path("nan_inf.safetensors")), hashes: nil)
        #expect(d.warnings.count == 1)
        #expect(d.warnings.first?.contains("tensor weird holds 1 NaN and 1 infinite") == true)
    }

    @Test("embedding layouts are recognised",
          arguments: [("emb_a1111.pt", "a1111", 3), ("emb_a1111_param.pt", "a1111", 2), ("emb_a1111_f16.pt", "a1111", 1),
                      ("emb_legacy.pt", "a1111", 3), ("emb_diffusers.bin", "diffusers", 1), ("emb_kohya.safetensors", "kohya", 2),
                      ("emb_sdxl.safetensors", "sdxl", 2)])
    func embeddings(_ name: String, _ kind: String, _ vectors: Int) throws {
        let e = try #require(EmbeddingFile.recognize(try ModelFile.open(Manifest.path(name))))
        #expect(e.kind.rawValue == kind)
        #expect(e.vectorCount == vectors)
        if kind == "a1111" {
            let meta = Manifest.entry(name)["metadata"] as! [String: Any]
            #expect(e.storedName == meta["name"] as? String)
            #expect(e.step == (meta["step"] as? NSNumber)?.intValue)
            #expect(e.checkpointHash == meta["sd_checkpoint"] as? String)
        }
    }

    @Test("materialised tensors hold the file's values (f16 kept as storage, ints as f32)")
    func materialize() throws {
        let f16 = try EmbeddingFile.recognize(try ModelFile.open(Manifest.path("emb_a1111_f16.pt")))!.vectors["clip"]!.materialize()
        #expect(f16.dtype == .f16)
        let first = (Manifest.entry("emb_a1111_f16.pt")["tensors"] as! [[String: Any]])[0]["first"] as! [NSNumber]
        #expect(try Array(f16.to(.f32).toArray().prefix(first.count)) == first.map(\.floatValue))
        let ints = try ModelFile.open(Manifest.path("emb_ints.pt"))
        #expect(try ints.tensors["ids"]!.materialize().toArray() == [0, 1, 2, 3, 4])
    }
}

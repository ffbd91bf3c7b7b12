import Foundation
import Testing
@testable import Formats

/// A1111's model hashes (expected values computed with Python's hashlib over the same bytes).
@Suite struct HashTests {
    /// 1.5 MiB of bytes i*7+3 mod 251.
    static func patternFile() throws -> String {
        let path = NSTemporaryDirectory() + "sdshell-hash-\(UUID().uuidString).bin"
        try Data((0..<(3 << 19)).map { UInt8(($0 * 7 + 3) % 251) }).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("old hash reads 64 KiB at 1 MiB; new hash is the full sha256")
    func hashes() throws {
        let path = try Self.patternFile()
        #expect(try FileHash.legacyModelHash(path) == "145d6c8b")
        let sha = try FileHash.sha256(path)
        #expect(sha == "228f8345820059a923ae6f8268acffb47bda0850777874a63eb7dbdec02bf4e4")
        #expect(FileHash.shortHash(sha, embedding: false) == "228f834582")
        #expect(FileHash.shortHash(sha, embedding: true) == "228f83458200")
    }

    @Test("the hash cache answers from disk while size and mtime match")
    func cache() throws {
        let path = try Self.patternFile()
        let location = NSTemporaryDirectory() + "sdshell-hashcache-\(UUID().uuidString)/hashes.json"
        let real = try HashCache(location: location).sha256(path)
        // Plant a different value: a fresh cache object must return it without rehashing.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: location))) as! [String: [String: Any]]
        let key = json.keys.first!
        json[key]!["sha256"] = "planted"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: location))
        #expect(try HashCache(location: location).sha256(path) == "planted")
        // Changing the file invalidates the entry.
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 10)], ofItemAtPath: path)
        #expect(try HashCache(location: location).sha256(path) == real)
    }
}

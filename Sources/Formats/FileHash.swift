import Crypto
import Foundation

/// A1111-compatible file hashes, with an on-disk cache keyed by path, size and modification time.
public enum FileHash {
    /// A1111's old model hash: sha256 of the 64 KiB at offset 1 MiB, first 8 hex digits.
    public static func legacyModelHash(_ path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw FormatError.io(file: path, reason: "cannot open") }
        defer { try? h.close() }
        try h.seek(toOffset: 0x100000)
        let data = try h.read(upToCount: 0x10000) ?? Data()
        return String(hex(SHA256.hash(data: data)).prefix(8))
    }

    /// The full-file sha256 (hex), read in 1 MiB blocks.
    public static func sha256(_ path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw FormatError.io(file: path, reason: "cannot open") }
        defer { try? h.close() }
        var hasher = SHA256()
        while let block = try h.read(upToCount: 1 << 20), !block.isEmpty { hasher.update(data: block) }
        return hex(hasher.finalize())
    }

    /// A1111's hash of a safetensors network file (`hashes.addnet_hash_safetensors`, which
    /// "Lora hashes" carries): the sha256 of everything after the 8-byte header length and the
    /// JSON header, so that editing the metadata keeps the hash.
    public static func addnetSHA256(_ path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw FormatError.io(file: path, reason: "cannot open") }
        defer { try? h.close() }
        let size = try h.seekToEnd()
        try h.seek(toOffset: 0)
        let length = [UInt8](try h.read(upToCount: 8) ?? Data())
        guard length.count == 8 else { throw FormatError.corrupt(file: path, reason: "shorter than a safetensors header") }
        let n = length.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= size - 8 else { throw FormatError.corrupt(file: path, reason: "its safetensors header runs past the end of the file") }
        try h.seek(toOffset: 8 + n)
        var hasher = SHA256()
        while let block = try h.read(upToCount: 1 << 20), !block.isEmpty { hasher.update(data: block) }
        return hex(hasher.finalize())
    }

    /// The sha256 (hex) of bytes in memory.
    public static func sha256(bytes: [UInt8]) -> String { hex(SHA256.hash(data: bytes)) }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Short hashes as A1111 prints them: 10 hex digits for checkpoints, 12 for embeddings.
    public static func shortHash(_ sha: String, embedding: Bool) -> String { String(sha.prefix(embedding ? 12 : 10)) }
}

/// A JSON cache of full-file sha256 values keyed by absolute path, valid while size and
/// modification time are unchanged. Written atomically.
public final class HashCache: @unchecked Sendable {
    public let location: String
    private var entries: [String: [String: Any]]
    private let lock = NSLock()

    /// The default location: $XDG_CACHE_HOME/sdshell/hashes.json (or ~/.cache/sdshell/hashes.json).
    public static var defaultLocation: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        return base + "/sdshell/hashes.json"
    }

    public init(location: String = HashCache.defaultLocation) {
        self.location = location
        if let data = FileManager.default.contents(atPath: location),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] {
            entries = json
        } else {
            entries = [:]
        }
    }

    /// The file's sha256, from the cache when size and mtime match, else computed and cached.
    public func sha256(_ path: String) throws -> String { try hash(path, kind: "", FileHash.sha256) }

    /// A1111's network hash of a safetensors file (`FileHash.addnetSHA256`), cached the same way.
    public func addnetSHA256(_ path: String) throws -> String { try hash(path, kind: "#addnet", FileHash.addnetSHA256) }

    private func hash(_ path: String, kind: String, _ compute: (String) throws -> String) throws -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        let attrs = try FileManager.default.attributesOfItem(atPath: absolute)
        let size = (attrs[.size] as? NSNumber)?.intValue ?? -1
        // Whole nanoseconds: integers survive the JSON round trip exactly.
        let mtime = Int(((attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0) * 1e9)
        lock.lock(); defer { lock.unlock() }
        if let e = entries[absolute + kind], (e["size"] as? NSNumber)?.intValue == size,
           (e["mtime"] as? NSNumber)?.intValue == mtime, let sha = e["sha256"] as? String {
            return sha
        }
        let sha = try compute(absolute)
        entries[absolute + kind] = ["size": size, "mtime": mtime, "sha256": sha]
        try? FileManager.default.createDirectory(atPath: (location as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if let data = try? JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys]) {
            try? AtomicFile.write(Array(data), to: location)
        }
        return sha
    }
}

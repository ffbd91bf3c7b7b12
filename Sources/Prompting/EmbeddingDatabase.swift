import Engine
import Formats
import Foundation

/// A textual-inversion embedding ready for prompts.
public struct Embedding: @unchecked Sendable {
    public init(name: String, vectors: Tensor, step: Int? = nil, checkpointHash: String? = nil, checkpointName: String? = nil,
                file: String = "", shortHash: String = "") {
        self.name = name; self.vectors = vectors; self.step = step; self.checkpointHash = checkpointHash
        self.checkpointName = checkpointName; self.file = file; self.shortHash = shortHash
    }

    /// The file stem, as A1111 names embeddings.
    public let name: String
    /// [vectors, width], f32.
    public let vectors: Tensor
    public var vectorCount: Int { vectors.shape[0] }
    public var width: Int { vectors.shape[1] }
    public let step: Int?
    public let checkpointHash: String?
    public let checkpointName: String?
    public let file: String
    /// A1111's 12-hex short hash of the file (TI hashes).
    public let shortHash: String
}

/// The embeddings directories: every `.pt`, `.bin`, `.safetensors` and embedding-carrying `.png`
/// below them (subfolders too; `*.preview.png` and plain pictures ignored) whose vectors fit the
/// model's text width, named by file stem (images: by the name stored in them), rescanned before each use
/// so that added, changed (size or modification time) and removed files take effect without a
/// restart. Files that cannot be read are listed with the reason and retried when they change;
/// they never hide the others. Prompt matching follows A1111: by token ids, longest name first.
public final class EmbeddingDatabase: @unchecked Sendable {
    public var directories: [String]
    /// Width of the text encoder's token embeddings.
    public let width: Int
    public private(set) var embeddings: [String: Embedding] = [:]
    /// Files not loaded, with the reason.
    public private(set) var skipped: [(file: String, reason: String)] = []
    private var seen: [String: (size: Int, mtime: Date)] = [:]
    /// Directories already reported missing (reported again once they come and go).
    private var reportedMissing: Set<String> = []
    private var byFirstToken: [Int: [(ids: [Int], embedding: Embedding)]] = [:]
    private let tokenizer: CLIPTokenizer
    private let hashes: HashCache?
    /// The loaded checkpoint's short hash and name: embeddings trained on another checkpoint load
    /// with a warning naming both (A1111 stores the training checkpoint's hash in `sd_checkpoint`).
    public var modelHash: String?, modelName: String?

    public init(directories: [String], width: Int, tokenizer: CLIPTokenizer, hashes: HashCache? = nil) {
        self.directories = directories
        self.width = width
        self.tokenizer = tokenizer
        self.hashes = hashes
    }

    static let extensions: Set<String> = ["pt", "bin", "safetensors", "png"]

    /// Rescans the directories; returns messages about what changed or was skipped.
    @discardableResult
    public func reload() -> [String] {
        var messages: [String] = []
        var files: [String: (size: Int, mtime: Date)] = [:]
        let fm = FileManager.default
        for dir in directories {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                if reportedMissing.insert(dir).inserted {
                    messages.append("embeddings folder \(dir) " + (fm.fileExists(atPath: dir) ? "is not a folder" : "does not exist") + ": no embeddings from it")
                }
                continue
            }
            reportedMissing.remove(dir)
            guard let walker = fm.enumerator(atPath: dir) else { continue }
            while let rel = walker.nextObject() as? String {
                let path = dir + "/" + rel
                guard Self.extensions.contains((rel as NSString).pathExtension.lowercased()), !rel.lowercased().hasSuffix(".preview.png"),
                      let attrs = try? fm.attributesOfItem(atPath: path), attrs[.type] as? FileAttributeType == .typeRegular,
                      (attrs[.size] as? NSNumber)?.intValue ?? 0 > 0 else { continue }   // empty files: skipped silently, as A1111
                files[path] = ((attrs[.size] as? NSNumber)?.intValue ?? 0, attrs[.modificationDate] as? Date ?? .distantPast)
            }
        }
        var changed = files.keys.filter { p in seen[p].map { $0.size != files[p]!.size || $0.mtime != files[p]!.mtime } ?? true }
        let removed = seen.keys.filter { files[$0] == nil }
        if changed.isEmpty && removed.isEmpty { return messages }
        for path in removed {
            if let e = embeddings.first(where: { $0.value.file == path }) { embeddings[e.key] = nil; messages.append("embedding \(e.key) removed") }
        }
        skipped.removeAll { !(files.keys.contains($0.file)) || changed.contains($0.file) }
        changed.sort()
        for path in changed {
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            embeddings = embeddings.filter { $0.value.file != path }
            do {
                guard let e = try load(path, name: name) else { continue }   // a picture without an embedding
                if let other = embeddings[e.name], other.file != path {
                    // The earlier directory wins (a replay's own folder comes first); within one, the first path.
                    guard priority(path) < priority(other.file) else {
                        skipped.append((path, "another embedding named \(e.name) is loaded from \(other.file)"))
                        continue
                    }
                    skipped.append((other.file, "another embedding named \(e.name) is loaded from \(path)"))
                }
                embeddings[e.name] = e
                messages.append("embedding \(e.name) loaded: \(e.vectorCount) vector\(e.vectorCount == 1 ? "" : "s") from \(path)")
                if let trained = e.checkpointHash, let current = modelHash, !current.isEmpty,
                   !current.hasPrefix(trained) && !trained.hasPrefix(current) {
                    messages.append("warning: embedding \(name) was trained on \(e.checkpointName ?? "?") [\(trained)], the loaded model is \(modelName ?? "?") [\(current)]")
                }
            } catch {
                // The file is named once: errors from the readers start with its path.
                var reason = "\(error)"
                if reason.hasPrefix(path + ": ") { reason.removeFirst(path.count + 2) }
                skipped.append((path, reason))
                messages.append("embedding file \(path) skipped: \(reason)")
            }
        }
        seen = files
        rebuildIndex()
        return messages
    }

    /// The largest magnitude a vector component may have: real embeddings stay within a few
    /// units, and values near Float's limit overflow to infinity in the text encoder.
    public static let maximumMagnitude: Float = 1e4

    /// Refuses NaN, infinity and absurd magnitudes (they would turn every image using the
    /// embedding into NaN pixels).
    static func checkFinite(_ values: [Float], _ path: String) throws {
        if let i = values.firstIndex(where: { !$0.isFinite || abs($0) > maximumMagnitude }) {
            throw FormatError.corrupt(file: path, reason: "vector component \(i) is \(values[i]); embeddings must be finite and within ±\(Int(maximumMagnitude))")
        }
    }

    /// The index of the directory holding `path` (lower wins a name conflict).
    private func priority(_ path: String) -> Int {
        directories.firstIndex { path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") } ?? directories.count
    }

    private func load(_ path: String, name: String) throws -> Embedding? {
        if path.lowercased().hasSuffix(".png") {
            // A1111 names image embeddings by the name stored in them.
            guard let image = try EmbeddingImage.read(path) else { return nil }
            guard let w = image.vectors.first?.count, w == width else {
                throw FormatError.unsupported(file: path, reason: "vectors of width \(image.vectors.first?.count ?? 0); the model's text encoder is \(width) wide")
            }
            let values = image.vectors.flatMap { $0 }
            try Self.checkFinite(values, path)
            let vectors = try Tensor(shape: [image.vectors.count, w], data: values)
            let sha = try hashes.map { try $0.sha256(path) } ?? FileHash.sha256(path)
            return Embedding(name: image.name ?? name, vectors: vectors, step: image.step, checkpointHash: image.checkpointHash,
                             checkpointName: image.checkpointName, file: path, shortHash: FileHash.shortHash(sha, embedding: true))
        }
        let file = try ModelFile.open(path)
        guard let e = try EmbeddingFile.read(file) else {
            throw FormatError.unsupported(file: path, reason: "not an embedding (no string_to_param, emb_params or single vector)")
        }
        guard let v = e.vectors["clip"] else {
            throw FormatError.unsupported(file: path, reason: "an SDXL embedding (clip_l + clip_g); this model has one text encoder")
        }
        var vectors = try v.materialize().to(.f32)
        if vectors.rank == 1 { vectors = try vectors.reshaped([1, vectors.count]) }
        try Self.checkFinite(try vectors.toArray(), path)
        guard vectors.shape[1] == width else {
            throw FormatError.unsupported(file: path, reason: "vectors of width \(vectors.shape[1]); the model's text encoder is \(width) wide")
        }
        let sha = try hashes.map { try $0.sha256(path) } ?? FileHash.sha256(path)
        return Embedding(name: name, vectors: vectors.detached(), step: e.step, checkpointHash: e.checkpointHash,
                         checkpointName: e.checkpointName, file: path, shortHash: FileHash.shortHash(sha, embedding: true))
    }

    private func rebuildIndex() {
        byFirstToken = [:]
        for e in embeddings.values.sorted(by: { $0.name < $1.name }) {
            let ids = tokenizer.encode(e.name)
            guard let first = ids.first else { continue }
            byFirstToken[first, default: []].append((ids, e))
        }
        for k in byFirstToken.keys { byFirstToken[k]!.sort { $0.ids.count > $1.ids.count } }
    }

    /// Adds or replaces an in-memory embedding (training: its vectors are the live, trainable
    /// tensor); it takes precedence over a file of the same name until the next change on disk.
    public func register(_ embedding: Embedding) {
        embeddings[embedding.name] = embedding
        rebuildIndex()
    }

    /// Files that were not loaded whose names occur in `text` (as tokens): the prompt means them,
    /// but they will be read as plain words.
    public func skippedMentioned(in text: String) -> [(name: String, file: String, reason: String)] {
        let tokens = tokenizer.encode(text)
        guard !tokens.isEmpty else { return [] }
        return skipped.compactMap { entry in
            let name = ((entry.file as NSString).lastPathComponent as NSString).deletingPathExtension
            let ids = tokenizer.encode(name)
            guard !ids.isEmpty, embeddings[name] == nil, ids.count <= tokens.count,
                  (0...(tokens.count - ids.count)).contains(where: { Array(tokens[$0..<($0 + ids.count)]) == ids }) else { return nil }
            return (name, entry.file, entry.reason)
        }
    }

    /// The embedding whose name's tokens start at `position`, and how many tokens it spans.
    public func match(_ tokens: [Int], at position: Int) -> (embedding: Embedding, length: Int)? {
        guard let candidates = byFirstToken[tokens[position]] else { return nil }
        for (ids, e) in candidates where position + ids.count <= tokens.count && Array(tokens[position..<(position + ids.count)]) == ids {
            return (e, ids.count)
        }
        return nil
    }
}

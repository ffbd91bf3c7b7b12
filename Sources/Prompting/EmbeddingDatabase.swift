import Engine
import Formats
import Foundation
import Models

/// A textual-inversion embedding ready for prompts: one set of vectors per text encoder of the
/// model it is for (SDXL: CLIP-L's, then OpenCLIP bigG's).
public struct Embedding: @unchecked Sendable {
    public init(name: String, vectors: Tensor, otherEncoders: [Tensor] = [], step: Int? = nil, checkpointHash: String? = nil,
                checkpointName: String? = nil, file: String = "", shortHash: String = "") {
        self.name = name; self.vectors = vectors; self.otherEncoderVectors = otherEncoders; self.step = step
        self.checkpointHash = checkpointHash; self.checkpointName = checkpointName; self.file = file; self.shortHash = shortHash
    }

    /// The file stem, as A1111 names embeddings.
    public let name: String
    /// [vectors, width], f32: the first text encoder's.
    public let vectors: Tensor
    /// The vectors of the model's other text encoders, in order (SDXL's `clip_g`); each [vectors, width].
    public let otherEncoderVectors: [Tensor]
    public var vectorCount: Int { vectors.shape[0] }
    public var width: Int { vectors.shape[1] }
    /// Each encoder's width.
    public var widths: [Int] { [width] + otherEncoderVectors.map { $0.shape[1] } }
    /// The vectors for text encoder `index`.
    public func vectors(forEncoder index: Int) -> Tensor { index == 0 ? vectors : otherEncoderVectors[index - 1] }
    /// The family whose full-size text encoders the widths fit (SD 1.x 768, SD 2.x 1024, SDXL
    /// 768 + 1280), or nil.
    public var family: ModelFamily? { ModelFamily.allCases.first { $0.textEncoderWidths == widths } }
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
    /// Widths of the model's text encoders' token embeddings (SDXL: two), which a file's vectors must have.
    public let widths: [Int]
    /// The first text encoder's width.
    public var width: Int { widths[0] }
    public private(set) var embeddings: [String: Embedding] = [:]
    /// Embeddings bundled in the LoRA networks in use (`setBundled`).
    public private(set) var bundled: [String: Embedding] = [:]
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

    public convenience init(directories: [String], width: Int, tokenizer: CLIPTokenizer, hashes: HashCache? = nil) {
        self.init(directories: directories, widths: [width], tokenizer: tokenizer, hashes: hashes)
    }

    public init(directories: [String], widths: [Int], tokenizer: CLIPTokenizer, hashes: HashCache? = nil) {
        precondition(!widths.isEmpty, "an embeddings database needs the text encoders' widths")
        self.directories = directories
        self.widths = widths
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
            guard widths.count == 1 else { throw Self.oneEncoderOnTwo(path, width: image.vectors.first?.count ?? 0) }
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
        let sha = try hashes.map { try $0.sha256(path) } ?? FileHash.sha256(path)
        return try embedding(file, name: name, path: path, shortHash: FileHash.shortHash(sha, embedding: true))
    }

    /// The embedding in `file` (read from `path`), checked against the model's widths.
    private func embedding(_ file: ModelFile, name: String, path: String, shortHash: String) throws -> Embedding {
        guard let e = try EmbeddingFile.read(file) else {
            throw FormatError.unsupported(file: path, reason: "not an embedding (no string_to_param, emb_params or single vector)")
        }
        func matrix(_ v: StoredTensor) throws -> Tensor {
            var vectors = try v.materialize().to(.f32)
            if vectors.rank == 1 { vectors = try vectors.reshaped([1, vectors.count]) }
            try Self.checkFinite(try vectors.toArray(), path)
            return vectors.detached()
        }
        let parts: [Tensor]
        if let v = e.vectors["clip"] {
            let vectors = try matrix(v)
            guard widths.count == 1 else { throw Self.oneEncoderOnTwo(path, width: vectors.shape[1]) }
            guard vectors.shape[1] == width else {
                throw FormatError.unsupported(file: path, reason: "vectors of width \(vectors.shape[1]); the model's text encoder is \(width) wide")
            }
            parts = [vectors]
        } else if let l = e.vectors["clip_l"], let g = e.vectors["clip_g"] {
            guard widths.count == 2 else {
                throw FormatError.unsupported(file: path, reason: "an SDXL embedding (clip_l + clip_g); this model has one text encoder")
            }
            parts = [try matrix(l), try matrix(g)]
            guard parts.map({ $0.shape[1] }) == widths else {
                throw FormatError.unsupported(file: path, reason: "clip_l and clip_g are \(parts[0].shape[1]) and \(parts[1].shape[1]) wide; the model's text encoders are \(widths[0]) and \(widths[1]) wide")
            }
            guard parts[0].shape[0] == parts[1].shape[0] else {
                throw FormatError.corrupt(file: path, reason: "clip_l has \(parts[0].shape[0]) vectors and clip_g \(parts[1].shape[0]); they must be as many")
            }
        } else {
            throw FormatError.unsupported(file: path, reason: "not an embedding this model can use (tensors: \(e.vectors.keys.sorted().joined(separator: ", ")))")
        }
        return Embedding(name: name, vectors: parts[0], otherEncoders: Array(parts.dropFirst()), step: e.step, checkpointHash: e.checkpointHash,
                         checkpointName: e.checkpointName, file: path, shortHash: shortHash)
    }

    /// The embeddings that the LoRA networks in use bundle (A1111's `bundle_emb.NAME.*`), each
    /// with its tensors, the network file it comes from and that file's hash (A1111 writes the
    /// network's hash for them in "TI hashes"). An embedding of the same name in the folders
    /// wins, as in A1111. Replaces the previous set; returns messages about the ones not used.
    @discardableResult
    public func setBundled(_ list: [(name: String, tensors: [String: StoredTensor], network: String, shortHash: String)]) -> [String] {
        var messages: [String] = [], next: [String: Embedding] = [:]
        for b in list {
            if embeddings[b.name] != nil {
                messages.append("bundled embedding \(b.name) of \(b.network) skipped: an embedding of that name is loaded from the folders")
                continue
            }
            do {
                next[b.name] = try embedding(ModelFile(path: b.network, tensors: b.tensors), name: b.name, path: b.network + "::" + b.name, shortHash: b.shortHash)
            } catch {
                messages.append("bundled embedding \(b.name) of \(b.network) skipped: \(error)")
            }
        }
        let changed = Set(next.keys) != Set(bundled.keys) || next.contains { bundled[$0.key]?.file != $0.value.file || bundled[$0.key]?.shortHash != $0.value.shortHash }
        bundled = next
        if changed { rebuildIndex() }
        return messages
    }

    /// A one-encoder embedding (SD 1.x or 2.x) offered to a two-encoder model: A1111 skips it for
    /// SDXL, and so does sdshell.
    static func oneEncoderOnTwo(_ path: String, width: Int) -> FormatError {
        FormatError.unsupported(file: path, reason: "an embedding for one text encoder (\(width) wide: SD 1.x or 2.x); SDXL models take embeddings with clip_l and clip_g vectors")
    }

    private func rebuildIndex() {
        byFirstToken = [:]
        let all = embeddings.merging(bundled) { folder, _ in folder }
        for e in all.values.sorted(by: { $0.name < $1.name }) {
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

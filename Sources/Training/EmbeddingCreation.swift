import Engine
import Formats
import Foundation
import Models
import Prompting

/// `embedding new NAME init="TEXT" vectors=N`: a new embedding whose vectors start as the token
/// embeddings of TEXT (vector i is the row of token i x tokens / N, so TEXT's tokens are repeated
/// or truncated to N, as A1111's `create_embedding`; zeros without TEXT), taken from each text
/// encoder's own token table (SDXL: CLIP-L's for `clip_l`, bigG's for `clip_g`), saved at once
/// with step 0 and the current model's hash and name: A1111's `.pt` for SD 1.x and 2.x, kohya's
/// `.safetensors` for SDXL (or an A1111-readable `.pt` of the two tensors).
public enum EmbeddingCreation {
    public enum Error: Swift.Error, CustomStringConvertible, Equatable {
        case exists(String), invalid(String)
        public var description: String {
            switch self {
            case let .exists(path): return "\(path) already exists (use overwrite=true to replace it)"
            case let .invalid(m): return m
            }
        }
    }

    /// The file kinds an embedding can be saved as.
    public static let fileExtensions = ["pt", "safetensors"]

    /// The file name A1111 would use: the name without characters other than letters, digits,
    /// "._- ", with the extension.
    public static func fileName(_ name: String, extension ext: String = "pt") -> String {
        String(name.filter { $0.isLetter || $0.isNumber || "._- ".contains($0) }) + "." + ext
    }

    /// The path of the embedding NAME in `directory` that a model of `family` trains: the family's
    /// own kind first (`.safetensors` for SDXL), then the others; nil when there is none.
    public static func existingPath(_ name: String, directory: String, family: ModelFamily) -> String? {
        let order = [family.embeddingExtension] + fileExtensions.filter { $0 != family.embeddingExtension }
        return order.map { directory + "/" + fileName(name, extension: $0) }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The vectors of a new embedding as the trainer holds them: [count, the encoders' widths
    /// summed], each encoder's part from its own token table.
    public static func initialVectors(initText: String, count: Int, model: StableDiffusionModel, tokenizer: CLIPTokenizer) throws -> Tensor {
        let widths = model.embeddingWidths
        guard !initText.isEmpty else { return try Tensor.zeros([count, widths.reduce(0, +)]) }
        let ids = tokenizer.encode(initText)
        guard !ids.isEmpty else { throw Error.invalid("init text \"\(initText)\" has no tokens") }
        let parts = try model.textEncoders.enumerated().map { index, encoder -> Tensor in
            // A1111's create_embedding: vector i is init row i * rows / count. Through the CLIP
            // tokenizer (SD 1.x, SDXL's first encoder) the init text is first cut to `count`
            // tokens; OpenCLIP's (SD 2.x, SDXL's second) keeps them all.
            let clip = model.family == .sd1 || (model.family == .sdxl && index == 0)
            let used = clip ? Array(ids.prefix(count)) : ids
            let rows = try withNoGrad { try encoder.encoder.tokenEmbeddings(used) }
            return try Tensor.concat((0..<count).map { try rows.sliced(dim: 0, $0 * used.count / count, $0 * used.count / count + 1) }, dim: 0)
        }
        return parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1)
    }

    /// Creates and saves the embedding (as `format`, "pt" or "safetensors"; default the family's
    /// kind); returns its path and vectors [N, the encoders' widths summed].
    @discardableResult
    public static func create(name: String, initText: String, vectors count: Int, model: StableDiffusionModel,
                              tokenizer: CLIPTokenizer, directory: String, overwrite: Bool = false,
                              format: String? = nil) throws -> (path: String, vectors: Tensor) {
        guard count >= 1 else { throw Error.invalid("vectors must be at least 1 (got \(count))") }
        guard count <= EmbeddingFile.maximumVectors else { throw Error.invalid("vectors must be at most \(EmbeddingFile.maximumVectors) (got \(count))") }
        var made: Tensor?
        let path = try save(name: name, model: model, directory: directory, overwrite: overwrite, format: format) {
            let vectors = try initialVectors(initText: initText, count: count, model: model, tokenizer: tokenizer)
            made = vectors
            return vectors
        }
        return (path, made!)
    }

    /// Saves new vectors [N, the encoders' widths summed] as the embedding `name` in `directory`
    /// (as `format`, "pt" or "safetensors"; default the family's kind), made by `vectors` under the
    /// name's lock once the name is known to be free (or `overwrite`); returns the path.
    public static func save(name: String, model: StableDiffusionModel, directory: String, overwrite: Bool = false, format: String? = nil,
                            vectors: () throws -> Tensor) throws -> String {
        let ext = format ?? model.family.embeddingExtension
        let kinds = model.family == .sdxl ? fileExtensions : ["pt"]
        guard kinds.contains(ext) else {
            throw Error.invalid("\(model.family) embeddings are saved as \(kinds.map { "\"\($0)\"" }.joined(separator: " or ")), not \"\(ext)\"")
        }
        let file = fileName(name, extension: ext)
        guard file != "." + ext else { throw Error.invalid("the name \"\(name)\" has no usable characters") }
        let path = directory + "/" + file
        try Folder.create(directory)
        if !overwrite && FileManager.default.fileExists(atPath: path) { throw Error.exists(path) }
        // Checked and written under the name's lock, so two sessions cannot both create it, nor
        // replace an embedding another session is training.
        let lock = try FileLock(for: path, purpose: "create it")
        defer { withExtendedLifetime(lock) {} }
        if !overwrite && FileManager.default.fileExists(atPath: path) { throw Error.exists(path) }
        let made = try vectors()
        try EmbeddingFile.write(name: (file as NSString).deletingPathExtension, vectors: try split(made, model: model), step: 0,
                                checkpointHash: model.shortHash.isEmpty ? nil : model.shortHash, checkpointName: model.name, to: path)
        return path
    }

    /// The trainer's vectors [n, widths summed] as the embedding file's named sets, one per encoder.
    public static func split(_ vectors: Tensor, model: StableDiffusionModel) throws -> [(key: String, tensor: Tensor)] {
        var start = 0
        return try zip(model.family.embeddingKeys, model.embeddingWidths).map { key, width in
            defer { start += width }
            return (key, try vectors.sliced(dim: 1, start, start + width).contiguous())
        }
    }
}

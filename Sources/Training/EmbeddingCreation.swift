import Engine
import Formats
import Foundation
import Models
import Prompting

/// `embedding new NAME init="TEXT" vectors=N`: a new embedding whose vectors start as the token
/// embeddings of TEXT (vector i is the row of token i x tokens / N, so TEXT's tokens are repeated
/// or truncated to N, as A1111's `create_embedding`; zeros without TEXT), saved at once in A1111's
/// format with step 0 and the current model's hash and name.
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

    /// The file name A1111 would use: the name without characters other than letters, digits, "._- ".
    public static func fileName(_ name: String) -> String {
        String(name.filter { $0.isLetter || $0.isNumber || "._- ".contains($0) }) + ".pt"
    }

    /// Creates and saves the embedding; returns its path and vectors [N, width].
    @discardableResult
    public static func create(name: String, initText: String, vectors count: Int, model: StableDiffusionModel,
                              tokenizer: CLIPTokenizer, directory: String, overwrite: Bool = false) throws -> (path: String, vectors: Tensor) {
        guard count >= 1 else { throw Error.invalid("vectors must be at least 1 (got \(count))") }
        guard model.family != .sdxl else { throw Error.invalid("SDXL embeddings (one set of vectors per text encoder) cannot be created yet") }
        let file = fileName(name)
        guard file != ".pt" else { throw Error.invalid("the name \"\(name)\" has no usable characters") }
        let path = directory + "/" + file
        try Folder.create(directory)
        // Checked and written under the name's lock, so two sessions cannot both create it, nor
        // replace an embedding another session is training.
        let lock = try FileLock(for: path, purpose: "create it")
        defer { withExtendedLifetime(lock) {} }
        if !overwrite && FileManager.default.fileExists(atPath: path) { throw Error.exists(path) }
        let width = model.textEncoder.config.hiddenSize
        var vectors = try Tensor.zeros([count, width])
        if !initText.isEmpty {
            let ids = tokenizer.encode(initText)
            guard !ids.isEmpty else { throw Error.invalid("init text \"\(initText)\" has no tokens") }
            let rows = try withNoGrad { try model.textEncoder.tokenEmbeddings(ids) }
            vectors = try Tensor.concat((0..<count).map { try rows.sliced(dim: 0, $0 * ids.count / count, $0 * ids.count / count + 1) }, dim: 0)
        }
        try EmbeddingFile.writeA1111(name: (file as NSString).deletingPathExtension, vectors: vectors, step: 0,
                                     checkpointHash: model.shortHash.isEmpty ? nil : model.shortHash, checkpointName: model.name, to: path)
        return (path, vectors)
    }
}

import Foundation
import Formats
import Models
import Prompting

/// The LoRA-family networks prompts can name (`<lora:NAME:...>`): the `.safetensors`, `.pt` and
/// `.ckpt` files of the LoRA folders and their subfolders, named by file stem as A1111 names them
/// (the first folder wins). Folders are listed afresh at each use, so a file dropped in is usable
/// without a restart; a file is read (pickles through the restricted unpickler) when a prompt
/// first names it and kept while its size and modification time stay the same. The last merge
/// is kept too: the same networks at the same weights reuse it; other weights merge again from
/// the checkpoint's own weights (no file is read again, see `StableDiffusionModel.merging`).
public final class LoRALibrary: @unchecked Sendable {
    public let directories: [String]
    private let hashes: HashCache?
    private let lock = NSLock()
    private var read: [String: (size: Int, mtime: Date, network: LoRANetwork, hash: String)] = [:]
    private var lastMerge: (base: ObjectIdentifier, key: String, model: StableDiffusionModel)?

    public init(directories: [String], hashes: HashCache? = nil) {
        self.directories = directories
        self.hashes = hashes
    }

    static let extensions: Set<String> = ["safetensors", "pt", "ckpt"]

    /// The network files by name, sorted by name.
    public func files() -> [(name: String, path: String)] {
        Folder.filesByStem(in: directories, extensions: Self.extensions, recursive: true)
    }

    /// The network file `name`, read once per size and modification time, with A1111's short hash
    /// of it (12 hex digits of the sha256 of a safetensors file's tensor data, or of the whole file).
    public func network(_ name: String) throws -> (network: LoRANetwork, shortHash: String) {
        try network(name, among: files())
    }

    /// `network(_:)` with the folders already listed.
    func network(_ name: String, among listing: [(name: String, path: String)]) throws -> (network: LoRANetwork, shortHash: String) {
        guard let file = listing.first(where: { $0.name == name }) else {
            let known = listing.map(\.name)
            let where_ = directories.isEmpty ? "no LoRA folder is set" : "in \(directories.joined(separator: ", "))"
            throw GenerationError.invalid("no LoRA named \"\(name.escapingControlCharacters)\" \(where_)"
                                          + (known.isEmpty ? "" : "; known: " + known.joined(separator: ", ")))
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let mtime = attributes?[.modificationDate] as? Date ?? .distantPast
        if let known = lock.withLock({ read[file.path] }), known.size == size, known.mtime == mtime { return (known.network, known.hash) }
        let network = try LoRANetwork(try ModelFile.open(file.path))
        let safetensors = (file.path as NSString).pathExtension.lowercased() == "safetensors"
        let hashes = self.hashes ?? HashCache(location: NSTemporaryDirectory() + "sdshell-lora-hashes.json")
        // A hash the trainer stored in the metadata takes precedence, as in A1111.
        let stored = network.metadata["sshs_model_hash"].flatMap { $0.count >= 12 && $0.allSatisfy(\.isHexDigit) ? $0 : nil }
        let sha = try stored ?? (safetensors ? hashes.addnetSHA256(file.path) : hashes.sha256(file.path))
        let hash = FileHash.shortHash(sha, embedding: true)
        lock.withLock { read[file.path] = (size, mtime, network, hash) }
        return (network, hash)
    }

    /// `base` with the tags' networks merged (the last merge when it is the same), and messages
    /// about networks left out or partly applied. No tags: `base` itself.
    public func model(for base: StableDiffusionModel, tags: [ExtraNetworkTags.LoRA]) throws -> (model: StableDiffusionModel, messages: [String]) {
        guard !tags.isEmpty else { return (base, []) }
        let listing = files()
        let known = Set(listing.map(\.name))
        let missing = tags.map(\.name).filter { !known.contains($0) }
        if !missing.isEmpty {
            let where_ = directories.isEmpty ? "no LoRA folder is set" : "not in \(directories.joined(separator: ", "))"
            throw GenerationError.invalid("LoRA \(missing.map { "\"\($0.escapingControlCharacters)\"" }.joined(separator: ", ")) \(where_)"
                                          + (known.isEmpty ? "" : "; known: " + known.sorted().joined(separator: ", ")))
        }
        var applied: [AppliedNetwork] = []
        for tag in tags {
            let (network, hash) = try network(tag.name, among: listing)
            applied.append(AppliedNetwork(network: network, textEncoderMultiplier: tag.textEncoder, unetMultiplier: tag.unet, shortHash: hash))
        }
        let key = "\(base.path)|\(base.shortHash)\n" + applied.map { "\($0.network.path)|\($0.shortHash)|\($0.textEncoderMultiplier)|\($0.unetMultiplier)" }.joined(separator: "\n")
        if let last = lock.withLock({ lastMerge }), last.base == ObjectIdentifier(base), last.key == key { return (last.model, []) }
        let merged = try base.merging(applied)
        let messages = merged.skipped.map { "warning: LoRA \($0.name) not applied: \($0.reason)" }
            + merged.partial.map { "warning: LoRA \($0.name): \($0.unmatched) of its layers are not in \(base.name), applied without them" }
        // Only one merged model is held at a time: its changed layers are the memory a merge costs.
        lock.withLock { lastMerge = (ObjectIdentifier(base), key, merged.model) }
        return (merged.model, messages)
    }
}

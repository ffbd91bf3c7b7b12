import Engine

/// A textual-inversion embedding in any of the layouts in circulation:
/// - `a1111`: `{string_to_token, string_to_param: {"*": [n, dim]}, name, step, sd_checkpoint, sd_checkpoint_name}`
/// - `diffusers`: `{"<token>": [dim]}` (one tensor)
/// - `kohya`: `{"emb_params": [n, dim]}` (safetensors)
/// - `sdxl`: `{"clip_l": [n, 768], "clip_g": [n, 1280]}` (safetensors, whose metadata sdshell also
///   gives the A1111 fields `name`, `step`, `sd_checkpoint`, `sd_checkpoint_name`; or a `.pt`)
public struct EmbeddingFile: Sendable {
    public enum Kind: String, Sendable { case a1111, diffusers, kohya, sdxl }

    public let kind: Kind
    /// Vectors per text encoder: "clip" for SD 1.x/2.x files, "clip_l" and "clip_g" for SDXL. Each [n, dim].
    public let vectors: [String: StoredTensor]
    /// The name stored in the file (A1111), or the token (diffusers).
    public let storedName: String?
    public let step: Int?
    public let checkpointHash: String?
    public let checkpointName: String?

    /// Number of vectors (tokens the embedding occupies).
    public var vectorCount: Int { vectors.values.first.map { $0.shape.count == 1 ? 1 : $0.shape[0] } ?? 0 }
    /// Width of each vector per encoder.
    public var widths: [String: Int] { vectors.mapValues { $0.shape.last ?? 0 } }

    /// Most vectors an embedding may have. A1111's embeddings have a handful and a prompt holds a
    /// few hundred tokens; a file claiming millions (zero strides make that cost nothing on disk)
    /// is refused before anything is copied out.
    public static let maximumVectors = 1_000
    /// Widest vector accepted (text encoders are 768, 1024 or 1280 wide).
    public static let maximumWidth = 16_384

    /// The refusal for an embedding of `vectors` vectors of `width` numbers.
    static func sizeRefusal(vectors: Int, width: Int) -> String {
        "an embedding of \(vectors) vector\(vectors == 1 ? "" : "s") of width \(width); at most \(maximumVectors) vectors of width \(maximumWidth) are read"
    }

    /// Recognises an embedding in a loaded file, or returns nil when the file is something else or
    /// an embedding too large to read (more than `maximumVectors` vectors or wider than
    /// `maximumWidth`; `read` says so in an error).
    public static func recognize(_ file: ModelFile) -> EmbeddingFile? { (try? read(file)) ?? nil }

    /// Recognises an embedding in a loaded file: nil when the file is something else, an error
    /// naming the file when it is an embedding of more than `maximumVectors` vectors or vectors
    /// wider than `maximumWidth`.
    public static func read(_ file: ModelFile) throws -> EmbeddingFile? {
        guard let e = layout(file) else { return nil }
        for v in e.vectors.values {
            let n = v.shape.count == 1 ? 1 : v.shape[0], w = v.shape.last ?? 0
            guard n <= maximumVectors, w <= maximumWidth else {
                throw FormatError.unsupported(file: file.path, reason: sizeRefusal(vectors: n, width: w))
            }
        }
        return e
    }

    private static func layout(_ file: ModelFile) -> EmbeddingFile? {
        let t = file.tensors, m = file.metadata
        func vectorsOK(_ s: StoredTensor) -> Bool { (s.shape.count == 1 || s.shape.count == 2) && s.dtype.engineType != nil }
        if let key = t.keys.sorted().first(where: { $0.hasPrefix("string_to_param.") }), let v = t[key], vectorsOK(v) {
            return EmbeddingFile(kind: .a1111, vectors: ["clip": v], storedName: m["name"], step: m["step"].flatMap { Int($0) },
                                 checkpointHash: m["sd_checkpoint"], checkpointName: m["sd_checkpoint_name"])
        }
        if let v = t["emb_params"], vectorsOK(v) {
            return EmbeddingFile(kind: .kohya, vectors: ["clip": v], storedName: nil, step: nil, checkpointHash: nil, checkpointName: nil)
        }
        if let l = t["clip_l"], let g = t["clip_g"], vectorsOK(l), vectorsOK(g) {
            return EmbeddingFile(kind: .sdxl, vectors: ["clip_l": l, "clip_g": g], storedName: m["name"], step: m["step"].flatMap { Int($0) },
                                 checkpointHash: m["sd_checkpoint"], checkpointName: m["sd_checkpoint_name"])
        }
        if t.count == 1, let (token, v) = t.first, vectorsOK(v) {
            return EmbeddingFile(kind: .diffusers, vectors: ["clip": v], storedName: token, step: nil, checkpointHash: nil, checkpointName: nil)
        }
        return nil
    }

    /// Writes an embedding as A1111 does (`torch.save` of the dict above), atomically. The
    /// vectors [n, dim] are saved as f32 with requires_grad, as A1111's trainer leaves them.
    public static func writeA1111(name: String, vectors: Tensor, step: Int, checkpointHash: String?, checkpointName: String?,
                                  networks: String? = nil, to path: String) throws {
        let v = try vectors.rank == 1 ? vectors.reshaped([1, vectors.count]) : vectors
        // A1111 reads the keys it knows from such a dict; `sdshell_loras` is only there when
        // the embedding was trained with LoRA networks merged in.
        try TorchWriter.save(.dict([
            ("string_to_token", .dict([("*", .int(265))])),
            ("string_to_param", .dict([("*", .tensor(try v.to(.f32), requiresGrad: true))])),
            ("name", .string(name)),
            ("step", .int(step)),
            ("sd_checkpoint", checkpointHash.map { .string($0) } ?? .none),
            ("sd_checkpoint_name", checkpointName.map { .string($0) } ?? .none),
        ] + (networks.map { [("sdshell_loras", .string($0))] } ?? [])), to: path)
    }

    /// The key under which an embedding records the LoRA networks it was trained with.
    public static let networksKey = "sdshell_loras"

    /// Writes an embedding, atomically, in the layout its vectors' names and the path's extension
    /// call for: one "clip" set as A1111 saves it (`writeA1111`); SDXL's "clip_l" and "clip_g" as
    /// kohya saves them, a `.safetensors` of the two f32 tensors with the A1111 fields as string
    /// metadata, or a `.pt` of just the two tensors (A1111 reads a dict of exactly those; any other
    /// key would break its loader, so such a file keeps no step).
    public static func write(name: String, vectors: [(key: String, tensor: Tensor)], step: Int, checkpointHash: String?,
                             checkpointName: String?, networks: String? = nil, to path: String) throws {
        let keys = vectors.map(\.key)
        if keys == ["clip"] {
            return try writeA1111(name: name, vectors: vectors[0].tensor, step: step, checkpointHash: checkpointHash,
                                  checkpointName: checkpointName, networks: networks, to: path)
        }
        guard Set(keys) == ["clip_l", "clip_g"], keys.count == 2 else {
            throw FormatError.unsupported(file: path, reason: "no embedding layout holds vectors named \(keys.joined(separator: ", "))")
        }
        let tensors = try Dictionary(uniqueKeysWithValues: vectors.map { ($0.key, try $0.tensor.to(.f32)) })
        if path.lowercased().hasSuffix(".pt") {
            try TorchWriter.save(.dict(tensors.keys.sorted().map { ($0, .tensor(tensors[$0]!, requiresGrad: false)) }), to: path)
        } else {
            var metadata = ["name": name, "step": String(step)]
            metadata["sd_checkpoint"] = checkpointHash
            metadata["sd_checkpoint_name"] = checkpointName
            metadata[networksKey] = networks
            try SafeTensorsFile.write(tensors, metadata: metadata, to: path)
        }
    }
}

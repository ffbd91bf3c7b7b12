/// The text `inspect` prints about a file: format, kind, hashes, metadata and tensors (name,
/// dtype, shape), one per line, in a stable order. Callers may add lines (e.g. the architecture).
/// Text from the file (names, metadata) has its control characters made visible
/// (`escapingControlCharacters`), so printing the lines cannot steer the terminal.
public struct FileDescription {
    public var lines: [String] = []
    /// Tensors holding NaN or infinity, as warnings.
    public var warnings: [String] = []

    public init(_ file: ModelFile, hashes: HashCache?, checkNonFinite: Bool = true) throws {
        lines.append("file: \(file.path)")
        lines.append("format: \(file.format.rawValue)")
        var embedding: EmbeddingFile?
        do { embedding = try EmbeddingFile.read(file) } catch { warnings.append("warning: \(error)") }
        if let e = embedding {
            var kind = "embedding (\(e.kind.rawValue)): \(e.vectorCount) vector\(e.vectorCount == 1 ? "" : "s"), width "
            kind += e.widths.keys.sorted().map { "\($0) \(e.widths[$0]!)" }.joined(separator: ", ")
            if let n = e.storedName { kind += ", name \(n)" }
            if let s = e.step { kind += ", step \(s)" }
            if let h = e.checkpointHash { kind += ", trained on \(e.checkpointName ?? "?") [\(h)]" }
            lines.append("kind: " + kind)
        }
        if let hashes, file.format != .diffusersFolder {
            let sha = try hashes.sha256(file.path)
            let isEmbedding = embedding != nil
            lines.append("sha256: \(sha)")
            lines.append("hash: \(FileHash.shortHash(sha, embedding: isEmbedding)) (A1111 \(isEmbedding ? "embedding" : "model") hash), legacy \(try FileHash.legacyModelHash(file.path))")
        }
        if !file.metadata.isEmpty {
            lines.append("metadata:")
            for k in file.metadata.keys.sorted() {
                let v = file.metadata[k]!
                lines.append("  \(k): \(v.count > 200 ? String(v.prefix(200)) + "…" : v)")
            }
        }
        lines.append("tensors: \(file.tensors.count)")
        for name in file.names {
            let t = file.tensors[name]!
            lines.append("  \(name) \(t.dtype.rawValue) [\(t.shape.map(String.init).joined(separator: ", "))]")
            if checkNonFinite, t.dtype.engineType != nil || t.dtype == .F64 {
                let (nan, inf) = try t.nonFiniteCounts()
                if nan + inf > 0 { warnings.append("warning: \(file.path): tensor \(name) holds \(nan) NaN and \(inf) infinite values") }
            }
        }
        lines = lines.map(\.escapingControlCharacters)
        warnings = warnings.map(\.escapingControlCharacters)
    }
}

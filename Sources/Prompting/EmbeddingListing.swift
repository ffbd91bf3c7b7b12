/// What `embeddings` prints: the loaded embeddings (name, family, vectors, width, step, trained-on
/// checkpoint, short hash, file) and the skipped files with the reason.
public struct EmbeddingListing {
    public let lines: [String]

    public init(_ db: EmbeddingDatabase) {
        var lines = ["\(db.embeddings.count) embedding\(db.embeddings.count == 1 ? "" : "s") loaded from \(db.directories.joined(separator: ", "))"]
        for e in db.embeddings.values.sorted(by: { $0.name < $1.name }) {
            var line = "  \(e.name): \(e.vectorCount) vector\(e.vectorCount == 1 ? "" : "s") x \(e.widths.map(String.init).joined(separator: " + "))"
            if let family = e.family { line += " (\(family))" }
            if let step = e.step { line += ", step \(step)" }
            if let h = e.checkpointHash { line += ", trained on \(e.checkpointName ?? "?") [\(h)]" }
            line += ", [\(e.shortHash)] \(e.file)"
            lines.append(line)
        }
        if !db.skipped.isEmpty {
            lines.append("skipped:")
            for s in db.skipped.sorted(by: { $0.file < $1.file }) { lines.append("  \(s.file): \(s.reason)") }
        }
        self.lines = lines
    }
}

import Foundation

/// The session journal: `outdir/sessions/<timestamp>.sdscript`, a script that replays the session.
///
/// Each executed statement that changes state or makes files is recorded with every setting
/// explicit (seeds as used), followed by `#>` lines naming each output and its pixel digest. The
/// file is created when the session first produces a file (in the `outdir` then in force);
/// entries recorded before that are kept and written first. Entries are appended as they happen,
/// so an interrupted session keeps everything up to its last statement.
public final class Journal {
    public private(set) var path: String?
    var pending: [String] = []
    let started = Date()

    public init() {}

    /// The `#>` annotation of an output.
    public static func annotation(path: String, digest: String) -> String { "#> \(path) \(digest)" }

    /// Records a statement (and comment lines written before it) with its outputs. A statement that
    /// made files passes the `outdir` in force: the journal is created there if it does not exist yet.
    public func record(_ statement: String, comments: [String] = [], outputs: [(path: String, digest: String)], outdir: String? = nil) {
        let entry = (comments.map { "# " + $0 } + [statement] + outputs.map { Self.annotation(path: $0.path, digest: $0.digest) })
            .joined(separator: "\n") + "\n"
        pending.append(entry)
        if path == nil, let outdir { open(in: outdir) }
        flush()
    }

    func open(in outdir: String) {
        let folder = outdir + "/sessions"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd_HH-mm-ss"
        let stem = folder + "/" + formatter.string(from: started)
        var candidate = stem + ".sdscript", n = 2
        while FileManager.default.fileExists(atPath: candidate) { candidate = "\(stem)-\(n).sdscript"; n += 1 }
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        let header = "# sdshell session journal, started \(formatter.string(from: started)); `replay` this file to make the same images\n"
        guard FileManager.default.createFile(atPath: candidate, contents: Data(header.utf8)) else { return }
        path = candidate
    }

    func flush() {
        guard let path, !pending.isEmpty, let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(pending.joined().utf8))
        pending.removeAll()
    }
}

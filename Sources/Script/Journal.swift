import Formats
import Foundation

/// Why the journal could not be written: the session's record is no longer complete, so the
/// statement fails (a script stops and exits non-zero).
public struct JournalError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): the session journal cannot be written (\(reason)); images made from now on would not be replayable" }
}

/// The session journal: `outdir/sessions/<timestamp>.sdscript`, a script that replays the session.
///
/// Each executed statement that changes state or makes files is recorded with every setting
/// explicit (seeds as used), followed by `#>` lines naming each output and its pixel digest. The
/// file is created when the session first produces a file (in the `outdir` then in force);
/// entries recorded before that are kept and written first. Entries are appended as they happen
/// (a generation of several batches records each batch as it is saved), so an interrupted or
/// killed session keeps everything up to its last whole entry. A failed write is reported
/// (`JournalError`) and cut back, so the file always ends with a whole entry.
public final class Journal {
    public private(set) var path: String?
    var pending: [String] = []
    /// A comment put first in every entry (a sharded run's sort key, `Shard`).
    var entryComment: (() -> String)?
    let started = Date()

    public init() {}

    /// A journal appending to an existing file (tests use `/dev/full` to see a failed write).
    init(appendingTo path: String) { self.path = path }

    /// The `#>` annotation of an output.
    public static func annotation(path: String, digest: String) -> String { "#> \(path) \(digest)" }

    /// Records a statement (and comment lines written before it) with its outputs. A statement that
    /// made files passes the `outdir` in force: the journal is created there if it does not exist yet.
    public func record(_ statement: String, comments: [String] = [], outputs: [(path: String, digest: String)], outdir: String? = nil) throws {
        let entry = (((entryComment.map { [$0()] } ?? []) + comments).map { "# " + $0 } + [statement] + outputs.map { Self.annotation(path: $0.path, digest: $0.digest) })
            .joined(separator: "\n") + "\n"
        pending.append(entry)
        if path == nil, let outdir { try open(in: outdir) }
        try flush()
    }

    /// Writes entries still waiting for a file into a journal in `outdir` (a shard that made no
    /// file still journals the statements every shard ran, for `ShardMerge`).
    func writePending(in outdir: String) throws {
        guard path == nil, !pending.isEmpty else { return }
        try open(in: outdir)
        try flush()
    }

    /// `date` as journal file names write it (UTC, `2026-12-07_16-53-36`).
    static func fileStamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd_HH-mm-ss"
        return formatter.string(from: date)
    }

    func open(in outdir: String) throws {
        let folder = outdir + "/sessions"
        try Folder.create(folder)
        let stem = folder + "/" + Self.fileStamp(started)
        let header = "# sdshell session journal, started \(ISO8601DateFormatter().string(from: started)); `replay` this file to make the same images\n"
        // Claimed with O_EXCL, so two sessions started in the same second never share a journal.
        for n in 1...10_000 {
            let candidate = n == 1 ? stem + ".sdscript" : "\(stem)-\(n).sdscript"
            let fd = Foundation.open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 {
                if errno == EEXIST { continue }
                throw JournalError(path: candidate, reason: String(cString: strerror(errno)))
            }
            defer { close(fd) }
            try Self.append(header, fd: fd, path: candidate)
            path = candidate
            return
        }
        throw JournalError(path: stem + ".sdscript", reason: "10,000 journals were started in the same second")
    }

    func flush() throws {
        guard let path, !pending.isEmpty else { return }
        let fd = Foundation.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try Self.append(pending.joined(), fd: fd, path: path)
        pending.removeAll()
    }

    /// Appends `text` whole, or cuts the file back to where it was and throws.
    static func append(_ text: String, fd: Int32, path: String) throws {
        let start = lseek(fd, 0, SEEK_END)
        do {
            try FileWriter(fd: fd, path: path).write(Array(text.utf8))
        } catch let error as FormatError {
            if start >= 0 { _ = ftruncate(fd, start) }
            var reason = error.description
            if reason.hasPrefix(path + ": write failed: ") { reason.removeFirst((path + ": write failed: ").count) }
            throw JournalError(path: path, reason: reason)
        }
    }
}

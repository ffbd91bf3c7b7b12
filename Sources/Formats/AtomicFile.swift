import Foundation

/// Writes files so that a crash or Ctrl-C mid-write leaves the previous file intact: the bytes go
/// to a temporary file in the same directory, are flushed to disk, and the temporary file is
/// renamed over the destination.
public enum AtomicFile {
    /// Writes the data produced by `body` (which appends to the handle) to `path` atomically,
    /// replacing any file there.
    public static func write(to path: String, _ body: (FileWriter) throws -> Void) throws {
        let temp = try writeTemporary(for: path, body)
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw FormatError.io(file: path, reason: "rename: \(reason)")
        }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }

    /// Writes `data` to `path` only if no file has that name: the finished temporary file is
    /// hard-linked to `path`, which the kernel refuses when the name exists, so two processes
    /// claiming the same name never overwrite each other. Returns false when the name was taken.
    public static func create(_ data: [UInt8], at path: String) throws -> Bool {
        try create(data, at: path, linking: true)
    }

    /// `create`, with `linking: false` taking the path used where the file system has no hard
    /// links (FAT, some network mounts): the name is claimed with O_EXCL, then the finished
    /// temporary file is renamed over that claim (a crash in between leaves an empty file).
    static func create(_ data: [UInt8], at path: String, linking: Bool) throws -> Bool {
        let temp = try writeTemporary(for: path) { try $0.write(data) }
        defer { unlink(temp) }
        if linking {
            if link(temp, path) == 0 { return true }
            if errno == EEXIST { return false }
            guard [EPERM, ENOTSUP, EOPNOTSUPP, EMLINK, EXDEV].contains(errno) else {
                throw FormatError.io(file: path, reason: "cannot create: \(String(cString: strerror(errno)))")
            }
        }
        let claim = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if claim < 0 {
            if errno == EEXIST { return false }
            throw FormatError.io(file: path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        close(claim)
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw FormatError.io(file: path, reason: "rename: \(reason)")
        }
        return true
    }

    /// The temporary name of a write to `path` by this process: `.NAME.tmp-PID-RANDOM`.
    static func temporaryPrefix(for name: String) -> String { "." + name + ".tmp-" }

    /// Writes `body`'s bytes to a new temporary file beside `path`, flushed to disk; returns its
    /// path. Temporaries that killed processes left for the same name are removed first.
    private static func writeTemporary(for path: String, _ body: (FileWriter) throws -> Void) throws -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        removeStaleTemporaries(in: dir, name: url.lastPathComponent)
        let temp = dir + "/" + temporaryPrefix(for: url.lastPathComponent) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FormatError.io(file: path, reason: "cannot create \(temp): \(String(cString: strerror(errno)))") }
        let writer = FileWriter(fd: fd, path: path)
        do {
            try body(writer)
            guard fsync(fd) == 0 else { throw FormatError.io(file: path, reason: "fsync: \(String(cString: strerror(errno)))") }
            close(fd)
            return temp
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
    }

    /// Removes `.NAME.tmp-PID-*` files in `dir` whose process no longer exists (a SIGKILL or a
    /// crash mid-write leaves them). A live process's temporaries are left alone.
    public static func removeStaleTemporaries(in dir: String, name: String) {
        let prefix = temporaryPrefix(for: name)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for entry in entries where entry.hasPrefix(prefix) {
            let rest = entry.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(dir + "/" + entry) }
        }
    }
}

/// Sequential writes to an open file descriptor; errors name the destination file.
public final class FileWriter {
    let fd: Int32
    let path: String
    /// Bytes written so far.
    public private(set) var offset = 0

    /// A writer to an open descriptor (not closed by the writer); errors name `path`.
    public init(fd: Int32, path: String) { self.fd = fd; self.path = path }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = Foundation.write(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError.io(file: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        offset += done
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
}

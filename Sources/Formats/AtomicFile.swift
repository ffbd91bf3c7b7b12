import Foundation

/// Writes files so that a crash or Ctrl-C mid-write leaves the previous file intact: the bytes go
/// to a temporary file in the same directory, are flushed to disk, and the temporary file is
/// renamed over the destination.
public enum AtomicFile {
    /// Writes the data produced by `body` (which appends to the handle) to `path` atomically.
    public static func write(to path: String, _ body: (FileWriter) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let temp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw FormatError.io(file: path, reason: "cannot create \(temp): \(String(cString: strerror(errno)))") }
        let writer = FileWriter(fd: fd, path: path)
        do {
            try body(writer)
            guard fsync(fd) == 0 else { throw FormatError.io(file: path, reason: "fsync: \(String(cString: strerror(errno)))") }
            close(fd)
            guard rename(temp, path) == 0 else { throw FormatError.io(file: path, reason: "rename: \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(data) }
    }
}

/// Sequential writes to an open file descriptor; errors name the destination file.
public final class FileWriter {
    let fd: Int32
    let path: String
    /// Bytes written so far.
    public private(set) var offset = 0

    init(fd: Int32, path: String) { self.fd = fd; self.path = path }

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

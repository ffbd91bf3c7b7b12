import Foundation

/// An exclusive advisory lock on a name in a folder, held while a process works on the file of
/// that name (`train` on an embedding, `embedding new`): `flock` on `.NAME.lock` beside it. The
/// kernel releases it when the holder exits or is killed, so a crash never leaves a stale lock;
/// the lock file itself stays (empty apart from the holder's process id).
public final class FileLock {
    public let path: String
    private let fd: Int32

    /// Takes the lock for `file`, or throws `FormatError.locked` naming the file and the process that
    /// holds it (`purpose` says what the caller was about to do).
    public init(for file: String, purpose: String) throws {
        let url = URL(fileURLWithPath: file)
        path = url.deletingLastPathComponent().path + "/." + url.lastPathComponent + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FormatError.io(file: file, reason: "cannot create the lock \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            // Only "held by someone else" refuses; a file system without locks (ENOLCK, some
            // network mounts) works unlocked, as before locks existed.
            guard errno == EWOULDBLOCK else { return }
            let holder = Self.holder(fd)
            close(fd)
            throw FormatError.locked(file: file, reason: "cannot \(purpose): another session" + (holder.map { " (process \($0))" } ?? "")
                                 + " is training or creating it; try again when it is done")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, pid.count, 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// The process id the holder wrote, when readable.
    private static func holder(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 15, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

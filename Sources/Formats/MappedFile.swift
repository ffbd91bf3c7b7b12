import Foundation

/// A read-only memory mapping of a whole file. Tensors read from it are copied out on demand, and
/// the pages they came from are released (`release`) so that resident memory tracks what was
/// materialised rather than what was touched.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a named pipe (or a device) must not wait for a writer; what was
        // opened is checked with fstat before anything is read.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FormatError.io(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError.io(file: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FormatError.io(file: path, reason: "not a regular file (\(Self.kind(st.st_mode)))") }
        size = Int(st.st_size)
        if size == 0 { base = nil; return }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw FormatError.io(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        base = UnsafeRawPointer(p)
    }

    /// What a non-regular file is, for messages.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a named pipe"
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a plain file"
        }
    }

    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) } }

    /// Throws unless [offset, offset + count) lies inside the file.
    public func checkRange(_ offset: Int, _ count: Int, _ what: @autoclosure () -> String) throws {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw FormatError.corrupt(file: path, reason: "\(what()) at bytes \(offset)..<\(offset &+ count) lies past the end of the file (\(size) bytes)")
        }
    }

    /// The bytes [offset, offset + count) (range-checked).
    public func bytes(_ offset: Int, _ count: Int, _ what: @autoclosure () -> String = "data") throws -> UnsafeRawBufferPointer {
        try checkRange(offset, count, what())
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    /// Little-endian integer at `offset`.
    public func read<T: FixedWidthInteger>(_ type: T.Type, at offset: Int, _ what: @autoclosure () -> String = "field") throws -> T {
        let b = try bytes(offset, MemoryLayout<T>.size, what())
        return T(littleEndian: b.loadUnaligned(as: T.self))
    }

    /// Drops the mapped pages of a range from resident memory (they are re-read if touched again).
    public func release(_ offset: Int, _ count: Int) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page
        let end = min(size, offset + count)
        let full = ((end - start) / page) * page
        if full > 0 { madvise(UnsafeMutableRawPointer(mutating: base + start), full, MADV_DONTNEED) }
    }
}

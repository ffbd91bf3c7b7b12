/// The ZIP container of `torch.save` archives (PyTorch writes stored, uncompressed records,
/// ZIP64 for large files). Reads the central directory of a memory-mapped file; every offset is
/// range-checked.
struct ZipArchive {
    struct Entry { let name: String; let dataOffset: Int; let size: Int }
    let file: MappedFile
    let entries: [String: Entry]

    static func isZip(_ file: MappedFile) -> Bool {
        (try? file.read(UInt32.self, at: 0)) == 0x0403_4b50
    }

    init(_ file: MappedFile) throws {
        self.file = file
        let path = file.path
        // End of central directory: 22 bytes plus a comment of up to 65535 bytes at the end.
        let minEOCD = 22
        guard file.size >= minEOCD else { throw FormatError.corrupt(file: path, reason: "too short for a zip archive") }
        var eocd = -1
        var pos = file.size - minEOCD
        let lowest = max(0, file.size - minEOCD - 65535)
        while pos >= lowest {
            if try file.read(UInt32.self, at: pos) == 0x0605_4b50 { eocd = pos; break }
            pos -= 1
        }
        guard eocd >= 0 else { throw FormatError.corrupt(file: path, reason: "zip end-of-directory record not found (truncated file?)") }
        var count = Int(try file.read(UInt16.self, at: eocd + 10))
        var dirSize = Int(try file.read(UInt32.self, at: eocd + 12))
        var dirOffset = Int(try file.read(UInt32.self, at: eocd + 16))
        // ZIP64: a locator 20 bytes before the EOCD points at the ZIP64 end record.
        if eocd >= 20, try file.read(UInt32.self, at: eocd - 20) == 0x0706_4b50 {
            let z = Int(clamping: try file.read(UInt64.self, at: eocd - 12))
            guard try file.read(UInt32.self, at: z, "zip64 end record") == 0x0606_4b50 else {
                throw FormatError.corrupt(file: path, reason: "bad zip64 end-of-directory record")
            }
            count = Int(clamping: try file.read(UInt64.self, at: z + 32))
            dirSize = Int(clamping: try file.read(UInt64.self, at: z + 40))
            dirOffset = Int(clamping: try file.read(UInt64.self, at: z + 48))
        }
        try file.checkRange(dirOffset, dirSize, "zip central directory")
        var entries: [String: Entry] = [:]
        var p = dirOffset
        for _ in 0..<count {
            guard try file.read(UInt32.self, at: p, "zip directory entry") == 0x0201_4b50 else {
                throw FormatError.corrupt(file: path, reason: "bad zip directory entry at byte \(p)")
            }
            let method = try file.read(UInt16.self, at: p + 10)
            var compressed = Int(try file.read(UInt32.self, at: p + 20))
            var size = Int(try file.read(UInt32.self, at: p + 24))
            let nameLength = Int(try file.read(UInt16.self, at: p + 28))
            let extraLength = Int(try file.read(UInt16.self, at: p + 30))
            let commentLength = Int(try file.read(UInt16.self, at: p + 32))
            var local = Int(try file.read(UInt32.self, at: p + 42))
            let name = String(decoding: try file.bytes(p + 46, nameLength, "zip entry name"), as: UTF8.self)
            // ZIP64 extended information (extra field id 1) replaces fields stored as 0xFFFFFFFF.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = try file.read(UInt16.self, at: e), len = Int(try file.read(UInt16.self, at: e + 2))
                if id == 1 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF { size = Int(clamping: try file.read(UInt64.self, at: q)); q += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = Int(clamping: try file.read(UInt64.self, at: q)); q += 8 }
                    if local == 0xFFFF_FFFF { local = Int(clamping: try file.read(UInt64.self, at: q)) }
                }
                e += 4 + len
            }
            guard method == 0 else {
                throw FormatError.unsupported(file: path, reason: "zip entry \(name) is compressed (method \(method)); torch.save writes stored entries")
            }
            guard try file.read(UInt32.self, at: local, "zip local header") == 0x0403_4b50 else {
                throw FormatError.corrupt(file: path, reason: "bad zip local header for \(name)")
            }
            let dataOffset = local + 30 + Int(try file.read(UInt16.self, at: local + 26)) + Int(try file.read(UInt16.self, at: local + 28))
            try file.checkRange(dataOffset, size, "zip entry \(name)")
            // Two records of one name would make which one is read depend on the order of reading.
            guard entries[name] == nil else {
                throw FormatError.corrupt(file: path, reason: "the archive holds two records named \(name) (ambiguous)")
            }
            entries[name] = Entry(name: name, dataOffset: dataOffset, size: size)
            p += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }
}

/// A file written by `torch.save`: the zip archive format (PyTorch 1.6+) or the legacy format
/// (a run of pickles followed by raw storages). The object tree is read with the restricted
/// `Unpickler`; tensors stay in the memory-mapped file until materialised.
public struct TorchArchive: Sendable {
    public enum Layout: String, Sendable { case zip = "torch-zip", legacy = "torch-legacy" }

    public let path: String
    public let layout: Layout
    /// The unpickled object (usually a dict).
    nonisolated(unsafe) public let root: PickleValue
    /// Storage bytes by key: (offset in file, byte count).
    let storages: [String: (offset: Int, bytes: Int)]
    let file: MappedFile
    /// Owns the pickle's containers (see PickleArena).
    let arena = PickleArena()

    /// The magic number that starts a legacy torch.save file (an 80-bit pickled int).
    static let legacyMagic = "int 0x1950a86a20f9469cfc6c"

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.path = path
        self.file = file
        if ZipArchive.isZip(file) {
            layout = .zip
            (root, storages) = try Self.readZip(file, arena)
        } else if file.size >= 2, try file.bytes(0, 1)[0] == 0x80 as UInt8 {
            layout = .legacy
            (root, storages) = try Self.readLegacy(file, arena)
        } else {
            throw FormatError.corrupt(file: path, reason: "neither a zip archive nor a pickle (unknown magic bytes)")
        }
    }

    private static func storageType(_ file: String, _ v: PickleValue) throws -> StoredDType {
        guard case let .global(name) = v, let t = Unpickler.storageTypes[name] else {
            throw FormatError.corrupt(file: file, reason: "unknown storage type \(v)")
        }
        return t
    }

    private static func readZip(_ file: MappedFile, _ arena: PickleArena) throws -> (PickleValue, [String: (offset: Int, bytes: Int)]) {
        let zip = try ZipArchive(file)
        let pickles = zip.entries.values.filter { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" }.map(\.name).sorted()
        guard pickles.count <= 1 else {
            // torch.save writes one; with several, which one is read would depend on dictionary order.
            throw FormatError.corrupt(file: file.path, reason: "the archive holds \(pickles.count) data.pkl records (\(pickles.prefix(4).joined(separator: ", "))\(pickles.count > 4 ? ", …" : "")); torch.save writes one")
        }
        guard let name = pickles.first, let pkl = zip.entries[name] else {
            throw FormatError.corrupt(file: file.path, reason: "no data.pkl record in the archive")
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        if let order = zip.entries[prefix + "byteorder"] {
            let text = String(decoding: try file.bytes(order.dataOffset, order.size), as: UTF8.self)
            guard text == "little" else { throw FormatError.unsupported(file: file.path, reason: "byte order \(text)") }
        }
        var storages: [String: (offset: Int, bytes: Int)] = [:]
        for e in zip.entries.values where e.name.hasPrefix(prefix + "data/") {
            storages[String(e.name.dropFirst(prefix.count + 5))] = (e.dataOffset, e.size)
        }
        var unpickler = Unpickler(file: file.path, data: try file.bytes(pkl.dataOffset, pkl.size), arena: arena) { pid in
            // ('storage', storage_type, key, location, numel)
            guard case let .tuple(t) = pid, t.count >= 5, case let .string(key) = t[2], case let .int(n) = t[4] else {
                throw FormatError.corrupt(file: file.path, reason: "unexpected persistent id \(pid)")
            }
            return .storage(StorageRecord(dtype: try storageType(file.path, t[1]), key: key, count: n))
        }
        return (try unpickler.load(), storages)
    }

    private static func readLegacy(_ file: MappedFile, _ arena: PickleArena) throws -> (PickleValue, [String: (offset: Int, bytes: Int)]) {
        let all = try file.bytes(0, file.size)
        var records: [String: StorageRecord] = [:]
        var reader = Unpickler(file: file.path, data: all, arena: arena) { _ in .none }
        guard case let .skipped(magic) = try reader.load(), magic == legacyMagic else {
            throw FormatError.corrupt(file: file.path, reason: "not a torch.save file (legacy magic number missing)")
        }
        _ = try reader.load()   // protocol version
        _ = try reader.load()   // sys info
        var main = Unpickler(file: file.path, data: all, start: reader.position, arena: arena) { pid in
            // ('storage', storage_type, root_key, location, numel, view_metadata)
            guard case let .tuple(t) = pid, t.count >= 5, case let .string(key) = t[2], case let .int(n) = t[4] else {
                throw FormatError.corrupt(file: file.path, reason: "unexpected persistent id \(pid)")
            }
            if t.count >= 6, case .tuple = t[5] {
                throw FormatError.unsupported(file: file.path, reason: "legacy storage views")
            }
            let record = StorageRecord(dtype: try storageType(file.path, t[1]), key: key, count: n)
            records[key] = record
            return .storage(record)
        }
        let root = try main.load()
        var keysReader = Unpickler(file: file.path, data: all, start: main.position, arena: arena) { _ in .none }
        guard case let .list(keys) = try keysReader.load() else {
            throw FormatError.corrupt(file: file.path, reason: "legacy storage key list missing")
        }
        // Each storage: an 8-byte little-endian element count, then the elements.
        var offset = keysReader.position
        var storages: [String: (offset: Int, bytes: Int)] = [:]
        for k in keys.items {
            guard case let .string(key) = k, let record = records[key] else {
                throw FormatError.corrupt(file: file.path, reason: "legacy storage key \(k) was never referenced")
            }
            let n = Int(clamping: try file.read(UInt64.self, at: offset, "legacy storage \(key) size"))
            let (bytes, o) = n.multipliedReportingOverflow(by: record.dtype.size)
            guard !o else { throw FormatError.corrupt(file: file.path, reason: "legacy storage \(key) size overflows") }
            try file.checkRange(offset + 8, bytes, "legacy storage \(key)")
            storages[key] = (offset + 8, bytes)
            offset += 8 + bytes
        }
        return (root, storages)
    }

    /// The stored tensor a tensor record describes (range-checked).
    public func tensor(_ record: TensorRecord, name: String) throws -> StoredTensor {
        guard let s = storages[record.storage.key] else {
            throw FormatError.corrupt(file: path, reason: "tensor \(name) refers to missing storage \(record.storage.key)")
        }
        let t = StoredTensor(dtype: record.storage.dtype, shape: record.shape, strides: record.strides, elementOffset: record.offset,
                             file: file, storageOffset: s.offset, storageBytes: s.bytes)
        try t.validate(name)
        return t
    }
}

import Engine

/// Writes `torch.save`-compatible zip archives of plain data and tensors (loaded back by
/// `torch.load(path, weights_only=True)`), atomically.
public enum TorchWriter {
    /// A value to save: nested dicts, lists and tuples of scalars, strings and tensors.
    public indirect enum Item {
        case string(String), int(Int), float(Double), bool(Bool), none
        case tensor(Tensor, requiresGrad: Bool = false)
        /// A dict with string keys, in order.
        case dict([(String, Item)])
        /// A dict with keys of any kind (an optimizer's state is keyed by parameter index).
        case map([(Item, Item)])
        case list([Item]), tuple([Item])
    }

    /// Saves `root` to `path` as archive "archive/" (as torch names it for `archive.pt` files).
    public static func save(_ root: Item, to path: String) throws {
        var storages: [(String, Tensor)] = []
        func convert(_ item: Item) throws -> PickleWriter.Value {
            switch item {
            case let .string(s): return .string(s)
            case let .int(i): return .int(i)
            case let .float(f): return .float(f)
            case let .bool(b): return .bool(b)
            case .none: return .none
            case let .dict(items): return .dict(try items.map { (.string($0.0), try convert($0.1)) })
            case let .map(items): return .dict(try items.map { (try convert($0.0), try convert($0.1)) })
            case let .list(items): return .list(try items.map(convert))
            case let .tuple(items): return .tuple(try items.map(convert))
            case let .tensor(t, requiresGrad):
                let key = String(storages.count)
                let c = try t.contiguous()
                storages.append((key, c))
                let dtype: StoredDType = c.dtype == .f32 ? .F32 : (c.dtype == .f16 ? .F16 : .BF16)
                return .tensor(key: key, dtype: dtype, shape: c.shape, requiresGrad: requiresGrad)
            }
        }
        var pickle = PickleWriter()
        pickle.write(try convert(root))
        pickle.finish()
        var zip = ZipWriter()
        zip.add("archive/data.pkl", pickle.bytes)
        zip.add("archive/byteorder", Array("little".utf8))
        for (key, t) in storages {
            zip.add("archive/data/" + key, UnsafeRawBufferPointer(start: t.storage.raw + t.offset * t.dtype.size, count: t.count * t.dtype.size))
        }
        zip.add("archive/version", Array("3\n".utf8))
        try AtomicFile.write(zip.finish(), to: path)
    }
}

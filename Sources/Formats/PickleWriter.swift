/// Writes pickles (protocol 2) of plain data and tensors the way `torch.save` does, so that
/// `torch.load(..., weights_only=True)` accepts them.
struct PickleWriter {
    /// A value to write.
    indirect enum Value {
        case none
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
        case tuple([Value])
        case list([Value])
        /// Insertion-ordered dict.
        case dict([(Value, Value)])
        /// `torch._utils._rebuild_tensor_v2` of storage `key` (contiguous, offset 0).
        case tensor(key: String, dtype: StoredDType, shape: [Int], requiresGrad: Bool)
    }

    private(set) var bytes: [UInt8] = [0x80, 2]   // PROTO 2

    private mutating func op(_ b: UInt8) { bytes.append(b) }
    private mutating func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { bytes.append(contentsOf: $0) } }

    private mutating func global(_ module: String, _ name: String) {
        op(0x63)   // GLOBAL
        bytes.append(contentsOf: Array((module + "\n" + name + "\n").utf8))
    }

    private static func storageClass(_ t: StoredDType) -> String {
        switch t {
        case .F32: return "FloatStorage"
        case .F16: return "HalfStorage"
        case .BF16: return "BFloat16Storage"
        case .F64: return "DoubleStorage"
        case .I64: return "LongStorage"
        case .I32: return "IntStorage"
        case .I16: return "ShortStorage"
        case .I8: return "CharStorage"
        case .U8: return "ByteStorage"
        case .BOOL: return "BoolStorage"
        }
    }

    mutating func write(_ v: Value) {
        switch v {
        case .none: op(0x4E)
        case let .bool(b): op(b ? 0x88 : 0x89)
        case let .int(i):
            if i >= 0 && i < 256 { op(0x4B); bytes.append(UInt8(i)) } else if i >= Int(Int32.min) && i <= Int(Int32.max) {
                op(0x4A); withUnsafeBytes(of: Int32(i).littleEndian) { bytes.append(contentsOf: $0) }
            } else { op(0x8A); bytes.append(8); withUnsafeBytes(of: Int64(i).littleEndian) { bytes.append(contentsOf: $0) } }
        case let .float(f):
            op(0x47); withUnsafeBytes(of: f.bitPattern.bigEndian) { bytes.append(contentsOf: $0) }
        case let .string(s):
            let u = Array(s.utf8); op(0x58); u32(u.count); bytes.append(contentsOf: u)
        case let .tuple(items):
            op(0x28); for i in items { write(i) }; op(0x74)   // MARK ... TUPLE
        case let .list(items):
            op(0x5D)                                           // EMPTY_LIST
            if !items.isEmpty { op(0x28); for i in items { write(i) }; op(0x65) }   // MARK ... APPENDS
        case let .dict(items):
            op(0x7D)                                           // EMPTY_DICT
            if !items.isEmpty {
                op(0x28); for (k, v) in items { write(k); write(v) }; op(0x75)   // MARK ... SETITEMS
            }
        case let .tensor(key, dtype, shape, requiresGrad):
            global("torch._utils", "_rebuild_tensor_v2")
            op(0x28)                                                              // MARK (args)
            op(0x28); write(.string("storage")); global("torch", Self.storageClass(dtype))
            write(.string(key)); write(.string("cpu")); write(.int(shape.reduce(1, *))); op(0x74)
            op(0x51)                                                              // BINPERSID
            write(.int(0))
            write(.tuple(shape.map { .int($0) }))
            write(.tuple(StoredTensor.rowMajor(shape).map { .int($0) }))
            write(.bool(requiresGrad))
            global("collections", "OrderedDict"); op(0x29); op(0x52)              // OrderedDict()
            op(0x74); op(0x52)                                                    // TUPLE, REDUCE
        }
    }

    mutating func finish() { op(0x2E) }   // STOP
}

import Foundation

/// A pickle reader (protocols 0 to 5) that builds data and never runs code. Globals are resolved
/// against an allow-list of the types PyTorch checkpoints use; any other global stops the load
/// with an error naming it, before anything else happens. Modules whose objects may be skipped
/// (training-framework state) become `.skipped` values.
struct Unpickler {
    /// Functions and classes that may appear, and what they build.
    static let allowed: Set<String> = Set([
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "collections.OrderedDict", "torch.Size", "torch.device",
        "torch.nn.modules.container.ParameterDict", "torch.nn.parameter.Parameter", "torch._tensor._rebuild_from_type_v2",
        "torch.Tensor", "torch.nn.parameter.Buffer", "_codecs.encode", "builtins.set", "builtins.frozenset",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "copyreg._reconstructor", "builtins.object",
        // Protocol 2 pickles spell builtins the Python 2 way.
        "__builtin__.set", "__builtin__.frozenset", "__builtin__.object",
    ]).union(storageTypes.keys)

    /// Legacy typed-storage classes used in persistent ids, and their element types.
    static let storageTypes: [String: StoredDType] = [
        "torch.FloatStorage": .F32, "torch.HalfStorage": .F16, "torch.BFloat16Storage": .BF16, "torch.DoubleStorage": .F64,
        "torch.LongStorage": .I64, "torch.IntStorage": .I32, "torch.ShortStorage": .I16, "torch.CharStorage": .I8,
        "torch.ByteStorage": .U8, "torch.BoolStorage": .BOOL,
    ]

    /// Training-framework classes stored next to the weights in `.ckpt` files, whose objects are
    /// replaced by `.skipped` (never constructed). Matched as exact (module, name) pairs, like the
    /// allow-list: CPython's `find_class` resolves a dotted name ("os.system") by attribute lookup
    /// from the module, so a module prefix such as "pathlib." would let `pathlib` + `os.system` through.
    static let skipped: Set<String> = Set([
        "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
        "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
        "pytorch_lightning.callbacks.lr_monitor.LearningRateMonitor",
        "pytorch_lightning.callbacks.progress.tqdm_progress.TQDMProgressBar",
        "pytorch_lightning.trainer.states.TrainerFn", "pytorch_lightning.trainer.states.TrainerStatus",
        "pytorch_lightning.trainer.states.RunningStage",
        "pytorch_lightning.utilities.parsing.AttributeDict", "pytorch_lightning.utilities.enums.LightningEnum",
        "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint", "lightning.pytorch.callbacks.early_stopping.EarlyStopping",
        "lightning.pytorch.callbacks.lr_monitor.LearningRateMonitor",
        "lightning.pytorch.trainer.states.TrainerFn", "lightning.pytorch.trainer.states.TrainerStatus",
        "lightning.pytorch.trainer.states.RunningStage", "lightning.fabric.utilities.data.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
        "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode", "omegaconf.nodes.IntegerNode",
        "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode", "omegaconf.nodes.EnumNode",
        "typing.Any", "typing.Dict", "typing.List", "typing.Tuple", "typing.Optional", "typing.Union",
        "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePath", "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
    ])

    /// Widest LONG1/LONG4 integer read.
    static let maximumLongBytes = 16

    let file: String
    let data: UnsafeRawBufferPointer
    /// Where containers are created (released with the load's result).
    let arena: PickleArena
    /// Resolves a persistent id (the container format's storage reference).
    let persistentLoad: (PickleValue) throws -> PickleValue
    /// Position after STOP, for formats with several pickles in a row.
    private(set) var position = 0

    init(file: String, data: UnsafeRawBufferPointer, start: Int = 0, arena: PickleArena,
         persistentLoad: @escaping (PickleValue) throws -> PickleValue) {
        self.file = file
        self.arena = arena
        self.data = data
        self.position = start
        self.persistentLoad = persistentLoad
    }

    /// The start of a field for messages (a hostile field may be megabytes long).
    static func excerpt(_ s: String) -> String { s.count > 40 ? String(s.prefix(40)) + "…" : s }

    private func corrupt(_ reason: String) -> FormatError { .corrupt(file: file, reason: "pickle: \(reason)") }

    private mutating func byte() throws -> UInt8 {
        guard position < data.count else { throw corrupt("unexpected end of data") }
        defer { position += 1 }
        return data[position]
    }

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - position else { throw corrupt("a \(n)-byte field runs past the end of the data") }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + n)])
    }

    private mutating func uint(_ n: Int) throws -> Int {
        let b = try take(n)
        var v: UInt64 = 0
        for i in stride(from: n - 1, through: 0, by: -1) { v = v << 8 | UInt64(b[i]) }
        guard v <= UInt64(Int.max) else { throw corrupt("length \(v) too large") }
        return Int(v)
    }

    private mutating func line() throws -> String {
        var end = position
        while end < data.count && data[end] != 0x0A { end += 1 }
        guard end < data.count else { throw corrupt("unterminated line") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: data[position..<end]), as: UTF8.self)
        position = end + 1
        return s
    }

    /// Two's-complement little-endian integer of n bytes (LONG1/LONG4).
    private mutating func long(_ n: Int) throws -> PickleValue {
        // PyTorch files hold no integer wider than the legacy magic number (10 bytes); a long of
        // megabytes would only cost time (and is how a hostile file stalls a load).
        guard n <= Self.maximumLongBytes else { throw corrupt("a \(n)-byte integer (at most \(Self.maximumLongBytes) bytes are read)") }
        guard n <= 8 else {
            // Wider integers are kept as text ("int 0x..."), e.g. the legacy format's magic number.
            let b = try take(n)
            let hex = b.reversed().map { String(format: "%02x", $0) }.joined().drop { $0 == "0" }
            return .skipped("int 0x" + hex)
        }
        let b = try take(n)
        if n == 0 { return .int(0) }
        var v: UInt64 = 0
        for i in stride(from: n - 1, through: 0, by: -1) { v = v << 8 | UInt64(b[i]) }
        if n < 8 && b[n - 1] & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }
        return .int(Int(Int64(bitPattern: v)))
    }

    /// Reads one pickle (up to STOP) and returns its value.
    mutating func load() throws -> PickleValue {
        var stack: [PickleValue] = []
        var marks: [Int] = []
        var memo: [Int: PickleValue] = [:]
        func pop() throws -> PickleValue {
            guard let v = stack.popLast() else { throw corrupt("stack underflow") }
            return v
        }
        func popMark() throws -> [PickleValue] {
            guard let m = marks.popLast(), m <= stack.count else { throw corrupt("missing MARK") }
            defer { stack.removeSubrange(m...) }
            return Array(stack[m...])
        }
        func top() throws -> PickleValue {
            guard let v = stack.last else { throw corrupt("stack underflow") }
            return v
        }
        func setItems(_ target: PickleValue, _ kv: [PickleValue]) throws {
            guard kv.count % 2 == 0 else { throw corrupt("odd number of dict items") }
            switch target {
            case let .dict(d): for i in stride(from: 0, to: kv.count, by: 2) { d.items.append((kv[i], kv[i + 1])) }
            case .skipped: break
            default: throw corrupt("SETITEM on \(target)")
            }
        }
        func append(_ target: PickleValue, _ values: [PickleValue]) throws {
            switch target {
            case let .list(l): l.items.append(contentsOf: values)
            case .skipped: break
            default: throw corrupt("APPEND on \(target)")
            }
        }
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try take(8)                                  // FRAME
            case 0x2E: return try pop()                                 // STOP
            case 0x28: marks.append(stack.count)                        // MARK
            case 0x7D: stack.append(.dict(arena.dict()))                // EMPTY_DICT
            case 0x5D: stack.append(.list(arena.list()))                // EMPTY_LIST
            case 0x29: stack.append(arena.tuple([]))                         // EMPTY_TUPLE
            case 0x8F: stack.append(.list(arena.list()))                // EMPTY_SET
            case 0x4E: stack.append(.none)                              // NONE
            case 0x88: stack.append(.bool(true))                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                       // NEWFALSE
            case 0x4B: stack.append(.int(Int(try byte())))              // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                  // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x8A: stack.append(try long(Int(try byte())))          // LONG1
            case 0x8B: stack.append(try long(try uint(4)))              // LONG4
            case 0x47:                                                  // BINFLOAT (big-endian)
                let b = try take(8)
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x58, 0x8C, 0x8D:                                      // BINUNICODE, SHORT_, 8
                let n = try uint(op == 0x58 ? 4 : (op == 0x8C ? 1 : 8))
                stack.append(.string(String(decoding: try take(n), as: UTF8.self)))
            case 0x42, 0x43, 0x8E, 0x96, 0x54, 0x55:                    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8, BINSTRING, SHORT_BINSTRING
                let width: Int
                switch op { case 0x43, 0x55: width = 1; case 0x42, 0x54: width = 4; default: width = 8 }
                let b = Array(try take(try uint(width)))
                stack.append(op == 0x54 || op == 0x55 ? .string(String(decoding: b, as: UTF8.self)) : .bytes(b))
            case 0x49:                                                  // INT (text)
                let s = try line()
                if s == "01" { stack.append(.bool(true)) } else if s == "00" { stack.append(.bool(false)) } else {
                    guard let v = Int(s) else { throw corrupt("bad INT \(Self.excerpt(s))") }
                    stack.append(.int(v))
                }
            case 0x4C:                                                  // LONG (text)
                let s = try line()
                guard let v = Int(s.hasSuffix("L") ? String(s.dropLast()) : s) else { throw corrupt("bad LONG \(Self.excerpt(s))") }
                stack.append(.int(v))
            case 0x46:                                                  // FLOAT (text)
                let s = try line()
                guard let v = Double(s) else { throw corrupt("bad FLOAT \(Self.excerpt(s))") }
                stack.append(.float(v))
            case 0x53:                                                  // STRING (quoted text)
                var s = try line()
                if s.count >= 2, let f = s.first, f == "'" || f == "\"", s.last == f { s = String(s.dropFirst().dropLast()) }
                stack.append(.string(s))
            case 0x56: stack.append(.string(try line()))                // UNICODE
            case 0x74: stack.append(arena.tuple(try popMark()))              // TUPLE
            case 0x85: stack.append(arena.tuple([try pop()]))                // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(arena.tuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(arena.tuple([a, b, c]))
            case 0x6C: let l = arena.list(); l.items = try popMark(); stack.append(.list(l))   // LIST
            case 0x61: let v = try pop(); try append(try top(), [v])    // APPEND
            case 0x65: let vs = try popMark(); try append(try top(), vs) // APPENDS
            case 0x90: let vs = try popMark(); try append(try top(), vs) // ADDITEMS
            case 0x91: let l = arena.list(); l.items = try popMark(); stack.append(.list(l))   // FROZENSET
            case 0x64: let d = arena.dict(); try setItems(.dict(d), try popMark()); stack.append(.dict(d)) // DICT
            case 0x73: let v = try pop(), k = try pop(); try setItems(try top(), [k, v])         // SETITEM
            case 0x75: let kv = try popMark(); try setItems(try top(), kv)                       // SETITEMS
            case 0x71: memo[Int(try byte())] = try top()                // BINPUT
            case 0x72: memo[try uint(4)] = try top()                    // LONG_BINPUT
            case 0x70: guard let i = Int(try line()) else { throw corrupt("bad PUT") }; memo[i] = try top()
            case 0x94: memo[memo.count] = try top()                     // MEMOIZE
            case 0x68, 0x6A, 0x67:                                      // BINGET, LONG_BINGET, GET
                let i = op == 0x68 ? Int(try byte()) : (op == 0x6A ? try uint(4) : (Int(try line()) ?? -1))
                guard let v = memo[i] else { throw corrupt("memo key \(i) missing") }
                stack.append(v)
            case 0x63:                                                  // GLOBAL
                let module = try line(), name = try line()
                stack.append(try resolve(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case let .string(name) = try pop(), case let .string(module) = try pop() else { throw corrupt("STACK_GLOBAL needs strings") }
                stack.append(try resolve(module, name))
            case 0x52:                                                  // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args))
            case 0x81:                                                  // NEWOBJ
                let args = try pop(), cls = try pop()
                stack.append(try newObject(cls, args))
            case 0x92:                                                  // NEWOBJ_EX
                _ = try pop(); let args = try pop(), cls = try pop()
                stack.append(try newObject(cls, args))
            case 0x62:                                                  // BUILD
                let state = try pop()
                if case let .object(o) = try top() { o.state = state }
            case 0x51: stack.append(try persistentLoad(try pop()))      // BINPERSID
            case 0x50: stack.append(try persistentLoad(.string(try line())))   // PERSID
            case 0x30: _ = try pop()                                    // POP
            case 0x31: _ = try popMark()                                // POP_MARK
            case 0x32: stack.append(try top())                          // DUP
            default:
                throw corrupt(String(format: "unsupported opcode 0x%02x at byte %d", op, position - 1))
            }
            if stack.count > 10_000_000 || memo.count > 10_000_000 { throw corrupt("too many objects") }
        }
    }

    /// Checks a global against the allow-list and the skipped classes as an exact (module, name)
    /// pair: the name must be one identifier (no dots, which CPython would follow as attribute
    /// lookups) and the module a plain dotted module path.
    private func resolve(_ module: String, _ name: String) throws -> PickleValue {
        let full = module + "." + name
        if Self.isIdentifier(name), module.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(Self.isIdentifier) {
            if Self.allowed.contains(full) { return .global(full) }
            if Self.skipped.contains(full) { return .skipped(full) }
        }
        throw FormatError.unsafeGlobal(file: file, global: full)
    }

    /// A Python identifier as the allow-list spells them: ASCII letters, digits and "_", not starting with a digit.
    static func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
        guard let first = s.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    private func ints(_ v: PickleValue) throws -> [Int] {
        switch v {
        case let .tuple(items): return try items.map { guard case let .int(i) = $0 else { throw corrupt("expected integers, got \($0)") }; return i }
        case let .list(l): return try ints(arena.tuple(l.items))
        default: throw corrupt("expected a tuple of integers, got \(v)")
        }
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case let .global(name) = callable else {
            if case .skipped = callable { return callable }
            throw corrupt("REDUCE on \(callable)")
        }
        guard case let .tuple(a) = args else { throw corrupt("\(name) called with \(args)") }
        switch name {
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard a.count >= 4, case let .storage(s) = a[0], case let .int(offset) = a[1] else { throw corrupt("bad \(name) arguments") }
            return .tensor(TensorRecord(storage: s, offset: offset, shape: try ints(a[2]), strides: try ints(a[3])))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2":
            // (data, requires_grad, hooks[, state]) / (func, type, args, state): the tensor is inside.
            if name == "torch._tensor._rebuild_from_type_v2", a.count >= 3 { return try reduce(a[0], a[2]) }
            guard let first = a.first else { throw corrupt("bad \(name) arguments") }
            return first
        case "collections.OrderedDict":
            let d = arena.dict()
            if case let .list(l)? = a.first { for item in l.items { if case let .tuple(kv) = item, kv.count == 2 { d.items.append((kv[0], kv[1])) } } }
            return .dict(d)
        case "torch.Size": return a.first ?? arena.tuple([])
        case "torch.device": return a.first ?? .none
        case "_codecs.encode":
            guard case let .string(s)? = a.first else { throw corrupt("bad _codecs.encode arguments") }
            return .bytes(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })   // latin-1
        case "builtins.set", "builtins.frozenset", "__builtin__.set", "__builtin__.frozenset":
            let l = arena.list()
            if case let .list(src)? = a.first { l.items = src.items }
            return .list(l)
        case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar":
            guard a.count == 2, case let .object(dtype) = a[0], case let .bytes(b) = a[1] else { throw corrupt("bad numpy scalar") }
            return Self.numpyScalar(dtype.type, b)
        case "numpy.dtype":
            guard case let .string(code)? = a.first else { throw corrupt("bad numpy.dtype") }
            return .object(arena.object(code))
        case "copyreg._reconstructor":
            guard a.count >= 2 else { throw corrupt("bad copyreg._reconstructor") }
            return try newObject(a[0], arena.tuple([]))
        default:
            throw corrupt("\(name) cannot be called")
        }
    }

    /// numpy scalars: the dtype code ("f8", "i8", ...) and the value's little-endian bytes.
    static func numpyScalar(_ code: String, _ b: [UInt8]) -> PickleValue {
        func load<T: FixedWidthInteger>(_ type: T.Type) -> T? {
            guard b.count == MemoryLayout<T>.size else { return nil }
            return b.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
        }
        switch code {
        case "f8": return load(UInt64.self).map { .float(Double(bitPattern: $0)) } ?? .none
        case "f4": return load(UInt32.self).map { .float(Double(Float(bitPattern: $0))) } ?? .none
        case "i8": return load(Int64.self).map { .int(Int($0)) } ?? .none
        case "i4": return load(Int32.self).map { .int(Int($0)) } ?? .none
        case "b1", "?": return .bool(b.first == 1)
        default: return .skipped("numpy scalar \(code)")
        }
    }

    private func newObject(_ cls: PickleValue, _ args: PickleValue) throws -> PickleValue {
        switch cls {
        case let .global(name): return .object(arena.object(name))
        case .skipped: return cls
        default: throw corrupt("NEWOBJ on \(cls)")
        }
    }
}

import Engine

/// Element types found in model files (safetensors names).
public enum StoredDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    public var size: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }

    /// The engine's storage type for floating-point data.
    public var engineType: DType? {
        switch self {
        case .F32: return .f32
        case .F16: return .f16
        case .BF16: return .bf16
        default: return nil
        }
    }
}

/// A tensor inside a file, not yet read: its type, shape, element strides and where its storage's
/// bytes lie. `materialize()` copies it into an engine `Tensor`; `contiguousBytes()` gives the raw
/// little-endian bytes in row-major order.
public struct StoredTensor: @unchecked Sendable {
    public let dtype: StoredDType
    public let shape: [Int]
    /// Element strides (row-major for safetensors; any for PyTorch tensors).
    public let strides: [Int]
    /// Element offset of the first element within the storage.
    public let elementOffset: Int
    /// The file holding the storage and the storage's byte range in it.
    let file: MappedFile
    let storageOffset: Int
    let storageBytes: Int

    /// Number of elements (Int.max if the shape's product overflows; readers refuse such shapes).
    public var count: Int { Shape.count(shape) ?? Int.max }
    public var isContiguous: Bool { count <= 1 || strides == Self.rowMajor(shape) }

    /// Row-major strides. Wrapping arithmetic: for shapes whose product overflows the result is
    /// only compared against, never used.
    static func rowMajor(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count), acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc = acc &* max(shape[i], 1) }
        return s
    }

    /// The element count of a shape read from a file, or nil when it is unusable: a negative
    /// dimension, or a product (of the dimensions, and of the dimensions with zeros taken as ones,
    /// which row-major strides use) beyond Int.max / 8, since counts are multiplied by element sizes.
    static func checkedCount(_ shape: [Int]) -> Int? {
        guard shape.allSatisfy({ $0 >= 0 }), let strideSpan = Shape.count(shape.map { max($0, 1) }), strideSpan <= Int.max / 8 else {
            return nil
        }
        return Shape.count(shape)
    }

    /// Most bytes a tensor may expand to beyond its storage when materialised: zero strides let a
    /// few stored elements stand for billions, so a tensor that repeats elements (more elements
    /// than its storage holds) is copied out only up to this size.
    public static let maximumExpandedBytes = 256 << 20

    /// Elements the storage holds.
    var storageCount: Int { storageBytes / dtype.size }

    /// Throws unless copying the tensor out (`elementSize` bytes an element) stays bounded: by the
    /// storage's own size, or by `maximumExpandedBytes` for tensors that repeat elements.
    func checkExpansion(elementSize: Int) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow, count <= storageCount || bytes <= Self.maximumExpandedBytes else {
            throw FormatError.unsupported(file: file.path, reason: """
                a tensor \(dtype.rawValue)\(shape) repeats the \(storageCount) elements of its storage (zero strides) into \
                \(overflow ? "more than \(Int.max)" : String(bytes)) bytes; at most \(Self.maximumExpandedBytes) are expanded
                """)
        }
    }

    /// Checks that every element the strides can reach lies inside the storage.
    func validate(_ name: String) throws {
        guard shape.allSatisfy({ $0 >= 0 }), strides.count == shape.count, elementOffset >= 0 else {
            throw FormatError.corrupt(file: file.path, reason: "tensor \(name) has an invalid shape \(shape) or strides \(strides)")
        }
        guard let count = Self.checkedCount(shape) else {
            throw FormatError.corrupt(file: file.path, reason: "tensor \(name) has shape \(shape), whose element count overflows")
        }
        if count == 0 { return }
        var last = elementOffset
        for (d, s) in zip(shape, strides) {
            guard s >= 0 else { throw FormatError.unsupported(file: file.path, reason: "tensor \(name) has negative strides") }
            let (m, o1) = (d - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(m)
            guard !o1, !o2 else { throw FormatError.corrupt(file: file.path, reason: "tensor \(name): strides overflow") }
            last = sum
        }
        let (end, o) = (last + 1).multipliedReportingOverflow(by: dtype.size)
        guard !o, end <= storageBytes else {
            throw FormatError.corrupt(file: file.path, reason: "tensor \(name) \(dtype.rawValue)\(shape) needs \(end) bytes of a storage of \(storageBytes)")
        }
    }

    /// Calls `body` with each contiguous run of bytes in row-major order.
    private func forEachRun(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let base = try file.bytes(storageOffset, storageBytes, "tensor storage")
        let esize = dtype.size
        if isContiguous {
            try body(UnsafeRawBufferPointer(rebasing: base[(elementOffset * esize)..<((elementOffset + count) * esize)]))
            return
        }
        // Walk the index space; the innermost dimension is copied element by element when strided.
        let rank = shape.count
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        let rows = count / max(inner, 1)
        var row = [UInt8](repeating: 0, count: inner * esize)
        for _ in 0..<rows {
            var off = elementOffset
            for d in 0..<(rank - 1) { off += index[d] * strides[d] }
            if innerStride == 1 {
                try body(UnsafeRawBufferPointer(rebasing: base[(off * esize)..<((off + inner) * esize)]))
            } else {
                row.withUnsafeMutableBytes { dst in
                    for j in 0..<inner {
                        let src = (off + j * innerStride) * esize
                        dst.baseAddress!.advanced(by: j * esize).copyMemory(from: base.baseAddress!.advanced(by: src), byteCount: esize)
                    }
                }
                try row.withUnsafeBytes { try body($0) }
            }
            var d = rank - 2
            while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
        }
    }

    /// The elements as little-endian bytes in row-major order.
    public func contiguousBytes() throws -> [UInt8] {
        try checkExpansion(elementSize: dtype.size)
        var out: [UInt8] = []
        out.reserveCapacity(count * dtype.size)
        try forEachRun { out.append(contentsOf: $0) }
        return out
    }

    /// Copies the tensor into engine memory: F32/F16/BF16 keep their type (f16/bf16 as storage),
    /// other types are converted to f32 values. The file pages read are released afterwards.
    public func materialize() throws -> Tensor {
        let target = dtype.engineType ?? .f32
        try checkExpansion(elementSize: target.size)
        let t = try Tensor(uninitialized: shape, dtype: target, op: "load")
        if dtype.engineType != nil {
            var dst = t.storage.raw
            try forEachRun { run in
                dst.copyMemory(from: run.baseAddress!, byteCount: run.count)
                dst += run.count
            }
        } else {
            let out = t.storage.floats
            var i = 0
            try forEachRun { run in
                for j in stride(from: 0, to: run.count, by: dtype.size) {
                    out[i] = Self.convert(run.baseAddress! + j, dtype)
                    i += 1
                }
            }
        }
        file.release(storageOffset, storageBytes)
        return t
    }

    /// The tensor used in place in the file's mapping, without a copy: nil unless it is a
    /// contiguous F32/F16/BF16 tensor aligned to its element size. Its pages become resident as
    /// kernels read them, and `releasePages()` drops them again (they are re-read on the next use).
    public func mapped() throws -> Tensor? {
        guard let type = dtype.engineType, isContiguous, count > 0 else { return nil }
        let bytes = try file.bytes(storageOffset + elementOffset * dtype.size, count * dtype.size, "tensor storage")
        guard let p = bytes.baseAddress, Int(bitPattern: p) % dtype.size == 0 else { return nil }
        return Tensor(borrowing: p, shape: shape, dtype: type, owner: file)
    }

    /// Drops the tensor's pages from resident memory (see `MappedFile.release`).
    public func releasePages() { file.release(storageOffset, storageBytes) }

    /// One element of a non-float type as Float.
    static func convert(_ p: UnsafeRawPointer, _ dtype: StoredDType) -> Float {
        switch dtype {
        case .F64: return Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))))
        case .I64: return Float(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
        case .I32: return Float(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
        case .I16: return Float(Int16(littleEndian: p.loadUnaligned(as: Int16.self)))
        case .I8: return Float(p.load(as: Int8.self))
        case .U8, .BOOL: return Float(p.load(as: UInt8.self))
        case .F32: return Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        case .F16, .BF16: return .nan // handled by materialize
        }
    }

    /// Names of non-finite float elements, for warnings: (count of NaN, count of infinities).
    /// Read in place, nothing is copied out. A tensor that repeats elements through zero strides
    /// (more elements than its storage holds) is judged by the storage elements it reaches, each
    /// counted once, so a file cannot make this walk billions of elements.
    public func nonFiniteCounts() throws -> (nan: Int, inf: Int) {
        guard dtype.engineType != nil || dtype == .F64, count > 0 else { return (0, 0) }
        var nan = 0, inf = 0
        let esize = dtype.size
        // The exponent all ones: infinity when the fraction is zero, NaN otherwise.
        func bits<T: FixedWidthInteger & UnsignedInteger>(_ run: UnsafeRawBufferPointer, _: T.Type, exponent: T, fraction: T) {
            let size = MemoryLayout<T>.size
            for j in 0..<(run.count / size) {
                let v = T(littleEndian: run.loadUnaligned(fromByteOffset: j * size, as: T.self))
                if v & exponent == exponent { if v & fraction == 0 { inf += 1 } else { nan += 1 } }
            }
        }
        func scan(_ run: UnsafeRawBufferPointer) {
            switch dtype {
            case .F16: bits(run, UInt16.self, exponent: 0x7C00, fraction: 0x03FF)
            case .BF16: bits(run, UInt16.self, exponent: 0x7F80, fraction: 0x007F)
            case .F32: bits(run, UInt32.self, exponent: 0x7F80_0000, fraction: 0x007F_FFFF)
            default: bits(run, UInt64.self, exponent: 0x7FF0_0000_0000_0000, fraction: 0x000F_FFFF_FFFF_FFFF)
            }
        }
        if count <= storageCount {
            try forEachRun { scan($0) }
        } else {
            // The span of storage elements the strides reach (validated to lie inside the storage).
            var last = elementOffset
            for (d, st) in zip(shape, strides) { last += (d - 1) * st }
            let base = try file.bytes(storageOffset, storageBytes, "tensor storage")
            scan(UnsafeRawBufferPointer(rebasing: base[(elementOffset * esize)..<((last + 1) * esize)]))
        }
        file.release(storageOffset, storageBytes)
        return (nan, inf)
    }
}

extension StoredTensor {
    /// The same data with another shape (contiguous tensors only; nil otherwise or on a count mismatch).
    public func reshaped(_ newShape: [Int]) -> StoredTensor? {
        guard isContiguous, let n = Shape.count(newShape), n == count else { return nil }
        return StoredTensor(dtype: dtype, shape: newShape, strides: Self.rowMajor(newShape), elementOffset: elementOffset,
                            file: file, storageOffset: storageOffset, storageBytes: storageBytes)
    }

    /// The transpose of a matrix (a view; nil unless rank 2).
    public func transposed() -> StoredTensor? {
        guard shape.count == 2 else { return nil }
        return StoredTensor(dtype: dtype, shape: [shape[1], shape[0]], strides: [strides[1], strides[0]], elementOffset: elementOffset,
                            file: file, storageOffset: storageOffset, storageBytes: storageBytes)
    }

    /// Rows [start, start + rows) along the first dimension (a view).
    public func rows(_ start: Int, _ rows: Int) -> StoredTensor? {
        guard !shape.isEmpty, start >= 0, rows >= 0, start <= shape[0], rows <= shape[0] - start else { return nil }
        var s = shape
        s[0] = rows
        return StoredTensor(dtype: dtype, shape: s, strides: strides, elementOffset: elementOffset + start * strides[0],
                            file: file, storageOffset: storageOffset, storageBytes: storageBytes)
    }
}

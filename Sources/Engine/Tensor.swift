/// An n-dimensional array: a shape, element strides and an offset into a shared `TensorStorage`.
/// Reshape (of contiguous data), permute/transpose, slice and expand make views without copying.
/// Tensors that take part in autograd record the operation that made them (see `Autograd.swift`).
public final class Tensor {
    public let shape: [Int]
    /// Element strides per dimension (0 on expanded dimensions).
    public let strides: [Int]
    /// Element offset of the first element in `storage`.
    public let offset: Int
    public let storage: TensorStorage

    /// Whether gradients with respect to this tensor are wanted (leaves) or flow through it.
    public var requiresGrad: Bool
    /// The accumulated gradient after `backward()` (leaves with `requiresGrad` only).
    public internal(set) var grad: Tensor?
    /// The operation that produced this tensor, when it is part of a graph.
    var node: GradNode?

    init(storage: TensorStorage, shape: [Int], strides: [Int], offset: Int = 0) {
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.requiresGrad = false
    }

    /// A new contiguous uninitialised tensor.
    public convenience init(uninitialized shape: [Int], dtype: DType = .f32, op: String = "alloc") throws {
        guard let n = Shape.count(shape) else {
            throw EngineError.outOfMemory(op: op, shape: shape, bytes: Int.max)
        }
        let s = try TensorStorage(dtype: dtype, count: n, op: op, shape: shape)
        self.init(storage: s, shape: shape, strides: Shape.contiguousStrides(shape))
    }

    /// A contiguous tensor over read-only memory that `owner` keeps alive (see
    /// `TensorStorage.init(borrowing:dtype:count:owner:)`): frozen weights used in place.
    public convenience init(borrowing memory: UnsafeRawPointer, shape: [Int], dtype: DType, owner: AnyObject) {
        let s = TensorStorage(borrowing: memory, dtype: dtype, count: shape.reduce(1, *), owner: owner)
        self.init(storage: s, shape: shape, strides: Shape.contiguousStrides(shape))
    }

    /// A contiguous f32 tensor holding `data` (row-major).
    public convenience init(shape: [Int], data: [Float], requiresGrad: Bool = false) throws {
        guard Shape.count(shape) == data.count else {
            throw EngineError.invalidArgument(op: "Tensor(shape:data:)",
                                              message: "shape \(Shape.describe(shape)) holds \(Shape.count(shape) ?? -1) elements, data has \(data.count)")
        }
        try self.init(uninitialized: shape)
        data.withUnsafeBufferPointer { src in
            if let b = src.baseAddress { storage.floats.update(from: b, count: data.count) }
        }
        self.requiresGrad = requiresGrad
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int], dtype: DType = .f32) throws -> Tensor {
        let t = try Tensor(uninitialized: shape, dtype: dtype, op: "zeros")
        t.storage.raw.initializeMemory(as: UInt8.self, repeating: 0, count: t.count * dtype.size)
        return t
    }

    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Float) throws -> Tensor {
        let t = try Tensor(uninitialized: shape, op: "full")
        t.storage.floats.initialize(repeating: value, count: t.count)
        return t
    }

    public var dtype: DType { storage.dtype }
    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    /// True when elements are laid out row-major without gaps.
    public var isContiguous: Bool {
        var expected = 1
        for i in stride(from: rank - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// Pointer to the first element (f32 tensors).
    var floatPointer: UnsafeMutablePointer<Float> { storage.floats + offset }
    /// Pointer to the first element, of any element type (for kernels that take `DType.kernelCode`).
    var elements: UnsafeRawPointer { UnsafeRawPointer(storage.raw + offset * dtype.size) }

    /// The elements in row-major order (converted to Float).
    public func toArray() throws -> [Float] {
        let c = try contiguous().to(.f32)
        let values = Array(UnsafeBufferPointer(start: c.floatPointer, count: c.count))
        try c.storage.checkReadBack()
        return values
    }

    /// Normalises a possibly negative dimension index.
    func axis(_ d: Int, op: String) throws -> Int {
        let a = d < 0 ? d + rank : d
        guard a >= 0, a < max(rank, 1) else {
            throw EngineError.invalidArgument(op: op, message: "dimension \(d) out of range for shape \(Shape.describe(shape))")
        }
        return a
    }

    /// Throws unless the tensor holds f32 (the compute type).
    func requireF32(_ op: String) throws {
        if dtype != .f32 { throw EngineError.unsupportedDType(op: op, dtype: dtype) }
    }

    /// Throws unless the tensor can be the weight operand of a matrix product or convolution:
    /// f32, or a frozen (no gradient) contiguous 16-bit tensor, which the backend widens to f32
    /// inside the operation, so weights can be held in half the memory.
    func requireWeightDType(_ op: String) throws {
        if dtype == .f32 { return }
        guard !requiresGrad else {
            throw EngineError.invalidArgument(op: op, message: "a \(dtype.rawValue) weight cannot take a gradient (trainable weights are f32)")
        }
        guard dtype == .f16 || dtype == .bf16 else { throw EngineError.unsupportedDType(op: op, dtype: dtype) }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(Shape.describe(shape)), \(dtype.rawValue))" }
}

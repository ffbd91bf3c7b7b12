/// Errors raised by engine operations. Each names the operation and the shapes involved so that a
/// user (or the next engineer) can see what was asked for.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, shapes: [[Int]], reason: String)
    case unsupportedDType(op: String, dtype: DType)
    case outOfMemory(op: String, shape: [Int], bytes: Int)
    case invalidArgument(op: String, message: String)
    case backendFailure(op: String, message: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, shapes, reason):
            return "\(op): shape mismatch \(shapes.map(Shape.describe).joined(separator: " vs ")): \(reason)"
        case let .unsupportedDType(op, dtype):
            return "\(op): unsupported dtype \(dtype.rawValue) (compute is f32; convert with .to(.f32))"
        case let .outOfMemory(op, shape, bytes):
            return "\(op): cannot allocate \(bytes) bytes for a tensor of shape \(Shape.describe(shape))"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .backendFailure(op, message):
            return "\(op): backend failure: \(message)"
        }
    }
}

/// Helpers for shapes given as `[Int]`.
public enum Shape {
    /// "[2, 3, 4]"
    public static func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// Number of elements, or nil on overflow or a negative dimension.
    public static func count(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = m
        }
        return n
    }

    /// Row-major (contiguous) element strides.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = s; s *= max(shape[i], 1) }
        return strides
    }

    /// The broadcast shape of two shapes (numpy rules), or nil when they do not broadcast.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }
}

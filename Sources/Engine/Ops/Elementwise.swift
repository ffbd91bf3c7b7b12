/// Element-wise operations with broadcasting, activations and scalar arithmetic.
extension Tensor {
    /// Applies a unary function; the gradient comes from the backend's `unaryBackward`.
    public func apply(_ op: UnaryOp) throws -> Tensor {
        try requireF32("\(op)")
        let x = try contiguous()
        let y = try backend.unary(op, x)
        let keepY = (op == .exp || op == .sqrt)
        return y.recording("\(op)", inputs: [x]) { [weak y] g in
            [try Engine.backend.unaryBackward(op, x: x, y: keepY ? y : nil, dy: g.contiguous())]
        }
    }

    public func gelu() throws -> Tensor { try apply(.gelu) }
    public func geluTanh() throws -> Tensor { try apply(.geluTanh) }
    /// x * sigmoid(1.702 x) (OpenAI CLIP).
    public func quickGelu() throws -> Tensor { try apply(.quickGelu) }
    public func silu() throws -> Tensor { try apply(.silu) }
    public func exp() throws -> Tensor { try apply(.exp) }
    public func log() throws -> Tensor { try apply(.log) }
    public func sqrt() throws -> Tensor { try apply(.sqrt) }
    public func clamped(min lo: Float, max hi: Float) throws -> Tensor { try apply(.clamp(min: lo, max: hi)) }

    /// x * mul + add (scalars).
    public func affine(mul: Float, add: Float) throws -> Tensor {
        try requireF32("affine")
        let x = try contiguous()
        return try backend.affine(x, mul: mul, add: add).recording("affine", inputs: [x]) { g in
            [try Engine.backend.affine(g.contiguous(), mul: mul, add: 0)]
        }
    }

    /// Broadcasting binary operation.
    public func binary(_ op: BinaryOp, _ other: Tensor) throws -> Tensor {
        try requireF32("\(op)"); try other.requireF32("\(op)")
        guard let shape = Shape.broadcast(self.shape, other.shape) else {
            throw EngineError.shapeMismatch(op: "\(op)", shapes: [self.shape, other.shape], reason: "shapes do not broadcast")
        }
        let a = try withNoGrad { try self.expanded(to: shape) }
        let b = try withNoGrad { try other.expanded(to: shape) }
        let out = try backend.binary(op, a, b, shape: shape)
        let lhs = self, rhs = other
        return out.recording("\(op)", inputs: [lhs, rhs]) { g in
            switch op {
            case .add: return [try g.sumToShape(lhs.shape), try g.sumToShape(rhs.shape)]
            case .sub: return [try g.sumToShape(lhs.shape), try g.affine(mul: -1, add: 0).sumToShape(rhs.shape)]
            case .mul: return [try (g * rhs).sumToShape(lhs.shape), try (g * lhs).sumToShape(rhs.shape)]
            case .div:
                let ga = try (g / rhs).sumToShape(lhs.shape)
                let gb = try ((g * lhs) / (rhs * rhs)).affine(mul: -1, add: 0).sumToShape(rhs.shape)
                return [ga, gb]
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.add, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.sub, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.mul, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.div, b) }
    public static func + (a: Tensor, s: Float) throws -> Tensor { try a.affine(mul: 1, add: s) }
    public static func - (a: Tensor, s: Float) throws -> Tensor { try a.affine(mul: 1, add: -s) }
    public static func * (a: Tensor, s: Float) throws -> Tensor { try a.affine(mul: s, add: 0) }
    public static func * (s: Float, a: Tensor) throws -> Tensor { try a.affine(mul: s, add: 0) }
}

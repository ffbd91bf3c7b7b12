import Engine
import Formats

/// One layer's change in a LoRA-family network file, in the forms A1111's built-in Lora
/// extension reads (`network_lora.py`, `network_hada.py`, `network_lokr.py`, `network_full.py`),
/// and the weight difference it makes (`calc_updown`): `updown * (alpha / dim)`, A1111's scale,
/// or `updown` where the file gives no alpha or no rank.
public enum LoRAModule: Sendable {
    /// LoRA and LoCon (kohya), PEFT's `lora_A`/`lora_B`: `up @ down`, a kxk `down` for convolutions.
    case lora(up: StoredTensor, down: StoredTensor, alpha: Float?)
    /// LyCORIS LoHa: `(w1a @ w1b) * (w2a @ w2b)`.
    case loha(w1a: StoredTensor, w1b: StoredTensor, w2a: StoredTensor, w2b: StoredTensor, alpha: Float?)
    /// LyCORIS LoKr: `kron(w1, w2)`, each factor whole or as a low-rank product.
    case lokr(w1: Factor, w2: Factor, alpha: Float?)
    /// A whole weight difference (`diff`).
    case full(diff: StoredTensor)

    /// A LoKr factor: a matrix, or the product of two.
    public enum Factor: Sendable {
        case whole(StoredTensor)
        case product(StoredTensor, StoredTensor)

        var rank: Int? { if case let .product(_, b) = self { return b.shape[0] }; return nil }

        func matrix() throws -> Tensor {
            switch self {
            case let .whole(w): return try LoRAModule.flat(w)
            case let .product(a, b): return try LoRAModule.flat(a).matmul(LoRAModule.flat(b))
            }
        }
    }

    /// A1111's `dim`, the rank the alpha is divided by.
    var rank: Int? {
        switch self {
        case let .lora(_, down, _): return down.shape[0]
        case let .loha(_, w1b, _, _, _): return w1b.shape[0]
        case let .lokr(w1, w2, _): return w1.rank ?? w2.rank
        case .full: return nil
        }
    }

    var alpha: Float? {
        switch self {
        case let .lora(_, _, a), let .loha(_, _, _, _, a), let .lokr(_, _, a): return a
        case .full: return nil
        }
    }

    /// A1111's `calc_scale`: alpha / dim when both are known, else 1 (computed in double, applied in float32 as torch does).
    public var scale: Float {
        guard let alpha, let rank, rank > 0 else { return 1 }
        return Float(Double(alpha) / Double(rank))
    }

    /// The weight difference for a weight of `shape`, before the scale and the multiplier:
    /// [out, everything else] products reshaped to the weight's shape (A1111's `finalize_updown`).
    /// A difference with fewer input channels than the weight (a LoRA made for the 4-channel model,
    /// on an inpainting model's 9-channel first convolution) is padded with zeros, as A1111 pads it.
    func updown(for shape: [Int], file: String, name: String) throws -> Tensor {
        let product: Tensor
        switch self {
        case let .lora(up, down, _):
            product = try Self.flat(up).matmul(Self.flat(down))
        case let .loha(w1a, w1b, w2a, w2b, _):
            product = try Self.flat(w1a).matmul(Self.flat(w1b)) * Self.flat(w2a).matmul(Self.flat(w2b))
        case let .lokr(w1, w2, _):
            product = try Self.kron(w1.matrix(), w2.matrix())
        case let .full(diff):
            product = try Self.flat(diff)
        }
        let count = shape.reduce(1, *)
        if product.count == count { return try product.contiguous().reshaped(shape) }
        // The inpainting model's first convolution: [out, 9, k, k] against a [out, 4, k, k] difference.
        if shape.count == 4, product.shape[0] == shape[0], product.count % (shape[0] * shape[2] * shape[3]) == 0 {
            let inputs = product.count / (shape[0] * shape[2] * shape[3])
            if inputs < shape[1] {
                let d = try product.contiguous().reshaped([shape[0], inputs, shape[2], shape[3]])
                let zeros = try Tensor.zeros([shape[0], shape[1] - inputs, shape[2], shape[3]])
                return try Tensor.concat([d, zeros], dim: 1)
            }
        }
        throw FormatError.unsupported(file: file, reason: "\(name) changes a weight of \(product.count) values, the model's has \(count) \(shape): made for another model")
    }

    /// A stored tensor as a float32 matrix [first dimension, the rest].
    static func flat(_ t: StoredTensor) throws -> Tensor {
        let m = try t.materialize().to(.f32)
        let rows = t.shape.first ?? 1
        return try m.contiguous().reshaped([rows, max(m.count / max(rows, 1), 1)])
    }

    /// The Kronecker product of two matrices [a, b] and [c, d]: [a c, b d].
    static func kron(_ x: Tensor, _ y: Tensor) throws -> Tensor {
        let (a, b, c, d) = (x.shape[0], x.shape[1], y.shape[0], y.shape[1])
        let xv = try x.toArray(), yv = try y.toArray()
        var out = [Float](repeating: 0, count: a * c * b * d)
        for i in 0..<a {
            for j in 0..<b {
                let s = xv[i * b + j]
                for k in 0..<c {
                    let row = (i * c + k) * (b * d) + j * d
                    for l in 0..<d { out[row + l] = s * yv[k * d + l] }
                }
            }
        }
        return try Tensor(shape: [a * c, b * d], data: out)
    }
}

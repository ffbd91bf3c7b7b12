import Engine
import Formats

/// Loads a component's weights by name, materialised as f32 tensors (frozen: no gradient).
public struct WeightLoader {
    let tensors: [String: StoredTensor]
    let prefix: String
    let file: String

    public init(_ weights: ModelWeights, component: String) {
        tensors = weights.tensors
        prefix = component + "."
        file = weights.path
    }

    /// The loader for a sub-module ("down_blocks.0").
    public func scoped(_ name: String) -> WeightLoader {
        WeightLoader(tensors: tensors, prefix: prefix + name + ".", file: file)
    }

    init(tensors: [String: StoredTensor], prefix: String, file: String) {
        self.tensors = tensors; self.prefix = prefix; self.file = file
    }

    public func callAsFunction(_ name: String) throws -> Tensor {
        guard let t = tensors[prefix + name] else {
            throw FormatError.unsupported(file: file, reason: "missing weight \(prefix + name)")
        }
        return try t.materialize().to(.f32)
    }

    public func has(_ name: String) -> Bool { tensors[prefix + name] != nil }
}

/// y = x W^T + b.
public struct Linear {
    public let weight: Tensor, bias: Tensor?
    public init(_ w: WeightLoader, _ name: String, bias: Bool = true) throws {
        weight = try w(name + ".weight")
        self.bias = bias ? try w(name + ".bias") : nil
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.linear(weight: weight, bias: bias) }
}

/// 2-D convolution with square kernel and symmetric padding.
public struct Conv2d {
    public let weight: Tensor, bias: Tensor?
    public let stride: Int, padding: Int
    public init(_ w: WeightLoader, _ name: String, stride: Int = 1, padding: Int? = nil) throws {
        weight = try w(name + ".weight")
        bias = w.has(name + ".bias") ? try w(name + ".bias") : nil
        self.stride = stride
        self.padding = padding ?? weight.shape[2] / 2
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

/// GroupNorm with affine parameters.
public struct GroupNorm {
    public let weight: Tensor, bias: Tensor, groups: Int, eps: Float
    public init(_ w: WeightLoader, _ name: String, groups: Int, eps: Float) throws {
        weight = try w(name + ".weight"); bias = try w(name + ".bias")
        self.groups = groups; self.eps = eps
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps) }
}

/// LayerNorm over the last dimension.
public struct LayerNorm {
    public let weight: Tensor, bias: Tensor, eps: Float
    public init(_ w: WeightLoader, _ name: String, eps: Float = 1e-5) throws {
        weight = try w(name + ".weight"); bias = try w(name + ".bias"); self.eps = eps
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.layerNorm(weight: weight, bias: bias, eps: eps) }
}

/// Multi-head attention with separate q/k/v projections and an output projection (diffusers
/// `Attention`, transformers `CLIPAttention`): x [B, L, C], context [B, S, Cc] -> [B, L, C].
public struct MultiHeadAttention {
    public let q: Linear, k: Linear, v: Linear, out: Linear
    public let heads: Int
    public init(q: Linear, k: Linear, v: Linear, out: Linear, heads: Int) {
        self.q = q; self.k = k; self.v = v; self.out = out; self.heads = heads
    }

    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, causal: Bool = false) throws -> Tensor {
        let ctx = context ?? x
        let b = x.shape[0], l = x.shape[1], s = ctx.shape[1]
        func split(_ t: Tensor, _ n: Int) throws -> Tensor {
            let c = t.shape[2]
            return try t.reshaped([b, n, heads, c / heads]).transposed(1, 2)          // [B, H, n, d]
        }
        let qh = try split(q(x), l), kh = try split(k(ctx), s), vh = try split(v(ctx), s)
        let o = try Tensor.scaledDotProductAttention(q: qh, k: kh, v: vh, causal: causal)   // [B, H, L, d]
        return try out(o.transposed(1, 2).reshaped([b, l, -1]))
    }
}

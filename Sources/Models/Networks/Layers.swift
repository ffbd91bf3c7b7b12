import Engine
import Formats

/// Loads a component's weights by name (frozen: no gradient). Everything is materialised as f32,
/// except, at `.half` and `.bf16` precision, the weight matrices of linear and convolution layers and the
/// embedding tables, which are used in place from the file's mapping where its layout allows
/// (recorded in `mapped`; the file must then stay unchanged while the model is loaded, as with
/// any memory-mapped model).
public struct WeightLoader {
    let tensors: [String: StoredTensor]
    let prefix: String
    let file: String
    public let precision: WeightPrecision
    /// Every tensor this component has read, by full name, and those it uses in place (shared
    /// by the scoped loaders, and by a rebuild of the component with other weights for some layers).
    public let loaded: LoadedWeights
    /// Weight matrices to use instead of the file's, by full name (a LoRA merge).
    let overlay: [String: Tensor]
    /// The weights this component uses in place.
    public var mapped: MappedWeights { loaded.mapped }

    /// The loader of `component` ("unet", "text_encoder", ...); with `reusing`, the tensors an
    /// earlier load of it read are taken again rather than read anew, and `overlay` replaces some.
    public init(_ weights: ModelWeights, component: String, precision: WeightPrecision = .full,
                reusing: LoadedWeights? = nil, overlay: [String: Tensor] = [:]) {
        self.init(tensors: weights.tensors, prefix: component + ".", file: weights.path, precision: precision,
                  loaded: reusing ?? LoadedWeights(), overlay: overlay)
    }

    /// The loader for a sub-module ("down_blocks.0").
    public func scoped(_ name: String) -> WeightLoader {
        WeightLoader(tensors: tensors, prefix: prefix + name + ".", file: file, precision: precision, loaded: loaded, overlay: overlay)
    }

    init(tensors: [String: StoredTensor], prefix: String, file: String, precision: WeightPrecision, loaded: LoadedWeights,
         overlay: [String: Tensor] = [:]) {
        self.tensors = tensors; self.prefix = prefix; self.file = file; self.precision = precision; self.loaded = loaded
        self.overlay = overlay
    }

    /// The stored tensor used in place, recorded in `mapped`; nil when its layout does not allow it.
    private func inPlace(_ t: StoredTensor) throws -> Tensor? {
        guard let m = try t.mapped() else { return nil }
        mapped.add(t)
        return m
    }

    /// An embedding table (rows gathered by id): at 16-bit precisions used in place when the file
    /// allows, at its stored type (16-bit rows are widened as they are gathered, exactly), so only
    /// the rows read become resident; otherwise materialised as f32.
    public func table(_ name: String) throws -> Tensor {
        try loaded.tensor(prefix + name) {
            let t = try stored(name)
            if precision.sixteenBitWeights, let m = try inPlace(t) { return m }
            return try t.materialize().to(.f32)
        }
    }

    /// The named tensor as f32 (biases, norms: small tensors, so each is checked for NaN and
    /// infinity as it is read; a broken one would turn every image into NaN pixels).
    public func callAsFunction(_ name: String) throws -> Tensor {
        try loaded.tensor(prefix + name) { try small(name) }
    }

    private func small(_ name: String) throws -> Tensor {
        let s = try stored(name)
        let bad = try s.nonFiniteCounts()
        guard bad.nan == 0, bad.inf == 0 else {
            throw FormatError.corrupt(file: file, reason: "weight \(prefix + name) has \(bad.nan) NaN and \(bad.inf) infinite values")
        }
        return try s.materialize().to(.f32)
    }

    /// The weight matrix of a linear or convolution layer: f32 at `.full` precision; at `.half`,
    /// 16-bit (a file's f16 or bf16 as stored, f32 rounded to f16), widened inside the kernels; at
    /// `.bf16`, bf16 (f16 and f32 rounded to it). A matrix stored as it is needed is used in place
    /// (see `MappedWeights`).
    public func matrix(_ name: String) throws -> Tensor {
        if let replaced = overlay[prefix + name] { return replaced }
        return try loaded.tensor(prefix + name) { try weightMatrix(name) }
    }

    private func weightMatrix(_ name: String) throws -> Tensor {
        let s = try stored(name)
        let usable: Bool
        switch precision {
        case .full: usable = false
        case .half: usable = s.dtype == .F16 || s.dtype == .BF16
        case .bf16: usable = s.dtype == .BF16
        }
        if usable, let t = try inPlace(s) { return t }
        let t = try s.materialize()
        switch precision {
        case .full: return try t.to(.f32)
        case .half: return t.dtype == .f16 || t.dtype == .bf16 ? t : try t.to(.f32).to(.f16)
        case .bf16: return t.dtype == .bf16 ? t : try t.to(.f32).to(.bf16)
        }
    }

    private func stored(_ name: String) throws -> StoredTensor {
        guard let t = tensors[prefix + name] else {
            throw FormatError.unsupported(file: file, reason: "missing weight \(prefix + name)")
        }
        return t
    }

    public func has(_ name: String) -> Bool { tensors[prefix + name] != nil }
}

/// y = x W^T + b.
public struct Linear {
    public let weight: Tensor, bias: Tensor?
    /// The layer `name`; a 1x1 convolution's weight [out, in, 1, 1] is read as the same linear map
    /// on tokens (SD 1.x's proj_in/proj_out).
    public init(_ w: WeightLoader, _ name: String, bias: Bool = true) throws {
        let stored = try w.matrix(name + ".weight")
        weight = stored.rank == 4 && stored.shape[2] == 1 && stored.shape[3] == 1
            ? try withNoGrad { try stored.reshaped([stored.shape[0], stored.shape[1]]) } : stored
        self.bias = bias ? try w(name + ".bias") : nil
    }
    public init(weight: Tensor, bias: Tensor?) { self.weight = weight; self.bias = bias }

    /// One layer computing `layers` side by side (their outputs concatenated), and each layer as a
    /// view of its rows; nil unless they have the same shape and dtype and all or none have a bias.
    /// Weights used in place from the file are stacked only `includingBorrowed` (a copy that the
    /// model would otherwise hold for good, beside the mapping it can drop between generations).
    static func stacked(_ layers: [Linear], includingBorrowed: Bool = false) throws -> (Linear, [Linear])? {
        let first = layers[0].weight
        guard layers.allSatisfy({ $0.weight.shape == first.shape && $0.weight.dtype == first.dtype && $0.weight.isContiguous
                                  && (includingBorrowed || !$0.weight.storage.isBorrowed)
                                  && ($0.bias == nil) == (layers[0].bias == nil) }) else { return nil }
        func rows(_ parts: [Tensor]) throws -> Tensor {
            let out = try Tensor(uninitialized: [parts.count * parts[0].shape[0]] + parts[0].shape.dropFirst(), dtype: parts[0].dtype, op: "stack")
            let bytes = parts[0].count * parts[0].dtype.size
            for (i, p) in parts.enumerated() {
                (out.storage.raw + i * bytes).copyMemory(from: p.storage.raw + p.offset * p.dtype.size, byteCount: bytes)
            }
            return out
        }
        let weight = try rows(layers.map(\.weight)), bias = try layers[0].bias == nil ? nil : rows(layers.map { $0.bias! })
        let n = first.shape[0]
        let parts = try (0..<layers.count).map { i in
            Linear(weight: try weight.sliced(dim: 0, i * n, (i + 1) * n), bias: try bias?.sliced(dim: 0, i * n, (i + 1) * n))
        }
        return (Linear(weight: weight, bias: bias), parts)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try x.linear(weight: weight, bias: bias) }
    /// residual + self(x), the product accumulated onto the residual.
    public func callAsFunction(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
        try x.linear(weight: weight, bias: bias, adding: residual)
    }
}

/// 2-D convolution with square kernel and symmetric padding.
public struct Conv2d {
    public let weight: Tensor, bias: Tensor?
    public let stride: Int, padding: Int
    public init(_ w: WeightLoader, _ name: String, stride: Int = 1, padding: Int? = nil) throws {
        weight = try w.matrix(name + ".weight")
        bias = w.has(name + ".bias") ? try w(name + ".bias") : nil
        self.stride = stride
        self.padding = padding ?? weight.shape[2] / 2
    }
    /// residual + self(x), the residual added as the output is written.
    public func callAsFunction(_ x: Tensor, adding residual: Tensor) throws -> Tensor {
        try x.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, adding: residual)
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
    /// silu(self(x)), fused into one pass when no gradient is recorded.
    public func thenSiLU(_ x: Tensor) throws -> Tensor {
        try x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps, thenSiLU: true)
    }
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
    /// q, k and v stacked into one layer for self-attention (one GEMM reading x once); q, k and v
    /// are then views of its rows, so the weights are held once.
    let qkv: Linear?
    /// Weights used in place from the file are stacked for each self-attention call instead (a
    /// copy of 3 C^2 16-bit values, small beside the GEMM): the same GEMM as a stacked model's, so
    /// half precision computes what full precision does, bit for bit.
    let stacksPerCall: Bool

    public init(q: Linear, k: Linear, v: Linear, out: Linear, heads: Int) {
        if let (stacked, parts) = try? Linear.stacked([q, k, v]) {
            self.q = parts[0]; self.k = parts[1]; self.v = parts[2]; qkv = stacked
        } else {
            self.q = q; self.k = k; self.v = v; qkv = nil
        }
        stacksPerCall = qkv == nil && [q, k, v].contains { $0.weight.storage.isBorrowed }
        self.out = out; self.heads = heads
    }

    /// Attention of x over `context` (self-attention without one); with `residual`, residual + the
    /// result, added inside the output projection.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, causal: Bool = false, adding residual: Tensor? = nil) throws -> Tensor {
        let ctx = context ?? x
        let b = x.shape[0], l = x.shape[1], s = ctx.shape[1]
        func split(_ t: Tensor, _ n: Int) throws -> Tensor {
            let c = t.shape[2]
            return try t.reshaped([b, n, heads, c / heads]).transposed(1, 2)          // [B, H, n, d]
        }
        let qh: Tensor, kh: Tensor, vh: Tensor
        if context == nil, let qkv = try qkv ?? (stacksPerCall ? Linear.stacked([q, k, v], includingBorrowed: true)?.0 : nil) {
            let c = q.weight.shape[0]
            let heads3 = try qkv(x).reshaped([b, l, 3, heads, c / heads]).permuted([2, 0, 3, 1, 4]) // [3, B, H, L, d]
            (qh, kh, vh) = (try heads3.selected(dim: 0, 0), try heads3.selected(dim: 0, 1), try heads3.selected(dim: 0, 2))
        } else {
            (qh, kh, vh) = (try split(q(x), l), try split(k(ctx), s), try split(v(ctx), s))
        }
        let o = try Tensor.scaledDotProductAttention(q: qh, k: kh, v: vh, causal: causal)   // [B, H, L, d]
        let merged = try o.transposed(1, 2).reshaped([b, l, -1])
        return try residual.map { try out(merged, adding: $0) } ?? out(merged)
    }
}

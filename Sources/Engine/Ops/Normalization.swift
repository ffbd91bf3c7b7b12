/// Group and layer normalisation, softmax.
extension Tensor {
    private func normalized(layout: NormLayout, weight: Tensor?, bias: Tensor?, op: String) throws -> Tensor {
        try requireF32(op)
        if layout.thenSiLU && GradMode.enabled && [self, weight, bias].contains(where: { $0?.requiresGrad ?? false }) {
            // The fused pass keeps no pre-activation for a backward pass: compose the two ops instead.
            var plain = layout
            plain.thenSiLU = false
            return try normalized(layout: plain, weight: weight, bias: bias, op: op).silu()
        }
        let channels = layout.groups * layout.channelsPerGroup
        for p in [weight, bias].compactMap({ $0 }) where p.shape != [channels] {
            throw EngineError.shapeMismatch(op: op, shapes: [shape, p.shape], reason: "affine parameters must have \(channels) elements")
        }
        let x = try contiguous(), w = try weight?.contiguous(), b = try bias?.contiguous()
        let (y, mean, rstd) = try backend.norm(x, gamma: w, beta: b, layout: layout)
        let inputs = [x] + [w, b].compactMap { $0 }
        return y.recording(op, inputs: inputs) { g in
            let needParams = (w?.requiresGrad ?? false) || (b?.requiresGrad ?? false)
            let r = try Engine.backend.normBackward(g.contiguous(), x: x, gamma: w, mean: mean, rstd: rstd, layout: layout,
                                                    needParams: needParams)
            return [r.dx] + (w != nil ? [r.dgamma] : []) + (b != nil ? [r.dbeta] : [])
        }
    }

    /// GroupNorm over x [N, C, ...] (torch.nn.functional.group_norm).
    /// With `thenSiLU`, silu(group_norm(x)) in one pass over the data (composed when a gradient is recorded).
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5, thenSiLU: Bool = false) throws -> Tensor {
        guard rank >= 2, groups > 0, shape[1] % groups == 0 else {
            throw EngineError.shapeMismatch(op: "group_norm", shapes: [shape], reason: "channels must divide into \(groups) groups")
        }
        var layout = NormLayout.group(shape, groups: groups, eps: eps)
        layout.thenSiLU = thenSiLU
        return try normalized(layout: layout, weight: weight, bias: bias, op: "group_norm")
    }

    /// LayerNorm over the last dimension.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) throws -> Tensor {
        guard rank >= 1 else { throw EngineError.shapeMismatch(op: "layer_norm", shapes: [shape], reason: "need at least 1 dimension") }
        return try normalized(layout: .layer(shape, eps: eps), weight: weight, bias: bias, op: "layer_norm")
    }

    /// Softmax along `dim` (default the last).
    public func softmax(dim: Int = -1) throws -> Tensor {
        try requireF32("softmax")
        let d = try axis(dim, op: "softmax")
        if d != rank - 1 { return try transposed(d, -1).softmax().transposed(d, -1) }
        let x = try contiguous()
        let y = try backend.softmax(x)
        return y.recording("softmax", inputs: [x]) { [weak y] g in
            guard let y else { throw EngineError.invalidArgument(op: "softmax backward", message: "output released") }
            return [try Engine.backend.softmaxBackward(y: y, dy: g.contiguous())]
        }
    }
}

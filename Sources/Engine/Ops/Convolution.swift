/// Convolution and resampling.
extension Tensor {
    /// 2-D convolution of x [N, C, H, W] with weight [O, C, k, k] (k 1 or 3), stride 1 or 2, symmetric padding.
    /// A frozen weight may be 16-bit (contiguous).
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        try conv2d(weight: weight, bias: bias, stride: stride, padding: padding, adding: nil)
    }

    /// residual + conv2d(x): the residual (the output's shape) is added as the output is written;
    /// its gradient is the output's.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, adding residual: Tensor?) throws -> Tensor {
        try requireF32("conv2d"); try weight.requireWeightDType("conv2d")
        if weight.dtype != .f32 && !weight.isContiguous {
            throw EngineError.invalidArgument(op: "conv2d", message: "a \(weight.dtype.rawValue) weight must be contiguous")
        }
        guard rank == 4, weight.rank == 4, weight.shape[1] == shape[1], weight.shape[2] == weight.shape[3],
              bias.map({ $0.shape == [weight.shape[0]] }) ?? true else {
            throw EngineError.shapeMismatch(op: "conv2d", shapes: [shape, weight.shape] + (bias.map { [$0.shape] } ?? []),
                                            reason: "expected x [N, C, H, W], weight [O, C, k, k], bias [O]")
        }
        let k = weight.shape[2]
        guard stride >= 1, padding >= 0, shape[2] + 2 * padding >= k, shape[3] + 2 * padding >= k else {
            throw EngineError.invalidArgument(op: "conv2d", message: "kernel \(k) stride \(stride) padding \(padding) does not fit input \(Shape.describe(shape))")
        }
        let oh = (shape[2] + 2 * padding - k) / stride + 1, ow = (shape[3] + 2 * padding - k) / stride + 1
        if let residual, residual.shape != [shape[0], weight.shape[0], oh, ow] {
            throw EngineError.shapeMismatch(op: "conv2d", shapes: [shape, weight.shape, residual.shape],
                                            reason: "the residual must have the output's shape \(Shape.describe([shape[0], weight.shape[0], oh, ow]))")
        }
        try residual?.requireF32("conv2d")
        let x = try contiguous(), w = try weight.contiguous(), b = try bias?.contiguous(), r = try residual?.contiguous()
        let y = try backend.conv2d(x, weight: w, bias: b, stride: stride, padding: padding, adding: r)
        FLOPCounter.add(2 * y.count * shape[1] * k * k)
        let inputs = [x, w] + (b.map { [$0] } ?? []) + (r.map { [$0] } ?? [])
        return y.recording("conv2d", inputs: inputs) { g in
            let gc = try g.contiguous()
            let dx = x.requiresGrad
                ? try Engine.backend.conv2dBackwardData(gc, weight: w, inputShape: x.shape, stride: stride, padding: padding) : nil
            var dw: Tensor? = nil, db: Tensor? = nil
            if w.requiresGrad || (b?.requiresGrad ?? false) {
                (dw, db) = try Engine.backend.conv2dBackwardWeights(gc, input: x, weightShape: w.shape, stride: stride,
                                                                   padding: padding, withBias: b != nil)
            }
            return [dx, dw] + (b != nil ? [db] : []) + (r != nil ? [g] : [])
        }
    }

    /// Nearest-neighbour 2x upsampling of the last two dimensions.
    public func upsampleNearest2x() throws -> Tensor {
        try requireF32("upsample")
        guard rank >= 2 else { throw EngineError.shapeMismatch(op: "upsample", shapes: [shape], reason: "need at least 2 dimensions") }
        let x = try contiguous()
        return try backend.upsampleNearest2x(x).recording("upsample", inputs: [x]) { g in
            [try Engine.backend.upsampleNearest2xBackward(g.contiguous())]
        }
    }
}

extension Tensor {
    /// Zero padding of the last two dimensions (top, bottom, left, right), e.g. the VAE encoder's
    /// asymmetric (0, 1, 0, 1) padding before a stride-2 convolution.
    public func padded(top: Int, bottom: Int, left: Int, right: Int) throws -> Tensor {
        try requireF32("pad")
        guard rank >= 2, min(top, bottom, left, right) >= 0 else {
            throw EngineError.invalidArgument(op: "pad", message: "negative padding or rank below 2 for \(Shape.describe(shape))")
        }
        let h = shape[rank - 2], w = shape[rank - 1]
        var outShape = shape
        outShape[rank - 2] = h + top + bottom
        outShape[rank - 1] = w + left + right
        let out = try Tensor.zeros(outShape)
        let region = Tensor(storage: out.storage, shape: shape, strides: out.strides,
                            offset: top * out.strides[rank - 2] + left * out.strides[rank - 1])
        try backend.copy(self, into: region)
        let r = rank
        return out.recording("pad", inputs: [self]) { g in
            [try g.sliced(dim: r - 2, top, top + h).sliced(dim: r - 1, left, left + w).contiguous()]
        }
    }
}

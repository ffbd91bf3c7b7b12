/// Resampling of images and latents to another size, as PyTorch's `F.interpolate(x, size=...)`
/// computes it (align_corners False, the scale taken as input size / output size in single
/// precision). A1111's latent upscalers ("Latent", "Latent (antialiased)", "Latent (bicubic)", ...)
/// are these modes.
public enum InterpolationMode: String, Sendable, CaseIterable {
    /// The source pixel `floor(i * scale)` (torch's legacy "nearest").
    case nearest
    /// The source pixel `floor((i + 0.5) * scale)` (Pillow's and scikit-image's nearest).
    case nearestExact = "nearest-exact"
    case bilinear
    /// Keys' cubic convolution: a = -0.75, or -0.5 with antialias (torch follows Pillow there).
    case bicubic
}

extension Tensor {
    /// This [N, C, H, W] tensor resampled to `height` x `width` as `F.interpolate(self,
    /// size=(height, width), mode=mode, antialias=antialias)`. Antialias (bilinear and bicubic
    /// only) widens the kernel by the scale when shrinking and normalises the weights at the
    /// borders (Pillow's filters in floating point). No gradient: the latent upscalers run after
    /// sampling.
    public func interpolated(height: Int, width: Int, mode: InterpolationMode, antialias: Bool = false) throws -> Tensor {
        guard rank == 4, height > 0, width > 0 else {
            throw EngineError.invalidArgument(op: "interpolate", message: "need [N, C, H, W] and a positive size, got \(Shape.describe(shape)) to \(height)x\(width)")
        }
        guard !antialias || mode == .bilinear || mode == .bicubic else {
            throw EngineError.invalidArgument(op: "interpolate", message: "antialias applies to bilinear and bicubic only")
        }
        let (planes, inH, inW) = (shape[0] * shape[1], shape[2], shape[3])
        let input = try to(.f32).toArray()
        let rows = Self.taps(from: inH, to: height, mode: mode, antialias: antialias)
        let columns = Self.taps(from: inW, to: width, mode: mode, antialias: antialias)
        var output = [Float](repeating: 0, count: planes * height * width)
        var line = [Float](repeating: 0, count: width)
        for p in 0..<planes {
            let plane = p * inH * inW
            // Rows of the output: each a weighted sum of input rows, each of those resampled along
            // the width first (the order torch's separable kernels take).
            for y in 0..<height {
                for i in line.indices { line[i] = 0 }
                for (r, rowWeight) in rows[y] {
                    let source = plane + r * inW
                    for x in 0..<width {
                        var sum: Float = 0
                        for (c, w) in columns[x] { sum += w * input[source + c] }
                        line[x] += rowWeight * sum
                    }
                }
                for x in 0..<width { output[(p * height + y) * width + x] = line[x] }
            }
        }
        return try Tensor(shape: [shape[0], shape[1], height, width], data: output)
    }

    /// For each output position along one axis, the input positions it reads and their weights.
    static func taps(from inSize: Int, to outSize: Int, mode: InterpolationMode, antialias: Bool) -> [[(Int, Float)]] {
        let scale = Float(inSize) / Float(outSize)
        let last = inSize - 1
        func clamped(_ i: Int) -> Int { min(max(i, 0), last) }
        switch mode {
        case .nearest:
            return (0..<outSize).map { [(min(Int((Float($0) * scale).rounded(.down)), last), 1)] }
        case .nearestExact:
            return (0..<outSize).map { [(min(Int(((Float($0) + 0.5) * scale).rounded(.down)), last), 1)] }
        case .bilinear where !antialias:
            return (0..<outSize).map { i in
                let source = max(scale * (Float(i) + 0.5) - 0.5, 0)
                let i0 = Int(source), lambda = source - Float(i0)
                let i1 = i0 < last ? i0 + 1 : i0
                return [(i0, 1 - lambda), (i1, lambda)]
            }
        case .bicubic where !antialias:
            return (0..<outSize).map { i in
                let source = scale * (Float(i) + 0.5) - 0.5
                let i0 = Int(source.rounded(.down)), t = source - Float(i0)
                let w = cubicWeights(t, a: -0.75)
                return (0..<4).map { (clamped(i0 - 1 + $0), w[$0]) }
            }
        default:
            // torch's _upsample_*_aa: Pillow's filters, support widened by the scale when shrinking.
            let (support0, a): (Float, Float) = mode == .bilinear ? (1, 0) : (2, -0.5)
            let support = scale >= 1 ? support0 * scale : support0
            let invScale: Float = scale >= 1 ? 1 / scale : 1
            return (0..<outSize).map { i in
                let centre = scale * (Float(i) + 0.5)
                let lo = max(Int(centre - support + 0.5), 0)
                let count = min(Int(centre + support + 0.5), inSize) - lo
                var weights = (0..<max(count, 0)).map { j -> Float in
                    let x = (Float(j + lo) - centre + 0.5) * invScale
                    return mode == .bilinear ? max(1 - abs(x), 0) : cubicFilter(x, a: a)
                }
                let total = weights.reduce(0, +)
                if total != 0 { weights = weights.map { $0 / total } }
                return weights.enumerated().map { (lo + $0.offset, $0.element) }
            }
        }
    }

    /// The four weights of Keys' cubic convolution at offset `t` in [0, 1) (torch's
    /// `get_cubic_upsample_coefficients`).
    static func cubicWeights(_ t: Float, a: Float) -> [Float] {
        func near(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func far(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return [far(t + 1), near(t), near(1 - t), far(2 - t)]
    }

    /// The cubic filter at distance `x` (Pillow's `bicubic_filter`, torch's antialiased bicubic).
    static func cubicFilter(_ x: Float, a: Float) -> Float {
        let x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }
}

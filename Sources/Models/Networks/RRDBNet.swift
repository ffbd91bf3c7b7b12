import Engine
import Formats

/// ESRGAN's generator (Wang et al. 2018, the network of the "4x-UltraSharp"-style upscaler models
/// and Real-ESRGAN): a first convolution, residual-in-residual dense blocks, a trunk convolution
/// added to the first features, nearest 2x upsamplings each followed by a convolution, and two
/// final convolutions; LeakyReLU(0.2) throughout and residuals scaled by 0.2. Real-ESRGAN's 2x and
/// 1x models first fold 2x2 or 4x4 pixel blocks into channels (`pixel_unshuffle`), which shows as
/// 12 or 48 input channels.
///
/// Both key layouts people have are read: the original ESRGAN one (`model.0`,
/// `model.1.sub.N.RDB1.conv1.0`, ...) and BasicSR's (`conv_first`, `body.N.rdb1.conv1`, ...,
/// optionally under `params_ema` or `params`).
public struct RRDBNet {
    struct DenseBlock {
        let convs: [Conv2d]   // 5: the first four grow the features, the fifth returns to `features`
        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var parts = [x]
            for conv in convs.dropLast() {
                parts.append(try RRDBNet.leakyReLU(try conv(try Tensor.concat(parts, dim: 1))))
            }
            return try convs[4](try Tensor.concat(parts, dim: 1)) * 0.2 + x
        }
    }

    let first: Conv2d
    let blocks: [[DenseBlock]]   // each residual-in-residual block: three dense blocks
    let trunk: Conv2d
    let upsampling: [Conv2d]
    let highResolution: Conv2d, last: Conv2d
    /// The side of the pixel blocks folded into channels before the first convolution (1: none).
    public let unshuffle: Int
    /// Output pixels per input pixel along each side.
    public var scale: Int { (1 << upsampling.count) / unshuffle }

    /// Reads the network from a model file's tensors, in either key layout.
    public init(_ file: ModelFile) throws {
        let path = file.path
        var tensors = file.tensors
        for wrapper in ["params_ema.", "params."] where tensors.keys.contains(where: { $0.hasPrefix(wrapper) }) {
            tensors = Dictionary(uniqueKeysWithValues: tensors.compactMap { k, v in k.hasPrefix(wrapper) ? (String(k.dropFirst(wrapper.count)), v) : nil })
            break
        }
        let loader = WeightLoader(tensors: tensors, prefix: "", file: path, precision: .full, loaded: LoadedWeights())
        func conv(_ name: String) throws -> Conv2d {
            guard let w = tensors[name + ".weight"], w.shape.count == 4, w.shape[2] == 3, w.shape[3] == 3 else {
                throw FormatError.unsupported(file: path, reason: "not an ESRGAN (RRDBNet) model: \(name).weight is missing or not a 3x3 convolution")
            }
            return try Conv2d(loader, name, padding: 1)
        }
        func count(_ prefix: String, _ suffix: String, from start: Int = 0) -> Int {
            var n = start
            while tensors[prefix + "\(n)" + suffix] != nil { n += 1 }
            return n - start
        }
        func denseBlocks(_ prefix: String, rdb: String, conv convName: (Int) -> String) throws -> [DenseBlock] {
            try (1...3).map { r in DenseBlock(convs: try (1...5).map { c in try conv(prefix + rdb + "\(r)." + convName(c)) }) }
        }
        if tensors["conv_first.weight"] != nil {
            first = try conv("conv_first")
            let n = count("body.", ".rdb1.conv1.weight")
            blocks = try (0..<n).map { try denseBlocks("body.\($0).", rdb: "rdb", conv: { "conv\($0)" }) }
            trunk = try conv("conv_body")
            upsampling = try (0..<count("conv_up", ".weight", from: 1)).map { try conv("conv_up\($0 + 1)") }
            highResolution = try conv("conv_hr")
            last = try conv("conv_last")
        } else if tensors["model.0.weight"] != nil {
            first = try conv("model.0")
            let n = count("model.1.sub.", ".RDB1.conv1.0.weight")
            blocks = try (0..<n).map { try denseBlocks("model.1.sub.\($0).", rdb: "RDB", conv: { "conv\($0).0" }) }
            trunk = try conv("model.1.sub.\(n)")
            // After the trunk: an upsampling convolution per 2x, then the two final convolutions,
            // at the indices of the original Sequential (upsample, conv, LeakyReLU per 2x).
            let rest = tensors.keys.compactMap { k -> Int? in
                guard k.hasPrefix("model."), k.hasSuffix(".weight") else { return nil }
                return Int(k.dropFirst(6).dropLast(7)).flatMap { $0 >= 2 ? $0 : nil }
            }.sorted()
            guard rest.count >= 2 else {
                throw FormatError.unsupported(file: path, reason: "not an ESRGAN (RRDBNet) model: no final convolutions after model.1")
            }
            upsampling = try rest.dropLast(2).map { try conv("model.\($0)") }
            highResolution = try conv("model.\(rest[rest.count - 2])")
            last = try conv("model.\(rest[rest.count - 1])")
        } else {
            throw FormatError.unsupported(file: path, reason: "not an ESRGAN (RRDBNet) model: neither conv_first.weight nor model.0.weight is there")
        }
        guard !blocks.isEmpty else { throw FormatError.unsupported(file: path, reason: "an ESRGAN model without RRDB blocks") }
        switch first.weight.shape[1] {
        case 3: unshuffle = 1
        case 12: unshuffle = 2
        case 48: unshuffle = 4
        case let c: throw FormatError.unsupported(file: path, reason: "an ESRGAN model whose first convolution takes \(c) channels (expected 3, 12 or 48)")
        }
        guard last.weight.shape[0] == 3 else {
            throw FormatError.unsupported(file: path, reason: "an ESRGAN model with \(last.weight.shape[0]) output channels (expected 3)")
        }
        guard scale >= 1 else { throw FormatError.unsupported(file: path, reason: "an ESRGAN model that shrinks pictures") }
    }

    /// LeakyReLU with slope 0.2: max(x, 0) + 0.2 min(x, 0), each term as torch computes it.
    static func leakyReLU(_ x: Tensor) throws -> Tensor {
        try x.clamped(min: 0, max: .infinity) + (try x.clamped(min: -.infinity, max: 0) * 0.2)
    }

    /// The upscaled pictures [B, 3, H * scale, W * scale] of pictures [B, 3, H, W] in 0...1
    /// (unclamped, as the network gives them). H and W must be multiples of `unshuffle`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var input = x
        if unshuffle > 1 {
            let (b, c, h, w, r) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], unshuffle)
            input = try x.reshaped([b, c, h / r, r, w / r, r]).permuted([0, 1, 3, 5, 2, 4]).contiguous().reshaped([b, c * r * r, h / r, w / r])
        }
        let features = try first(input)
        var body = features
        for block in blocks {
            var y = body
            for dense in block { y = try dense(y) }
            body = try y * 0.2 + body
        }
        var out = try trunk(body, adding: features)
        for conv in upsampling { out = try Self.leakyReLU(try conv(try out.upsampleNearest2x())) }
        return try last(try Self.leakyReLU(try highResolution(out)))
    }
}

import Foundation

/// A1111's `ImageRNG`: one generator per image seeded `seed + i`. The first call gives each
/// image's initial noise (mixed with the subseed's noise by `slerp` when a variation strength is
/// set; with "Seed resize from", the seed's noise is made at that size and pasted centred into
/// the image's own first draw); later calls give each image's next draw (the ancestral samplers'
/// per-step noise), from generators reseeded with `seed + etaNoiseSeedDelta` when that ("ENSD")
/// is set, so a batch reproduces the images made one at a time.
public struct ImageNoise {
    public let shape: [Int]
    public let seeds: [UInt64]
    public let subseeds: [UInt64]
    public let subseedStrength: Float
    /// The latent [C, h, w] the seed's noise is made at ("Seed resize from" / 8), nil when not resized.
    public let seedNoiseShape: [Int]?
    public let etaNoiseSeedDelta: Int64
    let kind: RandomSourceKind
    private var generators: [any RandomSource]

    public init(kind: RandomSourceKind, shape: [Int], seeds: [UInt64], subseeds: [UInt64] = [], subseedStrength: Float = 0,
                seedNoiseShape: [Int]? = nil, etaNoiseSeedDelta: Int64 = 0) {
        self.kind = kind
        self.shape = shape
        self.seeds = seeds
        self.subseeds = subseeds
        self.subseedStrength = subseedStrength
        self.seedNoiseShape = seedNoiseShape == shape ? nil : seedNoiseShape
        self.etaNoiseSeedDelta = etaNoiseSeedDelta
        generators = seeds.map { kind.make(seed: $0) }
    }

    /// The batch's initial noise (images concatenated).
    public mutating func first() -> [Float] {
        var out: [Float] = []
        let noiseShape = seedNoiseShape ?? shape
        for i in seeds.indices {
            var subnoise: [Float]? = nil
            if subseedStrength != 0 {
                var g = kind.make(seed: i < subseeds.count ? subseeds[i] : 0)
                subnoise = g.randn(shape: noiseShape)
            }
            var noise: [Float]
            if seedNoiseShape != nil {
                var g = kind.make(seed: seeds[i])
                noise = g.randn(shape: noiseShape)
            } else {
                noise = generators[i].randn(shape: shape)
            }
            if let subnoise { noise = Self.slerp(subseedStrength, noise, subnoise, shape: noiseShape) }
            if seedNoiseShape != nil { noise = Self.pasteCentred(noise, shape: noiseShape, into: generators[i].randn(shape: shape), shape: shape) }
            out += noise
        }
        if etaNoiseSeedDelta != 0 {
            generators = seeds.map { kind.make(seed: $0 &+ UInt64(bitPattern: etaNoiseSeedDelta)) }
        }
        return out
    }

    /// A1111's seed resize: `small` [C, h, w] placed centred on `large` [C, H, W], cropped
    /// centred where it is larger (offsets by floor division, as Python computes them).
    static func pasteCentred(_ small: [Float], shape s: [Int], into large: [Float], shape l: [Int]) -> [Float] {
        func floorHalf(_ v: Int) -> Int { v >= 0 ? v / 2 : -((-v + 1) / 2) }
        var dx = floorHalf(l[2] - s[2]), dy = floorHalf(l[1] - s[1])
        let w = dx >= 0 ? s[2] : s[2] + 2 * dx, h = dy >= 0 ? s[1] : s[1] + 2 * dy
        let tx = max(dx, 0), ty = max(dy, 0)
        dx = max(-dx, 0); dy = max(-dy, 0)
        var out = large
        guard w > 0, h > 0 else { return out }
        for c in 0..<l[0] {
            for y in 0..<h {
                for x in 0..<w { out[(c * l[1] + ty + y) * l[2] + tx + x] = small[(c * s[1] + dy + y) * s[2] + dx + x] }
            }
        }
        return out
    }

    /// Each image's next draw, concatenated.
    public mutating func next() -> [Float] {
        (0..<generators.count).flatMap { generators[$0].randn(shape: shape) }
    }

    /// A1111's slerp between two [C, H, W] noises: norms and dot products over dimension 1 (H),
    /// i.e. per (channel, column); linear with swapped weights when the mean dot product exceeds 0.9995.
    static func slerp(_ val: Float, _ low: [Float], _ high: [Float], shape: [Int]) -> [Float] {
        let c = shape[0], h = shape[1], w = shape[2]
        func index(_ ci: Int, _ hi: Int, _ wi: Int) -> Int { (ci * h + hi) * w + wi }
        var dots = [Float](repeating: 0, count: c * w)
        for ci in 0..<c {
            for wi in 0..<w {
                var nl: Float = 0, nh: Float = 0
                for hi in 0..<h { nl += low[index(ci, hi, wi)] * low[index(ci, hi, wi)]; nh += high[index(ci, hi, wi)] * high[index(ci, hi, wi)] }
                nl = nl.squareRoot(); nh = nh.squareRoot()
                var d: Float = 0
                for hi in 0..<h { d += (low[index(ci, hi, wi)] / nl) * (high[index(ci, hi, wi)] / nh) }
                dots[ci * w + wi] = d
            }
        }
        if dots.reduce(0, +) / Float(dots.count) > 0.9995 {
            return zip(low, high).map { $0 * val + $1 * (1 - val) }
        }
        var out = low
        for ci in 0..<c {
            for wi in 0..<w {
                let omega = Foundation.acos(dots[ci * w + wi]), so = Foundation.sin(omega)
                let a = Foundation.sin((1 - val) * omega) / so, b = Foundation.sin(val * omega) / so
                for hi in 0..<h { let k = index(ci, hi, wi); out[k] = a * low[k] + b * high[k] }
            }
        }
        return out
    }
}

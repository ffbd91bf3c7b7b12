import Foundation

/// torchsde 0.2.6's `BrownianTree(t0, w0, t1, entropy=seed)` for a float32 `w0` of `count`
/// elements, as k-diffusion builds it (defaults `tol=1e-6`, `pool_size=24`, no Lévy area): a
/// `BrownianInterval` with `halfway_tree=True` (`torchsde/_brownian/brownian_interval.py`,
/// `derived.py`). `increment(ta, tb)` returns `W(tb) - W(ta)` in float32 as torchsde computes it.
///
/// How torchsde builds the path:
/// - every time is rounded with Python's `round(t, 6)` (decimal, half to even);
/// - the root interval [t0, t1] gets `W = randn(s) * sqrt(t1 - t0)` (the unrounded times), with
///   `s = SeedSequence(entropy, pool_size=24).generate_state(3)[0]`;
/// - an interval is split at `round(0.5 * (end + start), 6)` (the dyadic "halfway" tree, so the
///   path depends on the entropy only, not on the order of queries); the split node draws
///   `noise = randn(SeedSequence(entropy, spawn_key=(key, depth), pool_size=24)
///   .generate_state(4)[0])` where the root has key 0, depth 0 and a child key `2 * key + (0 left,
///   1 right)`; with l = mid - start, r = end - mid, h = 1 / (end - start) (doubles):
///   `left = (l * W) * h + sqrt(l * r * h) * noise` and `right = W - left`, each scalar cast to
///   float32 and each operation rounded to float32 as torch's CPU kernels do;
/// - a query [ta, tb] (clamped to [t0, t1]) is the left-to-right float32 sum of the tree's
///   maximal intervals that tile it.
/// `randn(seed)` is `torch.randn(count, generator=torch.Generator().manual_seed(seed))` (A1111's
/// "CPU" / default torchsde) or, with `.nv`, A1111's Philox generator that A1111 substitutes for
/// torchsde's `_randn` (`sd_samplers_common.replace_torchsde_browinan` -> `rng.randn_local`).
///
/// Recently computed increments are kept in a small least-recently-used cache (torchsde keeps
/// 45); anything evicted is recomputed identically from its seeds. Each new query end point costs
/// at most one `randn` of `count` values per level of the tree (about log2((t1 - t0) / 1e-6)).
/// Not thread-safe (the cache and the tree grow as queries arrive).
public final class BrownianTree {
    /// Elements of one increment.
    public let count: Int
    /// The rounded end points of the tree's interval.
    public let start: Double, end: Double
    let entropy: UInt64
    let source: RandomSourceKind

    /// Deeper than any query of a validated interval reaches (see `maximumSpan`); a guard only
    /// (spawn keys, 2^depth, stay within UInt64).
    static let maxDepth = 62
    /// Intervals wider than this are refused: on the 1e-6 grid the tree stays under 45 levels.
    public static let maximumSpan = 1e7

    private struct Node {
        var start: Double, end: Double
        var parent: Int, isLeft: Bool
        var key: UInt64, depth: Int
        var mid: Double? = nil
        var left = -1, right = -1
        var seed: UInt32 = 0
    }

    private var nodes: [Node]
    private let rootW: [Float]
    private var cache: [Int: (values: [Float], stamp: Int)] = [:]
    private var clock = 0
    let cacheCapacity: Int
    /// Number of `randn` draws made so far (one per computed interval, plus the root's).
    private(set) var draws = 0

    /// nil unless t0 < t1 (both finite, t1 - t0 at most `maximumSpan`, |t| below 1e9) and count > 0.
    public init?(t0: Double, t1: Double, count: Int, entropy: UInt64, source: RandomSourceKind = .cpu,
                 cacheCapacity: Int = 45) {
        guard t0.isFinite, t1.isFinite, t0 < t1, t1 - t0 <= Self.maximumSpan,
              abs(t0) < 1e9, abs(t1) < 1e9, count > 0 else { return nil }
        self.count = count
        self.entropy = entropy
        self.source = source
        self.cacheCapacity = max(1, cacheCapacity)
        start = Self.round6(t0)
        end = Self.round6(t1)
        nodes = [Node(start: start, end: end, parent: -1, isLeft: false, key: 0, depth: 0)]
        let seed = SeedSequence(entropy: entropy, poolSize: 24).generateState(1)[0]
        let scale = Float((t1 - t0).squareRoot())
        var generator = source.make(seed: UInt64(seed))
        rootW = generator.randn(count).map { $0 * scale }
        draws = 1
    }

    /// `tree(ta, tb)`: the increment over [ta, tb] (ta <= tb; both clamped to the tree's interval
    /// as torchsde does, with a warning there). nil if ta > tb or either is not finite.
    public func increment(_ ta: Double, _ tb: Double) -> [Float]? {
        guard ta.isFinite, tb.isFinite else { return nil }
        var a = ta, b = tb
        if a < start { a = start }
        if b < start { b = start }
        if a > end { a = end }
        if b > end { b = end }
        guard a <= b else { return nil }
        if a == b { return [Float](repeating: 0, count: count) }
        a = Self.round6(a)
        b = Self.round6(b)
        // torchsde would build a zero-width interval here (or recurse until it fails).
        if a == b { return [Float](repeating: 0, count: count) }
        var pieces: [Int] = []
        locate(0, a, b, &pieces)
        guard var total = pieces.first.map(increment(node:)) else { return [Float](repeating: 0, count: count) }
        for p in pieces.dropFirst() {
            let w = increment(node: p)
            for i in 0..<count { total[i] += w[i] }
        }
        return total
    }

    /// The maximal intervals tiling [a, b] (rounded, inside node `n`), left to right, splitting
    /// intervals at their rounded halfway points as needed.
    private func locate(_ n: Int, _ a: Double, _ b: Double, _ out: inout [Int]) {
        if a == nodes[n].start && b == nodes[n].end { out.append(n); return }
        if nodes[n].mid == nil {
            guard nodes[n].depth < Self.maxDepth else { out.append(n); return }
            split(n)
        }
        guard let mid = nodes[n].mid else { return }
        if b <= mid {
            locate(nodes[n].left, a, b, &out)
        } else if a >= mid {
            locate(nodes[n].right, a, b, &out)
        } else {
            locate(nodes[n].left, a, mid, &out)
            locate(nodes[n].right, mid, b, &out)
        }
    }

    private func split(_ n: Int) {
        let node = nodes[n]
        let mid = Self.round6(0.5 * (node.end + node.start))
        nodes[n].mid = mid
        nodes[n].seed = SeedSequence(entropy: entropy, spawnKey: [node.key, UInt64(node.depth)], poolSize: 24)
            .generateState(1)[0]
        nodes[n].left = nodes.count
        nodes.append(Node(start: node.start, end: mid, parent: n, isLeft: true,
                          key: node.key &* 2, depth: node.depth + 1))
        nodes[n].right = nodes.count
        nodes.append(Node(start: mid, end: node.end, parent: n, isLeft: false,
                          key: node.key &* 2 &+ 1, depth: node.depth + 1))
    }

    /// The increment over node `n`'s interval, from the nearest cached ancestor (or the root) down.
    private func increment(node n: Int) -> [Float] {
        var path: [Int] = []
        var current = n
        var w: [Float] = rootW
        while current != 0 {
            if let hit = cache[current] {
                w = hit.values
                cache[current] = (hit.values, tick())
                break
            }
            path.append(current)
            current = nodes[current].parent
        }
        for child in path.reversed() {
            let p = nodes[nodes[child].parent]
            guard let mid = p.mid else { break }
            let h = 1 / (p.end - p.start), l = mid - p.start, r = p.end - mid
            let fl = Float(l), fh = Float(h), sd = Float((l * r * h).squareRoot())
            let noise = randn(p.seed)
            if nodes[child].isLeft {
                for i in 0..<count { w[i] = (w[i] * fl) * fh + noise[i] * sd }
            } else {
                for i in 0..<count { w[i] = w[i] - ((w[i] * fl) * fh + noise[i] * sd) }
            }
            remember(child, w)
        }
        return w
    }

    private func tick() -> Int { clock += 1; return clock }

    /// Caches a node's increment; when full, drops the least recently used half at once.
    private func remember(_ n: Int, _ values: [Float]) {
        if cache[n] == nil, cache.count >= cacheCapacity {
            let byAge = cache.sorted { $0.value.stamp < $1.value.stamp }
            for (key, _) in byAge.prefix(max(1, cache.count / 2)) { cache[key] = nil }
        }
        cache[n] = (values, tick())
    }

    private func randn(_ seed: UInt32) -> [Float] {
        draws += 1
        var generator = source.make(seed: UInt64(seed))
        return generator.randn(count)
    }

    /// Python's `round(x, 6)` for a double: the exact binary value rounded to 6 decimals (half to
    /// even, as CPython's correctly rounded dtoa does), then the nearest double to that decimal.
    /// Exact for |x| < 2^53 / 10^6 (about 9e9); larger values are returned unchanged.
    static func round6(_ x: Double) -> Double {
        guard x.isFinite, x != 0 else { return x }
        let magnitude = abs(x)
        guard magnitude < 9e9 else { return x }
        // magnitude = m * 2^-shift with m an integer below 2^53.
        let m: UInt64 = magnitude.isNormal ? magnitude.significandBitPattern | (1 << 52) : magnitude.significandBitPattern
        let exponent = magnitude.isNormal ? Int(magnitude.exponent) : -1022
        let shift = 52 - exponent
        guard shift > 0 else { return x }
        // P = m * 10^6 (below 2^73) as (high, low); q = P >> shift rounded half to even.
        let (high, low) = m.multipliedFullWidth(by: 1_000_000)
        var q: UInt64
        let roundUp: Bool
        if shift >= 128 {
            q = 0
            roundUp = false          // P < 2^73 <= 2^(shift - 1): below one half
        } else {
            let (qHigh, qLow, rHigh, rLow) = shiftRight(high, low, by: shift)
            guard qHigh == 0 else { return x }
            q = qLow
            // Compare the remainder with half = 2^(shift - 1).
            let halfBit = shift - 1
            let (halfHigh, halfLow): (UInt64, UInt64) = halfBit >= 64 ? (1 << UInt64(halfBit - 64), 0) : (0, 1 << UInt64(halfBit))
            if rHigh != halfHigh {
                roundUp = rHigh > halfHigh
            } else if rLow != halfLow {
                roundUp = rLow > halfLow
            } else {
                roundUp = q & 1 == 1
            }
        }
        if roundUp { q += 1 }
        let rounded = Double(q) / 1_000_000
        return x < 0 ? -rounded : rounded
    }

    /// (high, low) >> shift and the bits shifted out, for 0 < shift < 128.
    private static func shiftRight(_ high: UInt64, _ low: UInt64, by shift: Int) -> (UInt64, UInt64, UInt64, UInt64) {
        if shift >= 64 {
            let s = shift - 64
            let qLow = s == 0 ? high : high >> UInt64(s)
            let rHigh = s == 0 ? 0 : high & ((1 << UInt64(s)) - 1)
            return (0, qLow, rHigh, low)
        }
        let s = UInt64(shift)
        let qHigh = high >> s
        let qLow = (low >> s) | (high << (64 - s))
        let rLow = low & ((1 << s) - 1)
        return (qHigh, qLow, 0, rLow)
    }
}

import ArgumentParser
import CBLAS
import CKernels
import Engine
import Foundation

/// `sdbench ops`: GFLOP/s of the engine on the UNet's GEMM, convolution and attention shapes at a
/// given image size, next to the machine's measured FMA peak and raw OpenBLAS sgemm.
struct OpsBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ops", abstract: "Throughput of the engine's primitives on SD 1.5 shapes.")

    @Option(help: "Image sizes (pixels); latents are size/8.")
    var sizes: [Int] = [256, 512]

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "Timed repetitions per shape (the median is reported).")
    var repeats: Int = 5

    @Option(help: "Backend of the engine rows: cpu, opencl or opencl:N.")
    var backend: String = "cpu"

    @Option(help: "Only these kinds: gemm, conv, attention (default: all).")
    var only: [String] = []

    @Flag(help: "Also the VAE decoder's 3x3 convolutions at 512x512 (batch 1).")
    var vae = false

    @Option(help: "Element type of the engine rows' weights: f32, f16 (as `precision=\"half\"` keeps them: read in place, no cached copies) or bf16.")
    var weights: String = "f32"

    @Option(help: "How the engine rows' products multiply: f32, or bf16 (operands rounded to bf16, f32 sums; `precision=\"bf16\"`).")
    var products: String = "f32"

    private func wanted(_ kind: String) -> Bool { only.isEmpty || only.contains(kind) }

    func run() throws {
        guard let productPrecision = ProductPrecision(rawValue: products) else { throw ValidationError("--products must be f32 or bf16") }
        try withProductPrecision(productPrecision) { try runRows() }
    }

    private func runRows() throws {
        guard let weightType = DType(rawValue: weights) else { throw ValidationError("--weights must be f32, f16 or bf16") }
        func stored(_ t: Tensor) throws -> Tensor { try t.to(weightType) }
        if let threads { Engine.threads = threads }
        Engine.use(try Engine.backend(named: backend))
        // The peak is measured before and after (VM neighbours make single readings noisy); the
        // higher reading is the machine's limit.
        let before = Peak.measure()
        for size in sizes {
            let l = size / 8
            rows.append(("--- \(size)x\(size) (latent \(l)x\(l)), batch 2 (one CFG step)", 0, 0))
            for (tokens, c) in [(l * l, 320), (l * l / 4, 640), (l * l / 16, 1280)] where wanted("gemm") {
                let m = 2 * tokens
                for (k, n) in [(c, c), (c, 8 * c), (4 * c, c)] {
                    let flops = 2.0 * Double(m * k * n)
                    let a = try random([m, k]), w = try random([n, k])
                    report("sgemm (OpenBLAS) \(m)x\(k)x\(n)", flops, 0) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1,
                                    a.storagePointer, Int32(k), w.storagePointer, Int32(k), 0, scratch(m * n), Int32(n))
                    }
                    let ws = try stored(w)
                    try reportThrowing("engine linear \(m)x\(k)x\(n)", flops, 0) { _ = try a.linear(weight: ws) }
                }
            }
            // Effective rate: the direct convolution's FLOPs over the time (above 100% of peak when
            // Winograd, which needs 2.25x fewer multiplies, wins).
            // The UNet's widest inputs (skip connections concatenated) too.
            for (c, o, hw) in [(320, 320, l), (640, 640, l / 2), (1280, 1280, l / 4), (1280, 1280, l / 8), (1920, 640, l / 2),
                               (2560, 1280, l / 4), (2560, 1280, l / 8)] where wanted("conv") {
                let x = try random([2, c, hw, hw]), w = try stored(random([o, c, 3, 3])), b = try random([o])
                let flops = 2.0 * Double(2 * c * o * 9 * hw * hw)
                try reportThrowing("engine conv3x3 2x\(c)x\(hw)x\(hw) -> \(o)", flops, 0) {
                    _ = try x.conv2d(weight: w, bias: b, padding: 1)
                }
            }
            let tokens = l * l, heads = 8, d = 40
            guard wanted("attention") else { continue }
            // Heads split from three projections, as in the UNet.
            let (q, k, v) = (try random([2, tokens, heads, d]).transposed(1, 2), try random([2, tokens, heads, d]).transposed(1, 2),
                             try random([2, tokens, heads, d]).transposed(1, 2))
            let flops = 4.0 * Double(2 * heads * tokens * tokens * d)
            try reportThrowing("engine attention 2x\(heads)x\(tokens)x\(d)", flops, 0) {
                _ = try Tensor.scaledDotProductAttention(q: q, k: k, v: v)
            }
        }
        if vae {
            rows.append(("--- VAE decoder 3x3 convolutions at 512x512, batch 1", 0, 0))
            for (c, hw) in [(512, 64), (512, 128), (256, 256), (128, 512)] {
                let x = try random([1, c, hw, hw]), w = try random([c, c, 3, 3]), b = try random([c])
                let flops = 2.0 * Double(c * c * 9 * hw * hw)
                try reportThrowing("engine conv3x3 1x\(c)x\(hw)x\(hw) -> \(c)", flops, 0) {
                    _ = try x.conv2d(weight: w, bias: b, padding: 1)
                }
            }
        }
        let after = Peak.measure(), peak = max(before, after)
        print("machine: \(Engine.threads) threads, \(ck_fma_vector_width() * 32)-bit FMA; measured FMA peak \(fmt(before)) before, \(fmt(after)) after: using \(fmt(peak)) GFLOP/s")
        print("GFLOP/s: median and best of \(repeats) runs after a warm-up; % of peak from the median (best).")
        print(String(format: "%-44@ %8@ %8@ %14@", "shape" as NSString, "median" as NSString, "best" as NSString, "% peak" as NSString))
        for (name, median, best) in rows.rows {
            if median == 0 { print(name); continue }
            print(String(format: "%-44@ %8.1f %8.1f %6.0f%% (%3.0f%%)", name as NSString, median, best, 100 * median / peak, 100 * best / peak))
        }
    }

    private var rows: Rows { Rows.shared }

    private func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    private func random(_ shape: [Int]) throws -> Tensor {
        var fill = RandomFill(state: 0x9E3779B97F4A7C15)
        return try fill.tensor(shape)
    }

    private func report(_ name: String, _ flops: Double, _ peak: Double, _ body: () -> Void) {
        let t = Timing.measure(repeats) { body() }
        rows.append((name, flops / t.median / 1e9, flops / t.best / 1e9))
    }

    private func reportThrowing(_ name: String, _ flops: Double, _ peak: Double, _ body: () throws -> Void) throws {
        var failure: Error?
        // Device backends queue work: wait for it, so that the time is the computation's.
        let device = Engine.backend as? OpenCLBackend
        report(name, flops, 0) { do { try withNoGrad { try body() }; try device?.synchronize() } catch { failure = error } }
        if let failure { throw failure }
    }
}

/// Result rows, printed once the peak is known.
final class Rows: @unchecked Sendable {
    static let shared = Rows()
    var rows: [(String, Double, Double)] = []
    func append(_ r: (String, Double, Double)) { rows.append(r) }
}

/// A reusable output buffer for raw sgemm calls.
nonisolated(unsafe) private var scratchBuffer: UnsafeMutablePointer<Float>?
nonisolated(unsafe) private var scratchCount = 0
private func scratch(_ n: Int) -> UnsafeMutablePointer<Float> {
    if n > scratchCount {
        scratchBuffer?.deallocate()
        scratchBuffer = .allocate(capacity: n)
        scratchCount = n
    }
    return scratchBuffer!
}

extension Tensor {
    /// Pointer to the first f32 element (benchmarks only).
    var storagePointer: UnsafeMutablePointer<Float> { storage.floats + offset }
}

/// Wall-clock timing helpers.
enum Timing {
    /// Median and best seconds of `n` runs after one warm-up run.
    static func measure(_ n: Int, _ body: () -> Void) -> (median: Double, best: Double) {
        body()
        var times: [Double] = []
        for _ in 0..<max(n, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        times.sort()
        return (times[times.count / 2], times[0])
    }
}

/// The machine's measured single-precision FMA peak.
enum Peak {
    /// GFLOP/s of an FMA-bound loop on all engine threads (best of 9 runs of ~0.1 s).
    static func measure() -> Double {
        let iters = 5_000_000
        var best = 0.0
        for _ in 0..<9 {
            let start = DispatchTime.now().uptimeNanoseconds
            let flops = ck_fma_peak_probe(iters)
            let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = max(best, flops / t / 1e9)
        }
        return best
    }
}

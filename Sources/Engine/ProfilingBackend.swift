import Foundation
import Synchronization

/// A backend that times every primitive call of the backend it wraps and adds them up per
/// operation and shape (`sdbench unet --profile`). Use it with `Engine.use(ProfilingBackend(inner))`;
/// the time outside all primitives (the Swift layers, allocation, autograd bookkeeping) is the
/// wall time less `totalSeconds`. Timing a device backend needs its queue drained around each call,
/// which this does not do: it is meant for the CPU.
public final class ProfilingBackend: Backend, @unchecked Sendable {
    /// Calls of one operation on one shape: their count, time and the direct algorithm's FLOPs.
    public struct Entry: Sendable {
        public var operation: String
        public var calls = 0
        public var seconds = 0.0
        public var flops = 0
        public init(operation: String) { self.operation = operation }
    }

    public let inner: any Backend
    public var name: String { inner.name }
    private let entries = Mutex<[String: Entry]>([:])

    public init(_ inner: any Backend) { self.inner = inner }

    /// The entries, slowest first.
    public var report: [Entry] { entries.withLock { Array($0.values) }.sorted { $0.seconds > $1.seconds } }
    /// Time spent inside primitives.
    public var totalSeconds: Double { report.reduce(0) { $0 + $1.seconds } }
    public func reset() { entries.withLock { $0.removeAll() } }

    private func timed<T>(_ operation: @autoclosure () -> String, flops: Int = 0, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let key = operation()
        entries.withLock { all in
            var e = all[key] ?? Entry(operation: key)
            e.calls += 1; e.seconds += seconds; e.flops += flops
            all[key] = e
        }
        return result
    }

    private func dims(_ s: [Int]) -> String { s.map(String.init).joined(separator: "x") }
    private func convName(_ kind: String, _ x: [Int], _ w: [Int], _ stride: Int) -> String {
        "\(kind) \(w[2])x\(w[3])\(stride > 1 ? "/\(stride)" : "") \(w[1])->\(w[0]) at \(x[2])x\(x[3]) n\(x[0])"
    }
    private func convFLOPs(_ outputs: Int, _ w: [Int]) -> Int { 2 * outputs * w[1] * w[2] * w[3] }

    public func copy(_ src: Tensor, into dst: Tensor) throws { try timed("copy") { try inner.copy(src, into: dst) } }
    public func convert(_ x: Tensor, to dtype: DType) throws -> Tensor {
        try timed("convert \(x.dtype.rawValue)->\(dtype.rawValue)") { try inner.convert(x, to: dtype) }
    }
    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor { try timed("unary \(op)") { try inner.unary(op, x) } }
    public func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor?, dy: Tensor) throws -> Tensor {
        try timed("unary backward \(op)") { try inner.unaryBackward(op, x: x, y: y, dy: dy) }
    }
    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) throws -> Tensor {
        try timed("binary \(op)") { try inner.binary(op, a, b, shape: shape) }
    }
    public func affine(_ x: Tensor, mul: Float, add: Float) throws -> Tensor { try timed("affine") { try inner.affine(x, mul: mul, add: add) } }
    public func rowSum(_ x: Tensor, rows: Int, cols: Int) throws -> Tensor { try timed("row sum") { try inner.rowSum(x, rows: rows, cols: cols) } }
    public func rowMeanVar(_ x: Tensor, rows: Int, cols: Int) throws -> (mean: Tensor, variance: Tensor) {
        try timed("row mean/var") { try inner.rowMeanVar(x, rows: rows, cols: cols) }
    }

    public func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?) throws -> Tensor {
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        let batch = a.shape.dropLast(2).reduce(1, *)
        return try timed("matmul \(batch > 1 ? "\(batch)x " : "")\(m)x\(k) @ \(k)x\(n)\(b.dtype == .f32 ? "" : " \(b.dtype.rawValue)")",
                         flops: 2 * batch * m * k * n) { try inner.matmul(a, b, bias: bias, adding: addend) }
    }

    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, adding residual: Tensor?) throws -> Tensor {
        let oh = (x.shape[2] + 2 * padding - weight.shape[2]) / stride + 1, ow = (x.shape[3] + 2 * padding - weight.shape[3]) / stride + 1
        return try timed(convName("conv2d", x.shape, weight.shape, stride),
                         flops: convFLOPs(x.shape[0] * weight.shape[0] * oh * ow, weight.shape)) {
            try inner.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, adding: residual)
        }
    }
    public func conv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: [Int], stride: Int, padding: Int) throws -> Tensor {
        try timed(convName("conv2d backward data", inputShape, weight.shape, stride), flops: convFLOPs(dy.count, weight.shape)) {
            try inner.conv2dBackwardData(dy, weight: weight, inputShape: inputShape, stride: stride, padding: padding)
        }
    }
    public func conv2dBackwardWeights(_ dy: Tensor, input: Tensor, weightShape: [Int], stride: Int, padding: Int,
                                      withBias: Bool) throws -> (weight: Tensor, bias: Tensor?) {
        try timed(convName("conv2d backward weights", input.shape, weightShape, stride), flops: convFLOPs(dy.count, weightShape)) {
            try inner.conv2dBackwardWeights(dy, input: input, weightShape: weightShape, stride: stride, padding: padding, withBias: withBias)
        }
    }

    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor { try timed("upsample") { try inner.upsampleNearest2x(x) } }
    public func upsampleNearest2xBackward(_ dy: Tensor) throws -> Tensor {
        try timed("upsample backward") { try inner.upsampleNearest2xBackward(dy) }
    }

    private func normName(_ l: NormLayout) -> String { l.spatial == 1 && l.groups == 1 ? "layer norm" : "group norm" }
    public func norm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, layout: NormLayout) throws -> (y: Tensor, mean: Tensor, rstd: Tensor) {
        try timed(normName(layout)) { try inner.norm(x, gamma: gamma, beta: beta, layout: layout) }
    }
    public func normBackward(_ dy: Tensor, x: Tensor, gamma: Tensor?, mean: Tensor, rstd: Tensor, layout: NormLayout,
                             needParams: Bool) throws -> (dx: Tensor, dgamma: Tensor?, dbeta: Tensor?) {
        try timed("\(normName(layout)) backward") {
            try inner.normBackward(dy, x: x, gamma: gamma, mean: mean, rstd: rstd, layout: layout, needParams: needParams)
        }
    }

    public func softmax(_ x: Tensor) throws -> Tensor { try timed("softmax") { try inner.softmax(x) } }
    public func softmaxBackward(y: Tensor, dy: Tensor) throws -> Tensor { try timed("softmax backward") { try inner.softmaxBackward(y: y, dy: dy) } }

    private func attentionName(_ kind: String, _ q: Tensor, _ k: Tensor) -> String {
        let r = q.rank
        return "\(kind) \(q.count / max(q.shape[r - 2] * q.shape[r - 1], 1))x\(q.shape[r - 2]) queries, \(k.shape[r - 2]) keys, d\(q.shape[r - 1])"
    }
    private func attentionFLOPs(_ q: Tensor, _ k: Tensor, _ v: Tensor) -> Int {
        let r = q.rank
        return 2 * q.count * k.shape[r - 2] + 2 * (q.count / max(q.shape[r - 1], 1)) * k.shape[r - 2] * v.shape[r - 1]
    }
    public func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, causal: Bool) throws -> (out: Tensor, lse: Tensor) {
        try timed(attentionName("attention", q, k), flops: attentionFLOPs(q, k, v)) {
            try inner.attention(q: q, k: k, v: v, scale: scale, causal: causal)
        }
    }
    public func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor, scale: Float,
                                  causal: Bool) throws -> (dq: Tensor, dk: Tensor, dv: Tensor) {
        try timed(attentionName("attention backward", q, k), flops: 2 * attentionFLOPs(q, k, v)) {
            try inner.attentionBackward(q: q, k: k, v: v, out: out, lse: lse, dout: dout, scale: scale, causal: causal)
        }
    }

    public func geglu(_ x: Tensor) throws -> Tensor { try timed("geglu") { try inner.geglu(x) } }
    public func gegluBackward(x: Tensor, dy: Tensor) throws -> Tensor { try timed("geglu backward") { try inner.gegluBackward(x: x, dy: dy) } }
    public func embedding(ids: [Int], weight: Tensor) throws -> Tensor { try timed("embedding") { try inner.embedding(ids: ids, weight: weight) } }
    public func embeddingBackward(ids: [Int], dy: Tensor, vocabulary: Int) throws -> Tensor {
        try timed("embedding backward") { try inner.embeddingBackward(ids: ids, dy: dy, vocabulary: vocabulary) }
    }
}

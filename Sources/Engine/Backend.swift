import Synchronization

/// Element-wise unary functions.
public enum UnaryOp: Sendable, Equatable {
    case gelu, geluTanh, quickGelu, silu, exp, log, sqrt, neg, square
    case clamp(min: Float, max: Float)
}

/// Element-wise binary functions (broadcasting).
public enum BinaryOp: Sendable {
    case add, sub, mul, div
}

/// The primitives a compute device implements. Everything else in the engine (layers, losses,
/// autograd) is composed from these, so a new backend implements this protocol and nothing more.
///
/// Conventions: inputs are f32, except the weight operands of `matmul` (`b`), `conv2d` and
/// `conv2dBackwardData`, which may also be frozen f16/bf16 tensors that the backend widens to f32
/// inside the operation; arguments documented as "any strides" may be views (the backend copies
/// when it needs to); all others must be contiguous. Results are new contiguous f32 tensors.
public protocol Backend: AnyObject, Sendable {
    var name: String { get }

    /// Copies `src` (any strides) into `dst` (any strides, same shape).
    func copy(_ src: Tensor, into dst: Tensor) throws
    /// Converts between storage dtypes (contiguous in and out).
    func convert(_ x: Tensor, to dtype: DType) throws -> Tensor

    func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor
    /// dx = dy * op'(x); `y` is op(x) when the derivative can use it.
    func unaryBackward(_ op: UnaryOp, x: Tensor, y: Tensor?, dy: Tensor) throws -> Tensor
    /// a op b with a and b views (any strides, stride 0 where broadcast) of shape `shape`.
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) throws -> Tensor
    /// x * mul + add.
    func affine(_ x: Tensor, mul: Float, add: Float) throws -> Tensor

    /// Sums of each row of x viewed as [rows, cols].
    func rowSum(_ x: Tensor, rows: Int, cols: Int) throws -> Tensor
    /// Mean and population variance of each row of x viewed as [rows, cols].
    func rowMeanVar(_ x: Tensor, rows: Int, cols: Int) throws -> (mean: Tensor, variance: Tensor)

    /// Batched matrix product a [..., M, K] @ b [..., K, N] (or b [K, N] shared), any strides,
    /// plus `bias` [N] added to every row and `addend` (contiguous, the output's shape) when given;
    /// fused: the output starts as addend + bias and the product accumulates onto it (a residual
    /// connection costs no pass of its own).
    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?, adding addend: Tensor?) throws -> Tensor

    /// 2-D convolution, NCHW / OIHW, square kernel, symmetric padding, plus `residual` (contiguous,
    /// the output's shape) when given, added as the output is written where the algorithm allows.
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, adding residual: Tensor?) throws -> Tensor
    func conv2dBackwardData(_ dy: Tensor, weight: Tensor, inputShape: [Int], stride: Int, padding: Int) throws -> Tensor
    func conv2dBackwardWeights(_ dy: Tensor, input: Tensor, weightShape: [Int], stride: Int, padding: Int,
                               withBias: Bool) throws -> (weight: Tensor, bias: Tensor?)

    func upsampleNearest2x(_ x: Tensor) throws -> Tensor
    func upsampleNearest2xBackward(_ dy: Tensor) throws -> Tensor

    /// Normalisation of `layout.rows` rows (group or layer norm, see `NormLayout`), followed by SiLU
    /// when `layout.thenSiLU` (forward only: `normBackward` is never called for such a layout).
    func norm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, layout: NormLayout) throws -> (y: Tensor, mean: Tensor, rstd: Tensor)
    func normBackward(_ dy: Tensor, x: Tensor, gamma: Tensor?, mean: Tensor, rstd: Tensor, layout: NormLayout,
                      needParams: Bool) throws -> (dx: Tensor, dgamma: Tensor?, dbeta: Tensor?)

    /// Softmax over the last dimension.
    func softmax(_ x: Tensor) throws -> Tensor
    func softmaxBackward(y: Tensor, dy: Tensor) throws -> Tensor

    /// Memory-bounded attention on q [S..., Lq, D], k [S..., Lk, D], v [S..., Lk, Dv] (equal leading
    /// dimensions; any strides); returns the output [S..., Lq, Dv], laid out as the backend chooses,
    /// and the log-sum-exp of each score row, [S, Lq] with S the product of the leading dimensions.
    func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, causal: Bool) throws -> (out: Tensor, lse: Tensor)
    /// Gradients of `attention` for contiguous q [S, Lq, D], k, v, out and dout.
    func attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dout: Tensor, scale: Float,
                           causal: Bool) throws -> (dq: Tensor, dk: Tensor, dv: Tensor)

    /// x [..., 2H] -> x[..., :H] * gelu(x[..., H:]).
    func geglu(_ x: Tensor) throws -> Tensor
    func gegluBackward(x: Tensor, dy: Tensor) throws -> Tensor

    /// Rows of `weight` [V, D] at `ids`.
    func embedding(ids: [Int], weight: Tensor) throws -> Tensor
    /// Scatter-add of dy [n, D] into a zero [V, D].
    func embeddingBackward(ids: [Int], dy: Tensor, vocabulary: Int) throws -> Tensor
}

/// How a normalisation views its input: `rows` rows of `length` elements normalised independently,
/// with per-channel affine parameters; element j of row r belongs to channel
/// `(r % groups) * channelsPerGroup + j / spatial`.
public struct NormLayout: Sendable, Equatable {
    public var rows: Int, length: Int, groups: Int, channelsPerGroup: Int, spatial: Int
    public var eps: Float
    /// Whether the forward result goes through SiLU too (group norm + SiLU read and written once).
    public var thenSiLU = false

    /// GroupNorm over [N, C, spatial...].
    public static func group(_ shape: [Int], groups: Int, eps: Float) -> NormLayout {
        let n = shape[0], c = shape[1], s = shape.dropFirst(2).reduce(1, *)
        return NormLayout(rows: n * groups, length: c / groups * s, groups: groups, channelsPerGroup: c / groups, spatial: s, eps: eps)
    }

    /// LayerNorm over the last dimension.
    public static func layer(_ shape: [Int], eps: Float) -> NormLayout {
        let d = shape.last ?? 1
        return NormLayout(rows: shape.dropLast().reduce(1, *), length: d, groups: 1, channelsPerGroup: d, spatial: 1, eps: eps)
    }
}

/// The engine's process-wide settings.
public enum Engine {
    private static let selected = Mutex<any Backend>(Engine.cpu)

    /// A backend choice confined to a task tree (see `withBackend`).
    private final class Scope: @unchecked Sendable {
        let current: Mutex<any Backend>
        init(_ backend: any Backend) { current = Mutex(backend) }
    }
    @TaskLocal private static var scope: Scope?

    /// The backend new tensors are computed on: the current `withBackend` scope's, else the
    /// process-wide choice (`use`), initially the CPU.
    public static var backend: any Backend { scope?.current.withLock { $0 } ?? selected.withLock { $0 } }

    /// Makes `backend` the backend of the current `withBackend` scope, or the process-wide one
    /// outside any scope. Tensors made on the previous backend stay usable: their elements move
    /// through host memory when the new backend first reads them.
    public static func use(_ backend: any Backend) {
        if let scope { scope.current.withLock { $0 = backend } } else { selected.withLock { $0 = backend } }
    }

    /// Runs `body` in a scope whose backend starts as `backend`: the current task (and tasks it
    /// creates) compute there, and `use` inside changes only the scope, never the process-wide
    /// choice (tests compare backends side by side, and run the shell's `backend` command, this way).
    public static func withBackend<T>(_ backend: any Backend, _ body: () throws -> T) rethrows -> T {
        try $scope.withValue(Scope(backend)) { try body() }
    }

    /// Threads used by the CPU kernels (and OpenBLAS). Defaults to the online cores, or SDSHELL_THREADS.
    public static var threads: Int {
        get { CPUBackend.threads }
        set { CPUBackend.threads = newValue }
    }
}

extension Backend {
    /// The convolution with nothing added.
    func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, adding: nil)
    }

    /// a @ b (+ bias), nothing added.
    func matmul(_ a: Tensor, _ b: Tensor, bias: Tensor?) throws -> Tensor { try matmul(a, b, bias: bias, adding: nil) }

    /// A frozen 16-bit weight widened to f32 for one operation: the same shape, strides and offset
    /// over a temporary f32 copy of its whole storage (weights are whole storages or views of one),
    /// made by this backend's `convert`, so it lives where the backend computes while the 16-bit
    /// storage stays resident. f32 passes through.
    func widened(_ w: Tensor) throws -> Tensor {
        guard w.dtype != .f32 else { return w }
        let whole = try convert(Tensor(storage: w.storage, shape: [w.storage.count], strides: [1]), to: .f32)
        return Tensor(storage: whole.storage, shape: w.shape, strides: w.strides, offset: w.offset)
    }
}

/// Gradient clipping before the optimizer step, as torch's `clip_grad_value_` and
/// `clip_grad_norm_` (2-norm) that A1111's `clip_grad` setting calls.
public enum GradientClipping: Sendable, Equatable {
    /// Each component clamped to [-limit, limit].
    case value(Float)
    /// The whole gradient scaled by min(1, limit / (norm + 1e-6)).
    case norm(Float)

    /// Parses `value:X` or `norm:X`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let limit = Float(parts[1]), limit > 0, limit.isFinite else { return nil }
        switch parts[0].lowercased() {
        case "value": self = .value(limit)
        case "norm": self = .norm(limit)
        default: return nil
        }
    }

    /// Clips the gradient in place (torch's float32 arithmetic: the norm is accumulated in float).
    public func apply(_ g: inout [Float]) {
        switch self {
        case let .value(limit):
            for i in g.indices { g[i] = min(max(g[i], -limit), limit) }
        case let .norm(limit):
            var sum: Float = 0
            for x in g { sum += x * x }
            let coefficient = min(limit / (sum.squareRoot() + 1e-6), 1)
            for i in g.indices { g[i] *= coefficient }
        }
    }
}

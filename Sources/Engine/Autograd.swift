/// Reverse-mode automatic differentiation.
///
/// Every differentiable operation that runs while gradients are enabled and has an input that
/// requires a gradient records a `GradNode`: its inputs and a closure mapping the output's gradient
/// to the inputs' gradients. The closures are written with the same public operations (under
/// no-grad), so a backend only implements primitives. `backward()` walks the recorded graph in
/// reverse topological order. Under `withNoGrad` nothing is recorded and nothing is kept alive for
/// a backward pass.
final class GradNode {
    let op: String
    let inputs: [Tensor]
    let backward: (Tensor) throws -> [Tensor?]

    init(op: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.op = op
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether operations record gradients.
public enum GradMode {
    @TaskLocal static var enabled = true

    /// True when operations currently record the graph.
    public static var isEnabled: Bool { enabled }
}

/// Runs `body` without recording gradients (inference; nothing is saved for backward).
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$enabled.withValue(false) { try body() }
}

extension Tensor {
    /// Attaches a node to `result` when gradients are enabled and any input needs one.
    @discardableResult
    func recording(_ op: String, inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        if GradMode.enabled, inputs.contains(where: { $0.requiresGrad }) {
            requiresGrad = true
            node = GradNode(op: op, inputs: inputs, backward: backward)
        }
        return self
    }

    /// Computes gradients of this tensor with respect to every leaf that requires one, seeding with
    /// `gradient` (ones for a scalar when nil). Leaves accumulate into `grad`.
    public func backward(gradient: Tensor? = nil) throws {
        guard requiresGrad else {
            throw EngineError.invalidArgument(op: "backward", message: "the tensor does not require a gradient (made under no-grad, or from inputs that need none)")
        }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw EngineError.shapeMismatch(op: "backward", shapes: [shape, gradient.shape], reason: "seed gradient must match the output")
            }
            seed = gradient
        } else {
            guard count == 1 else {
                throw EngineError.invalidArgument(op: "backward", message: "a gradient is needed for non-scalar output \(Shape.describe(shape))")
            }
            seed = try Tensor.full(shape, 1)
        }
        // Topological order by iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if visited.contains(ObjectIdentifier(t)) { continue }
            visited.insert(ObjectIdentifier(t))
            stack.append((t, true))
            for input in t.node?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        try withNoGrad {
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                guard let node = t.node else {
                    t.grad = try t.grad.map { try $0 + g } ?? g.contiguous()
                    continue
                }
                let inputGrads = try node.backward(g)
                for (input, ig) in zip(node.inputs, inputGrads) {
                    guard input.requiresGrad, let ig else { continue }
                    guard ig.shape == input.shape else {
                        throw EngineError.shapeMismatch(op: "backward of \(node.op)", shapes: [input.shape, ig.shape],
                                                        reason: "gradient shape differs from input shape")
                    }
                    let key = ObjectIdentifier(input)
                    grads[key] = try grads[key].map { try $0 + ig } ?? ig
                }
            }
        }
    }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// The same data, cut from the graph.
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape, strides: strides, offset: offset)
    }
}

extension Tensor {
    /// `body(inputs)` as one recompute segment (activation checkpointing): the forward pass keeps
    /// none of the segment's intermediate results, only its output; the backward pass runs `body`
    /// again with recording and backpropagates through that run. The gradients are the same bits
    /// as without checkpointing (the same operations run on the same values); the memory held for
    /// backward is one segment's at a time, for a second forward pass of it. Every tensor the
    /// segment needs a gradient for must be among `inputs`: gradients of tensors `body` captures
    /// reach only leaves.
    public static func checkpointed(_ inputs: [Tensor], _ body: @escaping ([Tensor]) throws -> Tensor) throws -> Tensor {
        guard GradMode.enabled, inputs.contains(where: { $0.requiresGrad }) else { return try body(inputs) }
        let output = try withNoGrad { try body(inputs) }
        return output.recording("checkpoint", inputs: inputs) { gradient in
            let leaves = inputs.map { input -> Tensor in
                let leaf = input.detached()
                leaf.requiresGrad = input.requiresGrad
                return leaf
            }
            let again = try GradMode.$enabled.withValue(true) { try body(leaves) }
            try again.backward(gradient: gradient)
            return leaves.map { $0.requiresGrad ? $0.grad : nil }
        }
    }
}

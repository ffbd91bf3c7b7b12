import Engine
import Foundation

/// One reference case written by Tests/Fixtures/generators/make_engine_fixtures.py (PyTorch, f32).
struct ReferenceCase: Sendable, CustomStringConvertible {
    struct Values: Sendable {
        let shape: [Int]
        let data: [Double]
        func tensor(requiresGrad: Bool = false) throws -> Tensor {
            try Tensor(shape: shape, data: data.map { Float($0) }, requiresGrad: requiresGrad)
        }
        var ints: [Int] { data.map { Int($0) } }
    }
    let name: String
    let op: String
    let attrs: [String: Double]
    let flags: [String: Bool]
    let dims: [Int]
    let inputs: [String: Values]
    let inputOrder: [String]
    let outputs: [Values]
    let gradOutputs: [Values]
    let grads: [String: Values]

    var description: String { name }
}

/// Loads the committed fixture file once.
enum Fixtures {
    static let cases: [ReferenceCase] = {
        guard let url = Bundle.module.url(forResource: "engine_ops", withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let raw = root["cases"] as? [[String: Any]] else {
            fatalError("Fixtures/engine_ops.json is missing or unreadable; regenerate with Tests/Fixtures/generators/make_engine_fixtures.py")
        }
        return raw.map(parseCase)
    }()

    static func named(_ name: String) -> ReferenceCase { cases.first { $0.name == name }! }

    private static func number(_ v: Any) -> Double {
        if let d = v as? Double { return d }
        if let n = v as? NSNumber { return n.doubleValue }
        if let s = v as? String { return s.hasPrefix("-") ? -.infinity : (s == "nan" ? .nan : .infinity) }
        return .nan
    }

    private static func values(_ v: Any?) -> ReferenceCase.Values {
        let d = v as? [String: Any] ?? [:]
        return .init(shape: (d["shape"] as? [Int]) ?? [], data: ((d["data"] as? [Any]) ?? []).map(number))
    }

    /// Attribute names that hold booleans (JSON booleans and numbers both bridge to NSNumber).
    private static let booleanAttributes: Set<String> = ["causal", "flip_sin_to_cos", "keepdim"]

    private static func parseCase(_ c: [String: Any]) -> ReferenceCase {
        let attrs = c["attrs"] as? [String: Any] ?? [:]
        var numbers: [String: Double] = [:], flags: [String: Bool] = [:]
        for (k, v) in attrs {
            if booleanAttributes.contains(k), let b = v as? Bool { flags[k] = b } else if let n = v as? NSNumber { numbers[k] = n.doubleValue }
        }
        let inputsRaw = c["inputs"] as? [String: Any] ?? [:]
        return ReferenceCase(
            name: c["name"] as? String ?? "?", op: c["op"] as? String ?? "?", attrs: numbers, flags: flags,
            dims: attrs["dims"] as? [Int] ?? [],
            inputs: inputsRaw.mapValues { values($0) }, inputOrder: inputsRaw.keys.sorted(),
            outputs: (c["outputs"] as? [Any] ?? []).map { values($0) },
            gradOutputs: (c["grad_outputs"] as? [Any] ?? []).map { values($0) },
            grads: (c["grads"] as? [String: Any] ?? [:]).mapValues { values($0) })
    }
}

/// Runs a fixture case's operation on the engine: the inputs by name to the outputs.
enum CaseRunner {
    static func run(_ c: ReferenceCase, _ x: [String: Tensor]) throws -> [Tensor] {
        func a(_ k: String, _ d: Double = 0) -> Double { c.attrs[k] ?? d }
        switch c.op {
        case "matmul": return [try x["a"]!.matmul(x["b"]!)]
        case "matmul_at": return [try x["a"]!.transposed().matmul(x["b"]!)]
        case "linear": return [try x["x"]!.linear(weight: x["weight"]!, bias: x["bias"])]
        case "conv2d":
            return [try x["x"]!.conv2d(weight: x["weight"]!, bias: x["bias"], stride: Int(a("stride", 1)), padding: Int(a("padding")))]
        case "upsample_nearest2x": return [try x["x"]!.upsampleNearest2x()]
        case "group_norm":
            return [try x["x"]!.groupNorm(groups: Int(a("groups")), weight: x["weight"], bias: x["bias"], eps: Float(a("eps")))]
        case "layer_norm": return [try x["x"]!.layerNorm(weight: x["weight"], bias: x["bias"], eps: Float(a("eps")))]
        case "softmax": return [try x["x"]!.softmax(dim: Int(a("dim", -1)))]
        case "sdpa": return [try Tensor.scaledDotProductAttention(q: x["q"]!, k: x["k"]!, v: x["v"]!, causal: c.flags["causal"] ?? false)]
        case "gelu": return [try x["x"]!.gelu()]
        case "gelu_tanh": return [try x["x"]!.geluTanh()]
        case "quick_gelu": return [try x["x"]!.quickGelu()]
        case "silu": return [try x["x"]!.silu()]
        case "exp": return [try x["x"]!.exp()]
        case "log": return [try x["x"]!.log()]
        case "sqrt": return [try x["x"]!.sqrt()]
        case "clamp": return [try x["x"]!.clamped(min: Float(a("min")), max: Float(a("max")))]
        case "geglu": return [try x["x"]!.geglu()]
        case "embedding": return [try Tensor.embedding(ids: c.inputs["ids"]!.ints, weight: x["weight"]!)]
        case "add": return [try x["a"]! + x["b"]!]
        case "sub": return [try x["a"]! - x["b"]!]
        case "mul": return [try x["a"]! * x["b"]!]
        case "div": return [try x["a"]! / x["b"]!]
        case "add_scalar": return [try x["x"]! + Float(a("scalar"))]
        case "mul_scalar": return [try x["x"]! * Float(a("scalar"))]
        case "concat": return [try Tensor.concat([x["a"]!, x["b"]!], dim: Int(a("dim")))]
        case "chunk": return try x["x"]!.chunked(Int(a("chunks")), dim: Int(a("dim")))
        case "sum": return [try x["x"]!.sum(dims: c.dims, keepDim: c.flags["keepdim"] ?? false)]
        case "mean": return [try x["x"]!.mean(dims: c.dims, keepDim: c.flags["keepdim"] ?? false)]
        case "var": return [try x["x"]!.variance(dims: c.dims, keepDim: c.flags["keepdim"] ?? false)]
        case "timestep_embedding":
            return [try Tensor.timestepEmbedding(c.inputs["timesteps"]!.data.map { Float($0) }, dim: Int(a("dim")),
                                                 flipSinToCos: c.flags["flip_sin_to_cos"] ?? true,
                                                 downscaleFreqShift: Float(a("downscale_freq_shift")),
                                                 maxPeriod: Float(a("max_period", 10000)))]
        default: throw EngineError.invalidArgument(op: c.op, message: "no runner for fixture op")
        }
    }

    /// Input tensors (float inputs require grad when the case has a reference gradient for them).
    static func inputs(_ c: ReferenceCase, requiresGrad: Bool = true) throws -> [String: Tensor] {
        var x: [String: Tensor] = [:]
        for (k, v) in c.inputs where k != "ids" && k != "timesteps" {
            x[k] = try v.tensor(requiresGrad: requiresGrad && c.grads[k] != nil)
        }
        return x
    }
}

/// Comparison helpers.
enum Compare {
    /// max |a - b| / max(max |b|, 1e-30): error relative to the reference's magnitude.
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
        var maxDiff = 0.0, maxRef = 0.0
        for (x, y) in zip(a, b) {
            if y.isInfinite { if Double(x) != y { return .infinity }; continue }
            maxDiff = max(maxDiff, abs(Double(x) - y)); maxRef = max(maxRef, abs(y))
        }
        return maxDiff / max(maxRef, 1e-30)
    }
}

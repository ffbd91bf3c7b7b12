import Engine
import Foundation
import Formats

/// The optimizer state saved beside an embedding as `NAME.pt.optim`, in A1111's form:
/// `{'hash': checksum, 'optimizer_state_dict': torch AdamW state_dict}`. A1111 (and sdshell) use it
/// only when `hash` equals the checksum of the embedding's vectors, so a state saved for other
/// vectors is never applied.
public enum OptimizerStateFile {
    /// A1111's legacy 4-hex checksum of an embedding's vectors: over `v * 100` (float32),
    /// `r = ((r * 281) ^ (trunc(v) * 997)) mod 2^32`, printed as the low 16 bits.
    public static func checksum(_ vectors: [Float]) -> String {
        var r: UInt64 = 0
        for value in vectors {
            let scaled = value * 100
            // Python's int() truncates toward zero; only the low 32 bits of the product matter.
            let truncated: Int64 = scaled.isFinite && abs(scaled) < 9.2e18 ? Int64(scaled) : 0
            let term = UInt64(bitPattern: truncated &* 997) & 0xFFFF_FFFF
            r = ((r &* 281) ^ term) & 0xFFFF_FFFF
        }
        return String(format: "%04x", r & 0xFFFF)
    }

    /// Writes `optimizer`'s state for the vectors `vectors` (shape `[count, width]`) atomically.
    /// `extra` (sdshell's own resume state, JSON) goes under the key `sdshell`, which A1111 ignores.
    public static func save(_ optimizer: AdamW, vectors: [Float], shape: [Int], extra: String? = nil, to path: String) throws {
        let moments = { (values: [Float]) throws -> TorchWriter.Item in .tensor(try Tensor(shape: shape, data: values)) }
        let group: [(String, TorchWriter.Item)] = [
            ("lr", .float(optimizer.lr)), ("betas", .tuple([.float(optimizer.beta1), .float(optimizer.beta2)])),
            ("eps", .float(optimizer.eps)), ("weight_decay", .float(optimizer.weightDecay)), ("amsgrad", .bool(false)),
            ("maximize", .bool(false)), ("foreach", .none), ("capturable", .bool(false)), ("differentiable", .bool(false)),
            ("fused", .none), ("decoupled_weight_decay", .bool(true)), ("params", .list([.int(0)])),
        ]
        let state: TorchWriter.Item = .dict([
            ("step", .tensor(try Tensor(shape: [], data: [Float(optimizer.step)]))),
            ("exp_avg", try moments(optimizer.expAvg)), ("exp_avg_sq", try moments(optimizer.expAvgSq)),
        ])
        var root: [(String, TorchWriter.Item)] = [
            ("hash", .string(checksum(vectors))),
            ("optimizer_state_dict", .dict([("state", .map([(.int(0), state)])), ("param_groups", .list([.dict(group)]))])),
        ]
        if let extra { root.append(("sdshell", .string(extra))) }
        try TorchWriter.save(.dict(root), to: path)
    }

    /// Reads the optimizer state at `path` for the vectors `vectors`. Returns nil when the file's
    /// hash is not these vectors' checksum (the state belongs to other vectors); a damaged file
    /// or one whose moments do not have the vectors' size is an error naming the file.
    public static func load(_ path: String, vectors: [Float]) throws -> AdamW? {
        try read(path, vectors: vectors)?.optimizer
    }

    /// The optimizer state and the `sdshell` entry (sdshell's resume state, when written by
    /// sdshell) of the file at `path`, read in one pass; nil as for `load`.
    public static func read(_ path: String, vectors: [Float]) throws -> (optimizer: AdamW, extra: String?)? {
        let archive = try TorchArchive(path: path)
        guard case let .dict(root) = archive.root, case let .string(hash)? = root["hash"] else {
            throw FormatError.corrupt(file: path, reason: "not an optimizer state (no 'hash')")
        }
        guard hash == checksum(vectors) else { return nil }
        var extra: String?
        if case let .string(text)? = root["sdshell"] { extra = text }
        guard case let .dict(saved)? = root["optimizer_state_dict"], case let .dict(states)? = saved["state"],
              case let .dict(state)? = states["0"], case let .list(groups)? = saved["param_groups"],
              case let .dict(group)? = groups.items.first else {
            throw FormatError.corrupt(file: path, reason: "no AdamW state for one parameter")
        }
        func values(_ key: String) throws -> [Float] {
            guard case let .tensor(record)? = state[key] else {
                throw FormatError.corrupt(file: path, reason: "optimizer state has no '\(key)' tensor")
            }
            return try archive.tensor(record, name: key).materialize().to(.f32).toArray()
        }
        var optimizer = AdamW(count: vectors.count, lr: number(group["lr"]) ?? 0)
        optimizer.expAvg = try values("exp_avg")
        optimizer.expAvgSq = try values("exp_avg_sq")
        guard optimizer.expAvg.count == vectors.count, optimizer.expAvgSq.count == vectors.count else {
            throw FormatError.corrupt(file: path, reason: "optimizer moments have \(optimizer.expAvg.count) values, the embedding \(vectors.count)")
        }
        if case let .tensor(record)? = state["step"] {
            optimizer.step = Int(try archive.tensor(record, name: "step").materialize().to(.f32).toArray()[0])
        } else if let step = number(state["step"]) {
            optimizer.step = Int(step)   // torch before 1.12 stored the step as a number
        }
        if case let .tuple(betas)? = group["betas"], betas.count == 2, let b1 = number(betas[0]), let b2 = number(betas[1]) {
            optimizer.beta1 = b1; optimizer.beta2 = b2
        }
        optimizer.eps = number(group["eps"]) ?? optimizer.eps
        optimizer.weightDecay = number(group["weight_decay"]) ?? optimizer.weightDecay
        return (optimizer, extra)
    }

    private static func number(_ value: PickleValue?) -> Double? {
        switch value {
        case let .float(f)?: return f
        case let .int(i)?: return Double(i)
        default: return nil
        }
    }
}

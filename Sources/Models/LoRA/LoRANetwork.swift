import Engine
import Formats
import Foundation

/// A LoRA-family network file (kohya LoRA and LoCon, LyCORIS LoHa and LoKr, diffusers/PEFT LoRA;
/// safetensors or torch.save) as A1111's Lora extension reads it: its layers' changes by module
/// name as the file writes it, the embeddings it bundles (`bundle_emb.NAME.*`), its metadata.
public struct LoRANetwork: Sendable {
    public let path: String
    /// The file's stem: the name prompts use (`<lora:NAME:1>`).
    public let name: String
    /// Each layer's change, by the module name in the file ("lora_unet_down_blocks_0_...",
    /// "unet.down_blocks.0....").
    public let modules: [String: LoRAModule]
    /// Embeddings the file carries, by name: their tensors by key ("string_to_param.*", "clip_l", "clip_g", "emb_params").
    public let bundledEmbeddings: [String: [String: StoredTensor]]
    public let metadata: [String: String]

    /// The suffixes a layer's tensors have, and which part each is.
    static let parts: [(suffix: String, part: String)] = [
        (".lora_down.weight", "down"), (".lora_up.weight", "up"), (".lora_mid.weight", "mid"),
        (".lora_A.weight", "down"), (".lora_B.weight", "up"),
        (".hada_w1_a", "w1a"), (".hada_w1_b", "w1b"), (".hada_w2_a", "w2a"), (".hada_w2_b", "w2b"),
        (".hada_t1", "t1"), (".hada_t2", "t2"),
        (".lokr_w1_a", "k1a"), (".lokr_w1_b", "k1b"), (".lokr_w1", "k1"),
        (".lokr_w2_a", "k2a"), (".lokr_w2_b", "k2b"), (".lokr_w2", "k2"), (".lokr_t2", "kt2"),
        (".diff_b", "diff_b"), (".diff", "diff"), (".dora_scale", "dora"), (".alpha", "alpha"),
    ]

    /// Reads `file`; anything that is not a LoRA-family layer is an error naming the file and the key.
    public init(_ file: ModelFile) throws {
        path = file.path
        name = ((file.path as NSString).lastPathComponent as NSString).deletingPathExtension
        metadata = file.metadata
        var layers: [String: [String: StoredTensor]] = [:]
        var bundled: [String: [String: StoredTensor]] = [:]
        for (key, tensor) in file.tensors {
            if key.hasPrefix("bundle_emb.") {
                let rest = key.dropFirst("bundle_emb.".count)
                guard let dot = rest.firstIndex(of: ".") else { continue }
                bundled[String(rest[..<dot]), default: [:]][String(rest[rest.index(after: dot)...])] = tensor
                continue
            }
            guard let (suffix, part) = Self.parts.first(where: { key.hasSuffix($0.suffix) }) else {
                throw FormatError.unsupported(file: file.path, reason: "not a LoRA-family network: \(key.escapingControlCharacters) is no LoRA, LoCon, LoHa, LoKr or PEFT tensor")
            }
            layers[String(key.dropLast(suffix.count)), default: [:]][part] = tensor
        }
        var modules: [String: LoRAModule] = [:]
        for (module, t) in layers {
            func need(_ part: String) throws -> StoredTensor {
                guard let x = t[part] else { throw FormatError.corrupt(file: file.path, reason: "\(module.escapingControlCharacters) has no \(part) tensor") }
                return x
            }
            if t["dora"] != nil || t["t1"] != nil || t["t2"] != nil || t["kt2"] != nil || t["mid"] != nil {
                throw FormatError.unsupported(file: file.path, reason: "\(module.escapingControlCharacters) uses DoRA or a CP-decomposed (Tucker) convolution, which sdshell does not apply yet")
            }
            let alpha = try t["alpha"].map { a -> Float in
                guard a.shape.reduce(1, *) == 1, let v = try a.materialize().to(.f32).toArray().first, v.isFinite else {
                    throw FormatError.corrupt(file: file.path, reason: "\(module.escapingControlCharacters).alpha is not one finite number")
                }
                return v
            }
            let m: LoRAModule
            if t["up"] != nil || t["down"] != nil {
                m = .lora(up: try need("up"), down: try need("down"), alpha: alpha)
            } else if t["w1a"] != nil {
                m = .loha(w1a: try need("w1a"), w1b: try need("w1b"), w2a: try need("w2a"), w2b: try need("w2b"), alpha: alpha)
            } else if t["k1"] != nil || t["k1a"] != nil {
                func factor(_ whole: String, _ a: String, _ b: String) throws -> LoRAModule.Factor {
                    if let w = t[whole] { return .whole(w) }
                    return .product(try need(a), try need(b))
                }
                m = .lokr(w1: try factor("k1", "k1a", "k1b"), w2: try factor("k2", "k2a", "k2b"), alpha: alpha)
            } else if let diff = t["diff"] {
                m = .full(diff: diff)
            } else {
                continue   // an alpha, or a bias difference, alone
            }
            try Self.checkShapes(m, module: module, file: file.path)
            modules[module] = m
        }
        guard !modules.isEmpty || !bundled.isEmpty else {
            throw FormatError.unsupported(file: file.path, reason: "a LoRA file without layers")
        }
        self.modules = modules
        bundledEmbeddings = bundled
    }

    /// Shapes bounded and consistent before anything is multiplied (a damaged or hostile file is
    /// an error, not a trap or a huge allocation).
    static func checkShapes(_ m: LoRAModule, module: String, file: String) throws {
        func rows(_ t: StoredTensor) -> Int { t.shape.first ?? 0 }
        func columns(_ t: StoredTensor) -> Int { t.shape.dropFirst().reduce(1, *) }
        func bad(_ what: String) -> FormatError { .corrupt(file: file, reason: "\(module.escapingControlCharacters): \(what)") }
        let limit = 1 << 28
        switch m {
        case let .lora(up, down, _):
            guard columns(up) == rows(down), rows(down) > 0 else { throw bad("lora_up \(up.shape) does not fit lora_down \(down.shape)") }
            guard rows(up) * columns(down) <= limit else { throw bad("a change of more than \(limit) values") }
        case let .loha(w1a, w1b, w2a, w2b, _):
            guard columns(w1a) == rows(w1b), columns(w2a) == rows(w2b), rows(w1a) == rows(w2a), columns(w1b) == columns(w2b) else {
                throw bad("LoHa factors \(w1a.shape) \(w1b.shape) \(w2a.shape) \(w2b.shape) do not fit")
            }
            guard rows(w1a) * columns(w1b) <= limit else { throw bad("a change of more than \(limit) values") }
        case let .lokr(w1, w2, _):
            func size(_ f: LoRAModule.Factor) throws -> (Int, Int) {
                switch f {
                case let .whole(w): return (rows(w), columns(w))
                case let .product(a, b):
                    guard columns(a) == rows(b) else { throw bad("LoKr factors \(a.shape) \(b.shape) do not fit") }
                    return (rows(a), columns(b))
                }
            }
            let (a, b) = try size(w1), (c, d) = try size(w2)
            guard a * c * b * d <= limit, a * b * c * d > 0 else { throw bad("a LoKr change of \(a * c)x\(b * d)") }
        case let .full(diff):
            guard diff.shape.reduce(1, *) <= limit else { throw bad("a change of more than \(limit) values") }
        }
    }

    /// The model family the file says it was trained for (kohya's `ss_base_model_version`, or its keys).
    public var familyHint: String? {
        if let v = metadata["ss_base_model_version"] {
            if v.contains("sdxl") { return "SDXL" }
            if v.hasPrefix("sd_v2") || v.contains("v2") { return "SD 2.x" }
            if v.hasPrefix("sd_v1") { return "SD 1.x" }
        }
        if modules.keys.contains(where: { $0.hasPrefix("lora_te1_") || $0.hasPrefix("lora_te2_") || $0.hasPrefix("text_encoder_2.") }) { return "SDXL" }
        return nil
    }

    /// The rank most layers have (for listings).
    public var rank: Int? {
        var counts: [Int: Int] = [:]
        for m in modules.values { if let r = m.rank { counts[r, default: 0] += 1 } }
        return counts.max { $0.value < $1.value }?.key
    }

    /// The kinds of layer change the file has ("LoRA", "LoCon", "LoHa", "LoKr", "full").
    public var kinds: [String] {
        var out = Set<String>()
        for m in modules.values {
            switch m {
            case let .lora(_, down, _): out.insert(down.shape.count == 4 && (down.shape[2] > 1 || down.shape[3] > 1) ? "LoCon" : "LoRA")
            case .loha: out.insert("LoHa")
            case .lokr: out.insert("LoKr")
            case .full: out.insert("full")
            }
        }
        return out.sorted()
    }
}

import Diffusion

/// One session setting: its name, default, meaning, and how a value is checked and normalised.
public struct SettingDefinition: Sendable {
    public let name: String
    /// nil: no fixed default (`size` follows the model, `eta`/`s_noise` the sampler).
    public let defaultValue: Value?
    public let help: String
    /// Values offered by tab completion.
    public let choices: [String]
    let check: @Sendable (Value) throws(SettingError) -> Value

    init(_ name: String, _ defaultValue: Value?, _ help: String, choices: [String] = [],
         check: @escaping @Sendable (Value) throws(SettingError) -> Value) {
        self.name = name; self.defaultValue = defaultValue; self.help = help; self.choices = choices; self.check = check
    }
}

/// Why a value does not fit a setting (the caller adds the position).
public struct SettingError: Error, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
}

/// The settings table of the language contract (docs/sdscript.md).
public enum Settings {
    static func integer(_ name: String, min: Int64? = nil, max: Int64? = nil) -> @Sendable (Value) throws(SettingError) -> Value {
        { v throws(SettingError) in
            guard case let .integer(i) = v else { throw SettingError("\(name) must be an integer, not \(v.kindName)") }
            if let min, i < min { throw SettingError("\(name) must be at least \(min) (got \(i))") }
            if let max, i > max { throw SettingError("\(name) must be at most \(max) (got \(i))") }
            return v
        }
    }

    /// A finite number within `range` (an integer is taken as a real).
    static func real(_ name: String, _ range: ClosedRange<Double>) -> @Sendable (Value) throws(SettingError) -> Value {
        { v throws(SettingError) in
            let x: Double
            switch v {
            case let .integer(i): x = Double(i)
            case let .real(r): x = r
            default: throw SettingError("\(name) must be a number, not \(v.kindName)")
            }
            guard x.isFinite, range.contains(x) else {
                throw SettingError("\(name) must be between \(Value.real(range.lowerBound).literal) and \(Value.real(range.upperBound).literal) (got \(v.literal))")
            }
            return .real(x)
        }
    }

    /// A string; `path` settings refuse the empty string (it would name the file system's root).
    static func string(_ name: String, path: Bool = false) -> @Sendable (Value) throws(SettingError) -> Value {
        { v throws(SettingError) in
            guard case let .string(s) = v else { throw SettingError("\(name) must be a string, not \(v.kindName)") }
            if path, s.isEmpty { throw SettingError("\(name) must name a folder, not be empty (\"\" would write at the file system's root)") }
            return v
        }
    }

    /// Bounds that keep a generation's sizes and loops within what a machine can hold (A1111's
    /// own interface stops far below them: 150 steps, batch 8, 2048 pixels).
    public static let maximumSteps: Int64 = 10_000
    public static let maximumBatch: Int64 = 64
    public static let maximumCount: Int64 = 100_000
    public static let maximumSide = 8192

    static func choice(_ name: String, _ allowed: [String]) -> @Sendable (Value) throws(SettingError) -> Value {
        { v throws(SettingError) in
            guard case let .string(s) = v else { throw SettingError("\(name) must be a string, not \(v.kindName)") }
            guard let match = allowed.first(where: { $0.lowercased() == s.lowercased() }) else {
                throw SettingError("unknown \(name) \"\(s)\"\(NameSuggestion.hint(s, in: allowed)); known: \(allowed.joined(separator: ", "))")
            }
            return .string(match)
        }
    }

    public static let samplerNames = Sampler.allCases.map(\.rawValue)
    /// A1111's samplers that sdshell does not have yet: named as such, not "corrected" to a
    /// similar name (PLMS is not LMS).
    static let notYetImplementedSamplers = ["PLMS", "UniPC", "DPM++ 2M SDE Heun", "DPM++ 3M SDE", "DPM fast", "DPM adaptive", "Restart",
                                            "LCM", "DDIM CFG++", "Heun++ 2"]
    public static let scheduleNames = ["automatic"] + NoiseSchedule.Kind.allCases.map(\.rawValue)

    public static let definitions: [SettingDefinition] = [
        SettingDefinition("sampler", .string("Euler a"), "A1111 sampler name", choices: samplerNames) { v throws(SettingError) in
            guard case let .string(s) = v else { throw SettingError("sampler must be a string, not \(v.kindName)") }
            guard let (sampler, implied) = Sampler.named(s) else {
                if let a1111 = notYetImplementedSamplers.first(where: { $0.lowercased() == s.lowercased() }) {
                    throw SettingError("the sampler \"\(a1111)\" is not implemented in sdshell yet; known: \(samplerNames.joined(separator: ", "))")
                }
                throw SettingError("unknown sampler \"\(s)\"\(NameSuggestion.hint(s, in: samplerNames)); known: \(samplerNames.joined(separator: ", "))")
            }
            // Old combined names ("DPM++ 2M Karras") keep their schedule in the name.
            return .string(implied == nil ? sampler.rawValue : "\(sampler.rawValue) \(implied!.displayName)")
        },
        SettingDefinition("schedule", .string("automatic"), "A1111 schedule type", choices: scheduleNames, check: choice("schedule", scheduleNames)),
        SettingDefinition("steps", .integer(20), "sampling steps", check: integer("steps", min: 1, max: maximumSteps)),
        SettingDefinition("cfg", .real(7), "classifier-free guidance scale", check: real("cfg", -100...100)),
        SettingDefinition("seed", .integer(-1), "-1 picks a random seed", check: integer("seed", min: -1)),
        SettingDefinition("subseed", .integer(-1), "A1111 variation seed", check: integer("subseed", min: -1)),
        SettingDefinition("subseed_strength", .real(0), "variation strength", check: real("subseed_strength", 0...1)),
        SettingDefinition("size", nil, "WIDTHxHEIGHT, multiples of 8 (default: the model's native size)") { v throws(SettingError) in
            guard case let .size(w, h) = v else { throw SettingError("size must be a size like 512x512, not \(v.kindName)") }
            guard w > 0, h > 0, w % 8 == 0, h % 8 == 0 else { throw SettingError("size \(w)x\(h) must be positive multiples of 8") }
            guard w <= maximumSide, h <= maximumSide else { throw SettingError("size \(w)x\(h) is larger than \(maximumSide) pixels a side") }
            return v
        },
        SettingDefinition("batch", .integer(1), "images per batch", check: integer("batch", min: 1, max: maximumBatch)),
        SettingDefinition("count", .integer(1), "batches per statement", check: integer("count", min: 1, max: maximumCount)),
        SettingDefinition("negative", .string(""), "negative prompt", check: string("negative")),
        SettingDefinition("clip_skip", .integer(1), "CLIP layers skipped from the end (1: none)", check: integer("clip_skip", min: 1)),
        SettingDefinition("eta", nil, "ancestral noise multiplier (default 1)", check: real("eta", 0...100)),
        SettingDefinition("s_noise", nil, "noise scale of stochastic samplers (default 1)", check: real("s_noise", 0...100)),
        SettingDefinition("vae_tiling", nil, "decode larger-than-native images in tiles, as diffusers' enable_tiling (less memory)",
                          choices: ["true", "false"]) { v throws(SettingError) in
            guard case .boolean = v else { throw SettingError("vae_tiling must be true or false, not \(v.kindName)") }
            return v
        },
        SettingDefinition("rng", .string("nv"), "nv (A1111's GPU source, its default: NV/Philox) or cpu (torch CPU generator)", choices: ["cpu", "nv"],
                          check: choice("rng", ["cpu", "nv"])),
        SettingDefinition("backend", .string("cpu"), "compute backend", choices: ["cpu", "opencl"], check: choice("backend", ["cpu", "opencl"])),
        SettingDefinition("outdir", .string("outputs"), "where images, grids and journals go", check: string("outdir", path: true)),
        SettingDefinition("embeddings_dir", .string("embeddings"), "embeddings directory, or a list of them") { v throws(SettingError) in
            switch v {
            case .string(""): throw SettingError("embeddings_dir must name a folder, not be empty")
            case .string: return v
            case .list([]): throw SettingError("embeddings_dir must name at least one folder (got an empty list)")
            case let .list(items) where items.allSatisfy({ if case let .string(s) = $0 { return !s.isEmpty }; return false }): return v
            default: throw SettingError("embeddings_dir must be a folder or a list of folders (non-empty strings), not \(v.literal)")
            }
        },
        SettingDefinition("models_dir", .string("models"), "where bare model names are looked up", check: string("models_dir", path: true)),
        SettingDefinition("inline", .boolean(false), "show finished images inline (kitty, iTerm2)", choices: ["true", "false"]) { v throws(SettingError) in
            guard case .boolean = v else { throw SettingError("inline must be true or false, not \(v.kindName)") }
            return v
        },
    ]

    public static let names = definitions.map(\.name)
    public static func definition(_ name: String) -> SettingDefinition? { definitions.first { $0.name == name } }
}

import Formats

/// The table of generation parameters: one row per parameter with its script name, default,
/// check, `GenerationSettings` field, A1111 infotext key and grid axis label. Script settings and
/// statement options, pasted infotext, infotext writing, grid labels, the journal's explicit
/// statements, `help generate` and `sdshell generate` all read it: a new parameter is a new row.
///
/// The rows are in A1111's infotext order (processing.py `create_infotext`, then its
/// `extra_generation_params`), which is also the order journals, `show` and help list them.
public enum GenerationParameters {
    /// Bounds that keep a generation's sizes and loops within what a machine can hold (A1111's
    /// own interface stops far below them: 150 steps, batch 8, 2048 pixels).
    public static let maximumSteps: Int64 = 10_000
    public static let maximumBatch: Int64 = 64
    public static let maximumCount: Int64 = 100_000
    public static let maximumSide = 8192

    public static let samplerNames = Sampler.allCases.map(\.rawValue)
    public static let scheduleNames = ["automatic"] + NoiseSchedule.Kind.allCases.map(\.rawValue)

    /// Whole numbers as A1111's infotext shows them from its sliders ("7", "7.5").
    /// (The readers below see values their row's check has passed: `settings` checks first.)
    static func number(_ v: Float) -> String { NumberText.shortest(v) }

    static func real(_ v: Value) -> Float { if case let .real(x) = v { return Float(x) }; if case let .integer(i) = v { return Float(i) }; return .nan }
    static func double(_ v: Value) -> Double { if case let .real(x) = v { return x }; if case let .integer(i) = v { return Double(i) }; return .nan }
    static func int(_ v: Value) -> Int64 { if case let .integer(i) = v { return i }; return 0 }
    static func string(_ v: Value) -> String { if case let .string(s) = v { return s }; return "" }

    /// A row for one of the stochastic samplers' options: recorded in the infotext (and read
    /// back) under A1111's key when the sampler takes it and it differs from A1111's default.
    static func samplerOption(_ name: String, _ option: SamplerOption, _ key: String, axis: String, default d: Double,
                              _ range: ClosedRange<Double>, _ help: String, _ field: WritableKeyPath<SamplerOptions, Float> & Sendable,
                              omittedWhenDefault: Bool = false) -> ParameterDefinition {
        ParameterDefinition(name, .real, .real(d), help, check: ParameterCheck.real(name, range), omittedWhenDefault: omittedWhenDefault,
                            store: { $0.samplerOptions[keyPath: field] = real($1) }, read: { .real(Double($0.samplerOptions[keyPath: field])) },
                            infotextKey: key, axisLabel: axis,
                            infotext: { s in s.sampler.takes(option) && s.samplerOptions[keyPath: field] != Float(d) ? number(s.samplerOptions[keyPath: field]) : nil },
                            whenNotInInfotext: { _ in .real(d) })
    }

    /// A row for one of the schedule's settings: recorded under A1111's key when `written` says
    /// A1111 would write it (by default: when set, i.e. not 0).
    static func scheduleOption(_ name: String, _ key: String, _ range: ClosedRange<Double>, _ help: String,
                               _ field: WritableKeyPath<NoiseSchedule.Options, Double> & Sendable, default d: Double = 0,
                               written: (@Sendable (GenerationSettings) -> Bool)? = nil) -> ParameterDefinition {
        ParameterDefinition(name, .real, .real(d), help, check: ParameterCheck.real(name, range), omittedWhenDefault: true,
                            store: { $0.scheduleOptions[keyPath: field] = double($1) }, read: { .real($0.scheduleOptions[keyPath: field]) },
                            infotextKey: key, axisLabel: key,
                            infotext: { s in (written?(s) ?? (s.scheduleOptions[keyPath: field] != d)) ? NumberText.shortest(s.scheduleOptions[keyPath: field]) : nil },
                            whenNotInInfotext: { _ in .real(d) })
    }

    /// A row for one of UniPC's settings (A1111 options with an infotext key): recorded under
    /// A1111's key when the sampler is UniPC and the value is not A1111's default, read back from
    /// pasted infotexts (where absent: A1111's default).
    static func uniPCOption(_ name: String, _ kind: ParameterKind, _ d: Value, _ key: String, _ help: String, choices: [String] = [],
                            check: @escaping @Sendable (Value) throws(ParameterError) -> Value,
                            store: @escaping @Sendable (inout UniPCOptions, Value) -> Void, read: @escaping @Sendable (UniPCOptions) -> Value,
                            text: @escaping @Sendable (UniPCOptions) -> String) -> ParameterDefinition {
        ParameterDefinition(name, kind, d, help, choices: choices, check: check, omittedWhenDefault: true,
                            store: { store(&$0.samplerOptions.uniPC, $1) }, read: { read($0.samplerOptions.uniPC) },
                            infotextKey: key, axisLabel: key == "UniPC order" ? "UniPC Order" : key,
                            infotext: { s in s.sampler.takes(.uniPC) && read(s.samplerOptions.uniPC) != d ? text(s.samplerOptions.uniPC) : nil },
                            whenNotInInfotext: { _ in d })
    }

    public static let all: [ParameterDefinition] = [
        ParameterDefinition("sampler", .string, .string("Euler a"), "A1111 sampler name", choices: samplerNames, check: checkSampler,
                            store: { s, v in
                                guard let (sampler, implied) = Sampler.named(string(v)) else { return }
                                s.sampler = sampler
                                if implied != nil { s.schedule = implied }
                            },
                            read: { .string($0.sampler.rawValue) },
                            infotextKey: "Sampler", axisLabel: "Sampler", infotext: { $0.sampler.rawValue }),
        ParameterDefinition("schedule", .string, .string("automatic"), "A1111 schedule type", choices: scheduleNames,
                            check: checkSchedule,
                            // After `sampler`: "automatic" keeps what an old combined sampler name implied.
                            store: { s, v in if let kind = NoiseSchedule.Kind.named(string(v)) { s.schedule = kind } },
                            read: { .string($0.schedule?.rawValue ?? "automatic") },
                            infotextKey: "Schedule type", axisLabel: "Schedule type", infotext: { $0.resolvedSchedule.displayName },
                            whenNotInInfotext: { _ in .string("automatic") }),
        // The hires fix, in the order A1111 adds its keys to extra_generation_params (before the
        // sampler's options): sampler, prompts, then upscale or resize, steps, upscaler.
        ParameterDefinition("hires_sampler", .string, .string(""), "hires fix: the second pass's sampler (\"\": the same)",
                            choices: samplerNames, check: checkHiresSampler, omittedWhenDefault: true,
                            store: { s, v in s.hires.sampler = Sampler.named(string(v))?.0 }, read: { .string($0.hires.sampler?.rawValue ?? "") },
                            infotextKey: "Hires sampler", axisLabel: "Hires sampler",
                            infotext: { $0.hires.enabled && $0.hires.sampler != nil && $0.hires.sampler != $0.sampler ? $0.hires.sampler!.rawValue : nil },
                            whenNotInInfotext: { _ in .string("") }),
        ParameterDefinition("hires_prompt", .string, .string(""), "hires fix: the second pass's prompt (\"\": the same)",
                            check: ParameterCheck.string("hires_prompt"), omittedWhenDefault: true,
                            store: { $0.hires.prompt = string($1) }, read: { .string($0.hires.prompt) },
                            infotextKey: "Hires prompt", axisLabel: "Hires prompt",
                            infotext: { $0.hires.enabled && !$0.hires.prompt.isEmpty && $0.hires.prompt != $0.prompt ? $0.hires.prompt : nil },
                            whenNotInInfotext: { _ in .string("") }),
        ParameterDefinition("hires_negative", .string, .string(""), "hires fix: the second pass's negative prompt (\"\": the same)",
                            check: ParameterCheck.string("hires_negative"), omittedWhenDefault: true,
                            store: { $0.hires.negativePrompt = string($1) }, read: { .string($0.hires.negativePrompt) },
                            infotextKey: "Hires negative prompt", axisLabel: "Hires negative prompt",
                            infotext: { $0.hires.enabled && !$0.hires.negativePrompt.isEmpty && $0.hires.negativePrompt != $0.negativePrompt ? $0.hires.negativePrompt : nil },
                            whenNotInInfotext: { _ in .string("") }),
        ParameterDefinition("hires_scale", .real, .real(0), "hires fix: second pass at this multiple of the size (0: off)",
                            check: ParameterCheck.real("hires_scale", 0...8), omittedWhenDefault: true,
                            store: { $0.hires.scale = double($1) }, read: { .real($0.hires.scale) },
                            infotextKey: "Hires upscale", axisLabel: "Hires upscale",
                            infotext: { $0.hires.enabled && $0.hires.width == 0 && $0.hires.height == 0 ? NumberText.shortest($0.hires.scale) : nil },
                            whenNotInInfotext: { _ in .real(0) }),
        ParameterDefinition("hires_size", .size, .size(width: 0, height: 0), "hires fix: second pass at this size (0 keeps the aspect ratio)",
                            check: checkHiresSize, omittedWhenDefault: true,
                            store: { s, v in if case let .size(w, h) = v { (s.hires.width, s.hires.height) = (w, h) } },
                            read: { .size(width: $0.hires.width, height: $0.hires.height) },
                            infotextKey: "Hires resize", axisLabel: "Hires resize",
                            infotext: { $0.hires.width > 0 || $0.hires.height > 0 ? "\($0.hires.width)x\($0.hires.height)" : nil },
                            whenNotInInfotext: { _ in .size(width: 0, height: 0) }),
        ParameterDefinition("hires_steps", .integer, .integer(0), "hires fix: second pass steps (0: as steps)",
                            check: ParameterCheck.integer("hires_steps", min: 0, max: maximumSteps), omittedWhenDefault: true,
                            store: { $0.hires.steps = Int(int($1)) }, read: { .integer(Int64($0.hires.steps)) },
                            infotextKey: "Hires steps", axisLabel: "Hires steps",
                            infotext: { $0.hires.enabled && $0.hires.steps > 0 ? String($0.hires.steps) : nil },
                            whenNotInInfotext: { _ in .integer(0) }),
        ParameterDefinition("hires_upscaler", .string, .string("Latent"),
                            "hires fix: how the first pass is enlarged (a latent upscaler, None, Lanczos, Nearest, or an ESRGAN model's name in upscalers_dir)",
                            choices: HiresFix.upscalerNames, check: ParameterCheck.choiceOrName("hires_upscaler", HiresFix.upscalerNames), omittedWhenDefault: true,
                            store: { $0.hires.upscaler = string($1) }, read: { .string($0.hires.upscaler) },
                            infotextKey: "Hires upscaler", axisLabel: "Hires upscaler",
                            infotext: { $0.hires.enabled ? $0.hires.upscaler : nil }, whenNotInInfotext: { _ in .string("Latent") }),
        ParameterDefinition("hires_denoise", .real, .real(0.7), "hires fix: denoising strength of the second pass",
                            check: ParameterCheck.real("hires_denoise", 0...1), omittedWhenDefault: true,
                            store: { $0.hires.denoise = double($1) }, read: { .real($0.hires.denoise) },
                            infotextKey: "Denoising strength", axisLabel: "Denoising",
                            infotext: { $0.hires.enabled ? NumberText.shortest($0.hires.denoise) : nil }, whenNotInInfotext: { _ in .real(0.7) }),
        ParameterDefinition("upscaler_tile", .integer, .integer(192), "upscaler models run in tiles of this many pixels (0: whole pictures)",
                            check: ParameterCheck.integer("upscaler_tile", min: 0, max: 4096), omittedWhenDefault: true,
                            store: { $0.hires.tiling.size = Int(int($1)) }, read: { .integer(Int64($0.hires.tiling.size)) }),
        ParameterDefinition("upscaler_tile_overlap", .integer, .integer(8), "pixels of overlap between upscaler tiles",
                            check: ParameterCheck.integer("upscaler_tile_overlap", min: 0, max: 4095), omittedWhenDefault: true,
                            store: { $0.hires.tiling.overlap = Int(int($1)) }, read: { .integer(Int64($0.hires.tiling.overlap)) }),
        scheduleOption("sigma_min", "Schedule min sigma", 0...1000, "the schedule's lowest sigma (0: the model's)", \.sigmaMin),
        scheduleOption("sigma_max", "Schedule max sigma", 0...1000, "the schedule's highest sigma (0: the model's)", \.sigmaMax),
        scheduleOption("rho", "Schedule rho", 0...100, "Karras/Polyexponential rho (0: 7 and 1)", \.rho,
                       written: { s in s.resolvedSchedule.defaultRho.map { s.scheduleOptions.rho != 0 && s.scheduleOptions.rho != $0 } ?? false }),
        scheduleOption("beta_dist_alpha", "Beta schedule alpha", 0.01...100, "the Beta schedule's alpha", \.betaAlpha, default: 0.6,
                       written: { $0.resolvedSchedule == .beta }),
        scheduleOption("beta_dist_beta", "Beta schedule beta", 0.01...100, "the Beta schedule's beta", \.betaBeta, default: 0.6,
                       written: { $0.resolvedSchedule == .beta }),
        ParameterDefinition("steps", .integer, .integer(20), "sampling steps", check: ParameterCheck.integer("steps", min: 1, max: maximumSteps),
                            store: { $0.steps = Int(int($1)) }, read: { .integer(Int64($0.steps)) },
                            infotextKey: "Steps", axisLabel: "Steps", infotext: { String($0.steps) }),
        ParameterDefinition("cfg", .real, .real(7), "classifier-free guidance scale", check: ParameterCheck.real("cfg", -100...100),
                            store: { $0.cfgScale = real($1) }, read: { .real(Double($0.cfgScale)) },
                            infotextKey: "CFG scale", axisLabel: "CFG Scale", infotext: { number($0.cfgScale) }),
        ParameterDefinition("seed", .integer, .integer(-1), "-1 picks a random seed", check: ParameterCheck.integer("seed", min: -1),
                            store: { $0.seed = int($1) }, read: { .integer($0.seed) },
                            infotextKey: "Seed", axisLabel: "Seed", infotext: { String($0.seed) }),
        ParameterDefinition("subseed", .integer, .integer(-1), "A1111 variation seed", check: ParameterCheck.integer("subseed", min: -1),
                            store: { $0.subseed = int($1) }, read: { .integer($0.subseed) },
                            infotextKey: "Variation seed", axisLabel: "Var. seed",
                            infotext: { $0.subseedStrength != 0 ? String($0.subseed) : nil },
                            // A1111 records no variation seed when its strength is 0.
                            whenNotInInfotext: { _ in .integer(0) }),
        ParameterDefinition("subseed_strength", .real, .real(0), "variation strength", check: ParameterCheck.real("subseed_strength", 0...1),
                            store: { $0.subseedStrength = real($1) }, read: { .real(Double($0.subseedStrength)) },
                            infotextKey: "Variation seed strength", axisLabel: "Var. strength",
                            infotext: { $0.subseedStrength != 0 ? number($0.subseedStrength) : nil }, whenNotInInfotext: { _ in .real(0) }),
        ParameterDefinition("size", .size, nil, "WIDTHxHEIGHT, multiples of 8 (model's native)", check: checkSize,
                            store: { s, v in if case let .size(w, h) = v { (s.width, s.height) = (w, h) } },
                            read: { .size(width: $0.width, height: $0.height) },
                            infotextKey: "Size", axisLabel: "Size", infotext: { "\($0.width)x\($0.height)" }),
        ParameterDefinition("seed_resize_from", .size, .size(width: 0, height: 0), "make the seed's noise at this size (0x0: off)",
                            check: checkSeedResize, omittedWhenDefault: true,
                            store: { s, v in if case let .size(w, h) = v { (s.seedResizeFromWidth, s.seedResizeFromHeight) = (w, h) } },
                            read: { .size(width: $0.seedResizeFromWidth, height: $0.seedResizeFromHeight) },
                            infotextKey: "Seed resize from", axisLabel: "Seed resize from",
                            infotext: { $0.seedResizeFromWidth > 0 && $0.seedResizeFromHeight > 0 ? "\($0.seedResizeFromWidth)x\($0.seedResizeFromHeight)" : nil },
                            whenNotInInfotext: { _ in .size(width: 0, height: 0) }),
        ParameterDefinition("eta_noise_seed_delta", .integer, .integer(0), "ENSD: step noise from seed + this", check: ParameterCheck.integer("eta_noise_seed_delta", min: 0, max: 1 << 53),
                            omittedWhenDefault: true, store: { $0.etaNoiseSeedDelta = int($1) }, read: { .integer($0.etaNoiseSeedDelta) },
                            infotextKey: "ENSD", axisLabel: "Eta noise seed delta",
                            // A1111 records it for the samplers that use it (`uses_ensd`), with a non-zero eta.
                            infotext: { s in s.etaNoiseSeedDelta != 0 && s.sampler.takes(.etaNoiseSeedDelta) && s.samplerOptions.eta != 0 ? String(s.etaNoiseSeedDelta) : nil },
                            whenNotInInfotext: { _ in .integer(0) }),
        ParameterDefinition("batch", .integer, .integer(1), "images per batch", check: ParameterCheck.integer("batch", min: 1, max: maximumBatch),
                            store: { $0.batchSize = Int(int($1)) }, read: { .integer(Int64($0.batchSize)) }, axisLabel: "Batch size",
                            whenNotInInfotext: { _ in .integer(1) }),
        ParameterDefinition("count", .integer, .integer(1), "batches per statement", check: ParameterCheck.integer("count", min: 1, max: maximumCount),
                            store: { $0.batchCount = Int(int($1)) }, read: { .integer(Int64($0.batchCount)) }, axisLabel: "Batch count",
                            whenNotInInfotext: { _ in .integer(1) }),
        ParameterDefinition("discard_penultimate_sigma", .boolean, .boolean(false), "drop the next-to-last sigma for every sampler",
                            choices: ["true", "false"], check: ParameterCheck.boolean("discard_penultimate_sigma"), omittedWhenDefault: true,
                            store: { s, v in s.discardPenultimateSigma = v == .boolean(true) }, read: { .boolean($0.discardPenultimateSigma) },
                            infotextKey: "Discard penultimate sigma", axisLabel: "Always discard next-to-last sigma",
                            // A1111 records it when it changed something: for samplers that do not drop it anyway.
                            infotext: { $0.discardPenultimateSigma && !$0.sampler.discardsPenultimateSigma ? "True" : nil },
                            whenNotInInfotext: { _ in .boolean(false) }),
        ParameterDefinition("sgm_noise_multiplier", .boolean, .boolean(false), "initial noise x sqrt(1 + sigma_max^2) (SGM)",
                            choices: ["true", "false"], check: ParameterCheck.boolean("sgm_noise_multiplier"), omittedWhenDefault: true,
                            store: { s, v in s.sgmNoiseMultiplier = v == .boolean(true) }, read: { .boolean($0.sgmNoiseMultiplier) },
                            infotextKey: "SGM noise multiplier", axisLabel: "SGM noise multiplier",
                            infotext: { $0.sgmNoiseMultiplier && !$0.sampler.method.usesTimesteps ? "True" : nil },
                            whenNotInInfotext: { _ in .boolean(false) }),
        ParameterDefinition("negative", .string, .string(""), "negative prompt", check: ParameterCheck.string("negative"),
                            store: { $0.negativePrompt = string($1) }, read: { .string($0.negativePrompt) }, axisLabel: "Negative prompt",
                            whenNotInInfotext: { .string($0.negativePrompt) }),
        ParameterDefinition("clip_skip", .integer, .integer(1), "CLIP layers skipped from the end (1: none)", check: ParameterCheck.integer("clip_skip", min: 1),
                            store: { $0.clipSkip = Int(int($1)) }, read: { .integer(Int64($0.clipSkip)) },
                            infotextKey: "Clip skip", axisLabel: "Clip skip", infotext: { $0.clipSkip > 1 ? String($0.clipSkip) : nil },
                            whenNotInInfotext: { _ in .integer(1) }),
        samplerOption("eta", .eta, "Eta", axis: "Eta", default: 1, 0...100, "ancestral noise multiplier", \.eta),
        samplerOption("s_churn", .sChurn, "Sigma churn", axis: "Sigma Churn", default: 0, 0...100,
                      "Euler/Heun/DPM2: churn noise in [s_tmin, s_tmax]", \.sChurn, omittedWhenDefault: true),
        samplerOption("s_tmin", .sTmin, "Sigma tmin", axis: "Sigma min", default: 0, 0...1000, "the lowest sigma s_churn applies to", \.sTmin, omittedWhenDefault: true),
        samplerOption("s_tmax", .sTmax, "Sigma tmax", axis: "Sigma max", default: 0, 0...1000, "the highest sigma s_churn applies to (0: inf)", \.sTmax, omittedWhenDefault: true),
        samplerOption("s_noise", .sNoise, "Sigma noise", axis: "Sigma noise", default: 1, 0...100, "noise scale of the stochastic samplers", \.sNoise),
        uniPCOption("uni_pc_variant", .string, .string("bh1"), "UniPC variant", "UniPC's B(h): bh1, bh2 or vary_coeff", choices: UniPCOptions.variants,
                    check: ParameterCheck.choice("uni_pc_variant", UniPCOptions.variants),
                    store: { $0.variant = string($1) }, read: { .string($0.variant) }, text: { $0.variant }),
        uniPCOption("uni_pc_skip_type", .string, .string("time_uniform"), "UniPC skip type", "UniPC's time spacing: time_uniform, time_quadratic or logSNR",
                    choices: UniPCOptions.skipTypes, check: ParameterCheck.choice("uni_pc_skip_type", UniPCOptions.skipTypes),
                    store: { $0.skipType = string($1) }, read: { .string($0.skipType) }, text: { $0.skipType }),
        uniPCOption("uni_pc_order", .integer, .integer(3), "UniPC order", "UniPC's order (at most the steps)",
                    check: ParameterCheck.integer("uni_pc_order", min: 1, max: 50),
                    store: { $0.order = Int(int($1)) }, read: { .integer(Int64($0.order)) }, text: { String($0.order) }),
        uniPCOption("uni_pc_lower_order_final", .boolean, .boolean(true), "UniPC lower order final", "UniPC lowers its order over the last steps",
                    choices: ["true", "false"], check: ParameterCheck.boolean("uni_pc_lower_order_final"),
                    store: { $0.lowerOrderFinal = $1 == .boolean(true) }, read: { .boolean($0.lowerOrderFinal) }, text: { $0.lowerOrderFinal ? "True" : "False" }),
        ParameterDefinition("rng", .string, .string("nv"), "nv (A1111's GPU/NV source) or cpu (torch CPU)",
                            choices: ["cpu", "nv"], check: ParameterCheck.choice("rng", ["cpu", "nv"]),
                            store: { s, v in if let kind = RandomSourceKind(rawValue: string(v)) { s.rng = kind } }, read: { .string($0.rng.rawValue) },
                            infotextKey: "RNG", axisLabel: "RNG source", infotext: { $0.rng == .cpu ? "CPU" : "NV" },
                            // A1111's "GPU" source is what NV reproduces.
                            parseInfotext: { .string($0.trimmingCharacters(in: .whitespaces).lowercased() == "cpu" ? "cpu" : "nv") },
                            whenNotInInfotext: { _ in .string("nv") }),
        ParameterDefinition("embeddings_dir", .string, .string("embeddings"), "embeddings directory, or a list of them",
                            check: checkFolders, store: nil, read: nil),
        ParameterDefinition("vae_tiling", .boolean, .boolean(false),
                            "decode large images in tiles (less memory)",
                            choices: ["true", "false"], check: ParameterCheck.boolean("vae_tiling"), omittedWhenDefault: true,
                            store: { s, v in s.vaeTiling = v == .boolean(true) }, read: { .boolean($0.vaeTiling) }, axisLabel: "VAE tiling"),
    ]

    public static let names = all.map(\.name)
    public static func definition(_ name: String) -> ParameterDefinition? { all.first { $0.name == name } }

    /// Settings from values by name, each row in table order. Every row with a settings field
    /// must have a value, and each value passes the row's check here (it normalises, so values
    /// already checked pass unchanged): a missing or mistyped value is an error, never a silent
    /// default.
    public static func settings(prompt: String, _ values: [String: Value]) throws(ParameterError) -> GenerationSettings {
        var s = GenerationSettings()
        s.prompt = prompt
        for row in all {
            guard let store = row.store else { continue }
            guard let v = values[row.name] else { throw ParameterError("the generation parameter `\(row.name)` has no value") }
            store(&s, try row.check(v))
        }
        return s
    }

    /// The values of the settings by name (every row with a settings field).
    public static func values(_ s: GenerationSettings) -> [String: Value] {
        var out: [String: Value] = [:]
        for row in all { if let read = row.read { out[row.name] = read(s) } }
        return out
    }

    /// The keys A1111 writes first, in its order (processing.py `create_infotext`); the model's
    /// fields follow Size. Every other key is one of A1111's `extra_generation_params`, written
    /// after these in table order, as A1111 does with sampler options, hires fix and the like.
    static let a1111InfotextOrder = ["Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size",
                                     "Variation seed", "Variation seed strength", "Seed resize from", "Denoising strength",
                                     "Clip skip", "ENSD", "RNG"]

    /// A1111's infotext parameters for one image's settings (`GenerationSettings.image(_:)`).
    public static func infotextParameters(_ s: GenerationSettings, model: [(key: String, value: String)]) -> [(key: String, value: String)] {
        let rows = all.filter { $0.infotextKey != nil }
        let core = a1111InfotextOrder.compactMap { key in rows.first { $0.infotextKey == key } }
        let extra = rows.filter { !a1111InfotextOrder.contains($0.infotextKey!) }
        var p: [(key: String, value: String)] = []
        for row in core + extra {
            if let key = row.infotextKey, let text = row.infotextText?(s) { p.append((key, text)) }
            if row.infotextKey == "Size" { p += model }
        }
        return p
    }

    /// What a pasted infotext sets: each row's value (from its key, or A1111's default when the
    /// key is missing), and the keys whose text no row understood.
    public static func pasted(_ info: Infotext) -> (values: [(name: String, value: Value)], notUnderstood: Set<String>) {
        var values: [(name: String, value: Value)] = [], bad: Set<String> = []
        for row in all {
            if let key = row.infotextKey, let raw = info[key] {
                if let v = row.parseInfotext(raw) { values.append((row.name, v)) } else { bad.insert(key) }
            } else if let v = row.whenNotInInfotext(info) {
                values.append((row.name, v))
            }
        }
        return (values, bad)
    }

    /// Infotext keys a generation parameter reads.
    public static let infotextKeys = Set(all.compactMap(\.infotextKey))

    /// The lines `help generate` and `sdshell generate --help` show: each parameter of `rows`
    /// with its default and meaning. `option` writes a name with its default (`steps=20` in
    /// scripts, `--steps 20` on the command line).
    public static func helpLines(_ rows: [ParameterDefinition] = all, option: (_ name: String, _ defaultValue: String) -> String,
                                 nativeSize: String = "native") -> [String] {
        rows.map { row in
            let spelled = option(row.name, row.defaultValue?.literal ?? nativeSize)
            return "  " + spelled + String(repeating: " ", count: max(28 - spelled.count, 0)) + "  " + row.help
        }
    }

    static let checkSampler: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        guard case let .string(s) = v else { throw ParameterError("sampler must be a string, not \(v.kindName)") }
        guard let (sampler, implied) = Sampler.named(s) else {
            if let a1111 = Sampler.notYetImplemented.first(where: { $0.lowercased() == s.lowercased() }) {
                throw ParameterError("the sampler \"\(a1111)\" is not implemented in sdshell yet; known: \(samplerNames.joined(separator: ", "))")
            }
            throw ParameterError("unknown sampler \"\(s)\"\(NameSuggestion.hint(s, in: samplerNames)); known: \(samplerNames.joined(separator: ", "))")
        }
        // Old combined names ("DPM++ 2M Karras") keep their schedule in the name.
        return .string(implied.map { "\(sampler.rawValue) \($0.displayName)" } ?? sampler.rawValue)
    }

    static let checkSchedule: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        guard case let .string(s) = v else { throw ParameterError("schedule must be a string, not \(v.kindName)") }
        if s.lowercased() == "automatic" { return .string("automatic") }
        guard let kind = NoiseSchedule.Kind.named(s) else {
            throw ParameterError("unknown schedule \"\(s)\"\(NameSuggestion.hint(s, in: scheduleNames)); known: \(scheduleNames.joined(separator: ", "))")
        }
        return .string(kind.rawValue)
    }

    static let checkSeedResize: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        if v == .size(width: 0, height: 0) { return v }
        return try checkSize(v)
    }

    /// The hires fix's target size: 0x0 (off), or sides of at most `maximumSide` in multiples of 8,
    /// one of which may be 0 (kept to the first pass's aspect ratio).
    static let checkHiresSize: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        guard case let .size(w, h) = v else { throw ParameterError("hires_size must be a size like 1024x1024, not \(v.kindName)") }
        guard w >= 0, h >= 0, w % 8 == 0, h % 8 == 0, w <= maximumSide, h <= maximumSide else {
            throw ParameterError("hires_size \(w)x\(h) must be multiples of 8 up to \(maximumSide) (0: from the other side)")
        }
        return v
    }

    /// The hires fix's sampler: "" (the first pass's) or a sampler name.
    static let checkHiresSampler: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        if v == .string("") { return v }
        return try checkSampler(v)
    }

    static let checkSize: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        guard case let .size(w, h) = v else { throw ParameterError("size must be a size like 512x512, not \(v.kindName)") }
        guard w > 0, h > 0, w % 8 == 0, h % 8 == 0 else { throw ParameterError("size \(w)x\(h) must be positive multiples of 8") }
        guard w <= maximumSide, h <= maximumSide else { throw ParameterError("size \(w)x\(h) is larger than \(maximumSide) pixels a side") }
        return v
    }

    static let checkFolders: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        switch v {
        case .string(""): throw ParameterError("embeddings_dir must name a folder, not be empty")
        case .string: return v
        case .list([]): throw ParameterError("embeddings_dir must name at least one folder (got an empty list)")
        case let .list(items) where items.allSatisfy({ if case let .string(s) = $0 { return !s.isEmpty }; return false }): return v
        default: throw ParameterError("embeddings_dir must be a folder or a list of folders (non-empty strings), not \(v.literal)")
        }
    }
}

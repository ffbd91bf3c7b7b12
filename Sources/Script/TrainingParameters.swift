import Diffusion

/// The options of `train` with their defaults: the statement and `sdshell train` read them here.
/// Their values are checked by `train` itself when it runs (a square size, a learning-rate
/// schedule, a clipping rule), so the rows' own check only passes the value on.
public enum TrainingParameters {
    static func row(_ name: String, _ kind: ParameterKind, _ defaultValue: Value?, _ help: String) -> ParameterDefinition {
        ParameterDefinition(name, kind, defaultValue, help) { $0 }
    }

    public static let all: [ParameterDefinition] = [
        row("data", .string, nil, "folder of training pictures (required)"),
        row("steps", .integer, .integer(1000), "total steps"),
        row("lr", .string, .string("0.005"), "learning-rate schedule (\"0.005:100, 1e-3\")"),
        row("batch", .integer, .integer(1), "pictures per batch"),
        row("accumulate", .integer, .integer(1), "batches accumulated per optimizer step"),
        row("template", .string, .string("style_filewords"), "none, style, subject (+_filewords), a file"),
        row("size", .integer, nil, "square size in pixels (default: native)"),
        row("flip", .boolean, .boolean(false), "mirror pictures left to right at random"),
        row("latents", .string, .string("once"), "latent sampling: once, deterministic, random"),
        row("save_every", .integer, .integer(500), "save every N steps"),
        row("preview_every", .integer, .integer(0), "a preview image every N steps (0: none)"),
        row("preview", .string, nil, "its prompt (default: the template's first)"),
        row("preview_from_settings", .boolean, .boolean(false), "previews use the session's generation settings (sampler, steps, cfg, seed, size, negative), as A1111's \"read parameters from txt2img\""),
        row("clip_grad", .string, nil, "gradient clipping: value:X or norm:X"),
        row("precision", .string, .string("auto"), "frozen weights: auto (half for a 16-bit checkpoint, else full), full (f32) or half (16-bit)"),
        row("checkpointing", .boolean, nil, "recompute UNet blocks in backward: less memory (default: on for SDXL)"),
        row("shuffle_tags", .boolean, .boolean(false), "shuffle the caption's comma-separated tags in each prompt (A1111, kohya's shuffle_caption)"),
        row("tag_dropout", .real, .real(0), "drop each tag from a prompt with this probability (A1111's \"drop out tags\")"),
        row("keep_tokens", .integer, .integer(0), "the first N tags stay in place and are never dropped (kohya)"),
        row("caption_dropout", .real, .real(0), "drop the whole caption from a prompt with this probability (kohya's caption_dropout_rate)"),
        row("buckets", .boolean, .boolean(false), "keep each picture's aspect ratio: sizes of about size x size in steps of 8 latent cells, each batch of one size (A1111's \"do not resize images\", kohya's buckets)"),
        row("alpha_weight", .boolean, .boolean(false), "a PNG's alpha channel weighs the loss (A1111's \"use PNG alpha channel as loss weight\")"),
        row("seed", .integer, .integer(0), "seed of picture order, flips and latents"),
        row("loras", .string, nil, "LoRA networks merged into the model for the training (\"<lora:NAME:WEIGHT> ...\"), recorded in the embedding"),
    ]

    public static let names = all.map(\.name)

    /// A row's default (nil for the options without one).
    static func defaultValue(_ name: String) -> Value? { all.first { $0.name == name }?.defaultValue }
    static func integer(_ name: String) -> Int { if case let .integer(i)? = defaultValue(name) { return Int(i) }; return 0 }
    static func string(_ name: String) -> String { if case let .string(s)? = defaultValue(name) { return s }; return "" }
}

/// What a command takes: for `help`, tab completion and "unknown option" errors.
public struct CommandSpec: Sendable {
    public let name: String
    public let usage: String
    public let summary: String
    /// Options besides the session settings.
    public let options: [String]
    /// Whether every session setting is also an option (commands that generate).
    public let takesSettings: Bool

    public var allOptions: [String] { options + (takesSettings ? Settings.names : []) }
}

/// The commands of the language contract.
public enum CommandCatalog {
    public static let trainingOptions = TrainingParameters.names

    public static let commands: [CommandSpec] = [
        CommandSpec(name: "set", usage: "set NAME=VALUE ...", summary: "change settings for the rest of the session", options: [], takesSettings: true),
        CommandSpec(name: "show", usage: "show [NAME | \"FILE.png\" | last]", summary: "print all settings, or one; draw a picture (or the last image made) inline", options: [], takesSettings: false),
        CommandSpec(name: "model", usage: "model PATH_OR_NAME [vae=PATH] [precision=half] [prediction=v|eps]",
                    summary: "load or switch checkpoint (precision=half: 16-bit weights; prediction overrides v/eps detection); prints family and hash",
                    options: ["vae", "precision", "prediction"], takesSettings: false),
        CommandSpec(name: "models", usage: "models", summary: "list checkpoints in models_dir", options: [], takesSettings: false),
        CommandSpec(name: "generate", usage: "generate PROMPT [options]", summary: "txt2img with the current settings (a bare prompt string does the same)",
                    options: [], takesSettings: true),
        CommandSpec(name: "img2img", usage: "img2img PROMPT init=\"FILE.png\" [denoise=0.75] [resize_mode=0|1|2|3] [exact_steps=false] "
                        + "[mask=\"FILE.png\" mask_blur=4 inpainting_mask_invert=0 inpainting_fill=1 inpaint_full_res=false inpaint_full_res_padding=32] [options]",
                    summary: "A1111's img2img from a picture (resize modes: just resize, crop and resize, resize and fill, latent upscale); "
                        + "with mask=, inpainting (fill 0 fill, 1 original, 2 latent noise, 3 latent nothing; inpaint_full_res: only masked)",
                    options: ImageToImageOptions.names, takesSettings: true),
        CommandSpec(name: "grid", usage: "grid PROMPT [options]", summary: "options given lists become axes X, Y, Z; sr=[...] is Prompt S/R, order=[...] Prompt order, model=[...] Checkpoint name; embedding_steps=\"NAME\" the numbered copies a training kept",
                    options: ["sr", "order", "model", "embedding_steps"], takesSettings: true),
        CommandSpec(name: "loras", usage: "loras", summary: "list the LoRA, LoCon, LoHa and LoKr files of loras_dir: kinds, rank, family, base model, hash (use as <lora:NAME:WEIGHT> in a prompt)",
                    options: [], takesSettings: false),
        CommandSpec(name: "embeddings", usage: "embeddings [reload]", summary: "list loaded and skipped embeddings", options: [], takesSettings: false),
        CommandSpec(name: "embedding", usage: "embedding new NAME init=\"TEXT\" vectors=N [overwrite=true] [format=\"pt\"|\"safetensors\"] | embedding inspect NAME_OR_WORD [init=\"TEXT\"] [top=5] | embedding combine NAME \"EXPR\" [overwrite=true]",
                    summary: "create an embedding initialised from TEXT's token vectors; inspect one (norms, cosine to init, nearest tokens); combine embeddings and 'words' (+ - * / [a, b] x[0:2])",
                    options: ["init", "vectors", "overwrite", "format", "top"], takesSettings: false),
        CommandSpec(name: "train", usage: "train NAME data=DIR [options]", summary: "textual-inversion training of embedding NAME (resumes)",
                    options: trainingOptions, takesSettings: false),
        CommandSpec(name: "tokens", usage: "tokens PROMPT", summary: "how a prompt tokenizes: chunks, embeddings, weights", options: [], takesSettings: false),
        CommandSpec(name: "info", usage: "info FILE.png", summary: "print the generation parameters stored in an image", options: [], takesSettings: false),
        CommandSpec(name: "inspect", usage: "inspect FILE", summary: "format, architecture or embedding kind, hashes, metadata, tensors",
                    options: [], takesSettings: false),
        CommandSpec(name: "replay", usage: "replay FILE [verify=true]", summary: "re-run a journal or script, or reproduce a PNG",
                    options: ["verify"], takesSettings: false),
        CommandSpec(name: "run", usage: "run FILE", summary: "run a script in this session", options: [], takesSettings: false),
        CommandSpec(name: "backend", usage: "backend NAME [device=N]", summary: "choose the compute backend", options: ["device"], takesSettings: false),
        CommandSpec(name: "devices", usage: "devices", summary: "list compute devices", options: [], takesSettings: false),
        CommandSpec(name: "print", usage: "print EXPR ...", summary: "print values", options: [], takesSettings: false),
        CommandSpec(name: "help", usage: "help [COMMAND]", summary: "list commands, or explain one", options: [], takesSettings: false),
        CommandSpec(name: "quit", usage: "quit", summary: "end the session", options: [], takesSettings: false),
    ]

    public static let names = commands.map(\.name)
    public static let keywords = ["let", "for", "in", "true", "false"]
    /// Command names and keywords.
    public static let words = Set(names + keywords + ["exit"])

    public static func spec(_ name: String) -> CommandSpec? { commands.first { $0.name == name } }
}

import Diffusion

/// A setting of the language: a generation parameter or one of the session's own.
public typealias SettingDefinition = ParameterDefinition

/// The settings table of the language contract (docs/sdscript.md): the generation parameters
/// (`GenerationParameters.all`, where each one is defined once) and the session's own settings,
/// which choose where things are computed, read and written but not what an image is.
public enum Settings {
    public static let sessionDefinitions: [SettingDefinition] = [
        SettingDefinition("backend", .string, .string("cpu"), "compute backend", choices: ["cpu", "opencl"],
                          check: ParameterCheck.choice("backend", ["cpu", "opencl"])),
        SettingDefinition("outdir", .string, .string("outputs"), "where images, grids and journals go", check: ParameterCheck.string("outdir", path: true)),
        SettingDefinition("models_dir", .string, .string("models"), "where bare model names are looked up",
                          check: ParameterCheck.string("models_dir", path: true)),
        SettingDefinition("loras_dir", .string, .string("loras"), "where LoRA, LoCon, LoHa and LoKr files are found for <lora:NAME:WEIGHT> (subfolders too), by file name",
                          check: ParameterCheck.string("loras_dir", path: true)),
        SettingDefinition("upscalers_dir", .string, .string("upscalers"), "where ESRGAN-family upscaler models (.pth, .safetensors) are found, by file name",
                          check: ParameterCheck.string("upscalers_dir", path: true)),
        SettingDefinition("inline", .string, .string("off"),
                          "draw finished images in the terminal: auto (what the terminal speaks), kitty, iterm2, sixel or off (true/false: auto/off)",
                          choices: ["auto", "kitty", "iterm2", "sixel", "off"], check: inlineCheck),
        SettingDefinition("inline_width", .integer, .integer(0), "width of inline images in terminal columns (0: their own size)",
                          check: ParameterCheck.integer("inline_width", min: 0, max: 1000)),
        SettingDefinition("live_preview", .integer, .integer(0), "draw a preview of the image being sampled every N steps (A1111's Approx cheap; 0: off)",
                          check: ParameterCheck.integer("live_preview", min: 0, max: 10_000)),
    ]

    /// `inline`: one of its choices, or a boolean (true: "auto", false: "off").
    static let inlineCheck: @Sendable (Value) throws(ParameterError) -> Value = { v throws(ParameterError) in
        if case let .boolean(b) = v { return .string(b ? "auto" : "off") }
        return try ParameterCheck.choice("inline", ["auto", "kitty", "iterm2", "sixel", "off"])(v)
    }

    public static let definitions: [SettingDefinition] = GenerationParameters.all + sessionDefinitions

    public static let names = definitions.map(\.name)
    public static func definition(_ name: String) -> SettingDefinition? { definitions.first { $0.name == name } }
}

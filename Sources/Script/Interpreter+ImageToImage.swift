import Diffusion
import Foundation
import Formats

/// The options of `img2img` beside the generation settings.
enum ImageToImageOptions {
    static let names = ["init", "denoise", "resize_mode", "exact_steps"]
}

/// `img2img PROMPT init="FILE" ...`: A1111's img2img (no mask) with every setting made explicit,
/// journalled like `generate` with the init picture's path and options in front.
extension Interpreter {
    func img2img(_ call: CommandCall) throws {
        let prompt = try call.string(at: 0, "a prompt")
        try call.atMost(1)
        guard let path = try call.optionString("init") else {
            throw ScriptError(call.position, "`img2img` needs init=\"FILE.png\", the picture to start from (usage: \(call.spec.usage))")
        }
        let denoise: Double
        switch call.option("denoise") {
        case nil: denoise = 0.75
        case let .real(d)?: denoise = d
        case let .integer(i)?: denoise = Double(i)
        case let other?: throw ScriptError(call.optionPosition("denoise"), "denoise must be a number, not \(other.kindName)")
        }
        guard denoise.isFinite, (0...1).contains(denoise) else {
            throw ScriptError(call.optionPosition("denoise"), "denoise must be between 0 and 1 (got \(Value.real(denoise).literal))")
        }
        let modeNumber = try call.optionInteger("resize_mode") ?? 0
        guard let mode = ImageToImage.ResizeMode(rawValue: modeNumber) else {
            throw ScriptError(call.optionPosition("resize_mode"), "resize_mode must be 0 (just resize), 1 (crop and resize), 2 (resize and fill) or 3 (latent upscale), not \(modeNumber)")
        }
        let exact = try call.optionBool("exact_steps") ?? false
        let picture: RGBImage
        do {
            picture = try RGBImage.read(path)
        } catch {
            throw ScriptError(call.optionPosition("init"), "the init picture cannot be used: \(error)")
        }
        var values = try resolvedSettings(call.options)
        try fixSeeds(&values)
        var leading: [(String, Value)] = [("init", .string(path)), ("denoise", .real(denoise))]
        if mode != .justResize { leading.append(("resize_mode", .integer(Int64(mode.rawValue)))) }
        if exact { leading.append(("exact_steps", .boolean(true))) }
        try runGeneration(prompt: prompt, values, at: call.position,
                          img2img: (ImageToImage(initImage: picture, resizeMode: mode, denoise: denoise, exactSteps: exact), leading))
    }
}

import Diffusion
import Foundation
import Formats

/// The options of `img2img` beside the generation settings: the init picture's, and the mask's
/// under A1111's API names.
enum ImageToImageOptions {
    static let maskOptions = ["mask_blur", "inpainting_mask_invert", "inpainting_fill", "inpaint_full_res", "inpaint_full_res_padding"]
    static let names = ["init", "denoise", "resize_mode", "exact_steps", "mask"] + maskOptions
}

/// `img2img PROMPT init="FILE" [mask="FILE"] ...`: A1111's img2img and inpainting with every
/// setting made explicit, journalled like `generate` with the pictures' paths and options in front.
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
            picture = try ImageToImage.readInitPicture(path)
        } catch {
            throw ScriptError(call.optionPosition("init"), "the init picture cannot be used: \(error)")
        }
        let inpainting = try maskOptions(call)
        var values = try resolvedSettings(call.options)
        try fixSeeds(&values, at: call.position)
        var leading: [(String, Value)] = [("init", .string(path)), ("denoise", .real(denoise))]
        if mode != .justResize { leading.append(("resize_mode", .integer(Int64(mode.rawValue)))) }
        if exact { leading.append(("exact_steps", .boolean(true))) }
        if let inpainting {
            leading += [("mask", .string(inpainting.path)), ("mask_blur", .integer(Int64(inpainting.mask.blur))),
                        ("inpainting_mask_invert", .integer(inpainting.mask.invert ? 1 : 0)),
                        ("inpainting_fill", .integer(Int64(inpainting.mask.content.rawValue))),
                        ("inpaint_full_res", .boolean(inpainting.mask.onlyMasked)),
                        ("inpaint_full_res_padding", .integer(Int64(inpainting.mask.padding)))]
        }
        let i2i = ImageToImage(initImage: picture, resizeMode: mode, denoise: denoise, exactSteps: exact, inpainting: inpainting?.mask)
        try runGeneration(prompt: prompt, values, at: call.position, img2img: (i2i, leading))
    }

    /// The mask and its options (A1111's defaults for those not given: blur 4, inpaint masked,
    /// masked content "original", whole picture, padding 32); nil without `mask=`.
    func maskOptions(_ call: CommandCall) throws -> (path: String, mask: Inpainting)? {
        guard let path = try call.optionString("mask") else {
            if let stray = ImageToImageOptions.maskOptions.first(where: { call.option($0) != nil }) {
                throw ScriptError(call.optionPosition(stray), "\(stray) is an inpainting option: it needs mask=\"FILE.png\"")
            }
            return nil
        }
        var mask: Inpainting
        do {
            mask = try Inpainting.readMask(path)
        } catch {
            throw ScriptError(call.optionPosition("mask"), "the mask cannot be used: \(error)")
        }
        func number(_ name: String, _ range: ClosedRange<Int>, _ meaning: String) throws -> Int? {
            let value: Int?
            switch call.option(name) {
            case nil: value = nil
            case let .boolean(b)?: value = b ? 1 : 0
            case let .integer(i)?: value = Int(exactly: i) ?? Int.max
            case let other?: throw ScriptError(call.optionPosition(name), "\(name) must be \(meaning), not \(other.kindName)")
            }
            if let value, !range.contains(value) {
                throw ScriptError(call.optionPosition(name), "\(name) must be \(meaning), not \(value)")
            }
            return value
        }
        mask.blur = try number("mask_blur", 0...64, "a whole number of pixels from 0 to 64") ?? 4
        mask.invert = try number("inpainting_mask_invert", 0...1, "0 (inpaint masked) or 1 (inpaint not masked)") == 1
        let fill = try number("inpainting_fill", 0...3, "0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)") ?? 1
        mask.content = Inpainting.MaskedContent(rawValue: fill)!
        mask.onlyMasked = try number("inpaint_full_res", 0...1, "true (only masked) or false (whole picture)") == 1
        mask.padding = try number("inpaint_full_res_padding", 0...256, "a whole number of pixels from 0 to 256") ?? 32
        return (path, mask)
    }
}

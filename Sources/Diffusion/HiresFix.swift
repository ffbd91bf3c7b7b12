import Engine

/// A1111's hires fix on txt2img: the first pass's latents are upscaled to the target size and a
/// second, img2img pass refines them (`StableDiffusionProcessingTxt2Img.sample_hr_pass`).
public struct HiresFix: Sendable, Equatable {
    /// "Hires upscale": the target is the first pass's size times this (0: no hires fix).
    public var scale = 0.0
    /// "Hires resize": the target width and height in pixels (0: from `scale`; one of them 0:
    /// kept to the first pass's aspect ratio).
    public var width = 0, height = 0
    /// "Hires steps": the second pass's steps (0: the first pass's).
    public var steps = 0
    /// "Hires upscaler": a latent upscaler's name (`latentUpscalers`), a built-in pixel
    /// upscaler's or an upscaler model's (`UpscalerLibrary`).
    public var upscaler = "Latent"
    /// How an upscaler model is applied in tiles (A1111's ESRGAN tile settings).
    public var tiling = UpscalerTiling()
    /// "Denoising strength" of the second pass (a double, as Python holds it: the step count
    /// A1111 derives from it, `int(steps / strength)`, can differ in single precision).
    public var denoise = 0.7
    /// "Hires sampler" (nil: the first pass's).
    public var sampler: Sampler?
    /// "Hires prompt", "Hires negative prompt" ("": the first pass's).
    public var prompt = "", negativePrompt = ""

    public init() {}

    /// Whether the hires fix runs.
    public var enabled: Bool { scale > 0 || width > 0 || height > 0 }

    /// A1111's latent upscalers (`shared.latent_upscale_modes`): `F.interpolate` modes on the latent.
    public static let latentUpscalers: [(name: String, mode: InterpolationMode, antialias: Bool)] = [
        ("Latent", .bilinear, false), ("Latent (antialiased)", .bilinear, true), ("Latent (bicubic)", .bicubic, false),
        ("Latent (bicubic antialiased)", .bicubic, true), ("Latent (nearest)", .nearest, false),
        ("Latent (nearest-exact)", .nearestExact, false),
    ]

    /// The upscaler names that need no model file.
    public static var upscalerNames: [String] { latentUpscalers.map(\.name) + PixelUpscaler.builtInNames }

    /// The second pass's size in pixels and the latent cells cut from each side of the upscaled
    /// latent when "Hires resize" gives another aspect ratio (A1111's `calculate_target_resolution`
    /// and `truncate_x`/`truncate_y`), for a first pass of `width` x `height`.
    public func target(width: Int, height: Int, latentScale: Int) -> (width: Int, height: Int, truncateX: Int, truncateY: Int) {
        if self.width == 0 && self.height == 0 {
            return (Int(Double(width) * scale), Int(Double(height) * scale), 0, 0)
        }
        if self.height == 0 { return (self.width, self.width * height / width, 0, 0) }
        if self.width == 0 { return (self.height * width / height, self.height, 0, 0) }
        let (toX, toY) = Double(width) / Double(height) < Double(self.width) / Double(self.height)
            ? (self.width, self.width * height / width) : (self.height * width / height, self.height)
        return (toX, toY, (toX - self.width) / latentScale, (toY - self.height) / latentScale)
    }

    /// A1111's `setup_img2img_steps` for a pass given its steps: the schedule's length and the
    /// index of the sigma the pass starts at (it then runs `requested` steps).
    public static func img2imgSteps(requested: Int, denoise: Double) -> (total: Int, start: Int) {
        let total = denoise > 0 ? Int(Double(requested) / min(denoise, 0.999)) : 0
        return (total, total - (requested - 1) - 1)
    }
}

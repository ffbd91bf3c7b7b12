import Foundation
import Engine
import Formats
import Imaging

/// A1111's img2img without a mask (`StableDiffusionProcessingImg2Img`): the init picture fitted to
/// the size by a resize mode, VAE-encoded, noised to the sigma where the denoising strength's
/// steps begin, and sampled from there. One choice differs from A1111: the latent is the VAE
/// posterior's mean, where A1111 samples it with torch's unseeded global generator (so its own
/// img2img is not reproducible); diffusers' `retrieve_latents(sample_mode="argmax")` is the same.
public struct ImageToImage: Sendable {
    /// A1111's resize modes (`images.resize_image`), by their numbers.
    public enum ResizeMode: Int, Sendable, CaseIterable {
        /// Stretched to the size (Pillow LANCZOS).
        case justResize = 0
        /// Scaled to cover the size keeping its aspect ratio, then cut centred.
        case cropAndResize = 1
        /// Scaled to fit inside keeping its aspect ratio, centred, the empty bands filled from the
        /// edge rows or columns.
        case resizeAndFill = 2
        /// Encoded at its own size; the latent is stretched (bilinear) to the size.
        case latentUpscale = 3
    }

    public var initImage: RGBImage
    public var resizeMode: ResizeMode
    /// The mask and its options: inpainting (nil: plain img2img).
    public var inpainting: Inpainting?
    /// "Denoising strength" (a double, as Python holds it).
    public var denoise: Double
    /// A1111's "do exact steps" (`img2img_fix_steps`): run `steps` steps, from a schedule of
    /// `int(steps / strength)`; otherwise the schedule of `steps`, of which `int(strength * steps) + 1` run.
    public var exactSteps: Bool

    public init(initImage: RGBImage, resizeMode: ResizeMode = .justResize, denoise: Double = 0.75, exactSteps: Bool = false,
                inpainting: Inpainting? = nil) {
        self.initImage = initImage; self.resizeMode = resizeMode; self.denoise = denoise; self.exactSteps = exactSteps
        self.inpainting = inpainting
    }

    /// An init picture as A1111 reads it (`images.flatten`): a picture with transparency is laid
    /// over white (Pillow's paste through its alpha), then its alpha dropped.
    public static func readInitPicture(_ path: String) throws -> RGBImage {
        let (picture, alpha) = try RGBImage.readWithAlpha(path)
        guard let alpha else { return picture }
        let white = [UInt8](repeating: 255, count: picture.rgb.count)
        return RGBImage(width: picture.width, height: picture.height,
                        rgb: PillowCompositing.paste(picture.rgb, into: white, mask: alpha, channels: 3))
    }

    /// The schedule's length and the index of the sigma the pass starts at (A1111's
    /// `setup_img2img_steps`, in double precision).
    public static func steps(_ steps: Int, denoise: Double, exact: Bool) -> (total: Int, start: Int) {
        if exact { return HiresFix.img2imgSteps(requested: steps, denoise: denoise) }
        let encoded = Int(min(denoise, 0.999) * Double(steps))
        return (steps, steps - encoded - 1)
    }

    /// The init picture fitted to `width` x `height` for resize modes 0-2 (`images.resize_image`
    /// without an upscaler: Pillow LANCZOS, then pasted centred on a black canvas).
    public static func fit(_ image: RGBImage, width: Int, height: Int, mode: ResizeMode) -> RGBImage {
        let (w, h) = (image.width, image.height)
        func resized(_ toW: Int, _ toH: Int) -> [UInt8] {
            ImageFit.resize(rgb: image.rgb, width: w, height: h, outWidth: toW, outHeight: toH, filter: .lanczos)
        }
        guard mode != .justResize, mode != .latentUpscale else { return RGBImage(width: width, height: height, rgb: resized(width, height)) }
        let ratio = Double(width) / Double(height), sourceRatio = Double(w) / Double(h)
        let cover = mode == .cropAndResize
        // Crop and resize covers the size; resize and fill fits inside it.
        let widthFirst = cover ? ratio > sourceRatio : ratio < sourceRatio
        let srcW = widthFirst ? width : w * height / h
        let srcH = widthFirst ? h * width / w : height
        let scaled = resized(srcW, srcH)
        var canvas = [UInt8](repeating: 0, count: width * height * 3)
        func paste(_ pixels: [UInt8], _ pw: Int, _ ph: Int, at x0: Int, _ y0: Int) {
            for y in max(0, y0)..<min(height, y0 + ph) {
                for x in max(0, x0)..<min(width, x0 + pw) {
                    for c in 0..<3 { canvas[(y * width + x) * 3 + c] = pixels[((y - y0) * pw + (x - x0)) * 3 + c] }
                }
            }
        }
        paste(scaled, srcW, srcH, at: width / 2 - srcW / 2, height / 2 - srcH / 2)
        if !cover {
            // The bands: Pillow's default (bicubic) resize of a zero-height or zero-width box at
            // each edge of the scaled picture, stretched over the band.
            if ratio < sourceRatio {
                let band = height / 2 - srcH / 2
                if band > 0 {
                    for (edge, y0) in [(Float(0), 0), (Float(srcH), band + srcH)] {
                        let strip = ImageFit.resize(rgb: scaled, width: srcW, height: srcH, outWidth: width, outHeight: band,
                                                    box: (0, edge, Float(width), edge))
                        paste(strip, width, band, at: 0, y0)
                    }
                }
            } else if ratio > sourceRatio {
                let band = width / 2 - srcW / 2
                if band > 0 {
                    for (edge, x0) in [(Float(0), 0), (Float(srcW), band + srcW)] {
                        let strip = ImageFit.resize(rgb: scaled, width: srcW, height: srcH, outWidth: band, outHeight: height,
                                                    box: (edge, 0, edge, Float(height)))
                        paste(strip, band, height, at: x0, 0)
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, rgb: canvas)
    }
}

extension TextToImage {
    /// img2img's final latents for the batch (as `latents` gives txt2img's): the init picture
    /// fitted, encoded to the posterior mean times the VAE's scaling factor (per image, the same
    /// for each), then one pass from the sigma the strength starts at.
    public func latents(_ s: GenerationSettings, from i2i: ImageToImage, progress: ((Int, Int) throws -> Void)? = nil) throws -> [Float] {
        try imageToImage(s, i2i, progress: progress).latents
    }

    /// img2img's (and inpainting's) final latents, and with a mask what finishing each image needs.
    func imageToImage(_ s: GenerationSettings, _ i2i: ImageToImage, progress: ((Int, Int) throws -> Void)?) throws
        -> (latents: [Float], inpainting: Inpainting.Prepared?) {
        try validate(s)
        for m in conditioner.embeddings?.reload() ?? [] { onMessage?(m) }
        guard i2i.denoise >= 0, i2i.denoise <= 1 else {
            throw GenerationError.invalid("the denoising strength must be between 0 and 1 (got \(i2i.denoise))")
        }
        let scale = model.vaeScale
        let prepared = try i2i.inpainting.map { try $0.prepare(i2i.initImage, width: s.width, height: s.height, resizeMode: i2i.resizeMode) }
        if let notice = prepared?.notice { onMessage?(notice) }
        let picture = prepared?.picture
            ?? (i2i.resizeMode == .latentUpscale ? i2i.initImage : ImageToImage.fit(i2i.initImage, width: s.width, height: s.height, mode: i2i.resizeMode))
        guard picture.width % scale == 0, picture.height % scale == 0 else {
            throw GenerationError.invalid("the init picture is \(picture.width)x\(picture.height); encoding it needs multiples of \(scale)")
        }
        // The latent upscale encodes the picture at its own size: held to the same bounds as an image that size.
        if i2i.resizeMode == .latentUpscale {
            var own = s
            (own.width, own.height) = (picture.width, picture.height)
            try validate(own)
        }
        var latent = try encodedLatent(picture)
        if i2i.resizeMode == .latentUpscale {
            latent = try latent.interpolated(height: s.height / scale, width: s.width / scale, mode: .bilinear)
        }
        var batch = try Tensor.concat(Array(repeating: latent, count: s.batchSize), dim: 0)
        var extras = PassExtras()
        if let mask = prepared?.generationMask, let content = i2i.inpainting?.content {
            let (keep, repaint) = try Inpainting.latentMasks(mask, width: s.width, height: s.height, latentShape: Array(latent.shape[1...]))
            switch content {
            case .latentNoise:
                // A1111's create_random_tensors: the first draw of a fresh image RNG per seed.
                let seeds = (0..<s.batchSize).map { UInt64(truncatingIfNeeded: s.seeds(ofImage: $0).seed) }
                var noise = ImageNoise(kind: s.rng, shape: Array(latent.shape[1...]), seeds: seeds, subseeds: seeds.map { _ in 0 },
                                       subseedStrength: 0, seedNoiseShape: nil, etaNoiseSeedDelta: s.etaNoiseSeedDelta)
                batch = try batch * keep + (try Tensor(shape: batch.shape, data: noise.first())) * repaint
            case .latentNothing:
                batch = try batch * keep
            case .fill, .original:
                break
            }
            extras.blend = (batch, keep, repaint)
        }
        if model.takesImageConditioning {
            extras.imageConditioning = try imageConditioning(picture: picture, mask: prepared?.generationMask, batch: s.batchSize)
        }
        Self.shareDone(model.vae.mappedWeights)
        defer { Self.shareDone(model.unet.mappedWeights) }
        let steps = ImageToImage.steps(s.steps, denoise: i2i.denoise, exact: i2i.exactSteps)
        var out = try pass(s, from: (batch, steps), extras: extras, progress: progress, stepNoise: nil)
        if let blend = extras.blend { out = try out * blend.repaint + blend.latents * blend.keep }
        return (try out.toArray(), prepared)
    }

    /// A 9-channel (inpainting) UNet's extra input, [batch, 1 + latent channels, h, w]
    /// (A1111's `inpainting_image_conditioning`): the mask rounded to 0 or 1 and resized
    /// (nearest) to the latent, then the latent of the picture with the masked pixels zeroed.
    /// Without a mask (txt2img, img2img, the hires fix) everything is masked: ones, and the
    /// latent of a zero (mid-grey) picture of `picture`'s size.
    func imageConditioning(picture: RGBImage?, mask: [UInt8]?, batch: Int, size: (width: Int, height: Int)? = nil) throws -> Tensor {
        try withNoGrad {
            let (w, h) = picture.map { ($0.width, $0.height) } ?? size!
            var source = [Float](repeating: 0, count: 3 * w * h)
            var maskPlane = [Float](repeating: 1, count: w * h)
            if let picture {
                for p in 0..<(w * h) { for c in 0..<3 { source[c * w * h + p] = 2 * (Float(picture.rgb[p * 3 + c]) / 255) - 1 } }
            }
            if let mask { maskPlane = mask.map { (Float($0) / 255).rounded(.toNearestOrEven) } }
            for c in 0..<3 { for p in 0..<(w * h) { source[c * w * h + p] *= 1 - maskPlane[p] } }
            let encoded = try model.vae.encode(try Tensor(shape: [1, 3, h, w], data: source)).mean * model.vae.config.scalingFactor
            let latentMask = try Tensor(shape: [1, 1, h, w], data: maskPlane)
                .interpolated(height: encoded.shape[2], width: encoded.shape[3], mode: .nearest)
            let one = try Tensor.concat([latentMask, encoded], dim: 1)
            return try Tensor.concat(Array(repeating: one, count: batch), dim: 0)
        }
    }

    /// The latent of an 8-bit picture as A1111's `images_tensor_to_samples` makes it: x / 255 in
    /// float32, then 2x - 1, encoded to the posterior's mean (sdshell's one choice: A1111 samples
    /// it), times the VAE's scaling factor. [1, latent channels, H / scale, W / scale].
    func encodedLatent(_ picture: RGBImage) throws -> Tensor {
        try withNoGrad {
            let (w, h) = (picture.width, picture.height)
            var data = [Float](repeating: 0, count: 3 * w * h)
            for p in 0..<(w * h) { for c in 0..<3 { data[c * w * h + p] = 2 * (Float(picture.rgb[p * 3 + c]) / 255) - 1 } }
            let mean = try model.vae.encode(try Tensor(shape: [1, 3, h, w], data: data)).mean
            return try mean * model.vae.config.scalingFactor
        }
    }
}

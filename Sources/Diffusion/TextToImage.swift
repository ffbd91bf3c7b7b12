import Engine
import Formats
import Foundation
import Models
import Prompting

/// Errors in generation settings, with what to do instead.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case cancelled(afterStep: Int)
    public var description: String {
        switch self {
        case let .invalid(m): return m
        case let .cancelled(step): return "cancelled after step \(step)"
        }
    }

    /// The step after which a generation was cancelled; nil for other errors.
    public var cancelledStep: Int? { if case let .cancelled(step) = self { return step }; return nil }
}

/// The fresh noise of a sampling step, replacing the random source's (tests inject reference noise).
public typealias StepNoise = (_ sigma: Float, _ sigmaNext: Float) -> [Float]

/// One generated image.
public struct GeneratedImage: Sendable {
    public let rgb: [UInt8]
    public let width: Int, height: Int
    public let seed: Int64
    public let infotext: Infotext
    /// The final latent [C, h, w] before decoding.
    public let latent: [Float]
}

/// txt2img as A1111 runs it: conditioning, ImageRNG noise scaled by the first sigma, a k-diffusion
/// sampler over the CFG denoiser, VAE decode, 8-bit conversion, infotext.
public struct TextToImage {
    public let model: StableDiffusionModel
    public var conditioner: Conditioner
    /// Called with messages about embeddings (loaded, skipped, trained on another model).
    public var onMessage: ((String) -> Void)?
    /// The upscalers the hires fix can name (the built-in ones, and model files from its folders).
    public var upscalers = UpscalerLibrary(directories: [])
    /// The LoRA-family networks prompts can name (`<lora:NAME:...>`).
    public var loras = LoRALibrary(directories: [])
    /// A live preview every `every` steps: the first image's denoised latent through A1111's
    /// "Approx cheap" map (`LivePreview`), latent-sized RGB, handed to `show` with its width and height.
    public var livePreview: (every: Int, show: ([UInt8], Int, Int) -> Void)?

    public init(model: StableDiffusionModel, tokenizer: CLIPTokenizer, embeddings: EmbeddingDatabase? = nil) {
        self.model = model
        conditioner = Conditioner(model: model, tokenizer: tokenizer)
        conditioner.embeddings = embeddings
        embeddings?.modelHash = model.shortHash
        embeddings?.modelName = model.name
    }

    /// Embeddings used by the settings' prompts (after a rescan of the embeddings directories).
    public func usedEmbeddings(_ s: GenerationSettings) -> [Embedding] {
        let chunks = conditioner.chunks(s.prompt) + conditioner.chunks(s.negativePrompt)
        var seen = Set<String>(), out: [Embedding] = []
        for f in chunks.flatMap(\.fixes) where seen.insert(f.embedding.name).inserted { out.append(f.embedding) }
        return out
    }

    /// Checks the settings against the model.
    public func validate(_ s: GenerationSettings) throws {
        let scale = model.vaeScale
        guard s.width > 0, s.height > 0, s.width % scale == 0, s.height % scale == 0 else {
            throw GenerationError.invalid("size \(s.width)x\(s.height) must be positive multiples of \(scale)")
        }
        guard s.steps >= 1 else { throw GenerationError.invalid("steps must be at least 1 (got \(s.steps))") }
        guard s.batchSize >= 1 else { throw GenerationError.invalid("batch size must be at least 1") }
        guard s.clipSkip >= 1, s.clipSkip <= model.textEncoder.config.layers else {
            throw GenerationError.invalid("clip skip must be between 1 and \(model.textEncoder.config.layers)")
        }
        if s.hires.tiling.size > 0, s.hires.tiling.overlap >= s.hires.tiling.size {
            throw GenerationError.invalid("upscaler_tile_overlap (\(s.hires.tiling.overlap)) must be smaller than upscaler_tile (\(s.hires.tiling.size))")
        }
        let needed = estimatedBytes(s), available = ProcessInfo.processInfo.physicalMemory
        guard needed <= available else {
            throw GenerationError.invalid(String(format: "%dx%d with batch %d needs at least %.1f GB, more than this machine's %.1f GB",
                                                 s.width, s.height, s.batchSize, Double(needed) / 1e9, Double(available) / 1e9)
                                          + (s.vaeTiling ? "" : " (vae_tiling=true decodes large images in tiles)"))
        }
    }

    /// A lower bound of the working memory of a generation, from the largest activations it
    /// must hold at once: the UNet's first-level features for the CFG batch (a handful of them
    /// live together) and the VAE decoder's last-level features for one image (a tile's worth
    /// when decoding in tiles). Used to refuse sizes no machine could finish before allocating.
    public func estimatedBytes(_ s: GenerationSettings) -> UInt64 {
        let scale = UInt64(model.vaeScale)
        let (w, h) = (UInt64(max(s.width, 0)), UInt64(max(s.height, 0)))
        let latentPixels = (w / scale) * (h / scale)
        let unetChannels = UInt64(model.config.unet?.blockOutChannels.first ?? 320)
        let unet = 2 * UInt64(max(s.batchSize, 0)) * latentPixels * unetChannels * 4 * 4
        let vaeChannels = UInt64(model.config.vae?.blockOutChannels.first ?? 128)
        let tile = UInt64((model.config.unet?.sampleSize ?? 64) * model.vaeScale)
        let decoded = s.vaeTiling ? min(w * h, 4 * tile * tile) : w * h
        let vae = decoded * vaeChannels * 4 * 3
        return max(unet, vae)
    }

    /// The sigmas A1111 samples with (the penultimate one dropped for DPM2 and DPM2 a).
    public func sigmas(_ s: GenerationSettings) -> [Float] {
        let schedule = NoiseSchedule(alphasCumprod: s.sampler.method.scheduleAlphasCumprod(model.alphasCumprod))
        if s.sampler.discardsPenultimateSigma || s.discardPenultimateSigma {
            var sig = schedule.sigmas(steps: s.steps + 1, kind: s.resolvedSchedule, options: s.scheduleOptions)
            sig.remove(at: sig.count - 2)
            return sig
        }
        return schedule.sigmas(steps: s.steps, kind: s.resolvedSchedule, options: s.scheduleOptions)
    }

    /// Final latents for the batch (images concatenated, [B, C, h, w] flattened), given settings
    /// with a concrete seed: the txt2img pass and, with a hires fix, the second pass at the
    /// target size from the first pass's upscaled latents. `stepNoise`, when given, replaces the
    /// random source's per-step noise (used to inject reference noise for the SDE samplers). The
    /// latent stays a `Tensor` on the backend's device from the initial noise to the end of sampling.
    public func latents(_ s: GenerationSettings, progress: ((Int, Int) throws -> Void)? = nil,
                        stepNoise: StepNoise? = nil) throws -> [Float] {
        try validate(s)
        // Hot reload: embeddings added, changed or removed since the last generation take effect now.
        for m in conditioner.embeddings?.reload() ?? [] { onMessage?(m) }
        for text in [s.prompt, s.negativePrompt, s.hires.prompt, s.hires.negativePrompt] {
            for m in conditioner.embeddings?.skippedMentioned(in: text) ?? [] {
                onMessage?("warning: \(m.name) is read as plain words: the embedding \(m.file) was not loaded (\(m.reason))")
            }
        }
        // Each model part's in-place weights leave resident memory once its share is done, so a
        // generation holds one part at a time (see MappedWeights).
        defer { Self.shareDone(model.unet.mappedWeights) }
        let first = try pass(s, from: nil, progress: progress, stepNoise: stepNoise)
        guard s.hires.enabled else { return try first.toArray() }
        let (second, upscaled) = try hiresPass(s, first)
        let steps = HiresFix.img2imgSteps(requested: second.steps, denoise: s.hires.denoise)
        return try pass(second, from: (upscaled, steps), progress: progress, stepNoise: stepNoise).toArray()
    }

    /// The hires fix's second pass: its settings (the target size, the hires steps, prompts and
    /// sampler) and the first pass's latents upscaled to it (A1111's `sample_hr_pass`).
    func hiresPass(_ s: GenerationSettings, _ latents: Tensor) throws -> (GenerationSettings, Tensor) {
        let pixelUpscaler = try upscalers.pixelUpscaler(s.hires.upscaler, tiling: s.hires.tiling)
        let scale = model.vaeScale
        let target = s.hires.target(width: s.width, height: s.height, latentScale: scale)
        var second = s
        (second.width, second.height) = outputSize(s)
        second.steps = s.hires.steps > 0 ? s.hires.steps : s.steps
        if !s.hires.prompt.isEmpty { second.prompt = s.hires.prompt }
        if !s.hires.negativePrompt.isEmpty { second.negativePrompt = s.hires.negativePrompt }
        if let sampler = s.hires.sampler { second.sampler = sampler }
        second.hires = HiresFix()
        try validate(second)
        var upscaled: Tensor
        if let pixelUpscaler {
            // A1111's pixel branch: each first-pass image decoded to 8 bits, resized by the
            // upscaler to the (untruncated) target, and encoded again.
            let per = latents.shape[1...].reduce(1, *)
            let values = try latents.toArray()
            var encoded: [Tensor] = []
            for i in 0..<latents.shape[0] {
                let rgb = try decode(Array(values[(i * per)..<((i + 1) * per)]), shape: Array(latents.shape[1...]), tiled: s.vaeTiling)
                let picture = RGBImage(width: s.width, height: s.height, rgb: rgb)
                let resized = try pixelUpscaler.resize(picture, width: target.width, height: target.height)
                encoded.append(try encodedLatent(resized))
            }
            Self.shareDone(model.vae.mappedWeights)
            upscaled = try Tensor.concat(encoded, dim: 0)
            guard upscaled.shape[2] == target.height / scale, upscaled.shape[3] == target.width / scale else {
                throw GenerationError.invalid("the hires target \(target.width)x\(target.height) encodes to a \(upscaled.shape[3])x\(upscaled.shape[2]) latent, not \(target.width / scale)x\(target.height / scale)")
            }
        } else {
            let upscaler = HiresFix.latentUpscalers.first { $0.name == s.hires.upscaler }!
            upscaled = try withNoGrad {
                try latents.interpolated(height: target.height / scale, width: target.width / scale, mode: upscaler.mode, antialias: upscaler.antialias)
            }
        }
        if target.truncateX != 0 || target.truncateY != 0 {
            let (h, w) = (upscaled.shape[2], upscaled.shape[3])
            upscaled = try upscaled.sliced(dim: 2, target.truncateY / 2, h - (target.truncateY + 1) / 2)
                .sliced(dim: 3, target.truncateX / 2, w - (target.truncateX + 1) / 2).contiguous()
        }
        return (second, upscaled)
    }

    /// One sampling pass of `s`: from noise (txt2img), or from `initial` latents noised to the
    /// sigma at `steps.start` of a schedule of `steps.total` steps (img2img, the hires fix's second
    /// pass: A1111's `setup_img2img_steps` for the strength), with the image RNG made anew for the
    /// pass's latent size.
    func pass(_ s: GenerationSettings, from initial: (latents: Tensor, steps: (total: Int, start: Int))?, extras: PassExtras = PassExtras(),
              progress: ((Int, Int) throws -> Void)?, stepNoise: StepNoise?) throws -> Tensor {
        let scale = model.vaeScale
        let shape = [model.latentChannels, s.height / scale, s.width / scale]
        // AND (composable diffusion): each distinct part is weighted in the CFG. Each part and the
        // negative prompt follow their prompt-editing schedule; like A1111, the schedule is indexed
        // by the number of model calls made so far (second-order samplers advance it twice a step).
        // Extra-network tags (`<lora:...>`) leave the prompts before conditioning, as in A1111.
        let composition = PromptComposition.parse([ExtraNetworkTags.strip(s.prompt)])
        var cache: [String: UNetConditioning] = [:]
        func scheduled(_ text: String, negative: Bool = false) throws -> CFGDenoiser.Scheduled {
            let entries = PromptSchedule.schedule(text, steps: s.steps)
            // SDXL (A1111's sd_models_xl): a negative prompt whose every text is empty conditions on zeros.
            if negative, model.family.zeroesEmptyNegativePrompt, entries.allSatisfy({ $0.text.isEmpty }) {
                let empty = try conditioning(conditioner.zeros(), s)
                return entries.map { (end: $0.endStep, conditioning: empty) }
            }
            return try entries.map { entry in
                if cache[entry.text] == nil {
                    cache[entry.text] = try conditioning(conditioner.conditioning(conditioner.chunks(entry.text), clipSkip: s.clipSkip), s)
                }
                return (end: entry.endStep, conditioning: cache[entry.text]!)
            }
        }
        let parts = try composition.flat.map { try scheduled($0) }
        let negative = try scheduled(ExtraNetworkTags.strip(s.negativePrompt), negative: true)
        for encoder in model.textEncoders { Self.shareDone(encoder.encoder.mappedWeights) }
        let b = s.batchSize
        // One denoiser for the whole pass: its contexts are padded and batched once per
        // combination of prompt-editing entries, and follow the schedule by its count of calls.
        let denoiser = CFGDenoiser(unet: model.unet, schedule: NoiseSchedule(alphasCumprod: model.alphasCumprod),
                                   conds: composition.indexes[0].map { (schedule: parts[$0.index], weight: Float($0.weight)) },
                                   uncond: negative, scale: s.cfgScale, batchSize: b, latentShape: shape)
        denoiser.prediction = model.config.prediction
        denoiser.inpaintBlend = extras.blend
        if model.takesImageConditioning {
            denoiser.imageConditioning = try extras.imageConditioning
                ?? imageConditioning(picture: nil, mask: nil, batch: b, size: (s.width, s.height))
        }
        let seeds = (0..<b).map { UInt64(truncatingIfNeeded: s.seeds(ofImage: $0).seed) }
        let subseeds = (0..<b).map { UInt64(truncatingIfNeeded: s.seeds(ofImage: $0).subseed) }
        // A1111 divides the seed-resize size by 8 (the SD VAE's scale).
        let resized = s.seedResizeFromWidth > 0 && s.seedResizeFromHeight > 0
        var noise = ImageNoise(kind: s.rng, shape: shape, seeds: seeds, subseeds: subseeds, subseedStrength: s.subseedStrength,
                               seedNoiseShape: resized ? [shape[0], s.seedResizeFromHeight / 8, s.seedResizeFromWidth / 8] : nil,
                               etaNoiseSeedDelta: s.etaNoiseSeedDelta)
        let method = s.sampler.method
        if method.usesTimesteps, model.config.prediction != .epsilon {
            throw GenerationError.invalid("\(method.name) is implemented for epsilon-prediction models only")
        }
        if initial != nil, method.usesTimesteps || !method.takesSigmaList {
            throw GenerationError.invalid("img2img and the hires fix's second pass run k-diffusion samplers over a sigma list; \(method.name) is not one yet")
        }
        let batchShape = [b] + shape
        var lastDenoised: Tensor?
        // txt2img: the whole schedule. img2img: A1111's schedule for the steps the strength
        // implies, from the sigma where the requested steps begin.
        var sigmas = self.sigmas(s), scheduleSigmas = sigmas
        if let initial {
            var whole = s
            let (total, start) = initial.steps
            guard total >= 1, start >= 0, start < total else {
                throw GenerationError.invalid("this denoising strength leaves no steps to run")
            }
            whole.steps = total
            scheduleSigmas = self.sigmas(whole)
            sigmas = Array(scheduleSigmas[start...])
        }
        // The SDE samplers' step noise: A1111's Brownian tree per image seed over the whole
        // schedule's positive sigma range, drawn with the same random source as the image (its
        // "NV" source for rng nv, which stands for A1111's default GPU source; torch's CPU
        // generator for cpu).
        var tree: BrownianTreeNoise?
        if method.usesBrownianNoise, let low = scheduleSigmas.filter({ $0 > 0 }).min(), let high = scheduleSigmas.max() {
            tree = try BrownianTreeNoise(shape: shape, sigmaMin: low, sigmaMax: high, seeds: (0..<b).map { s.seeds(ofImage: $0).seed }, source: s.rng)
        }
        var run = SamplingRun(sigmas: sigmas, steps: initial == nil ? s.steps : sigmas.count - 1, alphasCumprod: model.alphasCumprod,
                              options: s.samplerOptions, sgmNoiseMultiplier: s.sgmNoiseMultiplier,
                              denoise: { latent, sigma in
                                  let d = try denoiser(latent, sigma)
                                  lastDenoised = d
                                  return d
                              }, predictNoise: { try denoiser.eps($0, $1) },
                              noise: { sigma, next in
                                  try Tensor(shape: batchShape, data: stepNoise?(sigma, next) ?? tree?(sigma, next) ?? noise.next())
                              })
        run.predictNoiseAndUncond = { try denoiser.epsAndUncond($0, $1, scaleMultiplier: $2) }
        if let progress { run.afterStep = progress }
        if let preview = livePreview, preview.every > 0 {
            let family = model.family, reported = run.afterStep
            run.afterStep = { done, total in
                try reported(done, total)
                guard done % preview.every == 0, let d = lastDenoised else { return }
                let first = try d.sliced(dim: 0, 0, 1).contiguous().toArray()
                preview.show(LivePreview.rgb(first, height: shape[1], width: shape[2], family: family), shape[2], shape[1])
            }
        }
        let first = try Tensor(shape: batchShape, data: noise.first())
        let start = try initial.map { try $0.latents + first * sigmas[0] } ?? method.start(first, run)
        return try method.sample(start, run)
    }

    /// What the UNet reads for a text conditioning: its context and, for SDXL, the vector of the
    /// pooled text and the size conditioning A1111 sends (original size = target size = the
    /// image's height and width, crop top-left 0, 0).
    func conditioning(_ text: TextConditioning, _ s: GenerationSettings) throws -> UNetConditioning {
        let context = text.context
        guard model.unet.config.additionInputDim != nil else { return UNetConditioning(context: context) }
        guard let pooled = text.pooled else { throw GenerationError.invalid("this model's UNet needs a pooled text embedding, which its text encoders do not give") }
        let (h, w) = (Float(s.height), Float(s.width))
        let vector = try model.unet.additionVector(pooled: pooled, sizes: [h, w, 0, 0, h, w])
        return UNetConditioning(context: context, vector: vector)
    }

    /// The size of the images `s` makes: its own, or the hires fix's target in whole latent cells
    /// less A1111's truncation.
    public func outputSize(_ s: GenerationSettings) -> (width: Int, height: Int) {
        guard s.hires.enabled else { return (s.width, s.height) }
        let scale = model.vaeScale
        // The latent is the target divided by the VAE's scale (rounded down), less the truncation.
        let t = s.hires.target(width: s.width, height: s.height, latentScale: scale)
        return ((t.width / scale - t.truncateX) * scale, (t.height / scale - t.truncateY) * scale)
    }

    /// Generates the batch: latents (txt2img, or img2img / inpainting from `i2i`), decode, 8-bit
    /// RGB (with a mask, the unmasked pixels put back) and infotext per image.
    public func generate(_ settings: GenerationSettings, from i2i: ImageToImage? = nil,
                         progress: ((Int, Int) throws -> Void)? = nil) throws -> [GeneratedImage] {
        try withNetworks(settings).generateWithModel(settings, from: i2i, progress: progress)
    }

    /// This pipeline over the checkpoint with the `<lora:...>` networks of the settings' prompts
    /// merged into it (A1111 applies those of the prompt and the negative prompt for the whole
    /// generation); itself when the prompts name none.
    public func withNetworks(_ s: GenerationSettings) throws -> TextToImage {
        let tags = try ExtraNetworkTags.loras([s.prompt, s.negativePrompt])
        // A pipeline over a merged model keeps its networks.
        guard model.networks.isEmpty else { return self }
        guard !tags.isEmpty else {
            conditioner.embeddings?.setBundled([])
            return self
        }
        let (merged, messages) = try loras.model(for: model, tags: tags)
        for m in messages { onMessage?(m) }
        // The embeddings the networks bundle are there while they are in use (A1111 registers them with the network).
        let bundles = merged.networks.flatMap { n in
            n.network.bundledEmbeddings.sorted { $0.key < $1.key }.map { (name: $0.key, tensors: $0.value, network: n.network.path, shortHash: n.shortHash) }
        }
        for m in conditioner.embeddings?.setBundled(bundles) ?? [] { onMessage?(m) }
        var p = TextToImage(model: merged, tokenizer: conditioner.tokenizer, embeddings: conditioner.embeddings)
        p.onMessage = onMessage; p.upscalers = upscalers; p.loras = loras; p.livePreview = livePreview
        return p
    }

    func generateWithModel(_ settings: GenerationSettings, from i2i: ImageToImage?, progress: ((Int, Int) throws -> Void)?) throws -> [GeneratedImage] {
        let s = settings.withSeedsDrawn()
        try s.checkSeeds(images: s.batchSize)
        var inpainting: Inpainting.Prepared?
        let latents: [Float]
        if let i2i {
            (latents, inpainting) = try imageToImage(s, i2i, progress: progress)
        } else {
            latents = try self.latents(s, progress: progress)
        }
        let tiHashes = usedEmbeddings(s).map { e in
            e.name.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ",", with: "") + ": " + e.shortHash
        }.joined(separator: ", ")
        let scale = model.vaeScale
        let (width, height) = outputSize(s)
        let shape = [model.latentChannels, height / scale, width / scale]
        let per = shape.reduce(1, *)
        defer { Self.shareDone(model.vae.mappedWeights) }
        return try (0..<s.batchSize).map { i in
            let latent = Array(latents[(i * per)..<((i + 1) * per)])
            if latent.contains(where: { !$0.isFinite }) {
                onMessage?("warning: image \(i + 1) has non-finite values (NaN or infinity) in its latent, so its pixels are black: the model, an embedding or a setting is broken")
            }
            var picture = RGBImage(width: width, height: height, rgb: try decode(latent, shape: shape, tiled: s.vaeTiling))
            if let inpainting { picture = Inpainting.finish(picture, inpainting) }
            let image = s.image(i)
            return GeneratedImage(rgb: picture.rgb, width: picture.width, height: picture.height, seed: image.seed,
                                  infotext: infotext(image, tiHashes: tiHashes, img2img: i2i, masked: inpainting?.generationMask != nil),
                                  latent: latent)
        }
    }

    /// The end of a model part's share of a generation: its in-place weights and the allocator's
    /// spare blocks leave resident memory, so the next part's peak does not carry them.
    static func shareDone(_ part: MappedWeights) {
        part.releaseResidentPages()
        TensorStorage.releaseCachedBlocks()
    }

    /// VAE decode of one latent and A1111's 8-bit conversion: clamp((x + 1) / 2, 0, 1) * 255,
    /// truncated.
    public func decode(_ latent: [Float], shape: [Int], tiled: Bool = false) throws -> [UInt8] {
        let z = try Tensor(shape: [1] + shape, data: latent) * (1 / model.vae.config.scalingFactor)
        let image = try withNoGrad {   // [1, 3, H, W]
            tiled ? try model.vae.decodeTiled(z, latentTile: model.config.unet?.sampleSize ?? 64) : try model.vae.decode(z)
        }
        let (h, w) = (image.shape[2], image.shape[3])
        let v = try image.toArray()
        var rgb = [UInt8](repeating: 0, count: h * w * 3)
        for c in 0..<3 {
            for p in 0..<(h * w) {
                // A non-finite value (NaN from broken weights) becomes black rather than trapping.
                let x = (v[c * h * w + p] + 1) / 2
                rgb[p * 3 + c] = x.isNaN ? 0 : UInt8(255 * min(max(x, 0), 1))
            }
        }
        return rgb
    }

    /// A1111's infotext for one image, whose seeds `s` holds (`GenerationSettings.image(_:)`);
    /// an img2img image's "Denoising strength" in A1111's place for it, an inpainting model's
    /// "Conditional mask weight" after it, and with a mask (`masked`: a non-blank one was
    /// applied) the mask's options where A1111 appends them.
    public func infotext(_ s: GenerationSettings, tiHashes: String = "", img2img: ImageToImage? = nil, masked: Bool = false) -> Infotext {
        // "Precision: bf16" (sdshell's key) says the products were bf16, which changes the image.
        let modelFields: [(key: String, value: String)] = (model.shortHash.isEmpty ? [] : [("Model hash", model.shortHash)]) + [("Model", model.name)]
            + (model.precision == .bf16 ? [("Precision", "bf16")] : [])
        var p = GenerationParameters.infotextParameters(s, model: modelFields)
        let before = ["Model", "Variation seed", "Variation seed strength", "Seed resize from", "Denoising strength"]
        func insertAfterSeeds(_ key: String, _ value: String) {
            let at = (p.lastIndex { before.contains($0.key) } ?? p.firstIndex { $0.key == "Size" } ?? p.count - 1) + 1
            p.insert((key, value), at: at)
        }
        if let img2img, !p.contains(where: { $0.key == "Denoising strength" }) {
            insertAfterSeeds("Denoising strength", NumberText.shortest(img2img.denoise))
        }
        // A1111 prints the option's float default, 1.0.
        if model.takesImageConditioning { insertAfterSeeds("Conditional mask weight", "1.0") }
        if let mask = img2img?.inpainting {
            if mask.invert { p.append(("Mask mode", "Inpaint not masked")) }
            if mask.blur > 0 { p.append(("Mask blur", String(mask.blur))) }
            if masked, mask.onlyMasked { p += [("Inpaint area", "Only masked"), ("Masked area padding", String(mask.padding))] }
            if masked, let content = mask.content.infotext { p.append(("Masked content", content)) }
        }
        let loraHashes = model.networks.map { "\($0.network.name.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ",", with: "")): \($0.shortHash)" }
        if !loraHashes.isEmpty { p.append(("Lora hashes", loraHashes.joined(separator: ", "))) }
        if !tiHashes.isEmpty { p.append(("TI hashes", tiHashes)) }
        p.append(("Version", "sdshell \(SDShellVersion.string)"))
        return Infotext(prompt: s.prompt, negativePrompt: s.negativePrompt, parameters: p)
    }
}

/// What a sampling pass adds to the text conditioning: a 9-channel UNet's masked-picture
/// conditioning, and inpainting's blend of each denoised latent with the init latent outside
/// the mask (A1111's `init_latent * mask + nmask * denoised`).
struct PassExtras {
    var imageConditioning: Tensor?
    var blend: (latents: Tensor, keep: Tensor, repaint: Tensor)?
}

import Engine
import Models

/// A1111's CFG denoiser around k-diffusion's `CompVisDenoiser` (`CompVisVDenoiser` for
/// v-prediction models): the conditional and
/// unconditional contexts go through the UNet in one batch (conditional images first), each
/// prediction becomes a denoised latent `x - eps * sigma` (input scaled by 1/sqrt(sigma^2 + 1),
/// timestep from sigma by log-sigma interpolation), and the two are combined as
/// `uncond + (cond - uncond) * scale`.
public final class CFGDenoiser {
    /// A conditioning over the model calls of a generation (prompt editing): each one is in
    /// force up to and including call `end` (0-based), the last one after.
    public typealias Scheduled = [(end: Int, conditioning: UNetConditioning)]

    public let unet: UNet
    public let schedule: NoiseSchedule
    public let scale: Float
    public let batchSize: Int
    /// Latent shape of one image [C, H, W].
    public let latentShape: [Int]
    public var prediction = Prediction.epsilon
    /// A 9-channel (inpainting) UNet's extra input per image [B, 5, H, W], appended to each
    /// scaled latent the UNet reads (LDM's hybrid conditioning `c_concat`).
    public var imageConditioning: Tensor?
    /// Inpainting: each denoised latent becomes `latents * keep + repaint * denoised`.
    public var inpaintBlend: (latents: Tensor, keep: Tensor, repaint: Tensor)?
    /// The prompt's conditionings over the calls ([1, S, D] each; several with AND) and their weights.
    let condSchedules: [(entries: Scheduled, weight: Float)]
    /// The negative prompt's conditioning over the calls ([1, S, D]).
    let uncondSchedule: Scheduled
    /// Model calls made so far: the prompt-editing schedule is indexed by them, as in A1111
    /// (second-order samplers advance it twice a step).
    public private(set) var calls = 0
    /// The contexts of each combination of schedule entries, padded and batched once.
    private(set) var prepared: [[Int]: Contexts] = [:]

    /// The contexts of one model call: the conditionings padded to one length, and the batches
    /// the UNet reads (each image's conds, then each image's uncond), with SDXL's vectors in the
    /// same order.
    struct Contexts {
        let conds: [(context: Tensor, weight: Float)]
        let condContext: Tensor, uncondContext: Tensor
        let condVector: Tensor?, uncondVector: Tensor?
    }

    /// A denoiser for one generation; its contexts change at the schedules' ends.
    public init(unet: UNet, schedule: NoiseSchedule, conds: [(schedule: Scheduled, weight: Float)], uncond: Scheduled, scale: Float,
                batchSize: Int, latentShape: [Int]) {
        self.unet = unet; self.schedule = schedule; self.scale = scale
        self.batchSize = batchSize; self.latentShape = latentShape
        condSchedules = conds.map { (entries: $0.schedule, weight: $0.weight) }
        uncondSchedule = uncond
    }

    /// A denoiser with fixed contexts.
    public convenience init(unet: UNet, schedule: NoiseSchedule, conds: [(context: Tensor, weight: Float)], uncond: Tensor, scale: Float,
                            batchSize: Int, latentShape: [Int]) {
        self.init(unet: unet, schedule: schedule,
                  conds: conds.map { (schedule: [(end: 0, conditioning: UNetConditioning(context: $0.context))], weight: $0.weight) },
                  uncond: [(end: 0, conditioning: UNetConditioning(context: uncond))], scale: scale, batchSize: batchSize, latentShape: latentShape)
    }

    /// The entry of `entries` in force at `call`.
    private static func entry(_ entries: Scheduled, at call: Int) -> Int { entries.firstIndex { call <= $0.end } ?? 0 }

    /// The contexts for the current call, made once per combination of entries. Contexts of
    /// different lengths are padded by repeating their last row (A1111's stack_conds).
    private func contexts() throws -> Contexts {
        let key = condSchedules.map { Self.entry($0.entries, at: calls) } + [Self.entry(uncondSchedule, at: calls)]
        if let ready = prepared[key] { return ready }
        let rawConditionings = zip(condSchedules, key).map { $0.entries[$1].conditioning }
        let raw = zip(rawConditionings, condSchedules).map { (context: $0.context, weight: $1.weight) }
        let uncondConditioning = uncondSchedule[key.last!].conditioning
        let uncond = uncondConditioning.context
        let longest = raw.map { $0.context.shape[1] }.max() ?? 0
        let conds = try raw.map { c -> (context: Tensor, weight: Float) in
            let n = c.context.shape[1]
            guard n < longest else { return c }
            let last = try c.context.sliced(dim: 1, n - 1, n)
            return (try Tensor.concat([c.context] + Array(repeating: last, count: longest - n), dim: 1), c.weight)
        }
        let vectors = rawConditionings.compactMap(\.vector)
        let ready = try withNoGrad {
            Contexts(conds: conds,
                     condContext: try Tensor.concat(Array(repeating: conds.map(\.context), count: batchSize).flatMap { $0 }, dim: 0),
                     uncondContext: try Tensor.concat(Array(repeating: uncond, count: batchSize), dim: 0),
                     condVector: vectors.count == rawConditionings.count && !vectors.isEmpty
                        ? try Tensor.concat(Array(repeating: vectors, count: batchSize).flatMap { $0 }, dim: 0) : nil,
                     uncondVector: try uncondConditioning.vector.map { try Tensor.concat(Array(repeating: $0, count: batchSize), dim: 0) })
        }
        prepared[key] = ready
        return ready
    }

    /// The UNet outputs for [each image x each cond..., each image unconditioned]; when the
    /// conditional and unconditional contexts differ in length they run as two calls (A1111
    /// without "pad prompt/negative prompt").
    private func unetBatch(_ latent: Tensor, scaledBy cIn: Float, timestep t: Float, _ contexts: Contexts) throws -> Tensor {
        let b = batchSize, k = contexts.conds.count
        return try withNoGrad {
            let images = try latent.chunked(b, dim: 0)
            var condInput = try Tensor.concat(images.flatMap { Array(repeating: $0, count: k) }, dim: 0) * cIn
            var uncondInput = try latent * cIn
            if let imageConditioning {
                let perImage = try imageConditioning.chunked(b, dim: 0)
                condInput = try Tensor.concat([condInput, try Tensor.concat(perImage.flatMap { Array(repeating: $0, count: k) }, dim: 0)], dim: 1)
                uncondInput = try Tensor.concat([uncondInput, imageConditioning], dim: 1)
            }
            let (condContext, uncondContext) = (contexts.condContext, contexts.uncondContext)
            let (condVector, uncondVector) = (contexts.condVector, contexts.uncondVector)
            if condContext.shape[1] == uncondContext.shape[1] {
                let vector = try condVector.flatMap { c in try uncondVector.map { try Tensor.concat([c, $0], dim: 0) } }
                return try unet(Tensor.concat([condInput, uncondInput], dim: 0), timesteps: Array(repeating: t, count: b * k + b),
                                context: Tensor.concat([condContext, uncondContext], dim: 0), vector: vector)
            }
            let c = try unet(condInput, timesteps: Array(repeating: t, count: b * k), context: condContext, vector: condVector)
            let u = try unet(uncondInput, timesteps: Array(repeating: t, count: b), context: uncondContext, vector: uncondVector)
            return try Tensor.concat([c, u], dim: 0)
        }
    }

    /// A1111's combine: per image, uncond + sum over conds of (cond - uncond) * (weight * scale).
    private func combine(_ out: Tensor, _ conds: [(context: Tensor, weight: Float)], scale: Float) throws -> Tensor {
        let b = batchSize, k = conds.count
        let parts = try out.chunked(b * k + b, dim: 0)
        var images: [Tensor] = []
        for i in 0..<b {
            let u = parts[b * k + i]
            var d = u
            for (j, c) in conds.enumerated() { d = try d + (parts[i * k + j] - u) * (c.weight * scale) }
            images.append(d)
        }
        return b == 1 ? images[0] : try Tensor.concat(images, dim: 0)
    }

    /// Guided noise prediction at an integer timestep (A1111's timestep samplers: no input scaling).
    public func eps(_ latent: Tensor, _ timestep: Float) throws -> Tensor {
        let contexts = try self.contexts()
        defer { calls += 1 }
        return try combine(unetBatch(latent, scaledBy: 1, timestep: timestep, contexts), contexts.conds, scale: scale)
    }

    /// The guided noise prediction with the scale times `scaleMultiplier`, and the unconditional
    /// prediction of the same call (A1111's `cond_scale_miltiplier` and `last_noise_uncond`, which
    /// DDIM CFG++ uses).
    public func epsAndUncond(_ latent: Tensor, _ timestep: Float, scaleMultiplier: Float) throws -> (guided: Tensor, uncond: Tensor) {
        let contexts = try self.contexts()
        defer { calls += 1 }
        let out = try unetBatch(latent, scaledBy: 1, timestep: timestep, contexts)
        let b = batchSize, k = contexts.conds.count
        let uncond = try out.sliced(dim: 0, b * k, b * k + b).contiguous()
        return (try combine(out, contexts.conds, scale: scale * scaleMultiplier), uncond)
    }

    /// The denoiser the samplers call, for the batch's latent [B, C, H, W].
    public func callAsFunction(_ latent: Tensor, _ sigma: Float) throws -> Tensor {
        let contexts = try self.contexts()
        defer { calls += 1 }
        let b = batchSize, k = contexts.conds.count
        let (cSkip, cOut, cIn) = prediction.scalings(sigma: sigma)
        let t = schedule.timestep(sigma: sigma)
        let out = try unetBatch(latent, scaledBy: cIn, timestep: t, contexts)
        // The inputs in the batch's order, for x + out * c_out (eps) or out * c_out + x * c_skip (v).
        let images = try latent.chunked(b, dim: 0)
        let inputs = try Tensor.concat(images.flatMap { Array(repeating: $0, count: k) } + [latent], dim: 0)
        let denoised = prediction == .epsilon ? try inputs + out * cOut : try out * cOut + inputs * cSkip
        let guided = try combine(denoised, contexts.conds, scale: scale)
        guard let blend = inpaintBlend else { return guided }
        return try blend.latents * blend.keep + blend.repaint * guided
    }
}

/// What the UNet is conditioned on for one prompt: the cross-attention context [1, S, D] and,
/// for SDXL, the vector `y` [1, N] (pooled text and size embeddings).
public struct UNetConditioning {
    public var context: Tensor
    public var vector: Tensor?

    public init(context: Tensor, vector: Tensor? = nil) { self.context = context; self.vector = vector }
}

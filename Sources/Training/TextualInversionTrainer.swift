import Diffusion
import Engine
import Foundation
import Imaging
import Formats
import Models
import Prompting

/// How training turns a picture into latents (A1111's "latent sampling method").
public enum LatentSampling: String, Sendable, Codable, CaseIterable {
    /// One sample of the VAE's posterior per picture, kept for the whole run.
    case once
    /// The posterior's mean (no sampling).
    case deterministic
    /// A new sample every time the picture is used.
    case random
}

/// Settings of a textual-inversion run.
public struct TrainingOptions: Sendable {
    public var steps: Int
    /// An A1111 learning-rate schedule ("0.005", "0.005:100, 1e-3:1000, 1e-5").
    public var learnRate: String
    public var seed: UInt64
    public var saveEvery: Int
    public var latents: LatentSampling
    /// Mirror each picture left to right with probability 1/2, drawn per use.
    public var flip: Bool
    /// Pictures per forward pass.
    public var batchSize: Int
    /// Batches whose gradients are summed (each loss divided by this) before one optimizer step.
    public var accumulate: Int
    /// Clipping of the summed gradient before the optimizer step.
    public var clipping: GradientClipping?
    /// Where numbered copies (`NAME-STEP.pt`, or `.safetensors` as the embedding), previews (`NAME-STEP.png`) and the loss plot
    /// (`loss.png`) go (`outdir/train/NAME`); nil: none are written.
    public var artifactsFolder: String?
    /// A preview image every this many steps (0: none).
    public var previewEvery = 0
    /// The preview's prompt; nil: the template's first line with the first picture's caption.
    public var previewPrompt: String?
    /// Recompute the UNet's blocks in the backward pass (less memory, about a third more time, the
    /// same bits); nil: on for SDXL, whose activations at 1024x1024 would not fit in 24 GB.
    public var checkpointing: Bool?
    /// The generation settings previews are made with (A1111's "read parameters from txt2img
    /// when making previews": sampler, steps, CFG, seed, size, negative prompt); nil: A1111's
    /// defaults (Euler a, 20 steps, CFG 7, the run's seed, the training size).
    public var previewSettings: GenerationSettings?
    /// Caption tag shuffling and dropout (A1111's and kohya's options).
    public var tags = TrainingCaption.TagOptions()
    /// The LoRA networks merged into the model the embedding is trained on, as the embedding
    /// file records them ("NAME: HASH (te T, unet U), ..."); nil: none.
    public var networks: String?

    public init(steps: Int, learnRate: String = "0.005", seed: UInt64 = 0, saveEvery: Int = 500,
                latents: LatentSampling = .once, flip: Bool = false, batchSize: Int = 1, accumulate: Int = 1,
                clipping: GradientClipping? = nil) {
        self.steps = steps; self.learnRate = learnRate; self.seed = seed; self.saveEvery = saveEvery
        self.latents = latents; self.flip = flip; self.batchSize = batchSize; self.accumulate = accumulate
        self.clipping = clipping
    }
}

/// Trains an embedding's vectors: each step takes `accumulate` batches of `batchSize` pictures
/// from a shuffled order and, per picture, a template line, a flip, a timestep in [0, 999] and
/// noise, all drawn from one seeded generator; the gradients of the batches' losses (each divided
/// by `accumulate`) are summed, optionally clipped, and AdamW takes one step.
///
/// Nothing is lost across interruptions: at each save the embedding (`embeddings/NAME.pt`, or
/// SDXL's `NAME.safetensors`, with its step), the
/// optimizer state with the generator and data order (`NAME.pt.optim`) and `loss.csv`
/// are written atomically, and a trainer made on the same files continues exactly where the save
/// was, so an interrupted run and a resumed one end with the same bits as an uninterrupted one.
public final class TextualInversionTrainer {
    /// The resume state kept with the optimizer state (key `sdshell`).
    struct ResumeState: Codable {
        var random: TorchCPURandom
        var order: [Int]
        var position: Int
        /// The step this state was saved at (absent in files from before it was kept).
        var step: Int?
        /// With aspect-ratio buckets: where each batch of `order` ends.
        var bounds: [Int]?
    }

    public let name: String
    public let embeddingPath: String
    /// The embedding's lock (`FileLock`), held while the trainer exists.
    private let lock: FileLock
    public let options: TrainingOptions
    /// Steps done (the embedding's `step`).
    public private(set) var step: Int
    public private(set) var vectors: [Float]
    public private(set) var lossLog: TrainingLossLog
    let shape: [Int]
    var objective: TextualInversionLoss
    /// Whether the UNet's blocks are recomputed in the backward pass (`TrainingOptions.checkpointing`).
    public var checkpointing: Bool { objective.checkpointing }
    let dataset: TrainingDataset
    let template: TrainingTemplate
    var optimizer: AdamW
    var state: ResumeState
    var schedule: LearnRateSchedule.Cursor
    var latentCache: [Int: (mean: Tensor, std: Tensor)] = [:]
    /// The vectors when the trainer was made (the start of this run), for `change`.
    public private(set) var startVectors: [Float] = []
    /// The step of the last save (what the embedding file holds).
    public private(set) var savedStep = 0
    /// Test hook: the loss of this step is taken as NaN.
    var nonFiniteLossAtStep: Int?

    /// Steps the progress line's loss is averaged over (A1111's "loss over the last N steps").
    public static let lossWindow = 32

    /// The mean loss of the last `lossWindow` steps logged.
    public var recentLoss: Double? {
        let rows = lossLog.rows.suffix(Self.lossWindow)
        return rows.isEmpty ? nil : rows.reduce(0) { $0 + $1.loss } / Double(rows.count)
    }

    /// The mean L2 norm of the vectors (per vector, over all encoders' components).
    public var vectorNorm: Double {
        let n = shape[0], width = shape[1]
        return (0..<n).reduce(0.0) { sum, i in
            sum + vectors[(i * width)..<((i + 1) * width)].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        } / Double(max(n, 1))
    }

    /// How far the vectors moved since the run started: ||v - v0|| / ||v0|| (0 when they did not move).
    public var change: Double {
        var d = 0.0, base = 0.0
        for (a, b) in zip(vectors, startVectors) { d += (Double(a) - Double(b)) * (Double(a) - Double(b)); base += Double(b) * Double(b) }
        return base > 0 ? (d / base).squareRoot() : d.squareRoot()
    }

    /// Whether any vector component changed since the run started.
    public var vectorsMoved: Bool { vectors != startVectors }

    /// Prepares training of the embedding at `embeddingPath` (made by `embedding new` or an
    /// earlier run; on SDXL both encoders' vectors, trained as one [n, 768 + 1280] tensor). Its
    /// `.optim` is used when it belongs to these vectors; otherwise AdamW starts fresh (as A1111
    /// does), with the generator seeded from the seed and the step.
    public init(model: StableDiffusionModel, conditioner: Conditioner, dataset: TrainingDataset, template: TrainingTemplate,
                embeddingPath: String, lossLogPath: String, options: TrainingOptions) throws {
        // Held as long as the trainer lives: a second training or an `embedding new` of the same
        // name in another session is refused instead of one silently losing the other's work.
        lock = try FileLock(for: embeddingPath, purpose: "train it")
        guard let file = try EmbeddingFile.read(try ModelFile.open(embeddingPath)) else {
            throw FormatError.unsupported(file: embeddingPath, reason: "not a textual-inversion embedding")
        }
        guard !model.takesImageConditioning else {
            throw TrainingDatasetError.invalidOptions("\(model.name) is an inpainting model (9-channel UNet); train embeddings on the ordinary model it was made from, and use them on both")
        }
        guard options.batchSize >= 1, options.accumulate >= 1 else {
            throw TrainingDatasetError.invalidOptions("batch and accumulate must be at least 1")
        }
        guard options.batchSize <= dataset.samples.count else {
            throw TrainingDatasetError.invalidOptions("batch \(options.batchSize) is larger than the \(dataset.samples.count) pictures in \(dataset.folder)")
        }
        name = ((embeddingPath as NSString).lastPathComponent as NSString).deletingPathExtension
        self.embeddingPath = embeddingPath
        self.options = options
        self.dataset = dataset
        self.template = template
        objective = TextualInversionLoss(model: model, conditioner: conditioner)
        objective.checkpointing = options.checkpointing ?? (model.family == .sdxl)
        let parts = try zip(model.family.embeddingKeys, model.embeddingWidths).map { key, width -> Tensor in
            guard let stored = file.vectors[key] else {
                throw FormatError.unsupported(file: embeddingPath, reason: "it holds \(file.vectors.keys.sorted().joined(separator: " and ")) vectors; "
                                              + "\(model.family) models (\(model.name)) train \(model.family.embeddingKeys.joined(separator: " and "))")
            }
            var tensor = try stored.materialize().to(.f32)
            if tensor.rank == 1 { tensor = try tensor.reshaped([1, tensor.count]) }
            guard tensor.shape[1] == width else {
                throw FormatError.unsupported(file: embeddingPath,
                                              reason: "its \(key == "clip" ? "" : key + " ")vectors are \(tensor.shape[1]) wide; the model's text encoder (\(model.name)) needs \(width)")
            }
            return tensor
        }
        guard Set(parts.map { $0.shape[0] }).count == 1 else {
            throw FormatError.corrupt(file: embeddingPath, reason: "its vector sets have \(parts.map { String($0.shape[0]) }.joined(separator: " and ")) vectors; they must be as many")
        }
        let tensor = parts.count == 1 ? parts[0] : try Tensor.concat(parts, dim: 1)
        shape = tensor.shape
        vectors = try tensor.toArray()
        let optimPath = embeddingPath + ".optim"
        let saved = FileManager.default.fileExists(atPath: optimPath) ? try OptimizerStateFile.read(optimPath, vectors: vectors) : nil
        optimizer = saved?.optimizer ?? AdamW(count: vectors.count, lr: 0)
        let resumed = saved?.extra.flatMap { try? JSONDecoder().decode(ResumeState.self, from: Data($0.utf8)) }
        // An SDXL `.pt` has no room for the step; the resume state (kept only while it belongs to
        // these vectors) has it.
        step = file.step ?? resumed?.step ?? 0
        state = resumed ?? ResumeState(random: TorchCPURandom(seed: options.seed &+ UInt64(step)), order: [], position: 0)
        schedule = try LearnRateSchedule(options.learnRate, maxSteps: options.steps, startStep: step).cursor()
        lossLog = try TrainingLossLog(path: lossLogPath, resumingAt: step)
        startVectors = vectors
        savedStep = step
    }

    /// A trainer whose prompts are encoded with the model's own text encoders and no other
    /// embeddings, logging to `NAME.EXT.loss.csv` beside the embedding (how `train` runs).
    public convenience init(model: StableDiffusionModel, tokenizer: CLIPTokenizer, dataset: TrainingDataset,
                            template: TrainingTemplate, embeddingPath: String, options: TrainingOptions) throws {
        var conditioner = Conditioner(model: model, tokenizer: tokenizer)
        conditioner.embeddings = EmbeddingDatabase(directories: [], widths: model.embeddingWidths, tokenizer: tokenizer)
        try self.init(model: model, conditioner: conditioner, dataset: dataset, template: template, embeddingPath: embeddingPath,
                      lossLogPath: embeddingPath + ".loss.csv", options: options)
    }

    /// Runs until `options.steps` (or `until`, if smaller), or until `shouldStop` returns true
    /// after a step. Saves every `saveEvery` steps, and at the end when `saveAtEnd`.
    public func run(until last: Int? = nil, saveAtEnd: Bool = true, shouldStop: () -> Bool = { false }) throws {
        // Every step passes over the same frozen weights: their Winograd transforms are made once.
        try withWinogradTransformsKept { try steps(until: last, saveAtEnd: saveAtEnd, shouldStop: shouldStop) }
    }

    private func steps(until last: Int?, saveAtEnd: Bool, shouldStop: () -> Bool) throws {
        let end = min(last ?? options.steps, options.steps)
        while step < end {
            schedule.advance(to: step)
            if schedule.finished { break }
            try trainStep(learnRate: schedule.rate)
            if step % options.saveEvery == 0 { try save() }
            if options.previewEvery > 0, step % options.previewEvery == 0, let folder = options.artifactsFolder {
                try savePreview(in: folder)
            }
            if shouldStop() { break }
        }
        if saveAtEnd, step % options.saveEvery != 0 { try save() }
    }

    /// One optimizer step on the next `accumulate` batches.
    func trainStep(learnRate: Double) throws {
        var gradient = [Float](repeating: 0, count: vectors.count)
        var stepLoss: Double = 0
        for _ in 0..<options.accumulate {
            var prompts: [String] = [], latents: [Tensor] = [], noises: [Tensor] = [], timesteps: [Int] = [], sizes: [[Float]] = []
            var weights: [Tensor] = []
            for index in nextBatch() {
                let sample = dataset.samples[index]
                sizes.append(sample.conditioningSizes)
                let line = template.lines[Int(state.random.next32() % UInt32(template.lines.count))]
                let caption = TrainingCaption.applying(options.tags, to: sample.caption, random: &state.random)
                prompts.append(TrainingTemplate.prompt(line: line, caption: caption, name: name))
                let flipped = options.flip && state.random.next32() & 1 == 1
                let latent = try latentsFor(index, sample: sample, flipped: flipped)
                latents.append(latent)
                if dataset.alphaWeights {
                    let (c, h, w) = (latent.shape[1], latent.shape[2], latent.shape[3])
                    weights.append(try Tensor(shape: [1, c, h, w], data: sample.lossWeight(width: w, height: h, channels: c, flipped: flipped)))
                }
                timesteps.append(Int(state.random.next32() % 1000))
                noises.append(try Tensor(shape: latent.shape, data: state.random.randn(latent.count)))
            }
            let parameters = try Tensor(shape: shape, data: vectors, requiresGrad: true)
            // The backward pass takes its products as the forward pass did (bf16 at precision bf16).
            let loss = try withProductPrecision(objective.model.precision.products) {
                var loss = try objective(vectors: parameters, name: name, prompts: prompts, latents: Tensor.concat(latents, dim: 0),
                                         noise: Tensor.concat(noises, dim: 0), timesteps: timesteps, sizes: sizes,
                                         weights: weights.isEmpty ? nil : Tensor.concat(weights, dim: 0))
                if options.accumulate > 1 { loss = try loss * (1 / Float(options.accumulate)) }
                try loss.backward()
                return loss
            }
            let g = try parameters.grad!.toArray()
            for i in gradient.indices { gradient[i] += g[i] }
            stepLoss += Double(try loss.toArray()[0])
        }
        if nonFiniteLossAtStep == step + 1 { stepLoss = .nan }
        // A NaN or infinite loss would make every vector NaN: the run stops here, the file keeps the last save.
        guard stepLoss.isFinite, gradient.allSatisfy(\.isFinite) else {
            throw TrainingError.nonFinite(step: step + 1, loss: stepLoss, savedStep: savedStep, path: embeddingPath)
        }
        options.clipping?.apply(&gradient)
        optimizer.lr = learnRate
        optimizer.update(&vectors, gradient: gradient)
        step += 1
        let perStep = options.batchSize * options.accumulate
        lossLog.append(.init(step: step, stepsPerEpoch: max(1, dataset.samples.count / perStep), loss: stepLoss, learnRate: learnRate))
    }

    /// The pictures of the next batch. Without buckets: `batchSize` from a shuffled order, a new
    /// one when too few remain. With aspect-ratio buckets (pictures of several sizes): an epoch is
    /// each bucket's pictures shuffled and cut into batches (the last one of a bucket may be
    /// smaller), the batches then shuffled, so every batch holds pictures of one size.
    func nextBatch() -> [Int] {
        guard dataset.usesBuckets else {
            if state.position + options.batchSize > state.order.count {
                state.order = shuffled(dataset.samples.count)
                state.position = 0
            }
            defer { state.position += options.batchSize }
            return Array(state.order[state.position..<(state.position + options.batchSize)])
        }
        if state.position >= state.order.count || state.bounds == nil {
            var batches: [[Int]] = []
            for bucket in dataset.buckets {
                var members = bucket.members
                for i in stride(from: members.count - 1, to: 0, by: -1) { members.swapAt(i, Int(state.random.next32() % UInt32(i + 1))) }
                batches += stride(from: 0, to: members.count, by: options.batchSize).map { Array(members[$0..<min($0 + options.batchSize, members.count)]) }
            }
            let order = shuffled(batches.count)
            state.order = order.flatMap { batches[$0] }
            var end = 0
            state.bounds = order.map { end += batches[$0].count; return end }
            state.position = 0
        }
        let end = state.bounds!.first { $0 > state.position } ?? state.order.count
        defer { state.position = end }
        return Array(state.order[state.position..<end])
    }

    /// A permutation of 0..<count from the generator (Fisher-Yates).
    func shuffled(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(state.random.next32() % UInt32(i + 1)))
        }
        return order
    }

    /// Scaled latents [1, C, h, w] of a picture per the sampling mode. `once` draws its sample from
    /// a generator of its own, seeded by the run's seed and the picture, so it is the same sample
    /// whenever it is computed (before or after a resume).
    func latentsFor(_ index: Int, sample: TrainingSample, flipped: Bool) throws -> Tensor {
        let key = index * 2 + (flipped ? 1 : 0)
        let posterior: (mean: Tensor, std: Tensor)
        if let cached = latentCache[key] {
            posterior = cached
        } else {
            let pixels = try sample.pixels(flipped: flipped)
            posterior = try withNoGrad { try objective.model.vae.encode(try pixels.reshaped([1] + pixels.shape)) }
            latentCache[key] = posterior
        }
        let scale = try Tensor(shape: [1], data: [objective.model.config.vae?.scalingFactor ?? 0.18215])
        switch options.latents {
        case .deterministic:
            return try posterior.mean * scale
        case .once:
            var own = TorchCPURandom(seed: options.seed &* 1_000_003 &+ UInt64(key))
            let eps = try Tensor(shape: posterior.mean.shape, data: own.randn(posterior.mean.count))
            return try (posterior.mean + posterior.std * eps) * scale
        case .random:
            let eps = try Tensor(shape: posterior.mean.shape, data: state.random.randn(posterior.mean.count))
            return try (posterior.mean + posterior.std * eps) * scale
        }
    }

    /// Writes the numbered copy of the embedding and redraws the loss plot.
    func saveArtifacts(in folder: String) throws {
        try Folder.create(folder)
        guard let bytes = FileManager.default.contents(atPath: embeddingPath) else {
            throw FormatError.io(file: embeddingPath, reason: "cannot read the embedding just saved")
        }
        try AtomicFile.write([UInt8](bytes), to: "\(folder)/\(name)-\(step).\((embeddingPath as NSString).pathExtension)")
        let saved = Array(stride(from: max(options.saveEvery, 1), through: step, by: max(options.saveEvery, 1)))
        try LossPlot.write(lossLog.rows, title: "\(name): loss by step", saved: saved, norms: Self.savedNorms(in: folder, name: name),
                           to: folder + "/loss.png", font: try GridFont())
    }

    /// The mean vector norm of each numbered copy in `folder` (`NAME-STEP.pt` or `.safetensors`),
    /// by step: what the loss plot's norm panel draws.
    static func savedNorms(in folder: String, name: String) -> [(step: Int, norm: Double)] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return files.compactMap { file -> (Int, Double)? in
            let stem = (file as NSString).deletingPathExtension
            guard ["pt", "safetensors"].contains((file as NSString).pathExtension), stem.hasPrefix(name + "-"),
                  let step = Int(stem.dropFirst(name.count + 1)),
                  let model = try? ModelFile.open(folder + "/" + file), let e = try? EmbeddingFile.read(model) else { return nil }
            var norms: [Double] = []
            for v in e.vectors.values {
                guard let values = try? v.materialize().to(.f32).toArray(), let width = v.shape.last, width > 0 else { return nil }
                for r in 0..<(values.count / width) {
                    norms.append(values[(r * width)..<((r + 1) * width)].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
                }
            }
            return norms.isEmpty ? nil : (step, norms.reduce(0, +) / Double(norms.count))
        }.sorted { $0.0 < $1.0 }.map { (step: $0.0, norm: $0.1) }
    }

    /// The preview prompt: the option, or the template's first line with the first caption.
    public var previewText: String {
        options.previewPrompt ?? TrainingTemplate.prompt(line: template.lines[0], caption: dataset.samples[0].caption, name: name)
    }

    /// A preview image with the current vectors (Euler a, 20 steps, CFG 7, the run's seed, the
    /// training size, CPU generator), saved with its infotext as `NAME-STEP.png`; returns the path.
    @discardableResult
    public func savePreview(in folder: String) throws -> String {
        try Folder.create(folder)
        let db = EmbeddingDatabase(directories: [], widths: objective.model.embeddingWidths, tokenizer: objective.conditioner.tokenizer)
        db.register(try objective.embedding(try Tensor(shape: shape, data: vectors), name: name))
        let pipeline = TextToImage(model: objective.model, tokenizer: objective.conditioner.tokenizer, embeddings: db)
        var s = GenerationSettings()
        if let given = options.previewSettings {
            s = given
            s.batchSize = 1
            s.batchCount = 1
            s = s.withSeedsDrawn()
        } else {
            s.seed = Int64(truncatingIfNeeded: options.seed % 4_294_967_294)
            s.subseed = 0
            s.rng = .cpu
            s.width = dataset.samples[0].image.width
            s.height = dataset.samples[0].image.height
        }
        s.prompt = previewText
        let image = try pipeline.generate(s)[0]
        let path = "\(folder)/\(name)-\(step).png"
        var text = [("parameters", image.infotext.encoded)]
        // A1111's "save images with embedding in PNG chunks": the card carries the embedding
        // (one text encoder's vectors: A1111 writes no SDXL cards).
        if shape[1] == objective.model.embeddingWidths.first, objective.model.embeddingWidths.count == 1 {
            text.append(("sd-ti-embedding", EmbeddingImage.encoded(name: name, vectors: vectors, shape: shape, step: step,
                                                                  checkpointHash: objective.model.shortHash.isEmpty ? nil : objective.model.shortHash,
                                                                  checkpointName: objective.model.name)))
        }
        try PNGFile.write(rgb: image.rgb, width: image.width, height: image.height, text: text, to: path)
        return path
    }

    /// Writes the embedding, the optimizer and resume state, and loss.csv, each atomically; the
    /// embedding last, since its step decides where a resume starts. Then the numbered copy and
    /// the loss plot, when there is an artifacts folder.
    public func save() throws {
        defer { savedStep = step }
        state.step = step
        let extra = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try OptimizerStateFile.save(optimizer, vectors: vectors, shape: shape, extra: extra, to: embeddingPath + ".optim")
        try lossLog.save()
        try EmbeddingFile.write(name: name, vectors: try EmbeddingCreation.split(try Tensor(shape: shape, data: vectors), model: objective.model),
                                step: step, checkpointHash: objective.model.shortHash.isEmpty ? nil : objective.model.shortHash,
                                checkpointName: objective.model.name, networks: options.networks, to: embeddingPath)
        if let folder = options.artifactsFolder { try saveArtifacts(in: folder) }
    }
}

/// Why a training stopped on its own.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss (or its gradient) of a step was NaN or infinite.
    case nonFinite(step: Int, loss: Double, savedStep: Int, path: String)

    public var description: String {
        switch self {
        case let .nonFinite(step, loss, saved, path):
            return "the loss became \(loss.isNaN ? "NaN" : "infinite") at step \(step) (a learning rate too high, or a broken picture or model); "
                + "stopped with \(path) as saved at step \(saved)"
        }
    }
}

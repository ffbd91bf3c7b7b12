import ArgumentParser
import Foundation
import Models
import Prompting
import Training

/// Set by SIGINT: the training stops after the current step and saves.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// `sdshell train`: textual-inversion training of `embeddings/NAME.pt` on a folder of pictures.
/// Run it again on the same embedding to resume where the last save left it.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a textual-inversion embedding on a folder of pictures (resumes if saved state exists).")

    @Option(help: "Checkpoint: .safetensors, .ckpt or a diffusers folder.") var model: String
    @Argument(help: "The embedding's name (embeddings/NAME.pt; made from --init when missing).") var name: String
    @Option(help: "Folder of training pictures (PNG, JPEG); captions from NAME.txt or the file name.") var data: String
    @Option(help: "Total steps.") var steps = 1000
    @Option(help: "A1111 learning-rate schedule, e.g. \"0.005:100, 1e-3:1000, 1e-5\".") var lr = "0.005"
    @Option(help: "Template: none, style, style_filewords, subject, subject_filewords, or a file.") var template = "style_filewords"
    @Option(help: "Training size in pixels, square (default: the model's native size, as in scripts).") var size: Int?
    @Option(help: "Latent sampling: once, deterministic, random.") var latents = "once"
    @Flag(help: "Mirror pictures left to right at random.") var flip = false
    @Option(help: "Save every N steps.") var saveEvery = 500
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Embeddings folder.") var embeddings = "embeddings"
    @Option(help: "Init text for a new embedding.") var initText = "*"
    @Option(help: "Vectors of a new embedding.") var vectors = 1
    @Option(help: "Pictures per batch.") var batch = 1
    @Option(help: "Batches accumulated per optimizer step.") var accumulate = 1
    @Option(help: "Gradient clipping: value:X or norm:X.") var clipGrad: String?
    @Option(help: "Output folder: numbered copies, previews and the loss plot go to OUTDIR/train/NAME.") var outdir = "outputs"
    @Option(help: "A preview image every N steps (0: none).") var previewEvery = 0
    @Option(help: "The preview's prompt (default: the template's first line).") var preview: String?
    @Option(help: "Frozen model weights: full (f32) or half (16-bit; the embedding and optimizer stay f32).") var precision = "full"

    func run() throws {
        // Installed first: a Ctrl-C while the model loads already means "stop and save".
        signal(SIGINT) { _ in stopRequested = 1 }
        // Over a file-size limit, writes fail with EFBIG (reported, previous files kept) instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        guard let sampling = LatentSampling(rawValue: latents) else {
            throw ValidationError("latents must be once, deterministic or random")
        }
        var clipping: GradientClipping?
        if let clipGrad {
            guard let c = GradientClipping(clipGrad) else { throw ValidationError("--clip-grad must be value:X or norm:X with X > 0") }
            clipping = c
        }
        guard let weights = WeightPrecision(rawValue: precision) else { throw ValidationError("--precision must be full or half") }
        let sd = try StableDiffusionModel(path: model, precision: weights)
        let tokenizer = try CLIPTokenizer.shipped()
        let path = embeddings + "/" + EmbeddingCreation.fileName(name)
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(atPath: embeddings, withIntermediateDirectories: true)
            try EmbeddingCreation.create(name: name, initText: initText, vectors: vectors, model: sd, tokenizer: tokenizer,
                                         directory: embeddings)
            say("created \(path) (\(vectors) vectors from \"\(initText)\")")
        }
        let side = size ?? sd.nativeSize.width
        let dataset = try TrainingDataset(folder: data, width: side, height: side)
        for line in dataset.skipped { say("skipped \(line)") }
        var options = TrainingOptions(steps: steps, learnRate: lr, seed: seed, saveEvery: saveEvery, latents: sampling, flip: flip,
                                      batchSize: batch, accumulate: accumulate, clipping: clipping)
        options.artifactsFolder = outdir + "/train/" + name
        options.previewEvery = previewEvery
        options.previewPrompt = preview
        let trainer = try TextualInversionTrainer(model: sd, tokenizer: tokenizer, dataset: dataset, template: try TrainingTemplate.load(template),
                                                  embeddingPath: path, options: options)
        say("training \(name) from step \(trainer.step) to \(steps) on \(dataset.samples.count) pictures")
        let started = Date(), firstStep = trainer.step
        try trainer.run(shouldStop: {
            let done = trainer.step - firstStep, rate = Double(done) / max(Date().timeIntervalSince(started), 1e-9)
            let loss = trainer.lossLog.rows.last?.loss ?? .nan
            let eta = rate > 0 ? Double(steps - trainer.step) / rate : 0
            say(String(format: "step %d/%d  loss %.5f  %.2f it/s  ETA %.0f s", trainer.step, steps, loss, rate, eta))
            fflush(nil)   // all output streams: progress shows up when stdout is a file or pipe
            return stopRequested != 0
        })
        say(stopRequested != 0 ? "stopped at step \(trainer.step); saved \(path)" : "done: \(path) at step \(trainer.step)")
    }
}

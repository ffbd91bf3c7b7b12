import Engine
import Diffusion
import Foundation
import Formats
import Models
import Prompting
import Training

/// Commands about files: checkpoints (`model`, `models`, `inspect`), images (`info`) and
/// embeddings (`embeddings`, `embedding new`, `tokens`, `train`).
extension Interpreter {
    static let checkpointExtensions = ["safetensors", "ckpt", "pt", "bin"]

    /// A path as given, or a bare name looked up in `models_dir` (with or without extension).
    func modelPath(_ name: String) -> String? {
        let fm = FileManager.default
        if fm.fileExists(atPath: name) { return name }
        let dir = (setting("models_dir")?.description ?? "models")
        for candidate in [dir + "/" + name] + Self.checkpointExtensions.map({ "\(dir)/\(name).\($0)" }) where fm.fileExists(atPath: candidate) {
            return candidate
        }
        return nil
    }

    func loadModel(_ call: CommandCall) throws {
        let name = try call.string(at: 0, "a checkpoint path or name")
        try call.atMost(1)
        guard let path = modelPath(name) else {
            let known = checkpoints().map { ($0 as NSString).lastPathComponent }
            throw ScriptError(call.positionalPositions[0], "no checkpoint \"\(name)\" (not a file, and not in models_dir \"\(setting("models_dir")!)\")"
                              + NameSuggestion.hint(name, in: known))
        }
        let vae = try call.optionString("vae")
        let precision = try weightPrecision(call)
        let prediction = try predictionOverride(call)
        let loaded = try use(StableDiffusionModel(path: path, vae: vae, hashes: hashes, precision: precision, prediction: prediction))
        let hash = loaded.shortHash.isEmpty ? "no hash (a folder)" : "hash \(loaded.shortHash)"
        let kind = "\(loaded.family)" + (loaded.config.prediction == .v || loaded.family == .sd2 || loaded.predictionOverride != nil
            ? ", \(loaded.config.prediction == .v ? "v" : "epsilon") prediction (\(loaded.predictionSource))" : "")
        host.write("loaded \(loaded.name): \(kind), \(hash)" + loaded.precision.loadedNote)
        if let message = loaded.precision.bf16ProductsUnavailable { host.write(message) }
        var explicit = "model \(Value.quote(path))"
        if let vae { explicit += " vae=\(Value.quote(vae))" }
        // The precision used, unless it is the one an f32 checkpoint gets by default (so that a
        // replay loads the model as this session did whatever the default).
        if loaded.precision != .full || precision == .full && loaded.automaticPrecision == .half {
            explicit += " precision=\(Value.quote(loaded.precision.rawValue))"
        }
        if let prediction { explicit += " prediction=\(Value.quote(prediction == .v ? "v" : "eps"))" }
        try journal.record(explicit, comments: ["\(loaded.name): \(kind), \(hash)"], outputs: [])
    }

    /// Makes `loaded` the session's model (a new pipeline and embeddings follow it).
    @discardableResult
    func use(_ loaded: StableDiffusionModel) -> StableDiffusionModel {
        model = loaded
        pipeline = nil
        embeddingsStorage = nil
        return loaded
    }

    /// Checkpoint files and diffusers folders in `models_dir`.
    func checkpoints() -> [String] {
        let dir = (setting("models_dir")?.description ?? "models")
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.filter { name in
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: dir + "/" + name, isDirectory: &isDirectory)
            if isDirectory.boolValue { return fm.fileExists(atPath: dir + "/" + name + "/model_index.json") }
            return Self.checkpointExtensions.contains((name as NSString).pathExtension.lowercased())
        }.map { dir + "/" + $0 }
    }

    func listModels(_ call: CommandCall) throws {
        try call.atMost(0)
        let found = checkpoints()
        if found.isEmpty { host.write("no checkpoints in \(setting("models_dir")!)") }
        for path in found { host.write(path + (model?.path == path ? "  (loaded)" : "")) }
    }

    func info(_ call: CommandCall) throws {
        let path = try call.string(at: 0, "an image path")
        try call.atMost(1)
        let image = try PNGFile.read(path)
        guard let parameters = image.text("parameters") else {
            host.write("\(path): no generation parameters")
            return
        }
        host.write(parameters)
        if let statement = image.text("sdscript") { host.write("sdscript: " + statement) }
    }

    func inspect(_ call: CommandCall) throws {
        let path = try call.string(at: 0, "a file path")
        try call.atMost(1)
        let file = try ModelFile.open(path)
        var description = try FileDescription(file, hashes: hashes)
        if EmbeddingFile.recognize(file) == nil { description.lines.insert(contentsOf: ArchitectureDetector.describe(file), at: 2) }
        for w in description.warnings { host.warn(w) }
        for line in description.lines { host.write(line) }
    }

    func listEmbeddings(_ call: CommandCall) throws {
        try call.atMost(1)
        let db = try embeddings(embeddingDirectories())
        if !call.positional.isEmpty {
            guard call.positional[0] == .string("reload") else {
                throw ScriptError(call.positionalPositions[0], "expected `reload` or nothing after `embeddings`")
            }
        }
        for message in db.reload() { host.warn(message) }
        for line in EmbeddingListing(db).lines { host.write(line) }
    }

    /// The LoRA library of the `loras_dir` setting (the pipeline's when one is loaded).
    var loraLibrary: LoRALibrary {
        let directories = [setting("loras_dir")?.description ?? "loras"]
        if let pipeline, pipeline.loras.directories == directories { return pipeline.loras }
        return LoRALibrary(directories: directories, hashes: hashes)
    }

    /// `loras`: every network file in `loras_dir` with its kinds, rank, family, the checkpoint it
    /// was trained on (kohya's metadata) and A1111's hash; unreadable files with the reason.
    func listLoras(_ call: CommandCall) throws {
        try call.atMost(0)
        let library = loraLibrary
        let files = library.files()
        if files.isEmpty { host.write("no LoRA files in \(library.directories.joined(separator: ", "))") }
        for file in files {
            do {
                let (network, hash) = try library.network(file.name)
                var parts = [network.kinds.joined(separator: "+")]
                if let rank = network.rank { parts.append("rank \(rank)") }
                parts.append("\(network.modules.count) layers")
                if let family = network.familyHint { parts.append("for \(family)") }
                if let base = network.metadata["ss_sd_model_name"], !base.isEmpty { parts.append("trained on \(base.escapingControlCharacters)") }
                if !network.bundledEmbeddings.isEmpty { parts.append("bundles " + network.bundledEmbeddings.keys.sorted().joined(separator: ", ").escapingControlCharacters) }
                parts.append("hash \(hash)")
                host.write("\(file.name.escapingControlCharacters)  " + parts.joined(separator: ", ") + "  \(file.path.escapingControlCharacters)")
            } catch {
                host.write("\(file.name.escapingControlCharacters)  not usable: \(error)")
            }
        }
    }

    func tokens(_ call: CommandCall) throws {
        let prompt = try call.string(at: 0, "a prompt")
        try call.atMost(1)
        let db = try embeddings(embeddingDirectories())
        for message in db.reload() { host.warn(message) }
        let steps: Int = { if case let .integer(n)? = setting("steps") { return Int(n) }; return 20 }()
        for line in TokenReport(prompt: prompt, tokenizer: try tokenizer, embeddings: db, steps: steps).lines { host.write(line) }
    }

    /// `embedding new NAME init="TEXT" vectors=N [overwrite=true] [format=...]`, into the first
    /// embeddings directory (`format`: "pt" or "safetensors"; default the model family's kind).
    func newEmbedding(_ call: CommandCall) throws {
        if call.positional.first == .string("inspect") { return try inspectEmbedding(call) }
        if call.positional.first == .string("combine") { return try combineEmbeddings(call) }
        guard call.positional.first == .string("new") else {
            throw ScriptError(call.positionalPositions.first ?? call.position, "expected `new`, `inspect` or `combine` after `embedding` (usage: \(call.spec.usage))")
        }
        for option in ["top"] where call.option(option) != nil {
            throw ScriptError(call.optionPosition(option), "\(option) is an option of `embedding inspect`")
        }
        let name = try call.string(at: 1, "a name")
        try call.atMost(2)
        let model = try requireModel(call.position)
        let directory = try writableEmbeddingsDirectory()
        let initText = try call.optionString("init") ?? "*"
        let count = try call.optionInteger("vectors") ?? 1
        let overwrite = try call.optionBool("overwrite") ?? false
        let format = try call.optionString("format")
        if let format, !EmbeddingCreation.fileExtensions.contains(format) {
            throw ScriptError(call.optionPosition("format"), "format must be \"pt\" or \"safetensors\" (got \(Value.quote(format)))")
        }
        let create = { [self] in
            try EmbeddingCreation.create(name: name, initText: initText, vectors: count, model: model, tokenizer: try tokenizer,
                                         directory: directory, overwrite: overwrite, format: format).path
        }
        // In a sharded run every shard runs `embedding new`: the first makes the file (the same
        // bytes on every shard), the others leave it, and so does a shard rerun whose training
        // had begun. A shard that meets another creating it (the name's lock) waits for it.
        if shardState != nil, !overwrite {
            for attempt in 0... {
                do {
                    let path = try create()
                    host.write("created \(path): \(count) vector\(count == 1 ? "" : "s") from \(Value.quote(initText))")
                    break
                } catch let EmbeddingCreation.Error.exists(path) {
                    host.write("\(path) is there already (made by another shard, or trained by this shard's earlier run): left as it is")
                    break
                } catch FormatError.locked where attempt < 100 {
                    usleep(100_000)
                }
            }
            try journal.record(call.source(), outputs: [], outdir: outdir)
            return
        }
        let path = try create()
        host.write("created \(path): \(count) vector\(count == 1 ? "" : "s") from \(Value.quote(initText))")
        try journal.record(call.source(), outputs: [], outdir: outdir)
    }

    /// `embedding combine NAME "EXPR" [overwrite=true] [format=...]`: a new embedding from
    /// embedding-merge arithmetic on embeddings and quoted words (`EmbeddingCombination`).
    func combineEmbeddings(_ call: CommandCall) throws {
        let name = try call.string(at: 1, "the new embedding's name")
        let expression = try call.string(at: 2, "an expression such as \"'cat' * 0.5 + my-style\"")
        try call.atMost(3)
        let model = try requireModel(call.position)
        let tokenizer = try self.tokenizer
        let db = try embeddings(embeddingDirectories())
        for message in db.reload() { host.warn(message) }
        let vectors = try located(call.positionalPositions[2]) {
            try EmbeddingCombination.evaluate(expression, database: db, model: model, tokenizer: tokenizer)
        }
        let format = try call.optionString("format")
        let path = try located(call.position) {
            try EmbeddingCreation.save(name: name, model: model, directory: try writableEmbeddingsDirectory(),
                                       overwrite: try call.optionBool("overwrite") ?? false, format: format) { vectors }
        }
        host.write("created \(path): \(vectors.shape[0]) vector\(vectors.shape[0] == 1 ? "" : "s") from \(Value.quote(expression))")
        try journal.record(call.source(), outputs: [], outdir: outdir)
    }

    /// `embedding inspect NAME [init="TEXT"] [top=5]`: the embedding-inspector view of an
    /// embedding, or of a word's token rows when no embedding has that name.
    func inspectEmbedding(_ call: CommandCall) throws {
        let name = try call.string(at: 1, "an embedding name or a word")
        try call.atMost(2)
        let model = try requireModel(call.position)
        let tokenizer = try self.tokenizer
        let top = try call.optionInteger("top") ?? 5
        guard (1...100).contains(top) else { throw ScriptError(call.optionPosition("top"), "top must be between 1 and 100 (got \(top))") }
        let db = try embeddings(embeddingDirectories())
        for message in db.reload() { host.warn(message) }
        let vectors: [Tensor]
        if let e = db.embeddings[name] {
            vectors = (0..<e.widths.count).map { e.vectors(forEncoder: $0) }
            var about = "\(name.escapingControlCharacters): \(e.vectorCount) vector\(e.vectorCount == 1 ? "" : "s") of width \(e.widths.map(String.init).joined(separator: " + "))"
            if let step = e.step { about += ", step \(step)" }
            if let hash = e.checkpointHash { about += ", trained on \((e.checkpointName ?? "?").escapingControlCharacters) [\(hash.escapingControlCharacters)]" }
            about += ", hash \(e.shortHash), \(e.file.escapingControlCharacters)"
            host.write(about)
        } else {
            let ids = tokenizer.encode(name)
            guard !ids.isEmpty else { throw ScriptError(call.positionalPositions[1], "no embedding named \(Value.quote(name)), and it has no tokens to show") }
            vectors = try model.textEncoders.map { try $0.encoder.tokenEmbeddings(ids) }
            host.write("\(Value.quote(name)) (no embedding of that name: its \(ids.count) token row\(ids.count == 1 ? "" : "s"): \(ids.map(String.init).joined(separator: " ")))")
        }
        let report = try EmbeddingInspection(vectors: vectors, model: model, tokenizer: tokenizer, initText: try call.optionString("init"), top: top)
        let names = model.family == .sdxl ? ["clip_l", "clip_g"] : ["clip"]
        for line in report.lines(tokenizer: tokenizer, encoderNames: names) { host.write(line) }
    }

    /// The `prediction` option ("v" or "eps"; nil when absent: the model's config or A1111's test decides).
    func predictionOverride(_ call: CommandCall) throws -> Prediction? {
        guard let text = try call.optionString("prediction") else { return nil }
        switch text.lowercased() {
        case "v", "v_prediction": return .v
        case "eps", "epsilon": return .epsilon
        default: throw ScriptError(call.optionPosition("prediction"), "prediction must be \"v\" or \"eps\" (got \(Value.quote(text)))")
        }
    }

    /// The `precision` option: nil for `auto` (the default: `WeightPrecision.automatic` for the checkpoint).
    func weightPrecision(_ call: CommandCall) throws -> WeightPrecision? {
        let text = try call.optionString("precision") ?? TrainingParameters.string("precision")
        if text == "auto" { return nil }
        guard let precision = WeightPrecision(rawValue: text) else {
            throw ScriptError(call.optionPosition("precision"), "precision must be \(WeightPrecision.choicesInWords) (got \(Value.quote(text)))"
                              + NameSuggestion.hint(text, in: ["auto"] + WeightPrecision.allCases.map(\.rawValue)))
        }
        return precision
    }

    /// The model a training at `precision` runs on: the session's model, or the same files loaded
    /// again at that precision, with the session's model released meanwhile so that only one copy
    /// of the weights is in memory (`restoreSessionModel` loads it back).
    func modelForTraining(precision: WeightPrecision, position: SourcePosition) throws -> StableDiffusionModel {
        let current = try requireModel(position)
        if current.precision == precision { return current }
        let (path, vae, prediction) = (current.path, current.vaePath, current.predictionOverride)
        model = nil
        pipeline = nil
        do {
            let loaded = try StableDiffusionModel(path: path, vae: vae, hashes: hashes, precision: precision, prediction: prediction)
            host.write("loaded \(loaded.name) with \(precision.weightsDescription) weights for training")
            return loaded
        } catch {
            model = try? StableDiffusionModel(path: path, vae: vae, hashes: hashes, precision: current.precision, prediction: prediction)
            throw error
        }
    }

    /// Puts the session's own model back after a training that ran on a copy at another precision.
    func restoreSessionModel(path: String, vae: String?, precision: WeightPrecision, prediction: Prediction?) {
        guard model == nil else { return }
        do {
            model = try StableDiffusionModel(path: path, vae: vae, hashes: hashes, precision: precision, prediction: prediction)
        } catch {
            host.warn("could not load \(path) again after training: \(error) (use `model` to load it)")
        }
    }

    /// `train NAME data=DIR [options]`: trains `embeddings_dir/NAME.pt` (SDXL: `NAME.safetensors`,
    /// or the `.pt` when that is the one there), resuming from its saved state.
    func train(_ call: CommandCall) throws {
        let name = try call.string(at: 0, "the embedding's name")
        try call.atMost(1)
        // A sharded run trains only its own `train` statements (each is one unit).
        shardState?.trained.insert(name)
        let unit = try nextShardUnit(at: call.position)
        guard unit.owned else {
            host.write("train \(name): shard \(unit.number % (shardState?.shard.count ?? 1)) trains it")
            return
        }
        shardState?.current = unit.number
        defer { shardState?.current = nil }
        guard let data = try call.optionString("data") else { throw ScriptError(call.position, "`train` needs data=DIR, the folder of training pictures") }
        let sessionModel = try requireModel(call.position)
        let precision = try weightPrecision(call)
        var clipping: GradientClipping?
        if let text = try call.optionString("clip_grad") {
            guard let c = GradientClipping(text) else {
                throw ScriptError(call.optionPosition("clip_grad"), "clip_grad must be \"value:X\" or \"norm:X\" with X > 0 (got \(Value.quote(text)))")
            }
            clipping = c
        }
        let steps = try call.optionInteger("steps") ?? TrainingParameters.integer("steps")
        let size: Int
        switch call.option("size") {
        case nil: size = nativeSize.0
        case let .integer(n)?: size = Int(n)
        case let .size(w, h)? where w == h: size = w
        case let other?: throw ScriptError(call.optionPosition("size"), "size must be a square size or an integer, not \(other.literal)")
        }
        guard let latents = LatentSampling(rawValue: try call.optionString("latents") ?? TrainingParameters.string("latents")) else {
            throw ScriptError(call.optionPosition("latents"), "latents must be once, deterministic or random")
        }
        var options = TrainingOptions(steps: steps, learnRate: try call.optionString("lr") ?? TrainingParameters.string("lr"),
                                      seed: UInt64(max(0, try call.optionInteger("seed") ?? TrainingParameters.integer("seed"))),
                                      saveEvery: try call.optionInteger("save_every") ?? TrainingParameters.integer("save_every"), latents: latents,
                                      flip: try call.optionBool("flip") ?? false, batchSize: try call.optionInteger("batch") ?? TrainingParameters.integer("batch"),
                                      accumulate: try call.optionInteger("accumulate") ?? TrainingParameters.integer("accumulate"), clipping: clipping)
        options.artifactsFolder = outdir + "/train/" + name
        options.previewEvery = try call.optionInteger("preview_every") ?? TrainingParameters.integer("preview_every")
        options.previewPrompt = try call.optionString("preview")
        if try call.optionBool("preview_from_settings") ?? false {
            options.previewSettings = try generationSettings(prompt: "", try resolvedSettings([]))
        }
        options.checkpointing = try call.optionBool("checkpointing")
        func probability(_ name: String) throws -> Double {
            let v: Double
            switch call.option(name) {
            case nil: return 0
            case let .real(d)?: v = d
            case let .integer(i)?: v = Double(i)
            case let other?: throw ScriptError(call.optionPosition(name), "\(name) must be a number from 0 to 1, not \(other.kindName)")
            }
            guard v.isFinite, (0...1).contains(v) else { throw ScriptError(call.optionPosition(name), "\(name) must be from 0 to 1 (got \(v))") }
            return v
        }
        let keep = try call.optionInteger("keep_tokens") ?? 0
        guard (0...1000).contains(keep) else { throw ScriptError(call.optionPosition("keep_tokens"), "keep_tokens must be from 0 to 1000 (got \(keep))") }
        options.tags = TrainingCaption.TagOptions(shuffle: try call.optionBool("shuffle_tags") ?? false, dropout: try probability("tag_dropout"),
                                                  keep: keep, captionDropout: try probability("caption_dropout"))
        let directory = try writableEmbeddingsDirectory()
        if replaySandbox != nil {
            for ext in EmbeddingCreation.fileExtensions { try copyIntoReplay(EmbeddingCreation.fileName(name, extension: ext), to: directory) }
        }
        guard let path = EmbeddingCreation.existingPath(name, directory: directory, family: sessionModel.family) else {
            let expected = directory + "/" + EmbeddingCreation.fileName(name, extension: sessionModel.family.embeddingExtension)
            throw ScriptError(call.positionalPositions[0], "no embedding \(expected) (create it first: embedding new \(Value.quote(name)) init=\"...\" vectors=N)")
        }
        let buckets = try call.optionBool("buckets") ?? false
        let dataset = try TrainingDataset(folder: data, width: size, height: size, alphaWeights: try call.optionBool("alpha_weight") ?? false,
                                          bucketStep: buckets ? sessionModel.vaeScale * 8 : nil)
        if buckets {
            host.write("buckets: " + dataset.buckets.map { "\($0.width)x\($0.height) (\($0.members.count))" }.joined(separator: ", "))
        }
        for line in dataset.skipped { host.warn("skipped \(line)") }
        let template = try TrainingTemplate.load(try call.optionString("template") ?? TrainingParameters.string("template"))
        let files = (sessionModel.path, sessionModel.vaePath, sessionModel.precision, sessionModel.predictionOverride)
        // The training's own scope: its model (maybe a 16-bit copy) is released before the
        // session's model is loaded back.
        defer { restoreSessionModel(path: files.0, vae: files.1, precision: files.2, prediction: files.3) }
        var trainingModel = try modelForTraining(precision: precision ?? sessionModel.precision, position: call.position)
        if let text = try call.optionString("loras") {
            let tags = try located(call.optionPosition("loras")) { try ExtraNetworkTags.loras([text]) }
            guard !tags.isEmpty, ExtraNetworkTags.strip(text).trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ScriptError(call.optionPosition("loras"), "loras must be tags such as \"<lora:NAME:0.8>\" and nothing else (got \(Value.quote(text)))")
            }
            let (merged, messages) = try located(call.optionPosition("loras")) { try loraLibrary.model(for: trainingModel, tags: tags) }
            for m in messages { host.warn(m) }
            trainingModel = merged
            options.networks = merged.networks.map {
                "\($0.network.name): \($0.shortHash) (te \($0.textEncoderMultiplier), unet \($0.unetMultiplier))"
            }.joined(separator: ", ")
        }
        try train(name: name, call: call, pictures: dataset.samples.count, trainer: TextualInversionTrainer(
            model: trainingModel, tokenizer: try tokenizer, dataset: dataset, template: template, embeddingPath: path, options: options))
    }

    /// A replayed `train` of an embedding the journal did not create trains a copy: the file, its
    /// optimizer state and loss log are copied from the session's first embeddings folder into
    /// the replay's own (the original is never touched; it may have been trained further since).
    func copyIntoReplay(_ file: String, to sandbox: String) throws {
        let source = Self.directories(setting("embeddings_dir"))[0]
        let fm = FileManager.default
        guard !fm.fileExists(atPath: sandbox + "/" + file), fm.fileExists(atPath: source + "/" + file) else { return }
        for suffix in ["", ".optim", ".loss.csv"] where fm.fileExists(atPath: source + "/" + file + suffix) {
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: source + "/" + file + suffix)))
            try AtomicFile.write(bytes, to: sandbox + "/" + file + suffix)
        }
    }

    /// Runs a prepared training as a job: progress, Ctrl-C saves and stops, the journal entry.
    private func train(name: String, call: CommandCall, pictures: Int, trainer: TextualInversionTrainer) throws {
        let steps = trainer.options.steps, path = trainer.embeddingPath
        host.write("training \(name) from step \(trainer.step) to \(steps) on \(pictures) pictures")
        var interrupted = false
        let started = Date(), firstStep = trainer.step, saveEvery = max(trainer.options.saveEvery, 1)
        do {
            try trainer.run(shouldStop: {
                // The time to the next save at the rate so far.
                let done = trainer.step - firstStep, perStep = done > 0 ? Date().timeIntervalSince(started) / Double(done) : 0
                let toSave = min(saveEvery - trainer.step % saveEvery, steps - trainer.step)
                let nextSave = done > 0 && toSave > 0 ? String(format: ", next save in %.0f s", perStep * Double(toSave)) : ""
                host.progress(step: trainer.step, total: steps,
                              label: String(format: "loss %.5f (mean of the last %d), vector norm %.4f, moved %.2f%%",
                                            trainer.recentLoss ?? .nan, min(TextualInversionTrainer.lossWindow, trainer.lossLog.rows.count),
                                            trainer.vectorNorm, 100 * trainer.change) + nextSave)
                interrupted = host.interruptRequested
                return interrupted
            })
        } catch let error as TrainingError {
            host.progressDone()
            try journal.record(call.source(), outputs: [], outdir: outdir)
            throw ScriptError(call.position, error.description)
        }
        host.progressDone()
        if !interrupted, !trainer.vectorsMoved, trainer.step > 0 {
            host.warn("warning: the vectors of \(name) did not move in this run (a learning rate of 0, or a schedule that ended): the embedding is as it started")
        }
        try journal.record(call.source(), outputs: [], outdir: outdir)
        if interrupted {
            host.clearInterrupt()
            host.warn("interrupted at step \(trainer.step); saved \(path) (run the same `train` again to resume)")
            throw Interrupted(position: call.position)
        }
        host.write("trained \(path) to step \(trainer.step)")
    }
}

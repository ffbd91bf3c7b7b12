import Diffusion
import Engine
import Foundation
import Imaging
import Formats
import Models
import Prompting

/// `generate`, bare prompts and pasted infotext: txt2img with every setting made explicit.
extension Interpreter {
    /// Every generation setting with its value for one statement: session settings, then the
    /// statement's options, then model- and sampler-dependent defaults.
    func resolvedSettings(_ overrides: [(name: String, value: (Value, SourcePosition))]) throws -> [String: Value] {
        var values: [String: Value] = [:]
        for name in Settings.names { if let v = setting(name) { values[name] = v } }
        for (name, (value, position)) in overrides where Settings.definition(name) != nil {
            values[name] = try checkedOption(name, value, at: position)
        }
        if let replaySandbox { values["outdir"] = .string(replaySandbox.outdir) } else if shardState != nil, let given = overrides.last(where: { $0.name == "outdir" }) {
            // (The setting is redirected by `setting`; an `outdir=` option here.)
            values["outdir"] = .string(shardOutdir(try checkedOption("outdir", given.value.0, at: given.value.1).description))
        }
        if values["size"] == nil { let (w, h) = nativeSize; values["size"] = .size(width: w, height: h) }
        return values
    }

    /// Fixes `seed` (and `subseed` when a variation strength uses it) when -1, so the journal
    /// records the seeds used (`GenerationSettings.withSeedsDrawn`, the one seed rule).
    func fixSeeds(_ values: inout [String: Value], at position: SourcePosition) throws {
        let drawn = try generationSettings(prompt: "", values).withSeedsDrawn()
        // Shards must make the images one machine would: a seed drawn at random on each is not that.
        if let shardState, values["seed"] != .integer(drawn.seed) || values["subseed"] != nil && values["subseed"] != .integer(drawn.subseed) {
            throw ScriptError(position, Self.randomSeedInShard(shardState.shard))
        }
        values["seed"] = .integer(drawn.seed)
        if values["subseed"] != nil { values["subseed"] = .integer(drawn.subseed) }
    }

    /// The pipeline's settings for a statement, from values checked against the settings table;
    /// a missing or mistyped value is a bug here, reported as such.
    func generationSettings(prompt: String, _ v: [String: Value]) throws -> GenerationSettings {
        do {
            return try GenerationParameters.settings(prompt: prompt, v)
        } catch {
            throw ScriptError(SourcePosition(file: "<generation>", line: 0, column: 0), "internal error: \(error.message)")
        }
    }

    /// The explicit statement a journal records.
    static func explicitStatement(_ command: String, prompt: String, _ v: [String: Value], leading: [(String, Value)] = []) -> String {
        ([command, Value.quote(prompt)] + leading.map { "\($0.0)=\($0.1.literal)" }
            + GenerationParameters.all.filter { row in !leading.contains { $0.0 == row.name } }
                .compactMap { row in v[row.name].flatMap { row.journals($0) ? "\(row.name)=\($0.literal)" : nil } })
            .joined(separator: " ")
    }

    /// The loaded model, or an error saying how to load one.
    func requireModel(_ position: SourcePosition) throws -> StableDiffusionModel {
        guard let model else { throw ScriptError(position, "no model loaded (use `model \"PATH\"` first)") }
        return model
    }

    var tokenizer: CLIPTokenizer {
        get throws {
            if let tokenizerStorage { return tokenizerStorage }
            let t = try CLIPTokenizer.shipped()
            tokenizerStorage = t
            return t
        }
    }

    /// The embedding directories of a setting value.
    static func directories(_ v: Value?) -> [String] {
        switch v {
        case let .string(s): return [s]
        case let .list(items): return items.map(\.description)
        default: return ["embeddings"]
        }
    }

    /// The embedding directories in force: the setting's (or `value`'s), after a replay's own folder.
    func embeddingDirectories(_ value: Value? = nil) -> [String] {
        (replaySandbox.map { [$0.embeddings] } ?? []) + Self.directories(value ?? setting("embeddings_dir"))
    }

    /// Where `embedding new` and `train` write: the first embeddings directory, or a replay's own folder.
    func writableEmbeddingsDirectory() throws -> String {
        if let replaySandbox {
            try Folder.create(replaySandbox.embeddings)
            return replaySandbox.embeddings
        }
        return Self.directories(setting("embeddings_dir"))[0]
    }

    /// The embeddings database for the directories and the loaded model's width (kept while they
    /// stay the same; it rescans changed files itself before each generation).
    func embeddings(_ directories: [String]) throws -> EmbeddingDatabase {
        let widths = model?.embeddingWidths ?? [768]
        let key = "\(widths)|" + directories.joined(separator: "\u{0}")
        if let embeddingsStorage, embeddingsStorage.key == key { return embeddingsStorage.database }
        let db = EmbeddingDatabase(directories: directories, widths: widths, tokenizer: try tokenizer, hashes: hashes)
        embeddingsStorage = (key, db)
        pipeline = nil
        return db
    }

    /// The txt2img pipeline for the loaded model and embedding directories.
    func pipeline(_ values: [String: Value], at position: SourcePosition) throws -> TextToImage {
        let model = try requireModel(position)
        let db = try embeddings(embeddingDirectories(values["embeddings_dir"]))
        let upscalers = [(values["upscalers_dir"] ?? setting("upscalers_dir"))?.description ?? "upscalers"]
        let loras = [(values["loras_dir"] ?? setting("loras_dir"))?.description ?? "loras"]
        var p: TextToImage
        if let pipeline, pipeline.model === model, pipeline.conditioner.embeddings === db {
            p = pipeline
        } else {
            p = TextToImage(model: model, tokenizer: try tokenizer, embeddings: db)
            let host = self.host
            p.onMessage = { host.warn($0) }
        }
        if p.upscalers.directories != upscalers { p.upscalers = UpscalerLibrary(directories: upscalers) }
        if p.loras.directories != loras { p.loras = LoRALibrary(directories: loras, hashes: hashes) }
        pipeline = p
        return p
    }

    /// The `inline_width` in force.
    static func inlineColumns(_ values: [String: Value]) -> Int {
        if case let .integer(n)? = values["inline_width"] { return Int(n) }
        return 0
    }

    /// Runs one generation statement's batches, saving each image; returns what was saved.
    /// `batchDone` is called after each batch is saved, with the batch's settings values (its own
    /// seeds, `count=1`) and its images, so the journal can record each batch as it is made.
    func makeImages(prompt: String, _ values: [String: Value], at position: SourcePosition, label: String = "",
                    save: Bool = true, img2img: ImageToImage? = nil,
                    batchDone: (([String: Value], [(image: GeneratedImage, path: String)]) throws -> Void)? = nil)
        throws -> [(image: GeneratedImage, path: String)] {
        var p = try pipeline(values, at: position)
        let base = try generationSettings(prompt: prompt, values)
        let count = base.batchCount
        try located(position) { try base.checkSeeds(images: count * base.batchSize) }
        if let trained = shardState?.trained, let name = trained.sorted().first(where: { base.prompt.contains($0) || base.negativePrompt.contains($0) }) {
            throw ScriptError(position, "the prompt names \(name), an embedding this script trains: in a sharded run another shard may train it. "
                              + "Run the trainings sharded first, then the generations (docs/cluster.md)")
        }
        let tags = (ExtraNetworkTags.find(base.prompt) + ExtraNetworkTags.find(base.negativePrompt)).filter { !$0.hasPrefix("<lora:") }
        if !tags.isEmpty {
            host.warn("\(position): warning: not applied (sdshell runs LoRA networks only); removed from the prompt as A1111 does: "
                      + tags.map(\.escapingControlCharacters).joined(separator: " "))
        }
        let (nativeWidth, nativeHeight) = nativeSize
        if base.width * base.height > 16 * nativeWidth * nativeHeight {
            host.warn("\(position): warning: \(base.width)x\(base.height) is \(base.width * base.height / (nativeWidth * nativeHeight)) times the area "
                      + "of \(model?.name ?? "the model")'s native \(nativeWidth)x\(nativeHeight): steps will be slow and the image is unlikely to be coherent (Ctrl-C stops it)")
        }
        let outdir = values["outdir"]?.description ?? self.outdir
        if case let .integer(every)? = values["live_preview"], every > 0 {
            let host = self.host, mode = values["inline"]?.description ?? "off", columns = Self.inlineColumns(values)
            p.livePreview = (Int(every), { rgb, w, h in host.showPreview(rgb: rgb, width: w, height: h, mode: mode, columns: columns) })
        }
        let probe = InterruptProbe(host)
        var out: [(image: GeneratedImage, path: String)] = []
        for i in 0..<count {
            // A sharded run makes only its own units (the numbering is the same on every shard).
            let unit = try nextShardUnit(at: position)
            guard unit.owned else { continue }
            let s = base.batch(i)
            let what = count > 1 ? "batch \(i + 1) of \(count)" + (label.isEmpty ? "" : ", " + label) : label
            let images: [GeneratedImage]
            do {
                images = try Cancellation.checking({ probe.requested }) {
                    try p.generate(s, from: img2img) { step, total in
                        self.host.progress(step: step, total: total, label: what)
                        if self.host.interruptRequested { throw GenerationError.cancelled(afterStep: step) }
                    }
                }
                host.progressDone()
            } catch {
                let step = (error as? GenerationError)?.cancelledStep
                guard step != nil || error is Cancellation.Requested else { throw error }
                host.progressDone()
                host.clearInterrupt()
                host.warn("interrupted" + (step.map { " after step \($0)" } ?? " during a step")
                          + (out.isEmpty ? "; nothing saved" : "; kept \(out.map(\.path).joined(separator: ", "))"))
                throw Interrupted(position: position)
            }
            var saved: [(image: GeneratedImage, path: String)] = []
            for image in images {
                let path = save ? try located(position) { try OutputFolder(root: outdir, kind: img2img == nil ? "txt2img" : "img2img").save(image) } : ""
                saved.append((image, path))
            }
            out += saved
            var batchValues = values
            batchValues["seed"] = .integer(s.seed)
            if values["subseed"] != .integer(-1) { batchValues["subseed"] = .integer(s.subseed) }
            batchValues["count"] = .integer(Int64(s.batchCount))
            shardState?.current = unit.number
            defer { shardState?.current = nil }
            try batchDone?(batchValues, saved)
        }
        return out
    }

    func generate(_ call: CommandCall) throws {
        let prompt = try call.string(at: 0, "a prompt")
        try call.atMost(1)
        var values = try resolvedSettings(call.options)
        try fixSeeds(&values, at: call.position)
        try runGeneration(prompt: prompt, values, at: call.position)
    }

    /// Generates, reports, shows inline and journals one explicit generation (each batch as an
    /// entry of its own, as soon as it is saved: an interrupted statement's journal holds exactly
    /// the images that were kept); an img2img one with its picture and the options that
    /// journal it in front.
    func runGeneration(prompt: String, _ values: [String: Value], at position: SourcePosition,
                       img2img: (ImageToImage, leading: [(String, Value)])? = nil) throws {
        var outputs: [(path: String, digest: String)] = []
        defer {
            produced += outputs
            variables["last_images"] = .list(outputs.map { .string($0.path) })
        }
        _ = try makeImages(prompt: prompt, values, at: position, img2img: img2img?.0) { batchValues, saved in
            var batchOutputs: [(path: String, digest: String)] = []
            for (image, path) in saved {
                self.host.write("\(path)  seed \(image.seed)")
                batchOutputs.append((path, ImageDigest.of(rgb: image.rgb, width: image.width, height: image.height)))
                if let mode = values["inline"]?.description, mode != "off" { self.host.showInline(path: path, mode: mode, columns: Self.inlineColumns(values)) }
            }
            outputs += batchOutputs
            let used = try self.pipeline.map { $0.usedEmbeddings(try self.generationSettings(prompt: prompt, batchValues)) } ?? []
            let comments = used.isEmpty ? [] : ["embeddings: " + used.map { "\($0.name) \($0.shortHash)" }.joined(separator: ", ")]
            try self.located(position) {
                try self.journal.record(Self.explicitStatement(img2img == nil ? "generate" : "img2img", prompt: prompt, batchValues,
                                                               leading: img2img?.leading ?? []), comments: comments,
                                        outputs: batchOutputs, outdir: values["outdir"]?.description)
            }
        }
    }

    /// The warning for parameters made with another model: A1111 hashes compare by prefix (old
    /// 8-digit and new 10-digit hashes); a folder model has no hash to compare.
    static func modelHashWarning(recorded: String?, loadedHash: String, loadedName: String) -> String? {
        guard let recorded = recorded?.lowercased(), !recorded.isEmpty else { return nil }
        if loadedHash.isEmpty {
            return "the parameters were made with model hash \(recorded); the loaded model \(loadedName) is a folder and has no hash to compare"
        }
        if recorded.hasPrefix(loadedHash) || loadedHash.hasPrefix(recorded) { return nil }
        return "the parameters were made with model hash \(recorded); the loaded model \(loadedName) is \(loadedHash)"
    }

    /// An img2img or inpainting infotext ("Denoising strength" without a hires fix) cannot be
    /// made again from its text: its pictures are not in it. The error says which files are
    /// missing and the `img2img` options that give them, with its strength and mask settings.
    static func refuseImageToImageInfotext(_ info: Infotext, at position: SourcePosition) throws {
        guard let strength = info["Denoising strength"], !info.parameters.contains(where: { $0.key.hasPrefix("Hires") }) else { return }
        var options = ["init=\"FILE.png\"", "denoise=\(strength.trimmingCharacters(in: .whitespaces).escapingControlCharacters)"]
        let maskKeys = ["Mask blur", "Mask mode", "Inpaint area", "Masked area padding", "Masked content"]
        let masked = maskKeys.contains { info[$0] != nil }
        if masked {
            options.append("mask=\"MASK.png\"")
            if let blur = info["Mask blur"].flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) { options.append("mask_blur=\(blur)") } else { options.append("mask_blur=0") }
            if info["Mask mode"]?.contains("not masked") == true { options.append("inpainting_mask_invert=1") }
            let content = info["Masked content"]?.trimmingCharacters(in: .whitespaces)
            let fill = Inpainting.MaskedContent.allCases.first { $0.infotext == content }
            options.append("inpainting_fill=\((fill ?? .original).rawValue)")
            if info["Inpaint area"]?.contains("Only masked") == true {
                options.append("inpaint_full_res=true")
                if let padding = info["Masked area padding"].flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                    options.append("inpaint_full_res_padding=\(padding)")
                }
            }
        }
        let what = masked ? "an inpainting infotext: it needs its init picture and its mask" : "an img2img infotext: it needs its init picture"
        throw ScriptError(position,
                          "these parameters are \(what), which the text does not carry; "
                          + "give \(masked ? "them" : "it") with: img2img PROMPT \(options.joined(separator: " ")) and the pasted settings as options")
    }

    /// Infotext keys that describe an image without changing how it is made here (the model is
    /// checked by hash; embeddings are found by name).
    static let informationalInfotextKeys: Set<String> = ["Model hash", "Model", "Version", "TI hashes", "Hashes", "Lora hashes",
                                                         "Conditional mask weight", "Precision"]

    /// Warnings for the networks of a pasted "Lora hashes" whose file here has another hash.
    func loraHashWarnings(_ info: Infotext) -> [String] {
        guard let text = info["Lora hashes"] else { return [] }
        let library = loraLibrary
        var out: [String] = []
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let here = try? library.network(parts[0]).shortHash, !here.hasPrefix(parts[1]), !parts[1].hasPrefix(here) else { continue }
            out.append("LoRA \(parts[0].escapingControlCharacters) here has hash \(here), the infotext's was made with \(parts[1].escapingControlCharacters): the image will differ")
        }
        return out
    }

    /// Pasted A1111 infotext: generates with its settings (what it leaves out is A1111's default,
    /// not this session's setting, as `GenerationParameters` says per row); warns when the model
    /// hash differs and names what it cannot apply.
    func generateFromInfotext(_ text: String, at position: SourcePosition) throws {
        try located(position) {
            let info = Infotext.parse(text)
            let model = try requireModel(position)
            if let warning = Self.modelHashWarning(recorded: info["Model hash"], loadedHash: model.shortHash, loadedName: model.name) {
                host.warn("\(position): warning: " + warning)
            }
            if (info["Precision"] == "bf16") != (model.precision == .bf16) {
                host.warn("\(position): warning: " + (model.precision == .bf16
                    ? "the model is loaded with precision \"bf16\" and the infotext was not made so: the image will differ"
                    : "the infotext was made with bf16 products; load the model with precision=\"bf16\" to make the same image"))
            }
            try Self.refuseImageToImageInfotext(info, at: position)
            for w in loraHashWarnings(info) { host.warn("\(position): warning: " + w) }
            let pasted = GenerationParameters.pasted(info)
            let overrides = pasted.values.map { (name: $0.name, value: ($0.value, position)) }
            let known = GenerationParameters.infotextKeys.union(Self.informationalInfotextKeys)
            let ignored = info.parameters.filter { !known.contains($0.key) || pasted.notUnderstood.contains($0.key) }
                .map { "\($0.key): \($0.value.trimmingCharacters(in: .whitespaces))" }
            if !ignored.isEmpty {
                host.warn("\(position): warning: not applied (sdshell does not do these yet): " + ignored.joined(separator: ", "))
            }
            var values = try resolvedSettings(overrides)
            try fixSeeds(&values, at: position)
            try runGeneration(prompt: info.prompt, values, at: position)
        }
    }
}

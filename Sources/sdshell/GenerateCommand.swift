import ArgumentParser
import Diffusion
import Foundation
import Imaging
import Formats
import Models
import Prompting

/// `sdshell generate`: one txt2img run from the command line, with the script language's
/// defaults (`rng` nv, the model's native size).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generate images from a prompt (txt2img).")

    @Option(help: "Checkpoint: .safetensors, .ckpt or a diffusers folder.") var model: String
    @Argument(help: "The prompt.") var prompt: String
    @Option(help: "Negative prompt.") var negative = ""
    @Option(help: "Sampling steps.") var steps = 20
    @Option(help: "Sampler (A1111 names, e.g. \"Euler a\", \"DPM++ 2M Karras\").") var sampler = "Euler a"
    @Option(help: "Schedule: automatic, uniform, karras, exponential.") var schedule = "automatic"
    @Option(help: "CFG scale.") var cfg: Float = 7
    @Option(help: "Seed (-1: random).") var seed: Int64 = -1
    @Option(help: "Width in pixels (default: the model's native size, as in scripts).") var width: Int?
    @Option(help: "Height in pixels (default: the model's native size, as in scripts).") var height: Int?
    @Option(help: "Images in the batch.") var batch = 1
    @Option(help: "Random source: cpu or nv.") var rng = "nv"
    @Option(help: "Clip skip.") var clipSkip = 1
    @Option(help: "Output folder.") var outdir = "outputs"
    @Option(help: "Embeddings folder (scanned recursively; file stems are the names).") var embeddings = "embeddings"
    @Flag(help: "Decode images larger than the model's native size in tiles (diffusers' enable_tiling): less memory, slightly different pixels.") var vaeTiling = false
    @Option(help: "Weights: full (f32) or half (16-bit linear and convolution weights; the same images from an f16 checkpoint in half the memory).") var precision = "full"

    func run() throws {
        guard let (s, implied) = Sampler.named(sampler) else {
            throw ValidationError("unknown sampler \"\(sampler)\"; known: \(Sampler.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var settings = GenerationSettings()
        settings.prompt = prompt; settings.negativePrompt = negative; settings.steps = steps; settings.sampler = s
        settings.cfgScale = cfg; settings.seed = seed
        settings.batchSize = batch; settings.clipSkip = clipSkip; settings.vaeTiling = vaeTiling
        guard let source = RandomSourceKind(rawValue: rng.lowercased()) else { throw ValidationError("rng must be cpu or nv") }
        settings.rng = source
        if schedule.lowercased() != "automatic" {
            guard let k = NoiseSchedule.Kind(rawValue: schedule.lowercased()) else {
                throw ValidationError("unknown schedule \(schedule); known: automatic, uniform, karras, exponential")
            }
            settings.schedule = k
        } else {
            settings.schedule = implied
        }
        guard let weights = WeightPrecision(rawValue: precision) else { throw ValidationError("--precision must be full or half") }
        do {
            let sd = try StableDiffusionModel(path: model, precision: weights)
            settings.width = width ?? sd.nativeSize.width
            settings.height = height ?? sd.nativeSize.height
            let tokenizer = try CLIPTokenizer.shipped()
            let db = EmbeddingDatabase(directories: [embeddings], width: sd.config.textEncoder!.hiddenSize, tokenizer: tokenizer)
            var pipeline = TextToImage(model: sd, tokenizer: tokenizer, embeddings: db)
            pipeline.onMessage = { complain($0) }
            let images = try pipeline.generate(settings) { step, total in
                if isatty(2) != 0 { FileHandle.standardError.write(Data("\rstep \(step)/\(total)".utf8)) }
            }
            if isatty(2) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
            let folder = OutputFolder(root: outdir)
            for image in images { say(try folder.save(image)) }
        } catch let e as FormatError {
            complain("error: \(e.description)")
            throw ExitCode.failure
        } catch let e as GenerationError {
            complain("error: \(e.description)")
            throw ExitCode.failure
        }
    }
}

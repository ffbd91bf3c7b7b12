import Engine
import Formats
import Foundation

/// A loaded Stable Diffusion checkpoint: its three networks, configuration, noise schedule and
/// the names and hashes A1111 reports for it.
public final class StableDiffusionModel: @unchecked Sendable {
    public let path: String
    /// The separate VAE file given at load, if any.
    public let vaePath: String?
    /// How the frozen weights are held.
    public let precision: WeightPrecision
    /// File stem, as A1111's `Model:`.
    public let name: String
    /// A1111's 10-hex short hash (full-file sha256; empty for folders).
    public let shortHash: String
    public let config: ModelConfig
    public var family: ModelFamily { config.family }
    /// Where the prediction type came from: "config", "given" (the load's override) or A1111's
    /// test pass ("detected").
    public let predictionSource: String
    /// The prediction type the load was told to use, if any (kept so that a reload keeps it).
    public let predictionOverride: Prediction?
    public let textEncoder: CLIPTextModel
    /// SDXL's second text encoder (OpenCLIP bigG).
    public let textEncoder2: CLIPTextModel?
    public let unet: UNet
    public let vae: AutoencoderKL
    /// alphas_cumprod of the DDPM schedule (from the checkpoint when it carries one).
    public let alphasCumprod: [Float]
    /// The checkpoint's tensors by name (a LoRA merge rebuilds networks from them).
    let weights: ModelWeights
    /// The precision this checkpoint gets when none is asked for (`WeightPrecision.automatic`).
    public var automaticPrecision: WeightPrecision { WeightPrecision.automatic(for: weights) }
    /// The LoRA-family networks merged into this model's weights (none for a loaded checkpoint).
    public let networks: [AppliedNetwork]

    /// Pixels per latent cell (8 for SD; 2 ^ (VAE levels - 1) in general).
    public var vaeScale: Int { config.vaeScale }
    /// Channels of the latent the sampler works on (the VAE's).
    public var latentChannels: Int { vae.config.latentChannels }
    /// Whether the UNet also reads a mask and a masked-picture latent beside the latent (an
    /// inpainting model: 9 input channels, LDM's hybrid conditioning).
    public var takesImageConditioning: Bool { unet.config.inChannels == vae.config.latentChannels * 2 + 1 }

    /// The size the model was trained at: its config's sample size times the VAE's scale when a
    /// config gives one, else the family's (512 for SD 1.x and SD 2.x base, 768 for SD 2.x v,
    /// 1024 for SDXL). The default size of a generation everywhere (scripts, the prompt,
    /// `sdshell generate`).
    public var nativeSize: (width: Int, height: Int) { (config.nativeSize, config.nativeSize) }

    /// The widths an embedding's vectors must have to be used with this model, one per text encoder.
    public var embeddingWidths: [Int] { textEncoders.map(\.encoder.config.hiddenSize) }

    /// The text encoders with the way the family reads each, in context order.
    public var textEncoders: [(encoder: CLIPTextModel, reading: TextEncoderReading)] {
        Array(zip([textEncoder] + (textEncoder2.map { [$0] } ?? []), family.textEncoderReadings))
    }

    /// Loads a checkpoint (any layout ModelWeights reads), optionally with a separate VAE file.
    /// `prediction` overrides the prediction type (else: the config's, or for SD 2.x A1111's test
    /// pass of the UNet). `precision` nil: `WeightPrecision.automatic` for the checkpoint.
    public init(path: String, vae vaePath: String? = nil, hashes: HashCache? = nil, precision requested: WeightPrecision? = .full,
                prediction: Prediction? = nil) throws {
        self.path = path
        self.vaePath = vaePath
        predictionOverride = prediction
        name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var weights = try ModelWeights(try ModelFile.open(path))
        let precision = requested ?? WeightPrecision.automatic(for: weights)
        self.precision = precision
        if let vaePath { weights.replaceVAE(with: try ModelWeights(try ModelFile.open(vaePath))) }
        self.weights = weights
        networks = []
        var config = try ArchitectureDetector.detect(weights)
        guard let unetConfig = config.unet, let vaeConfig = config.vae, let textConfig = config.textEncoder else {
            throw FormatError.unsupported(file: path, reason: "a checkpoint needs a UNet, a VAE and a text encoder")
        }
        guard unetConfig.inChannels == vaeConfig.latentChannels || unetConfig.inChannels == 2 * vaeConfig.latentChannels + 1 else {
            throw FormatError.unsupported(file: path, reason: "this is \(config.family.rawValue) with a \(unetConfig.inChannels)-channel UNet input"
                                          + (unetConfig.inChannels == 5 ? " (a depth model)" : "")
                                          + ", which sdshell does not run yet (it runs \(vaeConfig.latentChannels) channels, and \(2 * vaeConfig.latentChannels + 1) for inpainting models)")
        }
        guard config.family != .sdxl || config.textEncoder2?.projectionDim != nil else {
            throw FormatError.unsupported(file: path, reason: "an SDXL checkpoint needs its second text encoder's projection (text_projection)")
        }
        let (missing, wrong) = ExpectedWeights.check(weights, config)
        guard missing.isEmpty, wrong.isEmpty else {
            let list = (missing.prefix(8) + wrong.prefix(4)).joined(separator: ", ")
            throw FormatError.unsupported(file: path, reason: "\(missing.count) missing and \(wrong.count) mis-shaped weights: \(list)")
        }
        precision.configureAllocator()
        textEncoder = try CLIPTextModel(weights, config: textConfig, precision: precision)
        textEncoder2 = try config.textEncoder2.map { try CLIPTextModel(weights, component: "text_encoder_2", config: $0, precision: precision) }
        unet = try UNet(weights, config: unetConfig, precision: precision)
        let unet = self.unet
        let resolved = try PredictionDetector.resolve(weights, config, override: prediction) { unet }
        config.prediction = resolved.prediction
        predictionSource = resolved.source
        self.config = config
        vae = try AutoencoderKL(weights, config: vaeConfig, precision: precision)
        if let ac = weights.schedule["alphas_cumprod"], ac.count == 1000 {
            alphasCumprod = try ac.materialize().to(.f32).toArray()
        } else {
            alphasCumprod = Self.scaledLinearAlphasCumprod()
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            shortHash = ""
        } else {
            let sha = try (hashes ?? HashCache()).sha256(path)
            shortHash = FileHash.shortHash(sha, embedding: false)
        }
    }

    /// `base` with other text encoders and UNet (a LoRA merge); everything else is shared.
    init(_ base: StableDiffusionModel, textEncoder: CLIPTextModel, textEncoder2: CLIPTextModel?, unet: UNet, networks: [AppliedNetwork]) {
        path = base.path; vaePath = base.vaePath; precision = base.precision; name = base.name; shortHash = base.shortHash
        config = base.config; predictionSource = base.predictionSource; predictionOverride = base.predictionOverride
        vae = base.vae; alphasCumprod = base.alphasCumprod; weights = base.weights
        self.textEncoder = textEncoder; self.textEncoder2 = textEncoder2; self.unet = unet; self.networks = networks
    }

    /// SD's scaled-linear schedule (betas 0.00085 to 0.012 over 1000 steps, cumulative product in
    /// double, stored as float32 as checkpoints carry it).
    public static func scaledLinearAlphasCumprod() -> [Float] { scaledLinearAlphasCumprod64().map { Float($0) } }

    /// The same in double precision (LDM derives its noising buffers from these).
    public static func scaledLinearAlphasCumprod64() -> [Double] {
        var acc = 1.0
        let a = 0.00085.squareRoot(), b = 0.012.squareRoot()
        // torch.linspace in double: steps from the start for the first half, from the end after.
        let step = (b - a) / 999
        return (0..<1000).map { i in
            let beta = i < 500 ? a + step * Double(i) : b - step * Double(999 - i)
            acc *= 1 - beta * beta
            return acc
        }
    }
}

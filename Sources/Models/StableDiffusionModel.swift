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
    public let textEncoder: CLIPTextModel
    public let unet: UNet
    public let vae: AutoencoderKL
    /// alphas_cumprod of the DDPM schedule (from the checkpoint when it carries one).
    public let alphasCumprod: [Float]

    /// Pixels per latent cell (8 for SD; 2 ^ (VAE levels - 1) in general).
    public var vaeScale: Int { 1 << (vae.config.blockOutChannels.count - 1) }

    /// The size the model was trained at: its config's sample size times the VAE's scale when a
    /// config gives one, else 512x512 for SD 1.x and 768x768 for v-prediction SD 2.x. The default
    /// size of a generation everywhere (scripts, the prompt, `sdshell generate`).
    public var nativeSize: (width: Int, height: Int) {
        if let sample = config.unet?.sampleSize { return (sample * vaeScale, sample * vaeScale) }
        return config.prediction == .v ? (768, 768) : (512, 512)
    }

    /// Loads a checkpoint (any layout ModelWeights reads), optionally with a separate VAE file.
    public init(path: String, vae vaePath: String? = nil, hashes: HashCache? = nil, precision: WeightPrecision = .full) throws {
        self.path = path
        self.vaePath = vaePath
        self.precision = precision
        name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var weights = try ModelWeights(try ModelFile.open(path))
        if let vaePath { weights.replaceVAE(with: try ModelWeights(try ModelFile.open(vaePath))) }
        let config = try ArchitectureDetector.detect(weights)
        guard let unetConfig = config.unet, let vaeConfig = config.vae, let textConfig = config.textEncoder else {
            throw FormatError.unsupported(file: path, reason: "a checkpoint needs a UNet, a VAE and a text encoder")
        }
        let (missing, wrong) = ExpectedWeights.check(weights, config)
        guard missing.isEmpty, wrong.isEmpty else {
            let list = (missing.prefix(8) + wrong.prefix(4)).joined(separator: ", ")
            throw FormatError.unsupported(file: path, reason: "\(missing.count) missing and \(wrong.count) mis-shaped weights: \(list)")
        }
        self.config = config
        // Half precision is the low-memory configuration: no spare blocks kept beside the
        // activations (they would add up to 0.5 GB to a 512x512 generation's peak).
        TensorStorage.setCachedBlockLimit(precision == .half ? 0 : 512 << 20)
        textEncoder = try CLIPTextModel(weights, config: textConfig, precision: precision)
        unet = try UNet(weights, config: unetConfig, precision: precision)
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

import Engine
import Formats

/// A LoRA-family network as a prompt applies it (`<lora:NAME:TE:UNET>`), with its A1111 short hash.
public struct AppliedNetwork: Sendable {
    public let network: LoRANetwork
    /// The multiplier of its text-encoder layers and of its UNet layers.
    public let textEncoderMultiplier: Float, unetMultiplier: Float
    /// A1111's short hash of the file ("Lora hashes").
    public let shortHash: String

    public init(network: LoRANetwork, textEncoderMultiplier: Float, unetMultiplier: Float, shortHash: String) {
        self.network = network; self.textEncoderMultiplier = textEncoderMultiplier; self.unetMultiplier = unetMultiplier
        self.shortHash = shortHash
    }
}

extension StableDiffusionModel {
    /// This checkpoint with `networks` merged into its weights as A1111 merges them
    /// (`network_apply_weights`: each changed weight becomes `weight + updown * scale * multiplier`,
    /// network after network in prompt order, in float32, then stored at the weight's own type).
    /// The networks whose layers the model does not have (made for another family) or whose
    /// shapes differ are left out, each with the reason; nothing of a network is applied unless
    /// all of its layers can be. Only the changed layers are new: every other tensor is the
    /// checkpoint's own (see `LoadedWeights`), so merging nothing gives back the checkpoint's
    /// networks bit for bit, and no file is read again. Call it on the loaded checkpoint
    /// (`networks` empty), not on a merged model.
    public func merging(_ networks: [AppliedNetwork]) throws -> (model: StableDiffusionModel, skipped: [(name: String, reason: String)],
                                                                 partial: [(name: String, unmatched: Int)]) {
        precondition(self.networks.isEmpty, "merge into the loaded checkpoint, not into a merged model")
        let targets = LoRATargets(weightNames: weights.tensors.keys, family: family, layersPerBlock: unet.config.layersPerBlock)
        let parts: [(prefix: String, loaded: LoadedWeights)] = [("unet.", unet.loadedWeights), ("text_encoder.", textEncoder.loadedWeights)]
            + (textEncoder2.map { [("text_encoder_2.", $0.loadedWeights)] } ?? [])
        func original(_ weight: String) -> Tensor? {
            parts.first { weight.hasPrefix($0.prefix) }.flatMap { $0.loaded[weight] }
        }
        var sums: [String: Tensor] = [:]
        var applied: [AppliedNetwork] = [], skipped: [(name: String, reason: String)] = [], partial: [(name: String, unmatched: Int)] = []
        for applying in networks {
            let network = applying.network
            if let hint = network.familyHint, hint != family.rawValue {
                skipped.append((network.name, "it is for \(hint) and the model is \(family.rawValue)"))
                continue
            }
            var deltas: [(weight: String, delta: Tensor)] = []
            var unmatched = 0
            do {
                for (module, change) in network.modules.sorted(by: { $0.key < $1.key }) {
                    try Cancellation.check()
                    guard let weight = targets.weight(for: module), let w = original(weight) else { unmatched += 1; continue }
                    let multiplier = weight.hasPrefix("unet.") ? applying.unetMultiplier : applying.textEncoderMultiplier
                    let updown = try withNoGrad { try change.updown(for: w.shape, file: network.path, name: module) }
                    deltas.append((weight, try withNoGrad { try (updown * change.scale) * multiplier }))
                }
            } catch let stop as Cancellation.Requested {
                throw stop
            } catch {
                skipped.append((network.name, "\(error)"))
                continue
            }
            if deltas.isEmpty {
                let hint = network.familyHint.map { "it is for \($0) and the model is \(family.rawValue)" } ?? "none of its layers is in the model"
                skipped.append((network.name, hint))
                continue
            }
            if unmatched > 0 { partial.append((network.name, unmatched)) }
            for (weight, delta) in deltas {
                let base = try sums[weight] ?? original(weight)!.to(.f32)
                sums[weight] = try withNoGrad { try base + delta }
            }
            applied.append(applying)
        }
        var overlays: [String: [String: Tensor]] = [:]
        // The merged layers stay f32 at half precision too: rounding base + change to 16 bits would
        // lose the change's small part (images as from torch's f32 merge, not as from an fp16 GPU's).
        for (weight, sum) in sums {
            let part = parts.first { weight.hasPrefix($0.prefix) }!.prefix
            overlays[part, default: [:]][weight] = sum
        }
        func rebuilt(_ encoder: CLIPTextModel, _ prefix: String) throws -> CLIPTextModel {
            guard let overlay = overlays[prefix] else { return encoder }
            return try CLIPTextModel(weights, component: encoder.component, config: encoder.config, precision: precision,
                                     reusing: encoder.loadedWeights, overlay: overlay)
        }
        let newUNet = try overlays["unet."].map {
            try UNet(weights, config: unet.config, precision: precision, reusing: unet.loadedWeights, overlay: $0)
        } ?? unet
        let model = StableDiffusionModel(self, textEncoder: try rebuilt(textEncoder, "text_encoder."),
                                         textEncoder2: try textEncoder2.map { try rebuilt($0, "text_encoder_2.") },
                                         unet: newUNet, networks: applied)
        return (model, skipped, partial)
    }
}

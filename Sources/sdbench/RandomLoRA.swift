import Engine
import Formats
import Models

/// A kohya LoRA file with random small values for a UNet configuration: every attention
/// projection, feed-forward layer and transformer projection (what kohya's default LoRA trains),
/// at one rank with alpha = rank / 2, for `sdbench unet --lora-rank`.
enum RandomLoRA {
    static let targets = ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out"]

    /// Writes the file; returns the number of layers it changes.
    static func write(unet: UNetConfig, family: ModelFamily, rank: Int, to path: String) throws -> Int {
        var random = RandomFill()
        var tensors: [String: Tensor] = [:]
        for (name, shape) in ExpectedWeights.unet(unet) where name.hasSuffix(".weight") {
            let module = String(name.dropLast(".weight".count))
            guard targets.contains(where: { module.hasSuffix("." + $0) }), shape.count == 2 || (shape.count == 4 && shape[2] == 1) else { continue }
            let key = "lora_unet_" + module.replacingOccurrences(of: ".", with: "_")
            tensors[key + ".lora_down.weight"] = try (random.tensor([rank, shape[1]]) * 0.01).to(.f16)
            tensors[key + ".lora_up.weight"] = try (random.tensor([shape[0], rank]) * 0.01).to(.f16)
            tensors[key + ".alpha"] = try Tensor(shape: [], data: [Float(rank) / 2])
        }
        try SafeTensorsFile.write(tensors, metadata: ["ss_network_dim": String(rank),
                                                        "ss_base_model_version": [.sd1: "sd_v1", .sd2: "sd_v2", .sdxl: "sdxl_base_v1-0"][family]!], to: path)
        return tensors.count / 3
    }
}

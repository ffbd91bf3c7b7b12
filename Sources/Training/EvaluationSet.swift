import Diffusion
import Engine
import Models

/// A fixed set of (picture, timestep, noise) triples on which the objective is measured, to see
/// whether training lowers it: each picture's posterior mean as latents, the template's first line
/// as prompt, and `perPicture` timesteps and noises drawn from a generator of its own.
public struct EvaluationSet {
    struct Item {
        let prompt: String
        let latents: Tensor
        let noise: Tensor
        let timestep: Int
    }
    let items: [Item]
    let objective: TextualInversionLoss
    let name: String
    let shape: [Int]

    public init(trainer: TextualInversionTrainer, perPicture: Int = 4, seed: UInt64 = 12345) throws {
        var random = TorchCPURandom(seed: seed)
        var items: [Item] = []
        let scale = try Tensor(shape: [1], data: [trainer.objective.model.config.vae?.scalingFactor ?? 0.18215])
        for sample in trainer.dataset.samples {
            let pixels = try sample.pixels()
            let posterior = try withNoGrad { try trainer.objective.model.vae.encode(try pixels.reshaped([1] + pixels.shape)) }
            let latents = try posterior.mean * scale
            let prompt = TrainingTemplate.prompt(line: trainer.template.lines[0], caption: sample.caption, name: trainer.name)
            for _ in 0..<perPicture {
                let t = Int(random.next32() % 1000)
                items.append(Item(prompt: prompt, latents: latents, noise: try Tensor(shape: latents.shape, data: random.randn(latents.count)),
                                  timestep: t))
            }
        }
        self.items = items
        objective = trainer.objective
        name = trainer.name
        shape = trainer.shape
    }

    /// The mean loss over the set with these vectors.
    public func loss(vectors: [Float]) throws -> Double {
        try withNoGrad {
            let v = try Tensor(shape: shape, data: vectors)
            var total = 0.0
            for item in items {
                total += Double(try objective(vectors: v, name: name, prompts: [item.prompt], latents: item.latents, noise: item.noise,
                                              timesteps: [item.timestep]).toArray()[0])
            }
            return total / Double(items.count)
        }
    }
}

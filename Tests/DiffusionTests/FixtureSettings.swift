import Foundation
@testable import Diffusion

/// The generation settings a reference run's "settings" object gives (the generators' common
/// keys: prompt, negative, seed, steps, cfg, sampler, size, batch, rng), every other one at its
/// default; `prompt` replaces the object's own.
enum FixtureSettings {
    static func from(_ j: [String: Any], prompt: String? = nil) -> GenerationSettings {
        var s = GenerationSettings()
        s.prompt = prompt ?? j["prompt"] as! String
        s.negativePrompt = j["negative"] as! String
        s.seed = ((j["seed"] as? NSNumber) ?? (j["seeds"] as! [NSNumber])[0]).int64Value
        s.steps = j["steps"] as! Int
        s.cfgScale = (j["cfg"] as! NSNumber).floatValue
        s.sampler = Sampler.named(j["sampler"] as! String)!.0
        (s.width, s.height) = ((j["size"] as! [Int])[0], (j["size"] as! [Int])[1])
        s.batchSize = j["batch"] as! Int
        s.rng = RandomSourceKind(rawValue: j["rng"] as! String)!
        return s
    }
}

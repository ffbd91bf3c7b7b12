import ArgumentParser
import Engine
import Formats
import Foundation
import Models
import Prompting
import Training

/// `sdbench train`: seconds per textual-inversion step (batch 1: VAE latents cached, UNet forward
/// and backward, text-encoder backward into the embedding, AdamW) on a full-size model of the
/// architecture with random weights, and peak memory.
struct TrainBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Textual-inversion step time on a full-size model (--arch).")

    @Option(help: "Training sizes.") var sizes: [Int] = [256, 512]
    @Option(help: "Steps per size (the first is reported apart: it encodes the picture).") var steps = 4
    @Option(help: "Recompute UNet blocks in backward (true/false; default: the trainer's, on for SDXL).") var checkpointing: Bool?
    @OptionGroup var weights: BenchModelOptions
    @Flag(help: "Time every primitive (forward and backward, per operation and shape) over the steps after the first and print the table.")
    var profile = false
    @Option(help: "Rows of the profile table.") var profileRows = 40

    func run() throws {
        let backend = Engine.backend
        let profiler = profile ? ProfilingBackend(backend) : nil
        let peak = profile ? Peak.measure() : 0
        Engine.use(profiler ?? backend)
        defer { Engine.use(backend) }
        try weights.prepare()
        let model = try weights.load()
        let tokenizer = try CLIPTokenizer.shipped()
        let work = NSTemporaryDirectory() + "sdbench-train-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work + "/pictures", withIntermediateDirectories: true)
        // One picture with smooth colour gradients, large enough for the biggest size.
        let side = sizes.max()!
        var rgb = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side { for x in 0..<side { rgb[(y * side + x) * 3] = UInt8(x * 255 / side); rgb[(y * side + x) * 3 + 1] = UInt8(y * 255 / side); rgb[(y * side + x) * 3 + 2] = 128 } }
        try PNGFile.write(rgb: rgb, width: side, height: side, text: [], to: work + "/pictures/a red and green gradient.png")
        for size in sizes {
            let embedding = try EmbeddingCreation.create(name: "bench\(size)", initText: "a painting", vectors: 4, model: model,
                                                         tokenizer: tokenizer, directory: work).path
            var options = TrainingOptions(steps: steps, learnRate: "0.005", seed: 1, saveEvery: 1_000_000, latents: .deterministic)
            options.checkpointing = checkpointing
            let trainer = try TextualInversionTrainer(
                model: model, tokenizer: tokenizer, dataset: try TrainingDataset(folder: work + "/pictures", width: size, height: size),
                template: try TrainingTemplate.load("style_filewords"), embeddingPath: embedding,
                options: options)
            var times: [Double] = []
            var last = DispatchTime.now().uptimeNanoseconds
            try trainer.run(saveAtEnd: false, shouldStop: {
                let now = DispatchTime.now().uptimeNanoseconds
                times.append(Double(now - last) / 1e9)
                last = now
                if times.count == 1 { profiler?.reset() }
                return false
            })
            let later = times.dropFirst()
            let perStep = later.isEmpty ? times[0] : later.reduce(0, +) / Double(later.count)
            if let profiler, !later.isEmpty {
                print(ProfileTable(profiler: profiler, passes: later.count, passSeconds: perStep, peak: peak, rows: profileRows).text)
                profiler.reset()
            }
            print(String(format: "\(weights.arch) %dx%d batch 1 \(weights.precision) precision, checkpointing \(trainer.checkpointing ? "on" : "off"): %.2f s/step (steps %@; the first also VAE-encodes the picture), peak resident %.2f GB",
                         size, size, perStep, times.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString,
                         Double(Memory.peakResidentBytes()) / 1e9))
        }
    }
}

import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// For each sampler, schedule and setting that came with the parameter table: the infotext
/// sdshell writes names it under A1111's key, and pasting that infotext makes the same image
/// with the same settings (nothing reported as "not applied").
@Suite(.serialized) struct PastedParameterTests {
    static let statements: [(options: String, infotext: String)] = [
        ("sampler=\"DPM++ 3M SDE\" steps=3", "Sampler: DPM++ 3M SDE, Schedule type: Exponential"),
        ("sampler=\"DPM++ 2M SDE Heun\" steps=3", "Sampler: DPM++ 2M SDE Heun"),
        ("sampler=\"DPM++ SDE\" steps=2 rng=\"cpu\"", "Sampler: DPM++ SDE, Schedule type: Karras"),
        ("sampler=\"DPM fast\" steps=4", "Sampler: DPM fast"),
        ("sampler=\"DPM adaptive\"", "Sampler: DPM adaptive"),
        ("sampler=\"PLMS\" steps=4", "Sampler: PLMS"),
        ("sampler=\"DDIM CFG++\" steps=4", "Sampler: DDIM CFG++"),
        ("sampler=\"Restart\" steps=20", "Sampler: Restart, Schedule type: Karras"),
        ("sampler=\"UniPC\" steps=4", "Sampler: UniPC, Schedule type: Uniform"),
        ("sampler=\"UniPC\" steps=5 uni_pc_variant=\"bh2\" uni_pc_skip_type=\"logSNR\" uni_pc_order=2 uni_pc_lower_order_final=false",
         "UniPC variant: bh2, UniPC skip type: logSNR, UniPC order: 2, UniPC lower order final: False"),
        ("sampler=\"LCM\" steps=4", "Sampler: LCM, Schedule type: Uniform"),
        ("schedule=\"sgm_uniform\"", "Schedule type: SGM Uniform"),
        ("schedule=\"kl_optimal\" sampler=\"DPM++ 2M\"", "Schedule type: KL Optimal"),
        ("schedule=\"align_your_steps\" steps=3", "Schedule type: Align Your Steps"),
        ("schedule=\"beta\" beta_dist_alpha=0.5", "Beta schedule alpha: 0.5, Beta schedule beta: 0.6"),
        ("schedule=\"karras\" rho=3 sigma_min=0.1 sigma_max=10", "Schedule min sigma: 0.1, Schedule max sigma: 10, Schedule rho: 3"),
        ("sampler=\"Euler a\" eta_noise_seed_delta=31337", "ENSD: 31337"),
        ("seed_resize_from=32x32", "Seed resize from: 32x32"),
        ("sampler=\"Euler\" discard_penultimate_sigma=true steps=3", "Discard penultimate sigma: True"),
        ("sgm_noise_multiplier=true", "SGM noise multiplier: True"),
        ("sampler=\"DPM++ 2S a\" s_noise=0.9 eta=0.8", "Eta: 0.8"),
    ]

    let tiny: TinySession
    init() throws { tiny = try TinySession("pasted") }

    @Test("written as A1111 writes it, pasted back to the same image", arguments: statements.indices)
    func roundTrip(_ index: Int) throws {
        let (options, expected) = Self.statements[index]
        let host = RecordingHost()
        let shell = try tiny.start(host, outdir: "out\(index)")
        try shell.run(source: "generate \"a red circle\" seed=5 \(options)", file: "t")
        let made = try #require(InterpreterTests.imagePaths(host).first)
        let infotext = try #require(PNGFile.read(made).text("parameters"))
        #expect(infotext.contains(expected), "\(options): \(infotext)")
        try shell.run(source: infotext, file: "paste")
        let images = InterpreterTests.imagePaths(host)
        try #require(images.count == 2)
        #expect(try PNGFile.read(images[0]).rgba == PNGFile.read(images[1]).rgba, "\(options): the pasted image differs")
        #expect(!host.warnings.contains { $0.contains("not applied") }, "\(options): \(host.warnings)")
        let journal = try String(contentsOfFile: try #require(shell.journal.path), encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("generate ") }
        // The pasted entry made every setting of the statement explicit again (other entries may
        // differ where the text states what was implied: the schedule "automatic" resolved).
        let regex = try NSRegularExpression(pattern: #"[a-z_]+=("[^"]*"|\S+)"#)
        let given = regex.matches(in: options, range: NSRange(options.startIndex..., in: options)).map { (options as NSString).substring(with: $0.range) }
        #expect(journal.count == 2 && given.allSatisfy { journal[1].contains(" " + $0 + " ") }, "\(given) in \(journal[1])")
    }
}

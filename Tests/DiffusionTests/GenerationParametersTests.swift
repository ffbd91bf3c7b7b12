import Testing
@testable import Diffusion

/// The parameter table's rows read and write `GenerationSettings` consistently, and a missing or
/// mistyped value is refused rather than replaced by a default.
@Suite struct GenerationParametersTests {
    @Test func everyRowWritesBackWhatItReads() throws {
        var s = GenerationSettings()
        s.steps = 31; s.sampler = .dpmpp3MSDE; s.schedule = .sgmUniform; s.cfgScale = 5.5; s.seed = 77; s.subseed = 12
        s.subseedStrength = 0.25; s.width = 320; s.height = 448; s.batchSize = 3; s.batchCount = 2; s.rng = .cpu; s.clipSkip = 2
        s.vaeTiling = true; s.negativePrompt = "blur"; s.seedResizeFromWidth = 256; s.seedResizeFromHeight = 512; s.etaNoiseSeedDelta = 31337
        s.discardPenultimateSigma = true; s.sgmNoiseMultiplier = true
        s.samplerOptions.eta = 0.7; s.samplerOptions.sChurn = 1.5; s.samplerOptions.sTmin = 0.25; s.samplerOptions.sTmax = 9; s.samplerOptions.sNoise = 0.875
        s.scheduleOptions.sigmaMin = 0.5; s.scheduleOptions.sigmaMax = 9.5; s.scheduleOptions.rho = 3; s.scheduleOptions.betaAlpha = 0.5
        s.scheduleOptions.betaBeta = 0.75
        #expect(try GenerationParameters.settings(prompt: "", GenerationParameters.values(s)) == s)
        #expect(try GenerationParameters.settings(prompt: "", GenerationParameters.values(GenerationSettings())) == GenerationSettings())
    }

    @Test func aMissingOrMistypedValueIsAnError() {
        var values = GenerationParameters.values(GenerationSettings())
        values["steps"] = nil
        #expect(throws: ParameterError.self) { try GenerationParameters.settings(prompt: "", values) }
        values["steps"] = .string("twenty")
        #expect(throws: ParameterError.self) { try GenerationParameters.settings(prompt: "", values) }
        values["steps"] = .integer(20)
        values["sampler"] = .string("Euler z")
        #expect(throws: ParameterError.self) { try GenerationParameters.settings(prompt: "", values) }
    }
}

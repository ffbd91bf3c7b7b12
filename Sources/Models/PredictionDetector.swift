import Engine

/// A1111's test for SD 2.x checkpoints without a config (`sd_models_config.
/// is_using_v_parameterization_for_sd2`): one UNet pass on a constant latent (0.5 everywhere,
/// [1, 4, 8, 8]) at timestep 999 with a constant two-token context (0.5); a v-prediction model's
/// output minus the input averages below -1, an epsilon model's does not.
public enum PredictionDetector {
    /// The test's mean of (output - input).
    public static func testMean(_ unet: UNet) throws -> Float {
        try withNoGrad {
            let x = try Tensor.full([1, unet.config.inChannels, 8, 8], 0.5)
            let context = try Tensor.full([1, 2, unet.config.crossAttentionDim], 0.5)
            let out = try unet(x, timesteps: [999], context: context)
            return try (out - x).mean(dims: [0, 1, 2, 3]).toArray()[0]
        }
    }

    public static func isVPrediction(_ unet: UNet) throws -> Bool { try testMean(unet) < -1 }

    /// A model's prediction type and where it came from: the load's `override` ("given"), a
    /// config's `prediction_type` ("config"), for SD 2.x A1111's test pass on `unet()` ("detected",
    /// with the test's mean), else the family's epsilon ("family default").
    static func resolve(_ weights: ModelWeights, _ config: ModelConfig, override: Prediction?,
                        unet: () throws -> UNet) throws -> (prediction: Prediction, source: String, mean: Float?) {
        if let override { return (override, "given", nil) }
        if ["scheduler", "unet"].contains(where: { ExplicitConfig.object(weights.explicitConfig[$0])["prediction_type"] != nil }) {
            return (config.prediction, "config", nil)
        }
        guard config.family == .sd2, config.unet?.inChannels == 4 else { return (config.prediction, "family default", nil) }
        let mean = try testMean(unet())
        return (mean < -1 ? .v : .epsilon, "detected", mean)
    }
}

import Engine
import Models

/// A1111's "Approx cheap" live preview (`sd_vae_approx.cheap_approximation`): each latent cell
/// becomes an RGB pixel by a fixed linear map of its channels (SD 1.x/2.x's factors, or SDXL's),
/// then `x * 0.5 + 0.5` clamped to 0...1, times 255, truncated, as `single_sample_to_image` does.
/// No model runs: a preview costs next to nothing.
public enum LivePreview {
    /// Rows: latent channels; columns: R, G, B.
    public static func factors(_ family: ModelFamily) -> [[Float]] {
        switch family {
        case .sdxl:
            return [[0.3448, 0.4168, 0.4395], [-0.1953, -0.0290, 0.0250], [0.1074, 0.0886, -0.0163], [-0.3730, -0.2499, -0.2088]]
        case .sd1, .sd2:
            return [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]]
        }
    }

    /// The approximation's RGB values before the 8-bit conversion, [3, h, w], for a latent [4, h, w].
    public static func approximation(_ latent: [Float], height: Int, width: Int, family: ModelFamily) -> [Float] {
        let f = factors(family), plane = height * width
        var out = [Float](repeating: 0, count: 3 * plane)
        for r in 0..<3 {
            for p in 0..<plane {
                var sum: Float = 0
                for l in 0..<min(f.count, latent.count / max(plane, 1)) { sum += latent[l * plane + p] * f[l][r] }
                out[r * plane + p] = sum
            }
        }
        return out
    }

    /// The preview as 8-bit RGB (rows top to bottom, 3 bytes a pixel), latent-sized.
    public static func rgb(_ latent: [Float], height: Int, width: Int, family: ModelFamily) -> [UInt8] {
        let x = approximation(latent, height: height, width: width, family: family), plane = height * width
        var rgb = [UInt8](repeating: 0, count: 3 * plane)
        for r in 0..<3 {
            for p in 0..<plane {
                let v = x[r * plane + p] * 0.5 + 0.5
                rgb[p * 3 + r] = v.isNaN ? 0 : UInt8(255 * min(max(v, 0), 1))
            }
        }
        return rgb
    }
}

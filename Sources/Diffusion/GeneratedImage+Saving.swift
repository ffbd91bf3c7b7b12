import Imaging

extension OutputFolder {
    /// Saves a generated image with its infotext in a `parameters` chunk; returns the file path.
    @discardableResult
    public func save(_ image: GeneratedImage) throws -> String {
        try save(rgb: image.rgb, width: image.width, height: image.height, seed: image.seed,
                 text: [("parameters", image.infotext.encoded)])
    }
}

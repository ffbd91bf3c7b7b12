/// AUTOMATIC1111's "fill" masked content (modules/masking.py `fill(image, mask)`, 1.10), byte
/// for byte: the unmasked pixels, premultiplied and blurred at radii 256, 64, 16, 4, 2 and 0,
/// are composited over transparent black (1, 1, 2, 4, 2 and 1 times), so that the masked area
/// takes the colours around it, blurrier the farther it is from them.
public enum InpaintFill {
    /// The (blur radius, composite repeats) layers of `fill`, in order.
    static let layers: [(radius: Double, repeats: Int)] = [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]

    /// `rgb` (`width * height * 3` bytes) with the area where the "L" `mask` (one byte a pixel;
    /// 255 masked) is set filled from its surroundings; RGB out.
    public static func fill(rgb: [UInt8], width: Int, height: Int, mask: [UInt8]) -> [UInt8] {
        precondition(rgb.count == width * height * 3 && mask.count == width * height)
        // image_masked = RGBa black; paste(image RGBA -> RGBa, mask=invert(mask))
        let source = PillowCompositing.premultiplied(rgba: PillowCompositing.rgbaFromRGB(rgb))
        let masked = PillowCompositing.paste(source, into: [UInt8](repeating: 0, count: width * height * 4),
                                             mask: PillowCompositing.inverted(mask), channels: 4)
        var result = [UInt8](repeating: 0, count: width * height * 4)
        for layer in layers {
            let blurred = PillowCompositing.unpremultiplied(
                rgba: PillowGaussianBlur.blur(masked, width: width, height: height, channels: 4, radius: layer.radius))
            for _ in 0..<layer.repeats { result = PillowCompositing.alphaComposite(destination: result, source: blurred) }
        }
        return PillowCompositing.rgbFromRGBA(result)
    }
}

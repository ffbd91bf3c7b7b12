/// Pillow's per-pixel compositing on interleaved 8-bit buffers, byte for byte: the RGBA <->
/// premultiplied "RGBa" conversions (libImaging/Convert.c), `Image.alpha_composite`
/// (AlphaComposite.c), `Image.paste` with an "L" mask (Paste.c), `ImageOps.invert`, and the
/// RGB <-> RGBA conversions. Buffers are rows top to bottom, channels interleaved.
public enum PillowCompositing {
    /// Pillow's `(a * b + 127) / 255` approximation (`MULDIV255`).
    @inline(__always) static func mulDiv255(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let t = a * b + 128
        return ((t >> 8) + t) >> 8
    }

    /// Pillow's rounded division by 255 (`DIV255`).
    @inline(__always) static func div255(_ a: UInt32) -> UInt32 {
        let t = a + 128
        return ((t >> 8) + t) >> 8
    }

    /// `convert("RGBa")` of an RGBA image: colour multiplied by alpha (`rgbA2rgba`).
    public static func premultiplied(rgba: [UInt8]) -> [UInt8] {
        precondition(rgba.count % 4 == 0)
        var out = rgba
        for p in Swift.stride(from: 0, to: rgba.count, by: 4) {
            let alpha = UInt32(rgba[p + 3])
            for c in 0..<3 { out[p + c] = UInt8(mulDiv255(UInt32(rgba[p + c]), alpha)) }
        }
        return out
    }

    /// `convert("RGBA")` of an "RGBa" image: colour divided by alpha, truncated and clipped
    /// (`rgba2rgbA`); alpha 0 and 255 leave the colour as it is.
    public static func unpremultiplied(rgba: [UInt8]) -> [UInt8] {
        precondition(rgba.count % 4 == 0)
        var out = rgba
        for p in Swift.stride(from: 0, to: rgba.count, by: 4) {
            let alpha = UInt32(rgba[p + 3])
            if alpha == 255 || alpha == 0 { continue }
            for c in 0..<3 { out[p + c] = UInt8(min(255 * UInt32(rgba[p + c]) / alpha, 255)) }
        }
        return out
    }

    /// `Image.alpha_composite(destination, source)` of two RGBA images of the same size:
    /// `source` over `destination`, in Pillow's integer arithmetic with 7 extra bits.
    public static func alphaComposite(destination: [UInt8], source: [UInt8]) -> [UInt8] {
        precondition(destination.count == source.count && destination.count % 4 == 0)
        var out = destination
        for p in Swift.stride(from: 0, to: source.count, by: 4) {
            let srcA = UInt32(source[p + 3])
            if srcA == 0 { continue }
            let blend = UInt32(destination[p + 3]) * (255 - srcA)
            let outa255 = srcA * 255 + blend
            let coef1 = srcA * 255 * 255 * 128 / outa255
            let coef2 = 255 * 128 - coef1
            for c in 0..<3 {
                let t = UInt32(source[p + c]) * coef1 + UInt32(destination[p + c]) * coef2 + (0x80 << 7)
                out[p + c] = UInt8(truncatingIfNeeded: (((t >> 8) + t) >> 8) >> 7)
            }
            out[p + 3] = UInt8(truncatingIfNeeded: div255(outa255))
        }
        return out
    }

    /// `destination.paste(source, (0, 0), mask)` for images of the same size with an "L" mask
    /// (one byte a pixel): each channel becomes `(dst * (255 - m) + src * m) / 255`, rounded
    /// as Pillow's `BLEND` rounds.
    public static func paste(_ source: [UInt8], into destination: [UInt8], mask: [UInt8], channels: Int) -> [UInt8] {
        precondition(source.count == destination.count && mask.count * channels == source.count)
        var out = destination
        for i in 0..<mask.count {
            let m = UInt32(mask[i])
            for c in 0..<channels {
                let p = i * channels + c
                out[p] = UInt8(truncatingIfNeeded: div255(UInt32(destination[p]) * (255 - m) + UInt32(source[p]) * m))
            }
        }
        return out
    }

    /// `destination.paste(source, (x, y), mask)`: `source` (`sourceWidth x sourceHeight`, with
    /// an optional "L" mask of that size; nil copies) placed with its top left at `(x, y)` and
    /// clipped to the destination (`destinationWidth x destinationHeight`), as `ImagingPaste` clips.
    public static func paste(_ source: [UInt8], width sourceWidth: Int, height sourceHeight: Int,
                             into destination: [UInt8], width destinationWidth: Int, height destinationHeight: Int,
                             x: Int, y: Int, mask: [UInt8]?, channels: Int) -> [UInt8] {
        precondition(source.count == sourceWidth * sourceHeight * channels
                     && destination.count == destinationWidth * destinationHeight * channels)
        precondition(mask == nil || mask!.count == sourceWidth * sourceHeight)
        var out = destination
        let x0 = max(x, 0), y0 = max(y, 0)
        let x1 = min(x + sourceWidth, destinationWidth), y1 = min(y + sourceHeight, destinationHeight)
        if x1 <= x0 || y1 <= y0 { return out }
        for dy in y0..<y1 {
            for dx in x0..<x1 {
                let s = (dy - y) * sourceWidth + (dx - x), d = dy * destinationWidth + dx
                if let mask {
                    let m = UInt32(mask[s])
                    for c in 0..<channels {
                        let blended = UInt32(destination[d * channels + c]) * (255 - m) + UInt32(source[s * channels + c]) * m
                        out[d * channels + c] = UInt8(truncatingIfNeeded: div255(blended))
                    }
                } else {
                    for c in 0..<channels { out[d * channels + c] = source[s * channels + c] }
                }
            }
        }
        return out
    }

    /// `ImageOps.invert` of an "L" or "RGB" image (the modes it accepts): every byte `255 - v`.
    public static func inverted(_ pixels: [UInt8]) -> [UInt8] { pixels.map { 255 - $0 } }

    /// `convert("RGBA")` of an RGB image: alpha 255.
    public static func rgbaFromRGB(_ rgb: [UInt8]) -> [UInt8] {
        precondition(rgb.count % 3 == 0)
        var out = [UInt8](repeating: 255, count: rgb.count / 3 * 4)
        for i in 0..<(rgb.count / 3) {
            out[i * 4] = rgb[i * 3]; out[i * 4 + 1] = rgb[i * 3 + 1]; out[i * 4 + 2] = rgb[i * 3 + 2]
        }
        return out
    }

    /// `convert("RGB")` of an RGBA image: alpha dropped (not composited).
    public static func rgbFromRGBA(_ rgba: [UInt8]) -> [UInt8] {
        precondition(rgba.count % 4 == 0)
        var out = [UInt8](repeating: 0, count: rgba.count / 4 * 3)
        for i in 0..<(rgba.count / 4) {
            out[i * 3] = rgba[i * 4]; out[i * 3 + 1] = rgba[i * 4 + 1]; out[i * 3 + 2] = rgba[i * 4 + 2]
        }
        return out
    }
}

/// Pillow's Gaussian blur, `image.filter(ImageFilter.GaussianBlur(radius))`, byte for byte on
/// 8-bit images (libImaging/BoxBlur.c): three passes of an "extended" box filter whose
/// fractional radius comes from the Gaussian's standard deviation (Gwosdek et al., 2011),
/// horizontally and then vertically, in 8.24 fixed point with the edge pixel repeated outside
/// the image. Radius 0 returns the image unchanged, as Pillow does.
///
/// The radius is handled in single precision (Pillow parses it as a C `float`), and the
/// channels are blurred independently, so "L", "LA", "RGB", "RGBA" and premultiplied "RGBa"
/// images all work alike.
public enum PillowGaussianBlur {
    /// `pixels` (`width * height * channels` bytes, interleaved, rows top to bottom) blurred
    /// with standard deviation `radius` in both directions.
    public static func blur(_ pixels: [UInt8], width: Int, height: Int, channels: Int, radius: Double) -> [UInt8] {
        precondition((1...4).contains(channels) && width >= 0 && height >= 0 && pixels.count == width * height * channels)
        precondition(radius >= 0, "radius must be >= 0")
        let floatRadius = Float(radius)
        if floatRadius == 0 || width == 0 || height == 0 { return pixels }
        let box = boxRadius(floatRadius, passes: 3)
        return boxBlur(pixels, width: width, height: height, channels: channels, xRadius: box, yRadius: box, passes: 3)
    }

    /// `_gaussian_blur_radius`: the extended box radius whose `passes`-fold repetition has the
    /// Gaussian's variance, in C's mix of `float` variables and `double` library calls.
    static func boxRadius(_ radius: Float, passes: Int) -> Float {
        let sigma2: Float = radius * radius / Float(passes)
        let boxLength = Float((12.0 * Double(sigma2) + 1.0).squareRoot())
        let l = Float(((Double(boxLength) - 1.0) / 2.0).rounded(.down))
        var a: Float = (2 * l + 1) * (l * (l + 1) - 3 * sigma2)
        a /= 6 * (sigma2 - (l + 1) * (l + 1))
        return l + a
    }

    /// `ImagingBoxBlur`: `passes` horizontal box blurs, then `passes` vertical ones (Pillow
    /// transposes and blurs rows; blurring columns is the same arithmetic).
    static func boxBlur(_ pixels: [UInt8], width: Int, height: Int, channels: Int,
                        xRadius: Float, yRadius: Float, passes: Int) -> [UInt8] {
        var out = pixels
        let longest = max(width, height)
        var lineIn = [UInt8](repeating: 0, count: longest), lineOut = [UInt8](repeating: 0, count: longest)
        lineIn.withUnsafeMutableBufferPointer { inBuffer in
            lineOut.withUnsafeMutableBufferPointer { outBuffer in
                out.withUnsafeMutableBufferPointer { image in
                    if xRadius != 0 {
                        let line = LineBlur(length: width, radius: xRadius)
                        for y in 0..<height {
                            for c in 0..<channels {
                                let base = y * width * channels + c
                                for x in 0..<width { inBuffer[x] = image[base + x * channels] }
                                for _ in 0..<passes {
                                    line.run(inBuffer.baseAddress!, outBuffer.baseAddress!)
                                    for x in 0..<width { inBuffer[x] = outBuffer[x] }
                                }
                                for x in 0..<width { image[base + x * channels] = inBuffer[x] }
                            }
                        }
                    }
                    if yRadius != 0 {
                        let line = LineBlur(length: height, radius: yRadius)
                        let stride = width * channels
                        for x in 0..<width {
                            for c in 0..<channels {
                                let base = x * channels + c
                                for y in 0..<height { inBuffer[y] = image[base + y * stride] }
                                for _ in 0..<passes {
                                    line.run(inBuffer.baseAddress!, outBuffer.baseAddress!)
                                    for y in 0..<height { inBuffer[y] = outBuffer[y] }
                                }
                                for y in 0..<height { image[base + y * stride] = inBuffer[y] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One extended box blur of a line (`ImagingLineBoxBlur8`): a running sum over the integer
    /// radius plus the two pixels just outside it weighted by the fractional part, with 32-bit
    /// unsigned wrap-around exactly as in C.
    struct LineBlur {
        let lastx: Int, radius: Int, edgeA: Int, edgeB: Int, ww: UInt32, fw: UInt32

        init(length: Int, radius floatRadius: Float) {
            radius = Int(floatRadius)
            ww = UInt32(Float(UInt32(1) << 24) / (floatRadius * 2 + 1))
            fw = ((UInt32(1) << 24) &- UInt32(truncatingIfNeeded: radius * 2 + 1) &* ww) / 2
            edgeA = min(radius + 1, length)
            edgeB = max(length - radius - 1, 0)
            lastx = length - 1
        }

        func run(_ lineIn: UnsafePointer<UInt8>, _ lineOut: UnsafeMutablePointer<UInt8>) {
            @inline(__always) func value(_ i: Int) -> UInt32 { UInt32(lineIn[i]) }
            var acc = value(0) &* UInt32(truncatingIfNeeded: radius + 1)
            var x = 0
            while x < edgeA - 1 { acc = acc &+ value(x); x += 1 }
            acc = acc &+ value(lastx) &* UInt32(truncatingIfNeeded: radius - edgeA + 1)

            @inline(__always) func step(_ x: Int, subtract: Int, add: Int, left: Int, right: Int) {
                acc = acc &+ UInt32(truncatingIfNeeded: Int(lineIn[add]) - Int(lineIn[subtract]))
                let bulk = acc &* ww &+ (value(left) &+ value(right)) &* fw
                lineOut[x] = UInt8(truncatingIfNeeded: (bulk &+ (1 << 23)) >> 24)
            }
            if edgeA <= edgeB {
                for x in 0..<edgeA { step(x, subtract: 0, add: x + radius, left: 0, right: x + radius + 1) }
                for x in edgeA..<edgeB {
                    step(x, subtract: x - radius - 1, add: x + radius, left: x - radius - 1, right: x + radius + 1)
                }
                for x in edgeB...lastx { step(x, subtract: x - radius - 1, add: lastx, left: x - radius - 1, right: lastx) }
            } else {
                for x in 0..<edgeB { step(x, subtract: 0, add: x + radius, left: 0, right: x + radius + 1) }
                for x in edgeB..<edgeA { step(x, subtract: 0, add: lastx, left: 0, right: lastx) }
                for x in edgeA..<(lastx + 1) {
                    step(x, subtract: x - radius - 1, add: lastx, left: x - radius - 1, right: lastx)
                }
            }
        }
    }
}

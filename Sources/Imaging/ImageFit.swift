import Foundation

/// Crops an image to the output's aspect ratio around its centre and resizes it with Pillow's
/// bicubic filter: what `PIL.ImageOps.fit(image, size, BICUBIC)` returns, byte for byte. Training
/// uses it to bring dataset pictures to the training size ("resize the shorter side, centre-crop").
///
/// The resize is Pillow's separable convolution: a bicubic kernel (a = -0.5) widened by the scale
/// when shrinking (so it averages rather than skips pixels), coefficients rounded to 22-bit fixed
/// point, a horizontal pass into 8-bit rows, then a vertical pass. The crop box is fractional
/// (kept in single precision, as Pillow passes it) and the resize samples it directly.
public enum ImageFit {
    /// 8-bit RGB (`width * height * 3` bytes, rows top to bottom) fitted to `outWidth x outHeight`.
    public static func fit(rgb: [UInt8], width: Int, height: Int, outWidth: Int, outHeight: Int) -> [UInt8] {
        precondition(rgb.count == width * height * 3 && width > 0 && height > 0 && outWidth > 0 && outHeight > 0)
        let liveRatio = Double(width) / Double(height), outputRatio = Double(outWidth) / Double(outHeight)
        var cropWidth = Double(width), cropHeight = Double(height)
        if liveRatio == outputRatio {
        } else if liveRatio >= outputRatio {
            cropWidth = outputRatio * Double(height)
        } else {
            cropHeight = Double(width) / outputRatio
        }
        let left = (Double(width) - cropWidth) * 0.5, top = (Double(height) - cropHeight) * 0.5
        let box = (x0: Float(left), y0: Float(top), x1: Float(left + cropWidth), y1: Float(top + cropHeight))
        if outWidth == width, outHeight == height, box.x0 == 0, box.y0 == 0,
           box.x1 == Float(width), box.y1 == Float(height) {
            return rgb
        }
        return resize(rgb: rgb, width: width, height: height, outWidth: outWidth, outHeight: outHeight, box: box)
    }

    /// Where `fit`'s crop starts, counted as diffusers' SDXL trainer counts it: in the picture
    /// resized so that it covers the output (each side scaled by the larger ratio, truncated as
    /// torchvision's `Resize` truncates the longer side), the centre crop's top and left, rounded
    /// half to even as Python's `round`.
    public static func cropTopLeft(width: Int, height: Int, outWidth: Int, outHeight: Int) -> (top: Int, left: Int) {
        let scale = max(Double(outWidth) / Double(width), Double(outHeight) / Double(height))
        let resizedWidth = max(outWidth, Int(Double(width) * scale)), resizedHeight = max(outHeight, Int(Double(height) * scale))
        let top = (Double(resizedHeight - outHeight) / 2).rounded(.toNearestOrEven)
        let left = (Double(resizedWidth - outWidth) / 2).rounded(.toNearestOrEven)
        return (Int(top), Int(left))
    }

    /// Pillow's resampling filters (its `ImagingFilter`s): the kernel and its support.
    public enum Filter: Sendable {
        /// Keys' cubic, a = -0.5, support 2 (`Image.BICUBIC`).
        case bicubic
        /// sinc(x) sinc(x / 3), support 3 (`Image.LANCZOS`), what A1111 resizes init pictures with.
        case lanczos

        var support: Double { self == .bicubic ? 2 : 3 }

        func weight(_ x: Double) -> Double {
            switch self {
            case .bicubic: return ImageFit.bicubic(x)
            case .lanczos:
                func sinc(_ x: Double) -> Double { x == 0 ? 1 : Foundation.sin(x * .pi) / (x * .pi) }
                return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
            }
        }
    }

    /// Pillow's `resize(size, filter, box)` for 8-bit RGB: the part of the picture inside `box`
    /// (fractional pixels; a box of zero height or width samples one edge row or column, which
    /// A1111's "resize and fill" uses) resampled to `outWidth` x `outHeight`, the horizontal pass
    /// first (as Pillow did until version 13 reordered the passes for some shapes).
    public static func resize(rgb: [UInt8], width: Int, height: Int, outWidth: Int, outHeight: Int,
                              box: (x0: Float, y0: Float, x1: Float, y1: Float)? = nil, filter: Filter = .bicubic) -> [UInt8] {
        precondition(rgb.count == width * height * 3 && width > 0 && height > 0 && outWidth > 0 && outHeight > 0)
        let box = box ?? (0, 0, Float(width), Float(height))
        let needHorizontal = outWidth != width || box.x0 != 0 || box.x1 != Float(outWidth)
        let needVertical = outHeight != height || box.y0 != 0 || box.y1 != Float(outHeight)
        let vertical = Taps(inSize: height, from: box.y0, to: box.y1, outSize: outHeight, filter: filter)
        var image = rgb, offset = 0, columns = width
        if needHorizontal {
            // Only the rows the vertical pass reads are resampled horizontally.
            let firstRow = vertical.start[0]
            let lastRow = vertical.start[outHeight - 1] + vertical.count[outHeight - 1]
            let horizontal = Taps(inSize: width, from: box.x0, to: box.x1, outSize: outWidth, filter: filter)
            image = convolve(image, lines: lastRow - firstRow, lineOffset: firstRow, taps: horizontal,
                             pixelStride: 3, lineStride: width * 3, outPixelStride: 3, outLineStride: outWidth * 3)
            offset = firstRow
            columns = outWidth
        }
        guard needVertical else { return image }
        let shifted = Taps(start: vertical.start.map { $0 - offset }, count: vertical.count,
                           weights: vertical.weights, size: vertical.size)
        // The vertical pass is the same convolution with rows and columns swapped.
        return convolve(image, lines: columns, lineOffset: 0, taps: shifted,
                        pixelStride: columns * 3, lineStride: 3, outPixelStride: columns * 3, outLineStride: 3)
    }

    /// Pillow's `resize(size, NEAREST)` for 8-bit RGB (`ImagingScaleAffine`): output pixel `x`
    /// takes input column `Int(s / 2 + x s)`, with `s = width / outWidth` accumulated in double
    /// precision as Pillow steps it (the same for rows).
    public static func nearest(rgb: [UInt8], width: Int, height: Int, outWidth: Int, outHeight: Int) -> [UInt8] {
        precondition(rgb.count == width * height * 3 && outWidth > 0 && outHeight > 0)
        func sources(_ inSize: Int, _ outSize: Int) -> [Int] {
            let step = Double(inSize) / Double(outSize)
            var at = step * 0.5
            return (0..<outSize).map { _ in
                defer { at += step }
                return min(max(Int(at), 0), inSize - 1)
            }
        }
        let xs = sources(width, outWidth), ys = sources(height, outHeight)
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        for (y, sy) in ys.enumerated() {
            for (x, sx) in xs.enumerated() {
                let o = (y * outWidth + x) * 3, i = (sy * width + sx) * 3
                out[o] = rgb[i]; out[o + 1] = rgb[i + 1]; out[o + 2] = rgb[i + 2]
            }
        }
        return out
    }

    /// Applies `taps` along one axis: for every line (a row or a column) and output position,
    /// the fixed-point weighted sum of the input pixels the taps name, per channel.
    private static func convolve(_ input: [UInt8], lines: Int, lineOffset: Int, taps: Taps,
                                 pixelStride: Int, lineStride: Int, outPixelStride: Int, outLineStride: Int) -> [UInt8] {
        let outCount = taps.start.count
        var output = [UInt8](repeating: 0, count: lines * outCount * 3)
        let half = 1 << (Taps.precisionBits - 1)
        for line in 0..<lines {
            let lineBase = (line + lineOffset) * lineStride
            for position in 0..<outCount {
                var sums = (half, half, half)
                let first = taps.start[position], k = position * taps.size
                for tap in 0..<taps.count[position] {
                    let p = lineBase + (first + tap) * pixelStride, w = taps.weights[k + tap]
                    sums.0 += Int(input[p]) * w
                    sums.1 += Int(input[p + 1]) * w
                    sums.2 += Int(input[p + 2]) * w
                }
                let o = line * outLineStride + position * outPixelStride
                output[o] = clip(sums.0)
                output[o + 1] = clip(sums.1)
                output[o + 2] = clip(sums.2)
            }
        }
        return output
    }

    private static func clip(_ sum: Int) -> UInt8 { UInt8(max(0, min(255, sum >> Taps.precisionBits))) }

    /// Pillow's bicubic kernel, a = -0.5, support 2.
    static func bicubic(_ x: Double) -> Double {
        let a = -0.5, x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// The input positions and fixed-point weights of each output position along one axis.
    struct Taps {
        /// Weights are rounded to this many fraction bits (8-bit results, sign and headroom).
        static let precisionBits = 32 - 8 - 2
        var start: [Int], count: [Int], weights: [Int], size: Int

        init(start: [Int], count: [Int], weights: [Int], size: Int) {
            self.start = start; self.count = count; self.weights = weights; self.size = size
        }

        /// Taps mapping the input span `from..<to` (of `inSize` pixels) onto `outSize` pixels.
        init(inSize: Int, from in0: Float, to in1: Float, outSize: Int, filter: Filter = .bicubic) {
            let scale = Double(in1 - in0) / Double(outSize)
            let filterScale = max(scale, 1), inverseScale = 1.0 / filterScale
            let support = filter.support * filterScale
            size = Int(support.rounded(.up)) * 2 + 1
            start = []; count = []
            weights = [Int](repeating: 0, count: outSize * size)
            var kernel = [Double](repeating: 0, count: size)
            for position in 0..<outSize {
                let centre = Double(in0) + (Double(position) + 0.5) * scale
                let lo = max(Int(centre - support + 0.5), 0)
                let n = min(Int(centre + support + 0.5), inSize) - lo
                var total = 0.0
                for tap in 0..<n {
                    kernel[tap] = filter.weight((Double(tap + lo) - centre + 0.5) * inverseScale)
                    total += kernel[tap]
                }
                for tap in 0..<n {
                    let w = total != 0 ? kernel[tap] / total : kernel[tap]
                    let scaled = w * Double(1 << Taps.precisionBits)
                    weights[position * size + tap] = Int(w < 0 ? scaled - 0.5 : scaled + 0.5)
                }
                start.append(lo); count.append(n)
            }
        }
    }
}

/// OpenCV's Gaussian blur of a one-channel 8-bit image, `cv2.GaussianBlur(src, (kw, kh),
/// sigmaX, sigmaY=sigmaY)` with the default border (`BORDER_REFLECT_101`), byte for byte.
///
/// For 8-bit images OpenCV runs its "bit-exact" path (imgproc/src/smooth.dispatch.cpp and
/// smooth.simd.hpp): the kernel is computed in software double precision with OpenCV's own
/// table-and-polynomial `exp` (core/src/softfloat.cpp), rounded to 8 fractional bits with error
/// diffusion so that it sums to exactly 256, and applied separably in integers: rows into
/// 8.8 fixed point, then columns into 16.16 fixed point, rounded half up to 8 bits.
public enum OpenCVGaussianBlur {
    /// `gray` (`width * height` bytes, rows top to bottom) blurred with a `kernelWidth x
    /// kernelHeight` Gaussian (odd sizes; 0 derives a size from the sigma as OpenCV does).
    /// `sigmaY` 0 means `sigmaX`; a sigma of 0 derives one from the kernel size.
    public static func blur(_ gray: [UInt8], width: Int, height: Int, kernelWidth: Int, kernelHeight: Int,
                            sigmaX: Double, sigmaY: Double = 0) -> [UInt8] {
        precondition(width > 0 && height > 0 && gray.count == width * height)
        var kw = kernelWidth, kh = kernelHeight
        if height == 1 { kh = 1 }
        if width == 1 { kw = 1 }
        if kw == 1 && kh == 1 { return gray }
        let sigma1 = sigmaX, sigma2 = sigmaY <= 0 ? sigmaX : sigmaY
        if kw <= 0 && sigma1 > 0 { kw = roundEven(sigma1 * 3 * 2 + 1) | 1 }
        if kh <= 0 && sigma2 > 0 { kh = roundEven(sigma2 * 3 * 2 + 1) | 1 }
        precondition(kw > 0 && kw % 2 == 1 && kh > 0 && kh % 2 == 1, "kernel sizes must be odd and positive")
        let s1 = max(sigma1, 0), s2 = max(sigma2, 0)
        let kx = fixedPointKernel(kw, sigma: s1)
        let ky = kh == kw && abs(s1 - s2) < Double.ulpOfOne ? kx : fixedPointKernel(kh, sigma: s2)

        // Rows: 8.8 fixed point (at most 255 * 256, so the saturating adds never saturate).
        let preX = kw / 2
        var rows = [UInt32](repeating: 0, count: width * height)
        for y in 0..<height {
            let line = y * width
            for x in 0..<width {
                var sum: UInt32 = 0
                for j in 0..<kw { sum &+= kx[j] &* UInt32(gray[line + reflect101(x + j - preX, width)]) }
                rows[line + x] = sum
            }
        }
        // Columns: 16.16 fixed point, rounded half up and saturated to 8 bits.
        let preY = kh / 2
        var out = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                var sum: UInt32 = 0
                for j in 0..<kh { sum &+= ky[j] &* rows[reflect101(y + j - preY, height) * width + x] }
                out[y * width + x] = UInt8(min((sum &+ (1 << 15)) >> 16, 255))
            }
        }
        return out
    }

    /// `borderInterpolate` for `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`), reflecting as
    /// often as a kernel wider than the image needs.
    static func reflect101(_ p: Int, _ length: Int) -> Int {
        if length == 1 { return 0 }
        var p = p
        while p < 0 || p >= length { p = p < 0 ? -p : 2 * (length - 1) - p }
        return p
    }

    /// `cvRound`: nearest integer, ties to even.
    static func roundEven(_ value: Double) -> Int { Int(value.rounded(.toNearestOrEven)) }

    /// The `ufixedpoint16` kernel: `getGaussianKernelBitExact`, then
    /// `getGaussianKernelFixedPoint_ED` with 8 fractional bits (the centre takes what is left of 256).
    static func fixedPointKernel(_ n: Int, sigma: Double) -> [UInt32] {
        let kernel = bitExactKernel(n, sigma: sigma)
        let half = n / 2
        var result = [Int](repeating: 0, count: n)
        var error = 0.0, sum = 0
        for i in 0..<half {
            let adjusted = kernel[i] * 256 + error
            let v = roundEven(adjusted)
            error = adjusted - Double(v)
            result[i] = v
            result[n - 1 - i] = v
            sum += v
        }
        result[half] = 256 - 2 * sum
        return result.map { UInt32(UInt16(truncatingIfNeeded: $0)) }
    }

    /// `getGaussianKernelBitExact`: the normalised Gaussian of `n` taps (IEEE double arithmetic,
    /// which is what OpenCV's software doubles compute, with OpenCV's `exp`). A sigma of 0 or
    /// less gives the fixed binomial kernels for sizes 1 to 9, else sigma `0.15 n + 0.35`.
    static func bitExactKernel(_ n: Int, sigma: Double) -> [Double] {
        precondition(n > 0)
        if sigma <= 0 {
            switch n {
            case 1: return [1]
            case 3: return [0.25, 0.5, 0.25]
            case 5: return [0.0625, 0.25, 0.375, 0.25, 0.0625]
            case 7: return [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]
            case 9: return [4, 13, 30, 51, 60, 51, 30, 13, 4].map { $0 / 256 }
            default: break
            }
        }
        let sd015 = Double(bitPattern: 0x3fc3_3333_3333_3333), sd035 = Double(bitPattern: 0x3fd6_6666_6666_6666)
        let sigmaX = sigma > 0 ? sigma : sd035.addingProduct(Double(n), sd015)
        let scale2X = -0.125 / (sigmaX * sigmaX)
        let half = (n - 1) / 2
        var values = [Double](repeating: 0, count: half)
        var sum = 0.0
        var x = 1 - n
        for i in 0..<half {
            let t = softExp(Double(x * x) * scale2X)
            values[i] = t
            sum += t
            x += 2
        }
        sum *= 2
        sum += 1
        if n & 1 == 0 { sum += 1 }
        let mul1 = 1 / sum
        var result = [Double](repeating: 0, count: n)
        for i in 0..<half {
            let t = values[i] * mul1
            result[i] = t
            result[n - 1 - i] = t
        }
        result[half] = 1 * mul1
        if n & 1 == 0 { result[half + 1] = result[half] }
        return result
    }

    /// OpenCV's `softdouble exp` (`f64_exp`): 2^(x/ln 2) split into a power of two, a 64-entry
    /// table of 2^(k/64) and a degree-5 polynomial, evaluated left to right in IEEE double.
    static func softExp(_ x: Double) -> Double {
        if x.isNaN { return .nan }
        if x.isInfinite { return x > 0 ? x : 0 }
        let a0Scale = Double(bitPattern: 0x3f83_ce0f_3e46_f431)
        let a5 = 1 / a0Scale
        let a4 = Double(bitPattern: 0x3fe6_2e42_fefa_39f1) / a0Scale
        let a3 = Double(bitPattern: 0x3fce_bfbd_ff82_a45a) / a0Scale
        let a2 = Double(bitPattern: 0x3fac_6b08_d81f_ec75) / a0Scale
        let a1 = Double(bitPattern: 0x3f83_b2a7_2b4f_3cd3) / a0Scale
        let a0 = Double(bitPattern: 0x3f55_e7aa_1566_c2a4) / a0Scale
        let prescale = Double(bitPattern: 0x3ff7_1547_652b_82fe) * 64, postscale = 1.0 / 64, maxValue = 3000.0 * 64
        let exponent = Int((x.bitPattern >> 52) & 0x7ff)
        var x0 = exponent > 1023 + 10 ? (x.sign == .minus ? -maxValue : maxValue) : x * prescale
        let val0 = roundEven(x0)
        let t = min(max((val0 >> 6) + 1023, 0), 2047)
        let power = Double(bitPattern: UInt64(t) << 52)
        x0 = (x0 - x0.rounded(.toNearestOrEven)) * postscale
        let polynomial = ((((a0 * x0 + a1) * x0 + a2) * x0 + a3) * x0 + a4) * x0 + a5
        return power * a0Scale * Double(bitPattern: expTable[val0 & 63]) * polynomial
    }

    /// 2^(k/64), k = 0..63 (softfloat.cpp's `expTab`).
    static let expTable: [UInt64] = [
        0x3ff0000000000000, 0x3ff02c9a3e778061, 0x3ff059b0d3158574, 0x3ff0874518759bc8,
        0x3ff0b5586cf9890f, 0x3ff0e3ec32d3d1a2, 0x3ff11301d0125b51, 0x3ff1429aaea92de0,
        0x3ff172b83c7d517b, 0x3ff1a35beb6fcb75, 0x3ff1d4873168b9aa, 0x3ff2063b88628cd6,
        0x3ff2387a6e756238, 0x3ff26b4565e27cdd, 0x3ff29e9df51fdee1, 0x3ff2d285a6e4030b,
        0x3ff306fe0a31b715, 0x3ff33c08b26416ff, 0x3ff371a7373aa9cb, 0x3ff3a7db34e59ff7,
        0x3ff3dea64c123422, 0x3ff4160a21f72e2a, 0x3ff44e086061892d, 0x3ff486a2b5c13cd0,
        0x3ff4bfdad5362a27, 0x3ff4f9b2769d2ca7, 0x3ff5342b569d4f82, 0x3ff56f4736b527da,
        0x3ff5ab07dd485429, 0x3ff5e76f15ad2148, 0x3ff6247eb03a5585, 0x3ff6623882552225,
        0x3ff6a09e667f3bcd, 0x3ff6dfb23c651a2f, 0x3ff71f75e8ec5f74, 0x3ff75feb564267c9,
        0x3ff7a11473eb0187, 0x3ff7e2f336cf4e62, 0x3ff82589994cce13, 0x3ff868d99b4492ed,
        0x3ff8ace5422aa0db, 0x3ff8f1ae99157736, 0x3ff93737b0cdc5e5, 0x3ff97d829fde4e50,
        0x3ff9c49182a3f090, 0x3ffa0c667b5de565, 0x3ffa5503b23e255d, 0x3ffa9e6b5579fdbf,
        0x3ffae89f995ad3ad, 0x3ffb33a2b84f15fb, 0x3ffb7f76f2fb5e47, 0x3ffbcc1e904bc1d2,
        0x3ffc199bdd85529c, 0x3ffc67f12e57d14b, 0x3ffcb720dcef9069, 0x3ffd072d4a07897c,
        0x3ffd5818dcfba487, 0x3ffda9e603db3285, 0x3ffdfc97337b9b5f, 0x3ffe502ee78b3ff6,
        0x3ffea4afa2a490da, 0x3ffefa1bee615a27, 0x3fff50765b6e4540, 0x3fffa7c1819e90d8,
    ]
}

import Engine
import Foundation
import Formats
import Imaging

/// A1111's inpainting options (`StableDiffusionProcessingImg2Img` with `image_mask`, under its
/// API names in the comments) and what they make of the init picture and the mask: the mask's
/// blur and resize or the "only masked" crop, the masked content, the latent mask the sampler
/// blends with, the 9-channel models' masked-picture conditioning, and the overlay that puts the
/// unmasked pixels back.
public struct Inpainting: Sendable {
    /// "Masked content" (`inpainting_fill`), by A1111's numbers.
    public enum MaskedContent: Int, Sendable, CaseIterable {
        /// The masked area filled with blurred colours of the rest (`masking.fill`).
        case fill = 0
        /// The picture as it is.
        case original = 1
        /// The masked latent replaced by the seed's noise.
        case latentNoise = 2
        /// The masked latent zeroed.
        case latentNothing = 3

        /// A1111's infotext value ("Masked content"); nil where it writes none.
        public var infotext: String? {
            switch self {
            case .fill: return "fill"
            case .original: return nil
            case .latentNoise: return "latent noise"
            case .latentNothing: return "latent nothing"
            }
        }
    }

    /// The mask (one byte a pixel, white = repainted) as A1111's `create_binary_mask` reads it.
    public var mask: [UInt8]
    public var maskWidth: Int, maskHeight: Int
    /// "Mask blur" (`mask_blur`, both axes), in pixels.
    public var blur = 4
    /// "Mask mode: Inpaint not masked" (`inpainting_mask_invert`).
    public var invert = false
    /// "Masked content" (`inpainting_fill`); A1111's UI default, "original".
    public var content = MaskedContent.original
    /// "Inpaint area: Only masked" (`inpaint_full_res`): the masked region, padded and widened to
    /// the generation's aspect ratio, is generated at the full size and pasted back.
    public var onlyMasked = false
    /// "Only masked padding, pixels" (`inpaint_full_res_padding`).
    public var padding = 32

    public init(mask: [UInt8], width: Int, height: Int) {
        precondition(mask.count == width * height)
        self.mask = mask; maskWidth = width; maskHeight = height
    }

    /// A mask file as A1111 reads it: a PNG with transparency gives its alpha, thresholded at 128;
    /// any other picture its luminance (Pillow's `convert("L")`).
    public static func readMask(_ path: String) throws -> Inpainting {
        let (picture, alpha) = try RGBImage.readWithAlpha(path)
        if let alpha { return Inpainting(mask: alpha.map { $0 > 128 ? 255 : 0 }, width: picture.width, height: picture.height) }
        return Inpainting(mask: luminance(picture.rgb), width: picture.width, height: picture.height)
    }

    /// Pillow's RGB to "L": (R 19595 + G 38470 + B 7471 + 2^15) >> 16.
    static func luminance(_ rgb: [UInt8]) -> [UInt8] {
        (0..<(rgb.count / 3)).map { (i: Int) -> UInt8 in
            let r = Int(rgb[i * 3]) * 19595, g = Int(rgb[i * 3 + 1]) * 38470, b = Int(rgb[i * 3 + 2]) * 7471
            return UInt8((r + g + b + 0x8000) >> 16)
        }
    }

    /// What the mask makes of one generation (A1111's `init` with a mask).
    struct Prepared {
        /// The picture the VAE encodes: fitted (or the crop, fitted), filled for `fill`.
        var picture: RGBImage
        /// The mask at the generation's size (A1111's `image_mask`), for the latent mask and the
        /// masked-picture conditioning; nil when "only masked" found a blank mask (plain img2img).
        var generationMask: [UInt8]?
        /// The unmasked pixels to put back over each image: premultiplied through the inverted
        /// overlay mask, as RGBA, at `overlaySize`.
        var overlay: [UInt8]?
        var overlaySize: (width: Int, height: Int)
        /// "Only masked": where the generated image goes back (x, y, width, height).
        var pasteTo: (x: Int, y: Int, width: Int, height: Int)?
        /// A message for the user (A1111 falls back to img2img for a blank "only masked" mask).
        var notice: String?
    }

    /// A1111's mask processing and picture preparation for a `width` x `height` generation.
    func prepare(_ initImage: RGBImage, width: Int, height: Int, resizeMode: ImageToImage.ResizeMode) throws -> Prepared {
        guard resizeMode != .latentUpscale else {
            throw GenerationError.invalid("inpainting needs resize mode 0, 1 or 2: with 3 (latent upscale) the picture keeps its size and A1111 cannot lay the mask over it")
        }
        var m = invert ? PillowCompositing.inverted(mask) : mask
        if blur > 0 {
            let kernel = 2 * Int(2.5 * Double(blur) + 0.5) + 1
            m = OpenCVGaussianBlur.blur(m, width: maskWidth, height: maskHeight, kernelWidth: kernel, kernelHeight: 1, sigmaX: Double(blur))
            m = OpenCVGaussianBlur.blur(m, width: maskWidth, height: maskHeight, kernelWidth: 1, kernelHeight: kernel, sigmaX: Double(blur))
        }
        var generationMask: [UInt8]?
        var overlayMask: (pixels: [UInt8], width: Int, height: Int)?
        var crop: (x1: Int, y1: Int, x2: Int, y2: Int)?
        var notice: String?
        if onlyMasked {
            if let region = InpaintCropRegion.region(mask: m, width: maskWidth, height: maskHeight, padding: padding) {
                let r = InpaintCropRegion.expanded(region, processingWidth: width, processingHeight: height, imageWidth: maskWidth, imageHeight: maskHeight)
                crop = r
                overlayMask = (m, maskWidth, maskHeight)
                let cropped = Self.crop(m, maskWidth, maskHeight, r)
                generationMask = Self.fitGray(cropped, r.x2 - r.x1, r.y2 - r.y1, width, height, .resizeAndFill)
            } else {
                notice = "the mask is blank, so \"only masked\" cannot crop to it: this runs as img2img (as A1111 does)"
            }
        } else {
            let fitted = Self.fitGray(m, maskWidth, maskHeight, width, height, resizeMode)
            generationMask = fitted
            overlayMask = (fitted.map { UInt8(min(Int($0) * 2, 255)) }, width, height)
        }
        var picture = crop == nil ? ImageToImage.fit(initImage, width: width, height: height, mode: resizeMode) : initImage
        var overlay: [UInt8]?
        if let overlayMask {
            var overlayPixels = overlayMask.pixels
            if (overlayMask.width, overlayMask.height) != (picture.width, picture.height) {
                overlayPixels = Self.fitGray(overlayPixels, overlayMask.width, overlayMask.height, picture.width, picture.height, resizeMode)
            }
            let premultiplied = PillowCompositing.premultiplied(rgba: PillowCompositing.rgbaFromRGB(picture.rgb))
            let masked = PillowCompositing.paste(premultiplied, into: [UInt8](repeating: 0, count: premultiplied.count),
                                                 mask: PillowCompositing.inverted(overlayPixels), channels: 4)
            overlay = PillowCompositing.unpremultiplied(rgba: masked)
        }
        let overlaySize = (picture.width, picture.height)
        if let crop {
            let cropped = RGBImage(width: crop.x2 - crop.x1, height: crop.y2 - crop.y1,
                                   rgb: Self.crop(picture.rgb, picture.width, picture.height, crop, channels: 3))
            picture = ImageToImage.fit(cropped, width: width, height: height, mode: .resizeAndFill)
        }
        if let generationMask, content != .original {
            picture = RGBImage(width: width, height: height, rgb: InpaintFill.fill(rgb: picture.rgb, width: width, height: height, mask: generationMask))
        }
        return Prepared(picture: picture, generationMask: generationMask, overlay: overlay, overlaySize: overlaySize,
                        pasteTo: crop.map { ($0.x1, $0.y1, $0.x2 - $0.x1, $0.y2 - $0.y1) }, notice: notice)
    }

    /// The generated image with the unmasked pixels put back (A1111's `apply_overlay`): for
    /// "only masked" first fitted to the crop (crop and resize) and placed on a transparent
    /// canvas of the picture's size; then the overlay composited over it.
    static func finish(_ image: RGBImage, _ prepared: Prepared) -> RGBImage {
        guard let overlay = prepared.overlay else { return image }
        let (w, h) = prepared.overlaySize
        var base: [UInt8]
        if let to = prepared.pasteTo {
            let fitted = ImageToImage.fit(image, width: to.width, height: to.height, mode: .cropAndResize)
            base = PillowCompositing.paste(PillowCompositing.rgbaFromRGB(fitted.rgb), width: to.width, height: to.height,
                                           into: [UInt8](repeating: 0, count: w * h * 4), width: w, height: h,
                                           x: to.x, y: to.y, mask: nil, channels: 4)
        } else {
            base = PillowCompositing.rgbaFromRGB(image.rgb)
        }
        base = PillowCompositing.alphaComposite(destination: base, source: overlay)
        return RGBImage(width: w, height: h, rgb: PillowCompositing.rgbFromRGBA(base))
    }

    /// The latent mask and its complement (A1111's `mask` and `nmask`), [C, h, w]: the
    /// generation mask resized to the latent size with Pillow's default (bicubic) filter, one
    /// channel, divided by 255 and rounded.
    static func latentMasks(_ generationMask: [UInt8], width: Int, height: Int, latentShape: [Int]) throws -> (keep: Tensor, repaint: Tensor) {
        let (c, h, w) = (latentShape[0], latentShape[1], latentShape[2])
        let rgb = generationMask.flatMap { [$0, $0, $0] }
        let small = ImageFit.resize(rgb: rgb, width: width, height: height, outWidth: w, outHeight: h)
        let plane = (0..<(w * h)).map { (Float(small[$0 * 3]) / 255).rounded(.toNearestOrEven) }
        let repaint = Array((0..<c).map { _ in plane }.joined())
        return (try Tensor(shape: [c, h, w], data: repaint.map { 1 - $0 }), try Tensor(shape: [c, h, w], data: repaint))
    }

    /// `images.resize_image(mode, mask, width, height)` of an "L" picture: per channel the same as RGB.
    static func fitGray(_ gray: [UInt8], _ width: Int, _ height: Int, _ toWidth: Int, _ toHeight: Int, _ mode: ImageToImage.ResizeMode) -> [UInt8] {
        let rgb = RGBImage(width: width, height: height, rgb: gray.flatMap { [$0, $0, $0] })
        let fitted = ImageToImage.fit(rgb, width: toWidth, height: toHeight, mode: mode)
        return (0..<(toWidth * toHeight)).map { fitted.rgb[$0 * 3] }
    }

    /// Pillow's `crop` inside the picture.
    static func crop(_ pixels: [UInt8], _ width: Int, _ height: Int, _ r: (x1: Int, y1: Int, x2: Int, y2: Int), channels: Int = 1) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((r.x2 - r.x1) * (r.y2 - r.y1) * channels)
        for y in r.y1..<r.y2 { out += pixels[((y * width + r.x1) * channels)..<((y * width + r.x2) * channels)] }
        return out
    }
}

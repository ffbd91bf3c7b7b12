import Engine
import Formats
import Imaging
import Models

/// A1111's pixel upscalers (`modules/upscaler.py`): "None", "Lanczos", "Nearest", and ESRGAN-family
/// model files, each resizing an 8-bit picture as A1111's `images.resize_image(0, ...,
/// upscaler_name=)` does for the hires fix.
public enum PixelUpscaler {
    case none, lanczos, nearest
    /// An ESRGAN (RRDBNet) model, applied in tiles of `tiling`.
    case model(name: String, network: RRDBNet, tiling: UpscalerTiling)

    /// The built-in pixel upscalers' names, as A1111 lists them.
    public static let builtInNames = ["None", "Lanczos", "Nearest"]

    /// `resize_image(0, image, width, height, upscaler_name)`: "None" is Pillow's LANCZOS to the
    /// size; the others upscale by the larger side ratio (when above 1) through A1111's
    /// `Upscaler.upscale` loop, then LANCZOS to the exact size if it differs.
    public func resize(_ image: RGBImage, width: Int, height: Int) throws -> RGBImage {
        if case .none = self { return Self.lanczos(image, width, height) }
        var picture = image
        let scale = max(Double(width) / Double(image.width), Double(height) / Double(image.height))
        if scale > 1 { picture = try upscale(picture, scale: scale) }
        if picture.width != width || picture.height != height { picture = Self.lanczos(picture, width, height) }
        return picture
    }

    /// A1111's `Upscaler.upscale`: the destination is the scaled size rounded down to multiples
    /// of 8; the upscaler runs up to three times until the picture covers it (or stops growing),
    /// then LANCZOS brings it to the destination.
    func upscale(_ image: RGBImage, scale: Double) throws -> RGBImage {
        let destW = Int((Double(image.width) * scale / 8).rounded(.down) * 8)
        let destH = Int((Double(image.height) * scale / 8).rounded(.down) * 8)
        var picture = image
        for i in 0..<3 {
            if picture.width >= destW, picture.height >= destH, i > 0 || scale != 1 { break }
            try Cancellation.check()
            let before = (picture.width, picture.height)
            picture = try once(picture, scale: scale)
            if before == (picture.width, picture.height) { break }
        }
        if picture.width != destW || picture.height != destH, destW > 0, destH > 0 { picture = Self.lanczos(picture, destW, destH) }
        return picture
    }

    /// One application (`do_upscale`): the filters scale by `scale` (truncated sizes); a model by its own factor.
    func once(_ image: RGBImage, scale: Double) throws -> RGBImage {
        let (w, h) = (Int(Double(image.width) * scale), Int(Double(image.height) * scale))
        switch self {
        case .none: return image
        case .lanczos: return Self.lanczos(image, w, h)
        case .nearest: return RGBImage(width: w, height: h, rgb: ImageFit.nearest(rgb: image.rgb, width: image.width, height: image.height, outWidth: w, outHeight: h))
        case let .model(_, network, tiling): return try ESRGANUpscale.run(network, image, tiling: tiling)
        }
    }

    static func lanczos(_ image: RGBImage, _ width: Int, _ height: Int) -> RGBImage {
        guard width != image.width || height != image.height else { return image }
        return RGBImage(width: width, height: height, rgb: ImageFit.resize(rgb: image.rgb, width: image.width, height: image.height,
                                                                          outWidth: width, outHeight: height, filter: .lanczos))
    }
}

/// A1111's ESRGAN tile settings (`ESRGAN_tile`, `ESRGAN_tile_overlap`): the picture is cut into
/// overlapping square tiles (`images.split_grid`), each upscaled alone, and the results blended
/// across the overlaps (`images.combine_grid`). A size of 0 upscales the whole picture at once.
public struct UpscalerTiling: Sendable, Equatable {
    public var size: Int, overlap: Int
    public init(size: Int = 192, overlap: Int = 8) { self.size = size; self.overlap = overlap }
}

/// An ESRGAN model run as A1111 runs it (`upscaler_utils.upscale_with_model`).
enum ESRGANUpscale {
    static func run(_ network: RRDBNet, _ image: RGBImage, tiling: UpscalerTiling) throws -> RGBImage {
        guard tiling.size > 0 else { return try patch(network, image) }
        let grid = TileGrid.split(image, tile: tiling.size, overlap: tiling.overlap)
        let upscaled = try grid.map { tile in
            try Cancellation.check()
            return try patch(network, tile)
        }
        return upscaled.combined()
    }

    /// One picture through the network as A1111 (spandrel) runs it: channels in BGR order, x / 255
    /// in [3, H, W]; padded on the right and bottom to the sizes the network takes (at least 2,
    /// and multiples of 4 for the pixel-unshuffling models: reflected up to a side less one, then
    /// the edge repeated); the output cut back to the scaled size, clamped to 0...1, times 255
    /// (float32), rounded half to even.
    static func patch(_ network: RRDBNet, _ image: RGBImage) throws -> RGBImage {
        let (w, h) = (image.width, image.height)
        let multiple = network.unshuffle > 1 ? 4 : 1
        func padded(_ side: Int) -> Int { max((max(side, 2) + multiple - 1) / multiple * multiple, multiple) }
        let (pw, ph) = (padded(w), padded(h))
        // torch's "reflect" for up to side - 1 pixels, then "replicate" of the reflected edge.
        func source(_ i: Int, _ side: Int, _ total: Int) -> Int {
            let reflected = min(total - side, side - 1)
            if i < side { return i }
            if i < side + reflected { return 2 * (side - 1) - i }
            return source(side + reflected - 1, side, total)
        }
        var data = [Float](repeating: 0, count: 3 * pw * ph)
        for y in 0..<ph {
            let sy = source(y, h, ph)
            for x in 0..<pw {
                let p = (sy * w + source(x, w, pw)) * 3
                for c in 0..<3 { data[c * pw * ph + y * pw + x] = Float(Double(image.rgb[p + 2 - c]) / 255) }
            }
        }
        let out = try withNoGrad { try network(try Tensor(shape: [1, 3, ph, pw], data: data)) }
        let (oh, ow) = (h * network.scale, w * network.scale)
        let fullWidth = out.shape[3], plane = out.shape[2] * fullWidth
        let v = try out.toArray()
        var rgb = [UInt8](repeating: 0, count: oh * ow * 3)
        for c in 0..<3 {
            for y in 0..<oh {
                for x in 0..<ow {
                    let value = v[c * plane + y * fullWidth + x]
                    rgb[(y * ow + x) * 3 + 2 - c] = value.isNaN ? 0 : UInt8((255 * min(max(value, 0), 1)).rounded(.toNearestOrEven))
                }
            }
        }
        return RGBImage(width: ow, height: oh, rgb: rgb)
    }
}

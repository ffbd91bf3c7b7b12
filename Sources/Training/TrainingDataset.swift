import Engine
import Foundation
import Formats
import Imaging

/// One training picture, ready for the VAE: its caption and its pixels fitted to the training size.
public struct TrainingSample: Sendable {
    /// The image file.
    public let path: String
    /// The caption (`[filewords]`), from a sidecar `.txt` or the file name (`TrainingCaption`).
    public let caption: String
    /// 8-bit RGB at the training size, centre-cropped and resized (`ImageFit`).
    public let image: RGBImage
    /// The picture's own size in pixels, before fitting.
    public let originalWidth: Int, originalHeight: Int
    /// The picture's alpha channel at its own size, when it has transparency (A1111's "use PNG
    /// alpha channel as loss weight"); nil for an opaque picture.
    public var alpha: [UInt8]? = nil

    /// A1111's loss weight for this picture at a latent of `width` x `height` and `channels`
    /// ([channels, height, width]): the alpha channel resized straight to the latent size (Pillow's
    /// default bicubic for an "L" picture), less its minimum, divided by its mean (so the weights
    /// average 1). An opaque picture, or a constant alpha (where A1111 divides by zero and
    /// trains on NaN), weighs every element 1.
    public func lossWeight(width: Int, height: Int, channels: Int, flipped: Bool = false) -> [Float] {
        let count = channels * width * height
        guard let alpha else { return [Float](repeating: 1, count: count) }
        let rgb = alpha.flatMap { [$0, $0, $0] }
        let small = ImageFit.resize(rgb: rgb, width: originalWidth, height: originalHeight, outWidth: width, outHeight: height)
        var plane = (0..<(width * height)).map { Float(small[$0 * 3]) }
        if flipped {
            plane = (0..<(width * height)).map { i in plane[(i / width) * width + (width - 1 - i % width)] }
        }
        let low = plane.min() ?? 0
        plane = plane.map { $0 - low }
        // The mean over the repeated channels is the plane's mean, summed in double as torch's float32 mean rounds it.
        let mean = Float(plane.reduce(0.0) { $0 + Double($1) } / Double(plane.count))
        guard mean > 0 else { return [Float](repeating: 1, count: count) }
        let weights = plane.map { $0 / mean }
        return Array((0..<channels).map { _ in weights }.joined())
    }

    /// SDXL's size conditioning of this picture, as diffusers' SDXL trainer computes it for a
    /// centre crop: original height and width, the crop's top and left in the picture resized to
    /// cover the training size (`ImageFit.cropTopLeft`), and the training height and width.
    public var conditioningSizes: [Float] {
        let crop = ImageFit.cropTopLeft(width: originalWidth, height: originalHeight, outWidth: image.width, outHeight: image.height)
        return [originalHeight, originalWidth, crop.top, crop.left, image.height, image.width].map(Float.init)
    }

    /// The pixels as a [3, H, W] tensor in [-1, 1] (A1111's `x / 127.5 - 1`), mirrored left to
    /// right when `flipped`.
    public func pixels(flipped: Bool = false) throws -> Tensor {
        let (w, h) = (image.width, image.height)
        var data = [Float](repeating: 0, count: 3 * w * h)
        for y in 0..<h {
            for x in 0..<w {
                let source = (y * w + (flipped ? w - 1 - x : x)) * 3
                for c in 0..<3 { data[c * w * h + y * w + x] = Float(image.rgb[source + c]) / 127.5 - 1 }
            }
        }
        return try Tensor(shape: [3, h, w], data: data)
    }
}

/// The pictures of a training folder. Like A1111 the folder is read without subfolders; files
/// are taken in name order (A1111 takes the file system's order) so a run is reproducible.
public struct TrainingDataset: Sendable {
    /// File name endings taken as pictures; other files (captions, notes) are ignored.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]

    public let folder: String
    public let samples: [TrainingSample]
    /// Pictures left out, each with the reason (unreadable, unsupported format, too small).
    public let skipped: [String]
    /// Whether the pictures' alpha channels weigh the loss (`TrainingSample.lossWeight`).
    public let alphaWeights: Bool

    /// Pictures of one bucket size, by index into `samples`.
    public struct Bucket: Sendable, Equatable {
        public let width: Int, height: Int
        public let members: [Int]
    }

    /// The pictures grouped by size, largest area first (one bucket of all of them without `bucketStep`).
    public var buckets: [Bucket] {
        var groups: [[Int]: [Int]] = [:]
        for (i, s) in samples.enumerated() { groups[[s.image.width, s.image.height], default: []].append(i) }
        return groups.keys.sorted { ($0[0] * $0[1], $0[0]) > ($1[0] * $1[1], $1[0]) }.map { Bucket(width: $0[0], height: $0[1], members: groups[$0]!) }
    }

    /// Whether the pictures have several sizes (aspect-ratio buckets).
    public var usesBuckets: Bool { Set(samples.map { [$0.image.width, $0.image.height] }).count > 1 }

    /// kohya's bucket sizes for a training area of `area` pixels: widths from `minimum` to
    /// `maximum` in steps of `step`, each with the tallest height in steps of `step` whose area
    /// fits (and the same turned), as `make_bucket_resolutions` lists them.
    public static func bucketSizes(area: Int, step: Int, minimum: Int, maximum: Int) -> [(width: Int, height: Int)] {
        var out: [(width: Int, height: Int)] = []
        var w = minimum
        while w <= maximum {
            let h = min(maximum, (area / w) / step * step)
            if h >= minimum {
                if !out.contains(where: { $0 == (w, h) }) { out.append((w, h)) }
                if !out.contains(where: { $0 == (h, w) }) { out.append((h, w)) }
            }
            w += step
        }
        return out.sorted { ($0.width, $0.height) < ($1.width, $1.height) }
    }

    /// The bucket a picture of `width` x `height` goes to: the one whose aspect ratio is nearest
    /// (kohya's `argmin |bucket ratio - ratio|`; the first of equals).
    public static func bucket(width: Int, height: Int, among sizes: [(width: Int, height: Int)]) -> (width: Int, height: Int) {
        let ratio = Double(width) / Double(height)
        return sizes.min { abs(Double($0.width) / Double($0.height) - ratio) < abs(Double($1.width) / Double($1.height) - ratio) }!
    }

    /// Loads every picture of `folder`, fitted to `width x height` — or, with `bucketStep`
    /// (A1111's "do not resize images" done as kohya's aspect-ratio buckets), to the bucket of
    /// its aspect ratio among sizes of about the same area in multiples of `bucketStep`.
    public init(folder: String, width: Int, height: Int, minimumSide: Int? = nil, alphaWeights: Bool = false, bucketStep: Int? = nil) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainingDatasetError.notAFolder(folder)
        }
        let names = try fm.contentsOfDirectory(atPath: folder).sorted()
            .filter { Self.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
        let smallest = minimumSide ?? max(1, min(width, height) / 4)
        let bucketSizes = bucketStep.map { step in
            Self.bucketSizes(area: width * height, step: step, minimum: max(step, min(width, height) / 2 / step * step), maximum: max(width, height) * 2)
        }
        var samples: [TrainingSample] = [], skipped: [String] = []
        for name in names {
            let path = (folder as NSString).appendingPathComponent(name)
            do {
                let picture = try RGBImage.read(path)
                guard min(picture.width, picture.height) >= smallest else {
                    skipped.append("\(path): \(picture.width)x\(picture.height) is smaller than \(smallest) pixels on its shorter side")
                    continue
                }
                var (w, h) = (width, height)
                if let bucketSizes { (w, h) = Self.bucket(width: picture.width, height: picture.height, among: bucketSizes) }
                let fitted = ImageFit.fit(rgb: picture.rgb, width: picture.width, height: picture.height, outWidth: w, outHeight: h)
                var sample = TrainingSample(path: path, caption: try TrainingCaption.forImage(at: path),
                                            image: RGBImage(width: w, height: h, rgb: fitted),
                                            originalWidth: picture.width, originalHeight: picture.height)
                if alphaWeights { sample.alpha = try RGBImage.readWithAlpha(path).alpha }
                samples.append(sample)
            } catch {
                skipped.append("\(error)")
            }
        }
        guard !samples.isEmpty else { throw TrainingDatasetError.noPictures(folder: folder, skipped: skipped) }
        self.alphaWeights = alphaWeights
        self.folder = folder
        self.samples = samples
        self.skipped = skipped
    }
}

/// Why a training folder cannot be used.
public enum TrainingDatasetError: Error, CustomStringConvertible, Equatable {
    case notAFolder(String)
    case noPictures(folder: String, skipped: [String])
    /// Options that do not fit the folder (a batch larger than it).
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .notAFolder(let path): return "\(path): not a folder of training pictures"
        case .noPictures(let folder, let skipped):
            let reasons = skipped.isEmpty ? "" : "; skipped:\n  " + skipped.joined(separator: "\n  ")
            return "\(folder): no usable pictures (PNG or JPEG)\(reasons)"
        case .invalidOptions(let message): return message
        }
    }
}

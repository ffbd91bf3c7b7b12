import Foundation
@testable import Imaging
import Formats
import Testing
@testable import Training

@Suite struct TrainingDatasetTests {
    static let images = Bundle.module.resourcePath! + "/Fixtures/images"

    /// A temporary folder with the given fixture copies (fixture name -> name in the folder).
    static func folder(_ files: [(String, String)]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dataset-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (fixture, name) in files { try FileManager.default.copyItem(atPath: "\(images)/\(fixture)", toPath: "\(dir)/\(name)") }
        return dir
    }

    @Test func loadsFitsCaptionsAndSkipsWithReasons() throws {
        let dir = try Self.folder([("wide-37x23.png", "002-a wide thing.png"), ("photo-30x20.jpg", "001-ignored.jpg"),
                                   ("truncated-body.jpg", "003-broken.jpg"), ("small-8x6.png", "004-tiny.png")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a photo, sidecar caption".write(toFile: "\(dir)/001-ignored.txt", atomically: true, encoding: .utf8)
        try "notes".write(toFile: "\(dir)/README.md", atomically: true, encoding: .utf8)
        try Data("RIFF....WEBP".utf8).write(to: URL(fileURLWithPath: "\(dir)/005-other.webp"))

        let dataset = try TrainingDataset(folder: dir, width: 32, height: 32)
        #expect(dataset.samples.map(\.caption) == ["a photo, sidecar caption", "a wide thing"])
        #expect(dataset.skipped.count == 3)
        #expect(dataset.skipped[0].contains("003-broken.jpg") && dataset.skipped[0].contains("JPEG"))
        #expect(dataset.skipped[1].contains("004-tiny.png") && dataset.skipped[1].contains("8x6"))
        #expect(dataset.skipped[2].contains("005-other.webp") && dataset.skipped[2].contains("not a PNG or JPEG"))

        let wide = try RGBImage.read("\(Self.images)/wide-37x23.png")
        let sample = dataset.samples[1]
        #expect(sample.image.rgb == ImageFit.fit(rgb: wide.rgb, width: 37, height: 23, outWidth: 32, outHeight: 32))
        let pixels = try sample.pixels().toArray(), mirrored = try sample.pixels(flipped: true).toArray()
        #expect(pixels[0] == Float(sample.image.rgb[0]) / 127.5 - 1)           // red, top-left
        #expect(pixels[32 * 32 + 5] == Float(sample.image.rgb[5 * 3 + 1]) / 127.5 - 1) // green, x = 5
        for y in [0, 17, 31] {
            for x in [0, 3, 31] { #expect(mirrored[2 * 1024 + y * 32 + x] == pixels[2 * 1024 + y * 32 + 31 - x]) }
        }
        #expect(pixels.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    @Test func emptyOrUselessFoldersAreRefused() throws {
        let empty = try Self.folder([])
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(throws: TrainingDatasetError.noPictures(folder: empty, skipped: [])) {
            try TrainingDataset(folder: empty, width: 32, height: 32)
        }
        let useless = try Self.folder([("truncated-header.jpg", "a.jpg")])
        defer { try? FileManager.default.removeItem(atPath: useless) }
        #expect { try TrainingDataset(folder: useless, width: 32, height: 32) } throws: {
            "\($0)".contains(useless) && "\($0)".contains("a.jpg") && "\($0)".contains("no usable pictures")
        }
        #expect(throws: TrainingDatasetError.notAFolder("/nonexistent/pictures")) {
            try TrainingDataset(folder: "/nonexistent/pictures", width: 32, height: 32)
        }
    }
}

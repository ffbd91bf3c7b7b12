import Foundation
import Formats
import Testing
import TestSupport

/// The demo dataset's classifier (used to judge generated images) reads the dataset's own
/// pictures right: every sample in examples/data/shapes matches its caption.
struct ShapeClassifierTests {
    @Test func samplesMatchTheirCaptions() throws {
        let folder = TestFixtures.repositoryRoot + "/examples/data/shapes"
        let pictures = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".png") }.sorted()
        #expect(pictures.count >= 10)
        for name in pictures {
            let image = try PNGFile.read(folder + "/" + name)
            var rgb: [UInt8] = []
            for (i, byte) in image.rgba.enumerated() where i % 4 != 3 { rgb.append(byte) }
            let caption = try String(contentsOfFile: folder + "/" + name.replacingOccurrences(of: ".png", with: ".txt"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(ShapeClassifier.classify(rgb: rgb, width: image.width, height: image.height).caption == caption, "\(name)")
        }
    }
}

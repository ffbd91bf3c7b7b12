/// Classifies a picture of the demo dataset (Tests/Fixtures/generators/make_demo_data.py): one shape (circle,
/// square, triangle) in one of six colours on a plain background of another. Each pixel takes its
/// nearest palette colour; the background is the majority along the border, the shape's colour
/// the majority of the other pixels, and the shape comes from how much of its bounding box the
/// largest region of that colour fills (square 1, circle pi/4, triangle 1/2).
public enum ShapeClassifier {
    public static let palette: [(name: String, rgb: (Int, Int, Int))] = [
        ("red", (220, 30, 30)), ("green", (30, 180, 40)), ("blue", (30, 60, 220)),
        ("yellow", (240, 220, 30)), ("white", (245, 245, 245)), ("black", (15, 15, 15)),
    ]

    public struct Result: Equatable, Sendable, CustomStringConvertible {
        public let colour: String, shape: String, background: String
        public var caption: String { "a \(colour) \(shape) on a \(background) background" }
        public var description: String { caption }
    }

    static func nearest(_ r: Int, _ g: Int, _ b: Int) -> Int {
        var best = 0, bestDistance = Int.max
        for (i, p) in palette.enumerated() {
            let d = (r - p.rgb.0) * (r - p.rgb.0) + (g - p.rgb.1) * (g - p.rgb.1) + (b - p.rgb.2) * (b - p.rgb.2)
            if d < bestDistance { bestDistance = d; best = i }
        }
        return best
    }

    /// Classifies 8-bit RGB pixels (rows top to bottom).
    public static func classify(rgb: [UInt8], width: Int, height: Int) -> Result {
        let labels = (0..<(width * height)).map { nearest(Int(rgb[$0 * 3]), Int(rgb[$0 * 3 + 1]), Int(rgb[$0 * 3 + 2])) }
        var border = [Int](repeating: 0, count: palette.count)
        for x in 0..<width { border[labels[x]] += 1; border[labels[(height - 1) * width + x]] += 1 }
        for y in 0..<height { border[labels[y * width]] += 1; border[labels[y * width + width - 1]] += 1 }
        let background = border.indices.max { border[$0] < border[$1] }!
        // The shape's colour: the majority away from a 2-pixel frame (generated images may have
        // stray colours along their edges).
        let margin = 2
        var votes = [Int](repeating: 0, count: palette.count)
        for y in margin..<(height - margin) {
            for x in margin..<(width - margin) where labels[y * width + x] != background { votes[labels[y * width + x]] += 1 }
        }
        votes[background] = -1
        let colour = votes.indices.max { votes[$0] < votes[$1] }!
        // The shape: the largest 4-connected region of that colour, and how much of its bounding
        // box it fills.
        var seen = [Bool](repeating: false, count: width * height)
        var best: (count: Int, minX: Int, maxX: Int, minY: Int, maxY: Int) = (0, 0, 0, 0, 0)
        for start in 0..<(width * height) where labels[start] == colour && !seen[start] {
            var stack = [start], region = (count: 0, minX: width, maxX: -1, minY: height, maxY: -1)
            seen[start] = true
            while let p = stack.popLast() {
                let (x, y) = (p % width, p / width)
                region.count += 1
                region.minX = min(region.minX, x); region.maxX = max(region.maxX, x)
                region.minY = min(region.minY, y); region.maxY = max(region.maxY, y)
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= margin && nx < width - margin && ny >= margin && ny < height - margin {
                    let q = ny * width + nx
                    if labels[q] == colour && !seen[q] { seen[q] = true; stack.append(q) }
                }
            }
            if region.count > best.count { best = region }
        }
        var shape = "none"
        if best.count > 0 {
            let fill = Double(best.count) / Double((best.maxX - best.minX + 1) * (best.maxY - best.minY + 1))
            shape = fill > 0.88 ? "square" : fill > 0.63 ? "circle" : "triangle"
        }
        return Result(colour: palette[colour].name, shape: shape, background: palette[background].name)
    }
}

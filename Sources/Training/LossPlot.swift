import Foundation
import Imaging
import Formats

/// The loss plot redrawn at each save: every step's loss in grey, a moving average (about a
/// twentieth of the steps) in blue, axes with the step and loss ranges. RGB, written as PNG.
public enum LossPlot {
    public static let width = 800, height = 400
    static let left = 80, right = 20, top = 34, bottom = 40

    /// The plot of `rows` as RGB pixels.
    public static func draw(_ rows: [TrainingLossLog.Row], title: String, font: GridFont) throws -> [UInt8] {
        var rgb = [UInt8](repeating: 255, count: width * height * 3)
        var text = [UInt8](repeating: 0, count: width * height)
        func put(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            guard x >= 0, x < width, y >= 0, y < height else { return }
            let i = (y * width + x) * 3
            rgb[i] = c.0; rgb[i + 1] = c.1; rgb[i + 2] = c.2
        }
        func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8), thick: Bool = false) {
            let steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for k in 0...steps {
                let x = x0 + (x1 - x0) * k / steps, y = y0 + (y1 - y0) * k / steps
                put(x, y, c)
                if thick { put(x, y + 1, c); put(x + 1, y, c) }
            }
        }
        let plotW = width - left - right, plotH = height - top - bottom
        line(left, top, left, top + plotH, (0, 0, 0))
        line(left, top + plotH, left + plotW, top + plotH, (0, 0, 0))
        let size = 13
        func label(_ s: String, x: Int, y: Int, alignRight: Bool = false, centre: Bool = false) throws {
            let m = try font.measure(s, pixelSize: size)
            let x0 = alignRight ? x - m.width : centre ? x - m.width / 2 : x
            try font.render(s, pixelSize: size, into: &text, width: width, height: height, x: x0, y: y - m.lineHeight / 2)
        }
        try label(title, x: width / 2, y: top / 2, centre: true)
        let losses = rows.map(\.loss).filter(\.isFinite)
        if let firstStep = rows.first?.step, let lastStep = rows.last?.step, let lo = losses.min(), let hi = losses.max() {
            let pad = max((hi - lo) * 0.05, 1e-6)
            let (yMin, yMax) = (lo - pad, hi + pad)
            let span = max(lastStep - firstStep, 1)
            func px(_ step: Int) -> Int { left + (step - firstStep) * plotW / span }
            func py(_ loss: Double) -> Int { top + Int((yMax - loss) / (yMax - yMin) * Double(plotH)) }
            for row in rows where row.loss.isFinite { put(px(row.step), py(row.loss), (170, 170, 170)) }
            let window = max(1, rows.count / 20)
            var sum = 0.0, previous: (Int, Int)?
            for (i, row) in rows.enumerated() {
                sum += row.loss.isFinite ? row.loss : 0
                if i >= window { sum -= rows[i - window].loss.isFinite ? rows[i - window].loss : 0 }
                let point = (px(row.step), py(sum / Double(min(i + 1, window))))
                if let p = previous { line(p.0, p.1, point.0, point.1, (30, 80, 200), thick: true) }
                previous = point
            }
            for v in [yMax - pad, (yMin + yMax) / 2, yMin + pad] {
                try label(String(format: "%.4f", v), x: left - 6, y: py(v), alignRight: true)
                line(left - 4, py(v), left, py(v), (0, 0, 0))
            }
            try label("step \(firstStep)", x: left, y: top + plotH + 18)
            try label("step \(lastStep)", x: left + plotW, y: top + plotH + 18, alignRight: true)
        }
        for i in 0..<(width * height) where text[i] > 0 {
            let a = Int(text[i])
            for c in 0..<3 { rgb[i * 3 + c] = UInt8(Int(rgb[i * 3 + c]) * (255 - a) / 255) }
        }
        return rgb
    }

    /// Draws and writes the plot atomically.
    public static func write(_ rows: [TrainingLossLog.Row], title: String, to path: String, font: GridFont) throws {
        try PNGFile.write(rgb: try draw(rows, title: title, font: font), width: width, height: height, text: [("Title", title)], to: path)
    }
}

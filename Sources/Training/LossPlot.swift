import Foundation
import Imaging
import Formats

/// The loss plot redrawn at each save: the raw per-step loss faintly (per pixel column its range,
/// so 10 or 100,000 steps read the same), its trailing moving average over `window` steps (A1111's
/// "loss over the last N steps") as a line, marks at the saved steps, and below it the learning
/// rate by step; both axes with round tick values (Heckbert's nice numbers). RGB, written as PNG.
public enum LossPlot {
    public static let width = 900, height = 520
    static let left = 84, right = 56, top = 34, bottom = 44
    /// Height of the learning-rate panel, and the gap above it.
    static let rateHeight = 90, gap = 34
    /// The moving average's window (steps).
    public static let window = 100

    /// At each step, the mean of the losses of the last `window` steps (fewer at the start).
    public static func movingAverage(_ losses: [Double], window: Int = window) -> [Double] {
        var out: [Double] = [], sum = 0.0
        out.reserveCapacity(losses.count)
        for (i, loss) in losses.enumerated() {
            sum += loss
            if i >= window { sum -= losses[i - window] }
            out.append(sum / Double(min(i + 1, window)))
        }
        return out
    }

    /// Heckbert's "nice number" near `x`: 1, 2, 5 or 10 times a power of ten (rounded, or the
    /// next one up), as that mantissa and exponent.
    static func niceNumber(_ x: Double, round: Bool) -> (mantissa: Double, exponent: Int) {
        guard x > 0, x.isFinite else { return (1, 0) }
        let exponent = Int(Foundation.floor(Foundation.log10(x))), f = x / Foundation.pow(10, Double(exponent))
        let nice: Double
        if round { nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10 } else { nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10 }
        return (nice, exponent)
    }

    /// `m` times ten to the `e`, computed so that decimal values come out as written (0.6, not 0.6000000000000001).
    static func scaled(_ m: Double, _ e: Int) -> Double { e >= 0 ? m * Foundation.pow(10, Double(e)) : m / Foundation.pow(10, Double(-e)) }

    /// Round tick values covering `lo...hi` with about `count` ticks (Heckbert's loose labels):
    /// the first at or below `lo`, the last at or above `hi`, evenly spaced by a nice number.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        let range = niceNumber(hi > lo ? hi - lo : max(abs(lo), 1) * 0.1, round: false)
        let step = niceNumber(scaled(range.mantissa, range.exponent) / Double(max(count - 1, 1)), round: true)
        let d = scaled(step.mantissa, step.exponent)
        let first = Int(Foundation.floor(lo / d)), last = Int(Foundation.ceil(hi / d))
        guard last >= first, last - first <= 50 else { return [lo, hi] }
        return (first...last).map { scaled(Double($0) * step.mantissa, step.exponent) }
    }

    /// A tick's text: as many decimals as the spacing needs.
    static func tickText(_ v: Double, spacing: Double) -> String {
        let decimals = max(0, Int(-Foundation.floor(Foundation.log10(spacing))))
        return String(format: "%.\(decimals)f", v)
    }

    /// The plot of `rows` as RGB pixels; `saved`: the steps an embedding copy was saved at.
    public static func draw(_ rows: [TrainingLossLog.Row], title: String, saved: [Int] = [], norms: [(step: Int, norm: Double)] = [],
                            font: GridFont) throws -> [UInt8] {
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
                if thick { put(x, y + 1, c) }
            }
        }
        let size = 13
        func label(_ s: String, x: Int, y: Int, alignRight: Bool = false, centre: Bool = false) throws {
            let m = try font.measure(s, pixelSize: size)
            let x0 = alignRight ? x - m.width : centre ? x - m.width / 2 : x
            try font.render(s, pixelSize: size, into: &text, width: width, height: height, x: x0, y: y - m.lineHeight / 2)
        }
        let plotW = width - left - right
        let lossTop = top, lossH = height - top - bottom - rateHeight - gap
        let rateTop = lossTop + lossH + gap
        try label(title, x: width / 2, y: top / 2, centre: true)
        let finite = rows.filter { $0.loss.isFinite }
        if let firstStep = finite.first?.step, let lastStep = finite.last?.step {
            let xTicks = ticks(Double(firstStep), Double(lastStep))
            let (xMin, xMax) = (min(xTicks.first!, Double(firstStep)), max(xTicks.last!, Double(lastStep)))
            func px(_ step: Double) -> Int { left + Int(((step - xMin) / max(xMax - xMin, 1)) * Double(plotW)) }
            // The loss panel.
            let losses = finite.map(\.loss), average = movingAverage(losses)
            let yTicks = ticks(losses.min()!, losses.max()!)
            let (yMin, yMax) = (yTicks.first!, yTicks.last! > yTicks.first! ? yTicks.last! : yTicks.first! + 1)
            func py(_ v: Double) -> Int { lossTop + Int((yMax - v) / (yMax - yMin) * Double(lossH)) }
            for v in yTicks {
                line(left, py(v), left + plotW, py(v), (235, 235, 235))
                try label(tickText(v, spacing: yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1), x: left - 6, y: py(v), alignRight: true)
            }
            for s in saved where Double(s) >= xMin && Double(s) <= xMax {
                line(px(Double(s)), lossTop, px(Double(s)), lossTop + lossH, (200, 225, 200))
            }
            // Raw loss: per pixel column, the range of the steps that fall in it.
            var columns: [Int: (lo: Double, hi: Double)] = [:]
            for row in finite {
                let x = px(Double(row.step))
                let c = columns[x] ?? (row.loss, row.loss)
                columns[x] = (min(c.lo, row.loss), max(c.hi, row.loss))
            }
            for (x, c) in columns { line(x, py(c.hi), x, py(c.lo), (190, 190, 190)) }
            var previous: (Int, Int)?
            for (row, a) in zip(finite, average) {
                let point = (px(Double(row.step)), py(a))
                if let p = previous, p != point { line(p.0, p.1, point.0, point.1, (30, 80, 200), thick: true) }
                previous = point
            }
            line(left, lossTop, left, lossTop + lossH, (0, 0, 0))
            line(left, lossTop + lossH, left + plotW, lossTop + lossH, (0, 0, 0))
            try label("loss (grey: each step; blue: mean of the last \(window))" + (norms.isEmpty ? "" : "; green: mean vector norm of each saved copy, right axis"),
                      x: left + 6, y: lossTop + 10)
            // The saved copies' mean vector norm, on its own scale at the right.
            if let low = norms.map(\.norm).min(), let high = norms.map(\.norm).max() {
                let nTicks = ticks(low, high, count: 3)
                let (nMin, nMax) = (nTicks.first!, nTicks.last! > nTicks.first! ? nTicks.last! : nTicks.first! + 1)
                func pn(_ v: Double) -> Int { lossTop + Int((nMax - v) / (nMax - nMin) * Double(lossH)) }
                var last: (Int, Int)?
                for n in norms where Double(n.step) >= xMin && Double(n.step) <= xMax {
                    let point = (px(Double(n.step)), pn(n.norm))
                    for dx in -2...2 { for dy in -2...2 { put(point.0 + dx, point.1 + dy, (40, 150, 60)) } }
                    if let p = last { line(p.0, p.1, point.0, point.1, (40, 150, 60)) }
                    last = point
                }
                for v in nTicks { try label(tickText(v, spacing: nTicks.count > 1 ? nTicks[1] - nTicks[0] : 1), x: left + plotW + 2, y: pn(v)) }
            }
            // The learning-rate panel.
            let rates = finite.map(\.learnRate)
            let rTicks = ticks(min(rates.min()!, 0), rates.max()!, count: 3)
            let (rMin, rMax) = (rTicks.first!, rTicks.last! > rTicks.first! ? rTicks.last! : rTicks.first! + 1)
            func pr(_ v: Double) -> Int { rateTop + Int((rMax - v) / (rMax - rMin) * Double(rateHeight)) }
            for v in rTicks {
                line(left, pr(v), left + plotW, pr(v), (235, 235, 235))
                try label(String(format: "%g", v), x: left - 6, y: pr(v), alignRight: true)
            }
            previous = nil
            for row in finite {
                let point = (px(Double(row.step)), pr(row.learnRate))
                if let p = previous, p != point { line(p.0, p.1, point.0, p.1, (200, 90, 30)); line(point.0, p.1, point.0, point.1, (200, 90, 30)) }
                previous = point
            }
            line(left, rateTop, left, rateTop + rateHeight, (0, 0, 0))
            line(left, rateTop + rateHeight, left + plotW, rateTop + rateHeight, (0, 0, 0))
            try label("learning rate", x: left + 6, y: rateTop + 8)
            for v in xTicks {
                line(px(v), rateTop + rateHeight, px(v), rateTop + rateHeight + 4, (0, 0, 0))
                try label(tickText(v, spacing: max(xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1, 1)), x: px(v), y: rateTop + rateHeight + 16, centre: true)
            }
            try label("step", x: left + plotW, y: rateTop + rateHeight + 32, alignRight: true)
        }
        for i in 0..<(width * height) where text[i] > 0 {
            let a = Int(text[i])
            for c in 0..<3 { rgb[i * 3 + c] = UInt8(Int(rgb[i * 3 + c]) * (255 - a) / 255) }
        }
        return rgb
    }

    /// Draws and writes the plot atomically.
    public static func write(_ rows: [TrainingLossLog.Row], title: String, saved: [Int] = [], norms: [(step: Int, norm: Double)] = [],
                             to path: String, font: GridFont) throws {
        try PNGFile.write(rgb: try draw(rows, title: title, saved: saved, norms: norms, font: font), width: width, height: height,
                          text: [("Title", title)], to: path)
    }
}

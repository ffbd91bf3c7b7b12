import Foundation

/// A grid of equally sized images with optional labels, laid out as A1111's X/Y/Z plot draws it:
/// column labels centred above their column, row labels in a left margin centred on their row,
/// black text on white. Composed RGB, 8 bits a channel, rows top to bottom.
public struct GridImage: Sendable {
    public let rgb: [UInt8]
    public let width: Int
    public let height: Int

    /// The layout A1111's `draw_grid_annotations` uses for a cell size.
    struct Metrics: Equatable {
        var fontSize: Int, lineSpacing: Int
        init(cellWidth: Int, cellHeight: Int) {
            fontSize = max(1, (cellWidth + cellHeight) / 25)
            lineSpacing = fontSize / 2
        }
    }

    /// One wrapped line: its text, the em size it is drawn at (smaller than the label's when a single
    /// word is wider than the space, as A1111 shrinks it) and its extents at that size.
    struct Line { var text: String, pixelSize: Int, metrics: GridFont.LineMetrics }

    /// Cells of different sizes (a grid with a size axis) made uniform as A1111's `image_grid`
    /// does: every cell is as wide and as tall as the largest, each image centred in its cell
    /// (offsets rounded down) on the grid background, white. Returns the cells and their size.
    public static func uniformCells(_ images: [(rgb: [UInt8], width: Int, height: Int)]) throws
        -> (cells: [[UInt8]], width: Int, height: Int) {
        let width = images.map(\.width).max() ?? 0, height = images.map(\.height).max() ?? 0
        guard images.allSatisfy({ $0.width > 0 && $0.height > 0 && $0.rgb.count == $0.width * $0.height * 3 }) else {
            throw GridImageError.invalidLayout("a cell's pixels do not match its size")
        }
        if images.allSatisfy({ $0.width == width && $0.height == height }) { return (images.map(\.rgb), width, height) }
        let cells = images.map { image -> [UInt8] in
            if image.width == width && image.height == height { return image.rgb }
            var cell = [UInt8](repeating: 255, count: width * height * 3)
            let left = (width - image.width) / 2, top = (height - image.height) / 2
            for y in 0..<image.height {
                let from = y * image.width * 3, to = ((top + y) * width + left) * 3
                cell.replaceSubrange(to..<(to + image.width * 3), with: image.rgb[from..<(from + image.width * 3)])
            }
            return cell
        }
        return (cells, width, height)
    }

    /// Composes a grid.
    /// - Parameters:
    ///   - cells: row-major (`rows * columns`), each RGB `cellWidth * cellHeight * 3` bytes.
    ///   - columnLabels: empty, or one per column, drawn above the grid.
    ///   - rowLabels: empty, or one per row, drawn in a left margin `cellWidth * 3 / 4` wide.
    ///   - font: the label font; nil loads `GridFont()` when there is a label to draw.
    ///   Labels wrap at spaces to the cell width (the margin width for row labels); `\n` forces a break.
    public static func compose(cells: [[UInt8]], cellWidth: Int, cellHeight: Int, columns: Int, rows: Int,
                               columnLabels: [String] = [], rowLabels: [String] = [],
                               font: GridFont? = nil) throws -> GridImage {
        guard cellWidth > 0, cellHeight > 0 else {
            throw GridImageError.invalidLayout("cell size \(cellWidth)x\(cellHeight) is not positive")
        }
        guard columns > 0, rows > 0 else { throw GridImageError.invalidLayout("\(columns) columns x \(rows) rows is empty") }
        let (count, countOverflow) = columns.multipliedReportingOverflow(by: rows)
        guard !countOverflow, cells.count == count else {
            throw GridImageError.invalidLayout("\(cells.count) cells for \(columns) columns x \(rows) rows")
        }
        let (cellPixels, o1) = cellWidth.multipliedReportingOverflow(by: cellHeight)
        let (cellBytes, o2) = cellPixels.multipliedReportingOverflow(by: 3)
        guard !o1, !o2 else { throw GridImageError.invalidLayout("cell size \(cellWidth)x\(cellHeight) is too large") }
        if let bad = cells.firstIndex(where: { $0.count != cellBytes }) {
            throw GridImageError.invalidLayout("cell \(bad) has \(cells[bad].count) bytes, expected \(cellBytes) (\(cellWidth)x\(cellHeight) RGB)")
        }
        guard columnLabels.isEmpty || columnLabels.count == columns else {
            throw GridImageError.invalidLayout("\(columnLabels.count) column labels for \(columns) columns")
        }
        guard rowLabels.isEmpty || rowLabels.count == rows else {
            throw GridImageError.invalidLayout("\(rowLabels.count) row labels for \(rows) rows")
        }

        let metrics = Metrics(cellWidth: cellWidth, cellHeight: cellHeight)
        let hasColumnText = columnLabels.contains { !words($0).isEmpty }
        let hasRowText = rowLabels.contains { !words($0).isEmpty }
        let labelFont: GridFont? = hasColumnText || hasRowText ? try font ?? GridFont() : nil

        let padLeft = hasRowText ? cellWidth * 3 / 4 : 0
        var lineHeight = 0
        var columnBlocks: [[Line]] = [], rowBlocks: [[Line]] = []
        if let labelFont {
            lineHeight = try labelFont.measure("", pixelSize: metrics.fontSize).lineHeight
            columnBlocks = try columnLabels.map { try wrap($0, width: cellWidth, font: labelFont, pixelSize: metrics.fontSize) }
            rowBlocks = try rowLabels.map { try wrap($0, width: padLeft, font: labelFont, pixelSize: metrics.fontSize) }
        }
        func blockHeight(_ lines: [Line]) -> Int {
            lines.isEmpty ? 0 : lines.count * lineHeight + (lines.count - 1) * metrics.lineSpacing
        }
        let padTop = hasColumnText ? (columnBlocks.map(blockHeight).max() ?? 0) + 2 * metrics.lineSpacing : 0

        let (gridWidth, o3) = columns.multipliedReportingOverflow(by: cellWidth)
        let (gridHeight, o4) = rows.multipliedReportingOverflow(by: cellHeight)
        let (width, o5) = gridWidth.addingReportingOverflow(padLeft)
        let (height, o6) = gridHeight.addingReportingOverflow(padTop)
        let (pixels, o7) = width.multipliedReportingOverflow(by: height)
        let (bytes, o8) = pixels.multipliedReportingOverflow(by: 3)
        guard !(o3 || o4 || o5 || o6 || o7 || o8), width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw GridImageError.invalidLayout("a \(columns)x\(rows) grid of \(cellWidth)x\(cellHeight) cells is too large")
        }

        var rgb = [UInt8](repeating: 255, count: bytes)
        rgb.withUnsafeMutableBufferPointer { out in
            for (index, cell) in cells.enumerated() {
                let left = padLeft + (index % columns) * cellWidth, top = padTop + (index / columns) * cellHeight
                cell.withUnsafeBufferPointer { src in
                    for y in 0..<cellHeight {
                        let from = y * cellWidth * 3, to = ((top + y) * width + left) * 3
                        UnsafeMutableRawPointer(out.baseAddress! + to)
                            .copyMemory(from: src.baseAddress! + from, byteCount: cellWidth * 3)
                    }
                }
            }
        }

        if let labelFont {
            var coverage = [UInt8](repeating: 0, count: pixels)
            // Draws a block of lines, each centred on `centreX2 / 2`, the block starting at `top`.
            func draw(_ lines: [Line], centreX2: Int, top: Int) throws {
                var y = top
                for line in lines {
                    let x = floorHalf(centreX2 - line.metrics.width)
                    // A shrunken line sits centred in the label's line box.
                    let dy = floorHalf(lineHeight - line.metrics.lineHeight)
                    try labelFont.render(line.text, pixelSize: line.pixelSize, into: &coverage, width: width, height: height,
                                         x: x, y: y + dy)
                    y += lineHeight + metrics.lineSpacing
                }
            }
            for (column, lines) in columnBlocks.enumerated() where !lines.isEmpty {
                try draw(lines, centreX2: 2 * padLeft + (2 * column + 1) * cellWidth,
                         top: floorHalf(padTop - blockHeight(lines)))
            }
            for (row, lines) in rowBlocks.enumerated() where !lines.isEmpty {
                try draw(lines, centreX2: padLeft,
                         top: padTop + row * cellHeight + floorHalf(cellHeight - blockHeight(lines)))
            }
            // Black text over whatever lies below, weighted by coverage.
            for i in 0..<pixels where coverage[i] != 0 {
                let keep = 255 - Int(coverage[i])
                for c in 0..<3 { rgb[i * 3 + c] = UInt8((Int(rgb[i * 3 + c]) * keep + 127) / 255) }
            }
        }
        return GridImage(rgb: rgb, width: width, height: height)
    }

    private init(rgb: [UInt8], width: Int, height: Int) {
        self.rgb = rgb
        self.width = width
        self.height = height
    }

    private static func floorHalf(_ v: Int) -> Int { v >= 0 ? v / 2 : -((-v + 1) / 2) }

    /// The words of a label, paragraph by paragraph (`\n` separates paragraphs).
    static func words(_ text: String) -> [[Substring]] {
        text.split(separator: "\n", omittingEmptySubsequences: true)
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }) }
            .filter { !$0.isEmpty }
    }

    /// Wraps a label greedily at spaces into lines no wider than `width` where a line's words allow
    /// it; a single word wider than `width` gets a smaller em size until it fits (down to 1 pixel).
    static func wrap(_ text: String, width: Int, font: GridFont, pixelSize: Int) throws -> [Line] {
        var lines: [Line] = []
        func finish(_ text: String, _ m: GridFont.LineMetrics) throws {
            var size = pixelSize, m = m
            while m.width > width && size > 1 {
                size -= 1
                m = try font.measure(text, pixelSize: size)
            }
            lines.append(Line(text: text, pixelSize: size, metrics: m))
        }
        for paragraph in words(text) {
            var current = "", currentMetrics = GridFont.LineMetrics(width: 0, ascent: 0, lineHeight: 0)
            for word in paragraph {
                let candidate = current.isEmpty ? String(word) : current + " " + word
                let m = try font.measure(candidate, pixelSize: pixelSize)
                if current.isEmpty || m.width <= width {
                    current = candidate
                    currentMetrics = m
                } else {
                    try finish(current, currentMetrics)
                    current = String(word)
                    currentMetrics = try font.measure(current, pixelSize: pixelSize)
                }
            }
            try finish(current, currentMetrics)
        }
        return lines
    }
}

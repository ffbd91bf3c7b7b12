import Diffusion
import Foundation
import Imaging
import Testing

/// Labelled grids as A1111's X/Y/Z plot lays them out (GridImage, GridFont).
@Suite struct GridImageTests {
    static let cell = 64
    static let colours: [(UInt8, UInt8, UInt8)] = [(200, 30, 30), (30, 200, 30), (30, 30, 200),
                                                   (200, 200, 30), (30, 200, 200), (200, 30, 200)]

    static func cells(_ count: Int) -> [[UInt8]] {
        (0..<count).map { i in
            let (r, g, b) = colours[i % colours.count]
            return [UInt8]((0..<cell * cell).flatMap { _ in [r, g, b] })
        }
    }

    static func pixel(_ image: GridImage, _ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * image.width + x) * 3
        return (image.rgb[i], image.rgb[i + 1], image.rgb[i + 2])
    }

    /// Bounding box (x0, y0, x1, y1; exclusive ends) of non-white pixels in a region, and the darkest value.
    static func ink(_ image: GridImage, x: Range<Int>, y: Range<Int>) -> (box: (Int, Int, Int, Int), darkest: UInt8)? {
        var x0 = Int.max, y0 = Int.max, x1 = Int.min, y1 = Int.min, darkest: UInt8 = 255
        for py in y { for px in x {
            let (r, g, b) = pixel(image, px, py)
            guard (r, g, b) != (255, 255, 255) else { continue }
            x0 = min(x0, px); y0 = min(y0, py); x1 = max(x1, px + 1); y1 = max(y1, py + 1)
            darkest = min(darkest, r, g, b)
        } }
        return x0 == Int.max ? nil : ((x0, y0, x1, y1), darkest)
    }

    /// Every cell's pixels sit exactly at (left + column * cell, top + row * cell).
    static func expectCells(_ image: GridImage, columns: Int, rows: Int, left: Int, top: Int) {
        for row in 0..<rows { for column in 0..<columns {
            let (r, g, b) = colours[row * columns + column]
            var wrong = 0
            for y in 0..<cell { for x in 0..<cell where pixel(image, left + column * cell + x, top + row * cell + y) != (r, g, b) {
                wrong += 1
            } }
            #expect(wrong == 0, "cell (\(column), \(row)): \(wrong) pixels differ")
        } }
    }

    static func compose(_ columnLabels: [String], _ rowLabels: [String], font: GridFont? = nil) throws -> GridImage {
        try GridImage.compose(cells: cells(6), cellWidth: cell, cellHeight: cell, columns: 3, rows: 2,
                              columnLabels: columnLabels, rowLabels: rowLabels, font: font ?? GridFont())
    }

    @Test("cells of different sizes: the largest size, each image centred on white (A1111's image_grid)")
    func differentSizes() throws {
        let a = (rgb: [UInt8](repeating: 10, count: 8 * 8 * 3), width: 8, height: 8)
        let b = (rgb: [UInt8](repeating: 20, count: 5 * 3 * 3), width: 5, height: 3)
        let c = (rgb: [UInt8](repeating: 30, count: 4 * 11 * 3), width: 4, height: 11)
        let (cells, width, height) = try GridImage.uniformCells([a, b, c])
        #expect(width == 8 && height == 11)
        // A1111: offset (max - size) // 2 on each axis; the rest is the grid background.
        func at(_ cell: [UInt8], _ x: Int, _ y: Int) -> UInt8 { cell[(y * width + x) * 3] }
        #expect(at(cells[0], 0, 1) == 10 && at(cells[0], 7, 8) == 10 && at(cells[0], 0, 0) == 255 && at(cells[0], 0, 9) == 255)
        #expect(at(cells[1], 1, 4) == 20 && at(cells[1], 5, 6) == 20 && at(cells[1], 0, 4) == 255 && at(cells[1], 6, 4) == 255 && at(cells[1], 1, 3) == 255)
        #expect(at(cells[2], 2, 0) == 30 && at(cells[2], 5, 10) == 30 && at(cells[2], 1, 0) == 255 && at(cells[2], 6, 0) == 255)
        let grid = try GridImage.compose(cells: cells, cellWidth: width, cellHeight: height, columns: 3, rows: 1)
        #expect(grid.width == 24 && grid.height == 11)
        // Same-size cells come back as they are.
        #expect(try GridImage.uniformCells([a, a]).cells == [a.rgb, a.rgb])
    }

    @Test("3x2 grid with labels: margins as A1111 sizes them, cells at their offsets")
    func labelledLayout() throws {
        let image = try Self.compose(["A", "BB", "seed 3"], ["row 1", "row 2"])
        let padLeft = image.width - 3 * Self.cell, padTop = image.height - 2 * Self.cell
        #expect(padLeft == Self.cell * 3 / 4)
        let fontSize = (Self.cell + Self.cell) / 25, spacing = fontSize / 2
        // One line of text plus twice the line spacing; a line is at least the em size.
        #expect(padTop >= fontSize + 2 * spacing && padTop <= 3 * fontSize + 2 * spacing, "padTop \(padTop)")
        #expect(image.rgb.count == image.width * image.height * 3)
        Self.expectCells(image, columns: 3, rows: 2, left: padLeft, top: padTop)
        // The corner above the row labels and left of the column labels stays white.
        #expect(Self.ink(image, x: 0..<padLeft, y: 0..<padTop) == nil)
    }

    @Test("3x2 grid without labels: no margins, cells at their offsets")
    func unlabelledLayout() throws {
        let image = try GridImage.compose(cells: Self.cells(6), cellWidth: Self.cell, cellHeight: Self.cell, columns: 3, rows: 2,
                                          columnLabels: [], rowLabels: [], font: nil)
        #expect(image.width == 3 * Self.cell && image.height == 2 * Self.cell)
        Self.expectCells(image, columns: 3, rows: 2, left: 0, top: 0)
        // Only empty labels count as none.
        let blank = try Self.compose(["", " ", ""], [])
        #expect(blank.width == 3 * Self.cell && blank.height == 2 * Self.cell)
    }

    @Test("labels are dark, inside their margins and centred over their column or row")
    func labelPlacement() throws {
        let image = try Self.compose(["A", "BB", "seed 3"], ["row 1", "row 2"])
        let padLeft = image.width - 3 * Self.cell, padTop = image.height - 2 * Self.cell
        for column in 0..<3 {
            let left = padLeft + column * Self.cell
            let found = Self.ink(image, x: left..<left + Self.cell, y: 0..<padTop)
            #expect(found != nil, "column \(column) has no label")
            guard let (box, darkest) = found else { continue }
            #expect(darkest < 100, "column \(column) label is not dark (\(darkest))")
            let centre = Double(box.0 + box.2) / 2, expected = Double(left) + Double(Self.cell) / 2
            #expect(abs(centre - expected) <= 3, "column \(column) label centred at \(centre), column centre \(expected)")
            // Vertically within the top margin, clear of its edges by about the line spacing.
            #expect(box.1 >= 1 && box.3 <= padTop - 1, "column \(column) label rows \(box.1)..<\(box.3) in 0..<\(padTop)")
        }
        for row in 0..<2 {
            let top = padTop + row * Self.cell
            let found = Self.ink(image, x: 0..<padLeft, y: top..<top + Self.cell)
            #expect(found != nil, "row \(row) has no label")
            guard let (box, darkest) = found else { continue }
            #expect(darkest < 100, "row \(row) label is not dark (\(darkest))")
            let cx = Double(box.0 + box.2) / 2, cy = Double(box.1 + box.3) / 2
            #expect(abs(cx - Double(padLeft) / 2) <= 3, "row \(row) label centred at x \(cx), margin centre \(Double(padLeft) / 2)")
            #expect(abs(cy - (Double(top) + Double(Self.cell) / 2)) <= 4, "row \(row) label centred at y \(cy)")
        }
        // Text is grey on white: no colour.
        for i in stride(from: 0, to: padTop * image.width * 3, by: 3) {
            #expect(image.rgb[i] == image.rgb[i + 1] && image.rgb[i] == image.rgb[i + 2])
        }
    }

    @Test("a long label wraps to more lines within its column, making the top margin taller")
    func wrapping() throws {
        let short = try Self.compose(["A", "B", "C"], [])
        let long = try Self.compose(["A", "a long label that wraps over lines", "C"], [])
        let shortTop = short.height - 2 * Self.cell, longTop = long.height - 2 * Self.cell
        #expect(longTop > shortTop + Self.cell / 25, "top margin \(longTop) vs \(shortTop)")
        Self.expectCells(long, columns: 3, rows: 2, left: 0, top: longTop)
        // The wrapped text stays inside its own column and is taller than one line.
        let all = Self.ink(long, x: 0..<long.width, y: 0..<longTop)
        let mine = Self.ink(long, x: Self.cell..<2 * Self.cell, y: 0..<longTop)
        let one = Self.ink(short, x: Self.cell..<2 * Self.cell, y: 0..<shortTop)
        #expect(mine != nil && one != nil && all != nil)
        if let mine, let one {
            #expect(mine.box.3 - mine.box.1 > 2 * (one.box.3 - one.box.1), "wrapped block \(mine.box), one line \(one.box)")
            #expect(mine.box.0 > Self.cell && mine.box.2 < 2 * Self.cell, "wrapped block \(mine.box) leaves its column")
        }
        // Short labels in a tall margin are centred vertically in it.
        if let first = Self.ink(long, x: 0..<Self.cell, y: 0..<longTop) {
            let cy = Double(first.box.1 + first.box.3) / 2
            #expect(abs(cy - Double(longTop) / 2) <= 3, "short label centred at y \(cy) in a margin of \(longTop)")
        }
    }

    @Test("a missing or unreadable font is an error naming the file")
    func fontErrors() throws {
        let missing = "/nonexistent/sdshell-grid-test/NoSuchFont.ttf"
        do {
            _ = try GridFont(path: missing)
            Issue.record("opening \(missing) succeeded")
        } catch let error as GridImageError {
            #expect(error.description.contains(missing), "\(error)")
            #expect(error.description.contains("fonts-dejavu-core"), "\(error)")
            guard case .fontNotFound = error else { Issue.record("wrong case: \(error)"); return }
        }
        let notFont = FileManager.default.temporaryDirectory.appendingPathComponent("sdshell-grid-\(getpid()).ttf").path
        try Data("this is not a font".utf8).write(to: URL(fileURLWithPath: notFont))
        defer { try? FileManager.default.removeItem(atPath: notFont) }
        do {
            _ = try GridFont(path: notFont)
            Issue.record("opening \(notFont) succeeded")
        } catch let error as GridImageError {
            #expect(error.description.contains(notFont), "\(error)")
            guard case .notAFont = error else { Issue.record("wrong case: \(error)"); return }
        }
    }

    @Test("mismatched cells and labels are rejected")
    func invalidLayouts() throws {
        let font = try GridFont()
        #expect(throws: GridImageError.self) {
            try GridImage.compose(cells: Self.cells(5), cellWidth: Self.cell, cellHeight: Self.cell, columns: 3, rows: 2,
                                  columnLabels: [], rowLabels: [], font: font)
        }
        #expect(throws: GridImageError.self) {
            try GridImage.compose(cells: Self.cells(6), cellWidth: Self.cell, cellHeight: Self.cell - 1, columns: 3, rows: 2,
                                  columnLabels: [], rowLabels: [], font: font)
        }
        #expect(throws: GridImageError.self) {
            try GridImage.compose(cells: Self.cells(6), cellWidth: Self.cell, cellHeight: Self.cell, columns: 3, rows: 2,
                                  columnLabels: ["a", "b"], rowLabels: [], font: font)
        }
    }

    @Test("composing twice gives identical bytes")
    func deterministic() throws {
        let labels = ["Steps: 20", "Steps: 30 with a longer label", "CFG ünïcødé"]
        let a = try Self.compose(labels, ["seed 1", "seed 2"], font: GridFont())
        let b = try Self.compose(labels, ["seed 1", "seed 2"], font: GridFont())
        #expect(a.width == b.width && a.height == b.height)
        #expect(a.rgb == b.rgb)
    }
}

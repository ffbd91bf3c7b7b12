import Formats

/// A picture cut into overlapping tiles as A1111's `images.split_grid` cuts it, and put back
/// together as `images.combine_grid` does: each tile after the first in a row (and each row
/// after the first) is blended into the previous over the overlap with a linear ramp mask
/// (`r * 255 / overlap` truncated, pasted as Pillow pastes through an "L" mask).
public struct TileGrid: Sendable {
    /// Rows of tiles: each row's top and height, and its tiles' left, width and picture.
    public var rows: [(y: Int, height: Int, tiles: [(x: Int, width: Int, image: RGBImage)])]
    public var tileWidth: Int, tileHeight: Int, imageWidth: Int, imageHeight: Int, overlap: Int

    /// `split_grid(image, tile, tile, overlap)`: tiles spread evenly so that the first starts at
    /// 0 and the last ends at the picture's edge; a picture smaller than a tile gives one tile
    /// padded with black (Pillow's crop outside the picture).
    public static func split(_ image: RGBImage, tile: Int, overlap: Int) -> TileGrid {
        let (w, h) = (image.width, image.height)
        let step = max(tile - overlap, 1)
        let cols = max(1, Int((Double(w - overlap) / Double(step)).rounded(.up)))
        let rowCount = max(1, Int((Double(h - overlap) / Double(step)).rounded(.up)))
        let dx = cols > 1 ? Double(w - tile) / Double(cols - 1) : 0
        let dy = rowCount > 1 ? Double(h - tile) / Double(rowCount - 1) : 0
        var grid = TileGrid(rows: [], tileWidth: tile, tileHeight: tile, imageWidth: w, imageHeight: h, overlap: overlap)
        for row in 0..<rowCount {
            var y = Int(Double(row) * dy)
            if y + tile >= h { y = h - tile }
            var tiles: [(x: Int, width: Int, image: RGBImage)] = []
            for col in 0..<cols {
                var x = Int(Double(col) * dx)
                if x + tile >= w { x = w - tile }
                tiles.append((x, tile, crop(image, x: x, y: y, width: tile, height: tile)))
            }
            grid.rows.append((y, tile, tiles))
        }
        return grid
    }

    /// The grid with every tile transformed (an upscaler), positions and sizes scaled by the
    /// factor the first tile grew by (`output.width // tile.width`).
    public func map(_ transform: (RGBImage) throws -> RGBImage) rethrows -> TileGrid {
        var factor = 1
        var rows: [(y: Int, height: Int, tiles: [(x: Int, width: Int, image: RGBImage)])] = []
        for row in self.rows {
            var tiles: [(x: Int, width: Int, image: RGBImage)] = []
            for tile in row.tiles {
                let out = try transform(tile.image)
                factor = out.width / tile.image.width
                tiles.append((tile.x * factor, tile.width * factor, out))
            }
            rows.append((row.y * factor, row.height * factor, tiles))
        }
        return TileGrid(rows: rows, tileWidth: tileWidth * factor, tileHeight: tileHeight * factor,
                        imageWidth: imageWidth * factor, imageHeight: imageHeight * factor, overlap: overlap * factor)
    }

    /// `combine_grid`: the tiles pasted back with their overlaps blended.
    public func combined() -> RGBImage {
        // The ramps: r * 255 / overlap (float32, truncated) at distance r into the overlap.
        let ramp = (0..<max(overlap, 0)).map { UInt8(Float(Float($0) * 255) / Float(overlap)) }
        var out = RGBImage(width: imageWidth, height: imageHeight, rgb: [UInt8](repeating: 0, count: imageWidth * imageHeight * 3))
        for row in rows {
            var line = RGBImage(width: imageWidth, height: row.height, rgb: [UInt8](repeating: 0, count: imageWidth * row.height * 3))
            let columnRamp = (0..<row.height).flatMap { _ in ramp }
            for tile in row.tiles {
                if tile.x == 0 {
                    Self.paste(tile.image, into: &line, at: 0, 0)
                    continue
                }
                Self.paste(Self.crop(tile.image, x: 0, y: 0, width: overlap, height: row.height), into: &line, at: tile.x, 0, mask: columnRamp)
                Self.paste(Self.crop(tile.image, x: overlap, y: 0, width: tile.width - overlap, height: row.height), into: &line, at: tile.x + overlap, 0)
            }
            if row.y == 0 {
                Self.paste(line, into: &out, at: 0, 0)
                continue
            }
            let rowRamp = ramp.flatMap { Array(repeating: $0, count: imageWidth) }
            Self.paste(Self.crop(line, x: 0, y: 0, width: imageWidth, height: overlap), into: &out, at: 0, row.y, mask: rowRamp)
            Self.paste(Self.crop(line, x: 0, y: overlap, width: imageWidth, height: row.height - overlap), into: &out, at: 0, row.y + overlap)
        }
        return out
    }

    /// Pillow's `crop`: the box's pixels, black outside the picture.
    static func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int) -> RGBImage {
        var rgb = [UInt8](repeating: 0, count: max(width, 0) * max(height, 0) * 3)
        for row in 0..<max(height, 0) where y + row >= 0 && y + row < image.height {
            for col in 0..<max(width, 0) where x + col >= 0 && x + col < image.width {
                for c in 0..<3 { rgb[(row * width + col) * 3 + c] = image.rgb[((y + row) * image.width + x + col) * 3 + c] }
            }
        }
        return RGBImage(width: max(width, 0), height: max(height, 0), rgb: rgb)
    }

    /// Pillow's `paste(source, (x, y), mask)`, clipped to the destination.
    static func paste(_ source: RGBImage, into destination: inout RGBImage, at x: Int, _ y: Int, mask: [UInt8]? = nil) {
        let rgb = PillowCompositing.paste(source.rgb, width: source.width, height: source.height,
                                          into: destination.rgb, width: destination.width, height: destination.height,
                                          x: x, y: y, mask: mask, channels: 3)
        destination = RGBImage(width: destination.width, height: destination.height, rgb: rgb)
    }
}

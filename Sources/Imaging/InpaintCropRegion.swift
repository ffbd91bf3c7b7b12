/// The "Only masked" inpaint area of AUTOMATIC1111 1.10 (modules/masking.py, as processing.py
/// calls it): the mask's bounding box grown by the padding (`get_crop_region_v2`), then widened
/// to the processing size's aspect ratio inside the picture (`expand_crop_region`).
public enum InpaintCropRegion {
    /// `get_crop_region_v2(mask, padding)`: the box (`x2`, `y2` exclusive) around the non-zero
    /// pixels of the "L" `mask` (`width * height` bytes), grown by `padding` on each side and
    /// clipped to the mask; nil when the mask is blank.
    public static func region(mask: [UInt8], width: Int, height: Int, padding: Int) -> (x1: Int, y1: Int, x2: Int, y2: Int)? {
        precondition(mask.count == width * height)
        var x1 = width, y1 = height, x2 = 0, y2 = 0
        for y in 0..<height {
            for x in 0..<width where mask[y * width + x] != 0 {
                x1 = min(x1, x); x2 = max(x2, x + 1); y1 = min(y1, y); y2 = max(y2, y + 1)
            }
        }
        if x2 == 0 { return nil }
        if padding == 0 { return (x1, y1, x2, y2) }
        return (max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + padding, width), min(y2 + padding, height))
    }

    /// `expand_crop_region(region, processingWidth, processingHeight, imageWidth, imageHeight)`:
    /// the region grown along one axis (half on each side, shifted back inside the picture) until
    /// its aspect ratio matches the processing size's, in A1111's float and integer arithmetic.
    public static func expanded(_ region: (x1: Int, y1: Int, x2: Int, y2: Int), processingWidth: Int, processingHeight: Int,
                                imageWidth: Int, imageHeight: Int) -> (x1: Int, y1: Int, x2: Int, y2: Int) {
        var (x1, y1, x2, y2) = region
        let ratioCropRegion = Double(x2 - x1) / Double(y2 - y1)
        let ratioProcessing = Double(processingWidth) / Double(processingHeight)
        if ratioCropRegion > ratioProcessing {
            let desiredHeight = Double(x2 - x1) / ratioProcessing
            let diff = Int(desiredHeight - Double(y2 - y1))
            y1 -= floorDivide(diff, 2)
            y2 += diff - floorDivide(diff, 2)
            if y2 >= imageHeight { let over = y2 - imageHeight; y2 -= over; y1 -= over }
            if y1 < 0 { y2 -= y1; y1 = 0 }
            if y2 >= imageHeight { y2 = imageHeight }
        } else {
            let desiredWidth = Double(y2 - y1) * ratioProcessing
            let diff = Int(desiredWidth - Double(x2 - x1))
            x1 -= floorDivide(diff, 2)
            x2 += diff - floorDivide(diff, 2)
            if x2 >= imageWidth { let over = x2 - imageWidth; x2 -= over; x1 -= over }
            if x1 < 0 { x2 -= x1; x1 = 0 }
            if x2 >= imageWidth { x2 = imageWidth }
        }
        return (x1, y1, x2, y2)
    }

    /// Python's `//` on integers (rounds toward minus infinity).
    static func floorDivide(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}

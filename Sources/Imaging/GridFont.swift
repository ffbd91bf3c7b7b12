import CGlyphs
import Foundation

/// Errors composing a grid or loading its label font. Font errors name the file.
public enum GridImageError: Error, CustomStringConvertible, Equatable {
    /// The font file does not exist or cannot be read.
    case fontNotFound(path: String, reason: String)
    /// The file exists but FreeType does not read it as a font.
    case notAFont(path: String, reason: String)
    /// FreeType failed on an otherwise readable font (sizing, loading a glyph).
    case fontFailure(path: String, reason: String)
    /// The cells, sizes or label counts do not describe a grid.
    case invalidLayout(String)

    public var description: String {
        switch self {
        case let .fontNotFound(path, reason):
            return "\(path): grid label font not found (\(reason)); set \(GridFont.environmentVariable) to a TrueType/OpenType "
                + "font file, or install the Debian package \(GridFont.defaultPackage) (scripts/bootstrap.sh installs it)"
        case let .notAFont(path, reason):
            return "\(path): not a font file FreeType can read (\(reason)); set \(GridFont.environmentVariable) to a "
                + "TrueType/OpenType font file"
        case let .fontFailure(path, reason): return "\(path): font error: \(reason)"
        case let .invalidLayout(reason): return "grid image: \(reason)"
        }
    }
}

/// The font grid labels are drawn with (FreeType). Calls are serialised, so one font may be
/// shared between threads.
public final class GridFont: @unchecked Sendable {
    /// Environment variable naming the font file to use when no path is given.
    public static let environmentVariable = "SDSHELL_FONT"
    /// The font used when neither a path nor the environment variable is given.
    public static let defaultPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    /// The Debian package that provides `defaultPath`.
    public static let defaultPackage = "fonts-dejavu-core"

    /// The font file in use.
    public let path: String
    private let handle: OpaquePointer // glyphs_font *, only touched under `lock`
    private let lock = NSLock()

    /// Opens `path`, or else the file named by `SDSHELL_FONT`, or else DejaVu Sans.
    public init(path: String? = nil) throws {
        let chosen: String
        if let path { chosen = path }
        else if let env = ProcessInfo.processInfo.environment[Self.environmentVariable], !env.isEmpty { chosen = env }
        else { chosen = Self.defaultPath }
        self.path = chosen
        var font: OpaquePointer?
        var message = [CChar](repeating: 0, count: 512)
        let code = glyphs_open(chosen, &font, &message, message.count)
        guard code == Int32(GLYPHS_OK), let font else {
            let reason = Self.reason(message, code: code, path: chosen)
            switch code {
            case Int32(GLYPHS_ERR_NOT_FOUND): throw GridImageError.fontNotFound(path: chosen, reason: reason)
            case Int32(GLYPHS_ERR_NOT_A_FONT): throw GridImageError.notAFont(path: chosen, reason: reason)
            default: throw GridImageError.fontFailure(path: chosen, reason: reason)
            }
        }
        handle = font
    }

    deinit { glyphs_close(handle) }

    /// The C message without the leading "path: " (the Swift description names the path itself).
    private static func reason(_ message: [CChar], code: Int32, path: String) -> String {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if text.hasPrefix(path + ": ") { return String(text.dropFirst(path.count + 2)) }
        return text.isEmpty ? String(cString: glyphs_error_string(code)) : text
    }

    /// Extents of one line of text, in pixels.
    public struct LineMetrics: Equatable, Sendable { public var width: Int, ascent: Int, lineHeight: Int }

    private func check(_ code: Int32) throws {
        if code != Int32(GLYPHS_OK) {
            throw GridImageError.fontFailure(path: path, reason: String(cString: glyphs_error_string(code)))
        }
    }

    private static func withBytes<R>(_ text: String, _ body: (UnsafePointer<CChar>?, Int) throws -> R) rethrows -> R {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress, $0.count) }
        }
    }

    /// Measures one line at an em of `pixelSize` pixels.
    public func measure(_ text: String, pixelSize: Int) throws -> LineMetrics {
        lock.lock()
        defer { lock.unlock() }
        try check(glyphs_set_pixel_size(handle, Int32(clamping: pixelSize)))
        var m = glyphs_metrics()
        try Self.withBytes(text) { try check(glyphs_measure(handle, $0, $1, &m)) }
        return LineMetrics(width: Int(m.width), ascent: Int(m.ascent), lineHeight: Int(m.line_height))
    }

    /// Draws one line into an 8-bit coverage buffer (`width` x `height`), its line box's top-left
    /// corner at (`x`, `y`); clipped at the edges.
    public func render(_ text: String, pixelSize: Int, into coverage: inout [UInt8], width: Int, height: Int, x: Int, y: Int) throws {
        precondition(width >= 0 && height >= 0 && coverage.count >= width * height)
        guard width <= Int(Int32.max), height <= Int(Int32.max) else { return }
        // Offsets far outside the buffer draw nothing; clamping keeps them outside.
        let cx = Int32(clamping: x), cy = Int32(clamping: y)
        lock.lock()
        defer { lock.unlock() }
        try check(glyphs_set_pixel_size(handle, Int32(clamping: pixelSize)))
        try coverage.withUnsafeMutableBufferPointer { out in
            try Self.withBytes(text) {
                try check(glyphs_render(handle, $0, $1, out.baseAddress, Int32(width), Int32(height), width, cx, cy))
            }
        }
    }
}

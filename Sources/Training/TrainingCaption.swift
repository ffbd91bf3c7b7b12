import Diffusion
import Foundation

/// The caption of a training image, as A1111 finds it: the text of `<stem>.txt` beside the image
/// when there is one, otherwise the file's stem without leading digits and dashes
/// (`00012-a red car.png` → `a red car`).
public enum TrainingCaption {
    /// The caption for the image at `imagePath`. A sidecar that exists but is not UTF-8 is an error.
    public static func forImage(at imagePath: String) throws -> String {
        let url = URL(fileURLWithPath: imagePath)
        let sidecar = url.deletingPathExtension().appendingPathExtension("txt").path
        if FileManager.default.fileExists(atPath: sidecar) {
            guard let data = FileManager.default.contents(atPath: sidecar),
                  let text = String(data: data, encoding: .utf8) else {
                throw TrainingCaptionError.unreadableSidecar(path: sidecar)
            }
            return text
        }
        return fromFileName(url.deletingPathExtension().lastPathComponent)
    }

    /// A1111's filename-to-words rule with its default options (no word regex): the stem with
    /// a leading run of digits and dashes, and the whitespace after it, removed.
    public static func fromFileName(_ stem: String) -> String {
        var rest = Substring(stem)
        while let first = rest.first, first == "-" || first.isASCIIOrUnicodeDecimalDigit { rest.removeFirst() }
        guard rest.count < stem.count else { return stem }
        while let first = rest.first, first.isWhitespace { rest.removeFirst() }
        return String(rest)
    }

    /// A1111's and kohya's caption options: the caption split on commas (tags kept as written),
    /// the first `keep` tags left where they are (kohya's `keep_tokens`); with probability
    /// `captionDropout` the whole caption dropped (kohya's `caption_dropout_rate`); each other tag
    /// kept when a draw exceeds `dropout` (A1111's "drop out tags"); the others shuffled (A1111's
    /// "shuffle tags", kohya's `shuffle_caption`); rejoined with commas. Draws come from the
    /// training's generator (so a resumed run draws the same), and none are made when every
    /// option is off.
    public struct TagOptions: Sendable, Equatable, Codable {
        public var shuffle = false
        public var dropout = 0.0
        public var keep = 0
        public var captionDropout = 0.0
        public init(shuffle: Bool = false, dropout: Double = 0, keep: Int = 0, captionDropout: Double = 0) {
            self.shuffle = shuffle; self.dropout = dropout; self.keep = keep; self.captionDropout = captionDropout
        }
        public var isOff: Bool { !shuffle && dropout == 0 && captionDropout == 0 }
    }

    /// The caption as `options` make it, drawing from `random` (a uniform number is next32() / 2^32;
    /// the shuffle is Fisher-Yates from the end with next32() % (i + 1)).
    public static func applying(_ options: TagOptions, to caption: String, random: inout TorchCPURandom) -> String {
        guard !options.isOff else { return caption }
        func uniform() -> Double { Double(random.next32()) / 4_294_967_296 }
        if options.captionDropout > 0, uniform() < options.captionDropout { return "" }
        let tags = caption.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let kept = Array(tags.prefix(max(options.keep, 0)))
        var rest = Array(tags.dropFirst(max(options.keep, 0)))
        if options.dropout > 0 { rest = rest.filter { _ in uniform() > options.dropout } }
        if options.shuffle, rest.count > 1 {
            for i in stride(from: rest.count - 1, to: 0, by: -1) { rest.swapAt(i, Int(random.next32() % UInt32(i + 1))) }
        }
        return (kept + rest).joined(separator: ",")
    }
}

/// Why a caption cannot be read.
public enum TrainingCaptionError: Error, CustomStringConvertible, Equatable {
    case unreadableSidecar(path: String)

    public var description: String {
        switch self {
        case .unreadableSidecar(let path): return "\(path): caption file is not UTF-8 text"
        }
    }
}

extension Character {
    /// Python's `\d` in a str pattern: any Unicode decimal digit (Nd).
    var isASCIIOrUnicodeDecimalDigit: Bool {
        unicodeScalars.count == 1 && unicodeScalars.first!.properties.numericType == .decimal
    }
}

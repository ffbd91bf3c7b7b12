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

    /// A1111's tag handling for a caption: split on commas (tags not trimmed), keep each tag when
    /// `random() > dropout`, optionally shuffle, rejoin with commas. `random` yields numbers in [0, 1).
    public static func applyTagOptions(_ caption: String, dropout: Double, shuffle: Bool,
                                       random: inout some RandomNumberGenerator) -> String {
        var tags = caption.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if dropout > 0 { tags = tags.filter { _ in Double.random(in: 0..<1, using: &random) > dropout } }
        if shuffle { tags.shuffle(using: &random) }
        return tags.joined(separator: ",")
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

import Foundation

/// A prompt template for textual-inversion training, in A1111's file format: one prompt per line,
/// `[name]` standing for the embedding and `[filewords]` for the image's caption.
public struct TrainingTemplate: Sendable, Equatable {
    /// Where the template came from (a file path, or `shipped:NAME`), for messages.
    public let source: String
    /// The prompt lines, stripped of surrounding whitespace; blank lines are dropped.
    public let lines: [String]

    /// The names of the templates shipped with sdshell (A1111's usual names).
    public static let shippedNames = ["none", "style", "style_filewords", "subject", "subject_filewords"]

    /// Parses template text. Every line must contain `[name]`: a line without it would train
    /// nothing (the embedding would not be in the prompt).
    public init(text: String, source: String) throws {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var kept: [String] = []
        for (index, line) in lines.enumerated() where !line.isEmpty {
            guard line.contains("[name]") else {
                throw TrainingTemplateError.lineWithoutName(source: source, line: index + 1, text: line)
            }
            kept.append(line)
        }
        guard !kept.isEmpty else { throw TrainingTemplateError.empty(source: source) }
        self.source = source
        self.lines = kept
    }

    /// Loads a shipped template by name (`style_filewords`, with or without `.txt`) or a file by path.
    /// A value naming an existing file is taken as a path first.
    public static func load(_ nameOrPath: String) throws -> TrainingTemplate {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: nameOrPath, isDirectory: &isDirectory), !isDirectory.boolValue {
            guard let data = fm.contents(atPath: nameOrPath), let text = String(data: data, encoding: .utf8) else {
                throw TrainingTemplateError.unreadable(path: nameOrPath)
            }
            return try TrainingTemplate(text: text, source: nameOrPath)
        }
        let name = nameOrPath.hasSuffix(".txt") ? String(nameOrPath.dropLast(4)) : nameOrPath
        guard shippedNames.contains(name),
              let url = Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "templates"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw TrainingTemplateError.unknown(name: nameOrPath)
        }
        return try TrainingTemplate(text: text, source: "shipped:\(name)")
    }

    /// A1111's text for one image: `[filewords]` replaced by the caption, then `[name]` by the
    /// embedding's name (in that order, as A1111 does).
    public static func prompt(line: String, caption: String, name: String) -> String {
        line.replacingOccurrences(of: "[filewords]", with: caption)
            .replacingOccurrences(of: "[name]", with: name)
    }
}

/// Why a template cannot be used.
public enum TrainingTemplateError: Error, CustomStringConvertible, Equatable {
    case lineWithoutName(source: String, line: Int, text: String)
    case empty(source: String)
    case unreadable(path: String)
    case unknown(name: String)

    public var description: String {
        switch self {
        case .lineWithoutName(let source, let line, let text):
            return "\(source): line \(line) has no [name] (\"\(text)\"); every template line must contain [name] so the embedding is trained"
        case .empty(let source):
            return "\(source): the template has no prompt lines"
        case .unreadable(let path):
            return "\(path): cannot read the template (not UTF-8 text?)"
        case .unknown(let name):
            return "template \"\(name)\": no such file, and not a shipped template (\(TrainingTemplate.shippedNames.joined(separator: ", ")))"
        }
    }
}

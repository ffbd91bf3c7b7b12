import Foundation

/// Tab completion for the prompt: command names, option names per command, setting values,
/// embedding names inside prompt strings, model names and file paths.
public struct CompletionEngine {
    /// Names of the loaded embeddings (offered inside strings).
    public var embeddingNames: [String] = []
    /// Checkpoint names in models_dir (offered after `model`).
    public var modelNames: [String] = []
    /// LoRA names in loras_dir (offered after `<lora:` inside strings, completed to `NAME:1>`).
    public var loraNames: [String] = []

    public init() {}

    /// What replaces the end of `text` (the line up to the cursor): the number of characters
    /// replaced and the candidates.
    public func complete(_ text: String) -> (replacing: Int, candidates: [String]) {
        let scan = Self.scan(text)
        // A statement that starts with a string is a bare prompt: `generate` without its name.
        let barePrompt = text.drop { $0 == " " || $0 == "\t" }.hasPrefix("\"")
        let command = barePrompt ? "generate" : scan.words.first
        if let quoteStart = scan.openString {
            let inside = String(text[text.index(after: quoteStart)...])
            // A path argument: the string right after a file-taking command.
            if let command, ["model", "run", "replay", "info", "inspect"].contains(command), scan.words.count == 1,
               scan.lastOption == nil {
                return paths(inside, onlyModels: false)
            }
            if let option = scan.lastOption, ["data", "vae", "template", "outdir", "embeddings_dir", "models_dir", "loras_dir", "upscalers_dir", "init", "mask"].contains(option) {
                return paths(inside, onlyModels: false)
            }
            if let option = scan.lastOption, let setting = Settings.definition(option), !setting.choices.isEmpty {
                return (inside.count, setting.choices.filter { $0.lowercased().hasPrefix(inside.lowercased()) }.map { $0 + "\"" })
            }
            // Inside a prompt: after `<lora:`, a LoRA name.
            if let tag = inside.range(of: "<lora:", options: .backwards), !inside[tag.upperBound...].contains(where: { ":> ".contains($0) }) {
                let typed = String(inside[tag.upperBound...])
                return (typed.count, loraNames.filter { $0.hasPrefix(typed) }.sorted().map { $0 + ":1>" })
            }
            // Inside a prompt: the word being typed may be an embedding name.
            let word = String(inside.reversed().prefix { $0.isLetter || $0.isNumber || "_-.".contains($0) }.reversed())
            guard !word.isEmpty else { return (0, []) }
            return (word.count, embeddingNames.filter { $0.hasPrefix(word) }.sorted())
        }
        let current = String(text.reversed().prefix { !" \t=[,(".contains($0) }.reversed())
        if text.dropLast(current.count).hasSuffix("=") {
            let option = String(text.dropLast(current.count + 1).reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" }.reversed())
            if let setting = Settings.definition(option), !setting.choices.isEmpty {
                let quoted = true
                return (current.count, setting.choices.map { quoted ? "\"\($0)\"" : $0 }.filter { $0.lowercased().hasPrefix(current.lowercased()) })
            }
            return (current.count, [])
        }
        if !barePrompt, scan.words.isEmpty || (scan.words.count == 1 && !text.hasSuffix(" ")) {
            return (current.count, (CommandCatalog.names + ["let", "for"]).filter { $0.hasPrefix(current) }.sorted().map { $0 + " " })
        }
        guard let command else { return (current.count, []) }
        if command == "model", scan.words.count <= 2, !modelNames.isEmpty, !current.isEmpty || scan.words.count == 1 {
            let names = modelNames.filter { $0.hasPrefix(current) }.sorted()
            if !names.isEmpty { return (current.count, names) }
        }
        if ["help"].contains(command) {
            return (current.count, (CommandCatalog.names + Settings.names).filter { $0.hasPrefix(current) }.sorted())
        }
        if command == "show" { return (current.count, Settings.names.filter { $0.hasPrefix(current) }.sorted()) }
        if command == "embeddings" { return (current.count, ["reload"].filter { $0.hasPrefix(current) }) }
        if command == "embedding", scan.words.count == 1 || (scan.words.count == 2 && !text.hasSuffix(" ")) {
            return (current.count, ["new "].filter { $0.hasPrefix(current) })
        }
        if command == "backend" { return (current.count, ["cpu", "opencl"].filter { $0.hasPrefix(current) }) }
        guard let spec = CommandCatalog.spec(command) else { return (current.count, []) }
        return (current.count, spec.allOptions.filter { $0.hasPrefix(current) }.sorted().map { $0 + "=" })
    }

    /// File and folder names completing `partial` (folders end in `/`; spaces kept verbatim).
    func paths(_ partial: String, onlyModels: Bool) -> (replacing: Int, candidates: [String]) {
        let expanded = partial.hasPrefix("~/") ? NSHomeDirectory() + partial.dropFirst(1) : partial
        let slash = expanded.lastIndex(of: "/")
        let directory = slash.map { String(expanded[...$0]) } ?? ""
        let stem = slash.map { String(expanded[expanded.index(after: $0)...]) } ?? expanded
        let fm = FileManager.default
        let entries = ((try? fm.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? [])
            .filter { $0.hasPrefix(stem) && (stem.hasPrefix(".") || !$0.hasPrefix(".")) }.sorted()
        let candidates = entries.map { name -> String in
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: (directory.isEmpty ? "" : directory) + name, isDirectory: &isDirectory)
            return name + (isDirectory.boolValue ? "/" : "")
        }
        // Replace only the last path component; a unique file also closes the string.
        if candidates.count == 1, !candidates[0].hasSuffix("/") { return (stem.count, [candidates[0] + "\""]) }
        return (stem.count, candidates)
    }

    /// The words of the statement so far (outside strings), the last `NAME=` before the cursor
    /// and where an unclosed string starts.
    static func scan(_ text: String) -> (words: [String], lastOption: String?, openString: String.Index?) {
        var words: [String] = [], word = "", lastOption: String?, open: String.Index?
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if let _ = open {
                if c == "\\" { i = text.index(after: i); if i < text.endIndex { i = text.index(after: i) }; continue }
                if c == "\"" { open = nil }
            } else if c == "\"" {
                if !word.isEmpty { words.append(word); word = "" }
                open = i
            } else if c == "=" {
                lastOption = word; word = ""
            } else if c == " " || c == "\t" {
                if !word.isEmpty { words.append(word); word = "" }
            } else if c == ";" {
                words = []; word = ""; lastOption = nil
            } else {
                word.append(c)
            }
            i = text.index(after: i)
        }
        if !word.isEmpty { words.append(word) }
        return (words, lastOption, open)
    }
}

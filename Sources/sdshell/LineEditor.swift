import CLineEditor
import Glibc

/// What Tab offers: replace the last `replacing` characters before the cursor with one of `candidates`.
/// Candidates are inserted verbatim (quoting, a trailing space or `=` are the completer's choice).
struct Completion: Equatable, Sendable {
    var replacing: Int
    var candidates: [String]

    init(replacing: Int = 0, candidates: [String] = []) {
        self.replacing = replacing
        self.candidates = candidates
    }

    /// Nothing to offer (Tab beeps).
    static let none = Completion()
}

/// One read from the prompt.
enum LineInput: Equatable, Sendable {
    /// A physical line, without its newline.
    case line(String)
    /// Ctrl-C: the line was abandoned (and "^C" shown after it); the caller prompts afresh.
    case interrupted
    /// Ctrl-D on an empty line, or the end of input.
    case endOfFile
}

/// The interactive prompt's line editor: libedit (emacs bindings, Ctrl-R search, persistent
/// history, Tab completion through `completer`) via the C shim in CLineEditor.
///
/// Only for terminals: `init` fails when stdin or stdout isn't one, and the caller then reads stdin
/// plainly. While `read` waits for input the terminal's ISIG is off and Ctrl-C arrives as a key
/// (`.interrupted`); when `read` returns, the terminal is back in its normal mode, so a SIGINT
/// handler works during the computation that follows. No `!` history expansion is done.
///
/// One editor at a time: libedit's signal handling (SIGWINCH, SIGTSTP, SIGCONT) is per process.
/// `init` switches LC_CTYPE to a UTF-8 locale (the environment's, else C.UTF-8) so that libedit
/// decodes multibyte input.
final class LineEditor {
    typealias Completer = (_ textBeforeCursor: String) -> Completion

    /// Where the history is kept between runs (libedit's format), or nil for none.
    let historyFile: String?
    /// The most entries kept, in memory and in the file.
    let historyLimit: Int
    private let completer: Completer
    private var editor: OpaquePointer?
    private var warnedAboutHistory = false

    init?(program: String, historyFile: String?, historyLimit: Int = 1000,
          completer: @escaping Completer) {
        self.historyFile = historyFile
        self.historyLimit = max(1, historyLimit)
        self.completer = completer
        guard le_is_interactive() != 0 else { return nil }
        let context = Unmanaged.passUnretained(self).toOpaque()
        editor = le_create(program, Int32(clamping: self.historyLimit), { context, before, columns, action in
            guard let context, let before, let action else { return }
            let editor = Unmanaged<LineEditor>.fromOpaque(context).takeUnretainedValue()
            editor.complete(String(cString: before), columns: Int(columns), into: action)
        }, context)
        guard editor != nil else { return nil }
        if let historyFile { _ = le_history_load(editor, historyFile) }
    }

    deinit {
        le_destroy(editor)
    }

    /// Reads one physical line, showing `prompt`.
    func read(prompt: String) -> LineInput {
        var line: UnsafePointer<CChar>?
        let status = le_read(editor, prompt, &line)
        switch status {
        case LE_LINE: return .line(line.map { String(cString: $0) } ?? "")
        case LE_INTERRUPTED: return .interrupted
        default: return .endOfFile
        }
    }

    /// Adds `entry` to the history (blank entries and an immediate repeat are not added) and saves
    /// the history file: written under a temporary name, then renamed over the file.
    func remember(_ entry: String) {
        guard entry.contains(where: { !$0.isWhitespace }) else { return }
        le_history_add(editor, entry)
        guard let historyFile else { return }
        let temporary = "\(historyFile).tmp-\(getpid())"
        if le_history_save(editor, temporary) != 0 || rename(temporary, historyFile) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            if !warnedAboutHistory {
                warnedAboutHistory = true
                let message = "sdshell: cannot save the history to \(historyFile): \(reason)\n"
                _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
            }
        }
    }

    /// Entries in the history now.
    var historyCount: Int { Int(le_history_count(editor)) }

    // MARK: Completion

    /// What one Tab press does to the line.
    struct CompletionStep: Equatable {
        /// Characters (Unicode scalars, as libedit counts them) before the cursor to delete first.
        var deleteCount = 0
        /// Text to insert at the cursor.
        var insert: String?
        /// Candidates to list below the line (nothing inserted).
        var listing: [String]?
        /// Nothing to offer.
        var beep = false
    }

    /// Tab's behaviour for `completion`: one candidate replaces the typed text; several insert
    /// their longest common prefix when that is longer than what is typed, and are listed otherwise.
    static func step(for completion: Completion, textBeforeCursor: String) -> CompletionStep {
        var seen = Set<String>()
        let candidates = completion.candidates.filter { seen.insert($0).inserted }
        guard !candidates.isEmpty else { return CompletionStep(beep: true) }
        let typed = String(textBeforeCursor.suffix(max(0, completion.replacing)))
        let deleteCount = typed.unicodeScalars.count
        if candidates.count == 1 {
            return CompletionStep(deleteCount: deleteCount, insert: candidates[0])
        }
        let prefix = commonPrefix(candidates)
        if prefix.count > typed.count {
            return CompletionStep(deleteCount: deleteCount, insert: prefix)
        }
        return CompletionStep(listing: candidates)
    }

    /// The longest common prefix, by characters.
    static func commonPrefix(_ strings: [String]) -> String {
        guard var prefix = strings.first.map(Array.init) else { return "" }
        for string in strings.dropFirst() {
            let n = zip(prefix, string).prefix { $0 == $1 }.count
            prefix.removeSubrange(n...)
        }
        return String(prefix)
    }

    /// `items` in columns (down, then across, like ls) fitting `width`, one string per row.
    static func columns(_ items: [String], width: Int) -> [String] {
        guard !items.isEmpty else { return [] }
        let widest = items.map(\.count).max() ?? 0
        let cellWidth = widest + 2
        let usable = max(1, width - 1)        // keep off the last column: no auto-wrap surprises
        let columnCount = max(1, min(items.count, (usable + 2) / cellWidth))
        let rowCount = (items.count + columnCount - 1) / columnCount
        return (0..<rowCount).map { row in
            var line = ""
            for column in 0..<columnCount {
                let index = column * rowCount + row
                guard index < items.count else { break }
                let item = items[index]
                line += item
                if (column + 1) * rowCount + row < items.count {
                    line += String(repeating: " ", count: cellWidth - item.count)
                }
            }
            return line
        }
    }

    private func complete(_ textBeforeCursor: String, columns: Int, into action: UnsafeMutablePointer<le_completion_action>) {
        let step = Self.step(for: completer(textBeforeCursor), textBeforeCursor: textBeforeCursor)
        action.pointee.delete_count = Int32(clamping: step.deleteCount)
        if let insert = step.insert { action.pointee.insert = strdup(insert) }
        if let listing = step.listing {
            action.pointee.listing = strdup(Self.columns(listing, width: columns).joined(separator: "\n"))
        }
        action.pointee.beep = step.beep ? 1 : 0
    }

    // MARK: Continuation

    /// Whether `text` (the input accumulated so far) continues on the next line: it ends with `\`,
    /// or has an unclosed `(`, `[`, `{` or `"""`. Brackets inside "..." strings don't count.
    static func needsContinuation(_ text: String) -> Bool {
        let s = Array(text.unicodeScalars)
        var depth = 0
        var inString = false, inBlock = false
        var i = 0
        func tripleQuote(at i: Int) -> Bool { i + 2 < s.count && s[i] == "\"" && s[i + 1] == "\"" && s[i + 2] == "\"" }
        while i < s.count {
            let c = s[i]
            if inBlock {
                if tripleQuote(at: i) { inBlock = false; i += 3 } else { i += 1 }
                continue
            }
            if inString {
                if c == "\\" { i += 2; continue }
                if c == "\"" || c == "\n" { inString = false }
                i += 1
                continue
            }
            if tripleQuote(at: i) { inBlock = true; i += 3; continue }
            switch c {
            case "\"": inString = true
            case "(", "[", "{": depth += 1
            case ")", "]", "}": depth = max(0, depth - 1)
            default: break
            }
            i += 1
        }
        if inBlock || depth > 0 { return true }
        var end = s.count
        while end > 0, s[end - 1] == " " || s[end - 1] == "\t" { end -= 1 }
        return end > 0 && s[end - 1] == "\\"
    }
}

import Diffusion
import Engine
import Foundation
import Formats
import Models
import Prompting

/// Runs sdscript statements against one session: settings, variables, the loaded model and its
/// embeddings, and the journal. The prompt, `sdshell FILE`, `sdshell -e` and standard input all
/// drive this one interpreter.
public final class Interpreter {
    public let host: ShellHost
    /// Session settings that differ from the defaults.
    public internal(set) var settings: [String: Value] = [:]
    /// Script variables; `last_images` is set by `generate` and `grid` to the files they wrote.
    public internal(set) var variables: [String: Value] = [:]
    public internal(set) var model: StableDiffusionModel?
    var pipeline: TextToImage?
    var tokenizerStorage: CLIPTokenizer?
    var embeddingsStorage: (key: String, database: EmbeddingDatabase)?
    let hashes: HashCache
    public let journal: Journal
    /// Files being run (`run`, `replay`), to refuse a file that runs itself.
    var running: [String] = []
    /// Images made by the statement being executed (path, pixel digest), for the journal and `verify`.
    var produced: [(path: String, digest: String)] = []
    /// While a journal is replayed: where it writes (its `outdir` and its own embeddings folder),
    /// whatever the replayed statements set, so a replay never touches the original's files.
    var replaySandbox: ReplaySandbox?
    /// Set when this run is one shard of a script run on many machines (`Interpreter+Shard`).
    var shardState: ShardState?

    public convenience init(host: ShellHost, hashes: HashCache = HashCache()) {
        self.init(host: host, hashes: hashes, journal: Journal())
    }

    init(host: ShellHost, hashes: HashCache, journal: Journal) {
        self.host = host
        self.hashes = hashes
        self.journal = journal
    }

    // MARK: running text

    /// Parses and runs text; stops at the first error (thrown as `ScriptError`, `Interrupted` or
    /// `QuitRequested`).
    public func run(source: String, file: String) throws {
        for statement in try Parser.parse(source, file: file) { try execute(statement) }
    }

    /// Runs one statement; the journal records it when it did something worth replaying.
    /// Ctrl-C stops a loop between iterations (`Interrupted`).
    public func execute(_ statement: Statement) throws {
        switch statement {
        case let .assign(name, value, position):
            guard !CommandCatalog.keywords.contains(name) else { throw ScriptError(position, "`\(name)` is a keyword, not a variable name") }
            variables[name] = try evaluate(value)
        case let .loop(name, sequence, body, position):
            let items: [Value]
            switch try evaluate(sequence) {
            case let .list(values): items = values
            case let other: throw ScriptError(position, "`for` needs a list or range, not \(other.kindName)")
            }
            let saved = variables[name]
            defer { variables[name] = saved }
            for item in items {
                if host.interruptRequested {
                    host.clearInterrupt()
                    throw Interrupted(position: position)
                }
                variables[name] = item
                for s in body { try execute(s) }
            }
        case let .command(name, arguments, position):
            guard CommandCatalog.spec(name == "exit" ? "quit" : name) != nil else {
                // `clear`, `cls`: say what is known instead.
                let hint = NameSuggestion.nearest(name, in: CommandCatalog.names).map { "; did you mean `\($0)`?" } ?? "; `help` lists the commands"
                throw ScriptError(position, "unknown command `\(name)`\(hint)")
            }
            do {
                try command(name, arguments, at: position)
            } catch var e as ScriptError {
                // `set sampler=euler`: an option's bare word read as a variable; show the quoted form.
                for argument in arguments {
                    guard let option = argument.name, case let .variable(word, p) = argument.value, p == e.position,
                          variables[word] == nil, e.message.hasPrefix("unknown variable `\(word)`") else { continue }
                    e.message = "unknown variable `\(word)`\(NameSuggestion.hint(word, in: Array(variables.keys)))"
                        + " (for text, use quotes: \(option)=\(Value.quote(word)))"
                    break
                }
                throw e
            }
        case let .infotext(text, position):
            try generateFromInfotext(text, at: position)
        }
    }

    /// Wraps library errors with the statement's position.
    func located<T>(_ position: SourcePosition, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ScriptError {
            throw e
        } catch let e as Interrupted {
            throw e
        } catch let e as QuitRequested {
            throw e
        } catch let e as CustomStringConvertible {
            throw ScriptError(position, e.description)
        } catch {
            throw ScriptError(position, "\(error)")
        }
    }

    func command(_ name: String, _ arguments: [Argument], at position: SourcePosition) throws {
        guard let spec = CommandCatalog.spec(name == "exit" ? "quit" : name) else {
            throw ScriptError(position, "unknown command `\(name)`\(NameSuggestion.hint(name, in: CommandCatalog.names))")
        }
        let call = try CommandCall(spec: spec, arguments: arguments, position: position, interpreter: self)
        try located(position) {
            switch spec.name {
            case "set": try set(call)
            case "show": try show(call)
            case "print": host.write(call.positional.map(\.description).joined(separator: " "))
            case "help": try help(call)
            case "quit": throw QuitRequested()
            case "model": try loadModel(call)
            case "models": try listModels(call)
            case "generate": try generate(call)
            case "img2img": try img2img(call)
            case "grid": try grid(call)
            case "embeddings": try listEmbeddings(call)
            case "loras": try listLoras(call)
            case "embedding": try newEmbedding(call)
            case "train": try train(call)
            case "tokens": try tokens(call)
            case "info": try info(call)
            case "inspect": try inspect(call)
            case "replay": try replay(call)
            case "run": try runFile(call)
            case "backend": try backend(call)
            case "devices": devices()
            default: throw ScriptError(position, "`\(name)` is not implemented")
            }
        }
    }

    // MARK: values

    /// Evaluates an expression. Integer arithmetic that would overflow is an error, and lists
    /// nest at most `Parser.maximumNesting` deep (so printing and freeing a value stay shallow).
    public func evaluate(_ e: Expression) throws -> Value {
        switch e {
        case let .integer(v, _): return .integer(v)
        case let .real(v, _): return .real(v)
        case let .size(w, h, _): return .size(width: w, height: h)
        case let .boolean(b, _): return .boolean(b)
        case let .string(segments, p):
            let text = try segments.map { segment in
                switch segment {
                case let .text(s): return s
                case let .value(inner): return try evaluate(inner).description
                }
            }.joined()
            try Self.checkSize(text: text, at: p)
            return .string(text)
        case let .list(items, p):
            let values = try items.map(evaluate)
            // How deep a value's lists nest; each list's depth is found once (`[x, x]` shares `x`).
            var known: [UnsafeRawPointer: Int] = [:]
            func depth(_ v: Value) -> Int {
                guard case let .list(items) = v else { return 0 }
                guard let key = items.withUnsafeBufferPointer({ $0.baseAddress.map(UnsafeRawPointer.init) }) else { return 1 }
                if let d = known[key] { return d }
                let d = 1 + items.reduce(0) { max($0, depth($1)) }
                known[key] = d
                return d
            }
            guard values.allSatisfy({ depth($0) < Parser.maximumNesting }) else {
                throw ScriptError(p, "lists nested deeper than \(Parser.maximumNesting) levels")
            }
            return .list(values)
        case let .range(a, b, p):
            guard case let .integer(from) = try evaluate(a), case let .integer(to) = try evaluate(b) else {
                throw ScriptError(p, "a range needs integers at both ends")
            }
            guard to >= from else { return .list([]) }
            let (span, overflow) = to.subtractingReportingOverflow(from)
            guard !overflow, span < 1_000_000 else { throw ScriptError(p, "the range \(from)..\(to) is too long (at most 1000000 items)") }
            return .list((from...to).map { .integer($0) })
        case let .variable(name, p):
            if let v = variables[name] { return v }
            // As an option's value, `execute` adds how to write it as text (`sampler="euler"`).
            throw ScriptError(p, "unknown variable `\(name)`\(NameSuggestion.hint(name, in: Array(variables.keys)))")
        case let .add(terms, operators):
            guard var total = try terms.first.map(evaluate) else { return .list([]) }
            for (term, p) in zip(terms.dropFirst(), operators) {
                let y = try evaluate(term)
                // Text and lists grow in place, so a long chain stays linear.
                if case .string(var x) = total {
                    total = .boolean(false)
                    x += y.description
                    try Self.checkSize(text: x, at: p)
                    total = .string(x)
                    continue
                }
                if case .list(var x) = total, case let .list(more) = y {
                    total = .boolean(false)
                    x += more
                    guard x.count <= Self.maximumListItems else {
                        throw ScriptError(p, "a list longer than \(Self.maximumListItems) items")
                    }
                    total = .list(x)
                    continue
                }
                switch (total, y) {
                case let (.integer(x), .integer(y)):
                    let (sum, overflow) = x.addingReportingOverflow(y)
                    guard !overflow else { throw ScriptError(p, "integer overflow in \(x) + \(y)") }
                    total = .integer(sum)
                case let (.integer(x), .real(y)): total = .real(Double(x) + y)
                case let (.real(x), .integer(y)): total = .real(x + Double(y))
                case let (.real(x), .real(y)): total = .real(x + y)
                case let (x, .string(y)):
                    let text = x.description + y
                    try Self.checkSize(text: text, at: p)
                    total = .string(text)
                case let (x, y): throw ScriptError(p, "cannot add \(x.kindName) and \(y.kindName)")
                }
            }
            return total
        case let .negate(inner, p):
            switch try evaluate(inner) {
            case let .integer(v):
                let (negated, overflow) = Int64(0).subtractingReportingOverflow(v)
                guard !overflow else { throw ScriptError(p, "integer overflow in -(\(v))") }
                return .integer(negated)
            case let .real(v): return .real(-v)
            case let other: throw ScriptError(p, "cannot negate \(other.kindName)")
            }
        }
    }

    /// Bounds on what a script can build: a string doubled in a loop would otherwise take all
    /// memory before anything could stop it.
    static let maximumTextBytes = 1 << 24
    static let maximumListItems = 1 << 20

    static func checkSize(text: String, at position: SourcePosition) throws {
        guard text.utf8.count <= maximumTextBytes else {
            throw ScriptError(position, "a string longer than \(maximumTextBytes / (1 << 20)) MiB")
        }
    }

    // MARK: settings

    /// Where images, grids, journals and training artefacts go now (the setting, or a replay's own folder).
    var outdir: String { setting("outdir")?.description ?? "outputs" }

    /// The value of a setting now (session value or default; nil for model- or sampler-dependent defaults).
    public func setting(_ name: String) -> Value? {
        if name == "backend" { return .string(Engine.backend is OpenCLBackend ? "opencl" : "cpu") }
        if name == "outdir", let replaySandbox { return .string(replaySandbox.outdir) }
        if name == "outdir", shardState != nil { return .string(shardOutdir(settings[name]?.description ?? "outputs")) }
        if name == "inline", settings[name] == nil { return .string(host.inlineDefault) }
        return settings[name] ?? Settings.definition(name)?.defaultValue
    }

    /// Checks a value against a setting's definition.
    func checked(_ name: String, _ value: Value, at position: SourcePosition) throws -> Value {
        guard let definition = Settings.definition(name) else {
            throw ScriptError(position, "unknown setting `\(name)`\(NameSuggestion.hint(name, in: Settings.names))")
        }
        do {
            return try definition.check(value)
        } catch {
            throw ScriptError(position, error.message)
        }
    }

    /// A setting given as an option (`set`, or a statement's own): checked, and `backend` only as
    /// it is (switching takes the `backend` command, which opens the device and reports it).
    func checkedOption(_ name: String, _ value: Value, at position: SourcePosition) throws -> Value {
        let v = try checked(name, value, at: position)
        if name == "backend", v != setting("backend") {
            throw ScriptError(position, "switch backends with the `backend` command (`backend \(v.description)`)")
        }
        return v
    }

    func set(_ call: CommandCall) throws {
        guard call.positional.isEmpty else { throw ScriptError(call.position, "`set` takes NAME=VALUE pairs, not positional values") }
        for (name, (value, position)) in call.options { settings[name] = try checkedOption(name, value, at: position) }
        if !call.options.isEmpty { try journal.record(call.source(), outputs: []) }
    }

    func show(_ call: CommandCall) throws {
        let names: [String]
        if let first = call.positional.first {
            // A picture (`show "out.png"`, or `show last` for the last image made): drawn inline.
            if case let .string(text) = first, text == "last" || text.lowercased().hasSuffix(".png") {
                var last = ""
                if case let .list(items)? = variables["last_images"], let image = items.last { last = image.description }
                let path = text == "last" ? last : text
                guard !path.isEmpty else { throw ScriptError(call.position, "no image made in this session yet") }
                guard FileManager.default.fileExists(atPath: path) else { throw ScriptError(call.position, "no such picture: \(path.escapingControlCharacters)") }
                let mode = setting("inline")?.description ?? "off"
                host.showInline(path: path, mode: mode == "off" ? "auto" : mode, columns: Self.inlineColumns(settings))
                host.write(path)
                return
            }
            guard case let .string(name) = first, Settings.definition(name) != nil else {
                throw ScriptError(call.position, "unknown setting `\(first)`\(NameSuggestion.hint(first.description, in: Settings.names))")
            }
            names = [name]
        } else {
            names = Settings.names
        }
        for name in names {
            let value = setting(name)?.literal ?? defaultDescription(name)
            host.write("\(name) = \(value)")
        }
    }

    /// How a setting without a fixed default (`size`) is described by `show`.
    func defaultDescription(_ name: String) -> String {
        let (w, h) = nativeSize
        return "\(w)x\(h)  # the model's native size"
    }

    /// The loaded model's native size (`StableDiffusionModel.nativeSize`; 512x512 before a model is loaded).
    var nativeSize: (Int, Int) { model?.nativeSize ?? (512, 512) }
}

/// Names the prompt completes from the session.
extension Interpreter {
    /// Completion of `text` (a line up to the cursor) with the session's names: the number of
    /// characters replaced and the candidates. The prompt and the notebook kernel both ask here.
    public func completions(_ text: String) -> (replacing: Int, candidates: [String]) {
        var engine = CompletionEngine()
        engine.embeddingNames = embeddingNames
        engine.loraNames = loraNames
        engine.modelNames = modelNames
        return engine.complete(text)
    }

    /// The LoRA names of `loras_dir`, for completion after `<lora:`.
    public var loraNames: [String] { loraLibrary.files().map(\.name) }

    public var embeddingNames: [String] {
        guard let db = try? embeddings(embeddingDirectories()) else { return [] }
        _ = db.reload()
        return Array(db.embeddings.keys)
    }
    public var modelNames: [String] { checkpoints().map { ($0 as NSString).lastPathComponent } }
}

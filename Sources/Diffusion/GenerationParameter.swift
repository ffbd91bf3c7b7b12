import Formats

/// Why a value does not fit a parameter (the caller adds the position).
public struct ParameterError: Error, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// What kind of value a parameter takes: how text from a pasted infotext or the command line reads.
public enum ParameterKind: Sendable {
    case integer, real, string, size, boolean

    /// The value `text` means, or nil when it is not one of this kind.
    public func parse(_ text: String) -> Value? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch self {
        case .integer: return Int64(t).map(Value.integer)
        case .real: return Double(t).flatMap { $0.isFinite ? Value.real($0) : nil }
        case .string: return .string(text)
        case .size:
            let parts = t.lowercased().split(separator: "x", omittingEmptySubsequences: false)
            guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]) else { return nil }
            return .size(width: w, height: h)
        case .boolean:
            switch t.lowercased() {
            case "true", "yes", "1": return .boolean(true)
            case "false", "no", "0": return .boolean(false)
            default: return nil
            }
        }
    }
}

/// One setting of the language: its name, default, check and meaning; for a generation
/// parameter also where it lives in `GenerationSettings`, how A1111's infotext writes and reads
/// it and its grid axis label. `GenerationParameters.all` holds the generation parameters,
/// `Settings` (Script) adds the session's own (backend, folders, display).
public struct ParameterDefinition: Sendable {
    public let name: String
    public let kind: ParameterKind
    /// nil: no fixed default (`size` follows the model).
    public let defaultValue: Value?
    public let help: String
    /// Values offered by tab completion.
    public let choices: [String]
    /// Checks and normalises a value (`"euler A"` becomes `"Euler a"`).
    public let check: @Sendable (Value) throws(ParameterError) -> Value
    /// A1111's infotext key; nil when A1111 does not record the parameter.
    public let infotextKey: String?
    /// A1111's X/Y/Z plot label for the parameter as a grid axis.
    public let axisLabel: String?
    /// Journals leave it out while it has its default (an option that is off unless asked for,
    /// whose absence always means the default); every other parameter is written explicitly.
    public let omittedWhenDefault: Bool
    /// Writes a checked value into the settings (in table order); nil for what the front end
    /// resolves itself (the embeddings folders).
    let store: (@Sendable (inout GenerationSettings, Value) -> Void)?
    /// The value the settings hold.
    let read: (@Sendable (GenerationSettings) -> Value)?
    /// The infotext text for these settings; nil when A1111 leaves the key out.
    let infotextText: (@Sendable (GenerationSettings) -> String?)?
    /// The value an infotext's text means (default: read by `kind`); nil when not understood.
    let parseInfotext: @Sendable (String) -> Value?
    /// What a pasted infotext without `infotextKey` means (A1111's default); nil keeps the
    /// session's value.
    let whenNotInInfotext: @Sendable (Infotext) -> Value?

    /// A session setting, outside generation (no settings field, infotext or axis).
    public init(_ name: String, _ kind: ParameterKind, _ defaultValue: Value?, _ help: String, choices: [String] = [],
                check: @escaping @Sendable (Value) throws(ParameterError) -> Value) {
        self.init(name, kind, defaultValue, help, choices: choices, check: check, store: nil, read: nil)
    }

    init(_ name: String, _ kind: ParameterKind, _ defaultValue: Value?, _ help: String, choices: [String] = [],
         check: @escaping @Sendable (Value) throws(ParameterError) -> Value, omittedWhenDefault: Bool = false,
         store: (@Sendable (inout GenerationSettings, Value) -> Void)?, read: (@Sendable (GenerationSettings) -> Value)?,
         infotextKey: String? = nil, axisLabel: String? = nil, infotext: (@Sendable (GenerationSettings) -> String?)? = nil,
         parseInfotext: (@Sendable (String) -> Value?)? = nil, whenNotInInfotext: @escaping @Sendable (Infotext) -> Value? = { _ in nil }) {
        self.name = name; self.kind = kind; self.defaultValue = defaultValue; self.help = help; self.choices = choices
        self.check = check; self.omittedWhenDefault = omittedWhenDefault; self.store = store; self.read = read
        self.infotextKey = infotextKey; self.axisLabel = axisLabel; self.infotextText = infotext
        self.parseInfotext = parseInfotext ?? { kind.parse($0) }
        self.whenNotInInfotext = whenNotInInfotext
    }

    /// Whether a journal writes `value` (see `omittedWhenDefault`).
    public func journals(_ value: Value) -> Bool { !(omittedWhenDefault && value == defaultValue) }

    /// Whether the row is a field of `GenerationSettings`.
    public var hasSettingsField: Bool { store != nil }

    /// Checks `value`, with the message a caller places at the value's position.
    public func checked(_ value: Value) throws(ParameterError) -> Value { try check(value) }
}

/// The checks rows are built from.
public enum ParameterCheck {
    public static func integer(_ name: String, min: Int64? = nil, max: Int64? = nil) -> @Sendable (Value) throws(ParameterError) -> Value {
        { v throws(ParameterError) in
            guard case let .integer(i) = v else { throw ParameterError("\(name) must be an integer, not \(v.kindName)") }
            if let min, i < min { throw ParameterError("\(name) must be at least \(min) (got \(i))") }
            if let max, i > max { throw ParameterError("\(name) must be at most \(max) (got \(i))") }
            return v
        }
    }

    /// A finite number within `range` (an integer is taken as a real).
    public static func real(_ name: String, _ range: ClosedRange<Double>) -> @Sendable (Value) throws(ParameterError) -> Value {
        { v throws(ParameterError) in
            let x: Double
            switch v {
            case let .integer(i): x = Double(i)
            case let .real(r): x = r
            default: throw ParameterError("\(name) must be a number, not \(v.kindName)")
            }
            guard x.isFinite, range.contains(x) else {
                throw ParameterError("\(name) must be between \(Value.real(range.lowerBound).literal) and \(Value.real(range.upperBound).literal) (got \(v.literal))")
            }
            return .real(x)
        }
    }

    /// A string; `path` settings refuse the empty string (it would name the file system's root).
    public static func string(_ name: String, path: Bool = false) -> @Sendable (Value) throws(ParameterError) -> Value {
        { v throws(ParameterError) in
            guard case let .string(s) = v else { throw ParameterError("\(name) must be a string, not \(v.kindName)") }
            if path, s.isEmpty { throw ParameterError("\(name) must name a folder, not be empty (\"\" would write at the file system's root)") }
            return v
        }
    }

    public static func boolean(_ name: String) -> @Sendable (Value) throws(ParameterError) -> Value {
        { v throws(ParameterError) in
            guard case .boolean = v else { throw ParameterError("\(name) must be true or false, not \(v.kindName)") }
            return v
        }
    }

    /// One of `builtIn` (matched as `choice` matches), or any other name without control
    /// characters, looked up when it is used (an upscaler model file's stem).
    public static func choiceOrName(_ name: String, _ builtIn: [String]) -> @Sendable (Value) throws(ParameterError) -> Value {
        { v throws(ParameterError) in
            guard case let .string(s) = v else { throw ParameterError("\(name) must be a string, not \(v.kindName)") }
            if let match = builtIn.first(where: { $0.lowercased() == s.lowercased() }) { return .string(match) }
            guard !s.isEmpty, s.escapingControlCharacters == s, !s.contains("/") else {
                throw ParameterError("\(name) must be one of \(builtIn.joined(separator: ", ")) or an upscaler model's name, not \"\(s.escapingControlCharacters)\"")
            }
            return v
        }
    }

    /// One of `allowed`, matched without regard to case and returned as `allowed` spells it.
    public static func choice(_ name: String, _ allowed: [String]) -> @Sendable (Value) throws(ParameterError) -> Value {
        { v throws(ParameterError) in
            guard case let .string(s) = v else { throw ParameterError("\(name) must be a string, not \(v.kindName)") }
            guard let match = allowed.first(where: { $0.lowercased() == s.lowercased() }) else {
                throw ParameterError("unknown \(name) \"\(s)\"\(NameSuggestion.hint(s, in: allowed)); known: \(allowed.joined(separator: ", "))")
            }
            return .string(match)
        }
    }
}

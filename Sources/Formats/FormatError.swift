/// Errors reading or writing model and embedding files. Every case names the file.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    /// The file's bytes do not follow the format (truncation, bad magic, bad offsets, ...).
    case corrupt(file: String, reason: String)
    /// A pickle names a global that is not on the allow-list; nothing was executed.
    case unsafeGlobal(file: String, global: String)
    /// The format or a feature of it is valid but not supported here.
    case unsupported(file: String, reason: String)
    /// Reading or writing failed at the operating-system level.
    case io(file: String, reason: String)
    /// Another process holds the file's lock (`FileLock`): trying again later can succeed.
    case locked(file: String, reason: String)

    /// The message, with control characters from the file (names, metadata) made visible
    /// (`escapingControlCharacters`).
    public var description: String { rawDescription.escapingControlCharacters }

    private var rawDescription: String {
        switch self {
        case let .corrupt(file, reason): return "\(file): not a valid file: \(reason)"
        case let .unsafeGlobal(file, global):
            return "\(file): refused: the pickle calls `\(global)`, which is not on the allow-list of data types (nothing was executed)"
        case let .unsupported(file, reason): return "\(file): unsupported: \(reason)"
        case let .io(file, reason), let .locked(file, reason): return "\(file): \(reason)"
        }
    }
}

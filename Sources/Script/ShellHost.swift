/// How the interpreter reaches the person or program running it: output, progress, Ctrl-C.
public protocol ShellHost: AnyObject {
    /// A line of normal output (paths, listings, `print`).
    func write(_ line: String)
    /// A message about something that went wrong or needs attention (stderr).
    func warn(_ line: String)
    /// Progress of a long job; `label` names the part ("cell 2 of 6"). Shown only on terminals.
    func progress(step: Int, total: Int, label: String)
    /// The job whose progress was shown has ended.
    func progressDone()
    /// Ctrl-C was pressed since the last `clearInterrupt()`.
    var interruptRequested: Bool { get }
    func clearInterrupt()
    /// Shows a finished image inline when the terminal can: `mode` is the `inline` setting
    /// ("auto", "kitty", "iterm2", "sixel"), `columns` its `inline_width` (0: natural size).
    func showInline(path: String, mode: String, columns: Int)
    /// A live preview of the image being sampled (8-bit RGB), redrawn in place.
    func showPreview(rgb: [UInt8], width: Int, height: Int, mode: String, columns: Int)
    /// The `inline` setting's value until the session sets one: "off" on terminals (images are
    /// drawn only when asked for), "auto" in a notebook (every image and grid is shown).
    var inlineDefault: String { get }
}

extension ShellHost {
    public var inlineDefault: String { "off" }
    public func showPreview(rgb: [UInt8], width: Int, height: Int, mode: String, columns: Int) {}
}

/// Thrown when Ctrl-C stopped a job; at the prompt the session goes on, a script stops.
public struct Interrupted: Error, CustomStringConvertible {
    public let position: SourcePosition
    public init(position: SourcePosition) { self.position = position }
    public var description: String { "\(position): interrupted" }
}

/// Thrown by `quit`.
public struct QuitRequested: Error {}

/// A host's Ctrl-C state read from inside a computation (`Cancellation.checking`). The
/// interpreter runs on one thread; the probe only reads the host's flag.
final class InterruptProbe: @unchecked Sendable {
    let host: ShellHost
    init(_ host: ShellHost) { self.host = host }
    var requested: Bool { host.interruptRequested }
}

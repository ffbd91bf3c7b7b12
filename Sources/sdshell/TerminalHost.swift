import Foundation
import Formats
import Imaging
import Synchronization
import Script

/// What the signal handlers report. Atomics, not plain globals: a handler runs on whatever thread
/// it interrupts, possibly in the middle of that thread reading the flag, and a plain Swift
/// global's exclusivity check would take the handler's write for a conflicting access and abort.
enum SignalFlags {
    /// Set by SIGINT, SIGTERM and SIGHUP (installed without SA_RESTART): a running job stops at
    /// its next check, its finished images saved and journalled.
    static let interrupt = Atomic<Int32>(0)
    /// SIGTERM or SIGHUP, once received: after the job stops, the process exits (128 + signal).
    static let termination = Atomic<Int32>(0)
}

/// Whether an interrupt is pending.
var interruptFlag: Int32 { SignalFlags.interrupt.load(ordering: .relaxed) }
/// The terminating signal received, or 0.
var terminationSignal: Int32 { SignalFlags.termination.load(ordering: .relaxed) }
/// Forgets a handled interrupt.
func clearInterruptFlag() { SignalFlags.interrupt.store(0, ordering: .relaxed) }

/// Installs the handlers: SIGINT sets `interruptFlag`; SIGTERM and SIGHUP also set
/// `terminationSignal`, so a job ends cleanly (journal whole) before the process exits.
func installInterruptHandler() {
    // Initialised here, before any handler can run (a lazy initialisation inside a handler would lock).
    _ = (interruptFlag, terminationSignal)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in SignalFlags.interrupt.store(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0
    sigaction(SIGINT, &action, nil)
    var terminate = sigaction()
    terminate.__sigaction_handler.sa_handler = { signal in
        SignalFlags.interrupt.store(1, ordering: .relaxed)
        SignalFlags.termination.store(signal, ordering: .relaxed)
    }
    sigemptyset(&terminate.sa_mask)
    terminate.sa_flags = 0
    sigaction(SIGTERM, &terminate, nil)
    // `nohup` ignores SIGHUP on purpose: keep it ignored.
    var previous = sigaction()
    sigaction(SIGHUP, nil, &previous)
    if unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) != 1 /* SIG_IGN */ { sigaction(SIGHUP, &terminate, nil) }
    // A parent may start us with these blocked (threads of a test runner): they must arrive.
    var handled = sigset_t()
    sigemptyset(&handled)
    for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&handled, signal) }
    sigprocmask(SIG_UNBLOCK, &handled, nil)
}

/// The interpreter's host on a terminal or pipe: results to stdout, messages to stderr, the
/// progress of long jobs (`ProgressMeter`: redrawn in place when stderr is a terminal, plain lines
/// at each tenth when it is a file or pipe), images drawn inline on terminals that speak an
/// image protocol (`TerminalImage`).
final class TerminalHost: ShellHost {
    let stderrIsTerminal = isatty(2) != 0
    lazy var meter = ProgressMeter(inPlace: stderrIsTerminal)
    /// Whether a preview was drawn since the job started (its place is reused).
    var previewShown = false

    func write(_ line: String) { say(line) }

    func warn(_ line: String) { complain(line) }

    func progress(step: Int, total: Int, label: String) {
        if let text = meter.update(step: step, total: total, label: label, now: Date().timeIntervalSinceReferenceDate) {
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    func progressDone() {
        meter = ProgressMeter(inPlace: stderrIsTerminal)
        previewShown = false
        if stderrIsTerminal { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
    }

    var interruptRequested: Bool { interruptFlag != 0 }
    func clearInterrupt() { clearInterruptFlag() }

    /// The protocol to draw with: the setting's, or for "auto" what the environment says, else
    /// what the terminal answers to `TerminalImage.capabilityQuery`; none when standard output is
    /// not a terminal, or inside tmux or screen.
    static func resolvedProtocol(_ mode: String) -> TerminalImage.Kind? {
        guard isatty(1) != 0, mode != "off" else { return nil }
        if let explicit = TerminalImage.Kind(rawValue: mode) { return explicit }
        let environment = ProcessInfo.processInfo.environment
        if let named = TerminalImage.detect(environment: environment, tmuxPassthrough: tmuxPassesImages) { return named }
        guard environment["TMUX"] == nil, environment["STY"] == nil else { return nil }
        return queriedProtocol
    }

    /// Inside tmux, whether it passes images to the outer terminal: its `allow-passthrough`
    /// option is on (asked once, with `tmux show-options`, waiting at most 1 s).
    static let tmuxPassesImages: Bool = {
        guard ProcessInfo.processInfo.environment["TMUX"] != nil else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tmux", "show-options", "-gv", "allow-passthrough"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        let deadline = Date().addingTimeInterval(1)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate(); return false }
        let answer = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile().prefix(64), as: UTF8.self)
        return ["on", "all"].contains(answer.trimmingCharacters(in: .whitespacesAndNewlines))
    }()

    /// The terminal's answer to the capability query, asked once per process (a static `let` is
    /// initialised once, on first use).
    static let queriedProtocol: TerminalImage.Kind? = queryTerminal()

    /// How long the terminal has to answer: DA1 is answered at once by every terminal emulator,
    /// so the wait is only spent on one that ignores it.
    static let queryTimeout = 1.0

    /// Writes the capability query to the controlling terminal with echo and line buffering off,
    /// reads the answer until DA1's reply or the timeout, and restores the terminal.
    static func queryTerminal() -> TerminalImage.Kind? {
        let tty = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard tty >= 0 else { return nil }
        defer { close(tty) }
        var saved = termios()
        guard tcgetattr(tty, &saved) == 0 else { return nil }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        guard tcsetattr(tty, TCSANOW, &raw) == 0 else { return nil }
        defer { tcsetattr(tty, TCSANOW, &saved) }
        let query = Array(TerminalImage.capabilityQuery.utf8)
        guard query.withUnsafeBytes({ Glibc.write(tty, $0.baseAddress, $0.count) }) == query.count else { return nil }
        var reply: [UInt8] = []
        let deadline = Date().addingTimeInterval(queryTimeout)
        var buffer = [UInt8](repeating: 0, count: 256)
        while !TerminalImage.replyIsComplete(reply), reply.count < 4096 {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { break }
            var wait = pollfd(fd: tty, events: Int16(POLLIN), revents: 0)
            guard poll(&wait, 1, Int32(left * 1000) + 1) > 0 else { continue }
            let n = Glibc.read(tty, &buffer, buffer.count)
            if n > 0 { reply += buffer[..<n] } else if n == 0 || (errno != EINTR && errno != EAGAIN) { break }
        }
        return TerminalImage.kind(fromReply: reply)
    }

    /// The escape sequence drawing a PNG file (`data`) with `kind` (kitty's and iTerm2's wrapped
    /// for tmux's passthrough inside a tmux that allows it; tmux 3.4+ draws sixel itself).
    static func sequence(png data: Data, kind: TerminalImage.Kind, columns: Int) throws -> String {
        switch kind {
        case .kitty:
            let text = TerminalImage.kitty(png: data, columns: columns)
            return tmuxPassesImages ? TerminalImage.tmuxPassthrough(text) : text
        case .iterm2:
            let text = TerminalImage.iterm2(png: data, columns: columns)
            return tmuxPassesImages ? TerminalImage.tmuxPassthrough(text) : text
        case .sixel:
            let temporary = NSTemporaryDirectory() + "sdshell-sixel-\(UUID().uuidString).png"
            try data.write(to: URL(fileURLWithPath: temporary))
            defer { try? FileManager.default.removeItem(atPath: temporary) }
            let picture = try RGBImage.read(temporary)
            return sixel(picture.rgb, picture.width, picture.height, columns: columns)
        }
    }

    /// sixel at `columns` terminal cells (taken as 10 pixels each; 0: the picture's own size).
    static func sixel(_ rgb: [UInt8], _ width: Int, _ height: Int, columns: Int) -> String {
        guard columns > 0, columns * 10 != width else { return TerminalImage.sixel(rgb: rgb, width: width, height: height) }
        let w = columns * 10, h = max(1, height * w / width)
        return TerminalImage.sixel(rgb: ImageFit.nearest(rgb: rgb, width: width, height: height, outWidth: w, outHeight: h), width: w, height: h)
    }

    func showInline(path: String, mode: String, columns: Int) {
        guard let kind = Self.resolvedProtocol(mode), let data = FileManager.default.contents(atPath: path),
              let text = try? Self.sequence(png: data, kind: kind, columns: columns) else { return }
        print(text)
        fflush(nil)
    }

    /// The preview drawn where the last one was (the cursor saved and restored around it).
    func showPreview(rgb: [UInt8], width: Int, height: Int, mode: String, columns: Int) {
        guard stderrIsTerminal, let kind = Self.resolvedProtocol(mode),
              let png = try? PNGFile.encode(rgb: rgb, width: width, height: height, text: []),
              let text = try? Self.sequence(png: Data(png), kind: kind, columns: columns > 0 ? columns : 16) else { return }
        FileHandle.standardOutput.write(Data(("\r\u{1b}[K\n\u{1b}7" + text + "\u{1b}8\u{1b}[1A").utf8))
        previewShown = true
    }
}

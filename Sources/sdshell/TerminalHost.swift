import Foundation
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

/// The interpreter's host on a terminal or pipe: results to stdout, messages to stderr, a
/// progress line (step/total, it/s, ETA) only when stderr is a terminal, inline images on
/// terminals that speak the kitty or iTerm2 image protocols.
final class TerminalHost: ShellHost {
    let progressShown = isatty(2) != 0
    var started: Date?
    var firstStep = 0

    func write(_ line: String) { say(line) }

    func warn(_ line: String) { complain(line) }

    func progress(step: Int, total: Int, label: String) {
        guard progressShown else { return }
        let now = Date()
        if started == nil || step <= firstStep { started = now; firstStep = step }
        let elapsed = now.timeIntervalSince(started!)
        let rate = elapsed > 0 ? Double(step - firstStep) / elapsed : 0
        let eta = rate > 0 ? String(format: "  ETA %.0f s", Double(total - step) / rate) : ""
        let text = String(format: "\r\u{1b}[Kstep %d/%d  %.2f it/s", step, total, rate) + eta + (label.isEmpty ? "" : "  (\(label.escapingControlCharacters))")
        FileHandle.standardError.write(Data(text.utf8))
    }

    func progressDone() {
        started = nil
        if progressShown { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
    }

    var interruptRequested: Bool { interruptFlag != 0 }
    func clearInterrupt() { clearInterruptFlag() }

    /// kitty: `ESC _G a=T,f=100;<base64 PNG> ESC \` in 4096-byte chunks; iTerm2: OSC 1337 File.
    func showInline(path: String) {
        guard isatty(1) != 0, let data = FileManager.default.contents(atPath: path) else { return }
        let env = ProcessInfo.processInfo.environment
        let payload = data.base64EncodedString()
        var out = ""
        if env["KITTY_WINDOW_ID"] != nil || (env["TERM"] ?? "").contains("kitty") {
            let chunks = stride(from: 0, to: payload.count, by: 4096).map { start -> Substring in
                let a = payload.index(payload.startIndex, offsetBy: start)
                return payload[a..<payload.index(a, offsetBy: min(4096, payload.count - start))]
            }
            for (i, chunk) in chunks.enumerated() {
                let more = i + 1 < chunks.count ? 1 : 0
                out += "\u{1b}_G" + (i == 0 ? "a=T,f=100,m=\(more)" : "m=\(more)") + ";" + chunk + "\u{1b}\\"
            }
        } else if env["TERM_PROGRAM"] == "iTerm.app" || env["LC_TERMINAL"] == "iTerm2" {
            out = "\u{1b}]1337;File=inline=1;size=\(data.count):" + payload + "\u{07}"
        } else {
            return
        }
        print(out)
        fflush(nil)
    }
}

import Foundation
import Glibc

/// Runs an executable on a pseudo-terminal, for tests of interactive behaviour: keystrokes go in
/// with `send`, and `waitFor` reads the screen output (ANSI escapes removed) until a text appears.
///
/// The child is started with posix_spawn in a new session (POSIX_SPAWN_SETSID) and opens the
/// terminal's slave side as its stdin, which makes it the child's controlling terminal (so Ctrl-C
/// raises SIGINT when the terminal's ISIG is on); stdout and stderr are the same terminal.
final class PseudoTerminal {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let pid: pid_t
    private let master: Int32
    private var bytes: [UInt8] = []
    /// `output` is searched by `waitFor` from this offset (in characters of `output`) on.
    private var searchOffset = 0
    private var status: Int32?
    /// The terminal reported end of output (no process has it open).
    private var closed = false

    init(executable: String, arguments: [String], environment: [String: String],
         columns: Int = 100, rows: Int = 30) throws {
        // posix_openpt, grantpt, unlockpt and ptsname_r aren't visible through Swift's Glibc module
        // (they need _XOPEN_SOURCE); they are in libc all the same.
        let libc = dlopen(nil, RTLD_NOW)
        func symbol<T>(_ name: String, as type: T.Type) throws -> T {
            guard let address = dlsym(libc, name) else { throw Failure(description: "libc has no \(name)") }
            return unsafeBitCast(address, to: type)
        }
        typealias OpenPT = @convention(c) (Int32) -> Int32
        typealias FdCall = @convention(c) (Int32) -> Int32
        typealias PtsName = @convention(c) (Int32, UnsafeMutablePointer<CChar>?, Int) -> Int32
        let openpt = try symbol("posix_openpt", as: OpenPT.self)
        let grantpt = try symbol("grantpt", as: FdCall.self)
        let unlockpt = try symbol("unlockpt", as: FdCall.self)
        let ptsname = try symbol("ptsname_r", as: PtsName.self)

        let master = openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw Failure(description: "posix_openpt: \(String(cString: strerror(errno)))") }
        var name = [CChar](repeating: 0, count: 256)
        guard grantpt(master) == 0, unlockpt(master) == 0, ptsname(master, &name, name.count) == 0 else {
            let reason = String(cString: strerror(errno))
            close(master)
            throw Failure(description: "cannot set up the pseudo-terminal: \(reason)")
        }
        var size = winsize(ws_row: UInt16(rows), ws_col: UInt16(columns), ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Opened after setsid (glibc runs the file actions after it) and without O_NOCTTY: the
        // terminal becomes the child's controlling terminal.
        posix_spawn_file_actions_addopen(&actions, 0, name, O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        let setsid: Int32 = 0x80    // POSIX_SPAWN_SETSID (glibc >= 2.26; behind __USE_GNU, not imported)
        posix_spawnattr_setflags(&attributes, Int16(setsid | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGCHLD, SIGWINCH, SIGHUP, SIGTERM] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            close(master)
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        self.master = master
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            var s: Int32 = 0
            _ = waitpid(pid, &s, 0)
        }
        close(master)
    }

    /// Types `text` (raw bytes: "\t", "\u{03}" Ctrl-C, "\u{04}" Ctrl-D, "\u{1b}[A" up, "\r" Enter).
    func send(_ text: String) {
        var data = Array(text.utf8)
        var offset = 0
        let deadline = Date().addingTimeInterval(5)
        while offset < data.count && Date() < deadline {
            let n = data.withUnsafeMutableBytes { write(master, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno != EAGAIN && errno != EINTR { return } else { pump(timeout: 0.01) }
        }
        data.removeAll()
    }

    /// Everything the program wrote, ANSI escape sequences, carriage returns and other control
    /// characters (but newlines and tabs) removed.
    var output: String { Self.strip(bytes) }

    /// Everything the program wrote, as it came.
    var rawOutput: String { String(decoding: bytes, as: UTF8.self) }

    /// Reads until `output`, from where the previous successful `waitFor` stopped, contains `text`;
    /// returns the output from there up to the end of the match. Throws (with the output so far)
    /// on timeout or when the program ends first.
    @discardableResult
    func waitFor(_ text: String, timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let all = output
            let start = all.index(all.startIndex, offsetBy: min(searchOffset, all.count))
            if let range = all[start...].range(of: text) {
                searchOffset = all.distance(from: all.startIndex, to: range.upperBound)
                return String(all[start..<range.upperBound])
            }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                throw Failure(description: "timed out waiting for \(String(reflecting: text)); output so far:\n\(all)")
            }
            if closed && status != nil {
                throw Failure(description: "the program ended before \(String(reflecting: text)) appeared; output:\n\(all)")
            }
            if !pump(timeout: min(remaining, 0.1)) {
                closed = true
                reap()
                usleep(10_000)
            }
        }
    }

    /// Reads until the raw output (escape sequences kept) contains `text`.
    func waitForRaw(_ text: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !rawOutput.contains(text) {
            if deadline.timeIntervalSinceNow <= 0 || (closed && status != nil) {
                throw Failure(description: "no \(String(reflecting: text)) in the output:\n\(rawOutput.debugDescription)")
            }
            if !pump(timeout: 0.05) {
                closed = true
                reap()
                usleep(10_000)
            }
        }
    }

    /// Reads until the output so far ends with `text` (a prompt waiting for input), whether or not
    /// an earlier `waitFor` already passed it. Keys typed before the editor is reading again can
    /// meet the terminal in canonical mode, where a Ctrl-D is taken as end-of-file and lost.
    func waitUntilOutputEnds(with text: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !output.hasSuffix(text) {
            if deadline.timeIntervalSinceNow <= 0 {
                throw Failure(description: "timed out waiting for the output to end with \(String(reflecting: text)); output so far:\n\(output)")
            }
            if closed && status != nil {
                throw Failure(description: "the program ended before \(String(reflecting: text)) appeared; output:\n\(output)")
            }
            if !pump(timeout: 0.1) {
                closed = true
                reap()
                usleep(10_000)
            }
        }
    }

    /// Waits for the program to end; its exit status, or 128 + the signal that ended it.
    func waitForExit(timeout: Double = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while status == nil {
            reap()
            if status != nil { break }
            if deadline.timeIntervalSinceNow <= 0 {
                throw Failure(description: "timed out waiting for the program to end; output so far:\n\(output)")
            }
            if !pump(timeout: 0.05) { usleep(10_000) }
        }
        drain()
        let s = status!
        return s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
    }

    /// Reads what is available within `timeout` seconds; false when the terminal is closed
    /// (the program ended) and nothing more can come.
    @discardableResult
    private func pump(timeout: Double) -> Bool {
        var fd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        let ready = poll(&fd, 1, Int32(max(0, timeout * 1000)))
        guard ready > 0 else { return ready == 0 || errno == EINTR }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(master, &buffer, buffer.count)
        if n > 0 {
            bytes += buffer[0..<n]
            return true
        }
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return true }
        return false          // EIO: no process has the terminal open any more
    }

    /// Reads whatever is already there.
    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var fd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, 0) > 0 else { return }
            let n = read(master, &buffer, buffer.count)
            guard n > 0 else { return }
            bytes += buffer[0..<n]
        }
    }

    private func reap() {
        guard status == nil else { return }
        var s: Int32 = 0
        if waitpid(pid, &s, WNOHANG) == pid { status = s }
    }

    /// `bytes` as text without escape sequences (CSI, OSC, two-byte ESC sequences) and control
    /// characters other than newline and tab.
    static func strip(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x1b, i + 1 < bytes.count {
                let next = bytes[i + 1]
                if next == UInt8(ascii: "[") {                      // CSI: parameters, then a final byte
                    var j = i + 2
                    while j < bytes.count, !(0x40...0x7e).contains(bytes[j]) { j += 1 }
                    i = j + 1
                } else if next == UInt8(ascii: "]") {               // OSC: up to BEL or ESC \
                    var j = i + 2
                    while j < bytes.count, bytes[j] != 0x07, !(bytes[j] == 0x1b && j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: "\\")) { j += 1 }
                    i = j < bytes.count && bytes[j] == 0x07 ? j + 1 : j + 2
                } else if next == UInt8(ascii: "(") || next == UInt8(ascii: ")") {   // charset: one more byte
                    i += 3
                } else {
                    i += 2
                }
                continue
            }
            if b < 0x20 && b != 0x0a && b != 0x09 || b == 0x7f {
                i += 1
                continue
            }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

import Script

/// A host that keeps what the interpreter says, for assertions.
final class RecordingHost: ShellHost {
    var lines: [String] = []
    var warnings: [String] = []
    var progressCalls = 0
    /// The labels of the progress reports.
    var progressLabels: [String] = []
    /// Requests an interrupt once this many progress reports have been made.
    var interruptAfter: Int?
    var interrupted = false

    func write(_ line: String) { lines.append(line) }
    func warn(_ line: String) { warnings.append(line) }
    func progress(step: Int, total: Int, label: String) {
        progressCalls += 1
        progressLabels.append(label)
        if let n = interruptAfter, progressCalls >= n { interrupted = true }
    }
    func progressDone() {}
    var interruptRequested: Bool { interrupted }
    func clearInterrupt() { interrupted = false; interruptAfter = nil }
    func showInline(path: String, mode: String, columns: Int) {}
}

import Formats
import Foundation
import Script

/// How a notebook's interrupt reaches a running job: the same flag Ctrl-C sets at the prompt
/// (SIGINT from Jupyter's interrupt button), also set by an `interrupt_request` message.
public struct KernelInterrupts: Sendable {
    public var requested: @Sendable () -> Bool
    public var clear: @Sendable () -> Void
    public var request: @Sendable () -> Void
    /// SIGTERM or SIGHUP arrived: the kernel ends once the running job has stopped.
    public var terminated: @Sendable () -> Bool
    public init(requested: @escaping @Sendable () -> Bool, clear: @escaping @Sendable () -> Void, request: @escaping @Sendable () -> Void,
                terminated: @escaping @Sendable () -> Bool) {
        self.requested = requested
        self.clear = clear
        self.request = request
        self.terminated = terminated
    }
}

/// The interpreter's host inside the Jupyter kernel: lines become `stream` output, pictures
/// `image/png` display data (every image and grid, unless `inline="off"`), the progress line and
/// live previews displays updated in place, all published on IOPub in reply to the cell running.
final class NotebookHost: ShellHost {
    let iopub: IOPubChannel
    let interrupts: KernelInterrupts
    /// The `execute_request` being run.
    var parent: JupyterMessage?
    /// Whether the cell asked for no output (`silent`).
    var silent = false
    private var meter = ProgressMeter(inPlace: false)
    private var progressDisplay: (id: String, text: String, shownAt: Double, shown: String)?
    private var previewDisplay: String?
    /// A progress display is updated at most this often (seconds), and at a job's last step.
    static let progressInterval = 0.1
    /// Pictures larger than this are not sent (a `show` of a huge file).
    static let largestPicture = 64 << 20

    init(iopub: IOPubChannel, interrupts: KernelInterrupts) {
        self.iopub = iopub
        self.interrupts = interrupts
    }

    var inlineDefault: String { "auto" }

    func write(_ line: String) { stream("stdout", line) }
    func warn(_ line: String) { stream("stderr", line) }

    private func stream(_ name: String, _ line: String) {
        guard !silent else { return }
        iopub.publish("stream", ["name": name, "text": line.escapingControlCharacters + "\n"], parent: parent)
    }

    /// Shows `data` (MIME type to value) as a new display, or updates display `id` when it exists.
    private func display(_ data: [String: Any], metadata: [String: Any] = [:], id: String, update: Bool) {
        guard !silent else { return }
        iopub.publish(update ? "update_display_data" : "display_data",
                      ["data": data, "metadata": metadata, "transient": ["display_id": id]], parent: parent)
    }

    func progress(step: Int, total: Int, label: String) {
        let now = Date().timeIntervalSinceReferenceDate
        let text = meter.line(step: step, total: total, label: label, now: now)
        if var shown = progressDisplay {
            shown.text = text
            if now - shown.shownAt >= Self.progressInterval || step == total {
                display(["text/plain": text], id: shown.id, update: true)
                shown.shownAt = now
                shown.shown = text
            }
            progressDisplay = shown
        } else {
            let id = "sdshell-progress-" + UUID().uuidString.lowercased()
            display(["text/plain": text], id: id, update: false)
            progressDisplay = (id, text, now, text)
        }
    }

    func progressDone() {
        if let shown = progressDisplay, shown.shown != shown.text { display(["text/plain": shown.text], id: shown.id, update: true) }
        progressDisplay = nil
        previewDisplay = nil
        meter = ProgressMeter(inPlace: false)
    }

    var interruptRequested: Bool { interrupts.requested() }
    func clearInterrupt() { interrupts.clear() }

    /// `columns` (the `inline_width` setting, terminal columns) is shown as 10 pixels a column.
    private static func metadata(columns: Int) -> [String: Any] {
        columns > 0 ? ["image/png": ["width": columns * 10]] : [:]
    }

    func showInline(path: String, mode: String, columns: Int) {
        guard mode != "off", let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? Int, size <= Self.largestPicture,
              let data = FileManager.default.contents(atPath: path) else { return }
        display(["image/png": data.base64EncodedString(), "text/plain": path.escapingControlCharacters],
                metadata: Self.metadata(columns: columns), id: "sdshell-image-" + UUID().uuidString.lowercased(), update: false)
    }

    func showPreview(rgb: [UInt8], width: Int, height: Int, mode: String, columns: Int) {
        guard mode != "off", let png = try? PNGFile.encode(rgb: rgb, width: width, height: height, text: []) else { return }
        let data: [String: Any] = ["image/png": Data(png).base64EncodedString(), "text/plain": "live preview"]
        if let id = previewDisplay {
            display(data, metadata: Self.metadata(columns: columns), id: id, update: true)
        } else {
            let id = "sdshell-preview-" + UUID().uuidString.lowercased()
            display(data, metadata: Self.metadata(columns: columns), id: id, update: false)
            previewDisplay = id
        }
    }
}

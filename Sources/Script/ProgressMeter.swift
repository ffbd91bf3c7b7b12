import Formats
import Foundation

/// The progress of a job as people read it: step/total, it/s (or s/it when slower than one a
/// second), elapsed and the time left at the rate so far, and the job's own label. On a terminal
/// the line is redrawn in place at every step; written to a file it is a plain line at each tenth
/// of the job (and at its end), without escape sequences.
public struct ProgressMeter: Sendable {
    public let inPlace: Bool
    private var started: Double?
    private var firstStep = 0
    private var lastTenth = -1

    public init(inPlace: Bool) { self.inPlace = inPlace }

    /// The text to write for `step` of `total` at time `now` (seconds), or nil when nothing is due.
    public mutating func update(step: Int, total: Int, label: String, now: Double) -> String? {
        let text = line(step: step, total: total, label: label, now: now)
        if inPlace { return "\r\u{1b}[K" + text }
        let tenth = total > 0 ? step * 10 / total : 0
        guard tenth > lastTenth || step == total else { return nil }
        lastTenth = tenth
        return text + "\n"
    }

    /// The progress line for `step` of `total` at time `now` (seconds), without escape sequences
    /// (a notebook shows it as updating display data).
    public mutating func line(step: Int, total: Int, label: String, now: Double) -> String {
        if started == nil || step <= firstStep { started = now; firstStep = step; lastTenth = -1 }
        let elapsed = now - started!
        let done = step - firstStep
        let rate = elapsed > 0 && done > 0 ? Double(done) / elapsed : 0
        var text = "step \(step)/\(total)"
        if rate >= 1 { text += String(format: "  %.2f it/s", rate) } else if rate > 0 { text += String(format: "  %.2f s/it", 1 / rate) }
        text += "  " + Self.duration(elapsed)
        if rate > 0, step < total { text += " elapsed, ETA " + Self.duration(Double(total - step) / rate) }
        if !label.isEmpty { text += "  (\(label.escapingControlCharacters))" }
        return text
    }

    /// The time left at the rate so far (nil before the first step after the start).
    public func remaining(step: Int, total: Int, now: Double) -> Double? {
        guard let started, step > firstStep, now > started else { return nil }
        return Double(total - step) * (now - started) / Double(step - firstStep)
    }

    /// Seconds as "42 s", "3 min 05 s" or "1 h 02 min".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s) s" }
        if s < 3600 { return String(format: "%d min %02d s", s / 60, s % 60) }
        return String(format: "%d h %02d min", s / 3600, s % 3600 / 60)
    }
}

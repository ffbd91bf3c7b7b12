import Foundation
import Formats

/// `loss.csv` of a training: one row a step with A1111's columns and formatting
/// (`step,epoch,epoch_step,loss,learn_rate`, CRLF line ends as Python's csv module writes them,
/// the loss with 7 decimals, the rate as Python prints a float).
///
/// Rows live in memory and the whole file is rewritten atomically at each save, so after a crash
/// the file holds exactly the steps of the last saved embedding; on resume, rows past the
/// embedding's step (written by a run that saved later state elsewhere) are dropped, so every
/// step appears once.
public struct TrainingLossLog: Sendable {
    /// One logged step.
    public struct Row: Sendable, Equatable {
        public var step: Int, epoch: Int, epochStep: Int, loss: Double, learnRate: Double
        public init(step: Int, epoch: Int, epochStep: Int, loss: Double, learnRate: Double) {
            self.step = step; self.epoch = epoch; self.epochStep = epochStep; self.loss = loss; self.learnRate = learnRate
        }
        /// A1111's numbering for the step counted from 1: `epoch = (step-1) / stepsPerEpoch`.
        public init(step: Int, stepsPerEpoch: Int, loss: Double, learnRate: Double) {
            self.init(step: step, epoch: (step - 1) / stepsPerEpoch, epochStep: (step - 1) % stepsPerEpoch,
                      loss: loss, learnRate: learnRate)
        }
    }

    public static let header = "step,epoch,epoch_step,loss,learn_rate"
    public let path: String
    public private(set) var rows: [Row] = []

    /// Opens the log at `path`, keeping the rows of steps up to `resumingAt` (the saved embedding's
    /// step count). A missing file starts empty; a file that is not such a log is an error.
    public init(path: String, resumingAt savedSteps: Int = 0) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw FormatError.io(file: path, reason: "cannot read the loss log")
        }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard lines.first == Self.header else {
            throw FormatError.corrupt(file: path, reason: "not a loss log (first line is not \"\(Self.header)\")")
        }
        for (index, line) in lines.dropFirst().enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 5, let step = Int(fields[0]), let epoch = Int(fields[1]), let epochStep = Int(fields[2]),
                  let loss = Double(fields[3]), let rate = Double(fields[4]) else {
                throw FormatError.corrupt(file: path, reason: "line \(index + 2) is not step,epoch,epoch_step,loss,learn_rate")
            }
            if step <= savedSteps { rows.append(Row(step: step, epoch: epoch, epochStep: epochStep, loss: loss, learnRate: rate)) }
        }
    }

    /// Adds a step's row.
    public mutating func append(_ row: Row) { rows.append(row) }

    /// The file's text.
    public var text: String {
        var out = Self.header + "\r\n"
        for r in rows {
            out += "\(r.step),\(r.epoch),\(r.epochStep),\(String(format: "%.7f", r.loss)),\(Self.pythonFloat(r.learnRate))\r\n"
        }
        return out
    }

    /// Writes the file atomically (a crash mid-write leaves the previous one).
    public func save() throws { try AtomicFile.write(Array(text.utf8), to: path) }

    /// Python's `repr` of a float: the shortest digits that round-trip, exponent form below 1e-4
    /// and from 1e16, written `1e-05` (two exponent digits at least).
    static func pythonFloat(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e16 { return String(format: "%.1f", value) }
        let swift = "\(value)"  // shortest round-trip digits, e.g. "0.005", "1e-05", "5e-06"
        guard let e = swift.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return swift }
        let mantissa = swift[..<e]
        var exponent = String(swift[swift.index(after: e)...])
        let sign = exponent.hasPrefix("-") ? "-" : "+"
        exponent = exponent.trimmingCharacters(in: CharacterSet(charactersIn: "+-"))
        if exponent.count < 2 { exponent = "0" + exponent }
        return "\(mantissa)e\(sign)\(exponent)"
    }
}

import Foundation

/// A1111's learning-rate schedule strings ("0.005:100, 1e-3:1000, 1e-5") and how its trainer
/// steps through them. Entries split on ","; blank ones are skipped; `rate:step` entries whose step
/// is at or before the starting step are skipped without reading the rate (resuming mid-schedule),
/// `-1` or a missing step means "until maxSteps" and ends the list, and the first entry whose step
/// passes maxSteps is cut there and ends the list. During training the rate moves to the next
/// entry, one per step, once the step reaches the current entry's end; training stops when no
/// entry is left.
public struct LearnRateSchedule: Sendable, Equatable {
    public struct Entry: Sendable, Equatable { public let rate: Double; public let untilStep: Int }
    public let entries: [Entry]

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case invalid(String)
        public var description: String {
            switch self {
            case let .invalid(text): return "invalid learning rate schedule \"\(text)\": expected e.g. \"0.005\" or \"0.005:100, 1e-3:1000, 1e-5\""
            }
        }
    }

    /// Python's int() and float() of an entry part (surrounding whitespace ignored).
    static func pythonInt(_ s: Substring) -> Int? { Int(s.trimmingCharacters(in: .whitespaces)) }
    static func pythonFloat(_ s: Substring) -> Double? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, !t.lowercased().hasPrefix("0x") else { return nil }
        return Double(t)
    }

    public init(_ text: String, maxSteps: Int, startStep: Int = 0) throws {
        var entries: [Entry] = []
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            if pair.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let parts = pair.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2 {
                guard let step = Self.pythonInt(parts[1]) else { throw ParseError.invalid(text) }
                if step > startStep {
                    guard let rate = Self.pythonFloat(parts[0]) else { throw ParseError.invalid(text) }
                    entries.append(Entry(rate: rate, untilStep: min(step, maxSteps)))
                    if step > maxSteps { break }
                } else if step == -1 {
                    guard let rate = Self.pythonFloat(parts[0]) else { throw ParseError.invalid(text) }
                    entries.append(Entry(rate: rate, untilStep: maxSteps))
                    break
                }
            } else {
                guard let rate = Self.pythonFloat(parts[0]) else { throw ParseError.invalid(text) }
                entries.append(Entry(rate: rate, untilStep: maxSteps))
                break
            }
        }
        guard !entries.isEmpty else { throw ParseError.invalid(text) }
        self.entries = entries
    }

    /// The trainer's position in the schedule.
    public struct Cursor: Sendable, Equatable {
        public private(set) var index = 0
        public private(set) var finished = false
        let entries: [Entry]
        public var rate: Double { entries[index].rate }

        /// Called before the optimizer step taken at `step` (steps done so far): moves to the next
        /// entry once `step` reaches the current entry's end; `finished` when none is left.
        public mutating func advance(to step: Int) {
            guard !finished, step >= entries[index].untilStep else { return }
            if index + 1 < entries.count { index += 1 } else { finished = true }
        }
    }

    public func cursor() -> Cursor { Cursor(entries: entries) }
}

/// A1111's learning-rate schedule strings ("0.005:100, 1e-3:1000, 1e-5"): comma-separated
/// `rate:until_step` entries; an entry without a step (or with step -1) holds until `maxSteps`;
/// entries ending at or before the starting step are skipped (resuming mid-schedule); the first
/// entry ending beyond `maxSteps` is cut there and ends the list.
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

    public init(_ text: String, maxSteps: Int, startStep: Int = 0) throws {
        var entries: [Entry] = []
        parsing: for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            if pair.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let parts = pair.split(separator: ":", omittingEmptySubsequences: false)
            guard let rate = Double(parts[0].trimmingCharacters(in: .whitespaces)) else { throw ParseError.invalid(text) }
            if parts.count == 2 {
                guard let step = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { throw ParseError.invalid(text) }
                if step > startStep {
                    entries.append(Entry(rate: rate, untilStep: min(step, maxSteps)))
                    if step > maxSteps { break parsing }
                } else if step == -1 {
                    entries.append(Entry(rate: rate, untilStep: maxSteps))
                    break parsing
                }
            } else {
                entries.append(Entry(rate: rate, untilStep: maxSteps))
                break parsing
            }
        }
        guard !entries.isEmpty else { throw ParseError.invalid(text) }
        self.entries = entries
    }

    /// The rate in force after `step` steps and whether the schedule is exhausted (A1111 stops
    /// training when the last entry's step is reached).
    public func rate(atStep step: Int) -> (rate: Double, finished: Bool) {
        for e in entries where step < e.untilStep { return (e.rate, false) }
        return (entries.last!.rate, true)
    }
}

import Foundation

import Foundation
import TestSupport
import Testing
@testable import Prompting

/// A1111's prompt parser outputs (Tests/Fixtures/generators/make_prompt_fixtures.py runs A1111's own
/// modules/prompt_parser.py).
enum PromptFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("prompts", in: .module)
}

@Suite struct PromptParserTests {
    @Test("attention syntax: (text, weight) lists equal A1111's on the whole table")
    func attention() {
        var failures: [String] = []
        let cases = PromptFixture.root["attention"] as! [[String: Any]]
        for c in cases where c["error"] == nil {
            let text = c["text"] as! String
            let expected = (c["result"] as! [[Any]]).map { ($0[0] as! String, ($0[1] as! NSNumber).doubleValue) }
            let got = PromptAttention.parse(text)
            // Weights compared to 1e-12 relative: Foundation's JSON reader on Linux can be off by a
            // few ulps when parsing doubles (1.2100000000000002 reads as ...04).
            let weightsEqual = got.count == expected.count
                && zip(got.map(\.weight), expected.map(\.1)).allSatisfy { abs($0 - $1) <= 1e-12 * max(abs($1), 1) }
            if got.map(\.text) != expected.map(\.0) || !weightsEqual {
                failures.append("\(text.debugDescription): \(got) vs \(expected)")
            }
        }
        #expect(cases.count >= 150)
        #expect(failures.isEmpty, "\(failures.count) differ: \(failures.prefix(4).joined(separator: "\n"))")
    }
}

@Suite struct CompositionTests {
    @Test("AND splits and weights equal A1111's get_multicond_prompt_list")
    func and() {
        let cases = PromptFixture.root["and_prompts"] as! [[String: Any]]
        #expect(cases.count >= 10)
        for c in cases {
            let prompts = c["prompts"] as! [String]
            let got = PromptComposition.parse(prompts)
            #expect(got.flat == c["flat"] as! [String], "\(prompts)")
            let expected = (c["indexes"] as! [[[NSNumber]]]).map { $0.map { ($0[0].intValue, $0[1].doubleValue) } }
            #expect(got.indexes.map { $0.map(\.index) } == expected.map { $0.map(\.0) }, "\(prompts)")
            #expect(zip(got.indexes.flatMap { $0.map(\.weight) }, expected.flatMap { $0.map(\.1) }).allSatisfy { abs($0 - $1) < 1e-12 }, "\(prompts)")
        }
    }
}

@Suite struct ScheduleTests {
    @Test("prompt editing and alternation schedules equal A1111's at 10, 20 and 30 steps")
    func schedules() {
        var failures: [String] = []
        let cases = PromptFixture.root["schedules"] as! [[String: Any]]
        for c in cases {
            let prompt = c["prompt"] as! String
            // Where A1111's own result depends on Python's hash seed, any of its answers is accepted.
            let alternatives: [[String: Any]] = (c["alternatives"] as? [[String: Any]])?.map { $0["by_steps"] as! [String: Any] }
                ?? [c["by_steps"] as! [String: Any]]
            for steps in [10, 20, 30] {
                let got = PromptSchedule.schedule(prompt, steps: steps)
                let ok = alternatives.contains { alt in
                    let want = (alt[String(steps)] as! [[Any]]).map { (($0[0] as! NSNumber).intValue, $0[1] as! String) }
                    return got.map(\.endStep) == want.map(\.0) && got.map(\.text) == want.map(\.1)
                }
                if !ok { failures.append("\(prompt.debugDescription) @\(steps): \(got)") }
            }
        }
        #expect(cases.count >= 80)
        #expect(failures.isEmpty, "\(failures.count) differ: \(failures.prefix(6).joined(separator: "\n"))")
    }
}

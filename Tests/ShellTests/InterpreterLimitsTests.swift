import Foundation
import Formats
import Testing
@testable import Script

/// A host whose Ctrl-C is pressed once it has been asked `after` times.
final class InterruptingHost: ShellHost {
    let after: Int
    var checks = 0, clears = 0
    var lines: [String] = []
    private var pressed = false

    init(after: Int) { self.after = after }

    func write(_ line: String) { lines.append(line) }
    func warn(_ line: String) {}
    func progress(step: Int, total: Int, label: String) {}
    func progressDone() {}
    var interruptRequested: Bool {
        checks += 1
        if checks == after { pressed = true }
        return pressed
    }
    func clearInterrupt() { pressed = false; clears += 1 }
    func showInline(path: String, mode: String, columns: Int) {}
}

/// The interpreter on inputs that used to trap, hang or mislead (issue #26): integer overflow,
/// Ctrl-C in script loops, deep values, long sums, unknown words and bare option values.
struct InterpreterLimitsTests {
    let folder = NSTemporaryDirectory() + "sdshell-limits-\(UUID().uuidString)"

    func shell(_ host: ShellHost = RecordingHost()) -> Interpreter {
        Interpreter(host: host, hashes: HashCache(location: folder + "/hashes.json"))
    }

    func error(_ text: String, in interpreter: Interpreter? = nil) -> ScriptError? {
        do { try (interpreter ?? shell()).run(source: text, file: "t"); return nil } catch let e as ScriptError { return e } catch {
            Issue.record("not a ScriptError: \(error)"); return nil
        }
    }

    func printed(_ text: String) throws -> [String] {
        let host = RecordingHost()
        try shell(host).run(source: text, file: "t")
        return host.lines
    }

    // (11) Integer overflow is an error at the operator, never a trap.

    @Test func negatingTheSmallestIntegerIsAnError() throws {
        #expect(error("print -(-9223372036854775807 + -1)")?.description == "t:1:7: integer overflow in -(-9223372036854775808)")
        #expect(error("let m = -9223372036854775807 + -1\nprint -m")?.description == "t:2:7: integer overflow in -(-9223372036854775808)")
        #expect(try printed("print -(-9223372036854775807) -(9223372036854775807 + 0)") == ["9223372036854775807 -9223372036854775807"])
        #expect(error("print 9223372036854775807 + 1")?.description == "t:1:27: integer overflow in 9223372036854775807 + 1")
    }

    @Test func aRangeAcrossAllIntegersIsTooLongNotATrap() throws {
        #expect(error("for i in -9223372036854775807..9223372036854775807 { print i }")?.description
            == "t:1:30: the range -9223372036854775807..9223372036854775807 is too long (at most 1000000 items)")
        #expect(error("print (-9223372036854775807 + -1)..9223372036854775807")?.message.hasSuffix("is too long (at most 1000000 items)") == true)
        #expect(try printed("print 9223372036854775805..9223372036854775807")
            == ["[9223372036854775805, 9223372036854775806, 9223372036854775807]"])
        #expect(try printed("print 3..1") == ["[]"])
    }

    // (14) Ctrl-C stops a loop that runs no generation.

    @Test func ctrlCStopsNestedScriptLoops() throws {
        let host = InterruptingHost(after: 500)
        let interpreter = shell(host)
        let text = "for i in 1..999999 {\n  for j in 1..999999 { let x = j }\n}\nprint \"not reached\""
        #expect(throws: Interrupted.self) { try interpreter.run(source: text, file: "t") }
        #expect(host.checks == 500 && host.clears == 1)
        #expect(host.lines.isEmpty)
        // The position is the loop that saw it; the session goes on.
        do { try interpreter.run(source: "for i in 1..3 { print i }", file: "u") } catch { Issue.record("\(error)") }
        #expect(host.lines == ["1", "2", "3"])
    }

    @Test func ctrlCStopsALoopWithAnEmptyBodyAtItsPosition() throws {
        let host = InterruptingHost(after: 10)
        do {
            try shell(host).run(source: "print 1\n  for i in 1..1000 { }", file: "t")
            Issue.record("not interrupted")
        } catch let e as Interrupted {
            #expect(e.position == SourcePosition(file: "t", line: 2, column: 3))
        }
        #expect(host.lines == ["1"])
    }

    // (10) Values nest no deeper than the parser allows; long sums are evaluated in a loop.

    @Test func listsBuiltInALoopCannotNestDeeperThanTheLimit() throws {
        let e = error("let x = 1\nfor i in 1..1000 { let x = [x] }\nprint x")
        #expect(e?.description == "t:2:28: lists nested deeper than \(Parser.maximumNesting) levels")
        // Up to the limit they print.
        let lines = try printed("let x = 1\nfor i in 1..\(Parser.maximumNesting - 1) { let x = [x] }\nprint x")
        #expect(lines == [String(repeating: "[", count: Parser.maximumNesting - 1) + "1" + String(repeating: "]", count: Parser.maximumNesting - 1)])
        // A list holding itself twice, sixty times over, is checked without walking every copy.
        let clock = ContinuousClock()
        let time = try clock.measure { try shell().run(source: "let x = 1\nfor i in 1..60 { let x = [x, x] }", file: "t") }
        #expect(time < .seconds(5), "\(time)")
    }

    @Test func deepExpressionsUpToTheLimitEvaluate() throws {
        let n = Parser.maximumNesting
        #expect(try printed("print " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n)) == ["1"])
        #expect(try printed("print " + String(repeating: "-", count: n) + "7") == ["7"])
        #expect(try printed("print " + String(repeating: "[", count: n) + String(repeating: "]", count: n))
            == [String(repeating: "[", count: n) + String(repeating: "]", count: n)])
        let interpolation = "print \"" + String(repeating: "{\"", count: 40) + "x" + String(repeating: "\"}", count: 40) + "\""
        #expect(try printed(interpolation) == ["x"])
        #expect(try printed(String(repeating: "for i in 1..1 { ", count: n) + "print i" + String(repeating: " }", count: n)) == ["1"])
    }

    @Test func aLongSumEvaluatesWithoutRecursion() throws {
        #expect(try printed("print 1" + String(repeating: " + 1", count: 200_000)) == ["200001"])
        #expect(try printed("print \"\"" + String(repeating: " + \"ab\"", count: 50_000)) == [String(repeating: "ab", count: 50_000)])
        #expect(try printed("print 1 + 2.5 + \"x\" + [1] + 2") == ["3.5x[1]2"])
        #expect(try printed("print [1] + [2, 3] + []") == ["[1, 2, 3]"])
        #expect(error("print 1 + 2 + true")?.description == "t:1:13: cannot add an integer and a boolean")
        #expect(error("print 1 + 9223372036854775806 + 1")?.description == "t:1:31: integer overflow in 9223372036854775807 + 1")
    }

    // (25) An unknown word says what is known.

    @Test func anUnknownCommandPointsAtHelpOrTheNearestName() {
        #expect(error("clear")?.description == "t:1:1: unknown command `clear`; `help` lists the commands")
        #expect(error("cls")?.description == "t:1:1: unknown command `cls`; `help` lists the commands")
        #expect(error("genrate \"x\"")?.description == "t:1:1: unknown command `genrate`; did you mean `generate`?")
    }

    // (28) A bare word where a value is expected: quote it.

    @Test func aBareWordAsAValueSuggestsQuotes() {
        #expect(error("set sampler=euler")?.description == "t:1:13: unknown variable `euler` (for text, use quotes: sampler=\"euler\")")
        #expect(error("generate \"x\" negative=blurry")?.description
            == "t:1:23: unknown variable `blurry` (for text, use quotes: negative=\"blurry\")")
        #expect(error("print cat")?.description == "t:1:7: unknown variable `cat`")
        // A near variable is still named first.
        #expect(error("let euler = \"Euler\"\nset sampler=eulr")?.description
            == "t:2:13: unknown variable `eulr`; did you mean `euler`? (for text, use quotes: sampler=\"eulr\")")
        #expect(error("let count2 = 2\nprint count3")?.description == "t:2:7: unknown variable `count3`; did you mean `count2`?")
    }
}

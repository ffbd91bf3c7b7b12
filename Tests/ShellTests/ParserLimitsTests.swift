import Foundation
import Testing
@testable import Script

/// Inputs that used to crash, hang or mislead the parser (issue #26): deep nesting, long `+`
/// chains, out-of-range literals, Windows line ends, parsing time, and lone unknown words.
struct ParserLimitsTests {
    func parse(_ text: String) throws -> [Statement] { try Parser.parse(text, file: "t.sdscript") }

    func error(_ text: String) -> ScriptError? {
        do { _ = try parse(text); return nil } catch let e as ScriptError { return e } catch { return nil }
    }

    func p(_ line: Int, _ column: Int) -> SourcePosition { SourcePosition(file: "t.sdscript", line: line, column: column) }

    static let tooDeep = "nesting deeper than \(Parser.maximumNesting) levels (brackets, `for` bodies, `-` signs and `{}` in strings)"

    // (10) Nesting: an error at the bracket, sign or brace one past the limit, never a stack overflow.

    @Test func thousandsOfOpenBracketsAreAnErrorAtTheFirstOnePastTheLimit() {
        for open in ["(", "["] {
            let e = error("print " + String(repeating: open, count: 3_000))
            #expect(e?.message == Self.tooDeep, "\(open)")
            #expect(e?.position == p(1, 7 + Parser.maximumNesting), "\(open)")
            #expect(e?.incomplete == false, "\(open)")
        }
        // Closed as well: the same error, before anything deep is built.
        #expect(error("print " + String(repeating: "(", count: 3_000) + "1" + String(repeating: ")", count: 3_000))?.message == Self.tooDeep)
        #expect(error("print " + String(repeating: "[", count: 3_000) + String(repeating: "]", count: 3_000))?.message == Self.tooDeep)
    }

    @Test func nestingUpToTheLimitParses() throws {
        let n = Parser.maximumNesting
        let s = try parse("print " + String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n))
        guard case let .command("print", arguments, _) = s[0] else { Issue.record("\(s)"); return }
        #expect(arguments[0].value == .integer(1, p(1, 7 + n)))
        _ = try parse("print " + String(repeating: "[", count: n) + String(repeating: "]", count: n))
        _ = try parse("print " + String(repeating: "-", count: n) + "1")
        _ = try parse(String(repeating: "for i in 1..2 { ", count: n) + String(repeating: "}", count: n))
    }

    @Test func fiveThousandNestedLoopsAreAnError() {
        let text = String(repeating: "for i in 1..2 {\n", count: 5_000) + String(repeating: "}\n", count: 5_000)
        let e = error(text)
        #expect(e?.message == Self.tooDeep)
        #expect(e?.position == p(Parser.maximumNesting + 1, 15))
        // Brackets inside the loops count too.
        #expect(error(String(repeating: "for i in [1] {\n", count: 5_000))?.position == p(Parser.maximumNesting + 1, 10))
    }

    @Test func aHundredThousandMinusSignsAreAnError() {
        let e = error("print " + String(repeating: "-", count: 100_000) + "1")
        #expect(e?.message == Self.tooDeep)
        #expect(e?.position == p(1, 7 + Parser.maximumNesting))
    }

    @Test func deeplyNestedInterpolationIsAnError() {
        // "{"{"{ ... }"}"}": each level is a string inside the braces of the one around it.
        let text = "print \"" + String(repeating: "{\"", count: 3_000) + "x" + String(repeating: "\"}", count: 3_000) + "\""
        let e = error(text)
        #expect(e?.message == Self.tooDeep)
        // Interpolation levels count with brackets: 60 of each is too many together.
        let mixed = "print \"" + String(repeating: "{(\"", count: 60) + "x" + String(repeating: "\")}", count: 60) + "\""
        #expect(error(mixed)?.message == Self.tooDeep)
        let fine = "print \"" + String(repeating: "{\"", count: 40) + "x" + String(repeating: "\"}", count: 40) + "\""
        #expect(error(fine) == nil)
    }

    @Test func aLongPlusChainIsOneFlatNode() throws {
        let n = 200_000
        let s = try parse("print 1" + String(repeating: " + 1", count: n))
        guard case let .command("print", arguments, _) = s[0], case let .add(terms, operators) = arguments[0].value else {
            Issue.record("not one sum"); return
        }
        #expect(terms.count == n + 1 && operators.count == n)
        #expect(operators[0] == p(1, 9) && operators[n - 1] == p(1, 9 + 4 * (n - 1)))
        #expect(arguments[0].value.position == operators[n - 1])
    }

    // (11) Literals out of range: an error that says so, never a trap.

    @Test func integerAndSizeLiteralsOutOfRangeAreErrors() {
        #expect(error("print 9223372036854775807") == nil)
        #expect(error("print 9223372036854775808")?.description
            == "t.sdscript:1:7: the number 9223372036854775808 is too large (integers are 64-bit, at most 9223372036854775807)")
        #expect(error("print -99999999999999999999999")?.position == p(1, 8))
        #expect(error("print 99999999999999999999x8")?.description == "t.sdscript:1:7: the size 99999999999999999999x8 is too large")
        #expect(error("print 8x99999999999999999999")?.description == "t.sdscript:1:7: the size 8x99999999999999999999 is too large")
    }

    // (28) Windows line ends.

    @Test func aScriptWithWindowsLineEndsParsesAsItsUnixVersion() throws {
        let unix = """
        # settings
        set steps=20 \\
            cfg=7
        let names = ["a",
                     "b"]
        for n in names {
            print "name {n}"; print n + "!"
        }
        print \"\"\"two
        lines\"\"\"
        portrait of a cat, (masterpiece:1.2)
        Negative prompt: lowres
        Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512

        print "end"

        """
        let windows = unix.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(Array(windows.unicodeScalars).filter { $0 == "\r" }.count == unix.filter { $0 == "\n" }.count)
        let expected = try parse(unix)
        #expect(expected.count == 6)
        #expect(try parse(windows) == expected)
        // A string that spans lines holds `\n`, as in the Unix file.
        guard case let .command(_, arguments, _) = expected[3], case let .string(pieces, _) = arguments[0].value else {
            Issue.record("\(expected[3])"); return
        }
        #expect(pieces == [.text("two\nlines")])
        guard case let .infotext(text, _) = expected[4] else { Issue.record("\(expected[4])"); return }
        #expect(text.hasPrefix("portrait of a cat") && text.hasSuffix("Size: 512x512"))
    }

    // (17) Parsing is linear: each statement looks ahead only at the lines it needs.

    /// A script of `lines` lines mixing commands, loops, comments, blank lines, statements that
    /// start with unknown words (which look for a pasted parameters line) and pasted infotext.
    static func script(lines: Int) -> String {
        var out: [String] = []
        var i = 0
        while out.count < lines {
            switch i % 6 {
            case 0: out.append("print \"line \(i)\" + \(i)")
            case 1: out.append("# a comment \(i)")
            case 2: out += ["undefined_word \(i)", ""]   // a blank line ends its search for a parameters line
            case 3: out.append("for k in 1..2 { let x = k }")
            case 4: out += ["a painting of \(i), oil", "Negative prompt: blurry", "Steps: 2, Sampler: Euler, Seed: \(i), Size: 64x64", ""]
            default: out.append("set steps=\(i % 50 + 1)")
            }
            i += 1
        }
        return out.joined(separator: "\n")
    }

    @Test func fiftyThousandLinesParseInLinearTime() throws {
        let clock = ContinuousClock()
        let small = Self.script(lines: 5_000), large = Self.script(lines: 50_000)
        var smallStatements = 0, largeStatements = 0
        let smallTime = try clock.measure { smallStatements = try parse(small).count }
        let largeTime = try clock.measure { largeStatements = try parse(large).count }
        #expect(largeStatements > 9 * smallStatements)
        // The copy of the rest of the file per statement took minutes here (26 s for 8,000 lines).
        #expect(largeTime < .seconds(20), "50,000 lines took \(largeTime)")
        // Ten times the lines, about ten times the time (a quadratic parse takes a hundred).
        #expect(largeTime < smallTime * 40 + .milliseconds(500), "5,000 lines: \(smallTime), 50,000 lines: \(largeTime)")
    }

    @Test func manyUnknownWordsWithoutBlankLinesParseInLinearTime() throws {
        // Each statement searches for a parameters line; the search is not repeated line by line.
        let text = (0..<30_000).map { "undefined_word \($0)" }.joined(separator: "\n") + "\n"
        let clock = ContinuousClock()
        var count = 0
        let time = try clock.measure { count = try parse(text).count }
        #expect(count == 30_000)
        #expect(time < .seconds(20), "\(time)")
        // And many statements on one line.
        let oneLine = String(repeating: "undefined_word 1; ", count: 20_000) + "\n"
        #expect(try clock.measure { count = try parse(oneLine).count } < .seconds(20))
        #expect(count == 20_000)
    }

    // (25) A lone unknown word is a command (reported as unknown), not the start of a paste.

    @Test func aLoneUnknownWordIsACommandNotAPaste() throws {
        for word in ["clear", "cls", "ls", "cd models", "clear screen", "pwd"] {
            let s = try parse(word)
            guard case let .command(name, _, position) = s.first else { Issue.record("\(word): \(s)"); continue }
            #expect(name == String(word.split(separator: " ")[0]) && position == p(1, 1))
        }
        // Prose still waits for its parameters line.
        for text in ["portrait of a cat, highly detailed", "a photo of a cat", "(masterpiece:1.2) cat"] {
            #expect(error(text)?.incomplete == true, "\(text)")
        }
        // A lone word followed by its parameters line is still a paste.
        let s = try parse("masterpiece\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 512x512")
        #expect(s == [.infotext("masterpiece\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 512x512", p(1, 1))])
    }

    /// What the prompt does: add each line to the buffer while the parse says `incomplete`.
    func promptReads(_ lines: [String]) -> [(prompt: String, result: Result<[Statement], ScriptError>)] {
        var buffer = "", out: [(String, Result<[Statement], ScriptError>)] = []
        for line in lines {
            let prompt = buffer.isEmpty ? "sd> " : "..> "
            buffer += (buffer.isEmpty ? "" : "\n") + line
            do {
                out.append((prompt, .success(try Parser.parse(buffer, file: "<prompt>"))))
                buffer = ""
            } catch let e as ScriptError {
                out.append((prompt, .failure(e)))
                if !e.incomplete { buffer = "" }
            } catch {
                Issue.record("\(error)")
            }
        }
        return out
    }

    @Test func atThePromptAnUnknownWordIsAnErrorAndTheNextLineRuns() throws {
        let reads = promptReads(["clear", "print 1"])
        #expect(reads.map(\.prompt) == ["sd> ", "sd> "])
        guard case let .success(first) = reads[0].result, case let .success(second) = reads[1].result else { Issue.record("\(reads)"); return }
        #expect(first.count == 1 && second.count == 1)
        if case .command("clear", [], _) = first[0] {} else { Issue.record("\(first)") }
        if case .command("print", _, _) = second[0] {} else { Issue.record("\(second)") }
    }

    @Test func infotextPastedLineByLineAtThePromptIsRecognised() throws {
        let lines = ["portrait of usada pekora, (masterpiece:1.2)", "Negative prompt: lowres, bad anatomy",
                     "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 4077357776, Size: 512x512, Model hash: 45dee52b"]
        let reads = promptReads(lines)
        #expect(reads.map(\.prompt) == ["sd> ", "..> ", "..> "])
        #expect(reads.dropLast().allSatisfy { if case let .failure(e) = $0.result { return e.incomplete }; return false })
        guard case let .success(s) = reads[2].result else { Issue.record("\(reads)"); return }
        #expect(s == [.infotext(lines.joined(separator: "\n"), SourcePosition(file: "<prompt>", line: 1, column: 1))])
        // Without a negative prompt too.
        let short = promptReads(["a red car, photo", "Steps: 20, Sampler: Euler a, Seed: 1, Size: 512x512"])
        guard case let .success(t) = short[1].result else { Issue.record("\(short)"); return }
        #expect(t.count == 1)
        if case .infotext = t[0] {} else { Issue.record("\(t)") }
    }
}

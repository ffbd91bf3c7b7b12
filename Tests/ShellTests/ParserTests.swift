import Testing
@testable import Script

/// The sdscript grammar: every statement form, lexical rule and parse error class.
struct ParserTests {
    func parse(_ text: String) throws -> [Statement] { try Parser.parse(text, file: "t.sdscript") }

    func error(_ text: String) -> ScriptError? {
        do { _ = try parse(text); return nil } catch let e as ScriptError { return e } catch { return nil }
    }

    func p(_ line: Int, _ column: Int) -> SourcePosition { SourcePosition(file: "t.sdscript", line: line, column: column) }

    @Test func statementForms() throws {
        let s = try parse("""
        let n = 3
        for s in 1..4 { generate "a {s}" seed=s }
        set sampler="Euler a" steps=20 size=512x768
        "a bare prompt" cfg=7.5
        embedding new "pekora" init="girl" vectors=8; show
        """)
        #expect(s.count == 6)
        #expect(s[0] == .assign(name: "n", value: .integer(3, p(1, 9)), p(1, 1)))
        guard case let .loop(v, .range(.integer(1, _), .integer(4, _), _), body, _) = s[1] else { Issue.record("loop: \(s[1])"); return }
        #expect(v == "s")
        guard case let .command("generate", args, _) = body[0] else { Issue.record("body"); return }
        #expect(args[0].value == .string([.text("a "), .value(.variable("s", p(2, 30)))], p(2, 26)))
        #expect(args[1].name == "seed")
        guard case let .command("set", setArgs, _) = s[2] else { Issue.record("set"); return }
        #expect(setArgs.map(\.name) == ["sampler", "steps", "size"])
        #expect(setArgs[2].value == .size(width: 512, height: 768, p(3, 37)))
        guard case let .command("generate", bare, _) = s[3] else { Issue.record("bare prompt"); return }
        #expect(bare[0].name == nil && bare[1].value == .real(7.5, p(4, 21)))
        guard case let .command("embedding", e, _) = s[4] else { Issue.record("embedding"); return }
        #expect(e[0].value == .variable("new", p(5, 11)))
        #expect(s[5] == .command(name: "show", arguments: [], p(5, 47)))
    }

    @Test func lexicalRules() throws {
        // Comments, continuation, statements spanning lines inside brackets, numbers, negatives.
        let s = try parse("""
        print 1e-3 -1 20 # a comment "not a string"
        print [1,
               2, 3] \\
          (4 + 5)
        """)
        #expect(s.count == 2)
        guard case let .command(_, a, _) = s[0], case let .command(_, b, _) = s[1] else { Issue.record("\(s)"); return }
        #expect(a.map(\.value) == [.real(1e-3, p(1, 7)), .negate(.integer(1, p(1, 13)), p(1, 12)), .integer(20, p(1, 15))])
        #expect(b.count == 2)
        if case let .list(items, _) = b[0].value { #expect(items.count == 3) } else { Issue.record("list") }
    }

    @Test func stringsKeepPromptSyntax() throws {
        let s = try parse(#"print "(word:1.2) [a:b:0.5] [a|b] BREAK \(x\) \"q\" \\ \{literal} tab\tnl\n""#)
        guard case let .command(_, a, _) = s[0], case let .string(segments, _) = a[0].value else { Issue.record("\(s)"); return }
        #expect(segments == [.text("(word:1.2) [a:b:0.5] [a|b] BREAK \\(x\\) \"q\" \\ {literal} tab\tnl\n")])
        let triple = try parse("print \"\"\"line one\n  line \"two\"\n\"\"\"")
        guard case let .command(_, t, _) = triple[0], case let .string(ts, _) = t[0].value else { Issue.record("\(triple)"); return }
        #expect(ts == [.text("line one\n  line \"two\"\n")])
    }

    @Test func pastedInfotext() throws {
        let s = try parse("""
        model "m.safetensors"
        portrait of usada pekora, (masterpiece:1.2)
        Negative prompt: lowres
        Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 4077357776, Size: 512x512, Model hash: 45dee52b
        print "after"
        """)
        #expect(s.count == 3)
        guard case let .infotext(text, position) = s[1] else { Issue.record("\(s)"); return }
        #expect(text.hasPrefix("portrait of usada pekora") && text.hasSuffix("Model hash: 45dee52b"))
        #expect(position == p(2, 1))
    }

    @Test func errorsNamePositionAndExpectation() {
        #expect(error("print \"open")?.description == "t.sdscript:1:7: unterminated string (expected `\"` before the end of the line; use `\"\"\"` for text over several lines)")
        #expect(error("let = 3")?.description == "t.sdscript:1:5: expected a variable name after `let`, found `=`")
        #expect(error("for x 1..3 { }")?.description == "t.sdscript:1:7: expected `in` after `for x`, found `1`")
        #expect(error("print 3 )")?.description == "t.sdscript:1:9: unexpected `)`")
        #expect(error("print @")?.description == "t.sdscript:1:7: unexpected character `@`")
        #expect(error("print [1 2]")?.description == "t.sdscript:1:10: expected `,` or `]` in the list, found `2`")
        #expect(error("print 12ab")?.description == "t.sdscript:1:9: unexpected `a` after the number 12")
        #expect(error("print \"{x\"")?.description.hasPrefix("t.sdscript:1:8: `{` in a string is not closed") == true)
        #expect(error("= 3")?.description == "t.sdscript:1:1: expected a command, a prompt string, `let` or `for`, found `=`")
    }

    @Test func incompleteInputAsksForMoreLines() {
        for text in ["print [1,", "for i in 1..3 {", "print \"\"\"abc", "print 1 \\", "portrait of a cat, highly detailed"] {
            #expect(error(text)?.incomplete == true, "\(text)")
        }
        for text in ["print \"abc", "print ]"] { #expect(error(text)?.incomplete == false, "\(text)") }
        // A near-miss of a command is a command (the interpreter names the nearest one), not a paste.
        #expect(error("genrate cat") == nil)
    }
}

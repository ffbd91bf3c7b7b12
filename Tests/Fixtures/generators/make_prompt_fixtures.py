#!/usr/bin/env python3
"""Makes Tests/PromptingTests/Fixtures/prompts.json: what A1111's own prompt
parser (modules/prompt_parser.py) makes of a fixed list of prompts.

Rerun (needs lark in .venv-ref; A1111 pins lark==1.1.2 in
requirements_versions.txt, and this script was run with that version):
    .venv-ref/bin/pip install 'lark==1.1.2'
    .venv-ref/bin/python Tests/Fixtures/generators/make_prompt_fixtures.py

The script needs no network and no torch. It is deterministic: the same
Python + lark versions give a byte-identical file, whatever the hash seed
of the interpreter that runs it. It first runs the doctests of the copied
A1111 functions and stops unless exactly the one doctest that fails in A1111
itself fails (see EXPECTED_DOCTEST_FAILURES). It takes about a minute (32
interpreters for the schedule cases).

Sections of the JSON:
  "attention":  [{"text", "result": [[text, weight], ...]}]
                parse_prompt_attention(text). Weights are Python floats, written
                with repr() (shortest round-trip), so a Double decoder gets the
                same bits. A1111's BREAK marker is ["BREAK", -1] with an int -1;
                it is written as -1.0 here (same value; A1111 tests it with
                `weight == -1`). A prompt for which A1111 raises has
                {"text", "error": "ExceptionType: message"} instead of "result".
  "schedules":  [{"prompt", "parses", "by_steps": {"10": [[end_step, text], ...],
                "20": ..., "30": ...}}]
                get_learned_conditioning_prompt_schedules([prompt], steps)[0],
                with the default hires_steps=None, use_old_scheduling=False.
                "parses" says whether schedule_parser.parse(prompt) succeeds
                (when it does not, A1111 silently returns [[steps, prompt]]).
                Each case is run under PYTHONHASHSEED = 0..31 (one interpreter
                per seed, see HASH_SEEDS). When the seeds disagree (lark's
                Earley tie-breaking between parse trees follows set order), the
                case has "seed_dependent": true and "alternatives":
                [{"seeds": how many of the 32 seeds gave it, "by_steps": ...}]
                (most frequent first) instead of "by_steps". A1111 may give any
                of them, depending on the launch.
  "and_prompts": [{"prompts": [...], "indexes": [[[index, weight], ...], ...],
                "flat": [...]}]
                get_multicond_prompt_list(prompts): res_indexes (one list per
                prompt of (index into flat, weight)) and prompt_flat_list.
                Most cases hold one prompt; the last holds a batch of several,
                to show that equal sub-prompts share one flat entry.
"""

from __future__ import annotations

import doctest
import json
import os
import random
import subprocess
import sys
import tempfile

import lark

from fixture_support import ROOT  # noqa: E402  (the repository)
OUT = os.path.join(ROOT, "Tests/PromptingTests/Fixtures/prompts.json")
MAX_BYTES = 500_000
SCHEDULE_STEPS = (10, 20, 30)
# lark's Earley parser (ambiguity="resolve", the default A1111 uses) breaks
# some ties between equally good parse trees in set-iteration order, which
# depends on PYTHONHASHSEED. So for a few prompts A1111 itself gives different
# schedules from one launch to the next. Every schedule case is computed once
# per seed below (each in its own interpreter); a case whose result differs
# between seeds is written as "alternatives" instead of "by_steps".
HASH_SEEDS = tuple(range(32))
LARK_VERSION = "1.1.2"  # requirements_versions.txt of webui 1.x, v1.10.1 included

REFERENCE = {
    "repo": "AUTOMATIC1111/stable-diffusion-webui",
    "path": "modules/prompt_parser.py",
    "commit": "28bd8e142d5f77b71ae8d7d7140b5da1b3a49906",
    "note": "the parser as of webui 1.7.0 and later (hires_steps/use_old_scheduling, "
            "empty alternation options, whitespace around the (x:w) weight); "
            "sdshell targets v1.10.1",
}

NOTES = [
    "attention: brackets multiply every entry appended since the opening bracket, at the "
    "closing bracket, innermost first ((x) 1.1, [x] 1/1.1, (x:w) w); brackets still open at "
    "the end multiply afterwards, all round ones first, then all square ones. Then runs of "
    "equal weight merge (Python ==, so -0.0 merges with 0.0).",
    "attention: the weight token is :\\s*([+-]?[.\\d]+)\\s*\\) with Python's Unicode \\s and \\d "
    "(Arabic-Indic digits parse); float() of a malformed number ('1.2.3', '.', '..5') raises "
    "ValueError in A1111 (those cases have \"error\"). A lone backslash before any other "
    "character is dropped; \\( \\) \\[ \\] \\\\ give the character.",
    "attention: BREAK splits plain-text runs on \\s*\\bBREAK\\b\\s* (Unicode \\b: no split in "
    "'\u732bBREAK' or '\u00e9BREAK'). The ['BREAK', -1] entry is multiplied by enclosing "
    "brackets like any other; A1111's tokenizer only treats weight == -1 as a break.",
    "schedules: with the default hires_steps=None, use_old_scheduling=False, a `when` "
    "containing '.' means int(float(when) * steps) (truncation: 0.75*10 -> 7, 0.05*10 -> 0); "
    "any other number (also 1e1, 5e-1) int(float(when)); then min(steps, that). Values >= 1 "
    "become boundaries; the text at step s uses `from` while s <= when, so when <= 0 means "
    "`to` from step 1 and when >= steps means `from` throughout.",
    "schedules: an alternation adds every step 1..steps as a boundary and picks option "
    "(step - 1) % n; nested alternations see the same step. Empty options are ''.",
    "schedules: a prompt the grammar cannot parse (e.g. any '|' outside [a|b]) is returned "
    "unchanged as [[steps, prompt]], which disables every edit in it.",
    "and_prompts: split on \\bAND\\b (case-sensitive); each part is matched with "
    "^((?:\\s|.)*?)(?:\\s*:\\s*([-+]?(?:\\d+\\.?|\\d*\\.\\d+)))?\\s*$: leading whitespace "
    "stays in the text, trailing whitespace and a trailing :weight go.",
]


# --------------------------------------------------------------------------
# A1111's parser. It is not copied into this repository (AGPL-3.0): the script loads
# modules/prompt_parser.py of AUTOMATIC1111/stable-diffusion-webui at commit
# 28bd8e142d5f77b71ae8d7d7140b5da1b3a49906 from the path in $A1111_PROMPT_PARSER
# (default: .a1111/prompt_parser.py, git-ignored). Functions used: schedule_parser,
# get_learned_conditioning_prompt_schedules, SdConditioning, re_AND, re_weight,
# get_multicond_prompt_list, re_attention, re_break, parse_prompt_attention.
# --------------------------------------------------------------------------
import importlib.util  # noqa: E402

_PARSER_PATH = os.environ.get("A1111_PROMPT_PARSER", os.path.join(ROOT, ".a1111", "prompt_parser.py"))
if not os.path.exists(_PARSER_PATH):
    sys.exit(f"A1111's modules/prompt_parser.py is needed at {_PARSER_PATH} (see the comment above)")
_spec = importlib.util.spec_from_file_location("a1111_prompt_parser", _PARSER_PATH)
_a1111 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_a1111)
for _name in ("schedule_parser", "get_learned_conditioning_prompt_schedules", "SdConditioning", "re_AND", "re_weight",
              "get_multicond_prompt_list", "re_attention", "re_break", "parse_prompt_attention"):
    globals()[_name] = getattr(_a1111, _name)


# --------------------------------------------------------------------------
# Prompt lists.
# --------------------------------------------------------------------------

def attention_prompts():
    p = [
        # A1111's docstring examples, first.
        "normal text",
        "an (important) word",
        "(unbalanced",
        "\\(literal\\]",
        "(unnecessary)(parens)",
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        # Nesting, plain brackets.
        "(x)",
        "((x))",
        "(((x)))",
        "((((x))))",
        "(((((((((x)))))))))",
        "[x]",
        "[[x]]",
        "[[[x]]]",
        "[[[[[[[[[x]]]]]]]]]",
        "([x])",
        "[(x)]",
        "(a [b] c)",
        "[a (b) c]",
        "((a) b)",
        "(a (b))",
        "(a (b (c (d))))",
        "[a [b [c [d]]]]",
        "a ((b)) c [[d]] e",
        "(a)(b)",
        "(a) (b)",
        "[a][b]",
        # Explicit weights.
        "(x:1.3)",
        "(x:-0.5)",
        "(x:0)",
        "(x:0.0)",
        "(x:1)",
        "(x:1.)",
        "a (b:1.) c",
        "(x:.5)",
        "(x: 0.5 )",
        "(x:0.5 )",
        "(x: 0.5)",
        "(x:  1.25  )",
        "(x:\n1.25)",
        "(x:+1.2)",
        "(x:-1)",
        "(x:2.5)",
        "(x:10)",
        "(x:100)",
        "(x:0.001)",
        "(x:007)",
        "(x:1.2.3)",
        "(x:.)",
        "(x:..5)",
        "(x:-)",
        "(x:1e3)",
        "(x:1.3:1.2)",
        "(x:abc)",
        "(x:)",
        "(:1.5)",
        "(x :1.5)",
        "(x:1.5) (y:0.5)",
        "(x:1.3),(y:1.3)",
        "(x:1.5)(y:1.5)",
        "a (b:1.1) (c)",
        # Nested with explicit weights.
        "((x:1.5))",
        "((x):1.5)",
        "((x:1.5):1.5)",
        "(a (b:2) c:0.5)",
        "[(x:1.5)]",
        "([x]:1.5)",
        "[[(x:1.2)]]",
        "(((x:0.7)))",
        "((x:1.1):1.1)",
        "(x:0.1)(y:0.2)",
        "(x:0.3) (x:0.1)",
        "(a [b (c:1.4) d] e:0.9)",
        "[x:1.5]",
        "(x:1.5]",
        "[x:1.5)",
        # Escapes.
        "\\(x\\)",
        "\\[x\\]",
        "\\\\",
        "a \\\\ b",
        "\\\\(x)",
        "\\(x)",
        "(x\\)",
        "(x\\))",
        "\\x",
        "a\\",
        "\\",
        "\\:",
        "(x\\:1.5)",
        "\\((x)\\)",
        "\\[[x]\\]",
        "C:\\\\path\\\\file",
        "emoticon \\(^_^\\)",
        "\\\\\\(",
        "(\\\\)",
        # Unbalanced.
        "(a",
        "a)",
        "[a",
        "a]",
        "((a)",
        "(a))",
        "[[a]",
        "[a]]",
        ")(",
        "][",
        ")a(",
        "(a]",
        "[a)",
        "(a [b) c]",
        "a (b [c",
        "(((",
        ")))",
        "[[[",
        "]]]",
        "(x:1.5",
        "x:1.5)",
        "(a [b c",
        "[a (b c",
        # Empty.
        "",
        " ",
        "()",
        "[]",
        "(())",
        "[[]]",
        "()a",
        "a()b",
        "( )",
        "[ ]",
        "(x)()",
        ":",
        "::",
        # BREAK.
        "a BREAK b",
        "aBREAK b",
        "a BREAKb",
        "a BREAK",
        "BREAK b",
        "BREAKb",
        "BREAK",
        " BREAK ",
        "a  BREAK  b",
        "a\nBREAK\nb",
        "a\tBREAK\tb",
        "a BREAK BREAK b",
        "a BREAKBREAK b",
        "BREAK BREAK",
        "a, BREAK, b",
        "a,BREAK,b",
        "a break b",
        "a Break b",
        "a BREAK_ b",
        "a _BREAK b",
        "1BREAK 2",
        "a BREAK1 b",
        "(a BREAK b)",
        "[a BREAK b]",
        "(a BREAK b:1.5)",
        "(a BREAK b:0)",
        "(a BREAK b:-1)",
        "c (BREAK:-1) d",
        "(a) BREAK (b)",
        "a BREAK (b:1.2) BREAK c",
        "a\u00a0BREAK\u00a0b",
        "a\u3000BREAK\u3000b",
        "\u732bBREAK \u72ac",
        "\u732b BREAK \u72ac",
        "\u00e9BREAK b",
        "a BREAK\\(b\\)",
        "\\(BREAK\\)",
        "a\\ BREAK b",
        "a:BREAK:b",
        # Unicode.
        "\u65e5\u672c\u8a9e\u306e(\u732b:1.2)\u3068[\u72ac]",
        "caf\u00e9 (cr\u00e8me br\u00fbl\u00e9e)",
        "\U0001f431 (\U0001f436:1.3) [\U0001f42d]",
        "e\u0301 (combining e\u0301)",
        "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac ((\u03bb\u03ad\u03be\u03b7))",
        "\u0440\u0443\u0441\u0441\u043a\u0438\u0439 (\u0442\u0435\u043a\u0441\u0442:0.8)",
        "\u200bzero(width)",
        "full\uff08width\uff09parens",
        "\uff41\uff08\uff42\uff1a\uff11\uff0e\uff12\uff09",
        "(x:\u0661.\u0665)",
        # Commas, numbers, colons.
        "a, b, (c, d), [e, f]",
        "1girl, (solo:1.2), 2boys",
        "(1.5)",
        "(1:1.5)",
        "(x:1.5), 3.14, (0.5:0.5)",
        "masterpiece, best quality, (ultra-detailed:1.2), [[lowres]], ((bad hands))",
        "a:b:c",
        "a : b",
        "time 12:30",
        "(ratio 16:9)",
        "(16:9)",
        "<lora:name:0.8> (x)",
        "(<lora:foo:1.2>)",
        "a\n(b)\nc",
        "line1\r\nline2 (x)",
    ]
    # Very long prompts.
    p.append(", ".join("word%d" % i for i in range(200)))
    p.append("(" * 40 + "deep" + ")" * 40)
    p.append("[" * 40 + "deep" + "]" * 40)
    p.append(" ".join("(w%d:%d.%d)" % (i, i % 3, i % 10) if i % 2 else "[w%d]" % i for i in range(120)))
    rng = random.Random(20240612)
    pieces = ["cat", "dog", ", ", " ", "(", ")", "[", "]", ":1.2)", ":0.5)", " BREAK ",
              "\\(", "\\)", "\\\\", "red", "blue", "1girl", ":", "(x:1.1)", "[y]"]
    for _ in range(6):
        p.append("".join(pieces[rng.randrange(len(pieces))] for _ in range(rng.randrange(60, 200))))
    return p


def schedule_prompts():
    p = [
        # A1111's doctest and header-comment examples, first.
        "test",
        "a [b:3]",
        "a [b: 3]",
        "a [[[b]]:2]",
        "[(a:2):3]",
        "a [b : c : 1] d",
        "a[b:[c:d:2]:1]e",
        "a [unbalanced",
        "a [b:.5] c",
        "a [{b|d{:.5] c",
        "((a][:b:c [d:3]",
        "[a|(b:1.1)]",
        "[fe|]male",
        "[fe|||]male",
        "a [b:1.5] c",
        "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
        "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]",
        # [from:to:when], when an integer step.
        "[a:b:5]",
        "[a:b:0]",
        "[a:b:1]",
        "[a:b:9]",
        "[a:b:10]",
        "[a:b:15]",
        "[a:b:20]",
        "[a:b:100]",
        "[a:b:-1]",
        "[a:b:+3]",
        "[a:b:007]",
        "[a:b:1e1]",
        "[a:b:5e-1]",
        # when a fraction (contains '.').
        "[a:b:0.0]",
        "[a:b:0.05]",
        "[a:b:0.1]",
        "[a:b:0.15]",
        "[a:b:0.25]",
        "[a:b:0.3]",
        "[a:b:0.33]",
        "[a:b:0.35]",
        "[a:b:0.45]",
        "[a:b:0.5]",
        "[a:b:0.55]",
        "[a:b:0.6]",
        "[a:b:0.7]",
        "[a:b:0.9]",
        "[a:b:.75]",
        "[a:b:0.999]",
        "[a:b:1.0]",
        "[a:b:1.5]",
        "[a:b:3.]",
        "[a:b:5.5]",
        "[a:b:-0.5]",
        "[a:b:2.5e-1]",
        # Whitespace around the parts.
        "[a:b: 5 ]",
        "[a:b:5 ]",
        "[a:b :5]",
        "[a: b:5]",
        "[ a : b : 3 ]",
        "[a:b:\n5]",
        # [to:when], [from::when], empty parts.
        "[to:5]",
        "[to:0.5]",
        "a [to:0] b",
        "[from::5]",
        "[from::0.5]",
        "[:to:5]",
        "[::5]",
        "[:5]",
        # Not a schedule.
        "[a:b:c]",
        "[a:b:0x5]",
        "[a:b:5",
        "a:b:5]",
        "[a:b:5]]",
        "[[a:b:5]",
        "(a:b:5)",
        "[a|b:5]",
        "a|b",
        "a | b [c:d:5]",
        "[a:b:5] | c",
        # Several and nested.
        "[a:b:5] [c:d:10]",
        "[a:b:5][c:d:5]",
        "[a:b:0.3] and [c:d:0.7]",
        "[a:[b:c:7]:3]",
        "[[a:b:3]:c:7]",
        "[[a:b:7]:c:3]",
        # Alternation.
        "[a|b]",
        "[a|b|c]",
        "[a|b|c|d]",
        "[a|]",
        "[|a]",
        "[|]",
        "[a||b]",
        "[a | b]",
        "[[a|b]|c]",
        "[a|[b|c]]",
        "[a|b] [c|d|e]",
        "[[a|b]:c:5]",
        "[a:[b|c]:5]",
        # Escapes inside.
        "[\\[a\\]:b:5]",
        "[a\\:b:c:5]",
        "[a\\|b|c]",
        "\\[a:b:5\\]",
        "[a:b\\]:5]",
        "[a:b:5\\]",
        "[a\\\\:b:5]",
        # With attention syntax.
        "[(a:1.2)|[b]]",
        "([a|b]:1.3)",
        "(([a:b:5]))",
        "[(a:1.5):(b:0.5):0.5]",
        "[a:(b:1.2):0.4] c",
        "[a:b:5] BREAK [c|d]",
        "(a:[b:c:5])",
        "[a:b:5]:1.2)",
        # Other text.
        "[\u732b:\u72ac:0.5]",
        "[a b c:d e f:0.5]",
        "[a, b:c, d:3]",
        "masterpiece, [dog:cat:0.4], (best quality:1.2), [red|blue] eyes, [hat::12]",
        # Stray brackets/colons after an edit: lark's tie-breaking between
        # parse trees depends on PYTHONHASHSEED (see HASH_SEEDS).
        "x [a:b:3]]",
        ")[a:b:3]]",
        "(c:1.2)[a:b:3]:",
        ",[a:b:3])[a:b:3]",
        "([a:b:3])]",
        "(b[a:b:3][a:b:3])]",
    ]
    return p


def and_prompts():
    single = [
        "a AND b",
        "a AND b :1.2",
        "a :0.5 AND b :1.5",
        "a:1.2 AND b:-0.3",
        "a AND a",
        "a AND",
        "AND b",
        "a ANDb AND c",
        "ANDROID AND HAND",
        "a and b",
        "a AND b:1.",
        "a AND b:.5",
        "a AND (b:1.2) :0.8",
        "a\nAND\nb :2",
        "a AND [b:c:5] :1.1",
        "a AND b : 1.5 ",
        "a AND b:1e2",
        "a AND b:+2",
        "a:1:2 AND b",
        "  a  AND  b  ",
    ]
    cases = [[s] for s in single]
    cases.append(["a AND b", "a AND c :2", " b:0.5"])
    return cases


# --------------------------------------------------------------------------
# Running the reference.
# --------------------------------------------------------------------------

# A1111's own doctest that fails against its own code: the grammar's `plain`
# excludes '|', so "{b|d{" cannot be parsed and the prompt is returned as is.
# The comment on it in A1111 says "not handling this right now". Checked with
# lark 1.0.0, 1.1.2, 1.1.9 and 1.3.1: it fails with all of them.
EXPECTED_DOCTEST_FAILURES = {
    'g("a [{b|d{:.5] c")  # not handling this right now\n':
        "[[10, 'a [{b|d{:.5] c']]\n",
}


class _Runner(doctest.DocTestRunner):
    def __init__(self):
        super().__init__(optionflags=doctest.NORMALIZE_WHITESPACE)
        self.unexpected = []
        self.expected_seen = []

    def report_failure(self, out, test, example, got):
        if EXPECTED_DOCTEST_FAILURES.get(example.source) == got:
            self.expected_seen.append(example.source)
        else:
            self.unexpected.append((example.source, example.want, got))

    def report_unexpected_exception(self, out, test, example, exc_info):
        self.unexpected.append((example.source, example.want, repr(exc_info[1])))


def run_doctests():
    runner = _Runner()
    n = 0
    for fn in (get_learned_conditioning_prompt_schedules, parse_prompt_attention):
        for test in doctest.DocTestFinder().find(fn, fn.__name__, globs=dict(globals())):
            n += len(test.examples)
            runner.run(test, out=lambda _s: None)
    if runner.unexpected or sorted(runner.expected_seen) != sorted(EXPECTED_DOCTEST_FAILURES):
        for src, want, got in runner.unexpected:
            print("doctest failed: %s  want %s  got %s" % (src.strip(), want.strip(), got.strip()), file=sys.stderr)
        sys.exit("A1111 doctests did not give the expected results")
    return n


def schedules_by_prompt():
    """{prompt: {"10": schedule, ...}} for this interpreter's hash seed."""
    out = {}
    for prompt in schedule_prompts():
        by_steps = {}
        for steps in SCHEDULE_STEPS:
            sched = get_learned_conditioning_prompt_schedules([prompt], steps)[0]
            for end, text in sched:
                assert type(end) is int and type(text) is str, (prompt, end, text)
            by_steps[str(steps)] = [[end, text] for end, text in sched]
        out[prompt] = by_steps
    return out


def schedules_over_seeds():
    """[(seed, {prompt: by_steps})] with each seed run in a fresh interpreter."""
    runs = []
    for seed in HASH_SEEDS:
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--schedules-json"],
                           env=env, stdout=subprocess.PIPE, check=True)
        runs.append((seed, json.loads(r.stdout.decode("utf-8"))))
    return runs


def as_float_weights(res):
    out = []
    for text, w in res:
        assert isinstance(w, (int, float)), w
        out.append([text, float(w)])
    return out


def build():
    attention = []
    for text in attention_prompts():
        try:
            attention.append({"text": text, "result": as_float_weights(parse_prompt_attention(text))})
        except Exception as e:  # A1111 raises for some inputs, e.g. (x:.)
            attention.append({"text": text, "error": "%s: %s" % (type(e).__name__, e)})

    runs = schedules_over_seeds()
    schedules = []
    for prompt in schedule_prompts():
        try:
            schedule_parser.parse(prompt)
            parses = True
        except lark.exceptions.LarkError:
            parses = False
        seen = {}
        for seed, res in runs:
            key = json.dumps(res[prompt], sort_keys=True, ensure_ascii=False)
            seen.setdefault(key, (res[prompt], []))[1].append(seed)
        case = {"prompt": prompt, "parses": parses}
        if len(seen) == 1:
            case["by_steps"] = next(iter(seen.values()))[0]
        else:
            case["seed_dependent"] = True
            alts = sorted(seen.items(), key=lambda kv: (-len(kv[1][1]), kv[0]))
            case["alternatives"] = [{"seeds": len(seeds), "by_steps": by_steps}
                                    for _, (by_steps, seeds) in alts]
        schedules.append(case)

    multicond = []
    for prompts in and_prompts():
        res_indexes, flat, _ = get_multicond_prompt_list(prompts)
        multicond.append({
            "prompts": prompts,
            "indexes": [[[i, float(w)] for i, w in idx] for idx in res_indexes],
            "flat": list(flat),
        })

    for name, items, key in (("attention", attention, "text"), ("schedules", schedules, "prompt")):
        seen = set()
        for item in items:
            assert item[key] not in seen, (name, item[key])
            seen.add(item[key])

    return {
        "_comment": "Generated by Tests/Fixtures/generators/make_prompt_fixtures.py from A1111's "
                    "modules/prompt_parser.py. Do not edit; rerun: "
                    ".venv-ref/bin/python Tests/Fixtures/generators/make_prompt_fixtures.py",
        "generator": "Tests/Fixtures/generators/make_prompt_fixtures.py",
        "reference": REFERENCE,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "lark": lark.__version__,
        "schedule_parameters": {
            "signature": "get_learned_conditioning_prompt_schedules(prompts, base_steps, "
                         "hires_steps=None, use_old_scheduling=False)",
            "hires_steps": None,
            "use_old_scheduling": False,
            "steps": list(SCHEDULE_STEPS),
            "note": "defaults used for every case. With them: a `when` whose text "
                    "contains '.' is int(float(when) * steps), any other (including "
                    "1e1 or 5e-1) is int(float(when)); then min(steps, that). A "
                    "boundary < 1 is not added to the step list but is still compared "
                    "(step <= when). A1111 passes hires_steps only for the hires pass "
                    "and use_old_scheduling from opts.use_old_scheduling (default False).",
        },
        "hash_seeds": len(HASH_SEEDS),
        "notes": NOTES,
        "attention": attention,
        "schedules": schedules,
        "and_prompts": multicond,
    }


def dump(data):
    # One case per line: readable diffs, small file.
    lines = ["{"]
    keys = list(data)
    for k_i, k in enumerate(keys):
        comma = "," if k_i + 1 < len(keys) else ""
        v = data[k]
        if isinstance(v, list):
            lines.append(json.dumps(k) + ": [")
            for i, item in enumerate(v):
                sep = "," if i + 1 < len(v) else ""
                lines.append("  " + json.dumps(item, ensure_ascii=False, allow_nan=False) + sep)
            lines.append("]" + comma)
        else:
            lines.append(json.dumps(k) + ": " + json.dumps(v, ensure_ascii=False, allow_nan=False) + comma)
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == data
    return text.encode("utf-8")


def main():
    if sys.argv[1:] == ["--schedules-json"]:
        sys.stdout.write(json.dumps(schedules_by_prompt(), ensure_ascii=True))
        return
    if lark.__version__ != LARK_VERSION:
        sys.exit("need lark==%s (A1111's pin), found %s" % (LARK_VERSION, lark.__version__))
    n_doctests = run_doctests()
    data = build()
    blob = dump(data)
    if len(blob) > MAX_BYTES:
        sys.exit("fixture too big: %d bytes" % len(blob))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(OUT), prefix=".prompts.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o644)
        os.replace(tmp, OUT)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    n_err = sum(1 for a in data["attention"] if "error" in a)
    n_noparse = sum(1 for s in data["schedules"] if not s["parses"])
    n_seed = sum(1 for s in data["schedules"] if s.get("seed_dependent"))
    print("wrote %s: %d bytes; %d A1111 doctest examples checked; attention %d (%d raise); "
          "schedules %d x %d step counts (%d do not parse, %d depend on PYTHONHASHSEED); "
          "and_prompts %d; lark %s" % (
              os.path.relpath(OUT, ROOT), len(blob), n_doctests, len(data["attention"]), n_err,
              len(data["schedules"]), len(SCHEDULE_STEPS), n_noparse, n_seed,
              len(data["and_prompts"]), lark.__version__))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Dumps the tables of ftfy.fix_text that CLIP tokenization depends on, for the Swift port
(Sources/Prompting/TextCleaner.swift). Rerun: .venv-ref/bin/python Tests/Fixtures/generators/make_ftfy_tables.py
Writes Sources/Prompting/Resources/ftfy_tables.json:
  html_entities: ftfy's HTML_ENTITIES (HTML5 names ending in ';' plus the upper-case forms of
                 all-lower-case names), "&name;" -> text
  invalid_charrefs: html.unescape's table for numeric references (code point -> text)
  invalid_codepoints: numeric references html.unescape drops
  ligatures: ftfy.chardata.LIGATURES (code point -> text)
  width_map: ftfy.chardata.WIDTH_MAP (code point -> text)
  control_chars: ftfy.chardata.CONTROL_CHARS keys (removed)
  c1_map: U+0080..U+009F -> sloppy-windows-1252 decoding (fix_c1_controls)
  fix_encoding: what ftfy's mojibake repair needs: the single-byte encodings it tries, in order,
                with each byte's character; its regexes (Python verbose syntax; the byte patterns
                as Latin-1 text)
"""
import html, html.entities, json, os, sys
import ftfy, ftfy.chardata as cd, ftfy.badness as bd
import ftfy.bad_codecs  # registers the sloppy codecs
from fixture_support import ROOT
from ftfy.fixes import HTML_ENTITIES


def charmap(encoding):
    chars = []
    for b in range(256):
        try:
            chars.append(bytes([b]).decode(encoding))
        except UnicodeDecodeError:
            chars.append(None)
    return chars


def latin1(pattern):
    return pattern.decode("latin-1") if isinstance(pattern, bytes) else pattern

out = {
    "ftfy": ftfy.__version__,
    "html_entities": dict(sorted(HTML_ENTITIES.items())),
    "invalid_charrefs": {str(k): v for k, v in sorted(html._invalid_charrefs.items())},
    "invalid_codepoints": sorted(html._invalid_codepoints),
    "ligatures": {str(k): v for k, v in sorted(cd.LIGATURES.items())},
    "width_map": {str(k): v for k, v in sorted(cd.WIDTH_MAP.items())},
    "control_chars": sorted(cd.CONTROL_CHARS.keys()),
    "c1_map": {str(c): bytes([c]).decode("sloppy-windows-1252") for c in range(0x80, 0xA0)},
    "fix_encoding": {
        "encodings": [{"name": e, "chars": charmap(e), "possible": cd.ENCODING_REGEXES[e].pattern}
                      for e in cd.CHARMAP_ENCODINGS],
        "badness": bd.BADNESS_RE.pattern,
        "utf8_detector": cd.UTF8_DETECTOR_RE.pattern,
        "altered_utf8": latin1(cd.ALTERED_UTF8_RE.pattern),
        "a_grave_word": latin1(__import__("ftfy.fixes").fixes.A_GRAVE_WORD_RE.pattern),
        "lossy_utf8": latin1(cd.LOSSY_UTF8_RE.pattern),
    },
}
path = os.path.join(ROOT, "Sources", "Prompting", "Resources", "ftfy_tables.json")
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
os.replace(tmp, path)
print(path, os.path.getsize(path), "bytes;", len(out["html_entities"]), "entities")

#!/usr/bin/env python3
"""Dumps the tables of ftfy.fix_text that CLIP tokenization depends on, for the Swift port
(Sources/Prompting/TextCleaner.swift). Rerun: .venv-ref/bin/python scripts/make_ftfy_tables.py
Writes Sources/Prompting/Resources/ftfy_tables.json:
  html_entities: ftfy's HTML_ENTITIES (HTML5 names ending in ';' plus the upper-case forms of
                 all-lower-case names), "&name;" -> text
  invalid_charrefs: html.unescape's table for numeric references (code point -> text)
  invalid_codepoints: numeric references html.unescape drops
  ligatures: ftfy.chardata.LIGATURES (code point -> text)
  width_map: ftfy.chardata.WIDTH_MAP (code point -> text)
  control_chars: ftfy.chardata.CONTROL_CHARS keys (removed)
  c1_map: U+0080..U+009F -> sloppy-windows-1252 decoding (fix_c1_controls)
"""
import html, html.entities, json, os, sys
import ftfy, ftfy.chardata as cd
from ftfy.fixes import HTML_ENTITIES

out = {
    "ftfy": ftfy.__version__,
    "html_entities": dict(sorted(HTML_ENTITIES.items())),
    "invalid_charrefs": {str(k): v for k, v in sorted(html._invalid_charrefs.items())},
    "invalid_codepoints": sorted(html._invalid_codepoints),
    "ligatures": {str(k): v for k, v in sorted(cd.LIGATURES.items())},
    "width_map": {str(k): v for k, v in sorted(cd.WIDTH_MAP.items())},
    "control_chars": sorted(cd.CONTROL_CHARS.keys()),
    "c1_map": {str(c): bytes([c]).decode("sloppy-windows-1252") for c in range(0x80, 0xA0)},
}
path = os.path.join(os.path.dirname(__file__), "..", "Sources", "Prompting", "Resources", "ftfy_tables.json")
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
os.replace(tmp, path)
print(path, os.path.getsize(path), "bytes;", len(out["html_entities"]), "entities")

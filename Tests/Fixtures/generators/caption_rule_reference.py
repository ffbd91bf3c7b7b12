"""Prints the expected captions for TrainingTemplateTests: A1111's filename-to-words rule
(default options) is `re.sub(r"^[-\\d]+\\s*", "", stem)`; this runs it with Python's own `re`.
    .venv-ref/bin/python Tests/Fixtures/generators/caption_rule_reference.py
(or any python3); paste the output into Tests/TrainingTests/TrainingTemplateTests.swift."""
import json
import re

STEMS = ["00012-a red car", "00012-1234567890-a red car, blue sky", "-- 42  cat", "cat 123", "12345",
         "\u0663\u0664- arabic digits", "7\u3000wide space", "  leading space", "a-1"]
rule = re.compile(r"^[-\d]+\s*")
for stem in STEMS:
    print(f"({json.dumps(stem)}, {json.dumps(rule.sub('', stem))}),")

#!/usr/bin/env python3
"""Reads PNGs written by sdshell with sd-parsers (PyPI; an independent A1111 infotext reader) and
checks prompt, negative prompt, seed, steps, sampler and CFG scale against the PNG's own
`parameters` text as sdshell wrote it. Exits 1 on any mismatch.

    .venv-ref/bin/python scripts/check_png_parameters.py outputs/txt2img/*.png
"""
import re
import sys

from PIL import Image
from sd_parsers import ParserManager


def expected(text):
    lines = text.strip().split("\n")
    params = dict(re.findall(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', lines[-1]))
    neg = [l[len("Negative prompt:"):].strip() for l in lines if l.startswith("Negative prompt:")]
    prompt = "\n".join(l for l in lines[:-1] if not l.startswith("Negative prompt:"))
    return prompt, (neg[0] if neg else ""), params


def main(paths):
    manager = ParserManager()
    failures = 0
    for path in paths:
        info = manager.parse(path)
        text = Image.open(path).info["parameters"]
        prompt, negative, params = expected(text)
        if info is None:
            print(f"{path}: sd-parsers found no parameters"); failures += 1; continue
        got_prompt = " ".join(p.value for p in info.prompts)
        got_negative = " ".join(p.value for p in info.negative_prompts)
        sampler = info.samplers[0] if info.samplers else None
        checks = {
            "prompt": (got_prompt, prompt),
            "negative": (got_negative, negative),
            "sampler": (sampler.name if sampler else None, params.get("Sampler")),
            "seed": (str(sampler.parameters.get("seed")) if sampler else None, params.get("Seed")),
            "steps": (str(sampler.parameters.get("steps")) if sampler else None, params.get("Steps")),
            "cfg": (str(sampler.parameters.get("cfg_scale")) if sampler else None, params.get("CFG scale")),
        }
        bad = {k: v for k, v in checks.items() if v[0] != v[1]}
        print(f"{path}: {'OK' if not bad else 'MISMATCH ' + repr(bad)}  ({info.generator})")
        failures += bool(bad)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

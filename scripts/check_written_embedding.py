#!/usr/bin/env python3
"""Checks an A1111-style textual-inversion embedding written by sdshell.

    .venv-ref/bin/python scripts/check_written_embedding.py FILE.pt NAME VECTORS DIM

Loads FILE.pt with torch.load(weights_only=True) (so a file that needs any
global outside torch's weights-only allowlist fails), then checks what
AUTOMATIC1111's loader relies on:
  * a dict with the keys string_to_token, string_to_param, name, step,
    sd_checkpoint, sd_checkpoint_name;
  * string_to_token == {"*": <int>};
  * string_to_param == {"*": <float tensor of shape [VECTORS, DIM]>}, finite;
  * name == NAME, step an int, sd_checkpoint / sd_checkpoint_name str or None.
Prints the file format, dtype, shape and the sha256 of the values (contiguous
row-major little-endian bytes in the stored dtype, the same convention as
Tests/FormatsTests/Fixtures/manifest.json). Exits 1 on any failure, 2 on bad
usage.
"""

import hashlib
import sys
import zipfile

import torch

KEYS = ["string_to_token", "string_to_param", "name", "step",
        "sd_checkpoint", "sd_checkpoint_name"]


def values_sha256(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        a = t.view(torch.int16).numpy()
    else:
        a = t.numpy()
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path, name = argv[1], argv[2]
    try:
        vectors, dim = int(argv[3]), int(argv[4])
    except ValueError:
        print("VECTORS and DIM must be integers", file=sys.stderr)
        return 2

    errors = []

    def check(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    fmt = "torch-zip" if zipfile.is_zipfile(path) else "torch-legacy"
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - report any load failure
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "WeightsUnpickler" in ln or "GLOBAL" in ln),
                   lines[0] if lines else "")
        print(f"FAIL: torch.load(weights_only=True) failed: {type(e).__name__}: {why}")
        return 1

    if not check(isinstance(data, dict), f"top level is {type(data).__name__}, not dict"):
        return report(errors)
    missing = [k for k in KEYS if k not in data]
    check(not missing, f"missing keys: {missing}")
    extra = [k for k in data if k not in KEYS]

    stt = data.get("string_to_token")
    check(isinstance(stt, dict) and list(stt) == ["*"]
          and isinstance(stt["*"], int) and not isinstance(stt["*"], bool),
          f"string_to_token should be {{'*': int}}, got {stt!r}")

    stp = data.get("string_to_param")
    t = None
    if check(isinstance(stp, dict) and list(stp) == ["*"],
             f"string_to_param should be a dict with the single key '*', got {type(stp).__name__}"
             + (f" with keys {list(stp)}" if isinstance(stp, dict) else "")):
        t = stp["*"]
        if check(isinstance(t, torch.Tensor), f"string_to_param['*'] is {type(t).__name__}"):
            check(t.is_floating_point(), f"dtype {t.dtype} is not floating point")
            check(tuple(t.shape) == (vectors, dim),
                  f"shape {list(t.shape)} != [{vectors}, {dim}]")
            if t.is_floating_point():
                check(bool(torch.isfinite(t.float()).all()), "values contain NaN or inf")
        else:
            t = None

    check(data.get("name") == name, f"name {data.get('name')!r} != {name!r}")
    step = data.get("step")
    check(isinstance(step, int) and not isinstance(step, bool),
          f"step should be an int, got {step!r}")
    for k in ("sd_checkpoint", "sd_checkpoint_name"):
        if k in data:
            check(data[k] is None or isinstance(data[k], str),
                  f"{k} should be str or None, got {type(data[k]).__name__}")

    print(f"file:   {path} ({fmt})")
    print(f"name:   {data.get('name')!r}  step: {step!r}  token: {stt!r}")
    print(f"ckpt:   {data.get('sd_checkpoint')!r} / {data.get('sd_checkpoint_name')!r}")
    if extra:
        print(f"extra keys (allowed): {extra}")
    if t is not None:
        print(f"tensor: dtype {str(t.dtype).replace('torch.', '')} shape {list(t.shape)} "
              f"requires_grad {t.requires_grad}")
        print(f"sha256: {values_sha256(t)}")
    return report(errors)


def report(errors):
    for e in errors:
        print(f"FAIL: {e}")
    if not errors:
        print("OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/rng.json: reference random streams for
sdshell's two seeded noise sources.

Rerun (after scripts/setup_reference_env.sh):
    .venv-ref/bin/python Tests/Fixtures/generators/make_rng_fixtures.py

"cpu": torch's CPU generator (mt19937 + torch's normal sampling), i.e. what
    `torch.randn(shape, generator=torch.Generator().manual_seed(seed))` gives
    and what A1111 uses with "Random number generator source: CPU".
    Torch's CPU randn has two paths for float32:
      * numel < 16 (or non-contiguous): one value at a time through
        at::normal_distribution<double>, which makes two Box-Muller values from
        two 53-bit uniforms and CACHES the second one in the generator; the
        next small draw (even in a later randn call) uses the cached value.
      * numel >= 16: normal_fill: fill the tensor with float32 uniforms
        (24-bit), then Box-Muller in blocks of 16 (u1 = 1 - data[j],
        u2 = data[j + 8]; out[j] = r*cos, out[j + 8] = r*sin); when numel % 16
        != 0 the last 16 values are redrawn (16 fresh uniforms) and
        transformed again. This path neither reads nor writes the cache.
    The "cpu_sequence" case shows both: randn(3), randn(4, 8, 8), randn(5)
    from one generator seeded 7.
"nv": A1111's "NV" source (modules/rng_philox.py): Philox-4x32-10 counter
    RNG + Box-Muller in float64, imitating torch.randn on CUDA. Re-implemented
    in fixture_support.py (PhiloxGenerator) and checked against the published example
    Generator(0).randn((3, 4))[0] == [-0.92466259, -0.42534415, -2.6438457, 0.14518388].
    The generator's offset starts at 0 and goes up by one per randn call
    ("nv_sequence" shows two calls).

File layout:
    {"generator", "torch", "notes",
     "cpu": [CASE, ...], "cpu_sequence": SEQ,
     "nv": [CASE, ...], "nv_sequence": SEQ}
    CASE = {"seed", "shape", "values": [...]}                    (full)
         | {"seed", "shape", "first": [64], "last": [64], "sum", "sumsq"}
           (big shapes: first/last 64 values in row-major order, plus the
            float64 sum and sum of squares of all float32 values)
    SEQ  = {"seed", "draws": [{"shape", "values"}, ...]}  in call order.
Floats are the exact float32 values written as Python floats (shortest repr
of that double), so parsing to Double and converting to Float is exact.
"""

import json
import os

import numpy as np
import torch

from fixture_support import ROOT, PhiloxGenerator, _check_nv

OUT_PATH = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "rng.json")
GENERATOR = "Tests/Fixtures/generators/make_rng_fixtures.py"

SEEDS = [0, 1, 42, 12345, 4294967294]
SIZES = list(range(1, 21))
BIG_SEEDS = [0, 42]
BIG_SHAPE = [4, 64, 64]
MID_SHAPE = [4, 8, 8]


# --- A1111 NV RNG (Philox 4x32-10): fixture_support.PhiloxGenerator, checked by _check_nv


# --- helpers -----------------------------------------------------------------

def floats(a):
    a = np.asarray(a, dtype=np.float32).reshape(-1)
    return [float(v) for v in a]


def full_case(seed, shape, values):
    return {"seed": seed, "shape": list(shape), "values": floats(values)}


def summary_case(seed, shape, values):
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    d = v.astype(np.float64)
    return {"seed": seed, "shape": list(shape),
            "first": floats(v[:64]), "last": floats(v[-64:]),
            "sum": float(d.sum()), "sumsq": float((d * d).sum())}


def torch_randn(seed, shape):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32).numpy()


def main():
    torch.set_num_threads(1)
    _check_nv()

    cpu = []
    for seed in SEEDS:
        for n in SIZES:
            cpu.append(full_case(seed, [n], torch_randn(seed, [n])))
    for seed in BIG_SEEDS:
        cpu.append(summary_case(seed, BIG_SHAPE, torch_randn(seed, BIG_SHAPE)))
    for seed in BIG_SEEDS:
        cpu.append(full_case(seed, MID_SHAPE, torch_randn(seed, MID_SHAPE)))

    g = torch.Generator().manual_seed(7)
    seq = []
    for shape in ([3], [4, 8, 8], [5]):
        seq.append({"shape": shape, "values": floats(torch.randn(*shape, generator=g).numpy())})
    cpu_sequence = {"seed": 7, "draws": seq}

    nv = []
    for seed in SEEDS:
        for n in SIZES:
            nv.append(full_case(seed, [n], PhiloxGenerator(seed).randn((n,))))
    for seed in BIG_SEEDS:
        nv.append(summary_case(seed, BIG_SHAPE, PhiloxGenerator(seed).randn(tuple(BIG_SHAPE))))
    for seed in BIG_SEEDS:
        nv.append(full_case(seed, MID_SHAPE, PhiloxGenerator(seed).randn(tuple(MID_SHAPE))))
    pg = PhiloxGenerator(7)
    nseq = []
    for shape in ([4, 8, 8], [5]):
        nseq.append({"shape": shape, "values": floats(pg.randn(tuple(shape)))})
    nv_sequence = {"seed": 7, "draws": nseq}

    doc = {
        "generator": GENERATOR,
        "torch": torch.__version__,
        "notes": {
            "cpu": "torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=float32); "
                   "a fresh generator per case except cpu_sequence",
            "nv": "A1111 modules/rng_philox.py Generator(seed).randn(shape); a fresh generator per case "
                  "except nv_sequence; offset starts at 0, +1 per randn call; element i uses counter "
                  "[offset, 0, i, 0], key [seed & 0xFFFFFFFF, seed >> 32]",
            "cpu_exactness": "numel < 16: double-precision Box-Muller from 53-bit uniforms, then cast; a "
                             "re-implementation with libm doubles reproduces it bit for bit. numel >= 16: float32 "
                             "log/sqrt/cos/sin, which torch vectorises per CPU capability (see cpu_capability), so "
                             "an independent float32 re-implementation agrees only to a few ulps (max 2.4e-7 "
                             "seen on these cases); compare those with a small tolerance",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "summary": "first/last = first/last 64 values in row-major order; sum/sumsq in float64 over "
                       "all float32 values",
        },
        "cpu": cpu,
        "cpu_sequence": cpu_sequence,
        "nv": nv,
        "nv_sequence": nv_sequence,
    }
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes)")


if __name__ == "__main__":
    main()

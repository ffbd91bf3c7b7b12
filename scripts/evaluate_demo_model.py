#!/usr/bin/env python3
"""Checks how well models/demo.safetensors follows prompts on the HELD-OUT
(colour, shape, background) combinations of the demo dataset
(Tests/Fixtures/generators/make_demo_data.py; defined in fixture_support.py there).

    .venv-ref/bin/python scripts/evaluate_demo_model.py \
        [--sdshell .build/debug/sdshell] [--model models/demo.safetensors] \
        [--seeds 8] [--first-seed 1000] [--outdir /tmp/demo-eval] [--real 600] \
        [--combos held-out|train]
(SDSHELL_THREADS=1 in the environment keeps sdshell to one thread: much
faster than 2 threads when another process is busy on a 2-core machine.)

1. A hand-written classifier for the dataset (no learning):
     * every pixel gets the nearest named colour of fixture_support.COLOURS
       (Euclidean RGB);
     * background = the majority colour of the border ring (outer 3 pixels);
     * shape colour = the majority colour of the pixels whose colour is not
       the background's (edge blends are a minority);
     * shape mask = pixels of the shape colour, largest 4-connected component;
       fill ratio = mask area / its bounding-box area:
       >= 0.89 square (1), >= 0.64 circle (pi/4 = 0.785), else triangle (1/2).
   It is first run on REAL_COUNT freshly drawn dataset images of ALL 90
   combinations (seed REAL_SEED) and its accuracy there is reported.
2. sdshell generates, for each held-out caption, --seeds images
   (seeds first-seed .. first-seed+seeds-1, 64x64, 20 steps, CFG 7, Euler a,
   rng cpu: sdshell's defaults), by running the binary with -e statements.
3. The classifier's reading of each generated image is compared with its
   prompt: agreement for colour, background, shape, and all three.
Writes OUTDIR/report.json and prints a summary.
"""

import argparse
import glob
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Fixtures", "generators"))
import fixture_support as data  # noqa: E402  (the demo dataset)

REAL_SEED = 31337
REAL_COUNT = 600
NAMES = data.COLOUR_NAMES
PALETTE = np.array([data.COLOURS[n] for n in NAMES], np.float32)


def largest_component(mask):
    from scipy import ndimage
    lab, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def classify(img):
    """img: uint8 [H, W, 3] -> dict(colour, shape, background, fill)."""
    x = img.astype(np.float32)
    d = ((x[:, :, None, :] - PALETTE[None, None]) ** 2).sum(-1)
    lab = d.argmin(-1)
    border = np.ones(lab.shape, bool)
    border[3:-3, 3:-3] = False
    bg = int(np.bincount(lab[border], minlength=len(NAMES)).argmax())
    fgpix = lab[lab != bg]
    if fgpix.size == 0:
        return dict(colour=None, shape=None, background=NAMES[bg], fill=None)
    fg = int(np.bincount(fgpix, minlength=len(NAMES)).argmax())
    m = largest_component(lab == fg)
    ys, xs = np.nonzero(m)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = float(m.sum()) / float(box)
    shape = "square" if fill >= 0.89 else ("circle" if fill >= 0.64 else "triangle")
    return dict(colour=NAMES[fg], shape=shape, background=NAMES[bg], fill=round(fill, 3))


def score(pairs):
    """pairs: [(truth (c, s, b), reading dict)] -> agreement fractions."""
    n = len(pairs)
    c = sum(r["colour"] == t[0] for t, r in pairs)
    s = sum(r["shape"] == t[1] for t, r in pairs)
    b = sum(r["background"] == t[2] for t, r in pairs)
    a = sum(r["colour"] == t[0] and r["shape"] == t[1] and r["background"] == t[2] for t, r in pairs)
    return dict(n=n, colour=c / n, shape=s / n, background=b / n, all=a / n)


def real_accuracy(count=REAL_COUNT, seed=REAL_SEED):
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        img, _, combo = data.sample(rng, data.all_combos())
        pairs.append((combo, classify(img)))
    return score(pairs), pairs


def train_sample(n=9, seed=REAL_SEED):
    """A fixed sample of n TRAINING combinations, for comparison with the held-out ones."""
    return sorted(random.Random(seed).sample(data.TRAIN_COMBOS, n))


def generate(sdshell, model, outdir, seeds, first_seed, combos, cfg, sampler):
    stmts = ["-e", f'model "{model}"']
    for i, combo in enumerate(combos):
        d = os.path.join(outdir, f"{i:02d}")
        stmts += ["-e", f'generate "{data.caption(*combo)}" size=64x64 steps=20 cfg={cfg} sampler="{sampler}" '
                        f'seed={first_seed} count={seeds} outdir="{d}"']
    t = time.time()
    subprocess.run([sdshell] + stmts, check=True)
    return time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdshell", default=os.path.join(ROOT, ".build/debug/sdshell"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models/demo.safetensors"))
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--outdir", default="/tmp/demo-eval")
    ap.add_argument("--real", type=int, default=REAL_COUNT)
    ap.add_argument("--combos", choices=["held-out", "train"], default="held-out",
                    help="held-out: fixture_support.HELD_OUT (the figure that counts); "
                         "train: 9 fixed training combinations, for comparison")
    ap.add_argument("--skip-generate", action="store_true", help="score the images already in --outdir")
    ap.add_argument("--cfg", type=float, default=7, help="CFG scale (sdshell's default 7)")
    ap.add_argument("--sampler", default="Euler a", help="sampler (sdshell's default Euler a)")
    args = ap.parse_args()

    real, _ = real_accuracy(args.real)
    print(f"classifier on {real['n']} dataset images (all 90 combinations, seed {REAL_SEED}): "
          f"colour {real['colour']:.1%}, shape {real['shape']:.1%}, background {real['background']:.1%}, "
          f"all three {real['all']:.1%}")

    combos = data.HELD_OUT if args.combos == "held-out" else train_sample()
    gen_seconds = None
    if not args.skip_generate:
        if os.path.exists(args.outdir):
            for p in glob.glob(os.path.join(args.outdir, "*", "txt2img", "*.png")):
                os.remove(p)
        gen_seconds = generate(args.sdshell, args.model, args.outdir, args.seeds, args.first_seed, combos, args.cfg, args.sampler)
    pairs, rows = [], []
    for i, combo in enumerate(combos):
        files = sorted(glob.glob(os.path.join(args.outdir, f"{i:02d}", "txt2img", "*.png")))
        assert len(files) == args.seeds, (combo, len(files))
        per = []
        for f in files:
            r = classify(np.array(Image.open(f).convert("RGB")))
            pairs.append((combo, r))
            per.append((combo, r))
            rows.append(dict(prompt=data.caption(*combo), file=f, **r))
        sc = score(per)
        print(f"  {data.caption(*combo):42s} colour {sc['colour']:.0%} shape {sc['shape']:.0%} "
              f"background {sc['background']:.0%} all {sc['all']:.0%}")
    gen = score(pairs)
    print(f"generated {args.combos} images ({gen['n']}): colour {gen['colour']:.1%}, shape {gen['shape']:.1%}, "
          f"background {gen['background']:.1%}, all three {gen['all']:.1%}"
          + (f"  [sdshell took {gen_seconds:.0f}s]" if gen_seconds else ""))
    report = dict(real=real, generated=gen, combos=args.combos, prompts=[data.caption(*c) for c in combos],
                  seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
                  settings=f"64x64, 20 steps, CFG {args.cfg:g}, sampler {args.sampler}, rng cpu",
                  model=args.model, sdshell_seconds=gen_seconds, images=rows)
    with open(os.path.join(args.outdir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Procedural captioned dataset for the demo model (models/demo.safetensors).

Every image is 64x64 RGB: one shape (circle, square or triangle) in one
colour on a plain background of a DIFFERENT colour. Caption, exactly:
    "a {colour} {shape} on a {background} background"

Colours (6, chosen to stay apart after VAE / diffusion blur):
    red (220, 30, 30), green (30, 180, 40), blue (30, 60, 220),
    yellow (240, 220, 30), white (245, 245, 245), black (15, 15, 15)
-> 6 x 3 x 5 = 90 (colour, shape, background) combinations.

Shapes are axis-aligned and always lie wholly inside the image:
    size  = round(U(0.35, 0.70) * 64) pixels (the side of the bounding box)
    place = uniform over the positions where the bounding box fits
    circle: disc of that diameter; square: that side; triangle: isosceles,
    apex up, base at the bottom of the box (bounding-box fill ratio 1/2).
Edges are anti-aliased by 4x4 supersampling (coverage blends the two colours).

Held-out combinations (HELD_OUT, 9 = 10%): chosen with random.Random(HOLDOUT_SEED)
such that every (colour, shape), (shape, background) and (colour, background)
pair of a held-out combination still occurs in training. They are never used
for training; scripts/evaluate_demo_model.py generates them with sdshell.

The dataset itself (COLOURS, SHAPES, caption, HELD_OUT, TRAIN_COMBOS, render,
sample) is defined in fixture_support.py, which train_demo_model.py,
make_concept_data.py and scripts/evaluate_demo_model.py import; this script
only writes the samples. Run:
    .venv-ref/bin/python Tests/Fixtures/generators/make_demo_data.py
writes examples/data/shapes/ (12 sample PNGs + .txt captions, seed SAMPLE_SEED)
and examples/data/shapes/held_out.txt (the held-out captions).
"""

import os
import random
import sys

from fixture_support import ROOT, HELD_OUT, TRAIN_COMBOS, all_combos, caption, sample  # the dataset

SAMPLE_DIR = os.path.join(ROOT, "examples", "data", "shapes")
SAMPLE_SEED = 7


def write_samples(out_dir=SAMPLE_DIR, n=12, seed=SAMPLE_SEED):
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n):
        img, cap, _ = sample(rng)
        name = f"shape_{i:02d}"
        Image.fromarray(img).save(os.path.join(out_dir, name + ".png"), optimize=True)
        with open(os.path.join(out_dir, name + ".txt"), "w") as f:
            f.write(cap + "\n")
    with open(os.path.join(out_dir, "held_out.txt"), "w") as f:
        f.write("# (colour, shape, background) combinations never used in training "
                "(Tests/Fixtures/generators/make_demo_data.py HELD_OUT)\n")
        for c, s, b in HELD_OUT:
            f.write(caption(c, s, b) + "\n")
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    return total


def main():
    total = write_samples()
    print(f"{len(all_combos())} combinations, {len(TRAIN_COMBOS)} for training, "
          f"{len(HELD_OUT)} held out:")
    for h in HELD_OUT:
        print("  ", caption(*h))
    print(f"wrote {os.path.relpath(SAMPLE_DIR, ROOT)}: {total} bytes")
    assert total < 100_000


if __name__ == "__main__":
    sys.exit(main())

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

Run directly:
    .venv-ref/bin/python scripts/make_demo_data.py
writes examples/data/shapes/ (12 sample PNGs + .txt captions, seed SAMPLE_SEED)
and examples/data/shapes/held_out.txt (the held-out captions).
The training script imports this module and draws images on the fly.
"""

import itertools
import os
import random
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(ROOT, "examples", "data", "shapes")
SIZE = 64
SUPER = 4
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
HOLDOUT_SEED = 4242
HOLDOUT_COUNT = 9
SAMPLE_SEED = 7


def caption(colour, shape, background):
    return f"a {colour} {shape} on a {background} background"


def all_combos():
    return [(c, s, b) for c in COLOUR_NAMES for s in SHAPES for b in COLOUR_NAMES if b != c]


def _choose_held_out():
    combos = all_combos()
    rng = random.Random(HOLDOUT_SEED)
    while True:
        held = rng.sample(combos, HOLDOUT_COUNT)
        train = [x for x in combos if x not in held]
        cs = {(c, s) for c, s, _ in train}
        sb = {(s, b) for _, s, b in train}
        cb = {(c, b) for c, _, b in train}
        ok = all((c, s) in cs and (s, b) in sb and (c, b) in cb for c, s, b in held)
        # every colour and shape appears at least once among the held-out set
        ok = ok and {s for _, s, _ in held} == set(SHAPES)
        if ok:
            return sorted(held)


HELD_OUT = _choose_held_out()
TRAIN_COMBOS = [x for x in all_combos() if x not in HELD_OUT]


def shape_mask(shape, size, x0, y0, res=SIZE, sup=SUPER):
    """Coverage in [0, 1] of a res x res image (float32), supersampled."""
    n = res * sup
    c = (np.arange(n, dtype=np.float32) + 0.5) / sup  # pixel-unit coordinates
    X, Y = np.meshgrid(c, c)
    if shape == "circle":
        r = size / 2.0
        m = (X - (x0 + r)) ** 2 + (Y - (y0 + r)) ** 2 <= r * r
    elif shape == "square":
        m = (X >= x0) & (X < x0 + size) & (Y >= y0) & (Y < y0 + size)
    elif shape == "triangle":
        # apex (x0 + size/2, y0), base y = y0 + size from x0 to x0 + size
        t = (Y - y0) / size                      # 0 at apex, 1 at base
        half = t * size / 2.0
        cx = x0 + size / 2.0
        m = (t >= 0) & (t <= 1) & (np.abs(X - cx) <= half)
    else:
        raise ValueError(shape)
    return m.reshape(res, sup, res, sup).mean(axis=(1, 3)).astype(np.float32)


def render(colour, shape, background, rng):
    """uint8 [64, 64, 3] image and its parameters; rng is a random.Random."""
    size = round(rng.uniform(0.35, 0.70) * SIZE)
    x0 = rng.randint(0, SIZE - size)
    y0 = rng.randint(0, SIZE - size)
    a = shape_mask(shape, size, x0, y0)[..., None]
    fg = np.array(COLOURS[colour], np.float32)
    bg = np.array(COLOURS[background], np.float32)
    img = a * fg + (1 - a) * bg
    return np.clip(np.round(img), 0, 255).astype(np.uint8), dict(size=size, x0=x0, y0=y0)


def sample(rng, combos=None):
    """One random training example: (uint8 image, caption, combo)."""
    combos = combos or TRAIN_COMBOS
    c, s, b = combos[rng.randrange(len(combos))]
    img, _ = render(c, s, b, rng)
    return img, caption(c, s, b), (c, s, b)


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
                "(scripts/make_demo_data.py HELD_OUT)\n")
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

#!/usr/bin/env python3
"""Training folders for the demo embeddings: a picture of the demo dataset's kind
(make_demo_data.py; the dataset is defined in fixture_support.py) whose (colour, shape,
background) the captions name with one new word, so an embedding has to learn it. Both
combinations are among those the demo model was trained on (not in HELD_OUT), so the model can
draw them once asked rightly.

    .venv-ref/bin/python Tests/Fixtures/generators/make_concept_data.py

writes examples/data/CONCEPT/NN.png (8 pictures each, sizes and positions varied, seed per
concept) and examples/data/name.template (the template "a [name]": the demo model's captions
all start "a ..."), and examples/data/blot-mask.png: the mask examples/img2img.sdscript inpaints
blot/00.png with (its dark pixels, grown by 3 pixels, white on black). The concepts:
    blot: a black circle on a red background
    tent: a green triangle on a white background
"""
import os
import random

import fixture_support as demo   # the demo dataset: render, caption, TRAIN_COMBOS

CONCEPTS = {"blot": ("black", "circle", "red", 11), "tent": ("green", "triangle", "white", 12)}


def main():
    from PIL import Image
    root = os.path.join(demo.ROOT, "examples", "data")
    for name, (colour, shape, background, seed) in CONCEPTS.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        rng = random.Random(seed)
        for i in range(8):
            image, _ = demo.render(colour, shape, background, rng)
            Image.fromarray(image).save(os.path.join(folder, f"{i:02d}.png"), optimize=True)
        print(f"{name}: 8 pictures of {demo.caption(colour, shape, background)}")
    with open(os.path.join(root, "name.template"), "w") as f:
        f.write("a [name]\n")
    write_inpaint_mask(root)


def write_inpaint_mask(root):
    """blot/00.png's dark pixels (every channel below 64), grown by 3 pixels (a 7x7 max filter)."""
    import numpy as np
    from PIL import Image
    picture = np.asarray(Image.open(os.path.join(root, "blot", "00.png")).convert("RGB"))
    dark = (picture < 64).all(axis=2)
    grown = np.zeros_like(dark)
    h, w = dark.shape
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            shifted = np.zeros_like(dark)
            shifted[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = dark[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            grown |= shifted
    Image.fromarray((grown * 255).astype(np.uint8), "L").save(os.path.join(root, "blot-mask.png"), optimize=True)
    print(f"blot-mask.png: {int(grown.sum())} of {h * w} pixels masked")


if __name__ == "__main__":
    assert all((c, s, b) in demo.TRAIN_COMBOS for c, s, b, _ in CONCEPTS.values())
    main()

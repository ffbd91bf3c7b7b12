"""Reference crops for TrainingImageTests: Pillow's ImageOps.fit (centre crop to the output's
aspect, then bicubic resize over the float crop box) on small random PNGs.

Writes Tests/TrainingTests/Fixtures/images/: the input PNGs and, for each case, the expected
8-bit RGB bytes as `<input>-<w>x<h>.rgb`.

Needs Pillow 9-12 (A1111 pins 9.5): their resize runs the horizontal pass first. Pillow 13 may run
the vertical pass first, which changes results by up to 12 levels. The reference environment has
Pillow 13, so run this as:
    pip install --target /tmp/pil11 pillow==11.3.0
    PYTHONPATH=/tmp/pil11 .venv-ref/bin/python Tests/Fixtures/generators/make_training_image_fixtures.py"""
import os

import numpy as np
import PIL
from PIL import Image, ImageOps

assert int(PIL.__version__.split(".")[0]) < 13, f"Pillow {PIL.__version__}: use Pillow 9-12 (see the docstring)"

from fixture_support import ROOT

OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "images")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)

inputs = {
    "wide-37x23.png": Image.fromarray(rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)),
    "tall-20x41-rgba.png": Image.fromarray(rng.integers(0, 256, (41, 20, 4), dtype=np.uint8)),
    "small-8x6.png": Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)),
    "square-16x16.png": Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)),
}
sizes = [(16, 16), (16, 24), (24, 8)]
for name, image in inputs.items():
    image.save(os.path.join(OUT, name))
    rgb = Image.open(os.path.join(OUT, name)).convert("RGB")
    for w, h in sizes:
        fitted = ImageOps.fit(rgb, (w, h), Image.Resampling.BICUBIC)
        with open(os.path.join(OUT, f"{name[:-4]}-{w}x{h}.rgb"), "wb") as f:
            f.write(fitted.tobytes())
print("wrote", len(inputs), "inputs x", len(sizes), "sizes")

# JPEG decoding reference: Pillow's decode (libjpeg-turbo, default settings) of files Pillow wrote.
for name, image, kwargs in [("photo-30x20.jpg", inputs["wide-37x23.png"].crop((0, 0, 30, 20)), {"quality": 85}),
                            ("grey-17x9.jpg", inputs["small-8x6.png"].resize((17, 9)).convert("L"), {"quality": 90}),
                            ("progressive-24x24.jpg", inputs["square-16x16.png"].resize((24, 24)),
                             {"quality": 75, "progressive": True, "subsampling": 2})]:
    path = os.path.join(OUT, name)
    image.save(path, **kwargs)
    with open(path[:-4] + ".decoded.rgb", "wb") as f:
        f.write(Image.open(path).convert("RGB").tobytes())
photo = open(os.path.join(OUT, "photo-30x20.jpg"), "rb").read()
for name, data in [("truncated-header.jpg", photo[:40]), ("truncated-body.jpg", photo[:len(photo) * 2 // 3])]:
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)

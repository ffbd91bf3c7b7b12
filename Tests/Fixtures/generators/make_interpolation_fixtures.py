#!/usr/bin/env python3
"""PyTorch's F.interpolate on small tensors for every mode A1111's latent upscalers use, written to
Tests/EngineTests/Fixtures/interpolation.json (read by InterpolationTests).

    .venv-ref/bin/python Tests/Fixtures/generators/make_interpolation_fixtures.py

A1111 (modules/shared.py latent_upscale_modes): "Latent" bilinear, "Latent (antialiased)"
bilinear + antialias, "Latent (bicubic)" bicubic, "Latent (bicubic antialiased)" bicubic +
antialias, "Latent (nearest)" nearest, "Latent (nearest-exact)" nearest-exact; its hires fix calls
F.interpolate(samples, size=(h // 8, w // 8), mode=..., antialias=...). Cases: a [1, 2, 5, 7]
input (torch.Generator seed 0, randn) resampled to a larger size (A1111's 2x and a 1.5x that is
not a whole multiple), a smaller one, and a mixed one, in each mode.
"""
import os

import torch
import torch.nn.functional as F

import fixture_support as fs

MODES = [("nearest", False), ("nearest-exact", False), ("bilinear", False), ("bilinear", True),
         ("bicubic", False), ("bicubic", True)]
SIZES = [(10, 14), (8, 11), (3, 4), (9, 5)]


def main():
    x = torch.randn(1, 2, 5, 7, generator=torch.Generator().manual_seed(0))
    cases = []
    for mode, antialias in MODES:
        for h, w in SIZES:
            y = F.interpolate(x, size=(h, w), mode=mode, antialias=antialias)
            cases.append({"mode": mode, "antialias": antialias, "size": [h, w], "output": [fs.f32(v) for v in y.flatten().tolist()]})
    doc = {"generator": "Tests/Fixtures/generators/make_interpolation_fixtures.py",
           "versions": {"torch": fs.version("torch")},
           "input_shape": list(x.shape), "input": [fs.f32(v) for v in x.flatten().tolist()], "cases": cases}
    path = os.path.join(fs.ROOT, "Tests/EngineTests/Fixtures/interpolation.json")
    print(path, fs.write_json_fixture(path, doc, 200_000), "bytes")


if __name__ == "__main__":
    main()

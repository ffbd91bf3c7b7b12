#!/usr/bin/env python3
"""Makes Tests/ModelsTests/Fixtures/tiled_vae.json: diffusers' tiled VAE decode
(`AutoencoderKL.enable_tiling()`, `tiled_decode`) of the tiny model's VAE in
Tests/FormatsTests/Fixtures/diffusers_tiny/, the reference for sdshell's
`AutoencoderKL.decodeTiled`.

The tiny VAE's config has sample_size 16 and two levels, so diffusers' tiles are
8 latent pixels (16 image pixels) with a quarter overlap: latent stride 6, blend
extent 4 image pixels, 12 pixels kept per tile. The latent [1, 4, 14, 20] makes a
3 x 4 grid of tiles, the last row and column cut short. Also stored: the untiled
decode of the same latent (tiling changes the result: each tile has its own
group-norm statistics).

Rerun (after scripts/setup_reference_env.sh):
    .venv-ref/bin/python Tests/Fixtures/generators/make_tiled_vae_fixture.py
"""
import json
import math
import os

import torch
from diffusers import AutoencoderKL

from fixture_support import ROOT  # noqa: E402  (the repository)
MODEL = os.path.join(ROOT, "Tests", "FormatsTests", "Fixtures", "diffusers_tiny")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "tiled_vae.json")


def encode(t):
    t = t.detach().contiguous().float()
    data = [float(v) for v in t.flatten().tolist()]
    assert all(math.isfinite(v) for v in data)
    return {"shape": list(t.shape), "data": data}


def main():
    torch.manual_seed(0)
    vae = AutoencoderKL.from_pretrained(MODEL, subfolder="vae", local_files_only=True).float().eval()
    shape = (1, 4, 14, 20)
    n = math.prod(shape)
    # Exactly representable inputs, so the Swift side reads the same values.
    z = torch.tensor([((i * 7919) % 1000) / 250.0 - 2.0 for i in range(n)], dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        untiled = vae.decode(z).sample
        vae.enable_tiling()
        assert vae.tile_latent_min_size == 8 and vae.tile_sample_min_size == 16
        tiled = vae.decode(z).sample
    doc = {
        "about": "diffusers AutoencoderKL tiled_decode of the diffusers_tiny VAE (Tests/Fixtures/generators/make_tiled_vae_fixture.py)",
        "latent_tile": vae.tile_latent_min_size,
        "sample_tile": vae.tile_sample_min_size,
        "z": encode(z),
        "tiled": encode(tiled),
        "untiled": encode(untiled),
    }
    with open(OUT, "w") as f:
        f.write(json.dumps(doc, separators=(",", ":")))
    print(f"wrote {OUT}: tiled {tuple(tiled.shape)}, max |tiled - untiled| {float((tiled - untiled).abs().max()):.3g}")


if __name__ == "__main__":
    main()

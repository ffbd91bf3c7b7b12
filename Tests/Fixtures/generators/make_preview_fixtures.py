#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/live_preview.json: A1111 1.10's "Approx cheap" live preview
(modules/sd_vae_approx.py cheap_approximation, and modules/sd_samplers_common.py
single_sample_to_image with approximation 1) on seeded latents, for sdshell's LivePreview.

    .venv-ref/bin/python Tests/Fixtures/generators/make_preview_fixtures.py

What A1111 does, and this script too:
  x = torch.einsum("...lxy,lr -> ...rxy", sample, coefs)   # coefs [4, 3]: SD 1.x/2.x or SDXL's table
  x = x * 0.5 + 0.5; x = clamp(x, 0, 1); 255. * x (float32, then numpy float32), astype(uint8) (truncation)
The latents: torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(seed)) * 1.5, so that
some values clamp. Everything float32 on the CPU.
"""
import base64
import json
import os

import numpy as np
import torch

import fixture_support as fs

COEFS = {
    "sd": [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]],
    "sdxl": [[0.3448, 0.4168, 0.4395], [-0.1953, -0.0290, 0.0250], [0.1074, 0.0886, -0.0163], [-0.3730, -0.2499, -0.2088]],
}


def main():
    cases = []
    for family, seed in (("sd", 5), ("sdxl", 6)):
        sample = torch.randn((4, 8, 8), generator=torch.Generator().manual_seed(seed)) * 1.5
        x = torch.einsum("...lxy,lr -> ...rxy", sample, torch.tensor(COEFS[family]))
        img = torch.clamp(x * 0.5 + 0.5, min=0.0, max=1.0)
        img = (255. * np.moveaxis(img.numpy(), 0, 2)).astype(np.uint8)
        cases.append({"family": family, "seed": seed, "latent": fs.enc32(sample), "approximation": fs.enc32(x),
                      "rgb": {"shape": list(img.shape), "uint8_base64": base64.b64encode(img.tobytes()).decode()}})
    doc = {"generator": "Tests/Fixtures/generators/make_preview_fixtures.py", "versions": {"torch": torch.__version__},
           "coefs": COEFS, "cases": cases}
    fs.write_json_fixture(os.path.join(fs.ROOT, "Tests/DiffusionTests/Fixtures/live_preview.json"), doc, 200_000)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()

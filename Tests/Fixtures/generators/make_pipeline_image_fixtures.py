#!/usr/bin/env python3
"""The 8-bit images A1111 makes from every run of pipeline.json: each run's final latents (A1111's,
as make_pipeline_fixtures.py recorded them) decoded by the tiny model's VAE with A1111's
conversion (fixture_support.decode_a1111). PipelineTests decodes sdshell's own latents of each
run and compares them with these bytes (>= 99% equal, none off by more than 2).

    .venv-ref/bin/python Tests/Fixtures/generators/make_pipeline_image_fixtures.py

Writes Tests/DiffusionTests/Fixtures/pipeline_images.json:
  {"generator", "versions", "conversion", "runs": {run name: {"shape": [N, H, W, 3],
   "uint8_base64": the bytes in [image, y, x, RGB] order}}}
Deterministic for a given pipeline.json; rerun it whenever pipeline.json gains runs.
"""
import base64
import json
import os
import sys
from importlib.metadata import version

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_support as fs  # noqa: E402
from diffusers import AutoencoderKL  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor  # noqa: E402

PIPELINE = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "pipeline.json")
OUT = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "pipeline_images.json")
MODEL = os.path.join(fs.ROOT, "Tests", "Fixtures", "tiny-sd")


def main():
    torch.manual_seed(0)
    with open(PIPELINE) as f:
        doc = json.load(f)
    vae = AutoencoderKL.from_pretrained(MODEL, subfolder="vae", torch_dtype=torch.float32, local_files_only=True).eval()
    vae.set_attn_processor(AttnProcessor())
    scale = doc["model"]["scaling_factor"]
    assert vae.config.scaling_factor == scale
    images = {}
    for run in doc["runs"]:
        lat = run["latents"]
        latents = torch.tensor(lat["data"], dtype=torch.float32).reshape(lat["shape"])
        _, img, _ = fs.decode_a1111(vae, latents, scale, "mul")
        images[run["name"]] = {"shape": list(img.shape), "uint8_base64": base64.b64encode(img.astype(np.uint8).tobytes()).decode()}
        if "decoded" in run:      # the run whose image make_pipeline_fixtures.py recorded itself
            assert img.reshape(-1).tolist() == run["decoded"]["image_uint8"]["data"], run["name"]
    out = {"generator": "Tests/Fixtures/generators/make_pipeline_image_fixtures.py",
           "versions": {"torch": torch.__version__, "diffusers": version("diffusers")},
           "conversion": "per image vae.decode((1. / scaling_factor) * latents[i:i+1]); clamp((x + 1) / 2, 0, 1); "
                         "255. * moveaxis(x, 0, 2) (float32); astype(uint8) (truncation)",
           "runs": images}
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, fs.ROOT)} ({os.path.getsize(OUT)} bytes), {len(images)} runs")


if __name__ == "__main__":
    main()

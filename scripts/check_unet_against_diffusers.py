"""Checks sdshell's full-size UNet pass against diffusers on the same random weights.

Usage (the reference environment: scripts/setup_reference_env.sh):
    .build/release/sdbench unet --size 512 --repeats 1 --save-tensors /tmp/unet512.safetensors
    .venv-ref/bin/python scripts/check_unet_against_diffusers.py /tmp/unet512.safetensors [MODEL_DIR]

sdbench's model folder (default /tmp/sdshell-sd15-f16, made by `sdbench load`) holds f16 values;
both sides compute in f32 (diffusers loads them as torch.float32). Prints the relative L2 and
max errors of sdshell's output against diffusers' (every optimisation of the CPU engine, e.g.
Winograd F(4x4, 3x3), included).
"""
import sys

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file


def main():
    saved = load_file(sys.argv[1])
    folder = sys.argv[2] if len(sys.argv) > 2 else "/tmp/sdshell-sd15-f16"
    torch.set_num_threads(2)
    # SD 1.5's UNet (sdbench's folder keeps a minimal config.json; the shapes are SD 1.5's).
    unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8).eval()
    state = load_file(f"{folder}/unet/diffusion_pytorch_model.safetensors")
    unet.load_state_dict({k: v.float() for k, v in state.items()})
    with torch.no_grad():
        ref = unet(saved["x"], torch.tensor([500.0, 500.0]), encoder_hidden_states=saved["context"]).sample
    out = saved["output"]
    rel_l2 = ((out - ref).norm() / ref.norm()).item()
    rel_max = ((out - ref).abs().max() / ref.abs().max()).item()
    print(f"UNet {tuple(saved['x'].shape)}: relative L2 {rel_l2:.2e}, max |diff| / max |ref| {rel_max:.2e}")


if __name__ == "__main__":
    main()

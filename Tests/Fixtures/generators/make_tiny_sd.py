#!/usr/bin/env python3
"""Makes Tests/Fixtures/tiny-sd/: a TINY Stable-Diffusion-1.x-architecture
model with seeded random weights, as a diffusers folder, for sdshell's
end-to-end pipeline tests (see Tests/Fixtures/generators/make_pipeline_fixtures.py, which runs
A1111-style txt2img on it).

Rerun (after scripts/setup_reference_env.sh; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_tiny_sd.py
then rerun Tests/Fixtures/generators/make_pipeline_fixtures.py (its reference runs depend on
these exact weights; pipeline.json records the weight files' sha256).

What it writes (Tests/Fixtures/tiny-sd/, about 4.4 MB, all weights float16):
    model_index.json                      StableDiffusionPipeline layout
    text_encoder/config.json              CLIPTextConfig (read it: 4 heads of
    text_encoder/model.safetensors          width 8, not SD's width-64 heads)
    unet/config.json
    unet/diffusion_pytorch_model.safetensors
    vae/config.json
    vae/diffusion_pytorch_model.safetensors
    scheduler/scheduler_config.json       PNDMScheduler, scaled_linear,
                                          beta 0.00085 .. 0.012, 1000 steps
    tiny_sd_info.json                     sdshell notes: vae_scale (= 2, NOT
                                          8), head counts and widths, sha256 of
                                          the weight files, how it was made
No tokenizer/ folder (model_index lists tokenizer as [null, null]): the text
encoder has the FULL CLIP vocabulary (49408 ids), so sdshell's own tokenizer
(Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz) drives it.

The model
---------
* CLIPTextModel: vocab 49408, 77 positions, hidden 32, intermediate 64,
  2 layers, 4 attention heads (head width 8), quick_gelu, layer_norm_eps 1e-5,
  bos 49406 / eos 49407.
* UNet2DConditionModel: block_out_channels (32, 32) [see WIDTHS below],
  layers_per_block 1, CrossAttnDownBlock2D + DownBlock2D, UpBlock2D +
  CrossAttnUpBlock2D, UNetMidBlock2DCrossAttn, cross_attention_dim 32,
  attention_head_dim 8 (diffusers' name; it is the NUMBER of heads, as in SD
  1.x: 8 heads of width 32 / 8 = 4), norm_num_groups 32, sample_size 8.
* AutoencoderKL: block_out_channels (32, 32) [see WIDTHS], 2 levels (so ONE
  downsample: vae_scale = 2; an 8x8 latent is a 16x16 image), layers_per_block
  1 (the decoder has layers_per_block + 1 = 2 resnets per level),
  latent_channels 4, norm_num_groups 32, scaling_factor 0.18215, sample_size 16.

WIDTHS: the brief asked for (32, 64) in both UNet and VAE AND a folder under
5 MB. With the full-vocabulary text encoder (49408 x 32 f16 embedding =
3.16 MB) that is impossible: (32, 64) gives 0.79M UNet + 0.66M VAE + 1.60M CLIP
parameters = 6.1 MB. (32, 32) for both keeps GroupNorm(32, .) everywhere (as in
real SD), two levels in each network, and makes 4.4 MB. Set WIDTHS = (32, 64)
to get the brief's widths (6.1 MB). Channel changes inside UNet/VAE blocks are
covered by the diffusers_tiny fixture of Tests/Fixtures/generators/make_model_file_fixtures.py.

Weights
-------
Built with diffusers / transformers constructors, then EVERY parameter is
overwritten, module by module, from its own torch.Generator (seeds: text
encoder 1001, UNet 1002, VAE 1003), parameters in sorted-name order:
    weight of a GroupNorm / LayerNorm:  1 + 0.1 * randn(shape)
    every other parameter (incl. norm biases, embeddings, conv/linear
    weights and biases):               0.2 * randn(shape)
(randn in float32). Then each module is cast to float16 and saved with
save_pretrained(safe_serialization=True). Reference computations must load
these files back (from_pretrained(..., torch_dtype=torch.float32)), i.e. use
the float16-rounded values widened to float32; the script checks that the
reloaded float32 weights equal the float16 ones exactly.

Deterministic: same torch / diffusers / transformers -> same bytes.
"""

import hashlib
import json
import os
import shutil
import sys

import torch

import fixture_support as fs  # noqa: E402
from fixture_support import ROOT  # noqa: E402  (the repository)
OUT_DIR = os.path.join(ROOT, "Tests", "Fixtures", "tiny-sd")
GENERATOR = "Tests/Fixtures/generators/make_tiny_sd.py"
MAX_BYTES = 5_000_000

WIDTHS = (32, 32)
SEEDS = {"text_encoder": 1001, "unet": 1002, "vae": 1003}

TEXT_CONFIG = dict(
    vocab_size=49408,
    max_position_embeddings=77,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=32,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=1,
)
UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=WIDTHS,
    layers_per_block=1,
    cross_attention_dim=32,
    attention_head_dim=8,
    norm_num_groups=32,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=WIDTHS,
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=16,
    scaling_factor=0.18215,
)
SCHEDULER_CONFIG = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    skip_prk_steps=True,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)
WEIGHT_FILES = {
    "text_encoder": "text_encoder/model.safetensors",
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_size(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def main():
    torch.set_num_threads(1)
    import diffusers
    import transformers
    import safetensors
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)   # constructors' own init is overwritten anyway
    modules = {
        "text_encoder": CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)),
        "unet": UNet2DConditionModel(**UNET_CONFIG),
        "vae": AutoencoderKL(**VAE_CONFIG),
    }
    init_counts = {}
    for name, m in modules.items():
        m.eval()
        init_counts[name] = fs.randomize_parameters(m, SEEDS[name])

    scratch = OUT_DIR + ".tmp"
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(scratch)
    half = {}
    for name, m in modules.items():
        h = m.half()
        half[name] = {k: v.detach().clone() for k, v in h.state_dict().items()}
        h.save_pretrained(os.path.join(scratch, name), safe_serialization=True)
    PNDMScheduler(**SCHEDULER_CONFIG).save_pretrained(os.path.join(scratch, "scheduler"))
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    with open(os.path.join(scratch, "model_index.json"), "w") as f:
        json.dump(model_index, f, indent=2, sort_keys=True)
        f.write("\n")

    # ---- load back as float32 and check: exact f16 values, shapes, configs
    te = CLIPTextModel.from_pretrained(os.path.join(scratch, "text_encoder"),
                                       dtype=torch.float32, local_files_only=True)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(scratch, "unet"),
                                                torch_dtype=torch.float32, local_files_only=True)
    vae = AutoencoderKL.from_pretrained(os.path.join(scratch, "vae"),
                                        torch_dtype=torch.float32, local_files_only=True)
    loaded = {"text_encoder": te, "unet": unet, "vae": vae}
    from safetensors import safe_open
    n_params = {}
    for name, m in loaded.items():
        sd = m.state_dict()
        with safe_open(os.path.join(scratch, WEIGHT_FILES[name]), framework="pt") as f:
            keys = set(f.keys())
            for k in keys:
                t = f.get_tensor(k)
                assert t.dtype == torch.float16, (name, k, t.dtype)
                assert torch.equal(t, half[name][k]), (name, k)
                assert sd[k].dtype == torch.float32 and torch.equal(sd[k], t.float()), (name, k)
        float_keys = {k for k, v in sd.items() if v.is_floating_point()}
        assert keys == float_keys, (name, sorted(keys ^ float_keys)[:10])
        n_params[name] = sum(p.numel() for p in m.parameters())

    # ---- what sdshell needs to know, read from the loaded modules
    from diffusers.models.attention_processor import Attention
    unet_heads = sorted({(n.rsplit(".", 1)[0], m.heads, m.inner_dim // m.heads)
                         for n, m in unet.named_modules() if isinstance(m, Attention)})
    vae_heads = sorted({(n, m.heads, m.inner_dim // m.heads)
                        for n, m in vae.named_modules() if isinstance(m, Attention)})
    n_down = sum(1 for b in vae.encoder.down_blocks if b.downsamplers is not None)
    vae_scale = 2 ** n_down
    assert vae_scale == 2 ** (len(vae.config.block_out_channels) - 1) == 2
    with torch.no_grad():
        z = torch.zeros(1, 4, 8, 8)
        img = vae.decode(z).sample
    assert list(img.shape) == [1, 3, 16, 16], img.shape

    sizes = {}
    for d, _, files in os.walk(scratch):
        for f in files:
            p = os.path.join(d, f)
            sizes[os.path.relpath(p, scratch)] = os.path.getsize(p)
    total_weights = sum(sizes[p] for p in WEIGHT_FILES.values())

    info = {
        "generator": GENERATOR,
        "torch": torch.__version__, "diffusers": diffusers.__version__,
        "transformers": transformers.__version__, "safetensors": safetensors.__version__,
        "vae_scale": vae_scale,
        "vae_scale_note": "VAE downscale factor = 2 ** (len(vae block_out_channels) - 1) = 2, NOT SD's 8: "
                          "latent [4, h, w] <-> image [3, 2h, 2w]; an 8x8 latent is a 16x16 image. "
                          "Read it from vae/config.json (block_out_channels has 2 entries).",
        "latent_channels": 4,
        "scaling_factor": vae.config.scaling_factor,
        "weights_dtype": "float16 on disk; reference runs use them widened to float32",
        "init": {"seeds": SEEDS,
                 "rule": "parameters in sorted-name order, each from the module's own torch.Generator: "
                         "GroupNorm/LayerNorm weight = 1 + 0.1 * randn; every other parameter = 0.2 * randn "
                         "(float32), then cast to float16",
                 "counts": init_counts},
        "text_encoder": {
            "vocab_size": te.config.vocab_size, "max_position_embeddings": te.config.max_position_embeddings,
            "hidden_size": te.config.hidden_size, "intermediate_size": te.config.intermediate_size,
            "num_hidden_layers": te.config.num_hidden_layers,
            "num_attention_heads": te.config.num_attention_heads,
            "head_dim": te.config.hidden_size // te.config.num_attention_heads,
            "hidden_act": te.config.hidden_act, "layer_norm_eps": te.config.layer_norm_eps,
            "bos_token_id": te.config.bos_token_id, "eos_token_id": te.config.eos_token_id,
            "note": "heads are NOT of width 64 (SD 1.x's CLIP ViT-L has 12 heads of 64): take the head count "
                    "from text_encoder/config.json",
        },
        "unet": {
            "block_out_channels": list(unet.config.block_out_channels),
            "attention_head_dim_config": unet.config.attention_head_dim,
            "attention_heads": [{"module": n, "heads": h, "head_dim": d} for n, h, d in unet_heads],
            "note": "diffusers' attention_head_dim (8) is the number of heads (SD 1.x semantics); head width = "
                    "channels / 8 = 4 here",
            "cross_attention_dim": unet.config.cross_attention_dim,
            "norm_num_groups": unet.config.norm_num_groups,
            "layers_per_block": unet.config.layers_per_block,
        },
        "vae": {
            "block_out_channels": list(vae.config.block_out_channels),
            "layers_per_block": vae.config.layers_per_block,
            "decoder_resnets_per_level": vae.config.layers_per_block + 1,
            "norm_num_groups": vae.config.norm_num_groups,
            "attention_heads": [{"module": n, "heads": h, "head_dim": d} for n, h, d in vae_heads],
        },
        "widths_note": "the brief asked for block_out_channels (32, 64) for UNet and VAE and a folder under 5 MB; "
                       "with the full-vocabulary CLIP that is 6.1 MB, so both use (32, 32) (see WIDTHS in the script)",
        "scheduler": {"class": "PNDMScheduler", **SCHEDULER_CONFIG,
                      "alphas_cumprod": "betas = linspace(0.00085**0.5, 0.012**0.5, 1000, float64)**2; "
                                        "alphas_cumprod = cumprod(1 - betas) (float64) -> float32 (LDM / A1111)"},
        "parameters": n_params,
        "weight_files": {k: {"path": p, "bytes": sizes[p],
                             "sha256": sha256_file(os.path.join(scratch, p))}
                         for k, p in WEIGHT_FILES.items()},
        "no_tokenizer": "model_index lists tokenizer as [null, null]; use the CLIP BPE vocabulary "
                        "(Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz)",
    }
    with open(os.path.join(scratch, "tiny_sd_info.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")

    for d, _, files in os.walk(scratch):
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    total = tree_size(scratch)
    assert total < MAX_BYTES, f"{total} bytes >= {MAX_BYTES}"
    if os.path.exists(OUT_DIR):
        old = OUT_DIR + ".old"
        if os.path.exists(old):
            shutil.rmtree(old)
        os.replace(OUT_DIR, old)
        os.replace(scratch, OUT_DIR)
        shutil.rmtree(old)
    else:
        os.makedirs(os.path.dirname(OUT_DIR), exist_ok=True)
        os.replace(scratch, OUT_DIR)

    print(f"wrote {os.path.relpath(OUT_DIR, ROOT)}: {total} bytes in all "
          f"(weights {total_weights}); parameters {n_params}; vae_scale {vae_scale}")
    for p in sorted(sizes):
        print(f"  {p:45s} {sizes[p]:>9d}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Makes the SDXL demo model, models/demo-xl/ (a diffusers folder for StableDiffusionXLPipeline,
float16): a tiny SDXL-ARCHITECTURE text-to-image model warm-started from the SD 1.x demo model
models/demo.safetensors (train_demo_model.py) and fine-tuned briefly on the same procedural
shapes dataset (fixture_support.py), so that it draws "a {colour} {shape} on a {background}
background" from its prompts.

    nice -n 10 .venv-ref/bin/python Tests/Fixtures/generators/make_demo_xl_model.py \
        [--seconds 1800] [--threads 1] [--workdir /tmp/demo-xl-train] [--out models/demo-xl]
    .venv-ref/bin/python Tests/Fixtures/generators/make_demo_xl_model.py --export-only

A step (batch 16) takes about 0.37 s at --threads 1 and 0.28 s at --threads 2 on 2 idle cores
(about 5.5 s at --threads 2 while another process holds a core: keep 1 on a shared machine), so
the default 1800 s is about 4,900 steps; drawing and encoding the pool adds about 40 s first.

Phases:
  1. warm start: read models/demo.safetensors (its sdshell_config metadata + diffusers' own
     single-file converters) and build the SDXL parts from it (below); assert that the new UNet
     computes what the demo UNet computes (within 1e-4) when the first 64 features of its
     context are the demo's context, whatever the other 32 features and the pooled / size inputs.
  2. fine-tune text_encoder, text_encoder_2 and UNet together (VAE frozen) for --seconds of
     wall time in all (a rerun resumes from --workdir/xl.pt, saved every 100 steps, and counts
     the time already spent), logging the mean loss every 50 steps.
  3. export the EMA weights as float16 to a temporary folder beside --out, check every tensor
     read back, rename it into place; then load it with diffusers' StableDiffusionXLPipeline
     (tokenizers passed in), check that the pipeline's prompt encoding is the training one and
     draw "a red circle on a blue background" (64x64, 20 steps, Euler, CFG 1.5, seed 1) to
     --workdir/sample.png.

The parts (models/demo.safetensors's widths; SDXL's wiring):
  * vae: the demo's AutoencoderKL unchanged, scaling_factor 0.46944 kept in vae/config.json.
  * text_encoder (CLIP-L role, CLIPTextModel): the demo's text encoder (hidden 64, 2 layers,
    4 heads, quick_gelu) with a third encoder layer appended, initialised as a copy of layer 1.
    SDXL (sgm / A1111, and diffusers' pipeline) reads the PENULTIMATE hidden state of both
    encoders without the final layer norm; with 3 layers that is the output of the demo's two
    trained layers (the third layer and final_layer_norm are never used, so never trained).
    The demo's UNet was trained on final_layer_norm of that output, so the warm start is not
    exact at the text end: the fine-tune has to adapt to the un-normalised features (per-token
    std about 8.6, up to 16 at the start token, against about 1 after the norm). On 128 pool
    samples (no offset noise) the demo's loss is 0.0126 and this warm start's 0.680; the first
    300 steps bring the training loss (with offset noise) to about 0.05.
  * text_encoder_2 (bigG role, CLIPTextModelWithProjection): new, hidden 32, 3 layers, 2 heads
    (width 16), intermediate 128, projection_dim 32, "gelu" (exact, as OpenCLIP bigG), vocab
    49408, 77 positions, transformers' default init after torch.manual_seed(SEED). Context: its
    penultimate hidden state; pooled ("text_embeds"): text_projection(final_layer_norm(last
    hidden state at the first end token)).
  * unet: UNet2DConditionModel with the demo's blocks (block_out_channels (32, 64, 64),
    layers_per_block 1, DownBlock2D / CrossAttnDownBlock2D x2, attention_head_dim 4,
    norm_num_groups 32, sample_size 16) made SDXL-style: cross_attention_dim 96 (CLIP-L's 64
    features, then text_encoder_2's 32), use_linear_projection, transformer_layers_per_block 1,
    addition_embed_type "text_time", addition_time_embed_dim 8,
    projection_class_embeddings_input_dim 32 + 6 * 8 = 80. Every demo weight is copied: 1x1-conv
    proj_in / proj_out become linear [C, C]; attn2.to_k / to_v [C, 64] get 32 ZERO columns for
    text_encoder_2's features; add_embedding.linear_1 keeps its default init (uniform
    +-1/sqrt(80)) and add_embedding.linear_2 is zeroed (weight and bias), so before fine-tuning
    the pooled text and size conditioning add nothing.
  * scheduler: EulerDiscreteScheduler, scaled_linear 0.00085..0.012, 1000 steps, epsilon (as
    Tests/Fixtures/tiny-sdxl); model_index.json as tiny-sdxl's (force_zeros_for_empty_prompt
    true, tokenizer / tokenizer_2 null: sdshell tokenizes itself).

Fine-tune (train_demo_model.py's objective, data and helpers, imported from it):
  * tokens: fixture_support's CLIPTokenizer on sdshell's BPE, [49406] + ids + [49407] padded
    with 49407 to 77 (train_demo_model.encode); text_encoder_2 gets the same ids with every
    position after the first 49407 set to 0 (SDXL's tokenizer_2 pads with "!", id 0;
    fixture_support.a1111_pad).
  * SDXL added conditioning per item: time_ids [orig_h, orig_w, crop_top, crop_left, target_h,
    target_w] = [64, 64, 0, 0, 64, 64] (every dataset picture is a whole 64x64 image), text_embeds
    = text_encoder_2's pooled output.
  * conditioning dropout per item: probability 0.1 the caption "" (both encoders), probability
    0.05 an all-zero context AND zero pooled (A1111 / diffusers give SDXL an empty negative prompt
    as zeros: force_zero_embeddings / force_zeros_for_empty_prompt, so CFG against it works).
  * objective: epsilon DDPM, scaled_linear betas 0.00085..0.012, 1000 steps, uniform t; latents
    = posterior sample * scaling_factor of the demo VAE over train_demo_model's pool (POOL_SIZE
    4096 images, random.Random(DATA_SEED = 99)), random horizontal flips (of the latents, as the
    demo did); offset noise 0.15 from the first step (the demo's lesson: without it the model
    reads the colours off the noisy latent and ignores the colour words).
  * AdamW lr 2e-4 (100 warm-up steps, then constant), weight decay 0.01, batch 16, grad-norm
    clip 1; EMA of all three trained parts (decay min(0.999, (1 + n) / (10 + n))), exported.
  * seeds: torch.manual_seed(SEED) before building the new modules, torch.Generator(SEED + 1)
    for the training stream. The stop is a time budget, so reruns do not give the same bytes.

The training record (steps, final loss, seconds, versions) is in the UNet file's safetensors
metadata and in --workdir/summary.json.
"""

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import fixture_support as fs
import train_demo_model as demo   # the demo's pool, tokens, schedule, EMA, checkpoint and log helpers
from fixture_support import ROOT

DEMO = os.path.join(ROOT, "models", "demo.safetensors")
OUT = os.path.join(ROOT, "models", "demo-xl")
SEED = 2024
ID_END = 49407
POOLED, TIME_DIM = 32, 8
SIZE_IDS = [64, 64, 0, 0, 64, 64]     # original (h, w), crop (top, left), target (h, w)
EMPTY_PROB, ZERO_PROB = 0.1, 0.05
NOISE_OFFSET = 0.15
WARMUP = 100
PROMPT = "a red circle on a blue background"

TEXT2_CONFIG = dict(
    vocab_size=49408, max_position_embeddings=77, hidden_size=32, intermediate_size=128,
    num_hidden_layers=3, num_attention_heads=2, hidden_act="gelu", layer_norm_eps=1e-5,
    projection_dim=POOLED, bos_token_id=49406, eos_token_id=ID_END, pad_token_id=1,
)
EULER_CONFIG = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                    interpolation_type="linear", steps_offset=1, timestep_spacing="leading",
                    use_karras_sigmas=False, prediction_type="epsilon")
MODEL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline", "feature_extractor": [None, None], "image_encoder": [None, None],
    "force_zeros_for_empty_prompt": True, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": [None, None], "tokenizer_2": [None, None],
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
}


# ---------------------------------------------------------------- phase 1: warm start

def load_demo(path=DEMO):
    """The demo's configs and modules (float32), through diffusers' single-file converters."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint)
    from safetensors import safe_open
    from transformers import CLIPTextConfig, CLIPTextModel
    with safe_open(path, "pt") as f:
        cfg = json.loads(f.metadata()["sdshell_config"])
        ldm = {k: f.get_tensor(k) for k in f.keys()}
    ldm = {k: v.float() if v.is_floating_point() else v for k, v in ldm.items()}
    unet = UNet2DConditionModel(**cfg["unet"])
    unet.load_state_dict(convert_ldm_unet_checkpoint(ldm, cfg["unet"]))
    vae = AutoencoderKL(**cfg["vae"])
    vae.load_state_dict(convert_ldm_vae_checkpoint(ldm, cfg["vae"]))
    text = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
    text.load_state_dict({k: v for k, v in convert_ldm_clip_checkpoint(ldm).items()
                          if not k.endswith("position_ids")})
    return cfg, vae.eval(), text.eval(), unet.eval()


def time_ids(n):
    return torch.tensor([SIZE_IDS] * n, dtype=torch.float32)


def build_xl(cfg, demo_text, demo_unet):
    """text_encoder, text_encoder_2, unet of the SDXL model, warm-started from the demo's."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    torch.manual_seed(SEED)
    text_cfg = dict(cfg["text_encoder"], num_hidden_layers=demo_text.config.num_hidden_layers + 1)
    text = CLIPTextModel(CLIPTextConfig(**text_cfg))
    sd = dict(demo_text.state_dict())
    last = demo_text.config.num_hidden_layers - 1
    for k in list(sd):
        if k.startswith(f"text_model.encoder.layers.{last}."):
            sd[k.replace(f"layers.{last}.", f"layers.{last + 1}.")] = sd[k].clone()
    text.load_state_dict(sd)
    text2 = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT2_CONFIG))

    ctx_dim = cfg["text_encoder"]["hidden_size"] + TEXT2_CONFIG["hidden_size"]
    unet = UNet2DConditionModel(**dict(
        cfg["unet"], cross_attention_dim=ctx_dim, use_linear_projection=True, transformer_layers_per_block=1,
        addition_embed_type="text_time", addition_time_embed_dim=TIME_DIM,
        projection_class_embeddings_input_dim=POOLED + 6 * TIME_DIM))
    own = unet.state_dict()
    sd = {}
    for k, v in demo_unet.state_dict().items():
        if k.endswith(("attn2.to_k.weight", "attn2.to_v.weight")):
            v = F.pad(v, (0, own[k].shape[1] - v.shape[1]))   # zero columns for text_encoder_2's features
        sd[k] = v.reshape(own[k].shape)                        # proj_in / proj_out: [C, C, 1, 1] -> [C, C]
    new = sorted(set(own) - set(sd))
    assert new == ["add_embedding.linear_1.bias", "add_embedding.linear_1.weight",
                   "add_embedding.linear_2.bias", "add_embedding.linear_2.weight"], new
    sd["add_embedding.linear_1.weight"] = own["add_embedding.linear_1.weight"]
    sd["add_embedding.linear_1.bias"] = own["add_embedding.linear_1.bias"]
    sd["add_embedding.linear_2.weight"] = torch.zeros_like(own["add_embedding.linear_2.weight"])
    sd["add_embedding.linear_2.bias"] = torch.zeros_like(own["add_embedding.linear_2.bias"])
    unet.load_state_dict(sd)
    return text, text2, unet


@torch.no_grad()
def warm_start_error(demo_unet, unet):
    """max |new UNet - demo UNet| on a random input whose context starts with the demo's context."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([10, 700])
    ctx = torch.randn(2, 77, demo_unet.config.cross_attention_dim, generator=g)
    ctx_xl = torch.cat([ctx, torch.randn(2, 77, unet.config.cross_attention_dim - ctx.shape[-1], generator=g)], -1)
    added = {"text_embeds": torch.randn(2, POOLED, generator=g), "time_ids": time_ids(2)}
    a = unet.eval()(x, t, encoder_hidden_states=ctx_xl, added_cond_kwargs=added).sample
    b = demo_unet(x, t, encoder_hidden_states=ctx).sample
    return (a - b).abs().max().item()


def condition(text, text2, ids1, ids2, zero=None):
    """SDXL's conditioning: (context [B, 77, 96], pooled [B, 32]); rows in `zero` all zeros."""
    h1 = text(ids1, output_hidden_states=True).hidden_states[-2]
    out2 = text2(ids2, output_hidden_states=True)
    ctx, pooled = torch.cat([h1, out2.hidden_states[-2]], -1), out2.text_embeds
    if zero is not None:
        keep = (~zero).float()
        ctx, pooled = ctx * keep[:, None, None], pooled * keep[:, None]
    return ctx, pooled


def token_ids(tok, texts):
    """Both encoders' ids: CLIP-L pads with 49407, text_encoder_2 with 0 after the first 49407."""
    ids1 = [demo.encode(tok, c) for c in texts]
    return (torch.tensor(ids1, dtype=torch.long),
            torch.tensor([fs.a1111_pad(i, 0, ID_END) for i in ids1], dtype=torch.long))


# ---------------------------------------------------------------- phase 2: fine-tune

def train(models, lat_mean, lat_std, scale, ids, empty, args, logf):
    text, text2, unet = models
    path = os.path.join(args.workdir, "xl.pt")
    params = [p for m in models for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]
    step, hist, t_used = 0, [], 0.0
    gen = torch.Generator().manual_seed(SEED + 1)
    if os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        for m, sd in zip(models, ck["models"]):
            m.load_state_dict(sd)
        opt.load_state_dict(ck["opt"])
        ema, step, hist, t_used = ck["ema"], ck["step"], ck["hist"], ck["time"]
        gen.set_state(ck["gen"])
        demo.log(f"resumed at step {step} ({t_used:.0f}s used)", logf)
    elif args.export_only:
        sys.exit(f"--export-only: no checkpoint {path}")

    def checkpoint():
        demo.save_atomic({"models": [m.state_dict() for m in models], "opt": opt.state_dict(), "ema": ema,
                          "step": step, "hist": hist, "time": time.time() - t0, "gen": gen.get_state()}, path)

    ac = demo.alphas_cumprod()
    B = args.batch
    tids = time_ids(B)
    for m in models:
        m.train()
    t0 = time.time() - t_used
    while time.time() - t0 < args.seconds:
        idx = torch.randint(0, lat_mean.shape[0], (B,), generator=gen)
        z = lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=gen)
        fl = torch.rand(B, generator=gen) < 0.5
        z[fl] = z[fl].flip(-1)
        z = z * scale
        u = torch.rand(B, generator=gen)
        drop_empty, drop_zero = u < EMPTY_PROB, (u >= EMPTY_PROB) & (u < EMPTY_PROB + ZERO_PROB)
        tok1, tok2 = ids[0][idx].clone(), ids[1][idx].clone()
        tok1[drop_empty], tok2[drop_empty] = empty[0], empty[1]
        t = torch.randint(0, 1000, (B,), generator=gen)
        noise = torch.randn(z.shape, generator=gen) + NOISE_OFFSET * torch.randn(B, z.shape[1], 1, 1, generator=gen)
        a = ac[t].view(B, 1, 1, 1)
        zt = a.sqrt() * z + (1 - a).sqrt() * noise
        lr = args.lr * min(1.0, (step + 1) / WARMUP)
        for g in opt.param_groups:
            g["lr"] = lr
        ctx, pooled = condition(text, text2, tok1, tok2, drop_zero)
        pred = unet(zt, t, encoder_hidden_states=ctx, added_cond_kwargs={"text_embeds": pooled, "time_ids": tids}).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(demo.EMA_DECAY, (1 + step) / (10 + step))
        for e, m in zip(ema, models):
            demo.ema_update(e, m, decay)
        hist.append((step, loss.item()))
        if step % args.log_every == 0:
            demo.log(f"step {step} loss {np.mean([h[1] for h in hist[-args.log_every:]]):.5f} lr {lr:.2e} "
                     f"({time.time() - t0:.0f}s, {(time.time() - t0) / step:.3f}s/step overall)", logf)
        if step % args.ckpt_every == 0:
            checkpoint()
    checkpoint()
    demo.log(f"fine-tune done: {step} steps, {time.time() - t0:.0f}s", logf)
    for e, m in zip(ema, models):
        m.load_state_dict(e)
        m.eval()
    return hist, time.time() - t0


# ---------------------------------------------------------------- phase 3: export and check

def export(parts, record, out):
    """parts: name -> float16 module. Writes a temporary folder beside out, checks it, renames it."""
    from diffusers import EulerDiscreteScheduler, __version__ as diffusers_version
    from safetensors.torch import load_file, save_file
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".demo-xl-", dir=parent)
    for name, m in parts.items():
        m.save_pretrained(os.path.join(tmp, name), safe_serialization=True)
        fn = os.path.join(tmp, name, "model.safetensors" if name.startswith("text") else
                          "diffusion_pytorch_model.safetensors")
        w = load_file(fn)
        own = {k: v for k, v in m.state_dict().items() if not k.endswith("position_ids")}
        assert set(w) - {"text_model.embeddings.position_ids"} == set(own), (name, sorted(set(w) ^ set(own))[:5])
        assert all(torch.equal(w[k], v) and v.dtype == torch.float16 for k, v in own.items()), name
        if name == "unet":   # the training record, as the demo keeps its own in its metadata
            save_file(w, fn, metadata={"format": "pt", **record})
    EulerDiscreteScheduler(**EULER_CONFIG).save_pretrained(os.path.join(tmp, "scheduler"))
    with open(os.path.join(tmp, "model_index.json"), "w") as f:
        json.dump(dict(MODEL_INDEX, _diffusers_version=diffusers_version), f, indent=2, sort_keys=True)
        f.write("\n")
    for d, _, files in os.walk(tmp):   # mkdtemp / safetensors' temporary files are private
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    old = tmp + ".old"
    if os.path.exists(out):
        os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs_ in os.walk(out) for f in fs_)


@torch.no_grad()
def check_pipeline(out, tok, parts, workdir, logf):
    """Loads out with StableDiffusionXLPipeline, checks its weights and prompt encoding, draws PROMPT."""
    from diffusers import StableDiffusionXLPipeline
    tok2 = copy.deepcopy(tok)
    tok2.pad_token = "!"     # SDXL's tokenizer_2 pads with "!" (id 0)
    assert tok2.pad_token_id == 0
    pipe = StableDiffusionXLPipeline.from_pretrained(out, tokenizer=tok, tokenizer_2=tok2,
                                                     torch_dtype=torch.float32, add_watermarker=False)
    for name, m in parts.items():
        got = getattr(pipe, name).state_dict()
        for k, v in m.state_dict().items():
            assert torch.equal(got[k], v.float()), (name, k)
    pe, npe, pp, npp = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=True)
    ids1, ids2 = token_ids(tok, [PROMPT])
    ctx, pooled = condition(pipe.text_encoder, pipe.text_encoder_2, ids1, ids2)
    err = max((pe - ctx).abs().max().item(), (pp - pooled).abs().max().item())
    assert err < 1e-5 and not npe.any() and not npp.any(), err
    img = pipe(PROMPT, height=64, width=64, original_size=(64, 64), target_size=(64, 64), num_inference_steps=20,
               guidance_scale=1.5, generator=torch.Generator().manual_seed(1)).images[0]
    assert img.size == (64, 64)
    path = os.path.join(workdir, "sample.png")
    img.save(path)
    demo.log(f"pipeline: loaded {out}, prompt encoding = training's ({err:.1e}), "
             f"empty negative = zeros; {img.size[0]}x{img.size[1]} image -> {path}", logf)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1800, help="fine-tune time budget in all (resumes count)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "demo-xl-train"))
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--export-only", action="store_true", help="export from --workdir's checkpoint, no training")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--ckpt-every", type=int, default=100)
    args = ap.parse_args()
    if args.export_only:
        demo.EXPORT_ONLY = True     # demo.save_atomic then writes nothing
        args.seconds = 0.0
    torch.set_num_threads(args.threads)
    os.makedirs(args.workdir, exist_ok=True)
    logf = os.path.join(args.workdir, "train.log")

    cfg, vae, demo_text, demo_unet = load_demo()
    text, text2, unet = build_xl(cfg, demo_text, demo_unet)
    err = warm_start_error(demo_unet, unet)
    assert err < 1e-4, err
    demo.log(f"warm start: new UNet = demo UNet within {err:.2e} (first 64 context features = demo context)", logf)
    n_params = {k: sum(p.numel() for p in m.parameters()) for k, m in
                [("vae", vae), ("text_encoder", text), ("text_encoder_2", text2), ("unet", unet)]}
    demo.log(f"parameters: {n_params}", logf)

    tok = demo.make_tokenizer()
    lat_mean = lat_std = ids = empty = None     # --export-only trains nothing: no pool
    if not args.export_only:
        t = time.time()
        pool, caps = demo.build_pool()
        lat_mean, lat_std = demo.encode_pool(vae, pool)
        demo.log(f"pool: {pool.shape[0]} images encoded in {time.time() - t:.1f}s", logf)
        texts = sorted(set(caps))
        ids1, ids2 = token_ids(tok, texts + [""])
        row = {c: i for i, c in enumerate(texts)}
        idx = torch.tensor([row[c] for c in caps])
        ids, empty = (ids1[idx], ids2[idx]), (ids1[-1], ids2[-1])
        assert ids2[row[PROMPT]].tolist()[:10] == [49406, 320, 736, 7117, 525, 320, 1746, 5994, ID_END, 0]

    hist, seconds = train((text, text2, unet), lat_mean, lat_std, vae.config.scaling_factor, ids, empty, args, logf)

    import diffusers
    import transformers
    final = float(np.mean([h[1] for h in hist[-200:]])) if hist else float("nan")
    record = {
        "sdshell_demo": "tiny SDXL-architecture text-to-image model, warm-started from models/demo.safetensors "
                        "and fine-tuned on procedural shapes",
        "training_script": "Tests/Fixtures/generators/make_demo_xl_model.py",
        "seed": str(SEED), "data_seed": str(demo.DATA_SEED), "steps": str(hist[-1][0] if hist else 0),
        "batch": str(args.batch), "lr": str(args.lr), "final_loss": f"{final:.5f}",
        "train_seconds": f"{seconds:.0f}", "warm_start_max_error": f"{err:.2e}",
        "weights": "text_encoder, text_encoder_2, unet: EMA (decay 0.999); vae: the demo's; float16",
        "versions": f"torch {torch.__version__}, diffusers {diffusers.__version__}, "
                    f"transformers {transformers.__version__}",
    }
    parts = {name: copy.deepcopy(m).half() for name, m in
             [("text_encoder", text), ("text_encoder_2", text2), ("unet", unet), ("vae", vae)]}
    size = export(parts, record, args.out)
    demo.log(f"wrote {args.out}: {size} bytes; {record['steps']} steps, final loss {record['final_loss']}", logf)
    check_pipeline(args.out, tok, parts, args.workdir, logf)
    with open(os.path.join(args.workdir, "summary.json"), "w") as f:
        json.dump(dict(record, parameters=n_params, bytes=size), f, indent=2)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Trains the demo text-to-image model (SD 1.x architecture, tiny) from scratch
on the procedural shapes dataset of make_demo_data.py (defined in
fixture_support.py) and writes
models/demo.safetensors (original LDM single-file layout, float16, with
sdshell_config metadata and the DDPM schedule buffers).

    nice -n 5 .venv-ref/bin/python Tests/Fixtures/generators/train_demo_model.py \
        [--vae-steps N] [--unet-steps N] [--workdir DIR] [--threads 2]
    .venv-ref/bin/python Tests/Fixtures/generators/train_demo_model.py --export-only

Phases (each resumes from DIR/vae.pt / DIR/unet.pt if present; checkpoints
every --ckpt-every steps, so an interrupted run continues where it stopped):
  1. vae:    AutoencoderKL on reconstruction (MSE on [-1, 1] pixels) + KL_WEIGHT
             * KL, then scaling_factor = 1 / std of the encoder's latent means
             over the training pool (stored in the VAE config).
  2. unet:   CLIPTextModel + UNet2DConditionModel trained jointly with the SD 1.x
             DDPM epsilon objective (scaled_linear betas 0.00085..0.012, 1000
             steps, uniform t), caption -> "" with probability 0.1 (for CFG),
             AdamW, EMA of the UNet and text-encoder weights (decay EMA_DECAY);
             the EMA weights are exported.
  3. export: diffusers -> LDM keys (fixture_support.py's converters, as in
             make_model_file_fixtures.py), round-trip checked against diffusers' own single-file
             converters, float16, written with the metadata described in
             write_checkpoint().

Data: a pool of POOL_SIZE images drawn with random.Random(DATA_SEED) from the
training combinations (held-out ones never appear), regenerated identically
on every run; random horizontal flips.
Token ids: transformers' CLIPTokenizer built from sdshell's own
bpe_simple_vocab_16e6.txt.gz (fixture_support.py), encoded as
sdshell / A1111 do: [49406] + ids + [49407], padded with 49407 to 77.
"""

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import fixture_support as data   # the demo dataset (also the tokenizer and LDM converters, imported below)
from fixture_support import ROOT

OUT = os.path.join(ROOT, "models", "demo.safetensors")
SEED = 1234
DATA_SEED = 99
POOL_SIZE = 4096
VAE_CROP = 32       # the VAE trains on random 32x32 crops (offsets multiples of 4)
KL_WEIGHT = 1e-6   # times the KL summed over the 4x16x16 latent
EMA_DECAY = 0.999
UNCOND_PROB = 0.1

TEXT_CONFIG = dict(
    vocab_size=49408,
    max_position_embeddings=77,
    hidden_size=64,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=64,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=1,
)
UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    # No attention at the 16x16 level: on the 2 shared CPU cores this run had,
    # self-attention over 256 tokens was the most expensive part of a step.
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 64),
    layers_per_block=1,
    cross_attention_dim=64,
    attention_head_dim=4,
    norm_num_groups=32,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=16,   # 16-wide full-resolution level: the 64x64 convolutions dominate the cost on CPU
    sample_size=64,
    scaling_factor=0.18215,  # replaced by 1/std after phase 1
)


# ---------------------------------------------------------------- helpers

def log(msg, logf=None):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if logf:
        with open(logf, "a") as f:
            f.write(line + "\n")


def make_tokenizer():
    from fixture_support import build_tokenizer_files, load_tokenizer
    d = tempfile.mkdtemp(prefix="demo-tok-")
    vp, mp = build_tokenizer_files(os.path.join(ROOT, "Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz"), d)
    return load_tokenizer(vp, mp)


def encode(tok, text):
    ids = tok(text, truncation=False, add_special_tokens=False)["input_ids"]
    ids = [49406] + ids[:75] + [49407]
    return ids + [49407] * (77 - len(ids))


def build_pool():
    rng = random.Random(DATA_SEED)
    imgs, caps = [], []
    for _ in range(POOL_SIZE):
        img, cap, _ = data.sample(rng)
        imgs.append(img)
        caps.append(cap)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()  # uint8 N,3,64,64
    return x, caps


def to_pixels(u8):
    return u8.float() / 127.5 - 1.0


def flip(x, gen):
    m = torch.rand(x.shape[0], generator=gen) < 0.5
    x = x.clone()
    x[m] = x[m].flip(-1)
    return x


def build_models():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(SEED)
    vae = AutoencoderKL(**VAE_CONFIG)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    unet = UNet2DConditionModel(**UNET_CONFIG)
    return vae, text, unet


def ema_update(ema, model, decay):
    with torch.no_grad():
        for e, p in zip(ema.values(), model.state_dict().values()):
            if e.is_floating_point():
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
            else:
                e.copy_(p)


EXPORT_ONLY = False   # --export-only: read the checkpoints, never write them


def save_atomic(obj, path):
    if EXPORT_ONLY:
        return
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------- phase 1: VAE

def train_vae(vae, pool, args, logf):
    path = os.path.join(args.workdir, "vae.pt")
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    step, hist, t_used = 0, [], 0.0
    gen = torch.Generator().manual_seed(SEED + 1)
    if os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        vae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, hist, t_used = ck["step"], ck["hist"], ck["time"]
        gen.set_state(ck["gen"])
        log(f"vae: resumed at step {step}", logf)
    vae.train()
    t0 = time.time() - t_used
    while step < args.vae_steps and time.time() - t0 < args.vae_seconds:
        idx = torch.randint(0, pool.shape[0], (args.vae_batch,), generator=gen)
        x = to_pixels(flip(pool[idx], gen))
        if VAE_CROP < x.shape[-1]:
            oy, ox = (4 * torch.randint(0, (x.shape[-1] - VAE_CROP) // 4 + 1, (2,), generator=gen)).tolist()
            x = x[:, :, oy:oy + VAE_CROP, ox:ox + VAE_CROP]
        lr = args.vae_lr * min(1.0, (step + 1) / 50)
        for g in opt.param_groups:
            g["lr"] = lr
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        mse = F.mse_loss(rec, x)
        kl_sum = post.kl().mean()
        kl = kl_sum / post.mean[0].numel()
        loss = mse + KL_WEIGHT * kl_sum
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        hist.append((step, mse.item(), kl.item()))
        if step % args.log_every == 0:
            recent = hist[-args.log_every:]
            log(f"vae step {step}/{args.vae_steps} mse {np.mean([h[1] for h in recent]):.5f} "
                f"kl/dim {np.mean([h[2] for h in recent]):.4f} ({time.time() - t0:.0f}s)", logf)
        if step % args.ckpt_every == 0:
            save_atomic({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step, "hist": hist,
                         "time": time.time() - t0, "gen": gen.get_state()}, path)
    save_atomic({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step, "hist": hist,
                 "time": time.time() - t0, "gen": gen.get_state()}, path)
    log(f"vae done: {step} steps, {time.time() - t0:.0f}s", logf)
    vae.eval()
    return hist, time.time() - t0


@torch.no_grad()
def encode_pool(vae, pool):
    means, stds = [], []
    for i in range(0, pool.shape[0], 256):
        post = vae.encode(to_pixels(pool[i:i + 256])).latent_dist
        means.append(post.mean)
        stds.append(post.std)
    return torch.cat(means), torch.cat(stds)


# ---------------------------------------------------------------- phase 2: text encoder + UNet

def alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0).float()


def train_unet(text, unet, lat_mean, lat_std, scale, ids, uncond_ids, args, logf):
    path = os.path.join(args.workdir, "unet.pt")
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=args.unet_lr, weight_decay=0.01)
    ema_u = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    ema_t = {k: v.detach().clone() for k, v in text.state_dict().items()}
    step, hist, t_used = 0, [], 0.0
    gen = torch.Generator().manual_seed(SEED + 2)
    if os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        unet.load_state_dict(ck["unet"])
        text.load_state_dict(ck["text"])
        opt.load_state_dict(ck["opt"])
        ema_u, ema_t = ck["ema_unet"], ck["ema_text"]
        step, hist, t_used = ck["step"], ck["hist"], ck["time"]
        gen.set_state(ck["gen"])
        log(f"unet: resumed at step {step}", logf)
    ac = alphas_cumprod()
    unet.train()
    text.train()
    t0 = time.time() - t_used
    n = lat_mean.shape[0]
    while step < args.unet_steps and time.time() - t0 < args.unet_seconds:
        B = args.unet_batch
        idx = torch.randint(0, n, (B,), generator=gen)
        z = lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=gen)
        fl = torch.rand(B, generator=gen) < 0.5
        z[fl] = z[fl].flip(-1)   # flipping latents = flipping images (near enough for flat shapes)
        z = z * scale
        tok = ids[idx].clone()
        drop = torch.rand(B, generator=gen) < UNCOND_PROB
        tok[drop] = uncond_ids
        t = torch.randint(0, 1000, (B,), generator=gen)
        noise = torch.randn(z.shape, generator=gen)
        if args.noise_offset and step >= args.noise_offset_from:
            # "offset noise": a random per-channel constant in the noise, so that the mean
            # colour cannot be read off the noisy latent even at t = 999 and has to come
            # from the caption (without it the model ignored the colour words).
            noise = noise + args.noise_offset * torch.randn(B, z.shape[1], 1, 1, generator=gen)
        a = ac[t].view(B, 1, 1, 1)
        zt = a.sqrt() * z + (1 - a).sqrt() * noise
        lr = args.unet_lr * min(1.0, (step + 1) / 200)
        progress = max(step / args.unet_steps, (time.time() - t0) / max(args.unet_seconds, 1e-9))
        if progress > 0.8:   # linear decay to 0.1x over the last 20% (of steps or time budget)
            lr *= max(0.1, (1.0 - progress) / 0.2)
        for g in opt.param_groups:
            g["lr"] = lr
        ctx = text(tok)[0]
        pred = unet(zt, t, encoder_hidden_states=ctx).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(EMA_DECAY, (1 + step) / (10 + step))
        ema_update(ema_u, unet, decay)
        ema_update(ema_t, text, decay)
        hist.append((step, loss.item()))
        if step % args.log_every == 0:
            recent = hist[-args.log_every:]
            log(f"unet step {step}/{args.unet_steps} loss {np.mean([h[1] for h in recent]):.5f} "
                f"lr {lr:.2e} ({time.time() - t0:.0f}s)", logf)
        if step % args.ckpt_every == 0:
            save_atomic({"unet": unet.state_dict(), "text": text.state_dict(), "opt": opt.state_dict(),
                         "ema_unet": ema_u, "ema_text": ema_t, "step": step, "hist": hist,
                         "time": time.time() - t0, "gen": gen.get_state()}, path)
    save_atomic({"unet": unet.state_dict(), "text": text.state_dict(), "opt": opt.state_dict(),
                 "ema_unet": ema_u, "ema_text": ema_t, "step": step, "hist": hist,
                 "time": time.time() - t0, "gen": gen.get_state()}, path)
    log(f"unet done: {step} steps, {time.time() - t0:.0f}s", logf)
    return hist, time.time() - t0


# ---------------------------------------------------------------- phase 3: export

def write_checkpoint(vae, text, unet, vae_cfg, extra_meta, out=OUT):
    from fixture_support import ddpm_schedule_buffers, unet_diffusers_to_ldm, vae_diffusers_to_ldm
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint)
    from safetensors.torch import save_file

    ldm = dict(ddpm_schedule_buffers())
    for k, v in unet_diffusers_to_ldm(unet.state_dict(), UNET_CONFIG).items():
        ldm["model.diffusion_model." + k] = v.detach().clone()
    for k, v in vae_diffusers_to_ldm(vae.state_dict(), vae_cfg).items():
        ldm["first_stage_model." + k] = v.detach().clone()
    for k, v in text.state_dict().items():
        if k.endswith("position_ids"):
            continue
        ldm["cond_stage_model.transformer." + k] = v.detach().clone()
    ldm["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    # Our mapping must be undone exactly by diffusers' own single-file loader.
    for name, module, back in [
        ("unet", unet, convert_ldm_unet_checkpoint(ldm, dict(UNET_CONFIG))),
        ("vae", vae, convert_ldm_vae_checkpoint(ldm, dict(vae_cfg))),
        ("text", text, convert_ldm_clip_checkpoint(ldm)),
    ]:
        sd = {k: v for k, v in module.state_dict().items() if not k.endswith("position_ids")}
        back = {k: v for k, v in back.items() if not k.endswith("position_ids")}
        assert set(back) == set(sd), (name, sorted(set(back) ^ set(sd))[:10])
        for k in sd:
            assert torch.equal(back[k], sd[k]), (name, k)
    st = {k: (v.half().contiguous() if v.is_floating_point() else v.contiguous()) for k, v in ldm.items()}

    def plain(cfg):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    meta = {
        "format": "pt",
        "sdshell_config": json.dumps({
            "unet": plain(UNET_CONFIG),
            "vae": plain(vae_cfg),
            "text_encoder": plain(TEXT_CONFIG),
            "scheduler": {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                          "num_train_timesteps": 1000, "prediction_type": "epsilon"},
        }),
    }
    meta.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in extra_meta.items()})
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    save_file(st, tmp, metadata=meta)
    os.replace(tmp, out)
    return os.path.getsize(out)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae-steps", type=int, default=1500)
    ap.add_argument("--vae-seconds", type=float, default=240, help="time budget of phase 1 (stops at steps or time)")
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--unet-steps", type=int, default=100000)
    ap.add_argument("--unet-seconds", type=float, default=1620, help="time budget of phase 2")
    ap.add_argument("--unet-batch", type=int, default=16)
    ap.add_argument("--unet-lr", type=float, default=8e-4)
    ap.add_argument("--noise-offset", type=float, default=0.15)
    ap.add_argument("--noise-offset-from", type=int, default=7700,
                    help="first UNet step that uses offset noise (the run that made models/demo.safetensors "
                         "added it at step 7700, after the plain objective had not learned colours)")
    ap.add_argument("--export-only", action="store_true",
                    help="export from the checkpoints in --workdir without training further")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "demo-train"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--bench", action="store_true", help="time a few steps of each phase and exit")
    args = ap.parse_args()
    if args.export_only:
        global EXPORT_ONLY
        EXPORT_ONLY = True
        args.vae_seconds = args.unet_seconds = 0.0
    torch.set_num_threads(args.threads)
    os.makedirs(args.workdir, exist_ok=True)
    logf = os.path.join(args.workdir, "train.log")
    random.seed(SEED)
    np.random.seed(SEED)

    tok = make_tokenizer()
    assert encode(tok, "a red circle on a blue background")[:9] == [49406, 320, 736, 7117, 525, 320, 1746, 5994, 49407]
    t = time.time()
    pool, caps = build_pool()
    log(f"pool: {pool.shape[0]} images in {time.time() - t:.1f}s", logf)
    cap_ids = {c: encode(tok, c) for c in sorted(set(caps))}
    ids = torch.tensor([cap_ids[c] for c in caps], dtype=torch.long)
    uncond = torch.tensor(encode(tok, ""), dtype=torch.long)
    vae, text, unet = build_models()
    n_params = {k: sum(p.numel() for p in m.parameters()) for k, m in
                [("vae", vae), ("text_encoder", text), ("unet", unet)]}
    log(f"parameters: {n_params} (f16 bytes ~{2 * sum(n_params.values()) / 1e6:.1f} MB)", logf)

    if args.bench:
        for B in (16,):
            x = to_pixels(pool[:B])
            t = time.time()
            for _ in range(3):
                post = vae.encode(x).latent_dist
                loss = F.mse_loss(vae.decode(post.sample()).sample, x)
                loss.backward()
            log(f"vae batch {B}: {(time.time() - t) / 3:.3f}s/step", logf)
        for B in (32, 64):
            z = torch.randn(B, 4, 16, 16)
            t = time.time()
            for _ in range(3):
                ctx = text(ids[:B])[0]
                loss = unet(z, torch.randint(0, 1000, (B,)), encoder_hidden_states=ctx).sample.square().mean()
                loss.backward()
            log(f"unet batch {B}: {(time.time() - t) / 3:.3f}s/step", logf)
        return

    vae_hist, vae_time = train_vae(vae, pool, args, logf)
    lat_mean, lat_std = encode_pool(vae, pool)
    scale = float(1.0 / lat_mean.std())
    log(f"latents: mean {lat_mean.mean():.4f} std {lat_mean.std():.4f} -> scaling_factor {scale:.5f}; "
        f"posterior std mean {lat_std.mean():.4f}", logf)
    vae_cfg = dict(VAE_CONFIG, scaling_factor=round(scale, 5))

    unet_hist, unet_time = train_unet(text, unet, lat_mean, lat_std, vae_cfg["scaling_factor"], ids, uncond,
                                      args, logf)
    ck = torch.load(os.path.join(args.workdir, "unet.pt"), weights_only=False)
    unet.load_state_dict(ck["ema_unet"])
    text.load_state_dict(ck["ema_text"])
    unet.eval()
    text.eval()

    last = lambda h, i: float(np.mean([x[i] for x in h[-200:]]))  # noqa: E731
    import diffusers
    import transformers
    extra = {
        "sdshell_demo": "tiny SD-1.x-architecture text-to-image model trained from scratch on procedural shapes",
        "training_script": "Tests/Fixtures/generators/train_demo_model.py",
        "dataset": "Tests/Fixtures/generators/make_demo_data.py (64x64, 'a {colour} {shape} on a {background} background'; "
                   f"held out: {'; '.join(data.caption(*h) for h in data.HELD_OUT)})",
        "seed": str(SEED),
        "data_seed": str(DATA_SEED),
        "vae_steps": str(vae_hist[-1][0]),
        "vae_batch": str(args.vae_batch),
        "unet_steps": str(unet_hist[-1][0]),
        "unet_batch": str(args.unet_batch),
        "unet_lr": str(args.unet_lr),
        "vae_final_mse": f"{last(vae_hist, 1):.6f}",
        "vae_final_kl_per_dim": f"{last(vae_hist, 2):.5f}",
        "unet_final_loss": f"{last(unet_hist, 1):.5f}",
        "train_seconds": f"{vae_time + unet_time:.0f}",
        "weights": "UNet and text encoder: EMA (decay 0.999); float16",
        "versions": f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}",
    }
    size = write_checkpoint(vae, text, unet, vae_cfg, extra, args.out)
    log(f"wrote {args.out}: {size} bytes; final vae mse {extra['vae_final_mse']}, "
        f"unet loss {extra['unet_final_loss']}", logf)
    with open(os.path.join(args.workdir, "summary.json"), "w") as f:
        json.dump(dict(extra, parameters=n_params, vae_seconds=vae_time, unet_seconds=unet_time,
                       scaling_factor=vae_cfg["scaling_factor"]), f, indent=2)
    assert size <= 20_000_000


if __name__ == "__main__":
    sys.exit(main())

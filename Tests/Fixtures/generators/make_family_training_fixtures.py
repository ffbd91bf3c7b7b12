#!/usr/bin/env python3
"""Makes Tests/TrainingTests/Fixtures/family_training.json: one textual-inversion training step's loss
and d loss / d vectors on the tiny SD 2.x v-prediction model Tests/Fixtures/tiny-sd2-v.safetensors, as
AUTOMATIC1111's webui (1.10) train_embedding computes it through LDM's LatentDiffusion.p_losses with
parameterization "v". The SD 2.x / v counterpart of make_training_fixtures.py's "gradient" section
(training.json, SD 1.x, eps): the same case and JSON layout, so one Swift test can read both.
Everything float32 on the CPU, one thread; the f16 weights widened to f32.

Rerun (after make_family_fixtures.py, which wrote the model; needs torch, diffusers, safetensors,
transformers, ftfy, regex in .venv-ref; no network; a few seconds):
    .venv-ref/bin/python Tests/Fixtures/generators/make_family_training_fixtures.py
It uses fixture_support.py for A1111's tokenize_line (placeholder id 0 and fixes), EmbeddingsWithFixes,
emphasis_original, the Embedding / EmbeddingDatabase classes, the slow CLIPTokenizer and
make_alphas_cumprod. The OpenCLIP text tower (open_clip's modules, sequence-first
nn.MultiheadAttention) is restated from make_family_fixtures.py (generators do not import each
other); the UNet is diffusers' UNet2DConditionModel loaded with diffusers' own
convert_ldm_unet_checkpoint. Writes only the JSON (a temporary file, then renamed). Deterministic:
same library versions and CPU kind -> same file (every random value from a seeded torch.Generator).

What A1111 / LDM do (and this script does the same)
---------------------------------------------------
train_embedding: embedding.vec.requires_grad = True (every model weight frozen); per batch
    c = cond_stage_model(batch.cond_text); loss = sd_model.forward(x, c)[0] / gradient_step (1).
Conditioning (FrozenOpenCLIPEmbedderWithCustomWords over LDM FrozenOpenCLIPEmbedder(layer="penultimate")):
  each text -> tokenize_line (the embedding's name -> placeholder ids 0, one per vector, and a fix
  (offset after BOS, embedding)); the batch's chunks go through the text model TOGETHER ([B, 77]);
  process_tokens: id_pad 0 != id_end 49407, so in each row every position AFTER the first 49407
  becomes 0 (the placeholders, also 0, come before it); EmbeddingsWithFixes on
  model.token_embedding replaces rows offset+1 .. offset+vectors of each row by embedding.vec
  (torch.cat: the gradient reaches vec), before + positional_embedding; encode_with_transformer:
  resblocks 0 .. N-2 (here blocks 0 and 1 of 3: the loop breaks at i == len - 1), then ln_final;
  clip_skip is never read for OpenCLIP; emphasis "Original" over the WHOLE [B, 77, 8] tensor:
      m = z.mean(); z = z * multipliers[..., None]; z = z * (m / z.mean())
  (gradients flow through the multiply and both means).
LatentDiffusion.forward(x, c): t = randint(0, 1000, (B,)) (given here), p_losses with
  noise = randn_like(x) (given here):
      x_noisy = sqrt_alphas_cumprod[t] * x0 + sqrt_one_minus_alphas_cumprod[t] * noise
      model_output = UNet(x_noisy, t, c)          (apply_model, c_crossattn [c])
      target = get_v(x0, noise, t) = sqrt_alphas_cumprod[t] * noise - sqrt_one_minus_alphas_cumprod[t] * x0
               (parameterization "v"; "eps" would be target = noise)
      loss_simple = mse(target, model_output, reduction none).mean([1, 2, 3])      # per item
      loss = loss_simple / exp(logvar[t]) + logvar[t]   (logvar zeros: exact no-op)
      loss = l_simple_weight (1) * loss.mean() + original_elbo_weight (0) * loss_vlb
  i.e. loss = mean over items of (mean over [C, H, W] of (model_output - v)^2).
  The buffers are LDM register_schedule's: betas = linspace(0.00085**0.5, 0.012**0.5, 1000,
  float64)**2, ac = cumprod(1 - betas) in FLOAT64, sqrt_alphas_cumprod = float32(sqrt(ac)),
  sqrt_one_minus_alphas_cumprod = float32(sqrt(1 - ac)) (square roots in float64, rounded once).
  The file carries only alphas_cumprod / betas / alphas_cumprod_prev (float32; alphas_cumprod =
  float32(ac), checked), so A1111 (strict=False) keeps the registered sqrt buffers.
  get_v uses the SAME two buffers as the noising. Each case also records "f32_ac_variant" (the
  coefficients from the float32 alphas_cumprod, sqrt rounded once) and "loss_eps" / "grad_eps"
  (the same step with target = noise, which must differ: the v target matters).

File layout (tensors are {"shape": [...], "data": [row-major float32 values written as exact Python
floats]}, as training.json)
-------------------------------------------------------------------------------------------------
{"generator", "rerun", "versions", "model": {"path", "sha256", "bytes", "family": "sd2",
   "prediction": "v_prediction", "v_test_mean", "text_width", "latent_shape", "attention",
   "text_encoder"}, "a1111": {rules as strings},
 "gradient": {"embedding": {"name", "vectors", "width", "seed", "scale", "init", "name_ids", "vec": [2, 8]},
   "latents_init",
   "cases": [{"name", "comment", "prompts": [B texts], "batch_size",
     "parsed": [[[text, weight]] per prompt], "ids": [[77 ints] per item] (as fed: 0 after the first 49407),
     "multipliers": [[77 float32] per item], "fixes": [[{"offset", "vectors"}] per item] (offset after BOS),
     "timesteps": [B ints], "latent_seeds", "noise_seeds", "latents": [B, 4, 8, 8], "noise": [B, 4, 8, 8],
     "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod": [B float32] (LDM buffers at t),
     "conditioning": [B, 77, 8], "model_output": [B, 4, 8, 8], "v_target": [B, 4, 8, 8],
     "loss_per_item": [B], "loss", "loss_flat_mean", "grad": [2, 8], "grad_norm", "grad_row_norms": [2],
     "loss_eps", "loss_eps_per_item": [B], "grad_eps": [2, 8],
     "f32_ac_variant": {"sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "loss", "grad",
        "loss_abs_diff", "grad_max_abs_diff"},
     "tolerance_guide": {"sdpa_loss_abs_diff", "sdpa_grad_max_abs_diff", "transformers_loss_abs_diff",
        "transformers_grad_max_abs_diff" (transformers' CLIPTextModel from diffusers'
        convert_open_clip_checkpoint instead of the OpenCLIP modules), "float64_loss",
        "float64_loss_abs_diff", "float64_grad_max_abs_diff", "float64_grad_norm",
        "float64_fd_directional_rel_err"}}]}}
"""

import copy
import hashlib
import json
import math
import os
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_support as fs  # noqa: E402
from fixture_support import ROOT, VOCAB_GZ, build_tokenizer_files, load_tokenizer  # noqa: E402

import safetensors.torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_open_clip_checkpoint  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", message=".*torch_dtype.*")

MODEL_REL = "Tests/Fixtures/tiny-sd2-v.safetensors"
MODEL = os.path.join(ROOT, MODEL_REL)
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "family_training.json")
GENERATOR = "Tests/Fixtures/generators/make_family_training_fixtures.py"
MAX_BYTES = 200_000

enc, f32, version = fs.enc, fs.f32, fs.version

ID_START, ID_END, ID_PAD = 49406, 49407, 0
VOCAB, POSITIONS = 49408, 77
NAME = "vtrain"          # v|train</w> = [85, 3231]: two tokens (the brief's "sdtwovec" is four: sd|tw|ove|c</w>)
VECTORS = 2
WIDTH = 8
LATENT = (4, 8, 8)
VEC_SEED = 5001
SCALE = 0.3
PREFIX = "cond_stage_model.model."

# the tiny SD 2.x models' architecture (make_family_fixtures.py SD2_UNET_CONFIG / SD2_TEXT_CONFIG)
SD2_UNET_CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    block_out_channels=(32, 32), layers_per_block=1, cross_attention_dim=8,
    attention_head_dim=(1, 1), use_linear_projection=True, norm_num_groups=32,
)
SD2_TEXT_CONFIG = dict(   # OpenCLIP blocks 0-1 + ln_final (penultimate) as transformers' CLIPTextModel
    vocab_size=VOCAB, max_position_embeddings=POSITIONS, hidden_size=8, intermediate_size=32,
    num_hidden_layers=2, num_attention_heads=1, hidden_act="gelu", layer_norm_eps=1e-5,
    projection_dim=8, bos_token_id=ID_START, eos_token_id=ID_END, pad_token_id=1,
)

# (name, prompts, timesteps, latent seeds, noise seeds, comment)
GRADIENT_CASES = [
    ("batch 1", ["a photo of vtrain"], [500], [5101], [5201],
     "one item; the embedding's 2 vectors at ids rows 4 and 5 (fix offset 3)"),
    ("batch 2", ["vtrain next to vtrain", "a vtrain circle"], [100, 900], [5102, 5103], [5202, 5203],
     "two items, text model on [2, 77] ids together, emphasis mean over the batch; item 0 uses the "
     "embedding twice (fixes at offsets 0 and 4), item 1 once (offset 1); loss = mean of the per-item means"),
    ("batch 1, (vtrain:1.3)", ["(vtrain:1.3) on a table"], [250], [5104], [5204],
     "multiplier 1.3 on the 2 placeholder rows, then the mean restored (EmphasisOriginal); the gradient "
     "flows through the multiply and both means"),
]


class TransformersText(torch.nn.Module):
    """The same encoder as transformers' CLIPTextModel (a tolerance guide): last_hidden_state."""

    def __init__(self, te):
        super().__init__()
        self.te = te
        self.token_embedding = te.text_model.embeddings.token_embedding

    def install(self, module):
        self.te.text_model.embeddings.token_embedding = module

    def forward(self, tokens):
        return self.te(input_ids=tokens).last_hidden_state


def load_models():
    sd = safetensors.torch.load_file(MODEL)
    assert torch.equal(sd["alphas_cumprod"], fs.make_alphas_cumprod())
    unet = UNet2DConditionModel(**SD2_UNET_CONFIG)
    unet.load_state_dict({k: v.float() for k, v in convert_ldm_unet_checkpoint(sd, dict(unet.config)).items()},
                         strict=True)
    oc = fs.OpenCLIPText(width=8, heads=1, layers=3, proj=8)
    oc.load_state_dict({k[len(PREFIX):]: v.float() for k, v in sd.items() if k.startswith(PREFIX)}, strict=True)
    te = CLIPTextModel._from_config(CLIPTextConfig(**SD2_TEXT_CONFIG), attn_implementation="eager")
    te_sd = convert_open_clip_checkpoint(te, sd, prefix=PREFIX)
    te.load_state_dict({k: v.float() for k, v in te_sd.items() if not k.startswith("text_model.encoder.layers.2.")},
                       strict=True)
    for m in (unet, oc, te):
        m.eval().requires_grad_(False)
        assert all(p.dtype == torch.float32 for p in m.parameters())
    unet.set_attn_processor(AttnProcessor())
    return unet, oc, TransformersText(te)


def v_test_mean(unet):
    """A1111 sd_models_config.is_using_v_parameterization_for_sd2 on this UNet (context width 8): v if < -1."""
    with torch.no_grad():
        x = torch.ones((1, 4, 8, 8)) * 0.5
        ctx = torch.ones((1, 2, WIDTH)) * 0.5
        return (unet(x, torch.asarray([999]), encoder_hidden_states=ctx).sample - x).mean().item()


# --- conditioning with gradient ----------------------------------------------------------------------

def make_db(tok, vec):
    db = fs.EmbeddingDatabase(tok, WIDTH)
    e = fs.Embedding(vec, NAME)
    e.vectors = vec.shape[0]
    e.shape = vec.shape[-1]
    db.register_embedding(e)
    return db, e


def chunk_for(tok, db, comma, text):
    parsed, chunks, _ = fs.tokenize_line(text, tok, db, comma)
    assert len(chunks) == 1, text
    return parsed, chunks[0]


def with_pad(tokens):
    """process_tokens: id_pad 0 != id_end, so every position after the first 49407 becomes 0."""
    t = list(tokens)
    i = t.index(ID_END)
    t[i + 1:] = [ID_PAD] * (len(t) - i - 1)
    return t


def encode_batch(text, chunk_rows):
    """process_tokens on one chunk per text, the batch together, EmbeddingsWithFixes installed on the
    token embedding, then EmphasisOriginal over the whole batch."""
    hijack = fs.Hijack()
    plain = text.token_embedding
    wrapped = fs.EmbeddingsWithFixes(plain, hijack)
    if isinstance(text, TransformersText):
        text.install(wrapped)
    else:
        text.token_embedding = wrapped
    try:
        tokens = torch.asarray([with_pad(c.tokens) for c in chunk_rows])
        hijack.fixes = [c.fixes for c in chunk_rows]
        z = text(tokens)
        assert hijack.fixes is None
    finally:
        if isinstance(text, TransformersText):
            text.install(plain)
        else:
            text.token_embedding = plain
    multipliers = torch.asarray([c.multipliers for c in chunk_rows], dtype=torch.float32)
    return fs.emphasis_original(z, multipliers.to(z.dtype))


# --- LDM p_losses ------------------------------------------------------------------------------------

def ldm_schedule():
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    ac64 = np.cumprod(1.0 - betas, axis=0)
    ac32 = fs.make_alphas_cumprod()
    assert np.array_equal(torch.tensor(ac64, dtype=torch.float32).numpy(), ac32.numpy())
    return {"ac64": ac64, "ac32": ac32,
            "sqrt_ac": torch.tensor(np.sqrt(ac64), dtype=torch.float32),
            "sqrt_1m_ac": torch.tensor(np.sqrt(1.0 - ac64), dtype=torch.float32),
            "logvar": torch.full((1000,), 0.0)}


def p_losses(unet, x0, noise, t, cond, sa, sm, logvar_t, parameterization):
    shape = (x0.shape[0], 1, 1, 1)
    sa, sm = sa.reshape(shape), sm.reshape(shape)
    x_noisy = sa * x0 + sm * noise
    out = unet(x_noisy, t, encoder_hidden_states=cond).sample
    target = sa * noise - sm * x0 if parameterization == "v" else noise
    loss_simple = torch.nn.functional.mse_loss(target, out, reduction="none").mean([1, 2, 3])
    loss = loss_simple / torch.exp(logvar_t) + logvar_t
    loss = 1.0 * loss.mean()
    loss = loss + 0.0 * loss_simple.mean()             # original_elbo_weight 0 * loss_vlb
    return loss, loss_simple, out, target


def randn(seed, shape, dtype=torch.float32):
    g = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32).to(dtype)


def run_case(unet, text, tok, comma, sched, vec0, case, parameterization="v", dtype=torch.float32,
             coeffs=None, direction=None):
    _, prompts, timesteps, lseeds, nseeds, _ = case
    p = vec0.detach().clone().to(dtype).requires_grad_(True)
    db, emb = make_db(tok, p)
    parsed_rows, chunk_rows = zip(*[chunk_for(tok, db, comma, s) for s in prompts])
    x0 = torch.stack([randn(s, LATENT) for s in lseeds]).to(dtype)
    noise = torch.stack([randn(s, LATENT) for s in nseeds]).to(dtype)
    t = torch.tensor(timesteps, dtype=torch.int64)
    if coeffs is not None:
        sa, sm = coeffs
    elif dtype == torch.float64:
        sa = torch.tensor(np.sqrt(sched["ac64"][timesteps]), dtype=dtype)
        sm = torch.tensor(np.sqrt(1.0 - sched["ac64"][timesteps]), dtype=dtype)
    else:
        sa, sm = sched["sqrt_ac"][t], sched["sqrt_1m_ac"][t]
    logvar_t = sched["logvar"][t].to(dtype)

    def loss_at(vec):
        emb.vec = vec
        cond = encode_batch(text, chunk_rows)
        return p_losses(unet, x0, noise, t, cond, sa.to(dtype), sm.to(dtype), logvar_t, parameterization) + (cond,)

    loss, loss_simple, out, target, cond = loss_at(p)
    loss.backward()
    r = {"parsed": parsed_rows, "chunks": chunk_rows, "x0": x0, "noise": noise, "sa": sa, "sm": sm,
         "loss": loss.detach(), "loss_simple": loss_simple.detach(), "out": out.detach(), "target": target.detach(),
         "cond": cond.detach(), "grad": p.grad.detach().clone()}
    if direction is not None:
        h = 1e-6
        with torch.no_grad():
            lp = loss_at(p.detach() + h * direction)[0].item()
            lm = loss_at(p.detach() - h * direction)[0].item()
        r["fd"] = (lp - lm) / (2 * h)
    return r


def gradient_section(unet, oc, tt, tok, comma, sched):
    vec0 = randn(VEC_SEED, (VECTORS, WIDTH)) * SCALE
    oc64 = copy.deepcopy(oc).double()
    unet64 = copy.deepcopy(unet).double()
    direction = randn(5401, (VECTORS, WIDTH), torch.float64)
    cases = []
    for case in GRADIENT_CASES:
        name, prompts, timesteps, lseeds, nseeds, comment = case
        r = run_case(unet, oc, tok, comma, sched, vec0, case)
        again = run_case(unet, oc, tok, comma, sched, vec0, case)
        assert torch.equal(again["grad"], r["grad"]) and torch.equal(again["loss"], r["loss"]), name
        ids = [with_pad(c.tokens) for c in r["chunks"]]
        for c, row in zip(r["chunks"], ids):
            for o, e in c.fixes:
                assert e.name == NAME and row[o + 1:o + 1 + VECTORS] == [0] * VECTORS
            assert row[0] == ID_START and row.count(ID_END) == 1
        # the placeholder rows matter: without the substitution (plain token 0 rows) the loss differs
        with torch.no_grad():
            z0 = fs.emphasis_original(oc.encode_sd2(torch.asarray(ids)), torch.asarray([c.multipliers for c in r["chunks"]]))
            l0 = p_losses(unet, r["x0"], r["noise"], torch.tensor(timesteps), z0, r["sa"], r["sm"],
                          sched["logvar"][torch.tensor(timesteps)], "v")[0]
        assert l0.item() != r["loss"].item(), name
        # the v target matters: eps (target = noise) gives another loss and gradient
        re_ = run_case(unet, oc, tok, comma, sched, vec0, case, parameterization="eps")
        assert torch.equal(re_["out"], r["out"]) and abs(re_["loss"].item() - r["loss"].item()) > 1e-3, name
        assert not torch.equal(re_["grad"], r["grad"]), name
        flat = ((r["out"] - r["target"]) ** 2).mean()
        # the float32-alphas_cumprod coefficients
        ac = [float(sched["ac32"][i]) for i in timesteps]
        sa32 = torch.tensor([math.sqrt(v) for v in ac], dtype=torch.float32)
        sm32 = torch.tensor([math.sqrt(1.0 - v) for v in ac], dtype=torch.float32)
        rv = run_case(unet, oc, tok, comma, sched, vec0, case, coeffs=(sa32, sm32))
        # transformers' CLIPTextModel instead of the OpenCLIP modules; SDPA attention in the UNet
        rt = run_case(unet, tt, tok, comma, sched, vec0, case)
        unet.set_attn_processor(AttnProcessor2_0())
        rs = run_case(unet, oc, tok, comma, sched, vec0, case)
        unet.set_attn_processor(AttnProcessor())
        # float64 everything, with a central difference along a random direction
        torch.set_default_dtype(torch.float64)
        try:
            r64 = run_case(unet64, oc64, tok, comma, sched, vec0, case, dtype=torch.float64, direction=direction)
        finally:
            torch.set_default_dtype(torch.float32)
        g64 = r64["grad"]
        dd = float((g64 * direction).sum())
        loss = f32(r["loss"])
        rec = {
            "name": name, "comment": comment, "prompts": prompts, "batch_size": len(prompts),
            "parsed": [[[s, w] for s, w in pr] for pr in r["parsed"]],
            "ids": ids,
            "multipliers": [[f32(m) for m in c.multipliers] for c in r["chunks"]],
            "fixes": [[{"offset": o, "vectors": int(e.vectors)} for o, e in c.fixes] for c in r["chunks"]],
            "timesteps": timesteps, "latent_seeds": lseeds, "noise_seeds": nseeds,
            "latents": enc(r["x0"]), "noise": enc(r["noise"]),
            "sqrt_alphas_cumprod": [f32(v) for v in r["sa"].tolist()],
            "sqrt_one_minus_alphas_cumprod": [f32(v) for v in r["sm"].tolist()],
            "conditioning": enc(r["cond"]), "model_output": enc(r["out"]), "v_target": enc(r["target"]),
            "loss_per_item": [f32(v) for v in r["loss_simple"].tolist()],
            "loss": loss,
            "loss_flat_mean": f32(flat),
            "grad": enc(r["grad"]),
            "grad_norm": float(r["grad"].double().norm()),
            "grad_row_norms": [float(v) for v in r["grad"].double().norm(dim=1).tolist()],
            "loss_eps": f32(re_["loss"]),
            "loss_eps_per_item": [f32(v) for v in re_["loss_simple"].tolist()],
            "grad_eps": enc(re_["grad"]),
            "f32_ac_variant": {
                "formula": "sqrt_alphas_cumprod = float32(sqrt(ac32[t])), sqrt_one_minus_alphas_cumprod = "
                           "float32(sqrt(1 - ac32[t])) from the float32 alphas_cumprod (used for the noising AND "
                           "the v target)",
                "sqrt_alphas_cumprod": [f32(v) for v in sa32.tolist()],
                "sqrt_one_minus_alphas_cumprod": [f32(v) for v in sm32.tolist()],
                "loss": f32(rv["loss"]),
                "grad": enc(rv["grad"]),
                "loss_abs_diff": abs(f32(rv["loss"]) - loss),
                "grad_max_abs_diff": float((rv["grad"] - r["grad"]).abs().max()),
            },
            "tolerance_guide": {
                "sdpa_loss_abs_diff": abs(f32(rs["loss"]) - loss),
                "sdpa_grad_max_abs_diff": float((rs["grad"] - r["grad"]).abs().max()),
                "transformers_loss_abs_diff": abs(f32(rt["loss"]) - loss),
                "transformers_grad_max_abs_diff": float((rt["grad"] - r["grad"]).abs().max()),
                "float64_loss": float(r64["loss"]),
                "float64_loss_abs_diff": abs(float(r64["loss"]) - loss),
                "float64_grad_max_abs_diff": float((g64 - r["grad"].double()).abs().max()),
                "float64_grad_norm": float(g64.norm()),
                "float64_fd_directional_rel_err": abs(r64["fd"] - dd) / abs(dd),
            },
        }
        tg = rec["tolerance_guide"]
        assert tg["float64_fd_directional_rel_err"] < 1e-5, tg
        assert tg["float64_grad_max_abs_diff"] < 1e-3 * rec["grad_norm"], tg
        assert tg["transformers_grad_max_abs_diff"] < 1e-3 * rec["grad_norm"], tg
        cases.append(rec)
        print(f"  {name:22s} ids={[row[:row.index(ID_END) + 1] for row in ids]} loss={loss:.9g} "
              f"loss_eps={rec['loss_eps']:.9g} |grad|={rec['grad_norm']:.6g} "
              f"f32-ac dloss={rec['f32_ac_variant']['loss_abs_diff']:.2e} "
              f"tf dgrad={tg['transformers_grad_max_abs_diff']:.2e} sdpa dgrad={tg['sdpa_grad_max_abs_diff']:.2e} "
              f"f64 dgrad={tg['float64_grad_max_abs_diff']:.2e} fd rel={tg['float64_fd_directional_rel_err']:.1e}",
              flush=True)
    name_ids = tok([NAME], add_special_tokens=False)["input_ids"][0]
    return {
        "embedding": {"name": NAME, "vectors": VECTORS, "width": WIDTH, "seed": VEC_SEED, "scale": SCALE,
                      "init": "torch.randn((2, 8), generator=torch.Generator('cpu').manual_seed(seed)) * 0.3",
                      "name_ids": name_ids, "vec": enc(vec0)},
        "latents_init": "per item: torch.randn((4, 8, 8), generator=torch.Generator('cpu').manual_seed(seed)), "
                        "stacked; noise likewise with noise_seeds",
        "cases": cases,
    }


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with open(MODEL, "rb") as f:
        model_bytes = f.read()
    unet, oc, tt = load_models()
    vmean = v_test_mean(unet)
    assert vmean < -1, vmean                    # A1111 would call this file v-prediction
    with tempfile.TemporaryDirectory() as d:
        tok = load_tokenizer(*build_tokenizer_files(VOCAB_GZ, d))
    comma = tok.get_vocab()[",</w>"]
    assert tok([NAME], add_special_tokens=False)["input_ids"][0] == [85, 3231]
    sched = ldm_schedule()
    gradient = gradient_section(unet, oc, tt, tok, comma, sched)
    doc = {
        "generator": GENERATOR,
        "rerun": ".venv-ref/bin/python Tests/Fixtures/generators/make_family_training_fixtures.py "
                 "(see the script's docstring)",
        "versions": {"torch": torch.__version__, "diffusers": version("diffusers"),
                     "transformers": version("transformers"), "numpy": np.__version__},
        "model": {"path": MODEL_REL, "sha256": hashlib.sha256(model_bytes).hexdigest(), "bytes": len(model_bytes),
                  "family": "sd2", "prediction": "v_prediction", "v_test_mean": vmean,
                  "text_width": WIDTH, "latent_shape": list(LATENT),
                  "text_encoder": "OpenCLIP (3 resblocks, width 8, 1 head, exact GELU); LDM penultimate: "
                                  "blocks 0-1 then ln_final",
                  "attention": "UNet: diffusers AttnProcessor (explicit softmax); OpenCLIP: nn.MultiheadAttention; "
                               "float32 (f16 weights widened)"},
        "a1111": {
            "version": "webui 1.10: modules/textual_inversion/textual_inversion.py train_embedding; "
                       "sd_hijack_open_clip.FrozenOpenCLIPEmbedderWithCustomWords; LDM (stablediffusion) ddpm.py "
                       "LatentDiffusion.p_losses with parameterization 'v'",
            "trainable": "only embedding.vec ([vectors, width]) requires grad; the text encoder and UNet are frozen",
            "conditioning": "tokenize_line (embedding name -> placeholder ids 0 and a fix); the batch's chunks "
                            "together ([B, 77]); every id after the first 49407 of a row -> 0 (id_pad); "
                            "EmbeddingsWithFixes on the OpenCLIP token_embedding (vec rows replace rows "
                            "offset+1.. before the positional embedding); resblocks 0 .. N-2 then ln_final "
                            "(clip_skip ignored); EmphasisOriginal over the whole batch: m = z.mean(); "
                            "z = z * multipliers; z = z * (m / z.mean())",
            "noising": "x_noisy = sqrt_alphas_cumprod[t] * x0 + sqrt_one_minus_alphas_cumprod[t] * noise; the "
                       "buffers = float32(sqrt(ac64)) and float32(sqrt(1 - ac64)) from the float64 cumprod (LDM "
                       "register_schedule); t integer per item (randint(0, 1000) in A1111; given here)",
            "target": "v = get_v(x0, noise, t) = sqrt_alphas_cumprod[t] * noise - sqrt_one_minus_alphas_cumprod[t] "
                      "* x0 (the same buffers); 'eps' parameterization: target = noise (loss_eps)",
            "loss": "model_output = UNet(x_noisy, t, cond); loss = mean over items of mean over [C, H, W] of "
                    "(target - model_output)^2 (logvar 0, l_simple_weight 1, original_elbo_weight 0: exact "
                    "no-ops); / gradient_step (1)",
        },
        "gradient": gradient,
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    size = len(text.encode("utf-8")) + 1
    assert size < MAX_BYTES, size
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({size} bytes): {len(gradient['cases'])} gradient cases")


if __name__ == "__main__":
    sys.exit(main())

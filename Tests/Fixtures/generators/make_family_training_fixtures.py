#!/usr/bin/env python3
"""Makes Tests/TrainingTests/Fixtures/family_training.json: one textual-inversion training step's loss
and d loss / d vectors on the tiny SD 2.x v-prediction model Tests/Fixtures/tiny-sd2-v.safetensors, as
AUTOMATIC1111's webui (1.10) train_embedding computes it through LDM's LatentDiffusion.p_losses with
parameterization "v". The SD 2.x / v counterpart of make_training_fixtures.py's "gradient" section
(training.json, SD 1.x, eps): the same case and JSON layout, so one Swift test can read both.
Everything float32 on the CPU, one thread; the f16 weights widened to f32.

Rerun (after make_family_fixtures.py, which wrote the models (tiny-sd2-v, tiny-sdxl); needs torch, diffusers, safetensors,
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

SDXL: the "sdxl_gradient" section (tiny-sdxl, epsilon)
-----------------------------------------------------
sdshell's SDXL textual inversion: LDM p_losses as above (the same float64-derived sqrt buffers), target
= noise, with SDXL's conditioning as kohya's sdxl_train_textual_inversion feeds the UNet. The embedding
"xltrain" (xl|train</w> = [36529, 3231], 2 vectors) has vec_l [2, 8] (CLIP-L) and vec_g [2, 16] (bigG),
both trained. Each prompt is tokenized (tokenize_line; both A1111 wrappers produce the same chunk for
these prompts) and encoded ON ITS OWN (one 77-token chunk):
  CLIP-L: the folder's text_encoder (transformers CLIPTextModel), ids padded with 49407 (id_pad =
    id_end), EmbeddingsWithFixes with textual_inversion_key "clip_l" (vec_l at the placeholder rows),
    z_l = hidden_states[-2], no final_layer_norm; EmphasisOriginal on z_l [1, 77, 8].
  bigG: the single file's conditioner.embedders.1.model on OpenCLIPText, ids 0 after the first 49407,
    EmbeddingsWithFixes with key "clip_g" (vec_g), z_g = the input of the last block (no ln_final),
    EmphasisOriginal on z_g [1, 77, 16]; pooled = ln_final(last block)[first 49407] @ text_projection
    (not emphasised; it depends on vec_g through attention).
  context = cat([z_l, z_g], -1) [1, 77, 24]; contexts and pooled concatenated over the batch.
  model_output = UNet(x_t, t, context, added_cond_kwargs {"text_embeds": pooled, "time_ids": sizes}),
    sizes per item [orig_h, orig_w, crop_top, crop_left, target_h, target_w]; diffusers' time_ids
    embedding is checked bit for bit against sgm's ConcatTimestepEmbedderND(8), so this is y = cat(pooled,
    6 x 8 size embeddings).
  loss = mean over items of mean over [C, H, W] of (noise - model_output)^2.
Guides: transformers' CLIPTextModelWithProjection (the folder's text_encoder_2) for bigG, SDPA in the
UNet, float64 everything (CLIP-L with transformers' SDPA attention: its eager path takes the softmax in
float32) with a central difference along a random direction of (vec_l, vec_g).
NOTE: the tiny SDXL UNet has 64 channels (two per GroupNorm group) at its attention level and in the
middle (make_family_fixtures.py's SDXL_UNET_WIDTHS), so the timestep embedding and y (pooled + sizes)
change the output there (with one channel per group each resnet's norm2 would remove the per-channel
time-embedding bias exactly). Both are asserted: "loss_without_sizes_check" (batch 2, every item
[16, 16, 0, 0, 16, 16]) differs from "loss" by more than 1e-6 in float64, and the pooled output's share
of grad_g is not zero ("y_pooled_check": float64 grad_g with the pooled output detached differs by more
than 1e-6 relative).

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
        "float64_fd_directional_rel_err"}}]},
 "sdxl_model": {"paths", "sha256", "family": "sdxl", "prediction": "epsilon", ...}, "sdxl_a1111": {rules},
 "sdxl_gradient": {"embedding": {"name", "vectors", "width_l", "width_g", "seeds", "scale", "init", "name_ids",
     "vec_l": [2, 8], "vec_g": [2, 16]}, "latents_init",
   "cases": [{"name", "comment", "prompts", "batch_size", "sizes": [[6 ints] per item], "parsed",
     "ids_clip_l" (49407-padded), "ids_clip_g" (0 after the first 49407), "multipliers", "fixes",
     "timesteps", "latent_seeds", "noise_seeds", "latents", "noise": [B, 4, 8, 8], "sqrt_alphas_cumprod",
     "sqrt_one_minus_alphas_cumprod", "pooled": [B, 16], "context_mean_abs": [B], "model_output": [B, 4, 8, 8],
     "loss_per_item", "loss", "grad_l": [2, 8], "grad_g": [2, 16], "grad_l_norm", "grad_g_norm", "grad_norm",
     "tolerance_guide": {"sdpa_*", "transformers_clip_g_*", "float64_*"}, "y_pooled_check",
     "loss_without_sizes_check" (batch 2 only): {"sizes", "loss", "loss_per_item", "loss_abs_diff",
        "grad_max_abs_diff", "float64_loss_abs_diff", "note"}}]}}
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
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

transformers.logging.set_verbosity_error()
warnings.filterwarnings("ignore", message=".*torch_dtype.*")

MODEL_REL = "Tests/Fixtures/tiny-sd2-v.safetensors"
MODEL = os.path.join(ROOT, MODEL_REL)
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "family_training.json")
GENERATOR = "Tests/Fixtures/generators/make_family_training_fixtures.py"
MAX_BYTES = 300_000

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
        tokens = torch.asarray([fs.a1111_pad(c.tokens, ID_PAD) for c in chunk_rows])
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
    db, emb = fs.trainable_embedding_db(tok, p, NAME, WIDTH)
    parsed_rows, chunk_rows = zip(*[fs.one_chunk(tok, db, comma, s) for s in prompts])
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


def case_inputs(r, timesteps, lseeds, nseeds):
    """The record fields every gradient case has, in file order: the chunks' emphasis multipliers
    and embedding fixes, the timesteps and seeds, latents, noise and the noising coefficients."""
    return {
        "multipliers": [[f32(m) for m in c.multipliers] for c in r["chunks"]],
        "fixes": [[{"offset": o, "vectors": int(e.vectors)} for o, e in c.fixes] for c in r["chunks"]],
        "timesteps": timesteps, "latent_seeds": lseeds, "noise_seeds": nseeds,
        "latents": enc(r["x0"]), "noise": enc(r["noise"]),
        "sqrt_alphas_cumprod": [f32(v) for v in r["sa"].tolist()],
        "sqrt_one_minus_alphas_cumprod": [f32(v) for v in r["sm"].tolist()],
    }


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
        ids = [fs.a1111_pad(c.tokens, ID_PAD) for c in r["chunks"]]
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
            **case_inputs(r, timesteps, lseeds, nseeds),
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


# --- SDXL: the "sdxl_gradient" section ---------------------------------------------------------------

SDXL_DIR_REL = "Tests/Fixtures/tiny-sdxl"
SDXL_FILE_REL = "Tests/Fixtures/tiny-sdxl.safetensors"
SDXL_NAME = "xltrain"     # xl|train</w> = [36529, 3231]: two tokens
SDXL_WIDTH_L, SDXL_WIDTH_G, SDXL_POOLED, SDXL_TIME_DIM = 8, 16, 16, 8
SDXL_VEC_SEEDS = {"clip_l": 6001, "clip_g": 6002}
SDXL_PREFIX_G = "conditioner.embedders.1.model."
SDXL_DEFAULT_SIZES = [16, 16, 0, 0, 16, 16]
# (name, prompts, sizes per item, timesteps, latent seeds, noise seeds, comment)
SDXL_GRADIENT_CASES = [
    ("batch 1", ["a photo of xltrain"], [[16, 16, 0, 0, 16, 16]], [500], [6101], [6201],
     "one item; the embedding's 2 vectors at ids rows 4 and 5 (fix offset 3) in BOTH encoders"),
    ("batch 2", ["xltrain next to xltrain", "a xltrain circle"], [[20, 16, 2, 0, 16, 16], [16, 24, 0, 4, 16, 16]],
     [100, 900], [6102, 6103], [6202, 6203],
     "two items, each prompt encoded on its own (emphasis mean per prompt and per encoder), contexts and "
     "pooled concatenated; each item its own sizes; item 0 uses the embedding twice (fixes at offsets 0 and 4), "
     "item 1 once (offset 1); loss = mean of the per-item means"),
    ("batch 1, (xltrain:1.3)", ["(xltrain:1.3) on a table"], [[16, 16, 0, 0, 16, 16]], [250], [6104], [6204],
     "multiplier 1.3 on the 2 placeholder rows of both encoders' z, then each mean restored (EmphasisOriginal); "
     "the pooled output is not emphasised"),
]


class KeyedView:
    """What A1111's EmbeddingsWithFixes reads of an SDXL embedding under textual_inversion_key:
    embedding.vec[key] (clip_l or clip_g)."""

    def __init__(self, embedding, key):
        self.vec = embedding.vec[key]
        self.name = embedding.name
        self.vectors = embedding.vectors


class HFText(torch.nn.Module):
    """transformers' CLIPTextModel / CLIPTextModelWithProjection with a replaceable token embedding.
    mode "clip_l": hidden_states[-2] (sgm layer "hidden", no final_layer_norm); mode "clip_g":
    (hidden_states[-2], text_embeds) (diffusers' reading of sgm's penultimate + pooled)."""

    def __init__(self, te, mode):
        super().__init__()
        self.te = te
        self.mode = mode
        self.token_embedding = te.text_model.embeddings.token_embedding

    def install(self, module):
        self.te.text_model.embeddings.token_embedding = module

    def forward(self, tokens):
        out = self.te(input_ids=tokens, output_hidden_states=True)
        if self.mode == "clip_l":
            return out.hidden_states[-2]
        return out.hidden_states[-2], out.text_embeds


class OpenCLIPG(torch.nn.Module):
    """sgm FrozenOpenCLIPEmbedder2 on OpenCLIPText: (penultimate, pooled)."""

    def __init__(self, oc):
        super().__init__()
        self.oc = oc
        self.token_embedding = oc.token_embedding

    def install(self, module):
        self.oc.token_embedding = module

    def forward(self, tokens):
        z, pooled, _ = self.oc.encode_sdxl(tokens)
        return z, pooled


def sgm_size_vector(sizes):
    """GeneralConditioner embedders 2-4 (ConcatTimestepEmbedderND(8) on original_size_as_tuple,
    crop_coords_top_left, target_size_as_tuple): [B, 48]."""
    s = torch.tensor(sizes, dtype=torch.float32)
    b = s.shape[0]
    return torch.cat([fs.sgm_timestep_embedding(s[:, i:i + 2].reshape(-1), SDXL_TIME_DIM).reshape(b, 2 * SDXL_TIME_DIM)
                      for i in (0, 2, 4)], dim=1)


def load_sdxl_models():
    d = os.path.join(ROOT, SDXL_DIR_REL)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(d, "unet"), torch_dtype=torch.float32)
    clip_l = CLIPTextModel.from_pretrained(os.path.join(d, "text_encoder"), torch_dtype=torch.float32,
                                           attn_implementation="eager")
    te2 = CLIPTextModelWithProjection.from_pretrained(os.path.join(d, "text_encoder_2"), torch_dtype=torch.float32,
                                                      attn_implementation="eager")
    sd = safetensors.torch.load_file(os.path.join(ROOT, SDXL_FILE_REL))
    og = fs.OpenCLIPText(width=SDXL_WIDTH_G, heads=1, layers=3, proj=SDXL_POOLED)
    og.load_state_dict({k[len(SDXL_PREFIX_G):]: v.float() for k, v in sd.items() if k.startswith(SDXL_PREFIX_G)},
                       strict=True)
    # the folder's UNet IS the single file's (diffusers' own converter)
    conv = convert_ldm_unet_checkpoint(sd, dict(unet.config))
    own = unet.state_dict()
    assert set(conv) == set(own) and all(torch.equal(conv[k].float(), own[k]) for k in own)
    for m in (unet, clip_l, te2, og):
        m.eval().requires_grad_(False)
        assert all(p.dtype == torch.float32 for p in m.parameters())
    unet.set_attn_processor(AttnProcessor())
    return unet, HFText(clip_l, "clip_l"), OpenCLIPG(og), HFText(te2, "clip_g")


def encode_keyed(text, key, tokens, fixes):
    """One prompt's chunk through one encoder with EmbeddingsWithFixes (textual_inversion_key = key)."""
    hijack = fs.Hijack()
    plain = text.token_embedding
    text.install(fs.EmbeddingsWithFixes(plain, hijack))
    try:
        hijack.fixes = [[(o, KeyedView(e, key)) for o, e in fixes]]
        out = text(torch.asarray([tokens]))
        assert hijack.fixes is None
    finally:
        text.install(plain)
    return out


def sdxl_condition(texts, chunk, dtype):
    """A1111's SDXL conditioning of one prompt (one chunk): (context [1, 77, 24], pooled [1, 16],
    ids_l, ids_g)."""
    m = torch.asarray([chunk.multipliers], dtype=torch.float32).to(dtype)
    ids_l = list(chunk.tokens)                      # id_pad = id_end: as tokenize_line made them
    ids_g = fs.a1111_pad(chunk.tokens, ID_PAD)                  # id_pad 0 after the first 49407
    z_l = fs.emphasis_original(encode_keyed(texts["clip_l"], "clip_l", ids_l, chunk.fixes), m)
    z_g, pooled = encode_keyed(texts["clip_g"], "clip_g", ids_g, chunk.fixes)
    z_g = fs.emphasis_original(z_g, m)
    return torch.cat([z_l, z_g], dim=2), pooled, ids_l, ids_g


def sdxl_run_case(unet, texts, tok, comma, sched, vec0, case, dtype=torch.float32, sizes=None, direction=None,
                  detach_pooled=False):
    _, prompts, sizes0, timesteps, lseeds, nseeds, _ = case
    sizes = sizes0 if sizes is None else sizes
    pl = vec0["clip_l"].detach().clone().to(dtype).requires_grad_(True)
    pg = vec0["clip_g"].detach().clone().to(dtype).requires_grad_(True)
    db = fs.EmbeddingDatabase(tok, SDXL_WIDTH_L + SDXL_WIDTH_G)
    emb = fs.Embedding({"clip_l": pl, "clip_g": pg}, SDXL_NAME)
    emb.vectors, emb.shape = VECTORS, SDXL_WIDTH_L + SDXL_WIDTH_G
    db.register_embedding(emb)
    parsed_rows, chunk_rows = zip(*[fs.one_chunk(tok, db, comma, s) for s in prompts])
    x0 = torch.stack([randn(s, LATENT) for s in lseeds]).to(dtype)
    noise = torch.stack([randn(s, LATENT) for s in nseeds]).to(dtype)
    t = torch.tensor(timesteps, dtype=torch.int64)
    if dtype == torch.float64:
        sa = torch.tensor(np.sqrt(sched["ac64"][timesteps]), dtype=dtype)
        sm = torch.tensor(np.sqrt(1.0 - sched["ac64"][timesteps]), dtype=dtype)
    else:
        sa, sm = sched["sqrt_ac"][t], sched["sqrt_1m_ac"][t]
    shape = (len(prompts), 1, 1, 1)
    time_ids = torch.tensor(sizes, dtype=dtype)
    # diffusers' text_time embedding of time_ids IS sgm's size vector (bit for bit in float32)
    if dtype == torch.float32:
        assert torch.equal(unet.add_time_proj(time_ids.flatten()).reshape(len(prompts), -1), sgm_size_vector(sizes))

    def loss_at(vl, vg):
        emb.vec = {"clip_l": vl, "clip_g": vg}
        conds = [sdxl_condition(texts, c, dtype) for c in chunk_rows]
        context = torch.cat([c[0] for c in conds])
        pooled = torch.cat([c[1] for c in conds])
        if detach_pooled:
            pooled = pooled.detach()
        x_noisy = sa.reshape(shape) * x0 + sm.reshape(shape) * noise
        out = unet(x_noisy, t, encoder_hidden_states=context,
                   added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        loss_simple = torch.nn.functional.mse_loss(noise, out, reduction="none").mean([1, 2, 3])
        return loss_simple.mean(), loss_simple, out, context, pooled, conds

    loss, loss_simple, out, context, pooled, conds = loss_at(pl, pg)
    loss.backward()
    r = {"parsed": parsed_rows, "chunks": chunk_rows, "x0": x0, "noise": noise, "sa": sa, "sm": sm,
         "loss": loss.detach(), "loss_simple": loss_simple.detach(), "out": out.detach(),
         "context": context.detach(), "pooled": pooled.detach(),
         "ids_l": [c[2] for c in conds], "ids_g": [c[3] for c in conds],
         "grad_l": pl.grad.detach().clone(), "grad_g": pg.grad.detach().clone()}
    if direction is not None:
        h = 1e-6
        dl, dg = direction
        with torch.no_grad():
            lp = loss_at(pl.detach() + h * dl, pg.detach() + h * dg)[0].item()
            lm = loss_at(pl.detach() - h * dl, pg.detach() - h * dg)[0].item()
        r["fd"] = (lp - lm) / (2 * h)
    return r


def sdxl_gradient_section(unet, clip_l, og, te2, tok, comma, sched):
    vec0 = {k: randn(s, (VECTORS, w)) * SCALE
            for (k, s), w in zip(SDXL_VEC_SEEDS.items(), (SDXL_WIDTH_L, SDXL_WIDTH_G))}
    texts = {"clip_l": clip_l, "clip_g": og}
    # float64: transformers' eager attention takes its softmax in float32 (softmax(..., dtype=float32)),
    # which leaves ~1e-10 noise in a float64 loss and spoils the central difference; its SDPA path does not
    clip_l64 = copy.deepcopy(clip_l).double()
    clip_l64.te.set_attn_implementation("sdpa")
    assert clip_l64.te.config._attn_implementation == "sdpa"
    texts64 = {"clip_l": clip_l64, "clip_g": copy.deepcopy(og).double()}
    unet64 = copy.deepcopy(unet).double()
    direction = (randn(6401, (VECTORS, SDXL_WIDTH_L), torch.float64),
                 randn(6402, (VECTORS, SDXL_WIDTH_G), torch.float64))
    cases = []
    for case in SDXL_GRADIENT_CASES:
        name, prompts, sizes, timesteps, lseeds, nseeds, comment = case
        r = sdxl_run_case(unet, texts, tok, comma, sched, vec0, case)
        again = sdxl_run_case(unet, texts, tok, comma, sched, vec0, case)
        for k in ("loss", "grad_l", "grad_g"):
            assert torch.equal(again[k], r[k]), (name, k)
        for c, row_l, row_g in zip(r["chunks"], r["ids_l"], r["ids_g"]):
            assert c.fixes
            for o, e in c.fixes:
                assert e.name == SDXL_NAME and row_g[o + 1:o + 1 + VECTORS] == [0] * VECTORS
                assert row_l[o + 1:o + 1 + VECTORS] == [0] * VECTORS
            assert row_g[0] == ID_START and row_g.count(ID_END) == 1 and row_l[-1] == ID_END
        # the gradient reaches both embeddings (bigG also through the pooled output)
        assert r["grad_l"].abs().min() > 0 and r["grad_g"].abs().min() > 0, name
        loss = f32(r["loss"])
        # the size conditioning matters: every item at [16, 16, 0, 0, 16, 16]
        rd = None
        if any(s != SDXL_DEFAULT_SIZES for s in sizes):
            rd = sdxl_run_case(unet, texts, tok, comma, sched, vec0, case, sizes=[SDXL_DEFAULT_SIZES] * len(prompts))
        # tolerance guides: transformers' CLIPTextModelWithProjection for bigG; SDPA in the UNet; float64
        rt = sdxl_run_case(unet, {"clip_l": clip_l, "clip_g": te2}, tok, comma, sched, vec0, case)
        unet.set_attn_processor(AttnProcessor2_0())
        rs = sdxl_run_case(unet, texts, tok, comma, sched, vec0, case)
        unet.set_attn_processor(AttnProcessor())
        torch.set_default_dtype(torch.float64)
        try:
            r64 = sdxl_run_case(unet64, texts64, tok, comma, sched, vec0, case, dtype=torch.float64,
                                direction=direction)
            # the tiny UNet ignores y (see the docstring): float64, default sizes / pooled detached
            rd64 = None if rd is None else sdxl_run_case(unet64, texts64, tok, comma, sched, vec0, case,
                                                         dtype=torch.float64, sizes=[SDXL_DEFAULT_SIZES] * len(prompts))
            rp64 = sdxl_run_case(unet64, texts64, tok, comma, sched, vec0, case, dtype=torch.float64,
                                 detach_pooled=True)
        finally:
            torch.set_default_dtype(torch.float32)
        assert torch.equal(rp64["loss"], r64["loss"]), name
        pooled_share = {"float64_pooled_detached_grad_g_max_abs_diff": float((rp64["grad_g"] - r64["grad_g"]).abs().max()),
                        "float64_grad_g_norm": float(r64["grad_g"].norm())}
        assert pooled_share["float64_pooled_detached_grad_g_max_abs_diff"] > 1e-6 * pooled_share["float64_grad_g_norm"], pooled_share
        dd = float((r64["grad_l"] * direction[0]).sum() + (r64["grad_g"] * direction[1]).sum())
        gn = float(torch.cat([r["grad_l"].double().flatten(), r["grad_g"].double().flatten()]).norm())

        def gmax(a, b):
            return max(float((a["grad_l"].double() - b["grad_l"].double()).abs().max()),
                       float((a["grad_g"].double() - b["grad_g"].double()).abs().max()))

        rec = {
            "name": name, "comment": comment, "prompts": prompts, "batch_size": len(prompts),
            "sizes": sizes,
            "parsed": [[[s, w] for s, w in pr] for pr in r["parsed"]],
            "ids_clip_l": r["ids_l"], "ids_clip_g": r["ids_g"],
            **case_inputs(r, timesteps, lseeds, nseeds),
            "pooled": enc(r["pooled"]),
            "context_mean_abs": [f32(v) for v in r["context"].abs().mean([1, 2]).tolist()],
            "model_output": enc(r["out"]),
            "loss_per_item": [f32(v) for v in r["loss_simple"].tolist()],
            "loss": loss,
            "grad_l": enc(r["grad_l"]), "grad_g": enc(r["grad_g"]),
            "grad_l_norm": float(r["grad_l"].double().norm()), "grad_g_norm": float(r["grad_g"].double().norm()),
            "grad_norm": gn,
            "tolerance_guide": {
                "sdpa_loss_abs_diff": abs(f32(rs["loss"]) - loss),
                "sdpa_grad_max_abs_diff": gmax(rs, r),
                "transformers_clip_g_loss_abs_diff": abs(f32(rt["loss"]) - loss),
                "transformers_clip_g_grad_max_abs_diff": gmax(rt, r),
                "float64_loss": float(r64["loss"]),
                "float64_loss_abs_diff": abs(float(r64["loss"]) - loss),
                "float64_grad_max_abs_diff": gmax(r64, r),
                "float64_grad_l_norm": float(r64["grad_l"].norm()),
                "float64_grad_g_norm": float(r64["grad_g"].norm()),
                "float64_fd_directional_rel_err": abs(r64["fd"] - dd) / abs(dd),
            },
        }
        if rd is not None:
            rec["loss_without_sizes_check"] = {
                "sizes": [SDXL_DEFAULT_SIZES] * len(prompts),
                "loss": f32(rd["loss"]),
                "loss_per_item": [f32(v) for v in rd["loss_simple"].tolist()],
                "loss_abs_diff": abs(f32(rd["loss"]) - loss),
                "grad_max_abs_diff": gmax(rd, r),
                "float64_loss_abs_diff": abs(float(rd64["loss"]) - float(r64["loss"])),
                "note": "every item's sizes [16, 16, 0, 0, 16, 16] instead of its own: the size conditioning "
                        "changes the loss (asserted above 1e-6 in float64)",
            }
            assert rec["loss_without_sizes_check"]["float64_loss_abs_diff"] > 1e-6, rec["loss_without_sizes_check"]
        rec["y_pooled_check"] = pooled_share
        tg = rec["tolerance_guide"]
        assert tg["float64_fd_directional_rel_err"] < 1e-5, tg
        assert tg["float64_grad_max_abs_diff"] < 1e-3 * gn, tg
        assert tg["transformers_clip_g_grad_max_abs_diff"] < 1e-3 * gn, tg
        cases.append(rec)
        print(f"  sdxl {name:22s} ids={[row[:row.index(ID_END) + 1] for row in r['ids_g']]} loss={loss:.9g} "
              f"|grad_l|={rec['grad_l_norm']:.6g} |grad_g|={rec['grad_g_norm']:.6g} "
              + (f"no-sizes loss={rd['loss'].item():.9g} " if rd is not None else "")
              + f"tf dgrad={tg['transformers_clip_g_grad_max_abs_diff']:.2e} sdpa dgrad={tg['sdpa_grad_max_abs_diff']:.2e} "
              f"f64 dgrad={tg['float64_grad_max_abs_diff']:.2e} fd rel={tg['float64_fd_directional_rel_err']:.1e}",
              flush=True)
    name_ids = tok([SDXL_NAME], add_special_tokens=False)["input_ids"][0]
    return {
        "embedding": {"name": SDXL_NAME, "vectors": VECTORS, "width_l": SDXL_WIDTH_L, "width_g": SDXL_WIDTH_G,
                      "seeds": SDXL_VEC_SEEDS, "scale": SCALE,
                      "init": "vec_l = torch.randn((2, 8), generator=torch.Generator('cpu').manual_seed(seeds.clip_l)) "
                              "* 0.3; vec_g likewise (2, 16) with seeds.clip_g",
                      "name_ids": name_ids, "vec_l": enc(vec0["clip_l"]), "vec_g": enc(vec0["clip_g"])},
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
    assert tok([SDXL_NAME], add_special_tokens=False)["input_ids"][0] == [36529, 3231]
    sdxl_parts = load_sdxl_models()
    sdxl_gradient = sdxl_gradient_section(*sdxl_parts, tok, comma, sched)
    sdxl_hashes = {rel: fs.sha256_file(os.path.join(ROOT, rel)) for rel in
                   [SDXL_DIR_REL + "/unet/diffusion_pytorch_model.safetensors",
                    SDXL_DIR_REL + "/text_encoder/model.safetensors",
                    SDXL_DIR_REL + "/text_encoder_2/model.safetensors", SDXL_FILE_REL]}
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
        "sdxl_model": {
            "paths": {"diffusers": SDXL_DIR_REL, "safetensors": SDXL_FILE_REL}, "sha256": sdxl_hashes,
            "family": "sdxl", "prediction": "epsilon", "latent_shape": list(LATENT),
            "text_widths": {"clip_l": SDXL_WIDTH_L, "clip_g": SDXL_WIDTH_G}, "pooled_width": SDXL_POOLED,
            "time_embed_dim": SDXL_TIME_DIM,
            "text_encoders": "CLIP-L: the folder's text_encoder (transformers CLIPTextModel, 3 layers, quick_gelu), "
                             "hidden_states[-2], no final_layer_norm; bigG: the single file's "
                             "conditioner.embedders.1.model (OpenCLIP, 3 resblocks, width 16, exact GELU): the input "
                             "of the last block (no ln_final) and pooled = ln_final(last block)[first 49407] @ "
                             "text_projection (= the folder's text_encoder_2 text_embeds)",
            "unet": "the folder's unet (= the single file's model.diffusion_model, checked with diffusers' "
                    "convert_ldm_unet_checkpoint), diffusers AttnProcessor; y through added_cond_kwargs "
                    "(text_embeds = pooled, time_ids = sizes), checked bit for bit against sgm's "
                    "ConcatTimestepEmbedderND(8)",
        },
        "sdxl_a1111": {
            "objective": "sdshell's SDXL textual inversion: LDM p_losses as A1111 trains SD 1/2, with SDXL's "
                         "conditioning as kohya's sdxl_train_textual_inversion feeds it; epsilon target",
            "trainable": "vec_l [2, 8] and vec_g [2, 16] require grad; everything else frozen",
            "conditioning": "each prompt tokenized and encoded on its own (one 77-token chunk); EmbeddingsWithFixes "
                            "with textual_inversion_key clip_l / clip_g puts vec_l / vec_g at the placeholder rows "
                            "of each encoder's token embedding; CLIP-L ids padded with 49407 (id_pad = id_end), "
                            "bigG ids 0 after the first 49407; EmphasisOriginal per prompt and per encoder on z "
                            "(not on pooled); context = cat([z_l, z_g], -1) [1, 77, 24]; contexts and pooled "
                            "concatenated over the batch",
            "vector": "y = cat(pooled [16], emb(orig_h), emb(orig_w), emb(crop_top), emb(crop_left), "
                      "emb(target_h), emb(target_w)) per item, emb = timestep_embedding(x, 8) (cos half first); "
                      "sizes = [orig_h, orig_w, crop_top, crop_left, target_h, target_w] (diffusers' time_ids order)",
            "noising": "x_t = sqrt_alphas_cumprod[t] * x0 + sqrt_one_minus_alphas_cumprod[t] * noise, the LDM "
                       "buffers float32(sqrt(ac64)), float32(sqrt(1 - ac64)) of the scaled-linear schedule "
                       "(as the SD 2 section)",
            "loss": "model_output = UNet(x_t, t, context, y); loss = mean over items of mean over [C, H, W] of "
                    "(noise - model_output)^2",
        },
        "sdxl_gradient": sdxl_gradient,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({size} bytes): {len(gradient['cases'])} gradient cases, "
          f"{len(sdxl_gradient['cases'])} sdxl_gradient cases")


if __name__ == "__main__":
    sys.exit(main())

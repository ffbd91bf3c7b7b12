#!/usr/bin/env python3
"""Makes Tests/TrainingTests/Fixtures/training.json: reference values for
textual-inversion training as AUTOMATIC1111's webui (1.10) does it
(modules/textual_inversion/textual_inversion.py train_embedding,
modules/textual_inversion/learn_schedule.py, LDM's LatentDiffusion.p_losses
for an eps model), on the tiny model Tests/Fixtures/tiny-sd/ (f16 weights
loaded as f32). Everything float32 on the CPU, one thread.

Rerun (after scripts/setup_reference_env.sh and make_tiny_sd.py; needs
torch, diffusers, transformers, ftfy, regex, safetensors in .venv-ref; no
network; a few seconds on one core):
    .venv-ref/bin/python Tests/Fixtures/generators/make_training_fixtures.py
It uses fixture_support.py for A1111's tokenize_line with the placeholder id 0
and fixes, EmbeddingsWithFixes, EmphasisOriginal, the Embedding /
EmbeddingDatabase classes (the code make_embedding_fixtures.py checks), the slow
CLIPTokenizer and alphas_cumprod. It writes only the JSON (to a
temporary file, then renamed). Deterministic: same library versions -> same
file (every random value comes from a seeded torch.Generator).

What A1111 does (and this script does the same)
-----------------------------------------------
1. "gradient": one training step's loss and d loss / d vectors.
   train_embedding sets embedding.vec.requires_grad = True (the only tensor
   with a gradient; every model weight is frozen), then per batch:
       c = cond_stage_model(batch.cond_text)      # the prompt texts, e.g. from
           a template line "a photo of [name]" -> "a photo of trainme"
       loss = sd_model.forward(x, c)[0] / gradient_step   (gradient_step 1 here)
   Conditioning: FrozenCLIPEmbedderWithCustomWords on the batch of texts
   (make_embedding_fixtures.py's rules): each text -> tokenize_line (a matched
   embedding name -> placeholder ids 0, one per vector, and a fix (offset after
   BOS, embedding)); the chunks of the batch go through the text model TOGETHER
   ([B, 77] ids) with EmbeddingsWithFixes, which replaces the token-embedding
   rows offset+1 .. offset+vectors of each row by embedding.vec (torch.cat, so
   the gradient reaches vec), before the position embeddings; clip_skip 1:
   z = last_hidden_state; emphasis "Original" over the WHOLE batch tensor:
       m = z.mean(); z = z * multipliers[..., None]; z = z * (m / z.mean())
   (with "(trainme:1.2)" the 2 placeholder rows get multiplier 1.2 and the
   gradient flows through both means too).
   LatentDiffusion.forward(x, c): t = randint(0, 1000, (B,)) (given here),
   p_losses(x, c, t) with noise = randn_like(x) (given here):
       x_noisy = sqrt_alphas_cumprod[t] * x + sqrt_one_minus_alphas_cumprod[t] * noise
         (per item, broadcast over [C, H, W]; the two buffers are LDM's
          register_schedule values: betas = linspace(0.00085**0.5, 0.012**0.5,
          1000, float64)**2, ac = cumprod(1 - betas) in FLOAT64, then
          sqrt_alphas_cumprod = float32(sqrt(ac)), sqrt_one_minus_alphas_cumprod
          = float32(sqrt(1 - ac)): the square roots are taken in float64 and
          rounded once. SD checkpoints carry these same float32 buffers.)
       eps = UNet(x_noisy, t (integer), c)
       loss_simple = mse_loss(noise, eps, reduction='none').mean([1, 2, 3])  # per item
       loss = loss_simple / exp(logvar[t]) + logvar[t]    (logvar = zeros: exact no-op)
       loss = l_simple_weight (1.0) * loss.mean()         # mean over the batch
       loss += original_elbo_weight (0.0) * loss_vlb       (exact no-op)
   i.e. loss = mean over items of (mean over [C, H, W] of (eps - noise)^2).
   For batch 1 that is the plain mean over all elements; for batch 2 it can
   differ from the flat mean in the last bit ("loss_flat_mean" shows it).
   The gradient is torch autograd's d loss / d vec [2, 32] (GradScaler is
   disabled on the CPU and unscales anyway; gradient_step 1 divides by 1).
   The brief's simpler coefficient formula, sqrt(ac32[t]) and sqrt(1 - ac32[t])
   from the float32 alphas_cumprod (what Sources/Training/TextualInversionLoss.swift
   computes), is recorded as the "f32_ac_variant" of each case with its loss
   and gradient, so a test can see how much the choice matters.
2. "adamw": train_embedding's optimizer,
       torch.optim.AdamW([embedding.vec], lr=scheduler.learn_rate, weight_decay=0.0)
   (betas (0.9, 0.999), eps 1e-8 by default; lr 0.005 = the UI default rate),
   stepped three times with given gradients. torch 2.x's single-tensor path
   (the CPU default, foreach/fused off), per step, float32 tensors and
   Python-double scalars cast to float32 where they meet a tensor:
       step += 1  (a float32 tensor)
       p *= 1 - lr * 0 (weight_decay 0: exactly p)
       exp_avg.lerp_(g, 1 - 0.9)             # exp_avg + 0.1f * (g - exp_avg)
       exp_avg_sq.mul_(0.999).addcmul_(g, g, value=1 - 0.999)
       bc1 = 1 - 0.9 ** step; bc2 = 1 - 0.999 ** step        (doubles)
       step_size = lr / bc1; bc2_sqrt = bc2 ** 0.5            (doubles)
       denom = (sqrt(exp_avg_sq) / bc2_sqrt) + 1e-8
       p.addcdiv_(exp_avg, denom, value=-step_size)           # p + (-step_size) * exp_avg / denom
   torch's vectorized lerp uses a fused multiply-add, so an implementation
   without one can differ by an ulp; "float64_max_abs_diff" says how far a
   float64 evaluation of the same formulas lands.
3. "learn_schedule": see the "rules" string in the JSON (LearnScheduleIterator
   / LearnRateScheduler and how train_embedding calls them). The rules are
   implemented here from that description (parse_schedule, Scheduler).

File layout (tensors are {"shape": [...], "data": [row-major float32 values
written as exact Python floats]})
-------------------------------------------------------------------------------
{"generator", "rerun", "versions", "model": {path, weight files, text_width,
  latent shape, attention}, "a1111": {rules as strings},
 "gradient": {"embedding": {"name": "trainme", "vectors": 2, "width": 32,
     "seed", "scale": 0.02, "vec": [2, 32], "name_ids"},
   "cases": [{"name", "prompts": [B texts], "batch_size",
     "parsed": [[[text, weight]] per prompt] (parse_prompt_attention),
     "ids": [[77 ints] per item], "multipliers": [[77 float32] per item],
     "fixes": [[{"offset", "vectors"}] per item] (offset counted after BOS),
     "timesteps": [B ints], "latent_seeds", "noise_seeds",
     "latents": [B, 4, 8, 8], "noise": [B, 4, 8, 8],
     "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod": [B float32] (LDM buffers at t),
     "noisy": [B, 4, 8, 8], "conditioning": [B, 77, 32], "eps": [B, 4, 8, 8],
     "loss_per_item": [B] (loss_simple), "loss", "loss_flat_mean",
     "grad": [2, 32], "grad_norm", "grad_row_norms": [2],
     "f32_ac_variant": {"sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
         "loss", "grad": [2, 32], "grad_norm", "grad_max_abs_diff", "loss_abs_diff"},
     "tolerance_guide": {"sdpa_loss_abs_diff", "sdpa_grad_max_abs_diff" (diffusers'
         SDPA attention instead of the explicit softmax), "float64_loss_abs_diff",
         "float64_grad_max_abs_diff", "float64_grad_norm" (the whole computation in
         float64), "float64_fd_directional_rel_err" (float64 central difference
         along a random direction vs the float64 autograd gradient)}}]},
 "adamw": {"lr", "betas", "eps", "weight_decay", "amsgrad": false,
   "implementation", "p0": [2, 32], "grad_seeds", "grad_scale",
   "steps": [{"step", "grad": [2, 32], "p": [2, 32] (after the step),
              "exp_avg", "exp_avg_sq": [2, 32] (after the step)}],
   "state_after_step3": {"step": 3, "exp_avg", "exp_avg_sq"},
   "float64_max_abs_diff"},
 "learn_schedule": {"rules", "steps": [the evaluated steps],
   "default_max_steps": 100000 (A1111's "Max steps" default),
   "cases": [{"schedule", "max_steps", "initial_step", "comment",
     "error": null | message, and when it parses:
     "entries": [[rate, end_step], ...] (the parsed list),
     "rates": [[step, rate | null], ...] (the rate the optimizer step taken at
        embedding.step == step uses; null: training has stopped before it;
        only steps >= initial_step),
     "changes": [[step, rate], ...] (every step where the rate is set, the
        first entry at initial_step),
     "end_step": the embedding.step at which training stops (the scheduler
        reports finished), "steps_trained": end_step - initial_step,
     "ends_before_max_steps": end_step < max_steps,
     "final_step_given": whether the schedule's last entry has an explicit
        step (other than -1) below max_steps}]}}
"""

import copy
import json
import math
import os
import sys
import tempfile
import warnings

import numpy as np
import torch

from transformers import CLIPTextModel  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402
import fixture_support as fs  # noqa: E402
from fixture_support import ROOT, VOCAB_GZ, build_tokenizer_files, load_tokenizer  # noqa: E402
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()   # the max_length / sequence-length notices A1111 also triggers
warnings.filterwarnings("ignore", message=".*torch_dtype.*")

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "tiny-sd")
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "training.json")
GENERATOR = "Tests/Fixtures/generators/make_training_fixtures.py"
MAX_BYTES = 500_000

enc, f32, sha256_file, version = fs.enc, fs.f32, fs.sha256_file, fs.version

NAME = "trainme"
VECTORS = 2
WIDTH = 32
LATENT = (4, 8, 8)
VEC_SEED = 4001
SCALE = 0.02            # randn * 0.02, as fixture_support.vectors (and trained embeddings)

# gradient cases: (name, prompts, timesteps, latent seeds, noise seeds, comment)
GRADIENT_CASES = [
    ("batch 1", ["a photo of trainme"], [421], [4101], [4201],
     "one item; the embedding's 2 vectors at ids rows 4 and 5 (fix offset 3)"),
    ("batch 1, (trainme:1.2)", ["a photo of (trainme:1.2)"], [421], [4101], [4201],
     "the same latents, noise and timestep; multiplier 1.2 on the 2 placeholder rows, then the mean restored "
     "(EmphasisOriginal); the gradient flows through the multiply and both means"),
    ("batch 2", ["a photo of trainme", "a photo of trainme"], [66, 912], [4102, 4103], [4202, 4203],
     "two items, different latents, noise and timesteps, the same prompt: text model run on [2, 77] ids, "
     "emphasis mean over the batch, loss = mean over items of the per-item means"),
]

ADAM_LR = 0.005
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
ADAM_GRAD_SEEDS = [4301, 4302, 4303]
ADAM_GRAD_SCALES = [0.01, 0.003, 0.02]

SCHEDULE_STEPS = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 5000]
DEFAULT_MAX_STEPS = 100000     # the "Max steps" default of A1111's Train tab


# --- conditioning with gradient (A1111's FrozenCLIPEmbedderWithCustomWords on a batch) ----------

def encode_batch(te, chunk_rows):
    """process_tokens for one chunk per text, the batch together: [B, 77] ids through the text
    model with EmbeddingsWithFixes installed (gradient enabled), then EmphasisOriginal over the
    whole batch."""
    hijack = fs.Hijack()
    emb_module = te.text_model.embeddings
    plain = emb_module.token_embedding
    emb_module.token_embedding = fs.EmbeddingsWithFixes(plain, hijack)
    try:
        tokens = torch.asarray([c.tokens for c in chunk_rows])
        hijack.fixes = [c.fixes for c in chunk_rows]
        z = te(input_ids=tokens).last_hidden_state
        assert hijack.fixes is None
    finally:
        emb_module.token_embedding = plain
    # torch.asarray(python floats) -> float32 as in A1111; the float64 reference widens those values
    multipliers = torch.asarray([c.multipliers for c in chunk_rows], dtype=torch.float32)
    return fs.emphasis_original(z, multipliers.to(z.dtype))


# --- LDM p_losses ---------------------------------------------------------------------------------

def ldm_schedule():
    """register_schedule's float64 alphas_cumprod and the float32 buffers LDM makes from it."""
    betas = (np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2)
    ac64 = np.cumprod(1.0 - betas, axis=0)
    ac32 = fs.make_alphas_cumprod()                     # what make_pipeline_fixtures.py uses
    assert np.array_equal(torch.tensor(ac64, dtype=torch.float32).numpy(), ac32.numpy())
    return {
        "ac64": ac64,
        "ac32": ac32,
        "sqrt_ac": torch.tensor(np.sqrt(ac64), dtype=torch.float32),
        "sqrt_1m_ac": torch.tensor(np.sqrt(1.0 - ac64), dtype=torch.float32),
        "logvar": torch.full((1000,), 0.0),
    }


def f32_ac_coefficients(sched, t):
    """The brief's / TextualInversionLoss.swift's coefficients: from the float32 alphas_cumprod,
    square roots rounded once to float32 (float64 sqrt of the exact float32 value)."""
    a = [float(sched["ac32"][i]) for i in t]
    s = torch.tensor([math.sqrt(v) for v in a], dtype=torch.float32)
    m = torch.tensor([math.sqrt(1.0 - v) for v in a], dtype=torch.float32)
    # torch float32 arithmetic gives the same where 1 - ac32 is exact in float32
    ts = torch.sqrt(sched["ac32"][t])
    tm = torch.sqrt(1 - sched["ac32"][t])
    return s, m, bool(torch.equal(ts, s) and torch.equal(tm, m))


def p_losses(unet, x0, noise, t, cond, sqrt_ac_t, sqrt_1m_t, logvar_t):
    b = x0.shape[0]
    shape = (b, 1, 1, 1)
    x_noisy = sqrt_ac_t.reshape(shape) * x0 + sqrt_1m_t.reshape(shape) * noise
    eps = unet(x_noisy, t, encoder_hidden_states=cond).sample
    loss_simple = torch.nn.functional.mse_loss(noise, eps, reduction="none").mean([1, 2, 3])
    loss = loss_simple / torch.exp(logvar_t) + logvar_t
    loss = 1.0 * loss.mean()
    loss = loss + 0.0 * loss_simple.mean()              # original_elbo_weight 0 * loss_vlb
    return loss, loss_simple, x_noisy, eps


def randn(seed, shape, dtype=torch.float32):
    g = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32).to(dtype)


def run_case(unet, te, tok, comma, sched, vec0, case, dtype=torch.float32, coeffs=None, direction=None):
    """Loss and d loss / d vec for one case. coeffs: (sqrt_ac_t, sqrt_1m_t) to override the LDM
    buffers. direction: also return the float64 central difference along it."""
    name, prompts, timesteps, lseeds, nseeds, _ = case
    p = vec0.detach().clone().to(dtype).requires_grad_(True)
    db, emb = fs.trainable_embedding_db(tok, p, NAME, WIDTH)
    parsed_rows, chunk_rows = zip(*[fs.one_chunk(tok, db, comma, text) for text in prompts])
    x0 = torch.stack([randn(s, LATENT) for s in lseeds]).to(dtype)
    noise = torch.stack([randn(s, LATENT) for s in nseeds]).to(dtype)
    t = torch.tensor(timesteps, dtype=torch.int64)
    if coeffs is None:
        sa, sm = sched["sqrt_ac"][t], sched["sqrt_1m_ac"][t]
        if dtype == torch.float64:
            sa = torch.tensor(np.sqrt(sched["ac64"][timesteps]), dtype=dtype)
            sm = torch.tensor(np.sqrt(1.0 - sched["ac64"][timesteps]), dtype=dtype)
    else:
        sa, sm = coeffs
    logvar_t = sched["logvar"][t].to(dtype)

    def loss_at(vec):
        emb.vec = vec
        cond = encode_batch(te, chunk_rows)
        return p_losses(unet, x0, noise, t, cond, sa.to(dtype), sm.to(dtype), logvar_t) + (cond,)

    loss, loss_simple, x_noisy, eps, cond = loss_at(p)
    loss.backward()
    out = {"p": p, "parsed": parsed_rows, "chunks": chunk_rows, "x0": x0, "noise": noise, "t": timesteps,
           "sa": sa, "sm": sm, "loss": loss.detach(), "loss_simple": loss_simple.detach(),
           "x_noisy": x_noisy.detach(), "eps": eps.detach(), "cond": cond.detach(), "grad": p.grad.detach().clone(),
           "emb": emb}
    if direction is not None:
        h = 1e-6
        with torch.no_grad():
            lp = loss_at(p.detach() + h * direction)[0].item()
            lm = loss_at(p.detach() - h * direction)[0].item()
        out["fd"] = (lp - lm) / (2 * h)
    emb.vec = p
    return out


def gradient_section(unet, te, tok, comma, sched):
    vec0 = randn(VEC_SEED, (VECTORS, WIDTH)) * SCALE
    assert torch.equal(vec0, fs.vectors(VEC_SEED, VECTORS, WIDTH))
    te64 = copy.deepcopy(te).double()
    # CLIP's eager attention takes its softmax in float32 whatever the input dtype; SDPA stays in float64
    te64.set_attn_implementation("sdpa")
    unet64 = copy.deepcopy(unet).double()
    direction = randn(4401, (VECTORS, WIDTH), torch.float64)
    cases = []
    for case in GRADIENT_CASES:
        name, prompts, timesteps, lseeds, nseeds, comment = case
        r = run_case(unet, te, tok, comma, sched, vec0, case)
        # determinism
        r_again = run_case(unet, te, tok, comma, sched, vec0, case)
        assert torch.equal(r_again["grad"], r["grad"]) and torch.equal(r_again["loss"], r["loss"]), name
        # the conditioning equals fixture_support's A1111 encoder (no grad) and by-hand encoder
        if len(prompts) == 1:
            hijack = fs.Hijack()
            emb_module = te.text_model.embeddings
            plain = emb_module.token_embedding
            emb_module.token_embedding = fs.EmbeddingsWithFixes(plain, hijack)
            try:
                z_a = fs.encode_a1111(te, hijack, list(r["chunks"]))
            finally:
                emb_module.token_embedding = plain
            z_h = fs.encode_by_hand(te, plain, list(r["chunks"]))
            assert torch.equal(z_a, r["cond"]) and torch.equal(z_h, r["cond"]), name
        else:
            assert torch.equal(r["cond"][0], r["cond"][1]), name
        for c in r["chunks"]:
            assert [(o, e.name) for o, e in c.fixes] == [(3, NAME)], c.fixes
            assert c.tokens[4:4 + VECTORS] == [fs.PLACEHOLDER] * VECTORS
        # the placeholder rows matter: without the substitution the loss differs
        with torch.no_grad():
            z0 = fs.emphasis_original(te(input_ids=torch.asarray([c.tokens for c in r["chunks"]])).last_hidden_state,
                                       torch.asarray([c.multipliers for c in r["chunks"]]))
            l0 = p_losses(unet, r["x0"], r["noise"], torch.tensor(timesteps), z0, r["sa"], r["sm"],
                          sched["logvar"][torch.tensor(timesteps)])[0]
        assert l0.item() != r["loss"].item(), name
        flat = ((r["eps"] - r["noise"]) ** 2).mean()
        # LDM's buffers vs the plain float32 formula
        sa32, sm32, torch_same = f32_ac_coefficients(sched, timesteps)
        rv = run_case(unet, te, tok, comma, sched, vec0, case, coeffs=(sa32, sm32))
        # SDPA attention (informational)
        unet.set_attn_processor(AttnProcessor2_0())
        rs = run_case(unet, te, tok, comma, sched, vec0, case)
        unet.set_attn_processor(AttnProcessor())
        # float64 everything
        # (default dtype float64 meanwhile: CLIP's causal mask is made with torch.full at the default dtype)
        torch.set_default_dtype(torch.float64)
        try:
            r64 = run_case(unet64, te64, tok, comma, sched, vec0, case, dtype=torch.float64, direction=direction)
        finally:
            torch.set_default_dtype(torch.float32)
        g64 = r64["grad"]
        dd = float((g64 * direction).sum())
        rec = {
            "name": name, "comment": comment, "prompts": prompts, "batch_size": len(prompts),
            "parsed": [[[txt, w] for txt, w in pr] for pr in r["parsed"]],
            "ids": [c.tokens for c in r["chunks"]],
            "multipliers": [[f32(m) for m in c.multipliers] for c in r["chunks"]],
            "fixes": [[{"offset": o, "vectors": int(e.vectors)} for o, e in c.fixes] for c in r["chunks"]],
            "timesteps": timesteps, "latent_seeds": lseeds, "noise_seeds": nseeds,
            "latents": enc(r["x0"]), "noise": enc(r["noise"]),
            "sqrt_alphas_cumprod": [f32(v) for v in r["sa"].tolist()],
            "sqrt_one_minus_alphas_cumprod": [f32(v) for v in r["sm"].tolist()],
            "noisy": enc(r["x_noisy"]), "conditioning": enc(r["cond"]), "eps": enc(r["eps"]),
            "loss_per_item": [f32(v) for v in r["loss_simple"].tolist()],
            "loss": f32(r["loss"]),
            "loss_flat_mean": f32(flat),
            "grad": enc(r["grad"]),
            "grad_norm": float(r["grad"].double().norm()),
            "grad_row_norms": [float(v) for v in r["grad"].double().norm(dim=1).tolist()],
            "f32_ac_variant": {
                "formula": "sqrt_alphas_cumprod = float32(sqrt(ac32[t])), sqrt_one_minus_alphas_cumprod = "
                           "float32(sqrt(1 - ac32[t])) from the float32 alphas_cumprod (square roots of the exact "
                           "float32 values, rounded once)" + ("; torch float32 sqrt gives the same values here"
                                                              if torch_same else "; torch float32 sqrt differs here"),
                "sqrt_alphas_cumprod": [f32(v) for v in sa32.tolist()],
                "sqrt_one_minus_alphas_cumprod": [f32(v) for v in sm32.tolist()],
                "loss": f32(rv["loss"]),
                "grad": enc(rv["grad"]),
                "grad_norm": float(rv["grad"].double().norm()),
                "loss_abs_diff": abs(f32(rv["loss"]) - f32(r["loss"])),
                "grad_max_abs_diff": float((rv["grad"] - r["grad"]).abs().max()),
            },
            "tolerance_guide": {
                "sdpa_loss_abs_diff": abs(f32(rs["loss"]) - f32(r["loss"])),
                "sdpa_grad_max_abs_diff": float((rs["grad"] - r["grad"]).abs().max()),
                "float64_loss": float(r64["loss"]),
                "float64_loss_abs_diff": abs(float(r64["loss"]) - f32(r["loss"])),
                "float64_grad_max_abs_diff": float((g64 - r["grad"].double()).abs().max()),
                "float64_grad_norm": float(g64.norm()),
                "float64_fd_directional_rel_err": abs(r64["fd"] - dd) / abs(dd),
            },
        }
        assert rec["tolerance_guide"]["float64_fd_directional_rel_err"] < 1e-5, rec["tolerance_guide"]
        assert rec["tolerance_guide"]["float64_grad_max_abs_diff"] < 1e-3 * rec["grad_norm"], rec["tolerance_guide"]
        cases.append(rec)
        tg = rec["tolerance_guide"]
        print(f"  {name:24s} loss={rec['loss']:.9g} |grad|={rec['grad_norm']:.6g} rows={rec['grad_row_norms']} "
              f"f32-ac dloss={rec['f32_ac_variant']['loss_abs_diff']:.2e} dgrad={rec['f32_ac_variant']['grad_max_abs_diff']:.2e} "
              f"sdpa dgrad={tg['sdpa_grad_max_abs_diff']:.2e} f64 dgrad={tg['float64_grad_max_abs_diff']:.2e} "
              f"fd rel={tg['float64_fd_directional_rel_err']:.1e}", flush=True)
    name_ids = tok([NAME], add_special_tokens=False)["input_ids"][0]
    return {
        "embedding": {"name": NAME, "vectors": VECTORS, "width": WIDTH, "seed": VEC_SEED, "scale": SCALE,
                      "init": "torch.randn((2, 32), generator=torch.Generator('cpu').manual_seed(seed)) * 0.02",
                      "name_ids": name_ids, "vec": enc(vec0)},
        "latents_init": "per item: torch.randn((4, 8, 8), generator=torch.Generator('cpu').manual_seed(seed)), "
                        "stacked; noise likewise with noise_seeds",
        "cases": cases,
    }, vec0


# --- AdamW -----------------------------------------------------------------------------------------

def adamw_f64(p0, grads):
    """The same formulas in float64 (a guide for tolerances)."""
    p = p0.double().clone()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    b1, b2 = ADAM_BETAS
    out = []
    for k, g in enumerate(grads, start=1):
        g = g.double()
        m = m + (1 - b1) * (g - m)
        v = v * b2 + (1 - b2) * g * g
        bc1 = 1 - b1 ** k
        bc2 = 1 - b2 ** k
        p = p - (ADAM_LR / bc1) * m / (v.sqrt() / math.sqrt(bc2) + ADAM_EPS)
        out.append(p.clone())
    return out


def adamw_section(p0):
    p = p0.detach().clone().requires_grad_(True)
    opt = torch.optim.AdamW([p], lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=0)
    assert opt.defaults["foreach"] is None and not opt.defaults["fused"] and not opt.defaults["amsgrad"]
    grads = [randn(s, (VECTORS, WIDTH)) * sc for s, sc in zip(ADAM_GRAD_SEEDS, ADAM_GRAD_SCALES)]
    steps = []
    for k, g in enumerate(grads, start=1):
        p.grad = g.clone()
        opt.step()
        st = opt.state[p]
        assert float(st["step"]) == k and st["step"].dtype == torch.float32
        steps.append({"step": k, "grad": enc(g), "p": enc(p.detach()), "exp_avg": enc(st["exp_avg"]),
                      "exp_avg_sq": enc(st["exp_avg_sq"])})
        opt.zero_grad(set_to_none=True)
    st = opt.state[p]
    ref = adamw_f64(p0, grads)
    diff = max(float((r - torch.tensor(s["p"]["data"], dtype=torch.float64).reshape(VECTORS, WIDTH)).abs().max())
               for r, s in zip(ref, steps))
    moved = float((p.detach() - p0).abs().max())
    print(f"  adamw: |p3 - p0|max={moved:.6g} (3 * lr = {3 * ADAM_LR}), float64 diff {diff:.2e}", flush=True)
    return {
        "optimizer": "torch.optim.AdamW([vec], lr=0.005, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)",
        "lr": ADAM_LR, "betas": list(ADAM_BETAS), "eps": ADAM_EPS, "weight_decay": 0.0, "amsgrad": False,
        "implementation": "torch single-tensor path (CPU default): step += 1; exp_avg.lerp_(g, 1 - beta1) "
                          "(= exp_avg + 0.1f * (g - exp_avg), fused multiply-add in torch's vector code); "
                          "exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2); bc1 = 1 - beta1**step, "
                          "bc2 = 1 - beta2**step (doubles); step_size = lr / bc1; denom = sqrt(exp_avg_sq) / "
                          "sqrt(bc2) + eps; p.addcdiv_(exp_avg, denom, value=-step_size) (= p + (-step_size) * "
                          "exp_avg / denom); double scalars become float32 where they meet a tensor. Each step "
                          "moves every element by about lr (Adam's normalized update)",
        "p0": enc(p0), "p0_is": "gradient.embedding.vec",
        "grad_seeds": ADAM_GRAD_SEEDS, "grad_scales": ADAM_GRAD_SCALES,
        "grad_init": "torch.randn((2, 32), generator=torch.Generator('cpu').manual_seed(seed)) * scale",
        "steps": steps,
        "state_after_step3": {"step": int(st["step"]), "exp_avg": enc(st["exp_avg"]),
                              "exp_avg_sq": enc(st["exp_avg_sq"])},
        "float64_max_abs_diff": diff,
    }


# --- A1111 learn_schedule.py, from its rules -----------------------------------------------------------

SCHEDULE_RULES = (
    "A1111 learn_schedule.py (LearnScheduleIterator(text, max_steps, cur_step = initial_step)): "
    "text.split(',') -> entries (NO other separator; whitespace is not trimmed from the split, Python's "
    "int()/float() ignore surrounding whitespace); an entry that is empty or only whitespace is skipped. "
    "Each entry is split on ':'. "
    "(a) Exactly 2 parts 'rate:step': step = int(part 2) FIRST (int syntax: optional sign, digits; '1e3', "
    "'100.0', '' are errors); if step > initial_step: append (float(part 1), min(step, max_steps)), and if "
    "step > max_steps stop parsing (later entries ignored; an entry with step == max_steps does NOT stop "
    "parsing); elif step == -1: append (float(part 1), max_steps) and stop parsing; else (0 < step <= "
    "initial_step, 0, or negative other than -1) the entry is skipped silently and its rate is never "
    "parsed (so 'abc:0' is not an error). "
    "(b) Any other number of parts (1: a bare rate; 3 or more: 'a:b:c'): append (float(part 1), max_steps) "
    "and stop parsing. So a missing step means 'until max_steps' and ends the list. "
    "A ValueError from int()/float() or an empty list -> error 'Invalid learning rate schedule' (A1111 raises; "
    "training does not start). Rates are Python floats (doubles). "
    "LearnRateScheduler: (rate, end_step) = the first entry; the optimizer is created with that rate. "
    "Before every optimizer step train_embedding calls apply(optimizer, step) with step = embedding.step "
    "(steps done so far; initial_step = the embedding's saved step, 0 for a new one): if step < end_step "
    "nothing happens; otherwise the NEXT entry becomes current (ONE entry per call: an entry whose end_step "
    "is already <= step is still used for exactly one optimizer step) and its rate is set on the optimizer; "
    "if there is no next entry the scheduler is finished and training stops before that step. So with "
    "increasing steps the rate at step s is the rate of the first entry with s < end_step, and training "
    "stops when embedding.step reaches the last entry's end_step (max_steps for a last entry without a step "
    "or with -1, or whose step exceeds max_steps; earlier for a last entry with a smaller explicit step). "
    "Quirk: an entry ending exactly at max_steps followed by more entries ('0.005:100, 1e-3:1000, 1e-5' with "
    "max_steps 1000) gives one more step at step == max_steps with the next rate, then stops (max_steps + 1 "
    "steps). Other stops: A1111 refuses to train when initial_step >= max_steps; the epoch loop runs at most "
    "(max_steps - initial_step) * gradient_step epochs, which limits only datasets with one optimizer step "
    "per epoch. The same parser serves the gradient-clipping value schedule (clip_grad_sched.step each step).")


def parse_schedule(text, max_steps, initial_step=0):
    """The rules above; returns [(rate, end_step)] or raises ValueError."""
    entries = []
    for raw in text.split(","):
        if raw.strip() == "":
            continue
        parts = raw.split(":")
        if len(parts) != 2:
            entries.append((float(parts[0]), max_steps))
            break
        step = int(parts[1])
        if step > initial_step:
            entries.append((float(parts[0]), min(step, max_steps)))
            if step > max_steps:
                break
        elif step == -1:
            entries.append((float(parts[0]), max_steps))
            break
    if not entries:
        raise ValueError("empty schedule")
    return entries


def evaluate_schedule(text, max_steps, initial_step):
    """Runs the scheduler the way train_embedding calls it, one optimizer step at a time, assuming
    the epoch loop never runs out. Returns entries, {step: rate} for the steps trained, the step at
    which training stops, and the rate changes."""
    entries = parse_schedule(text, max_steps, initial_step)
    wanted = set(SCHEDULE_STEPS)
    it = iter(entries)
    rate, end = next(it)
    rates = {}
    changes = [[initial_step, rate]]
    step = initial_step
    while True:
        if step >= end:
            nxt = next(it, None)
            if nxt is None:
                break                       # finished: no optimizer step at `step`
            rate, end = nxt
            changes.append([step, rate])
        if step in wanted:
            rates[step] = rate
        step += 1
        assert step <= max_steps + len(entries)
    return entries, rates, step, changes


# (schedule, max_steps, initial_step, comment)
SCHEDULE_CASES = [
    ("0.005", DEFAULT_MAX_STEPS, 0, "a bare rate: constant until max_steps"),
    ("0.005:100, 1e-3:1000, 1e-5", DEFAULT_MAX_STEPS, 0, "the usual staircase; the last entry runs to max_steps"),
    ("0.1:10, 0.01:20, 0.001", DEFAULT_MAX_STEPS, 0, "short entries"),
    ("5e-3:500,1e-3", DEFAULT_MAX_STEPS, 0, "no spaces, exponent notation"),
    (" 0.005 : 50 , 0.001 ", DEFAULT_MAX_STEPS, 0, "whitespace around every number"),
    ("0.1:10, 0.01:20", DEFAULT_MAX_STEPS, 0, "the last entry has a step: training stops at step 20, "
                                              "far before max_steps"),
    ("0.01:5000", DEFAULT_MAX_STEPS, 0, "a single entry with a step: stops at 5000"),
    ("0.005:100, 1e-3:1000, 1e-5", 500, 0, "max_steps 500: the 1000 entry is cut to 500 and ends the list "
                                           "(1e-5 ignored); stops at 500"),
    ("0.005:100, 1e-3:1000, 1e-5", 1000, 0, "QUIRK: the 1000 entry equals max_steps, so parsing goes on and "
                                            "1e-5 gets (1e-5, 1000): used for one step at step 1000, then stop "
                                            "at 1001"),
    ("0.005:100, 1e-3:-1, 1e-5", DEFAULT_MAX_STEPS, 0, "-1: until max_steps, and the list ends there "
                                                       "(1e-5 ignored)"),
    ("0.005:100, 1e-3:1000, 1e-5", DEFAULT_MAX_STEPS, 100, "resumed at step 100: entries with step <= 100 are "
                                                           "dropped when parsing"),
    ("0.005:100, 1e-3:1000, 1e-5", DEFAULT_MAX_STEPS, 999, "resumed at step 999"),
    ("0.005:100, 0.001:50, 1e-4:80, 1e-5", DEFAULT_MAX_STEPS, 0,
     "QUIRK, steps not increasing: at step 100 the scheduler moves to (0.001, 50), used for one step; at 101 "
     "to (1e-4, 80), one step; at 102 to 1e-5 until max_steps"),
    ("0.1:10, 0.001:5", DEFAULT_MAX_STEPS, 0, "steps not increasing at the end: 0.001 is used for one step "
                                              "(step 10), then training stops at 11"),
    ("0.005:0, 0.001", DEFAULT_MAX_STEPS, 0, "step 0 is not > initial_step 0: the entry is skipped"),
    ("0.005:-5, 0.001", DEFAULT_MAX_STEPS, 0, "a negative step other than -1 is skipped"),
    ("abc:0, 0.001", DEFAULT_MAX_STEPS, 0, "a skipped entry's rate is never parsed: no error"),
    ("0.005:100,, 0.001,", DEFAULT_MAX_STEPS, 0, "empty entries are skipped"),
    ("0.005:100:5, 0.001", DEFAULT_MAX_STEPS, 0, "three ':' parts: treated like a bare rate (0.005 until "
                                                 "max_steps), the list ends"),
    ("0.002:+300, 0.001", DEFAULT_MAX_STEPS, 0, "int() accepts a sign"),
    ("", DEFAULT_MAX_STEPS, 0, "error: no entries"),
    ("   ", DEFAULT_MAX_STEPS, 0, "error: no entries"),
    ("abc", DEFAULT_MAX_STEPS, 0, "error: rate is not a number"),
    ("0.005:1e3", DEFAULT_MAX_STEPS, 0, "error: the step must be an integer literal"),
    ("0.005:100.0", DEFAULT_MAX_STEPS, 0, "error: the step must be an integer literal"),
    (":100", DEFAULT_MAX_STEPS, 0, "error: empty rate"),
    ("0.005:100, x", DEFAULT_MAX_STEPS, 0, "error: a later bare entry that is not a number"),
    ("0.005:", DEFAULT_MAX_STEPS, 0, "error: empty step"),
    ("0.005:-2", DEFAULT_MAX_STEPS, 0, "error: the only entry is skipped, the list is empty"),
    ("0.005:50", DEFAULT_MAX_STEPS, 50, "error: resumed at 50, the only entry (step 50) is skipped"),
]


def schedule_section():
    cases = []
    for text, max_steps, initial, comment in SCHEDULE_CASES:
        rec = {"schedule": text, "max_steps": max_steps, "initial_step": initial, "comment": comment}
        try:
            entries, rates, end, changes = evaluate_schedule(text, max_steps, initial)
        except ValueError as e:
            assert comment.startswith("error"), (text, e)
            rec["error"] = "Invalid learning rate schedule (" + str(e).split(":")[0] + ")"
            cases.append(rec)
            print(f"  schedule {text!r:40s} max={max_steps} init={initial}: error", flush=True)
            continue
        assert not comment.startswith("error"), text
        final_given = entries[-1][1] < max_steps
        rec.update({
            "error": None,
            "entries": [[r, s] for r, s in entries],
            "rates": [[s, rates.get(s)] for s in SCHEDULE_STEPS if s >= initial],
            "changes": changes,
            "end_step": end,
            "steps_trained": end - initial,
            "ends_before_max_steps": end < max_steps,
            "final_step_given": final_given,
        })
        cases.append(rec)
        print(f"  schedule {text!r:40s} max={max_steps} init={initial}: entries={rec['entries']} end={end} "
              f"rates={[r for _, r in rec['rates']]}", flush=True)
    # sanity of the rules on the brief's examples
    by = {(c["schedule"], c["max_steps"], c["initial_step"]): c for c in cases}
    c = by[("0.005:100, 1e-3:1000, 1e-5", DEFAULT_MAX_STEPS, 0)]
    assert c["entries"] == [[0.005, 100], [0.001, 1000], [1e-5, DEFAULT_MAX_STEPS]]
    assert dict(c["rates"])[99] == 0.005 and dict(c["rates"])[100] == 0.001 and dict(c["rates"])[1000] == 1e-5
    c = by[("0.005:100, 1e-3:1000, 1e-5", 1000, 0)]
    assert c["end_step"] == 1001 and dict(c["rates"])[1000] == 1e-5 and dict(c["rates"])[1001] is None
    c = by[("0.1:10, 0.01:20", DEFAULT_MAX_STEPS, 0)]
    assert c["end_step"] == 20 and dict(c["rates"])[11] == 0.01 and dict(c["rates"])[99] is None
    return {"rules": SCHEDULE_RULES, "steps": SCHEDULE_STEPS, "default_max_steps": DEFAULT_MAX_STEPS,
            "rate_at_step": "the rate of the optimizer step taken when embedding.step == step (after "
                            "apply(optimizer, step)); null when training has stopped before that step",
            "cases": cases}


# --- main ---------------------------------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)

    with open(os.path.join(MODEL, "tiny_sd_info.json")) as f:
        info = json.load(f)
    files = {k: v for k, v in info["weight_files"].items()
             if "text_encoder" in v["path"] or "unet" in v["path"]}
    for k, wf in files.items():
        assert sha256_file(os.path.join(MODEL, wf["path"])) == wf["sha256"], k

    te = CLIPTextModel.from_pretrained(MODEL, subfolder="text_encoder", dtype=torch.float32,
                                       attn_implementation="eager", local_files_only=True).eval()
    unet = UNet2DConditionModel.from_pretrained(MODEL, subfolder="unet", torch_dtype=torch.float32,
                                                local_files_only=True).eval()
    unet.set_attn_processor(AttnProcessor())
    te.requires_grad_(False)
    unet.requires_grad_(False)
    assert te.config.hidden_size == WIDTH

    with tempfile.TemporaryDirectory() as d:
        tok = load_tokenizer(*build_tokenizer_files(VOCAB_GZ, d))
    assert tok("a photo of an astronaut riding a horse on mars", add_special_tokens=False)["input_ids"] == \
        [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496]
    comma = tok.get_vocab()[",</w>"]

    sched = ldm_schedule()
    gradient, vec0 = gradient_section(unet, te, tok, comma, sched)
    adamw = adamw_section(vec0)
    learn = schedule_section()

    doc = {
        "generator": GENERATOR,
        "rerun": ".venv-ref/bin/python Tests/Fixtures/generators/make_training_fixtures.py (see the script's docstring)",
        "versions": {"torch": torch.__version__, "diffusers": version("diffusers"),
                     "transformers": version("transformers"), "numpy": np.__version__},
        "model": {"path": "Tests/Fixtures/tiny-sd", "weight_files": files, "text_width": WIDTH,
                  "latent_shape": list(LATENT),
                  "attention": "UNet: diffusers AttnProcessor (explicit softmax); CLIP: eager; float32"},
        "a1111": {
            "version": "webui 1.10: modules/textual_inversion/textual_inversion.py train_embedding, "
                       "learn_schedule.py; LDM ddpm.py LatentDiffusion.p_losses (eps)",
            "trainable": "only embedding.vec ([vectors, width]) requires grad; the text encoder and UNet are frozen",
            "conditioning": "the batch's texts through FrozenCLIPEmbedderWithCustomWords: tokenize_line (embedding "
                            "name -> placeholder ids 0 and a fix), text model on [B, 77] ids with EmbeddingsWithFixes "
                            "(vec rows replace token-embedding rows offset+1.. before position embeddings; the gradient "
                            "flows into vec), clip_skip 1, EmphasisOriginal over the whole batch: m = z.mean(); "
                            "z = z * multipliers; z = z * (m / z.mean())",
            "noising": "x_noisy = sqrt_alphas_cumprod[t] * x0 + sqrt_one_minus_alphas_cumprod[t] * noise, the buffers "
                       "= float32(sqrt(ac64)) and float32(sqrt(1 - ac64)) from the float64 cumprod (LDM "
                       "register_schedule); t integer per item (randint(0, 1000) in A1111; given here)",
            "loss": "eps = UNet(x_noisy, t, cond); loss = mean over items of mean over [C, H, W] of (noise - eps)^2 "
                    "(logvar 0, l_simple_weight 1, original_elbo_weight 0: exact no-ops); / gradient_step (1)",
            "optimizer": "torch.optim.AdamW([vec], lr=scheduler.learn_rate, weight_decay=0.0); betas (0.9, 0.999), "
                         "eps 1e-8; optimizer.zero_grad(set_to_none=True) after each step; embedding.step += 1",
            "learn_schedule": "see learn_schedule.rules",
        },
        "gradient": gradient,
        "adamw": adamw,
        "learn_schedule": learn,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({size} bytes): {len(gradient['cases'])} gradient cases, "
          f"{len(adamw['steps'])} AdamW steps, {len(learn['cases'])} schedules")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""What the fixture generators in this folder share, so that no generator imports
another: each imports only this module (and libraries). Importing it writes nothing
and imports neither transformers nor k-diffusion (see import_k_diffusion); torch is
optional (make_prompt_fixtures.py and make_ftfy_tables.py run without it).

Sections (each moved here verbatim from the generator named, apart from imports):
  paths               ROOT (the repository), GENERATORS (this folder)
  JSON / hashing      enc, f32, sha256_bytes, sha256_file, version
                      (make_embedding_fixtures.py)
  k-diffusion         import_k_diffusion (without torchvision), make_alphas_cumprod,
                      A1111_DEFAULT_SCHEDULE (make_sampler_fixtures.py)
  A1111 schedules     SCHEDULE_KINDS, a1111_sigmas and the schedule functions sgm_uniform,
                      kl_optimal, align_your_steps, simple_scheduler, normal_scheduler,
                      ddim_scheduler, beta_scheduler (make_schedule_fixtures.py; also
                      make_pipeline_fixtures.py)
  NV RNG              PhiloxGenerator, _check_nv: A1111's Philox "NV" source
                      (make_rng_fixtures.py)
  CLIP tokenizer      build_tokenizer_files, load_tokenizer (transformers' slow
                      CLIPTokenizer from Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz),
                      parse_prompt_attention (make_tokenizer_fixtures.py)
  A1111 embeddings    Embedding, create_embedding_from_data, EmbeddingDatabase, PromptChunk,
                      tokenize_line, Hijack, EmbeddingsWithFixes, emphasis_original,
                      encode_a1111, encode_by_hand, vectors (make_embedding_fixtures.py)
  PNG embeddings      lcg_masks, read_pixels, a1111_outcome: what A1111 reads from an
                      image embedding (make_png_embedding_fixtures.py)
  LDM checkpoints     unet_diffusers_to_ldm, vae_diffusers_to_ldm, ddpm_schedule_buffers
                      (make_model_file_fixtures.py; also train_demo_model.py)
  demo dataset        COLOURS, SHAPES, caption, all_combos, HELD_OUT, TRAIN_COMBOS,
                      shape_mask, render, sample: the demo model's procedural dataset
                      (make_demo_data.py, make_concept_data.py, train_demo_model.py and
                      scripts/evaluate_demo_model.py)
  A1111 samplers      a1111_restart_sampler (make_sampler_fixtures.py), a1111_unipc,
                      a1111_lcm_denoiser, a1111_sample_lcm (make_pipeline_fixtures.py):
                      A1111's own samplers, restated from its equations
  A1111 decode        decode_a1111: the VAE decode and 8-bit conversion
                      (make_pipeline_fixtures.py, make_pipeline_image_fixtures.py)
  tiny weights        randomize_parameters: the tiny models' seeded weights (make_tiny_sd.py,
                      make_family_fixtures.py)
  OpenCLIP text       OpenCLIPText (open_clip's text tower with LDM's SD 2 and sgm's SDXL readings;
                      make_family_fixtures.py, make_family_embedding_fixtures.py,
                      make_family_training_fixtures.py)
  family runs         f32_text, enc32 (short exact float32 JSON), family_run_outcome, sgm_timestep_embedding,
                      a1111_pad, NVImageRNG (make_family_fixtures.py,
                      make_family_embedding_fixtures.py, make_family_training_fixtures.py)
  A1111 CFG batch     a1111_cfg_inputs (make_pipeline_fixtures.py, make_family_fixtures.py)
  A1111 noise hook    TorchHijack: k-diffusion's torch.randn_like(x) -> a draw of the image RNG
                      (make_pipeline_fixtures.py, make_family_fixtures.py, make_sampler_fixtures.py)
"""

import base64
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import random
import re
import sys
import types
import zlib

import numpy as np

try:
    import torch
except ImportError:      # make_prompt_fixtures.py / make_ftfy_tables.py need no torch
    torch = None

# --- paths ------------------------------------------------------------------------

GENERATORS = os.path.dirname(os.path.abspath(__file__))       # Tests/Fixtures/generators
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(GENERATORS)))
VOCAB_GZ = os.path.join(ROOT, "Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz")


def rel(path):
    """path relative to the repository, with / separators."""
    return os.path.relpath(path, ROOT).replace(os.sep, "/")


# --- JSON / hashing helpers (make_embedding_fixtures.py) -------------------------------

EMBEDDING_SCALE = 0.02     # seeded test embeddings: randn * 0.02, like trained ones

def enc(t):
    t = t.detach().contiguous()
    assert t.dtype == torch.float32, t.dtype
    data = [float(v) for v in t.flatten().tolist()]
    assert all(math.isfinite(v) for v in data)
    return {"shape": list(t.shape), "data": data}


def f32(v):
    return float(np.float32(v))


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    with open(path, "rb") as f:
        return sha256_bytes(f.read())


def version(pkg):
    try:
        return importlib.metadata.version(pkg)
    except Exception:
        return "unknown"


def randomize_parameters(module, seed):
    """The tiny models' weights: every parameter, in sorted-name order, from the module's own
    torch.Generator(seed): GroupNorm / LayerNorm weight = 1 + 0.1 * randn, everything else
    0.2 * randn (float32). Returns the counts of each kind."""
    norm_weights = set()
    for name, m in module.named_modules():
        if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and m.weight is not None:
            norm_weights.add((name + "." if name else "") + "weight")
    g = torch.Generator().manual_seed(seed)
    params = dict(module.named_parameters())
    counts = {"norm_weight": 0, "other": 0}
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name in norm_weights:
                p.copy_(1.0 + 0.1 * r)
                counts["norm_weight"] += 1
            else:
                p.copy_(0.2 * r)
                counts["other"] += 1
    assert counts["norm_weight"] == len(norm_weights), (counts, len(norm_weights))
    return counts


class OpenCLIPResidualBlock(torch.nn.Module if torch else object):
    """open_clip 2.20's ResidualAttentionBlock: ln_1, nn.MultiheadAttention (fused in_proj q;k;v,
    sequence-first), ln_2, mlp c_fc -> exact GELU -> c_proj, no layer scale."""

    def __init__(self, width, heads):
        super().__init__()
        from collections import OrderedDict
        self.ln_1 = torch.nn.LayerNorm(width)
        self.attn = torch.nn.MultiheadAttention(width, heads)
        self.ln_2 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential(OrderedDict([
            ("c_fc", torch.nn.Linear(width, 4 * width)),
            ("gelu", torch.nn.GELU()),
            ("c_proj", torch.nn.Linear(4 * width, width)),
        ]))

    def forward(self, x, attn_mask):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=attn_mask.to(x.dtype))[0]
        return x + self.mlp(self.ln_2(x))


class OpenCLIPText(torch.nn.Module if torch else object):
    """open_clip's text tower (the keys of SD 2's cond_stage_model.model.* and SDXL's
    conditioner.embedders.1.model.*), with the causal attn_mask as a non-persistent buffer."""

    def __init__(self, width, heads, layers, proj, vocab=49408, positions=77):
        super().__init__()
        self.token_embedding = torch.nn.Embedding(vocab, width)
        self.positional_embedding = torch.nn.Parameter(torch.empty(positions, width))
        self.transformer = torch.nn.Module()
        self.transformer.resblocks = torch.nn.ModuleList([OpenCLIPResidualBlock(width, heads) for _ in range(layers)])
        self.ln_final = torch.nn.LayerNorm(width)
        self.text_projection = torch.nn.Parameter(torch.empty(width, proj))
        self.logit_scale = torch.nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        mask = torch.empty(positions, positions)
        mask.fill_(float("-inf"))
        mask.triu_(1)
        self.register_buffer("attn_mask", mask, persistent=False)

    def hidden(self, tokens):
        """[input of block 0, output of block 0, ..., output of the last block], each [B, 77, W]
        (LDM / sgm encode_with_transformer: token_embedding + positional_embedding, then the blocks
        sequence-first)."""
        x = self.token_embedding(tokens) + self.positional_embedding
        x = x.permute(1, 0, 2)
        outs = [x.permute(1, 0, 2)]
        for r in self.transformer.resblocks:
            x = r(x, attn_mask=self.attn_mask)
            outs.append(x.permute(1, 0, 2))
        return outs

    def encode_sd2(self, tokens):
        """LDM FrozenOpenCLIPEmbedder(layer="penultimate").encode_with_transformer: the blocks before
        the last one (text_transformer_forward breaks at i == len - layer_idx, layer_idx 1), then ln_final."""
        return self.ln_final(self.hidden(tokens)[-2])

    def forward(self, tokens):
        """The SD 2 reading (encode_sd2)."""
        return self.encode_sd2(tokens)

    def encode_sdxl(self, tokens):
        """sgm FrozenOpenCLIPEmbedder2(layer="penultimate", legacy=False, always_return_pooled=True):
        "penultimate" = the input of the last block (NO ln_final); pooled = ln_final(output of the last
        block) at tokens.argmax(-1) (the first 49407 once the pad is 0), @ text_projection [W, proj].
        Returns (penultimate, pooled, the pooled positions)."""
        outs = self.hidden(tokens)
        last = self.ln_final(outs[-1])
        index = tokens.argmax(dim=-1)
        pooled = last[torch.arange(last.shape[0]), index] @ self.text_projection
        return outs[-2], pooled, index


def write_json_fixture(path, doc, max_bytes):
    """Writes doc as compact JSON and a newline through a temporary file renamed into place; the
    size must stay under max_bytes. Returns the size in bytes."""
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    size = len(text.encode("utf-8")) + 1
    assert size < max_bytes, size
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.write("\n")
    os.replace(tmp, path)
    return size


def f32_text(v):
    """A float32 value as the shortest decimal that reads back (decimal -> nearest double -> nearest
    float32, as JSON readers do) as exactly that float32; checked."""
    v = np.float32(v)
    assert np.isfinite(v)
    out = float(str(v))
    assert np.float32(out) == v and str(np.float32(out)) == str(v), (v, out)
    return out


def enc32(t):
    """{"shape", "data"} like enc, each value written as f32_text (about half the characters of the
    exact double; every value still reads back exactly)."""
    t = t.detach().contiguous()
    assert t.dtype == torch.float32, t.dtype
    return {"shape": list(t.shape), "data": [f32_text(v) for v in t.reshape(-1).numpy()]}


def sgm_timestep_embedding(t, dim, max_period=10000):
    """sgm.modules.diffusionmodules.util.timestep_embedding (repeat_only False): cos half, then sin."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def a1111_pad(tokens, id_pad, id_end=49407):
    """A1111's process_tokens: with id_end != id_pad (OpenCLIP: id_pad 0), every position after the
    first id_end becomes id_pad."""
    t = list(tokens)
    if id_pad != id_end:
        i = t.index(id_end)
        t[i + 1:] = [id_pad] * (len(t) - i - 1)
    return t


def trainable_embedding_db(tok, vec, name, width):
    """An EmbeddingDatabase holding one embedding whose vectors are `vec` (the tensor being trained,
    gradient enabled), as A1111's trainer registers it. Returns (db, embedding)."""
    db = EmbeddingDatabase(tok, width)
    e = Embedding(vec, name)
    e.vectors = vec.shape[0]
    e.shape = vec.shape[-1]
    db.register_embedding(e)
    return db, e


def one_chunk(tok, db, comma, text):
    """tokenize_line for a text that fits one chunk: (parsed, the chunk)."""
    parsed, chunks, _ = tokenize_line(text, tok, db, comma)
    assert len(chunks) == 1, text
    return parsed, chunks[0]


def family_run_outcome(r, img, r_sdpa):
    """The record fields of a family txt2img run after its conditioning, in file order: initial
    noise, sigmas, the denoiser's calls and batches, the RNG's later draws, final latents, the
    8-bit image and the latents' spread under SDPA attention."""
    return {
        "initial_noise": enc32(r["noise"]),
        "sigmas": [f32_text(v) for v in r["sigmas"].tolist()],
        "denoiser_calls": r["denoiser_calls"],
        "model_call_batches": r["model_batches"][:len(r["model_batches"]) // r["denoiser_calls"]],
        "rng_next_calls": r["rng_next_calls"],
        "latents": enc32(r["latents"]),
        "image_shape": list(img.shape),
        "image_uint8_base64": base64.b64encode(img.astype(np.uint8).tobytes()).decode(),
        "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
    }


class NVImageRNG:
    """modules/rng.py ImageRNG without subseeds, seed resize or ENSD: one generator per image (source
    "nv": rng_philox.Generator(seed_i)); the first next() is first() (each generator's first
    randn(shape)), every later next() one more draw from each."""

    def __init__(self, seeds, shape):
        self.generators = [PhiloxGenerator(s) for s in seeds]
        self.shape = tuple(shape)
        self.is_first = True
        self.next_calls = 0

    def next(self):
        x = torch.stack([torch.asarray(g.randn(self.shape)) for g in self.generators])
        if self.is_first:
            self.is_first = False
        else:
            self.next_calls += 1
        return x


def a1111_cfg_inputs(x, sigma):
    """The first lines of A1111's CFGDenoiser.forward for txt2img with one prompt per image
    (conds_list[i] = [(i, 1.0)]): each image's rows repeated per cond, then the batch again for the
    uncond rows. Returns (conds_list, x_in, sigma_in)."""
    conds_list = [[(i, 1.0)] for i in range(x.shape[0])]
    repeats = [len(c) for c in conds_list]
    x_in = torch.cat([torch.stack([x[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [x])
    sigma_in = torch.cat([torch.stack([sigma[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [sigma])
    return conds_list, x_in, sigma_in


class TorchHijack:
    """A1111's sd_samplers_common.TorchHijack, set as k_diffusion.sampling.torch: torch.randn_like(x)
    returns `draw()` (the image RNG's next draw); every other name is torch's."""

    def __init__(self, draw):
        self.draw = draw

    def __getattr__(self, item):
        if item == "randn_like":
            return lambda x: self.draw()
        if hasattr(torch, item):
            return getattr(torch, item)
        raise AttributeError(item)


def vectors(seed, n, width, dtype=None):
    """n seeded test vectors of the given width: randn * EMBEDDING_SCALE in float32, then cast to dtype."""
    dtype = torch.float32 if dtype is None else dtype
    g = torch.Generator("cpu").manual_seed(seed)
    return (torch.randn((n, width), generator=g, dtype=torch.float32) * EMBEDDING_SCALE).to(dtype)


# --- import k-diffusion without torchvision (make_sampler_fixtures.py) ---------------

def import_k_diffusion():
    """k_diffusion/__init__ imports modules needing torchvision / clip; the
    sampling and external modules only need the stubbed torchvision names
    (utils.py imports torchvision.transforms.functional at module level)."""
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
        sys.modules.setdefault(name, types.ModuleType(name))
    try:
        import k_diffusion  # noqa: F401
    except Exception:
        for name in [n for n in sys.modules if n == "k_diffusion" or n.startswith("k_diffusion.")]:
            del sys.modules[name]
        spec = importlib.util.find_spec("k_diffusion")
        pkg = types.ModuleType("k_diffusion")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["k_diffusion"] = pkg
    import k_diffusion.external
    import k_diffusion.sampling
    return k_diffusion


# --- SD 1.x noise schedule (make_sampler_fixtures.py, make_model_file_fixtures.py) ---

def make_alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac64 = torch.cumprod(1 - betas, 0)
    # LDM does the same with numpy (np.cumprod) before the float32 cast.
    ac_np = np.cumprod(1.0 - (np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2))
    assert np.array_equal(ac64.to(torch.float32).numpy(), ac_np.astype(np.float32)), "torch vs numpy cumprod"
    return ac64.to(torch.float32)


def ddpm_schedule_buffers():
    """The LatentDiffusion buffers real SD-1.x .ckpt files carry (linear_start
    0.00085, linear_end 0.012, 1000 steps, 'linear' = scaled-linear), computed
    in float64 with numpy and stored float32 as ldm's register_schedule does."""
    n = 1000
    betas = (torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, n, dtype=torch.float64) ** 2).numpy()
    alphas = 1.0 - betas
    ac = np.cumprod(alphas, axis=0)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    bufs = {
        "betas": betas,
        "alphas_cumprod": ac,
        "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": np.sqrt(ac),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - ac),
        "log_one_minus_alphas_cumprod": np.log(1.0 - ac),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / ac),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / ac - 1),
        "posterior_variance": post_var,
        "posterior_log_variance_clipped": np.log(np.maximum(post_var, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(ac_prev) / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
    }
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in bufs.items()}



# A1111 >= 1.9 resolves the "Automatic" scheduler to the sampler's default
# (samplers_k_diffusion options 'scheduler'); before 1.9 "Automatic" was always
# model.get_sigmas(n) and "X Karras" were separate sampler entries.
A1111_DEFAULT_SCHEDULE = {
    "Euler": "automatic", "Euler a": "automatic", "Heun": "automatic", "LMS": "automatic",
    "DPM2": "karras", "DPM2 a": "karras", "DPM++ 2M": "karras", "DPM++ 2S a": "karras",
    "DPM++ SDE": "karras", "DPM++ 2M SDE": "exponential", "DPM++ 2M SDE Heun": "exponential", "DPM++ 3M SDE": "exponential",
    "DPM fast": "automatic", "DPM adaptive": "automatic", "Restart": "karras", "LCM": "automatic",
}


# --- A1111 1.10 schedule types (modules/sd_schedulers.py; moved from make_schedule_fixtures.py,
# also used by make_pipeline_fixtures.py) ----------------------------------------------------
# How A1111 calls them (KDiffusionSampler.get_sigmas): uniform = model_wrap.get_sigmas(n); every
# other schedule function gets sigma_min = model_wrap.sigmas[0].item(), sigma_max =
# model_wrap.sigmas[-1].item() (float32 values as Python floats), replaced by the "Schedule
# min/max sigma" options when those are set (not 0), rho when the schedule has a default rho
# (Karras 7, Polyexponential 1) and the option is set, and the inner model (k-diffusion's
# CompVisDenoiser, whose sigma_to_t / t_to_sigma / sigmas are used) where it needs one.
# Karras, Exponential and Polyexponential are k-diffusion's own functions. A1111's own schedule
# functions cannot be imported without the webui, so the ones below restate them line for line
# from modules/sd_schedulers.py (A1111 1.10.1; simple, normal, ddim and beta carry A1111's
# function names here: simple_scheduler, ...; scipy is imported when beta is used). Each returns a
# float32 tensor; the caller drops the penultimate sigma itself where the sampler has
# discard_next_to_last_sigma.

SCHEDULE_KINDS = ["uniform", "karras", "exponential", "polyexponential", "sgm_uniform", "kl_optimal",
                  "align_your_steps", "simple", "normal", "ddim", "beta"]


def sgm_uniform(n, sigma_min, sigma_max, inner):
    start = inner.sigma_to_t(torch.tensor(sigma_max))
    end = inner.sigma_to_t(torch.tensor(sigma_min))
    sigs = [inner.t_to_sigma(ts) for ts in torch.linspace(start, end, n + 1)[:-1]]
    return torch.FloatTensor(sigs + [0.0])


def kl_optimal(n, sigma_min, sigma_max):
    alpha_min = torch.arctan(torch.tensor(sigma_min))
    alpha_max = torch.arctan(torch.tensor(sigma_max))
    i = torch.arange(n + 1)
    return torch.tan(i / n * alpha_min + (1.0 - i / n) * alpha_max)


def align_your_steps(n):
    levels = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
    if n != len(levels):
        xs = np.linspace(0, 1, len(levels))
        ys = np.log(levels[::-1])
        new = np.exp(np.interp(np.linspace(0, 1, n), xs, ys))[::-1].copy()
        return torch.FloatTensor(np.append(new, [0.0]))
    return torch.FloatTensor(levels + [0.0])


def simple_scheduler(n, inner):
    ss = len(inner.sigmas) / n
    return torch.FloatTensor([float(inner.sigmas[-(1 + int(x * ss))]) for x in range(n)] + [0.0])


def normal_scheduler(n, sigma_min, sigma_max, inner):
    start = inner.sigma_to_t(torch.tensor(sigma_max))
    end = inner.sigma_to_t(torch.tensor(sigma_min))
    return torch.FloatTensor([inner.t_to_sigma(ts) for ts in torch.linspace(start, end, n)] + [0.0])


def ddim_scheduler(n, inner):
    ss = max(len(inner.sigmas) // n, 1)
    sigs, x = [], 1
    while x < len(inner.sigmas):
        sigs.append(float(inner.sigmas[x]))
        x += ss
    return torch.FloatTensor(sigs[::-1] + [0.0])


def beta_scheduler(n, sigma_min, sigma_max, a, b):
    from scipy import stats
    ts = [stats.beta.ppf(x, a, b) for x in 1 - np.linspace(0, 1, n)]
    return torch.FloatTensor([sigma_min + x * (sigma_max - sigma_min) for x in ts] + [0.0])


def a1111_sigmas(kind, n, inner, options=None):
    """The sigmas of schedule `kind` for n steps as KDiffusionSampler.get_sigmas computes them
    (without its discard_next_to_last_sigma step), inner = k-diffusion's CompVisDenoiser (A1111's
    model_wrap); options: A1111's "sigma_min", "sigma_max", "rho", "beta_dist_alpha",
    "beta_dist_beta" settings (absent or 0 = default)."""
    options = {} if options is None else options
    K = import_k_diffusion()
    smin = options.get("sigma_min") or inner.sigmas[0].item()
    smax = options.get("sigma_max") or inner.sigmas[-1].item()
    if kind == "uniform":
        return inner.get_sigmas(n)
    if kind == "karras":
        return K.sampling.get_sigmas_karras(n, smin, smax, rho=options.get("rho") or 7.0)
    if kind == "exponential":
        return K.sampling.get_sigmas_exponential(n, smin, smax)
    if kind == "polyexponential":
        return K.sampling.get_sigmas_polyexponential(n, smin, smax, rho=options.get("rho") or 1.0)
    if kind == "sgm_uniform":
        return sgm_uniform(n, smin, smax, inner)
    if kind == "kl_optimal":
        return kl_optimal(n, smin, smax)
    if kind == "align_your_steps":
        return align_your_steps(n)
    if kind == "simple":
        return simple_scheduler(n, inner)
    if kind == "normal":
        return normal_scheduler(n, smin, smax, inner)
    if kind == "ddim":
        return ddim_scheduler(n, inner)
    if kind == "beta":
        return beta_scheduler(n, smin, smax, options.get("beta_dist_alpha", 0.6), options.get("beta_dist_beta", 0.6))
    raise ValueError(kind)


# --- A1111 NV RNG (Philox 4x32-10), after modules/rng_philox.py (make_rng_fixtures.py)

PHILOX_M = [0xD2511F53, 0xCD9E8D57]
PHILOX_W = [0x9E3779B9, 0xBB67AE85]
TWO_POW32_INV = np.array([2.3283064e-10], dtype=np.float32)
TWO_POW32_INV_2PI = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)


def _split64(x):
    """(N,) uint64 -> (lo, hi) uint32 arrays."""
    lo = (x & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    hi = (x >> np.uint64(32)).astype(np.uint32)
    return lo, hi


def _philox_round(c, k):
    v1_lo, v1_hi = _split64(c[0].astype(np.uint64) * np.uint64(PHILOX_M[0]))
    v2_lo, v2_hi = _split64(c[2].astype(np.uint64) * np.uint64(PHILOX_M[1]))
    c0 = v2_hi ^ c[1] ^ k[0]
    c1 = v2_lo
    c2 = v1_hi ^ c[3] ^ k[1]
    c3 = v1_lo
    c[0], c[1], c[2], c[3] = c0, c1, c2, c3


def _philox4_32(c, k, rounds=10):
    for _ in range(rounds - 1):
        _philox_round(c, k)
        k[0] = (k[0].astype(np.uint64) + np.uint64(PHILOX_W[0])).astype(np.uint32)
        k[1] = (k[1].astype(np.uint64) + np.uint64(PHILOX_W[1])).astype(np.uint32)
    _philox_round(c, k)
    return c


def _box_muller(x, y):
    # float32 * float32 products (as numpy does with the float32 constants),
    # then log/sqrt/sin in float64 (the -2.0 Python float promotes), cast to f32.
    u = x * TWO_POW32_INV + TWO_POW32_INV / 2
    v = y * TWO_POW32_INV_2PI + TWO_POW32_INV_2PI / 2
    s = np.sqrt(-2.0 * np.log(u))
    return (s * np.sin(v)).astype(np.float32)


class PhiloxGenerator:
    def __init__(self, seed):
        self.seed = seed
        self.offset = 0

    def randn(self, shape):
        n = int(np.prod(shape)) if len(shape) else 1
        c = np.zeros((4, n), dtype=np.uint32)
        c[0] = self.offset
        c[2] = np.arange(n, dtype=np.uint32)
        self.offset += 1
        k = np.zeros((2, n), dtype=np.uint32)
        k[0] = self.seed & 0xFFFFFFFF
        k[1] = (self.seed >> 32) & 0xFFFFFFFF
        g = _philox4_32(c, k)
        return _box_muller(g[0], g[1]).reshape(shape)


def _philox_randn_scalar(seed, offset, i):
    """One element, straight from the spec with Python ints and floats
    (independent of numpy's promotion rules)."""
    M32 = 0xFFFFFFFF
    c = [offset & M32, offset >> 32, i & M32, i >> 32]
    k = [seed & M32, (seed >> 32) & M32]
    for r in range(10):
        v1 = c[0] * PHILOX_M[0]
        v2 = c[2] * PHILOX_M[1]
        c = [(v2 >> 32) ^ c[1] ^ k[0], v2 & M32, (v1 >> 32) ^ c[3] ^ k[1], v1 & M32]
        if r < 9:
            k = [(k[0] + PHILOX_W[0]) & M32, (k[1] + PHILOX_W[1]) & M32]
    a = float(TWO_POW32_INV[0])       # float32 constants, used as doubles
    b = float(TWO_POW32_INV_2PI[0])
    u = c[0] * a + a / 2
    v = c[1] * b + b / 2
    return float(np.float32(math.sqrt(-2.0 * math.log(u)) * math.sin(v)))


# A1111's docstring example for Generator(0).randn((3, 4)).
NV_DOCSTRING = [[-0.92466259, -0.42534415, -2.6438457, 0.14518388],
                [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
                [-1.07454231, -0.36314407, -1.67105067, 2.26550497]]


def _check_nv():
    got = PhiloxGenerator(0).randn((3, 4)).astype(np.float64)
    want = np.array(NV_DOCSTRING)
    # The docstring values are not bit-exact output of rng_philox.py itself:
    # run verbatim (numpy 1.26 or 2.x; uint32 * float32 arrays promote to
    # float64), A1111's code returns values up to ~6 float32 ulps (2.4e-7)
    # away from them (the docstring was likely printed from CUDA torch). So
    # the published check is met at 1e-6, which is what np.allclose's
    # defaults (rtol 1e-5, atol 1e-7) accept too.
    assert np.abs(got - want).max() < 1e-6, got
    assert np.allclose(got[0], [-0.92466259, -0.42534415, -2.6438457, 0.14518388])
    # Bit-exact cross-check of the vectorised version against the scalar spec.
    for seed in (0, 1, 42, 4294967294, (1 << 40) + 5):
        gen = PhiloxGenerator(seed)
        for offset in range(3):
            vec = gen.randn((37,))
            for i in (0, 1, 2, 17, 36):
                assert float(vec[i]) == _philox_randn_scalar(seed, offset, i), (seed, offset, i)




# --- CLIP tokenizer files, exactly as OpenAI/HF build them (make_tokenizer_fixtures.py)

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_tokenizer_files(gz_path, out_dir):
    merges = gzip.open(gz_path).read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1]
    assert len(merges) == 48894
    pairs = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    for p in pairs:
        vocab.append("".join(p))
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    encoder = dict(zip(vocab, range(len(vocab))))
    assert len(encoder) == len(vocab) == 49408, len(encoder)
    vocab_path = os.path.join(out_dir, "vocab.json")
    merges_path = os.path.join(out_dir, "merges.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(m + "\n")
    return vocab_path, merges_path


def load_tokenizer(vocab_path, merges_path):
    from transformers import CLIPTokenizer
    # Same init kwargs as openai/clip-vit-large-patch14's tokenizer_config.json.
    tok = CLIPTokenizer(
        vocab_path,
        merges_path,
        errors="replace",
        unk_token="<|endoftext|>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        add_prefix_space=False,
        do_lower_case=True,
        model_max_length=77,
    )
    return tok


# --------------------------------------------------------------------------
# A1111 attention syntax (modules/prompt_parser.py, parse_prompt_attention).
# Re-implemented here to make the plain text A1111 would tokenize.
# --------------------------------------------------------------------------

RE_ATTENTION = re.compile(
    r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""",
    re.X,
)
RE_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text):
    res = []
    round_brackets = []
    square_brackets = []

    def multiply_range(start, mult):
        for p in range(start, len(res)):
            res[p][1] *= mult

    for m in RE_ATTENTION.finditer(text):
        t = m.group(0)
        weight = m.group(1)
        if t.startswith("\\"):
            res.append([t[1:], 1.0])
        elif t == "(":
            round_brackets.append(len(res))
        elif t == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif t == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif t == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            parts = re.split(RE_BREAK, t)
            for i, part in enumerate(parts):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for pos in round_brackets:
        multiply_range(pos, 1.1)
    for pos in square_brackets:
        multiply_range(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


# --- A1111 textual inversion (make_embedding_fixtures.py) ----------------------------

ID_START, ID_END = 49406, 49407
CHUNK = 75
PLACEHOLDER = 0
COMMA_PADDING_BACKTRACK = 20     # opts.comma_padding_backtrack default


class Embedding:
    def __init__(self, vec, name, step=None):
        self.vec = vec
        self.name = name
        self.step = step
        self.shape = None
        self.vectors = 0
        self.sd_checkpoint = None
        self.sd_checkpoint_name = None
        self.filename = None
        self.hash = None
        self.shorthash = None

    def set_hash(self, v):
        self.hash = v
        self.shorthash = self.hash[0:12]


def create_embedding_from_data(data, name, filename="unknown embedding file", filepath=None):
    if "string_to_param" in data:  # textual inversion embeddings
        param_dict = data["string_to_param"]
        param_dict = getattr(param_dict, "_parameters", param_dict)
        assert len(param_dict) == 1, "embedding file has multiple terms in it"
        emb = next(iter(param_dict.items()))[1]
        vec = emb.detach().to(dtype=torch.float32)
        shape = vec.shape[-1]
        vectors_ = vec.shape[0]
    elif type(data) == dict and "clip_g" in data and "clip_l" in data:  # SDXL embedding
        vec = {k: v.detach().to(dtype=torch.float32) for k, v in data.items()}
        shape = data["clip_g"].shape[-1] + data["clip_l"].shape[-1]
        vectors_ = data["clip_g"].shape[0]
    elif type(data) == dict and type(next(iter(data.values()))) == torch.Tensor:  # diffuser concepts
        assert len(data.keys()) == 1, "embedding file has multiple terms in it"
        emb = next(iter(data.values()))
        if len(emb.shape) == 1:
            emb = emb.unsqueeze(0)
        vec = emb.detach().to(dtype=torch.float32)
        shape = vec.shape[-1]
        vectors_ = vec.shape[0]
    else:
        raise Exception(f"Couldn't identify {filename} as neither textual inversion embedding nor diffuser concept.")

    embedding = Embedding(vec, name)
    embedding.step = data.get("step", None)
    embedding.sd_checkpoint = data.get("sd_checkpoint", None)
    embedding.sd_checkpoint_name = data.get("sd_checkpoint_name", None)
    embedding.vectors = vectors_
    embedding.shape = shape
    if filepath:
        embedding.filename = filepath
        embedding.set_hash(sha256_file(filepath))      # hashes.sha256: sha256 of the whole file
    return embedding


class EmbeddingDatabase:
    def __init__(self, tok, expected_shape):
        self.tok = tok
        self.ids_lookup = {}
        self.word_embeddings = {}
        self.skipped_embeddings = {}
        self.expected_shape = expected_shape
        self.report = {}          # file -> outcome record (this script's bookkeeping)

    def tokenize(self, texts):
        return self.tok(texts, truncation=False, add_special_tokens=False)["input_ids"]

    def register_embedding(self, embedding):
        name = embedding.name
        ids = self.tokenize([name])[0]
        first_id = ids[0]
        if first_id not in self.ids_lookup:
            self.ids_lookup[first_id] = []
        if name in self.word_embeddings:
            lookup = [x for x in self.ids_lookup[first_id] if x[1].name != name]
        else:
            lookup = self.ids_lookup[first_id]
        lookup += [(ids, embedding)]
        self.ids_lookup[first_id] = sorted(lookup, key=lambda x: len(x[0]), reverse=True)
        self.word_embeddings[name] = embedding
        return embedding

    def load_from_file(self, path, filename, rel):
        name, ext = os.path.splitext(filename)
        ext = ext.upper()
        if ext in [".PNG", ".WEBP", ".JXL", ".AVIF"]:
            raise AssertionError("no image embeddings in these fixtures")
        elif ext in [".BIN", ".PT"]:
            data = torch.load(path, map_location="cpu")
        elif ext in [".SAFETENSORS"]:
            import safetensors.torch
            data = safetensors.torch.load_file(path, device="cpu")
        else:
            self.report[rel] = {"outcome": "ignored_extension",
                                "reason": f"extension {ext or '(none)'} is not .pt, .bin, .safetensors or an image"}
            return
        embedding = create_embedding_from_data(data, name, filename=filename, filepath=path)
        rec = {"name": embedding.name, "vectors": int(embedding.vectors), "width": int(embedding.shape),
               "step": embedding.step, "sd_checkpoint": embedding.sd_checkpoint,
               "sd_checkpoint_name": embedding.sd_checkpoint_name, "shorthash": embedding.shorthash}
        if "string_to_param" in data:
            rec["key_in_file"] = "string_to_param/" + next(iter(data["string_to_param"]))
            rec["dtype_in_file"] = str(next(iter(data["string_to_param"].values())).dtype).replace("torch.", "")
        else:
            rec["key_in_file"] = next(iter(data))
            rec["dtype_in_file"] = str(next(iter(data.values())).dtype).replace("torch.", "")
        if self.expected_shape == -1 or self.expected_shape == embedding.shape:
            self.register_embedding(embedding)
            rec["outcome"] = "loaded"
            rec["reason"] = None
        else:
            self.skipped_embeddings[name] = embedding
            rec["outcome"] = "skipped_width"
            rec["reason"] = (f"vector width {embedding.shape} != the model's {self.expected_shape}: "
                             f"kept in skipped_embeddings, never matched")
        self.report[rel] = rec

    def load_from_dir(self, root_dir):
        for root, dirs, fns in os.walk(root_dir, followlinks=True):
            dirs.sort()
            for fn in sorted(fns):      # sorted: deterministic; A1111 uses os.walk's order
                fullfn = os.path.join(root, fn)
                rel = os.path.relpath(fullfn, root_dir).replace(os.sep, "/")
                if fn.endswith(".tmp"):
                    continue
                try:
                    if os.stat(fullfn).st_size == 0:
                        self.report[rel] = {"outcome": "skipped_empty", "reason": "size 0: skipped without a message"}
                        continue
                    self.load_from_file(fullfn, fn, rel)
                except Exception as e:
                    self.report[rel] = {"outcome": "error",
                                        "reason": f"loading raised (errors.report; the file is left out): "
                                                  f"{type(e).__name__}: {str(e).splitlines()[0].split('. ')[0] if str(e) else ''}"}
        # load_textual_inversion_embeddings re-sorts word_embeddings by name.lower()
        srt = {e.name: e for e in sorted(self.word_embeddings.values(), key=lambda e: e.name.lower())}
        self.word_embeddings.clear()
        self.word_embeddings.update(srt)

    def find_embedding_at_position(self, tokens, offset):
        token = tokens[offset]
        possible_matches = self.ids_lookup.get(token, None)
        if possible_matches is None:
            return None, None
        for ids, embedding in possible_matches:
            if tokens[offset:offset + len(ids)] == ids:
                return embedding, len(ids)
        return None, None


# --- A1111 sd_hijack_clip.py tokenize_line (1.10) ---------------------------------

class PromptChunk:
    def __init__(self):
        self.tokens = []
        self.multipliers = []
        self.fixes = []


def tokenize_line(line, tok, db, comma_token, matches=None, backtracks=None):
    parsed = parse_prompt_attention(line)            # opts.emphasis "Original"
    tokenized = tok([text for text, _ in parsed], truncation=False, add_special_tokens=False)["input_ids"]

    chunks = []
    chunk = PromptChunk()
    token_count = 0
    last_comma = -1

    def next_chunk(is_last=False):
        nonlocal token_count, last_comma, chunk
        if is_last:
            token_count += len(chunk.tokens)
        else:
            token_count += CHUNK
        to_add = CHUNK - len(chunk.tokens)
        if to_add > 0:
            chunk.tokens += [ID_END] * to_add
            chunk.multipliers += [1.0] * to_add
        chunk.tokens = [ID_START] + chunk.tokens + [ID_END]
        chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
        last_comma = -1
        chunks.append(chunk)
        chunk = PromptChunk()

    for seg, (tokens, (text, weight)) in enumerate(zip(tokenized, parsed)):
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == comma_token:
                last_comma = len(chunk.tokens)
            elif COMMA_PADDING_BACKTRACK != 0 and len(chunk.tokens) == CHUNK and last_comma != -1 \
                    and len(chunk.tokens) - last_comma <= COMMA_PADDING_BACKTRACK:
                break_location = last_comma + 1
                reloc_tokens = chunk.tokens[break_location:]
                reloc_mults = chunk.multipliers[break_location:]
                if backtracks is not None:
                    backtracks.append({"chunk": len(chunks), "break_location": break_location,
                                       "moved": len(reloc_tokens),
                                       "stranded_fixes": [(o, e.name) for o, e in chunk.fixes if o >= break_location]})
                chunk.tokens = chunk.tokens[:break_location]
                chunk.multipliers = chunk.multipliers[:break_location]
                next_chunk()
                chunk.tokens = reloc_tokens
                chunk.multipliers = reloc_mults
            if len(chunk.tokens) == CHUNK:
                next_chunk()
            embedding, embedding_length_in_tokens = db.find_embedding_at_position(tokens, position)
            if embedding is None:
                chunk.tokens.append(token)
                chunk.multipliers.append(weight)
                position += 1
                continue
            if matches is not None:
                matches.append({"segment": seg, "position": position, "name": embedding.name,
                                "length": embedding_length_in_tokens})
            emb_len = int(embedding.vectors)
            if len(chunk.tokens) + emb_len > CHUNK:
                next_chunk()
            chunk.fixes.append((len(chunk.tokens), embedding))
            chunk.tokens += [0] * emb_len
            chunk.multipliers += [weight] * emb_len
            position += embedding_length_in_tokens

    if chunk.tokens or not chunks:
        next_chunk(is_last=True)
    return parsed, chunks, token_count


# --- A1111 sd_hijack.py EmbeddingsWithFixes (1.10), f32 ---------------------------

class Hijack:
    fixes = None


if torch is not None:      # (the generators without torch never use it)
    class EmbeddingsWithFixes(torch.nn.Module):
        """The token-embedding layer with A1111's substitution (modules/sd_hijack.py), written from
        its rule: for each fix (offset, embedding) of a sequence, rows offset+1 .. offset+n (n = the
        vectors that fit before the end) are replaced by the embedding's vectors."""

        def __init__(self, wrapped, embeddings):
            super().__init__()
            self.wrapped = wrapped
            self.embeddings = embeddings
            self.weight = self.wrapped.weight

        def forward(self, input_ids):
            fixes_per_row = self.embeddings.fixes
            self.embeddings.fixes = None
            rows = self.wrapped(input_ids)
            if not fixes_per_row or all(len(f) == 0 for f in fixes_per_row):
                return rows
            out = []
            for fixes, seq in zip(fixes_per_row, rows):
                for offset, embedding in fixes:
                    n = min(seq.shape[0] - offset - 1, embedding.vec.shape[0])
                    seq = torch.cat([seq[:offset + 1], embedding.vec[:n], seq[offset + 1 + n:]]).to(dtype=rows.dtype)
                out.append(seq)
            return torch.stack(out)


def emphasis_original(z, multipliers):
    original_mean = z.mean()
    z = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
    new_mean = z.mean()
    return z * (original_mean / new_mean)


def encode_a1111(te, hijack, chunks):
    """process_tokens per chunk (batch of one), with EmbeddingsWithFixes installed."""
    zs = []
    for chunk in chunks:
        tokens = torch.asarray([chunk.tokens])
        hijack.fixes = [chunk.fixes]
        with torch.no_grad():
            z = te(input_ids=tokens).last_hidden_state
        assert hijack.fixes is None
        multipliers = torch.asarray([chunk.multipliers])
        assert multipliers.dtype == torch.float32
        zs.append(emphasis_original(z, multipliers))
    return torch.hstack(zs)


def encode_by_hand(te, token_embedding, chunks):
    """The same, built from inputs_embeds: token rows, vectors substituted at
    offset + 1, position embeddings added by text_model.embeddings."""
    from transformers.modeling_attn_mask_utils import _create_4d_causal_attention_mask
    tm = te.text_model
    zs = []
    with torch.no_grad():
        for chunk in chunks:
            ids = torch.asarray([chunk.tokens])
            rows = token_embedding.weight[ids[0]].clone()
            for offset, embedding in chunk.fixes:
                n = min(77 - offset - 1, embedding.vec.shape[0])
                rows[offset + 1: offset + 1 + n] = embedding.vec[:n]
            hidden = tm.embeddings(inputs_embeds=rows[None])
            mask = _create_4d_causal_attention_mask(ids.shape, hidden.dtype, device=hidden.device)
            out = tm.encoder(inputs_embeds=hidden, causal_attention_mask=mask)
            z = tm.final_layer_norm(out.last_hidden_state)
            zs.append(emphasis_original(z, torch.asarray([chunk.multipliers])))
    return torch.hstack(zs)



# --- what A1111 reads from a PNG embedding (make_png_embedding_fixtures.py) -----------

TEXT_KEY = "sd-ti-embedding"
# LCG of the pixel encoding: s_{k+1} = (A * s_k + C) mod M, s_0 = SEED; the k-th output
# (k = 0, 1, ...) is s_{k+1} mod 255 and the xor mask is that output & 0x0F.
LCG_A, LCG_C, LCG_M, LCG_SEED, LCG_MOD = 1664525, 1013904223, 2 ** 32, 0, 255


def lcg_masks(count):
    out = np.empty(count, np.uint8)
    s = LCG_SEED
    for k in range(count):
        s = (LCG_A * s + LCG_C) % LCG_M
        out[k] = (s % LCG_MOD) & 0x0F
    return out


def read_pixels(image):
    """This script's own reader, written from PIXEL_ENCODING; returns (dict or None, facts)."""
    a = np.asarray(image.convert("RGB"), dtype=np.uint8)
    lit = (a > 0).all(axis=2)
    cols, rows = lit.any(axis=0), lit.any(axis=1)
    c0 = int(cols.argmax()); c1 = a.shape[1] - int(cols[::-1].argmax())
    r0 = int(rows.argmax()); r1 = a.shape[0] - int(rows[::-1].argmax())
    a = a[r0:r1, c0:c1] & 0x0F
    black = np.flatnonzero(a.sum(axis=(0, 2)) == 0)
    facts = {"crop": [c0, r0, c1, r1], "black_columns": black.tolist()}
    if len(black) < 2:
        return None, facts
    lower = a[:, :black.min()]
    upper = a[:, black.max() + 1:]
    lower = lower ^ lcg_masks(lower.size).reshape(lower.shape)
    upper = upper ^ lcg_masks(upper.size).reshape(upper.shape)
    stream = ((upper << 4) | lower).reshape(-1).tobytes()
    d = zlib.decompressobj()
    text = d.decompress(stream)
    assert d.eof, "zlib stream not complete"
    facts["trailing_bytes"] = len(d.unused_data)
    return json.loads(text), facts


def a1111_outcome(fname, png):
    """EmbeddingDatabase.load_from_file for an image, restated: (embedding dict or None, how)."""
    stem, ext = os.path.splitext(fname)
    assert ext.upper() in (".PNG", ".WEBP", ".JXL", ".AVIF")
    if os.path.splitext(stem)[1].upper() == ".PREVIEW":
        return None, "ignored: the stem ends in .preview (case-insensitive); the file is not opened"
    from PIL import Image
    im = Image.open(io.BytesIO(png))
    if TEXT_KEY in getattr(im, "text", {}):
        data, how = json.loads(base64.b64decode(im.text[TEXT_KEY])), "text_chunk"
    else:
        data, facts = read_pixels(im)
        if not data:
            return None, (f"ignored silently: no {TEXT_KEY} text chunk and the pixel reader finds "
                          f"{len(facts['black_columns'])} black column(s) (< 2), so it returns None")
        how = "pixels"
    name = data.get("name", stem)
    vec = np.asarray(data["string_to_param"]["*"]["TORCHTENSOR"], dtype=np.float64).astype(np.float32)
    return {
        "name": name,
        "vectors": [[float(v) for v in row] for row in vec],
        "shape": int(vec.shape[-1]),
        "num_vectors": int(vec.shape[0]),
        "step": data.get("step"),
        "sd_checkpoint": data.get("sd_checkpoint"),
        "sd_checkpoint_name": data.get("sd_checkpoint_name"),
        "hash": hashlib.sha256(png).hexdigest(),
        "shorthash": hashlib.sha256(png).hexdigest()[:12],
    }, how


# --- diffusers -> LDM checkpoint keys (make_model_file_fixtures.py) -----------------

def up_has_attention(t):
    return "CrossAttn" in t


def unet_diffusers_to_ldm(sd, cfg):
    """diffusers UNet2DConditionModel keys -> LDM openaimodel keys (the inverse
    of diffusers' convert_ldm_unet_checkpoint; generalised from diffusers'
    scripts/convert_diffusers_to_original_stable_diffusion.py tables)."""
    L = cfg["layers_per_block"]
    n = len(cfg["block_out_channels"])
    prefixes = [  # (diffusers prefix, ldm prefix)
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.resnets.1.", "middle_block.2."),
    ]
    for i in range(n):
        for j in range(L):
            prefixes.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(L + 1) * i + j + 1}.0."))
            if up_has_attention(cfg["down_block_types"][i]):
                prefixes.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(L + 1) * i + j + 1}.1."))
        if i < n - 1:
            prefixes.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(L + 1) * (i + 1)}.0.op."))
        has_attn = up_has_attention(cfg["up_block_types"][i])
        for j in range(L + 1):
            prefixes.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(L + 1) * i + j}.0."))
            if has_attn:
                prefixes.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(L + 1) * i + j}.1."))
        if i < n - 1:
            prefixes.append((f"up_blocks.{i}.upsamplers.0.",
                             f"output_blocks.{(L + 1) * i + L}.{2 if has_attn else 1}."))
    resnet = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."),
              ("time_emb_proj.", "emb_layers.1."), ("norm2.", "out_layers.0."),
              ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]
    out = {}
    for k, v in sd.items():
        for hf, ldm in sorted(prefixes, key=lambda p: -len(p[0])):
            if k.startswith(hf):
                rest = k[len(hf):]
                if ".resnets." in hf or hf.startswith("mid_block.resnets"):
                    for a, b in resnet:
                        if rest.startswith(a):
                            rest = b + rest[len(a):]
                            break
                out[ldm + rest] = v
                break
        else:
            raise KeyError(f"unmapped unet key {k}")
    assert len(out) == len(sd)
    return out


def vae_diffusers_to_ldm(sd, cfg):
    """diffusers AutoencoderKL keys -> LDM autoencoder keys (mid attention
    linears become 1x1 conv weights)."""
    L = cfg["layers_per_block"]
    n = len(cfg["block_out_channels"])
    prefixes = [
        ("encoder.conv_norm_out.", "encoder.norm_out."),
        ("decoder.conv_norm_out.", "decoder.norm_out."),
    ]
    for side in ("encoder", "decoder"):
        prefixes.append((f"{side}.mid_block.attentions.0.", f"{side}.mid.attn_1."))
        for j in range(2):
            prefixes.append((f"{side}.mid_block.resnets.{j}.", f"{side}.mid.block_{j + 1}."))
    for i in range(n):
        for j in range(L):
            prefixes.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        if i < n - 1:
            prefixes.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
            prefixes.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample."))
        for j in range(L + 1):
            prefixes.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{n - 1 - i}.block.{j}."))
    attn = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."),
            ("to_v.", "v."), ("to_out.0.", "proj_out.")]
    out = {}
    for k, v in sd.items():
        new = None
        for hf, ldm in sorted(prefixes, key=lambda p: -len(p[0])):
            if k.startswith(hf):
                rest = k[len(hf):]
                if "attentions" in hf:
                    for a, b in attn:
                        if rest.startswith(a):
                            rest = b + rest[len(a):]
                            break
                    if rest.endswith("weight") and not rest.startswith("norm.") and v.dim() == 2:
                        v = v.reshape(*v.shape, 1, 1)
                elif rest.startswith("conv_shortcut."):
                    rest = "nin_shortcut." + rest[len("conv_shortcut."):]
                new = ldm + rest
                break
        if new is None:
            # encoder.conv_in, encoder.conv_out, decoder.conv_in,
            # decoder.conv_out, quant_conv, post_quant_conv: same names.
            new = k
        out[new] = v
    assert len(out) == len(sd)
    return out


# --- the demo model's dataset (make_demo_data.py) ------------------------------------

DEMO_SIZE = 64
DEMO_SUPER = 4
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
HOLDOUT_SEED = 4242
HOLDOUT_COUNT = 9
SAMPLE_SEED = 7


def caption(colour, shape, background):
    return f"a {colour} {shape} on a {background} background"


def all_combos():
    return [(c, s, b) for c in COLOUR_NAMES for s in SHAPES for b in COLOUR_NAMES if b != c]


def _choose_held_out():
    combos = all_combos()
    rng = random.Random(HOLDOUT_SEED)
    while True:
        held = rng.sample(combos, HOLDOUT_COUNT)
        train = [x for x in combos if x not in held]
        cs = {(c, s) for c, s, _ in train}
        sb = {(s, b) for _, s, b in train}
        cb = {(c, b) for c, _, b in train}
        ok = all((c, s) in cs and (s, b) in sb and (c, b) in cb for c, s, b in held)
        # every colour and shape appears at least once among the held-out set
        ok = ok and {s for _, s, _ in held} == set(SHAPES)
        if ok:
            return sorted(held)


HELD_OUT = _choose_held_out()
TRAIN_COMBOS = [x for x in all_combos() if x not in HELD_OUT]


def shape_mask(shape, size, x0, y0, res=DEMO_SIZE, sup=DEMO_SUPER):
    """Coverage in [0, 1] of a res x res image (float32), supersampled."""
    n = res * sup
    c = (np.arange(n, dtype=np.float32) + 0.5) / sup  # pixel-unit coordinates
    X, Y = np.meshgrid(c, c)
    if shape == "circle":
        r = size / 2.0
        m = (X - (x0 + r)) ** 2 + (Y - (y0 + r)) ** 2 <= r * r
    elif shape == "square":
        m = (X >= x0) & (X < x0 + size) & (Y >= y0) & (Y < y0 + size)
    elif shape == "triangle":
        # apex (x0 + size/2, y0), base y = y0 + size from x0 to x0 + size
        t = (Y - y0) / size                      # 0 at apex, 1 at base
        half = t * size / 2.0
        cx = x0 + size / 2.0
        m = (t >= 0) & (t <= 1) & (np.abs(X - cx) <= half)
    else:
        raise ValueError(shape)
    return m.reshape(res, sup, res, sup).mean(axis=(1, 3)).astype(np.float32)


def render(colour, shape, background, rng):
    """uint8 [64, 64, 3] image and its parameters; rng is a random.Random."""
    size = round(rng.uniform(0.35, 0.70) * DEMO_SIZE)
    x0 = rng.randint(0, DEMO_SIZE - size)
    y0 = rng.randint(0, DEMO_SIZE - size)
    a = shape_mask(shape, size, x0, y0)[..., None]
    fg = np.array(COLOURS[colour], np.float32)
    bg = np.array(COLOURS[background], np.float32)
    img = a * fg + (1 - a) * bg
    return np.clip(np.round(img), 0, 255).astype(np.uint8), dict(size=size, x0=x0, y0=y0)


def sample(rng, combos=None):
    """One random training example: (uint8 image, caption, combo)."""
    combos = combos or TRAIN_COMBOS
    c, s, b = combos[rng.randrange(len(combos))]
    img, _ = render(c, s, b, rng)
    return img, caption(c, s, b), (c, s, b)


# --- A1111's Restart sampler (make_sampler_fixtures.py) ------------------------------

def a1111_restart_sampler(model, x, sigmas, extra_args=None, callback=None, disable=None, s_noise=1.0):
    """modules/sd_samplers_extra.py `restart_sampler` (A1111 1.10), restated: Heun steps over the
    sigmas; with 20 or more steps the schedule is remade as karras over steps - restart steps
    (9, once; steps // 4, twice from 36 steps) and, at the sigma nearest 0.1, the path jumps back
    up to the sigma nearest 2 (fresh noise from randn_like, scaled to the jump) and runs down
    again on a karras schedule of restart_steps + 1. k-diffusion's sampling module must be
    imported first (import_k_diffusion)."""
    import k_diffusion.sampling as KS
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])

    def heun_step(x, old_sigma, new_sigma):
        denoised = model(x, old_sigma * s_in, **extra_args)
        d = (x - denoised) / old_sigma
        dt = new_sigma - old_sigma
        if new_sigma == 0:
            return x + d * dt
        x_2 = x + d * dt
        denoised_2 = model(x_2, new_sigma * s_in, **extra_args)
        d_2 = (x_2 - denoised_2) / new_sigma
        return x + (d + d_2) / 2 * dt

    steps = sigmas.shape[0] - 1
    if steps >= 20:
        restart_steps, restart_times = 9, 1
        if steps >= 36:
            restart_steps, restart_times = steps // 4, 2
        sigmas = KS.get_sigmas_karras(steps - restart_steps * restart_times, sigmas[-2].item(), sigmas[0].item(), device=sigmas.device)
        restart_list = {0.1: [restart_steps + 1, restart_times, 2]}
    else:
        restart_list = {}
    restart_list = {int(torch.argmin(abs(sigmas - key), dim=0)): value for key, value in restart_list.items()}
    step_list = []
    for i in range(len(sigmas) - 1):
        step_list.append((sigmas[i], sigmas[i + 1]))
        if i + 1 in restart_list:
            restart_steps, restart_times, restart_max = restart_list[i + 1]
            min_idx = i + 1
            max_idx = int(torch.argmin(abs(sigmas - restart_max), dim=0))
            if max_idx < min_idx:
                sigma_restart = KS.get_sigmas_karras(restart_steps, sigmas[min_idx].item(), sigmas[max_idx].item(), device=sigmas.device)[:-1]
                while restart_times > 0:
                    restart_times -= 1
                    step_list.extend(zip(sigma_restart[:-1], sigma_restart[1:]))
    last_sigma = None
    for old_sigma, new_sigma in step_list:
        if last_sigma is None:
            last_sigma = old_sigma
        elif last_sigma < old_sigma:
            x = x + KS.torch.randn_like(x) * s_noise * (old_sigma ** 2 - last_sigma ** 2) ** 0.5
        x = heun_step(x, old_sigma, new_sigma)
        last_sigma = new_sigma
    return x


# --- A1111's UniPC (make_pipeline_fixtures.py) -------------------------------------

UNIPC_DEFAULTS = {"variant": "bh1", "skip_type": "time_uniform", "order": 3, "lower_order_final": True}


def a1111_unipc(model, x, timesteps, extra_args=None, callback=None, disable=None, options=None):
    """modules/sd_samplers_timesteps_impl.py `unipc` over modules/models/diffusion/uni_pc/uni_pc.py
    (A1111 1.10, txt2img: t_start None), restated from its equations with torch float32 ops:
    NoiseScheduleVP('discrete', alphas_cumprod) (log alpha piecewise linear over t_n = (n+1)/N,
    extended by the end segments), UniPC(predict_x0=True, thresholding=False, variant) sampled
    multistep from t = 1 to 1/N over len(timesteps) steps spaced by skip_type, the model called at
    (t - 1/N) * 1000 for its (guided) eps. `options`: UNIPC_DEFAULTS's keys (A1111's uni_pc_*
    options). `callback` gets {"unipc": True, "i", "t", "order", "corrector"} per update."""
    o = dict(UNIPC_DEFAULTS, **(options or {}))
    extra_args = {} if extra_args is None else extra_args
    ac = model.inner_model.inner_model.alphas_cumprod
    log_alphas = (0.5 * torch.log(ac)).reshape(1, -1)
    n_total = log_alphas.shape[1]
    t_array = torch.linspace(0., 1., n_total + 1)[1:].reshape(1, -1)

    def interp(v, xp, yp):
        # piecewise linear through (xp, yp) (xp ascending), the end segments extended
        v = v.reshape(-1)
        k = torch.clamp(torch.searchsorted(xp[0].contiguous(), v.contiguous()) - 1, 0, xp.shape[1] - 2)
        x0, x1, y0, y1 = xp[0][k], xp[0][k + 1], yp[0][k], yp[0][k + 1]
        return y0 + (v - x0) * (y1 - y0) / (x1 - x0)

    def log_alpha(t):
        return interp(t, t_array, log_alphas)

    def sigma_of(t):
        return torch.sqrt(1. - torch.exp(2. * log_alpha(t)))

    def lambda_of(t):
        la = log_alpha(t)
        return la - 0.5 * torch.log(1. - torch.exp(2. * la))

    def inverse_lambda(lamb):
        la = -0.5 * torch.logaddexp(torch.zeros((1,)), -2. * lamb)
        return interp(la, torch.flip(log_alphas, [1]), torch.flip(t_array, [1]))

    s_in = x.new_ones([x.shape[0]])

    def data_prediction(x, t):
        eps = model(x, (t - 1. / n_total) * 1000. * s_in, **extra_args)
        a, s = torch.exp(log_alpha(t)), sigma_of(t)
        return (x - s * eps) / a

    steps = len(timesteps)
    t_T, t_0 = 1., 1. / n_total
    if o["skip_type"] == "logSNR":
        l_T, l_0 = lambda_of(torch.tensor([t_T])), lambda_of(torch.tensor([t_0]))
        ts = inverse_lambda(torch.linspace(l_T.item(), l_0.item(), steps + 1))
    elif o["skip_type"] == "time_quadratic":
        ts = torch.linspace(t_T ** 0.5, t_0 ** 0.5, steps + 1).pow(2)
    else:
        ts = torch.linspace(t_T, t_0, steps + 1)

    def update(x, models, times, t, order, use_corrector):
        t_p0, m_p0 = times[-1], models[-1]
        l_p0, l_t = lambda_of(t_p0), lambda_of(t)
        s_p0, s_t = sigma_of(t_p0), sigma_of(t)
        alpha_t = torch.exp(log_alpha(t))
        h = (l_t - l_p0)[0]
        rks, d1s = [], []
        for i in range(1, order):
            rk = ((lambda_of(times[-(i + 1)]) - l_p0) / h)[0]
            rks.append(rk)
            d1s.append((models[-(i + 1)] - m_p0) / rk)
        rks.append(1.)
        rks = torch.tensor(rks)
        hh = -h
        h_phi_1 = torch.expm1(hh)
        x_t_ = s_t / s_p0 * x - alpha_t * h_phi_1 * m_p0
        if o["variant"] == "vary_coeff":
            K = len(rks)
            C = torch.stack([rks ** k / math.factorial(k + 1) for k in range(K)], dim=1)
            h_phi_ks, h_phi_k, fact = [], h_phi_1, 1
            for k in range(1, K + 2):
                h_phi_ks.append(h_phi_k)
                h_phi_k = h_phi_k / hh - 1 / fact
                fact *= k + 1
            x_t = x_t_
            if d1s:
                A_p = torch.linalg.inv(C[:-1, :-1])
                for k in range(K - 1):
                    x_t = x_t - alpha_t * h_phi_ks[k + 1] * sum(d * A_p[k][j] for j, d in enumerate(d1s))
            if not use_corrector:
                return x_t, None
            A_c = torch.linalg.inv(C)
            model_t = data_prediction(x_t, t)
            d1_t = model_t - m_p0
            x_t, last = x_t_, 0
            for k in range(K - 1):
                x_t = x_t - alpha_t * h_phi_ks[k + 1] * sum(d * A_c[k][j] for j, d in enumerate(d1s))
                last = k
            return x_t - alpha_t * h_phi_ks[K] * (d1_t * A_c[last][-1]), model_t
        b_h = hh if o["variant"] == "bh1" else torch.expm1(hh)
        R, b, h_phi_k, fact = [], [], h_phi_1 / hh - 1, 1
        for i in range(1, order + 1):
            R.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * fact / b_h)
            fact *= i + 1
            h_phi_k = h_phi_k / hh - 1 / fact
        R, b = torch.stack(R), torch.tensor(b)
        x_t = x_t_
        if d1s:
            rhos_p = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(R[:-1, :-1], b[:-1])
            x_t = x_t_ - alpha_t * b_h * sum(d * rhos_p[j] for j, d in enumerate(d1s))
        if not use_corrector:
            return x_t, None
        rhos_c = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(R, b)
        model_t = data_prediction(x_t, t)
        corr = sum(d * rhos_c[j] for j, d in enumerate(d1s)) if d1s else 0
        return x_t_ - alpha_t * b_h * (corr + rhos_c[-1] * (model_t - m_p0)), model_t

    order = o["order"]
    assert steps >= order
    models, times = [data_prediction(x, ts[0].reshape(1))], [ts[0].reshape(1)]
    done = 0
    for init_order in range(1, order):
        t = ts[init_order].reshape(1)
        x, m = update(x, models, times, t, init_order, True)
        models.append(m if m is not None else data_prediction(x, t))
        times.append(t)
        if callback is not None:
            callback({"unipc": True, "i": done, "t": float(t), "order": init_order, "corrector": True})
        done += 1
    for step in range(order, steps + 1):
        t = ts[step].reshape(1)
        step_order = min(order, steps + 1 - step) if o["lower_order_final"] else order
        x, m = update(x, models, times, t, step_order, step != steps)
        if callback is not None:
            callback({"unipc": True, "i": done, "t": float(t), "order": step_order, "corrector": step != steps})
        done += 1
        models, times = models[1:], times[1:] + [t]
        if step < steps:
            models.append(m if m is not None else data_prediction(x, t))
    return x


# --- A1111's LCM (make_pipeline_fixtures.py) -----------------------------------------

LCM_ORIGINAL_TIMESTEPS = 50


def a1111_lcm_denoiser(inner_model):
    """modules/sd_samplers_lcm.py `LCMCompVisDenoiser` (A1111 1.10), restated on k-diffusion's
    DiscreteEpsDDPMDenoiser: the schedule of the 50 original LCM timesteps (ac[19], ac[39], ...,
    ac[999]), sigma_to_t = the nearest of them in log sigma x 20 + 19, t_to_sigma its inverse
    (clamped), get_sigmas(n) = t_to_sigma(linspace(999, 19, n)) + [0]; forward(x, sigma) =
    c_out' (x - sigma eps) + c_skip' x with eps = apply_model(x c_in, sigma_to_t(sigma)), c_in =
    1 / sqrt(sigma^2 + 1) and, for s = sigma_to_t(sigma) * 10 and sigma_data 0.5, c_skip' = 0.25 /
    (s^2 + 0.25), c_out' = s / sqrt(s^2 + 0.25). import_k_diffusion must run first."""
    import k_diffusion.external as KE
    import k_diffusion.sampling as KS
    import k_diffusion.utils as KU

    class LCMDenoiser(KE.DiscreteEpsDDPMDenoiser):
        def __init__(self, model):
            timesteps, original = 1000, LCM_ORIGINAL_TIMESTEPS
            self.skip_steps = timesteps // original
            valid = torch.zeros(original, dtype=torch.float32)
            for k in range(original):
                valid[original - 1 - k] = model.alphas_cumprod[timesteps - 1 - k * self.skip_steps]
            super().__init__(model, valid, quantize=None)

        def get_sigmas(self, n=None):
            if n is None:
                return KS.append_zero(self.sigmas.flip(0))
            start, end = self.sigma_to_t(self.sigma_max), self.sigma_to_t(self.sigma_min)
            return KS.append_zero(self.t_to_sigma(torch.linspace(start, end, n)))

        def sigma_to_t(self, sigma, quantize=None):
            dists = sigma.log() - self.log_sigmas[:, None]
            return dists.abs().argmin(dim=0).view(sigma.shape) * self.skip_steps + (self.skip_steps - 1)

        def t_to_sigma(self, timestep):
            t = torch.clamp(((timestep - (self.skip_steps - 1)) / self.skip_steps).float(), min=0, max=len(self.sigmas) - 1)
            return super().t_to_sigma(t)

        def get_eps(self, *args, **kwargs):
            return self.inner_model.apply_model(*args, **kwargs)

        def forward(self, input, sigma, **kwargs):
            c_out, c_in = [KU.append_dims(v, input.ndim) for v in self.get_scalings(sigma)]
            eps = self.get_eps(input * c_in, self.sigma_to_t(sigma), **kwargs)
            out = input + eps * c_out
            s = KU.append_dims(self.sigma_to_t(sigma), out.ndim) * 10.0
            c_skip = 0.5 ** 2 / (s ** 2 + 0.5 ** 2)
            c_out2 = s / (s ** 2 + 0.5 ** 2) ** 0.5
            return c_out2 * out + c_skip * input

    return LCMDenoiser(inner_model)


def a1111_sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """modules/sd_samplers_lcm.py `sample_lcm`: x = denoised, plus sigma_next * fresh noise
    (k-diffusion's default_noise_sampler: randn_like) while sigma_next > 0."""
    import k_diffusion.sampling as KS
    extra_args = {} if extra_args is None else extra_args
    noise_sampler = KS.default_noise_sampler(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1])
    return x


# --- A1111's VAE decode to 8-bit (make_pipeline_fixtures.py, make_pipeline_image_fixtures.py) ---

def decode_a1111(vae, latents, scale_factor, scale_mode="mul"):
    """Per image: vae.decode((1 / scale_factor) * z) (LDM decode_first_stage; "div": z / scale_factor),
    then A1111's conversion: clamp((x + 1) / 2, 0, 1), 255. * moveaxis(x, 0, 2) in float32,
    astype(uint8) (truncation). Returns the raw decoder output, the uint8 images [N, H, W, 3] and
    the images had it rounded instead."""
    outs = []
    with torch.no_grad():
        for i in range(latents.shape[0]):
            z = latents[i:i + 1]
            z = (1. / scale_factor * z) if scale_mode == "mul" else (z / scale_factor)
            outs.append(vae.decode(z).sample[0])
    raw = torch.stack(outs).float()
    x = torch.clamp((raw + 1.0) / 2.0, min=0.0, max=1.0)
    imgs, imgs_round = [], []
    for x_sample in x:
        v = 255. * np.moveaxis(x_sample.cpu().numpy(), 0, 2)
        assert v.dtype == np.float32
        imgs.append(v.astype(np.uint8))
        imgs_round.append(np.round(v).astype(np.uint8))
    return raw, np.stack(imgs), np.stack(imgs_round)

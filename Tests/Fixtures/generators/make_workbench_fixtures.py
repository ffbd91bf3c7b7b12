#!/usr/bin/env python3
"""Makes the training-workbench fixtures of Tests/TrainingTests:
  Tests/TrainingTests/Fixtures/workbench.json     the reference values (three sections below)
  Tests/TrainingTests/Fixtures/loss_3000.csv      a synthetic 3,000-step loss log (A1111's loss.csv)
  Tests/TrainingTests/Fixtures/alpha/00.png       a 16 x 16 RGBA picture with a varying alpha
against AUTOMATIC1111's webui 1.10 and on the tiny models Tests/Fixtures/tiny-sd/ (SD 1.x, text
width 32, VAE scale 2) and Tests/Fixtures/tiny-sdxl/ (CLIP-L width 8, bigG width 16).

Rerun (after scripts/setup_reference_env.sh, make_tiny_sd.py, make_embedding_fixtures.py and
make_family_embedding_fixtures.py; needs torch, diffusers, transformers, safetensors, Pillow, ftfy
and regex in .venv-ref; no network; about 10 s on one core):
    .venv-ref/bin/python Tests/Fixtures/generators/make_workbench_fixtures.py
Deterministic: same library versions -> same bytes (the loss log comes from a seeded
random.Random; every tensor from a seeded torch.Generator; the float64 statistics of section 1
are exactly rounded, see there). Float32 results of section 3 follow the CPU's kernels as
training.json's do. The JSON goes through fixture_support.write_json_fixture (compact, under
500 KB); float32 tensors are {"shape", "data"} with fixture_support.enc32's shortest exact
decimals; float64 values are plain JSON numbers (Python's repr: exact).

It imports make_training_fixtures.py's pieces (its A1111 batch conditioning `encode_batch`, LDM's
schedule `ldm_schedule`, `p_losses`, `randn`, the trained embedding's name / seed / size), which
import without side effects, and fixture_support.py's tokenizer and A1111 embedding code.

1. "inspect": what an embedding inspector shows
-----------------------------------------------
Embeddings: three A1111 .pt files of Tests/PromptingTests/Fixtures/embeddings (redshape.pt 1
vector, glow-strong.pt 2, bluestyle.pt 3; loaded as fixture_support.create_embedding_from_data
does, i.e. A1111's load_from_file: the single string_to_param tensor, float32) on tiny-sd, and
Tests/Fixtures/family-embeddings/xlone.safetensors ({"clip_l": [1, 8], "clip_g": [1, 16]}) on
tiny-sdxl: clip_l against text_encoder's token table, clip_g against text_encoder_2's. The token
tables are read from the safetensors files named in "token_tables" (key
text_model.embeddings.token_embedding.weight, float16 on disk, widened exactly to float32).
Per vector v (float32 values, widened exactly to float64) and per encoder:
  norm              sqrt(fsum(v_i^2))  (float64; products of float32 values are exact in float64,
                    math.fsum is exactly rounded, so this is the correctly rounded sum, then one
                    rounding for sqrt)
  cosine(v, y)      fsum(v_i y_i) / (sqrt(fsum(v_i^2)) * sqrt(fsum(y_i^2))), each piece rounded once
                    as written (0 when either norm is 0)
  init_cosine       cosine(v[i], init[i]) with the init vectors of init text "a cat" (below)
  nearest           the 5 token ids whose rows have the largest cosine to v over the WHOLE table
                    (49408 rows, special tokens included), ties broken by the lower id; each
                    {"id", "token" (the vocabulary string), "cosine"}; "sixth_cosine" is the next
                    one (how much room the ranking has)
The init vectors, as A1111's create_embedding(name, nvpt, overwrite_old, init_text) makes them
(modules/textual_inversion/textual_inversion.py, restated):
    embedded = cond_model.encode_embedding_init_text(init_text or '*', nvpt)   # [k, width]
    vec = torch.zeros((nvpt, embedded.shape[1]))
    if init_text:
        for i in range(nvpt):
            vec[i] = embedded[i * int(embedded.shape[0]) // nvpt]
  i.e. vector i = token row number floor(i * k / nvpt) of the k init rows: each token repeated in
  a BLOCK (3 vectors from "a cat": a, a, cat), NOT cyclically (a, cat, a); with more tokens than
  vectors the rows are spread. encode_embedding_init_text (modules/sd_hijack_clip.py, CLIP):
    ids = tokenizer(init_text, max_length=nvpt, return_tensors="pt", add_special_tokens=False)
    embedded = token_embedding(ids).squeeze(0)    # no BOS / EOS, no position embeddings
  transformers truncates when max_length is given without `truncation` ("Defaulting to
  'longest_first'"), so CLIP keeps only the FIRST nvpt tokens (k = min(tokens, nvpt)); the
  OpenCLIP classes (sd_hijack_open_clip.py, SD 2.x and SDXL's bigG) use
  open_clip's tokenizer.encode(init_text) with NO truncation (k = all tokens). SDXL
  (sd_models_xl.py) torch.cat's the two encoders' rows along dim 1 -- which raises when the
  counts differ (CLIP-L truncated to nvpt, bigG not): "a cat" with 1 vector fails in A1111 on
  SDXL ("a1111_sdxl_create_embedding" records the error). The per-encoder rule above is what the
  fixture uses (each encoder's own table; for 1 vector both give "a"). The tokenizer is
  fixture_support's slow CLIPTokenizer from the shipped vocabulary (open_clip's BPE is the same
  vocabulary: "a cat" -> [320, 2368] for both).
"init_token_ids" lists the token of each init vector; where the brief's cyclic reading
(i mod k) differs, "cyclic_variant" gives its ids and cosines too.
The plain word "cat" (its token rows: [2368]) gets the same record per encoder ("words").

2. "loss_plot": the loss log and what a plot of it needs
--------------------------------------------------------
A synthetic 3,000-step textual-inversion log: step s = 1..3000, 37 steps per epoch (37 pictures,
batch 1): epoch = (s - 1) // 37, epoch_step = (s - 1) % 37 (A1111's write_loss), learn rate from
the schedule "0.005:1000, 0.001:2000, 5e-05" (the rate of the optimizer step taken at
embedding.step = s - 1: 0.005 for s <= 1000, 0.001 for s <= 2000, 5e-05 after),
loss_s = (0.035 + 0.16 exp(-s / 600)) * exp(0.55 z_s), z_s standard normal by Box-Muller from
random.Random(20260) (two random() draws per step: z = sqrt(-2 ln(1 - u1)) cos(2 pi u2)), times 3
at the steps where a third draw u3 < 0.004 (spikes). Written as A1111's write_loss writes it:
csv.DictWriter(fieldnames=["step", "epoch", "epoch_step", "loss", "learn_rate"]), the loss as
f"{loss:.7f}", the rate as the Python float (repr: 0.005, 0.001, 5e-05), CRLF line ends, header
once (what Sources/Training/TrainingLossLog.swift writes and reads).
In the JSON, from the CSV's PRINTED loss values (float(text), float64):
  moving_average[W]  for W = 100 (the brief's "loss over the last N steps") and W = 150 (=
                     rows / 20, the window Sources/Training/LossPlot.swift uses for 3,000 rows):
                     at step i, fsum(loss_j for j = max(1, i-W+1) .. i) / (i - max(1, i-W+1) + 1)
                     (exactly rounded sum, one division), stored at steps 1, 10, 20, ..., 3000
  ticks              Heckbert's "Nice numbers for graph labels" (Graphics Gems, 1990), loose
                     labelling, restated in "nice_numbers.function" (the Python used): nicenum(x,
                     round) = nf * 10^e with e = floor(log10 x), f = x / 10^e, nf = 1, 2, 5, 10
                     (round: f < 1.5, < 3, < 7, else; not round: f <= 1, <= 2, <= 5, else);
                     range = nicenum(max - min, False), d = nicenum(range / (ntick - 1), True),
                     graphmin = floor(min / d) d, graphmax = ceil(max / d) d, ticks graphmin,
                     graphmin + d, ..., graphmax, labels with nfrac = max(-floor(log10 d), 0)
                     decimals; for ntick 5 over [min loss, max loss] and over [1, 3000]. Tick
                     values are given exactly as decimal strings (k * nf * 10^e) and as the
                     nearest double of that decimal.

3. "alpha_loss": A1111's "Use PNG alpha channel as loss weight"
---------------------------------------------------------------
modules/textual_inversion/dataset.py PersonalizedBase (use_weight=True), restated:
    image = images.read(path)              # Image.open, ImageOps.exif_transpose, fix_png_transparency
                                           # (a P or RGB picture whose info['transparency'] is bytes,
                                           # i.e. a palette tRNS, becomes RGBA)
    if use_weight and 'A' in image.getbands(): alpha_channel = image.getchannel('A')
    image = image.convert('RGB')           # alpha DROPPED, no compositing
    if not varsize: image = image.resize((width, height), PIL.Image.BICUBIC)
    npimage = np.array(image).astype(np.uint8); npimage = (npimage / 127.5 - 1.0).astype(np.float32)
    latent_sample = get_first_stage_encoding(encode_first_stage(pixels)).squeeze()   # [C, h, w]
    if use_weight and alpha_channel is not None:
        channels, *latent_size = latent_sample.shape                  # latent_size = [h, w]
        weight_img = alpha_channel.resize(latent_size)                # PIL size = (width, height)!
        npweight = np.array(weight_img).astype(np.float32)
        weight = torch.tensor([npweight] * channels).reshape([channels] + latent_size)
        weight -= weight.min()
        weight /= weight.mean()
    elif use_weight: weight = torch.ones(latent_sample.shape)        # a picture without alpha
  So: the alpha channel of the ORIGINAL picture (before the training-size resize) is resized
  straight to the latent size with Image.resize's default filter, BICUBIC for mode "L" (Pillow
  >= 7; 8-bit result, two passes, horizontal first in Pillow 9.5 -- done here as two single-pass
  calls, so any Pillow gives 9.5's bytes; checked against one call and against Pillow 11 when
  .venv-ref/pillow-11 is there), repeated over the latent channels, shifted so its minimum is 0
  and divided by its mean (over all C*h*w elements) so that it averages 1. Not clipped, not
  divided by 255. QUIRKS: (a) latent_size is [h, w] but PIL takes (width, height), and the result
  is RESHAPED (not transposed) to [C, h, w]: a non-square picture gets a scrambled map
  ("nonsquare_quirk" shows it for a 16 x 12 crop); (b) a constant alpha (e.g. fully opaque RGBA)
  gives weight 0 / 0 = NaN everywhere, and NaN losses; (c) only pictures with an 'A' band after
  images.read are weighted (RGBA, LA, a palette with a tRNS byte table); RGB / L (with or without a
  colour-key tRNS) and a palette whose transparency is one index get weight ones.
  Here the integers alpha - min sum exactly in float32 and the mean divides by C*h*w = 256, so
  the mean is exact and weight = float32(a / mean) is one correctly rounded division.
modules/sd_hijack.py weighted_loss / weighted_forward (installed on the model as
sd_model.weighted_forward): weighted_forward(x, c, w) sets sd_model._custom_loss_weight = w,
replaces get_loss by weighted_loss, runs the ordinary sd_model.forward(x, c), restores; 
    weighted_loss(pred, target, mean=True):
        loss = _old_get_loss(pred, target, mean=False)     # l2: mse_loss(target, pred, reduction='none')
        if weight is not None: loss *= weight               # elementwise, [B, C, h, w]
        return loss.mean() if mean else loss
train_embedding: loss = sd_model.weighted_forward(x, cond, w)[0] / gradient_step when use_weight,
else sd_model.forward(x, cond)[0] / gradient_step. LDM's p_losses (eps) calls
get_loss(model_output, target, mean=False).mean([1, 2, 3]) for loss_simple (and for loss_vlb,
weighted the same, times original_elbo_weight 0), so:
    loss = mean over items b of ( mean over (c, y, x) of w[b,c,y,x] * (eps - noise)[b,c,y,x]^2 )
  -- a plain mean of the weighted squares (the weights average 1 by construction; it is NOT
  divided by the sum of the weights). Everything else is training.json's step (see
  make_training_fixtures.py): EmbeddingsWithFixes conditioning of "a photo of trainme" with the
  2-vector embedding trainme (seed 4001), x_noisy = sqrt_alphas_cumprod[t] x + sqrt(1 -
  alphas_cumprod)[t] noise (LDM's float32 buffers from the float64 schedule), eps = UNet, loss as
  above (logvar 0, l_simple_weight 1: exact no-ops), d loss / d vectors by autograd.
  The latent here: the picture's RGB as A1111 prepares it, through tiny-sd's VAE encoder, the
  posterior MEAN times 0.18215 (A1111's latent_sampling_method "deterministic": std set to 0, so
  get_first_stage_encoding gives scale_factor * mean exactly; "once" would add std * randn).
  "weighted" = with the alpha weight, "unweighted" = A1111 without use_weight (make_training_
  fixtures.p_losses itself), same latent / noise / timestep / prompt; a weight of ones (use_weight
  on, a picture without alpha) gives bit for bit the unweighted loss and gradient (checked).

File layout
-----------
{"generator", "rerun", "versions",
 "inspect": {"a1111", "init_text", "top", "token_tables": {name: {"path", "key", "shape",
   "dtype_on_disk", "sha256"}},
   "embeddings": [{"file", "sha256", "model", "name", "vectors",
     "encoders": [{"encoder" ("clip" | "clip_l" | "clip_g"), "token_table", "width",
       "vec": [n, width] float32, "init_token_ids", "init_tokens",
       "a1111_init_tokens_kept" (k: the init rows A1111 takes),
       "vectors": [{"index", "norm", "init_cosine", "nearest": [{"id", "token", "cosine"}],
                    "sixth_cosine"}], "cyclic_variant"?: {"init_token_ids", "init_cosines"}}]}],
   "words": [{"word", "model", "encoders": [... the same per encoder, "token_ids"]}],
   "a1111_sdxl_create_embedding"},
 "loss_plot": {"csv", "csv_sha256", "csv_bytes", "rows", "steps_per_epoch", "schedule",
   "generation", "loss_min", "loss_max", "loss_min_step", "loss_max_step",
   "moving_average": {"formula", "stored_steps": [...], "windows": {"100": [...], "150": [...]}},
   "nice_numbers": {"function", "loss_axis", "step_axis": {"data_min", "data_max", "ntick",
     "range", "d": {"mantissa", "exponent", "value"}, "k_min", "k_max", "graph_min", "graph_max",
     "nfrac", "ticks": [decimal strings], "tick_values": [doubles], "labels": [...]}}},
 "alpha_loss": {"a1111", "picture": {"path", "sha256", "size", "mode", "rgb", "alpha"},
   "training_size", "pixels", "latent", "alpha_resized", "weight_map" [h, w] float32,
   "weight_shape", "weight_min_subtracted", "weight_mean", "nonsquare_quirk",
   "embedding": {...}, "prompt", "ids", "fixes", "timestep", "noise_seed", "noise",
   "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "noisy", "conditioning", "eps",
   "weighted": {"loss_per_item", "loss", "grad", "grad_norm"}, "unweighted": {the same},
   "ones_weight_equals_unweighted": true, "tolerance_guide"}}
"""

import copy
import csv
import decimal
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import safetensors.torch
from PIL import Image

import fixture_support as fs  # noqa: E402
from fixture_support import ROOT, VOCAB_GZ, build_tokenizer_files, enc32, f32_text, load_tokenizer  # noqa: E402
import make_training_fixtures as mtf  # noqa: E402  (imports without side effects)
from transformers import CLIPTextModel  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor  # noqa: E402
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()   # the truncation notice A1111's encode_embedding_init_text triggers
warnings.filterwarnings("ignore", message=".*torch_dtype.*")

GENERATOR = "Tests/Fixtures/generators/make_workbench_fixtures.py"
FIXTURES = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures")
OUT = os.path.join(FIXTURES, "workbench.json")
CSV_OUT = os.path.join(FIXTURES, "loss_3000.csv")
ALPHA_PNG = os.path.join(FIXTURES, "alpha", "00.png")
MAX_BYTES = 500_000
PILLOW_11 = os.path.join(ROOT, ".venv-ref", "pillow-11")

TINY_SD = os.path.join(ROOT, "Tests", "Fixtures", "tiny-sd")
TINY_SDXL = os.path.join(ROOT, "Tests", "Fixtures", "tiny-sdxl")
EMB_DIR = os.path.join(ROOT, "Tests", "PromptingTests", "Fixtures", "embeddings")
XL_EMB = os.path.join(ROOT, "Tests", "Fixtures", "family-embeddings", "xlone.safetensors")
SD_EMBEDDINGS = ["redshape.pt", "glow-strong.pt", "bluestyle.pt"]
TABLE_KEY = "text_model.embeddings.token_embedding.weight"
INIT_TEXT = "a cat"
WORD = "cat"
TOP = 5

LOG_STEPS = 3000
LOG_SEED = 20260
STEPS_PER_EPOCH = 37
SCHEDULE = "0.005:1000, 0.001:2000, 5e-05"
WINDOWS = [100, 150]
NTICK = 5

PROMPT = "a photo of trainme"
TIMESTEP = 421
NOISE_SEED = 4601
SIZE = 16


# --- 1. inspect --------------------------------------------------------------------------------

def token_table(path):
    """The float16 token table widened to float32 (exact), and what was read."""
    t = safetensors.torch.load_file(path)[TABLE_KEY]
    info = {"path": fs.rel(path), "key": TABLE_KEY, "shape": list(t.shape), "dtype_on_disk": str(t.dtype).replace("torch.", ""),
            "sha256": fs.sha256_file(path)}
    return t.to(torch.float32), info


def cosine_exact(x, y):
    """x, y: lists of Python floats (float32 values). fsum dot / (sqrt(fsum x^2) sqrt(fsum y^2))."""
    nx = math.sqrt(math.fsum(a * a for a in x))
    ny = math.sqrt(math.fsum(b * b for b in y))
    if nx == 0 or ny == 0:
        return 0.0
    return math.fsum(a * b for a, b in zip(x, y)) / (nx * ny)


class Table:
    def __init__(self, t, name, tok):
        self.t32 = t
        self.t64 = t.double().numpy()
        self.norm64 = np.sqrt((self.t64 * self.t64).sum(axis=1))
        self.name = name
        self.tok = tok

    def row(self, i):
        return [float(v) for v in self.t32[i].tolist()]

    def nearest(self, x):
        """The TOP nearest ids by exact cosine (ties: lower id), and the next cosine. Ranked by a
        numpy float64 pass, then the best 40 recomputed exactly and re-sorted."""
        xv = np.asarray(x, dtype=np.float64)
        c = (self.t64 @ xv) / (self.norm64 * np.sqrt((xv * xv).sum()))
        order = np.lexsort((np.arange(len(c)), -c))[:40]
        exact = sorted(((cosine_exact(x, self.row(int(i))), int(i)) for i in order), key=lambda p: (-p[0], p[1]))
        # the ranking is safe: everything outside the 40 is far below the sixth
        assert c[order[-1]] < exact[TOP][0] - 1e-9, (c[order[-1]], exact[TOP][0])
        top = [{"id": i, "token": self.tok.convert_ids_to_tokens([i])[0], "cosine": cv} for cv, i in exact[:TOP]]
        return top, exact[TOP][0]


def a1111_init_ids(tok, text, nvpt, truncates):
    """The token id behind each of the nvpt init vectors (A1111's create_embedding over
    encode_embedding_init_text), and k (the rows it took). truncates: CLIP's (max_length=nvpt)."""
    full = tok(text, add_special_tokens=False)["input_ids"]
    if truncates:
        ids = tok(text, max_length=nvpt, add_special_tokens=False)["input_ids"]   # as A1111 calls it
        assert ids == full[:nvpt], (ids, full)
    else:
        ids = full
    k = len(ids)
    return [ids[i * k // nvpt] for i in range(nvpt)], k, full


def inspect_encoder(tok, table, vec, encoder, truncates, nvpt=None):
    vec = vec.to(torch.float32)
    n, width = vec.shape
    assert width == table.t32.shape[1]
    init_ids, k, full = a1111_init_ids(tok, INIT_TEXT, n, truncates)
    rec = {"encoder": encoder, "token_table": table.name, "width": width, "vec": enc32(vec),
           "init_token_ids": init_ids, "init_tokens": tok.convert_ids_to_tokens(init_ids),
           "a1111_init_tokens_kept": k, "vectors": []}
    for i in range(n):
        x = [float(v) for v in vec[i].tolist()]
        nearest, sixth = table.nearest(x)
        rec["vectors"].append({
            "index": i,
            "norm": math.sqrt(math.fsum(a * a for a in x)),
            "init_cosine": cosine_exact(x, table.row(init_ids[i])),
            "nearest": nearest,
            "sixth_cosine": sixth,
        })
    cyclic = [full[i % len(full)] for i in range(n)]
    if cyclic != init_ids:
        rec["cyclic_variant"] = {
            "comment": "the brief's reading (init token i mod k); NOT what A1111's create_embedding does",
            "init_token_ids": cyclic,
            "init_cosines": [cosine_exact([float(v) for v in vec[i].tolist()], table.row(cyclic[i])) for i in range(n)],
        }
    return rec


def inspect_section(tok):
    t_sd, i_sd = token_table(os.path.join(TINY_SD, "text_encoder", "model.safetensors"))
    t_l, i_l = token_table(os.path.join(TINY_SDXL, "text_encoder", "model.safetensors"))
    t_g, i_g = token_table(os.path.join(TINY_SDXL, "text_encoder_2", "model.safetensors"))
    tables = {"tiny-sd/text_encoder": Table(t_sd, "tiny-sd/text_encoder", tok),
              "tiny-sdxl/text_encoder": Table(t_l, "tiny-sdxl/text_encoder", tok),
              "tiny-sdxl/text_encoder_2": Table(t_g, "tiny-sdxl/text_encoder_2", tok)}
    infos = {"tiny-sd/text_encoder": i_sd, "tiny-sdxl/text_encoder": i_l, "tiny-sdxl/text_encoder_2": i_g}
    assert tok(INIT_TEXT, add_special_tokens=False)["input_ids"] == [320, 2368]
    embeddings = []
    for fn in SD_EMBEDDINGS:
        path = os.path.join(EMB_DIR, fn)
        data = torch.load(path, map_location="cpu", weights_only=False)
        e = fs.create_embedding_from_data(data, os.path.splitext(fn)[0], fn)
        assert e.shape == 32
        embeddings.append({"file": fs.rel(path), "sha256": fs.sha256_file(path), "model": "Tests/Fixtures/tiny-sd",
                           "name": e.name, "vectors": int(e.vectors),
                           "encoders": [inspect_encoder(tok, tables["tiny-sd/text_encoder"], e.vec, "clip", True)]})
    data = safetensors.torch.load_file(XL_EMB)
    e = fs.create_embedding_from_data(data, "xlone", "xlone.safetensors")
    embeddings.append({"file": fs.rel(XL_EMB), "sha256": fs.sha256_file(XL_EMB), "model": "Tests/Fixtures/tiny-sdxl",
                       "name": e.name, "vectors": int(e.vectors),
                       "encoders": [inspect_encoder(tok, tables["tiny-sdxl/text_encoder"], e.vec["clip_l"], "clip_l", True),
                                    inspect_encoder(tok, tables["tiny-sdxl/text_encoder_2"], e.vec["clip_g"], "clip_g", False)]})
    assert [x["vectors"] for x in embeddings] == [1, 2, 3, 1]

    words = []
    word_ids = tok(WORD, add_special_tokens=False)["input_ids"]
    assert word_ids == [2368]
    for model, encs in [("Tests/Fixtures/tiny-sd", [("clip", "tiny-sd/text_encoder", True)]),
                        ("Tests/Fixtures/tiny-sdxl", [("clip_l", "tiny-sdxl/text_encoder", True),
                                                      ("clip_g", "tiny-sdxl/text_encoder_2", False)])]:
        recs = []
        for encoder, tname, trunc in encs:
            rows = tables[tname].t32[word_ids]
            r = inspect_encoder(tok, tables[tname], rows, encoder, trunc)
            r["token_ids"] = word_ids
            assert r["vectors"][0]["nearest"][0]["id"] == word_ids[0]
            recs.append(r)
        words.append({"word": WORD, "model": model, "encoders": recs})

    # A1111 on SDXL: GeneralConditioner.encode_embedding_init_text cats CLIP-L's (truncated to nvpt)
    # and bigG's (not truncated) rows along dim 1.
    ids_l, _, _ = a1111_init_ids(tok, INIT_TEXT, 1, True)
    rows_l = t_l[tok(INIT_TEXT, max_length=1, add_special_tokens=False)["input_ids"]]
    rows_g = t_g[tok(INIT_TEXT, add_special_tokens=False)["input_ids"]]
    try:
        torch.cat([rows_l, rows_g], dim=1)
        sdxl_outcome = "no error"
    except RuntimeError as err:
        sdxl_outcome = "RuntimeError: " + str(err).split("\n")[0]
    assert sdxl_outcome.startswith("RuntimeError"), sdxl_outcome

    for x in embeddings:
        for r in x["encoders"]:
            print(f"  {x['name']:12s} {r['encoder']:6s} init={r['init_tokens']} norms="
                  f"{[round(v['norm'], 5) for v in r['vectors']]} init_cos={[round(v['init_cosine'], 4) for v in r['vectors']]} "
                  f"nearest0={[v['nearest'][0]['id'] for v in r['vectors']]}", flush=True)
    return {
        "a1111": {
            "create_embedding": "textual_inversion.create_embedding: embedded = cond_model.encode_embedding_init_text("
                                "init_text or '*', nvpt); vec = zeros((nvpt, embedded.shape[1])); if init_text: vec[i] = "
                                "embedded[i * int(embedded.shape[0]) // nvpt] for i in range(nvpt) (each init token repeated "
                                "in a block, not cyclically)",
            "encode_embedding_init_text_clip": "sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords (SD 1.x, SDXL's CLIP-L): "
                                               "tokenizer(init_text, max_length=nvpt, return_tensors='pt', "
                                               "add_special_tokens=False) -> transformers truncates to the FIRST nvpt tokens; "
                                               "rows of the token embedding (no BOS/EOS, no positions)",
            "encode_embedding_init_text_openclip": "sd_hijack_open_clip (SD 2.x, SDXL's bigG): open_clip tokenizer.encode("
                                                   "init_text), NOT truncated; rows of model.token_embedding",
            "encode_embedding_init_text_sdxl": "sd_models_xl: torch.cat of each embedder's rows along dim 1 (raises when the "
                                               "row counts differ); this fixture applies each encoder's own rule to its own table",
        },
        "init_text": INIT_TEXT,
        "init_text_ids": tok(INIT_TEXT, add_special_tokens=False)["input_ids"],
        "top": TOP,
        "statistics": "float64 from the float32 values: norm = sqrt(fsum(v_i^2)); cosine(v, y) = fsum(v_i y_i) / "
                      "(sqrt(fsum(v_i^2)) * sqrt(fsum(y_i^2))) (0 if a norm is 0); nearest = the top cosines over all "
                      "rows of the token table, ties to the lower id; sixth_cosine = the next one",
        "token_tables": infos,
        "embeddings": embeddings,
        "words": words,
        "a1111_sdxl_create_embedding": {"init_text": INIT_TEXT, "vectors": 1, "clip_l_rows": int(rows_l.shape[0]),
                                        "clip_g_rows": int(rows_g.shape[0]), "outcome": sdxl_outcome},
    }


# --- 2. loss_plot ------------------------------------------------------------------------------

def schedule_rate(step):
    """The rate of the optimizer step taken at embedding.step = step - 1 (SCHEDULE, parsed by
    make_training_fixtures.parse_schedule's rules)."""
    entries = mtf.parse_schedule(SCHEDULE, 100000)
    for rate, end in entries:
        if step - 1 < end:
            return rate
    raise AssertionError(step)


def make_log():
    rng = random.Random(LOG_SEED)
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, fieldnames=["step", "epoch", "epoch_step", "loss", "learn_rate"])
    w.writeheader()
    for s in range(1, LOG_STEPS + 1):
        u1, u2, u3 = rng.random(), rng.random(), rng.random()
        z = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
        loss = (0.035 + 0.16 * math.exp(-s / 600.0)) * math.exp(0.55 * z)
        if u3 < 0.004:
            loss *= 3.0
        w.writerow({"step": s, "epoch": (s - 1) // STEPS_PER_EPOCH, "epoch_step": (s - 1) % STEPS_PER_EPOCH,
                    "loss": f"{loss:.7f}", "learn_rate": schedule_rate(s)})
    return out.getvalue().encode("utf-8")


NICE_SOURCE = '''
def nicenum(x, round_):
    """Heckbert 1990: a nice number (1, 2, 5 or 10 times a power of ten) near x."""
    expv = math.floor(math.log10(x))
    f = x / 10.0 ** expv
    if round_:
        nf = 1 if f < 1.5 else 2 if f < 3 else 5 if f < 7 else 10
    else:
        nf = 1 if f <= 1 else 2 if f <= 2 else 5 if f <= 5 else 10
    return nf, expv                      # the value is nf * 10 ** expv


def loose_label(lo, hi, ntick):
    nf, e = nicenum(hi - lo, False)
    rng = nf * 10.0 ** e
    dnf, de = nicenum(rng / (ntick - 1), True)
    d = dnf * 10.0 ** de
    k_min, k_max = math.floor(lo / d), math.ceil(hi / d)
    nfrac = max(-math.floor(math.log10(d)), 0)
    return (nf, e), (dnf, de), k_min, k_max, nfrac   # ticks: k * d for k = k_min .. k_max
'''
_nice_ns = {"math": math}
exec(NICE_SOURCE, _nice_ns)


def dec(k, nf, e):
    """k * nf * 10^e as an exact decimal string."""
    return str(decimal.Decimal(k * nf).scaleb(e).normalize()) if k * nf != 0 else "0"


def nice_axis(lo, hi):
    (nf, e), (dnf, de), k_min, k_max, nfrac = _nice_ns["loose_label"](lo, hi, NTICK)
    d = dnf * 10.0 ** de
    for v in (lo / d, hi / d):
        assert abs(v - round(v)) > 1e-9 or v == round(v), v      # no floor / ceil on a knife edge
    ticks = [dec(k, dnf, de) for k in range(k_min, k_max + 1)]
    ticks = [format(decimal.Decimal(t), "f") for t in ticks]
    return {"data_min": lo, "data_max": hi, "ntick": NTICK,
            "range": {"mantissa": nf, "exponent": e, "value": float(dec(1, nf, e))},
            "d": {"mantissa": dnf, "exponent": de, "value": float(dec(1, dnf, de))},
            "k_min": k_min, "k_max": k_max,
            "graph_min": format(decimal.Decimal(dec(k_min, dnf, de)), "f"),
            "graph_max": format(decimal.Decimal(dec(k_max, dnf, de)), "f"),
            "nfrac": nfrac, "ticks": ticks, "tick_values": [float(t) for t in ticks],
            "labels": [f"{float(t):.{nfrac}f}" for t in ticks]}


def loss_plot_section():
    data = make_log()
    os.makedirs(os.path.dirname(CSV_OUT), exist_ok=True)
    tmp = CSV_OUT + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, CSV_OUT)
    text = data.decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == "step,epoch,epoch_step,loss,learn_rate" and lines[-1] == "" and "\n" not in text.replace("\r\n", "")
    rows = [l.split(",") for l in lines[1:-1]]
    assert len(rows) == LOG_STEPS
    losses = [float(r[3]) for r in rows]
    assert [int(r[0]) for r in rows] == list(range(1, LOG_STEPS + 1))
    assert {r[4] for r in rows} == {"0.005", "0.001", "5e-05"}
    stored = [1] + list(range(10, LOG_STEPS + 1, 10))
    if stored[-1] != LOG_STEPS:
        stored.append(LOG_STEPS)
    windows = {}
    for W in WINDOWS:
        vals = []
        for i in stored:
            lo = max(1, i - W + 1)
            vals.append(math.fsum(losses[lo - 1:i]) / (i - lo + 1))
        windows[str(W)] = vals
    lmin, lmax = min(losses), max(losses)
    loss_axis = nice_axis(lmin, lmax)
    step_axis = nice_axis(1.0, float(LOG_STEPS))
    print(f"  loss log: {len(data)} bytes, loss {lmin}..{lmax}, ma100[-1]={windows['100'][-1]:.7f}, "
          f"loss ticks {loss_axis['ticks']}, step ticks {step_axis['ticks']}", flush=True)
    return {
        "csv": fs.rel(CSV_OUT), "csv_sha256": fs.sha256_bytes(data), "csv_bytes": len(data), "rows": LOG_STEPS,
        "steps_per_epoch": STEPS_PER_EPOCH, "schedule": SCHEDULE,
        "generation": "loss_s = (0.035 + 0.16 exp(-s/600)) * exp(0.55 z_s), z_s = sqrt(-2 ln(1 - u1)) cos(2 pi u2), "
                      "times 3 where u3 < 0.004; u1, u2, u3 = three random() draws per step of random.Random(20260); "
                      "written f'{loss:.7f}'",
        "csv_format": "A1111 write_loss: csv.DictWriter(fieldnames=[step, epoch, epoch_step, loss, learn_rate]), header "
                      "once, CRLF line ends, epoch = (step-1)//37, epoch_step = (step-1)%37, loss '%.7f', learn_rate the "
                      "Python float's repr",
        "loss_min": lmin, "loss_max": lmax,
        "loss_min_step": losses.index(lmin) + 1, "loss_max_step": losses.index(lmax) + 1,
        "moving_average": {
            "formula": "at step i: fsum(loss_j, j = max(1, i-W+1) .. i) / (i - max(1, i-W+1) + 1), float64 from the CSV's "
                       "printed losses (exactly rounded sum, one division)",
            "stored_steps": stored,
            "windows": windows,
        },
        "nice_numbers": {
            "reference": "P. S. Heckbert, 'Nice numbers for graph labels', Graphics Gems (1990): loose labelling",
            "function": NICE_SOURCE.strip(),
            "loss_axis": loss_axis,
            "step_axis": step_axis,
        },
    }


# --- 3. alpha_loss -----------------------------------------------------------------------------

def make_picture():
    """16 x 16 RGBA: smooth colours; alpha a soft disc from 48 (corners) to 255 (centre) with a
    notch of 24 at the top-left 2 x 2 pixels."""
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    for y in range(SIZE):
        for x in range(SIZE):
            r = math.hypot(x - 9.3, y - 7.1)
            rgba[y, x, 0] = (x * 15 + y * 3) % 256
            rgba[y, x, 1] = (200 - y * 11) % 256
            rgba[y, x, 2] = (60 + ((x * y) % 7) * 25) % 256
            a = 255.0 - 207.0 * min(r / 9.0, 1.0) ** 1.5
            rgba[y, x, 3] = int(round(a))
    rgba[:2, :2, 3] = 24
    img = Image.fromarray(rgba, "RGBA")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def resize_9_5(im, w, h, resample):
    """im.resize((w, h), resample) as Pillow 9.5 computes it: horizontal pass, then vertical."""
    return im.resize((w, im.height), resample=resample).resize((w, h), resample=resample)


def a1111_weight(alpha_channel, channels, latent_size):
    """dataset.py's weight from the alpha channel (latent_size = [h, w] as A1111 passes it)."""
    weight_img = resize_9_5(alpha_channel, latent_size[0], latent_size[1], Image.BICUBIC)  # PIL (width, height)
    one_call = alpha_channel.resize(tuple(latent_size))                                      # A1111's call
    assert weight_img.tobytes() == one_call.tobytes()
    npweight = np.array(weight_img).astype(np.float32)
    weight = torch.tensor(np.array([npweight] * channels)).reshape([channels] + list(latent_size))
    resized = np.array(weight_img)
    mn = weight.min()
    weight -= mn
    mean = weight.mean()
    weight /= mean
    return weight, resized, float(mn), float(mean)


def check_pillow_11(png_bytes, cases):
    """A1111's one alpha_channel.resize(size) call under Pillow 11 (9.5's resampling), in a subprocess;
    cases: [(crop box or None, size)]."""
    if not os.path.isdir(os.path.join(PILLOW_11, "PIL")):
        print("  check: Pillow 11 not at .venv-ref/pillow-11, version cross-check skipped", flush=True)
        return None
    script = r'''
import base64, io, json, sys
from PIL import Image
import PIL
png, cases = json.load(sys.stdin)
im = Image.open(io.BytesIO(base64.b64decode(png)))
out = [PIL.__version__]
for box, size in cases:
    a = (im.crop(tuple(box)) if box else im).getchannel("A")
    out.append(base64.b64encode(a.resize(tuple(size)).tobytes()).decode())
print(json.dumps(out))
'''
    import base64
    env = dict(os.environ, PYTHONPATH=PILLOW_11)
    r = subprocess.run([sys.executable, "-c", script], input=json.dumps([base64.b64encode(png_bytes).decode(), cases]),
                       capture_output=True, text=True, env=env, check=True)
    out = json.loads(r.stdout)
    return out[0], [base64.b64decode(s) for s in out[1:]]


def weighted_p_losses(unet, x0, noise, t, cond, sqrt_ac_t, sqrt_1m_t, logvar_t, weight):
    """LDM p_losses (eps) with A1111's weighted_loss as get_loss."""
    b = x0.shape[0]
    shape = (b, 1, 1, 1)
    x_noisy = sqrt_ac_t.reshape(shape) * x0 + sqrt_1m_t.reshape(shape) * noise
    eps = unet(x_noisy, t, encoder_hidden_states=cond).sample

    def get_loss(pred, target):       # weighted_loss(pred, target, mean=False)
        loss = torch.nn.functional.mse_loss(target, pred, reduction="none")
        loss *= weight
        return loss

    loss_simple = get_loss(eps, noise).mean([1, 2, 3])
    loss = loss_simple / torch.exp(logvar_t) + logvar_t
    loss = 1.0 * loss.mean()
    loss = loss + 0.0 * get_loss(eps, noise).mean(dim=(1, 2, 3)).mean()    # original_elbo_weight 0
    return loss, loss_simple, x_noisy, eps


def alpha_run(unet, te, tok, comma, sched, vec0, x0, noise, weight, dtype=torch.float32, direction=None):
    p = vec0.detach().clone().to(dtype).requires_grad_(True)
    db, emb = fs.trainable_embedding_db(tok, p, mtf.NAME, mtf.WIDTH)
    parsed, chunk = fs.one_chunk(tok, db, comma, PROMPT)
    t = torch.tensor([TIMESTEP], dtype=torch.int64)
    if dtype == torch.float64:
        sa = torch.tensor(np.sqrt(sched["ac64"][[TIMESTEP]]), dtype=dtype)
        sm = torch.tensor(np.sqrt(1.0 - sched["ac64"][[TIMESTEP]]), dtype=dtype)
    else:
        sa, sm = sched["sqrt_ac"][t], sched["sqrt_1m_ac"][t]
    logvar_t = sched["logvar"][t].to(dtype)
    x0, noise = x0.to(dtype), noise.to(dtype)
    w = None if weight is None else weight.to(dtype)

    def loss_at(vec):
        emb.vec = vec
        cond = mtf.encode_batch(te, [chunk])
        if w is None:
            return mtf.p_losses(unet, x0, noise, t, cond, sa, sm, logvar_t) + (cond,)
        return weighted_p_losses(unet, x0, noise, t, cond, sa, sm, logvar_t, w) + (cond,)

    loss, loss_simple, x_noisy, eps, cond = loss_at(p)
    loss.backward()
    out = {"chunk": chunk, "parsed": parsed, "sa": sa, "sm": sm, "loss": loss.detach(), "loss_simple": loss_simple.detach(),
           "x_noisy": x_noisy.detach(), "eps": eps.detach(), "cond": cond.detach(), "grad": p.grad.detach().clone()}
    if direction is not None:
        h = 1e-6
        with torch.no_grad():
            lp = loss_at(p.detach() + h * direction)[0].item()
            lm = loss_at(p.detach() - h * direction)[0].item()
        out["fd"] = (lp - lm) / (2 * h)
    return out


def outcome(r):
    return {"loss_per_item": [f32_text(v) for v in r["loss_simple"].tolist()], "loss": f32_text(r["loss"]),
            "grad": enc32(r["grad"]), "grad_norm": float(r["grad"].double().norm())}


def alpha_section(tok, comma):
    # the picture
    png = make_picture()
    os.makedirs(os.path.dirname(ALPHA_PNG), exist_ok=True)
    tmp = ALPHA_PNG + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, ALPHA_PNG)
    assert make_picture() == png

    # dataset.py
    image = Image.open(ALPHA_PNG)
    assert image.mode == "RGBA" and "A" in image.getbands() and "transparency" not in image.info
    alpha_channel = image.getchannel("A")
    rgba = np.array(image)
    rgb_image = image.convert("RGB")
    resized = rgb_image.resize((SIZE, SIZE), Image.BICUBIC)                    # same size: a copy
    assert resized.tobytes() == rgb_image.tobytes()
    npimage = np.array(resized).astype(np.uint8)
    npimage = (npimage / 127.5 - 1.0).astype(np.float32)
    pixels = torch.from_numpy(npimage).permute(2, 0, 1).to(dtype=torch.float32)

    torch.set_num_threads(1)
    vae = AutoencoderKL.from_pretrained(TINY_SD, subfolder="vae", torch_dtype=torch.float32, local_files_only=True).eval()
    te = CLIPTextModel.from_pretrained(TINY_SD, subfolder="text_encoder", dtype=torch.float32,
                                       attn_implementation="eager", local_files_only=True).eval()
    unet = UNet2DConditionModel.from_pretrained(TINY_SD, subfolder="unet", torch_dtype=torch.float32,
                                                local_files_only=True).eval()
    vae.set_attn_processor(AttnProcessor())
    unet.set_attn_processor(AttnProcessor())
    for m in (vae, te, unet):
        m.requires_grad_(False)
    scale = vae.config.scaling_factor
    assert scale == 0.18215
    with torch.no_grad():
        mean = vae.encode(pixels.unsqueeze(0)).latent_dist.mean
    latent = (scale * mean).squeeze()                                            # [4, 8, 8]
    assert tuple(latent.shape) == (4, SIZE // 2, SIZE // 2)

    channels, *latent_size = latent.shape
    weight, alpha_resized, wmin, wmean = a1111_weight(alpha_channel, channels, latent_size)
    assert wmin > 0, "the minimum subtraction should matter here"
    assert torch.equal(weight[0], weight[3])
    assert abs(float(weight.double().mean()) - 1.0) < 1e-6

    # the non-square quirk (a 16 x 12 crop -> latent [4, 6, 8])
    crop = image.crop((0, 0, 16, 12))
    ns_latent_size = [12 // 2, 16 // 2]
    ns_weight, ns_resized, _, _ = a1111_weight(crop.getchannel("A"), 4, ns_latent_size)
    intended = resize_9_5(crop.getchannel("A"), 8, 6, Image.BICUBIC)
    assert ns_resized.shape == (8, 6)

    p11 = check_pillow_11(png, [(None, list(latent_size)), ([0, 0, 16, 12], ns_latent_size)])
    if p11 is not None:
        assert p11[1][0] == alpha_resized.tobytes(), "Pillow 11 resizes the alpha differently"
        assert p11[1][1] == ns_resized.tobytes(), "Pillow 11 resizes the cropped alpha differently"
        print(f"  check: Pillow {p11[0]} gives the same alpha resizes (square and non-square)", flush=True)

    # the step
    sched = mtf.ldm_schedule()
    vec0 = mtf.randn(mtf.VEC_SEED, (mtf.VECTORS, mtf.WIDTH)) * mtf.SCALE
    x0 = latent.unsqueeze(0)
    noise = mtf.randn(NOISE_SEED, (1, 4, SIZE // 2, SIZE // 2))
    w = weight.unsqueeze(0)                                                    # BatchLoader: stack
    rw = alpha_run(unet, te, tok, comma, sched, vec0, x0, noise, w)
    ru = alpha_run(unet, te, tok, comma, sched, vec0, x0, noise, None)
    r1 = alpha_run(unet, te, tok, comma, sched, vec0, x0, noise, torch.ones_like(w))
    assert torch.equal(r1["loss"], ru["loss"]) and torch.equal(r1["grad"], ru["grad"])
    assert torch.equal(rw["eps"], ru["eps"]) and torch.equal(rw["cond"], ru["cond"])
    again = alpha_run(unet, te, tok, comma, sched, vec0, x0, noise, w)
    assert torch.equal(again["loss"], rw["loss"]) and torch.equal(again["grad"], rw["grad"])
    # the weighted loss is the plain mean of the weighted squares (batch 1)
    flat = (w * (rw["eps"] - noise) ** 2).mean()
    assert abs(float(flat) - float(rw["loss"])) <= 2e-7 * abs(float(rw["loss"]))
    assert float(rw["loss"]) != float(ru["loss"])
    chunk = rw["chunk"]
    assert [(o, e.name) for o, e in chunk.fixes] == [(3, mtf.NAME)]

    # float64 (tolerance guide), as make_training_fixtures does
    te64 = copy.deepcopy(te).double()
    te64.set_attn_implementation("sdpa")
    unet64 = copy.deepcopy(unet).double()
    direction = mtf.randn(4701, (mtf.VECTORS, mtf.WIDTH), torch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        g64 = {}
        for key, ww in (("weighted", w), ("unweighted", None)):
            g64[key] = alpha_run(unet64, te64, tok, comma, sched, vec0, x0, noise, ww, dtype=torch.float64, direction=direction)
    finally:
        torch.set_default_dtype(torch.float32)
    guide = {}
    for key, r in (("weighted", rw), ("unweighted", ru)):
        r64 = g64[key]
        dd = float((r64["grad"] * direction).sum())
        guide[key] = {"float64_loss": float(r64["loss"]),
                      "float64_loss_abs_diff": abs(float(r64["loss"]) - float(r["loss"])),
                      "float64_grad_max_abs_diff": float((r64["grad"] - r["grad"].double()).abs().max()),
                      "float64_fd_directional_rel_err": abs(r64["fd"] - dd) / abs(dd)}
        assert guide[key]["float64_fd_directional_rel_err"] < 1e-5, guide
        assert guide[key]["float64_grad_max_abs_diff"] < 1e-3 * float(r["grad"].double().norm()), guide
    print(f"  alpha: resized alpha min {wmin:.0f}, mean after shift {wmean}; loss weighted {float(rw['loss']):.9g} "
          f"unweighted {float(ru['loss']):.9g}; |grad| {float(rw['grad'].norm()):.6g} / {float(ru['grad'].norm()):.6g}; "
          f"f64 dgrad {guide['weighted']['float64_grad_max_abs_diff']:.2e}", flush=True)

    with open(ALPHA_PNG, "rb") as f:
        png_sha = fs.sha256_bytes(f.read())
    return {
        "a1111": {
            "weight_map": "dataset.py: alpha_channel = image.getchannel('A') of the picture as images.read gives it "
                          "(EXIF-transposed; a P/RGB picture with a bytes info['transparency'] converted to RGBA), before "
                          "any resize; "
                          "weight_img = alpha_channel.resize(latent_size) with latent_size = [h, w] of the latent sample "
                          "(PIL reads it as (width, height)), default filter = BICUBIC for mode L (8-bit result); npweight = "
                          "float32; weight = [npweight] * channels reshaped to [C, h, w]; weight -= weight.min(); weight /= "
                          "weight.mean() (over all C*h*w elements). No /255, no clipping. Constant alpha -> NaN (0/0). No 'A' "
                          "band (RGB, L, colour-key tRNS, a palette with one transparent index) -> torch.ones. Batches "
                          "stack the maps",
            "loss": "sd_hijack.weighted_forward(x, c, w) runs the ordinary forward with get_loss = weighted_loss: "
                    "mse_loss(target, pred, reduction='none') * w; LDM p_losses: loss_simple = that.mean([1, 2, 3]) per "
                    "item, loss = mean over items (logvar 0, l_simple_weight 1), + 0 * the same for loss_vlb; so loss = "
                    "mean_b mean_{c,y,x} w (eps - noise)^2, NOT divided by the sum of w; / gradient_step (1)",
            "latent": "the RGB (alpha dropped by convert('RGB')) through tiny-sd's VAE encoder: posterior mean * 0.18215 "
                      "(latent_sampling_method 'deterministic')",
        },
        "picture": {"path": fs.rel(ALPHA_PNG), "sha256": png_sha, "size": [SIZE, SIZE], "mode": "RGBA",
                    "rgb": rgba[..., :3].reshape(-1).tolist(), "alpha": rgba[..., 3].tolist()},
        "training_size": [SIZE, SIZE],
        "pixels": enc32(pixels),
        "latent": enc32(latent),
        "alpha_resized": alpha_resized.tolist(),
        "weight_min_subtracted": wmin,
        "weight_mean": wmean,
        "weight_map": enc32(weight[0]),
        "weight_shape": list(weight.shape),
        "nonsquare_quirk": {
            "picture": "the top 16 x 12 (width x height) of the picture: crop((0, 0, 16, 12))",
            "latent_shape": [4] + ns_latent_size,
            "pil_resize_to": ns_latent_size,
            "comment": "A1111 resizes the alpha to PIL size (6, 8) = 6 wide, 8 high (latent_size [h, w] read as (width, "
                       "height)), then RESHAPES the 8 x 6 array row-major to [6, 8]: the map is scrambled, not transposed",
            "alpha_resized_a1111": ns_resized.tolist(),
            "weight_map_a1111": enc32(ns_weight[0]),
            "alpha_resized_intended": np.array(intended).tolist(),
        },
        "embedding": {"name": mtf.NAME, "vectors": mtf.VECTORS, "width": mtf.WIDTH, "seed": mtf.VEC_SEED,
                      "scale": mtf.SCALE, "vec": enc32(vec0), "is": "training.json's gradient.embedding.vec"},
        "prompt": PROMPT,
        "ids": chunk.tokens,
        "fixes": [{"offset": o, "vectors": int(e.vectors)} for o, e in chunk.fixes],
        "timestep": TIMESTEP,
        "noise_seed": NOISE_SEED,
        "noise_init": "torch.randn((1, 4, 8, 8), generator=torch.Generator('cpu').manual_seed(noise_seed))",
        "noise": enc32(noise),
        "sqrt_alphas_cumprod": [f32_text(v) for v in rw["sa"].tolist()],
        "sqrt_one_minus_alphas_cumprod": [f32_text(v) for v in rw["sm"].tolist()],
        "noisy": enc32(rw["x_noisy"]),
        "conditioning": enc32(rw["cond"]),
        "eps": enc32(rw["eps"]),
        "weighted": outcome(rw),
        "unweighted": outcome(ru),
        "ones_weight_equals_unweighted": True,
        "tolerance_guide": guide,
    }


# --- main --------------------------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        tok = load_tokenizer(*build_tokenizer_files(VOCAB_GZ, d))
    assert tok("a photo of an astronaut riding a horse on mars", add_special_tokens=False)["input_ids"] == \
        [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496]
    comma = tok.get_vocab()[",</w>"]

    inspect = inspect_section(tok)
    loss_plot = loss_plot_section()
    alpha = alpha_section(tok, comma)
    import PIL
    doc = {
        "generator": GENERATOR,
        "rerun": ".venv-ref/bin/python Tests/Fixtures/generators/make_workbench_fixtures.py (see the script's docstring)",
        "versions": {"torch": torch.__version__, "diffusers": fs.version("diffusers"),
                     "transformers": fs.version("transformers"), "numpy": np.__version__, "pillow": PIL.__version__,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "a1111": "webui 1.10: textual_inversion.py create_embedding / write_loss / train_embedding, sd_hijack_clip.py, "
                 "sd_hijack_open_clip.py, sd_models_xl.py, textual_inversion/dataset.py, sd_hijack.py weighted_forward; "
                 "LDM ddpm.py p_losses",
        "inspect": inspect,
        "loss_plot": loss_plot,
        "alpha_loss": alpha,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    print(f"wrote {fs.rel(OUT)} ({size} bytes), {fs.rel(CSV_OUT)} ({loss_plot['csv_bytes']} bytes), {fs.rel(ALPHA_PNG)}")


if __name__ == "__main__":
    sys.exit(main())

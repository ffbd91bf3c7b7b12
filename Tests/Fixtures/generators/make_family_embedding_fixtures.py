#!/usr/bin/env python3
"""Makes textual-inversion embeddings for the tiny SD 2.x and SDXL models of make_family_fixtures.py
and Tests/DiffusionTests/Fixtures/family_embeddings.json: what AUTOMATIC1111 1.10 makes of them
(which files each model loads, the conditioning of prompts that use them, one SDXL txt2img run),
so that sdshell can test embeddings on these families. Everything float32 on the CPU, one thread.

Rerun (after make_family_fixtures.py, which it reads: the committed tiny-sd2 / tiny-sdxl forms and
families.json for a cross-check; needs k-diffusion, safetensors, ftfy; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_family_embedding_fixtures.py
About 10 s on 2 cores. From fixture_support.py: the slow CLIPTokenizer, A1111's attention parser,
EmbeddingDatabase / create_embedding_from_data (the loading), tokenize_line (the chunks),
emphasis_original, a1111_cfg_inputs, TorchHijack, PhiloxGenerator, decode_a1111. Restated here from
make_family_fixtures.py (generators may not import each other): the OpenCLIP text tower, the SDXL
size vector and the txt2img run (ImageRNG, CFGDenoiser, the sgm apply_model). Deterministic: the
same library versions write the same embedding files (seeded randn only) and, on the same CPU kind,
the same JSON (float32 results follow the CPU's kernels; see README.md).
Checks: the conditioning of families.json's plain "sdxl / Euler a" and "sd2 / Euler a" prompts and
that SDXL run's latents come out of this script's restatement bit for bit as families.json records
them (within 3e-5 where families.json was made on another CPU kind).

What it writes
--------------
Tests/Fixtures/family-embeddings/   (seeded randn * 0.3, float32: the token embeddings are 0.2 * randn)
  xlone.safetensors    SDXL embedding as kohya's SDXL trainer / A1111 write it: exactly the tensors
  xltwo.safetensors    "clip_l" [n, 8] and "clip_g" [n, 16] (the tiny SDXL's CLIP-L and bigG widths),
  xlthree.safetensors  n = 1, 2, 3; no metadata. One torch.Generator per file (seeds below), clip_l
                       drawn first, then clip_g.
  sdtwo.pt             A1111 format for the tiny SD 2.x (OpenCLIP width 8): torch.save of
                       textual_inversion.Embedding.save's dict {"string_to_token": {"*": 265},
                       "string_to_param": {"*": f32 [2, 8], requires_grad}, "name": "sdtwo",
                       "step": 250, "sd_checkpoint": sha256(tiny-sd2.ckpt)[:10] (A1111's
                       checkpoint.shorthash), "sd_checkpoint_name": "tiny-sd2"}
  oldstyle.safetensors kohya SD 1.x format: the one tensor "emb_params" f32 [1, 8]
  sdbin.bin            diffusers' textual-inversion format (what diffusers' textual_inversion.py /
                       save_textual_inversion and the sd-concepts-library write): torch.save of
                       {"<sdbin>": f32 [8]} (one 1-D vector, no grad). A1111 takes the dict's single
                       tensor (unsqueezed to [1, 8]) and names it by the FILE stem, "sdbin".
  sdpng.png            an A1111 embedding in a PNG as its trainer writes one
                       (modules/textual_inversion/image_embedding.py): an 8x8 RGB picture with a tEXt
                       chunk "sd-ti-embedding" = base64(json.dumps(data, cls=EmbeddingEncoder)) of
                       Embedding.save's dict (tensors as {"TORCHTENSOR": nested lists}; here
                       "string_to_param": {"*": f32 [3, 8]}, "name": "pngthree", "step": 500, the
                       tiny-sd2 checkpoint fields as sdtwo's); no data hidden in the pixels (the text
                       chunk wins in A1111 anyway). A1111 names it by the STORED name, "pngthree",
                       not the file stem; its EmbeddingDecoder reads the lists back as float64
                       (np.array), create_embedding_from_data casts them to float32 (exact).
                       The new files draw from their own seeded generators (EMB_SEEDS), so the
                       older files' values do not move.
Tests/DiffusionTests/Fixtures/family_embeddings.json   (layout at the end)

What A1111 1.10 does (and this script does the same)
----------------------------------------------------
Loading (modules/textual_inversion/textual_inversion.py, EmbeddingDatabase):
  expected_shape = get_expected_shape() = shared.sd_model.cond_stage_model
  .encode_embedding_init_text(",", 1).shape[1]. For SDXL cond_stage_model is sgm's
  GeneralConditioner and sd_models_xl.encode_embedding_init_text returns
  torch.cat([each text embedder's token-embedding rows of ","], dim=1): the SUM of the widths,
  768 + 1280 = 2048 for real SDXL, 8 + 16 = 24 here. load_from_file gives a {"clip_g", "clip_l"}
  dict shape = clip_g.shape[-1] + clip_l.shape[-1] (24) and vectors = clip_g.shape[0]; any other
  format shape = vec.shape[-1]. Then
      if self.expected_shape == -1 or self.expected_shape == embedding.shape: register_embedding
      else: self.skipped_embeddings[name] = embedding
  So on SDXL an 8-wide single tensor (oldstyle, or any SD 1.x embedding: 768 != 2048) is SKIPPED
  (listed as skipped, never matched); A1111 never applies a single tensor to CLIP-L only, even when
  its width equals CLIP-L's (real SD 1.x 768 == SDXL CLIP-L 768; here 8 == 8). On the tiny SD 2.x
  (expected 8, FrozenOpenCLIPEmbedderWithCustomWords' rows) oldstyle LOADS because the tiny widths
  coincide (real SD 1.x 768 != SD 2.x 1024 would be skipped) and the xl* files are skipped (24 != 8).
  Names: the file stem (a PNG: the "name" stored in it, also its key in skipped_embeddings),
  tokenized with cond_stage_model.tokenize (SDXL: GeneralConditioner.tokenize = the FIRST embedder
  with a tokenize, CLIP-L's transformers tokenizer): xlone = x|lone</w> [87,
  13576], xltwo = xl|two</w> [36529, 1237], xlthree = xl|three</w> [36529, 2097], sdtwo = sd|two</w>,
  sdbin = sd|bin</w> [3080, 5346], pngthree = p|ng|three</w> [79, 10352, 2097]. On SDXL sdbin and
  pngthree are skipped by width (8 != 24) like sdtwo; on the tiny SD 2.x they load.
Hijack (sd_hijack.StableDiffusionModelHijack.hijack, SDXL branch): embedder 0 (FrozenCLIPEmbedder)
  gets token_embedding = EmbeddingsWithFixes(..., self) (textual_inversion_key default 'clip_l') and
  the wrapper FrozenCLIPEmbedderForSDXLWithCustomWords; embedder 1 (FrozenOpenCLIPEmbedder2)
  gets model.token_embedding = EmbeddingsWithFixes(..., self, textual_inversion_key='clip_g') and
  FrozenOpenCLIPEmbedder2WithCustomWords. SD 2.x: FrozenOpenCLIPEmbedder's model.token_embedding,
  key 'clip_l' (unused: the vec is a tensor).
Chunks (sd_hijack_clip.tokenize_line, run by EACH wrapper with its own tokenizer and the SHARED
  embedding database; these prompts tokenize the same in open_clip's tokenizer, so one
  fixture_support.tokenize_line serves both): a match of emb_len = embedding.vectors tokens:
      if len(chunk.tokens) + emb_len > self.chunk_length: next_chunk()
      chunk.fixes.append(PromptChunkFix(len(chunk.tokens), embedding))
      chunk.tokens += [0] * emb_len; chunk.multipliers += [weight] * emb_len
  i.e. PLACEHOLDER ID 0 (the byte token "!") at every embedding position, for both encoders; an
  embedding never splits across chunks: if it does not fit in the 75 slots left it moves WHOLE to
  the next chunk and the current one is padded with 49407 (multiplier 1) -- "embedding moved to the
  second chunk" has 73 plain tokens, so xlthree (3) would need slots 73..75: chunk 0 ends with
  2 x 49407 padding + the closing 49407, chunk 1 holds the fix at offset 0. The fix offset counts
  from the first token after BOS (the vectors go to rows offset + 1 ...).
Encoding (process_tokens per chunk, a batch of one): CLIP-L ids as tokenized (id_pad = id_end 49407);
  bigG: every position after the chunk's FIRST 49407 becomes 0 (id_pad) -- placeholders come before
  it, so they stay 0 and the pad rule never touches them. hijack.fixes = [chunk.fixes]; each
  encoder's EmbeddingsWithFixes computes rows = token_embedding(ids) (row 0 = "!" at the
  placeholders), then for each (offset, embedding): vec = embedding.vec[textual_inversion_key] if
  it is a dict else embedding.vec; emb_len = min(77 - offset - 1, vec.shape[0]); rows =
  cat([rows[:offset + 1], vec[:emb_len], rows[offset + 1 + emb_len:]]) -- before the position
  embeddings. CLIP-L: z = hidden_states[-2] (no final norm); bigG: z = the input of the last block
  (no ln_final), pooled = ln_final(last block output)[tokens.argmax(-1)] @ text_projection.
  tokens.argmax(-1) on the padded bigG ids [49406, ids / 0 placeholders, 49407, 0, 0, ...] is the
  FIRST 49407 (the largest id; the placeholders 0 never win), so the pooled row is the end token,
  which attends (causally) to the embedding rows: embeddings change the pooled vector too.
  Emphasis ("Original") per encoder and chunk AFTER the encoder, so it scales the embedding rows'
  outputs like any token's and never touches pooled (taken before emphasis). forward returns
  (hstack(zs), zs[0].pooled): pooled from the FIRST chunk only (also for "embedding moved to the
  second chunk", whose embedding sits in chunk 1: its pooled ignores the embedding).
  crossattn = cat([clip_l z, bigG z], dim 2); vector = cat(pooled, size embeddings) as in
  make_family_fixtures.py.

The run "sdxl / Euler a / embeddings": families.json's conventions exactly (seeds 2718281828 and
2718281829, batch 2, 6 steps, cfg 7, Philox "NV" ImageRNG, 16x16, Euler a with eta 1, the automatic
(uniform) schedule, CFGDenoiser with cond and uncond in one call, A1111's 8-bit decode); prompt
"a photo of xlone", negative "xltwo, blurry".

family_embeddings.json layout
-----------------------------
Tensors {"shape", "data"} with each float32 written as the shortest decimal that reads back as
exactly that float32 (as families.json).
{"generator", "versions" (+ "cpu_capability"), "a1111": {notes},
 "embeddings_dir": "Tests/Fixtures/family-embeddings", "placeholder_token": 0, "comma_token": 267,
 "models": {"sdxl" | "sd2": {"paths", "encoder_widths" ({"clip_l": 8, "clip_g": 16} | {"open_clip": 8}),
     "expected_width" (A1111's expected_shape: 24 | 8), "loaded" [names, A1111's order],
     "skipped" [names]}},
 "files": [{"file", "bytes", "sha256", "format", "tensors" {key: {"shape", "dtype"}},
     "vec" ({"clip_l", "clip_g"} tensors | one tensor [n, 8]), "name_ids",
     "on" {"sdxl" | "sd2": {"outcome" ("loaded" | "skipped_width"), "reason", "name", "vectors",
         "width" (A1111's shape), "step", "sd_checkpoint", "sd_checkpoint_name", "shorthash"}}}],
 "oldstyle_on_sdxl": "skipped", "oldstyle_on_sdxl_source" (the A1111 lines that decide),
 "oldstyle_on_sd2": "loaded",
 "conditionings": [{"name", "model" ("sdxl" | "sd2"), "prompt", "is_negative_prompt", "parsed"
     [[text, weight]], "token_count", "chunk_ids" {"clip_l", "clip_g" | "open_clip": [[77 ids] per
     chunk, as fed to that encoder]}, "multipliers" [[77] per chunk], "fixes" [[{"offset", "name",
     "vectors"}] per chunk], "embedding_rows" [[row indices in the chunk that get vectors] per chunk],
     "context" [1, 77 * chunks, 24 | 8] (after emphasis), SDXL also "pooled_token_index" [per chunk:
     argmax of the bigG ids], "pooled" [1, 16] (first chunk), "pooled_each_chunk" (more than one
     chunk), "vector" [1, 64]; "by_hand_max_abs_diff" (the transformers models of the diffusers
     folders fed the same rows by hand: a check of the insertion, about 1e-6)}],
 "runs": [families.json's run record: {"name", "model", "settings", "chunk_ids", "conditioning"
     {"cond", "uncond": {..., "fixes"; "transformers_max_abs_diff" = by_hand_max_abs_diff}},
     "cond_context", "uncond_context", "cond_pooled", "cond_vector", "uncond_pooled", "uncond_vector",
     "initial_noise", "sigmas", "denoiser_calls", "model_call_batches", "rng_next_calls", "latents",
     "image_shape", "image_uint8_base64", "sdpa_latents_max_abs_diff"}]}
"""

import base64
import hashlib
import inspect
import io
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_support as fs  # noqa: E402
from fixture_support import ROOT, PhiloxGenerator, _check_nv  # noqa: E402

import diffusers  # noqa: E402
import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import transformers  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402
from PIL import Image, PngImagePlugin  # noqa: E402
from transformers import CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402
from transformers.modeling_attn_mask_utils import _create_4d_causal_attention_mask  # noqa: E402

transformers.logging.set_verbosity_error()
K = fs.import_k_diffusion()      # after diffusers / transformers: it stubs torchvision
KS = K.sampling
REAL_TORCH = torch

GENERATOR = "Tests/Fixtures/generators/make_family_embedding_fixtures.py"
EMB_DIR = os.path.join(ROOT, "Tests", "Fixtures", "family-embeddings")
OUT = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "family_embeddings.json")
FAMILIES = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "families.json")
MAX_JSON_BYTES = 400_000
PATHS = {
    "sd2": {"diffusers": "Tests/Fixtures/tiny-sd2", "ckpt": "Tests/Fixtures/tiny-sd2.ckpt"},
    "sdxl": {"diffusers": "Tests/Fixtures/tiny-sdxl", "safetensors": "Tests/Fixtures/tiny-sdxl.safetensors"},
}
VOCAB, POSITIONS = 49408, 77
ID_START, ID_END = 49406, 49407
PLACEHOLDER = fs.PLACEHOLDER
COMMA = 267
WIDTHS = {"sdxl": {"clip_l": 8, "clip_g": 16}, "sd2": {"open_clip": 8}}
SDXL_POOLED, SDXL_TIME_DIM = 16, 8
SCALING_SDXL = 0.13025

EMB_SCALE = 0.3
EMB_SEEDS = {"xlone": 3101, "xltwo": 3102, "xlthree": 3103, "sdtwo": 3104, "oldstyle": 3105,
             "sdbin": 3106, "sdpng": 3107}     # one torch.Generator per file: new files never shift the others
SDXL_EMBEDDINGS = {"xlone": 1, "xltwo": 2, "xlthree": 3}
SDTWO_STEP = 250
PNG_NAME, PNG_VECTORS, PNG_STEP, PNG_SIZE = "pngthree", 3, 500, 8   # sdpng.png stores the name "pngthree"

FILLER = "a big old house with green door and small window near the river under blue sky".split()
BORDER_PROMPT = " ".join((FILLER * 5)[:73]) + " xlthree on a table"
SDXL_PROMPTS = [   # (name, prompt, is_negative)
    ("one embedding", "a photo of xlone", False),
    ("two embeddings", "xltwo and xlthree on a table", False),
    ("three embeddings with emphasis", "xlone, (xltwo:1.2), [xlthree]", False),
    ("embedding moved to the second chunk", BORDER_PROMPT, False),
    ("negative prompt", "xltwo, blurry", True),
]
SD2_BORDER_PROMPT = " ".join((FILLER * 5)[:73]) + f" {PNG_NAME} on a table"
SD2_PROMPTS = [("sd2: one embedding", "a sdtwo circle", False),
               ("sd2: the same embedding twice", "sdtwo, sdtwo", False),
               ("sd2: two embeddings", "sdtwo and sdbin on a table", False),
               ("sd2: three embeddings with emphasis", f"sdtwo, (sdbin:1.2), [{PNG_NAME}]", False),
               ("sd2: embedding moved to the second chunk", SD2_BORDER_PROMPT, False),
               ("sd2: negative prompt", "sdbin, blurry", True)]

SEED = 2718281828
STEPS, CFG, BATCH = 6, 7.0, 2
WIDTH = HEIGHT = 16
LATENT = (4, 8, 8)
RNG = "nv"
ETA = 1.0
RUN = {"name": "sdxl / Euler a / embeddings", "model": "sdxl", "sampler": "Euler a",
       "function": "sample_euler_ancestral", "schedule": "automatic",
       "prompt": "a photo of xlone", "negative_prompt": "xltwo, blurry", "clip_skip": 1}
# families.json's plain prompts, for the cross-check of this script's restatement
FAMILIES_PROMPT = "a red circle on a blue background"
FAMILIES_NEGATIVE = "blurry, low quality, text"


def load_openclip(sd, prefix, width, layers):
    oc = fs.OpenCLIPText(width=width, heads=1, layers=layers, proj=width)
    oc.load_state_dict({k[len(prefix):]: v.float() for k, v in sd.items() if k.startswith(prefix)}, strict=True)
    return oc.eval()


# --- A1111 1.10 sd_hijack.EmbeddingsWithFixes (with textual_inversion_key) -------------------------

class Hijack:
    fixes = None


class EmbeddingsWithFixes(torch.nn.Module):
    """modules/sd_hijack.py (1.10): vec = embedding.vec[textual_inversion_key] if it is a dict (SDXL
    embeddings) else embedding.vec; its rows replace rows offset + 1 ... of the token embeddings."""

    def __init__(self, wrapped, embeddings, textual_inversion_key="clip_l"):
        super().__init__()
        self.wrapped = wrapped
        self.embeddings = embeddings
        self.textual_inversion_key = textual_inversion_key
        self.weight = self.wrapped.weight

    def forward(self, input_ids):
        batch_fixes = self.embeddings.fixes
        self.embeddings.fixes = None
        inputs_embeds = self.wrapped(input_ids)
        if batch_fixes is None or len(batch_fixes) == 0 or max([len(x) for x in batch_fixes]) == 0:
            return inputs_embeds
        vecs = []
        for fixes, tensor in zip(batch_fixes, inputs_embeds):
            for offset, embedding in fixes:
                vec = embedding.vec[self.textual_inversion_key] if isinstance(embedding.vec, dict) else embedding.vec
                emb_len = min(tensor.shape[0] - offset - 1, vec.shape[0])
                tensor = torch.cat([tensor[0:offset + 1], vec[0:emb_len], tensor[offset + 1 + emb_len:]]).to(
                    dtype=inputs_embeds.dtype)
            vecs.append(tensor)
        return torch.stack(vecs)


HIJACK = Hijack()


# --- the embedding files ---------------------------------------------------------------------------

def seeded(seed, *shapes):
    g = torch.Generator("cpu").manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float32) * EMB_SCALE for s in shapes]


def torch_save_bytes(obj, stem):
    """torch.save into memory (archive prefix = the stem, as torch.save(obj, "<stem>.pt")); twice, checked."""
    out = []
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, stem + ".pt")
        for _ in range(2):
            torch.save(obj, p)
            with open(p, "rb") as f:
                out.append(f.read())
    assert out[0] == out[1], "torch.save is not deterministic"
    return out[0]


def make_files():
    """{file name: (bytes, format)}."""
    files = {}
    for name, n in SDXL_EMBEDDINGS.items():
        clip_l, clip_g = seeded(EMB_SEEDS[name], (n, WIDTHS["sdxl"]["clip_l"]), (n, WIDTHS["sdxl"]["clip_g"]))
        files[f"{name}.safetensors"] = (safetensors.torch.save({"clip_l": clip_l, "clip_g": clip_g}),
                                        "sdxl (clip_l + clip_g)")
    (vec,) = seeded(EMB_SEEDS["sdtwo"], (2, WIDTHS["sd2"]["open_clip"]))
    vec.requires_grad_(True)          # as A1111's trainer saves it
    ckpt = os.path.join(ROOT, PATHS["sd2"]["ckpt"])
    files["sdtwo.pt"] = (torch_save_bytes({
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vec},
        "name": "sdtwo",
        "step": SDTWO_STEP,
        "sd_checkpoint": fs.sha256_file(ckpt)[:10],
        "sd_checkpoint_name": "tiny-sd2",
    }, "sdtwo"), "a1111")
    (old,) = seeded(EMB_SEEDS["oldstyle"], (1, 8))
    files["oldstyle.safetensors"] = (safetensors.torch.save({"emb_params": old}), "kohya sd1 (emb_params)")
    # diffusers' textual-inversion .bin: {placeholder token: one 1-D vector}, no grad
    (binvec,) = seeded(EMB_SEEDS["sdbin"], (WIDTHS["sd2"]["open_clip"],))
    files["sdbin.bin"] = (torch_save_bytes({"<sdbin>": binvec}, "sdbin"), "diffusers (one tensor)")
    # A1111's PNG: Embedding.save's dict in the sd-ti-embedding text chunk, stored name != file stem
    (pngvec,) = seeded(EMB_SEEDS["sdpng"], (PNG_VECTORS, WIDTHS["sd2"]["open_clip"]))
    pngvec.requires_grad_(True)       # as torch.load of A1111's saved .pt gives it to embedding_to_b64
    files["sdpng.png"] = (png_embedding_bytes({
        "string_to_token": {"*": 265},
        "string_to_param": {"*": pngvec},
        "name": PNG_NAME,
        "step": PNG_STEP,
        "sd_checkpoint": fs.sha256_file(ckpt)[:10],
        "sd_checkpoint_name": "tiny-sd2",
    }), "a1111 png (sd-ti-embedding text chunk)")
    return files


# --- A1111 1.10 modules/textual_inversion/image_embedding.py (the text-chunk half) ----------------

class EmbeddingEncoder(json.JSONEncoder):
    def default(self, obj):
        if isinstance(obj, torch.Tensor):
            return {"TORCHTENSOR": obj.cpu().detach().numpy().tolist()}
        return json.JSONEncoder.default(self, obj)


class EmbeddingDecoder(json.JSONDecoder):
    def __init__(self, *args, **kwargs):
        json.JSONDecoder.__init__(self, *args, object_hook=self.object_hook, **kwargs)

    def object_hook(self, d):
        if "TORCHTENSOR" in d:
            return torch.from_numpy(np.array(d["TORCHTENSOR"]))
        return d


def embedding_to_b64(data):
    d = json.dumps(data, cls=EmbeddingEncoder)
    return base64.b64encode(d.encode())


def embedding_from_b64(data):
    d = base64.b64decode(data)
    return json.loads(d, cls=EmbeddingDecoder)


def png_embedding_bytes(data):
    """textual_inversion.train_embedding's PNG: PngInfo.add_text("sd-ti-embedding", embedding_to_b64(data))
    (bytes: a tEXt chunk) on a small RGB picture, saved by PIL; twice, checked."""
    img = Image.new("RGB", (PNG_SIZE, PNG_SIZE))
    img.putdata([(32 * x, 32 * y, 160) for y in range(PNG_SIZE) for x in range(PNG_SIZE)])
    out = []
    for _ in range(2):
        info = PngImagePlugin.PngInfo()
        info.add_text("sd-ti-embedding", embedding_to_b64(data))
        buf = io.BytesIO()
        img.save(buf, "PNG", pnginfo=info)
        out.append(buf.getvalue())
    assert out[0] == out[1], "PNG writing is not deterministic"
    assert b"tEXtsd-ti-embedding\0" in out[0]
    return out[0]


def png_embedding_data(path):
    """load_from_file's image branch: the text chunk (this fixture's PNG has no pixel-hidden data)."""
    embed_image = Image.open(path)
    assert hasattr(embed_image, "text") and "sd-ti-embedding" in embed_image.text, path
    return embedding_from_b64(embed_image.text["sd-ti-embedding"])


class EmbeddingDatabase(fs.EmbeddingDatabase):
    """fixture_support's restatement with load_from_file's image branch (A1111 1.10): '.preview' images
    are not embeddings; the text chunk's data; name = data.get('name', name) -- the stored name, which
    also keys skipped_embeddings; then the same create_embedding_from_data and width test."""

    def load_from_file(self, path, filename, rel):
        name, ext = os.path.splitext(filename)
        if ext.upper() not in [".PNG", ".WEBP", ".JXL", ".AVIF"]:
            return super().load_from_file(path, filename, rel)
        _, second_ext = os.path.splitext(name)
        assert second_ext.upper() != ".PREVIEW", "no preview images in these fixtures"
        data = png_embedding_data(path)
        name = data.get("name", name)
        embedding = fs.create_embedding_from_data(data, name, filename=filename, filepath=path)
        rec = {"name": embedding.name, "vectors": int(embedding.vectors), "width": int(embedding.shape),
               "step": embedding.step, "sd_checkpoint": embedding.sd_checkpoint,
               "sd_checkpoint_name": embedding.sd_checkpoint_name, "shorthash": embedding.shorthash,
               "key_in_file": "string_to_param/" + next(iter(data["string_to_param"])),
               "dtype_in_file": str(next(iter(data["string_to_param"].values())).dtype).replace("torch.", "")}
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


def write_files(files):
    os.makedirs(EMB_DIR, exist_ok=True)
    for fn, (b, _) in files.items():
        p = os.path.join(EMB_DIR, fn)
        with open(p + ".tmp", "wb") as f:
            f.write(b)
        os.chmod(p + ".tmp", 0o644)
        os.replace(p + ".tmp", p)
    extra = sorted(set(os.listdir(EMB_DIR)) - set(files))
    assert not extra, f"unexpected files in {EMB_DIR}: {extra}"


def tensors_of(path):
    if path.endswith(".pt"):
        data = torch.load(path, map_location="cpu", weights_only=True)
        return {"string_to_param/*": data["string_to_param"]["*"]}
    if path.endswith(".bin"):
        return dict(torch.load(path, map_location="cpu", weights_only=True))
    if path.endswith(".png"):
        return {"string_to_param/*": png_embedding_data(path)["string_to_param"]["*"]}   # float64, as A1111 decodes it
    return safetensors.torch.load_file(path)


# --- the models ----------------------------------------------------------------------------------

def load_models():
    """The committed forms as make_family_fixtures.py's runs load them: SDXL's UNet / VAE / CLIP-L /
    text_encoder_2 from the folder and the bigG OpenCLIP from the single file; SD 2.x's OpenCLIP from
    the .ckpt and its transformers text encoder from the folder (the by-hand check)."""
    sdxl_dir = os.path.join(ROOT, PATHS["sdxl"]["diffusers"])
    sd = safetensors.torch.load_file(os.path.join(ROOT, PATHS["sdxl"]["safetensors"]))
    unet = UNet2DConditionModel.from_pretrained(sdxl_dir, subfolder="unet", torch_dtype=torch.float32,
                                                local_files_only=True).eval()
    vae = AutoencoderKL.from_pretrained(sdxl_dir, subfolder="vae", torch_dtype=torch.float32,
                                        local_files_only=True).eval()
    clip_l = CLIPTextModel.from_pretrained(sdxl_dir, subfolder="text_encoder", dtype=torch.float32,
                                           attn_implementation="eager", local_files_only=True).eval()
    te2 = CLIPTextModelWithProjection.from_pretrained(sdxl_dir, subfolder="text_encoder_2", dtype=torch.float32,
                                                      attn_implementation="eager", local_files_only=True).eval()
    og = load_openclip(sd, "conditioner.embedders.1.model.", WIDTHS["sdxl"]["clip_g"], 3)
    assert vae.config.scaling_factor == SCALING_SDXL
    unet.set_attn_processor(AttnProcessor())
    vae.set_attn_processor(AttnProcessor())
    ckpt = torch.load(os.path.join(ROOT, PATHS["sd2"]["ckpt"]), map_location="cpu", weights_only=True)["state_dict"]
    oc = load_openclip(ckpt, "cond_stage_model.model.", WIDTHS["sd2"]["open_clip"], 3)
    te = CLIPTextModel.from_pretrained(os.path.join(ROOT, PATHS["sd2"]["diffusers"]), subfolder="text_encoder",
                                       dtype=torch.float32, attn_implementation="eager", local_files_only=True).eval()
    # A1111's hijack: EmbeddingsWithFixes around each token embedding (key clip_l / clip_g)
    emb = clip_l.text_model.embeddings
    emb.token_embedding = EmbeddingsWithFixes(emb.token_embedding, HIJACK)
    og.token_embedding = EmbeddingsWithFixes(og.token_embedding, HIJACK, textual_inversion_key="clip_g")
    oc.token_embedding = EmbeddingsWithFixes(oc.token_embedding, HIJACK)
    for mod in (unet, vae, clip_l, te2, og, oc, te):
        assert all(p.dtype == torch.float32 for p in mod.parameters())
    return {"sdxl": {"unet": unet, "vae": vae, "clip_l": clip_l, "text_encoder_2": te2, "open_clip": og},
            "sd2": {"open_clip": oc, "text_encoder": te}}


def expected_width(models, family):
    """EmbeddingDatabase.get_expected_shape: cond_stage_model.encode_embedding_init_text(",", 1).shape[1]
    (SDXL: sd_models_xl's torch.cat of every text embedder's rows, dim=1)."""
    ids = torch.asarray([[COMMA]])
    with torch.no_grad():
        if family == "sdxl":
            m = models["sdxl"]
            rows = [m["clip_l"].text_model.embeddings.token_embedding.wrapped(ids).squeeze(0),
                    m["open_clip"].token_embedding.wrapped(ids).squeeze(0)]
            return torch.cat(rows, dim=1).shape[1]
        return models["sd2"]["open_clip"].token_embedding.wrapped(ids).squeeze(0).shape[1]


# --- conditioning (A1111 1.10) -------------------------------------------------------------------

def rows_by_hand(weight, ids, fixes, key):
    """The same substitution written out: token rows, the vectors at offset + 1 ..."""
    rows = weight[torch.asarray(ids)].clone()
    for offset, embedding in fixes:
        vec = embedding.vec[key] if isinstance(embedding.vec, dict) else embedding.vec
        n = min(POSITIONS - offset - 1, vec.shape[0])
        rows[offset + 1:offset + 1 + n] = vec[:n]
    return rows[None]


def transformers_by_hand(te, rows):
    tm = te.text_model
    h = tm.embeddings(inputs_embeds=rows)
    mask = _create_4d_causal_attention_mask(rows.shape[:2], h.dtype, device=h.device)
    return tm.encoder(inputs_embeds=h, causal_attention_mask=mask, output_hidden_states=True)


def sdxl_size_vector():
    """GeneralConditioner's size embedders (ConcatTimestepEmbedderND(8)) for original = target =
    (16, 16), crop (0, 0): [1, 48]; and diffusers' time_ids [1, 6]."""
    cols = [[HEIGHT, WIDTH], [0, 0], [HEIGHT, WIDTH]]
    vec = torch.cat([fs.sgm_timestep_embedding(torch.tensor(c, dtype=torch.float32), SDXL_TIME_DIM).reshape(1, -1)
                     for c in cols], dim=1)
    return vec, torch.tensor([[HEIGHT, WIDTH, 0, 0, HEIGHT, WIDTH]], dtype=torch.float32)


class Conditioner:
    def __init__(self, family, tok, db, models):
        self.family, self.tok, self.db, self.m = family, tok, db, models[family]

    def get(self, text, is_negative):
        matches, backtracks = [], []
        parsed, chunks, count = fs.tokenize_line(text, self.tok, self.db, COMMA, matches=matches,
                                                 backtracks=backtracks)
        rec = {"prompt": text, "is_negative_prompt": bool(is_negative), "parsed": [[t, float(w)] for t, w in parsed],
               "token_count": count,
               "comma_backtracks": [{"chunk": b["chunk"], "break_location": b["break_location"], "moved": b["moved"]}
                                    for b in backtracks],
               "multipliers": [list(map(float, ch.multipliers)) for ch in chunks],
               "fixes": [[{"offset": o, "name": e.name, "vectors": int(e.vectors)} for o, e in ch.fixes]
                         for ch in chunks],
               "embedding_rows": [[o + 1 + i for o, e in ch.fixes for i in range(int(e.vectors))] for ch in chunks],
               "chunks": chunks, "matches": matches}
        assert not (is_negative and text == ""), "an empty SDXL negative is force-zeroed (not used here)"
        with torch.no_grad():
            rec.update(self.encode_sdxl(chunks) if self.family == "sdxl" else self.encode_sd2(chunks))
        return rec

    def encode_sd2(self, chunks):
        oc, te = self.m["open_clip"], self.m["text_encoder"]
        zs, ids, diff = [], [], 0.0
        for ch in chunks:
            t = fs.a1111_pad(ch.tokens, 0)
            ids.append(t)
            HIJACK.fixes = [list(ch.fixes)]
            z = oc.encode_sd2(torch.asarray([t]))
            assert HIJACK.fixes is None
            out = transformers_by_hand(te, rows_by_hand(te.text_model.embeddings.token_embedding.weight, t,
                                                        ch.fixes, "clip_l"))
            diff = max(diff, (te.text_model.final_layer_norm(out.last_hidden_state) - z).abs().max().item())
            zs.append(fs.emphasis_original(z, torch.asarray([ch.multipliers])))
        return {"chunk_ids": {"open_clip": ids}, "context": torch.hstack(zs),
                "by_hand_max_abs_diff": {"open_clip": diff}}

    def encode_sdxl(self, chunks):
        clip_l, og, te2 = self.m["clip_l"], self.m["open_clip"], self.m["text_encoder_2"]
        zl, zg, ids_l, ids_g, pooled_each, index_each = [], [], [], [], [], []
        diff = {"clip_l": 0.0, "clip_g_penultimate": 0.0, "clip_g_pooled": 0.0}
        for ch in chunks:
            mult = torch.asarray([ch.multipliers])
            # CLIP-L: FrozenCLIPEmbedderForSDXLWithCustomWords, id_pad = id_end; hidden_states[-2]
            tl = fs.a1111_pad(ch.tokens, ID_END)
            ids_l.append(tl)
            HIJACK.fixes = [list(ch.fixes)]
            z_l = clip_l(input_ids=torch.asarray([tl]), output_hidden_states=True).hidden_states[-2]
            assert HIJACK.fixes is None
            hand = transformers_by_hand(clip_l, rows_by_hand(clip_l.text_model.embeddings.token_embedding.weight,
                                                             tl, ch.fixes, "clip_l"))
            diff["clip_l"] = max(diff["clip_l"], (hand.hidden_states[-2] - z_l).abs().max().item())
            zl.append(fs.emphasis_original(z_l, mult))
            # bigG: FrozenOpenCLIPEmbedder2WithCustomWords, 0 after the first id_end
            tg = fs.a1111_pad(ch.tokens, 0)
            ids_g.append(tg)
            HIJACK.fixes = [list(ch.fixes)]
            z_g, pooled, index = og.encode_sdxl(torch.asarray([tg]))
            assert HIJACK.fixes is None
            assert int(index[0]) == tg.index(ID_END), "argmax is not the first end token"
            hand = transformers_by_hand(te2, rows_by_hand(te2.text_model.embeddings.token_embedding.weight,
                                                          tg, ch.fixes, "clip_g"))
            diff["clip_g_penultimate"] = max(diff["clip_g_penultimate"],
                                             (hand.hidden_states[-2] - z_g).abs().max().item())
            last = te2.text_model.final_layer_norm(hand.last_hidden_state)
            hp = last[:, tg.index(ID_END)] @ te2.text_projection.weight.T
            diff["clip_g_pooled"] = max(diff["clip_g_pooled"], (hp - pooled).abs().max().item())
            zg.append(fs.emphasis_original(z_g, mult))
            pooled_each.append(pooled)
            index_each.append(int(index[0]))
        context = torch.cat([torch.hstack(zl), torch.hstack(zg)], dim=2)
        pooled = pooled_each[0]                          # forward(): zs[0].pooled
        sizes, _ = sdxl_size_vector()
        return {"chunk_ids": {"clip_l": ids_l, "clip_g": ids_g}, "context": context, "pooled": pooled,
                "pooled_each_chunk": pooled_each, "pooled_token_index": index_each,
                "vector": torch.cat([pooled, sizes], dim=1), "force_zero_embeddings": False,
                "by_hand_max_abs_diff": diff}


def without_fixes(cond, rec):
    """The same chunks encoded with their fixes dropped (placeholder rows = token 0): the embeddings must matter."""
    chunks = []
    for ch in rec["chunks"]:
        c = fs.PromptChunk()
        c.tokens, c.multipliers, c.fixes = list(ch.tokens), list(ch.multipliers), []
        chunks.append(c)
    with torch.no_grad():
        return cond.encode_sdxl(chunks) if cond.family == "sdxl" else cond.encode_sd2(chunks)


# --- the txt2img run (restated from make_family_fixtures.py) --------------------------------------

class SGMLike:
    """What CompVisDenoiser needs of A1111's SDXL model: alphas_cumprod and apply_model(x, t, cond) ->
    diffusion_model(x, t, context=crossattn, y=vector), through diffusers' added_cond_kwargs (checked:
    diffusers' time_ids embedding IS vector[:, 16:])."""

    def __init__(self, unet, alphas_cumprod, time_ids):
        self.unet, self.alphas_cumprod, self.time_ids = unet, alphas_cumprod, time_ids
        self.batches = []

    def apply_model(self, x, t, cond):
        self.batches.append(x.shape[0])
        y, b = cond["vector"], x.shape[0]
        time_ids = self.time_ids.repeat(b, 1)
        assert torch.equal(self.unet.add_time_proj(time_ids.flatten()).reshape(b, -1), y[:, SDXL_POOLED:])
        return self.unet(x, t, encoder_hidden_states=cond["crossattn"],
                         added_cond_kwargs={"text_embeds": y[:, :SDXL_POOLED], "time_ids": time_ids}).sample


class CFGDenoiser:
    """sd_samplers_cfg_denoiser.CFGDenoiser.forward (1.10), txt2img, one prompt per image, cond and uncond
    of the same token length (asserted): one model call on [cond rows; uncond rows]."""

    def __init__(self, model_wrap):
        self.model_wrap = model_wrap
        self.calls = 0

    def __call__(self, x, sigma, uncond, cond, cond_scale, s_min_uncond=0.0, image_cond=None):
        batch_size = x.shape[0]
        conds_list, x_in, sigma_in = fs.a1111_cfg_inputs(x, sigma)
        assert cond["crossattn"].shape[1] == uncond["crossattn"].shape[1]
        both = {k: torch.cat([cond[k], uncond[k]]) for k in cond}
        x_out = self.model_wrap(x_in, sigma_in, cond=both)
        denoised_uncond = x_out[-batch_size:]
        denoised = torch.clone(denoised_uncond)
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)
        self.calls += 1
        return denoised


def run_txt2img(model_wrap, inner, c, uc):
    seeds = [SEED + i for i in range(BATCH)]
    cond = {"crossattn": torch.cat([c["context"]] * BATCH), "vector": torch.cat([c["vector"]] * BATCH)}
    uncond = {"crossattn": torch.cat([uc["context"]] * BATCH), "vector": torch.cat([uc["vector"]] * BATCH)}
    rng = fs.NVImageRNG(seeds, LATENT)
    noise = rng.next()
    sigmas = model_wrap.get_sigmas(STEPS)                 # Euler a's "automatic" = uniform
    x = noise * sigmas[0]
    func = KS.sample_euler_ancestral
    assert "eta" in inspect.signature(func).parameters
    kwargs = {"eta": ETA}
    cfg = CFGDenoiser(model_wrap)
    inner.batches = []
    extra_args = {"cond": cond, "image_cond": None, "uncond": uncond, "cond_scale": CFG, "s_min_uncond": 0.0}
    KS.torch = fs.TorchHijack(rng.next)
    try:
        with torch.no_grad():
            latents = func(cfg, x, sigmas=sigmas, extra_args=extra_args, disable=True, **kwargs)
    finally:
        KS.torch = REAL_TORCH
    return {"seeds": seeds, "noise": noise, "sigmas": sigmas, "latents": latents, "kwargs": kwargs,
            "denoiser_calls": cfg.calls, "model_batches": list(inner.batches), "rng_next_calls": rng.next_calls}


# --- JSON ----------------------------------------------------------------------------------------

def dec32(d):
    return torch.tensor(np.asarray(d["data"], dtype=np.float32).reshape(d["shape"]))


def cond_record(name, family, rec):
    out = {"name": name, "model": family}
    for k in ("prompt", "is_negative_prompt", "parsed", "token_count"):
        out[k] = rec[k]
    out["chunk_ids"] = rec["chunk_ids"]
    for k in ("multipliers", "fixes", "embedding_rows"):
        out[k] = rec[k]
    out["context"] = fs.enc32(rec["context"])
    if family == "sdxl":
        out["pooled_token_index"] = rec["pooled_token_index"]
        out["pooled"] = fs.enc32(rec["pooled"])
        if len(rec["pooled_each_chunk"]) > 1:
            out["pooled_each_chunk"] = [fs.enc32(p) for p in rec["pooled_each_chunk"]]
        out["vector"] = fs.enc32(rec["vector"])
    out["by_hand_max_abs_diff"] = rec["by_hand_max_abs_diff"]
    return out


def side_record(rec):
    return {"prompt": rec["prompt"], "is_negative_prompt": rec["is_negative_prompt"],
            "token_count": rec["token_count"], "comma_backtracks": rec["comma_backtracks"],
            "multipliers": rec["multipliers"], "fixes": rec["fixes"],
            "force_zero_embeddings": rec["force_zero_embeddings"],
            "transformers_max_abs_diff": rec["by_hand_max_abs_diff"]}


# --- main ----------------------------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    _check_nv()
    files = make_files()
    write_files(files)

    models = load_models()
    with tempfile.TemporaryDirectory() as d:
        tok = fs.load_tokenizer(*fs.build_tokenizer_files(fs.VOCAB_GZ, d))
    assert tok.get_vocab()[",</w>"] == COMMA
    assert tok.convert_ids_to_tokens([PLACEHOLDER]) == ["!"]

    # ---- what A1111 loads on each model
    dbs, widths = {}, {}
    for family in ("sdxl", "sd2"):
        widths[family] = expected_width(models, family)
        dbs[family] = EmbeddingDatabase(tok, widths[family])
        dbs[family].load_from_dir(EMB_DIR)
    assert widths == {"sdxl": 24, "sd2": 8}, widths
    assert list(dbs["sdxl"].word_embeddings) == ["xlone", "xlthree", "xltwo"]
    assert sorted(dbs["sdxl"].skipped_embeddings) == ["oldstyle", PNG_NAME, "sdbin", "sdtwo"]
    assert list(dbs["sd2"].word_embeddings) == ["oldstyle", PNG_NAME, "sdbin", "sdtwo"]
    assert all(r["outcome"] in ("loaded", "skipped_width") for d in dbs.values() for r in d.report.values())
    assert dbs["sd2"].report["sdpng.png"]["name"] == PNG_NAME != "sdpng"          # the stored name
    assert dbs["sd2"].report["sdbin.bin"]["name"] == "sdbin"                      # the file stem, not "<sdbin>"
    assert dbs["sd2"].word_embeddings["sdbin"].vec.shape == (1, 8)
    assert sorted(dbs["sd2"].skipped_embeddings) == ["xlone", "xlthree", "xltwo"]
    oldstyle_on_sdxl = "skipped" if "oldstyle" in dbs["sdxl"].skipped_embeddings else "clip_l only"
    assert oldstyle_on_sdxl == "skipped"
    file_recs = []
    keep = ("outcome", "reason", "name", "vectors", "width", "step", "sd_checkpoint", "sd_checkpoint_name",
            "shorthash")
    for fn, (b, fmt) in files.items():
        path = os.path.join(EMB_DIR, fn)
        ts = tensors_of(path)
        if "clip_l" in ts:
            assert sorted(ts) == ["clip_g", "clip_l"] and all(t.dtype == torch.float32 for t in ts.values())
            vec = {"clip_l": fs.enc32(ts["clip_l"]), "clip_g": fs.enc32(ts["clip_g"])}
        else:
            (t,) = ts.values()
            t = t.detach().float()
            vec = fs.enc32(t.unsqueeze(0) if t.dim() == 1 else t)     # A1111's vec: a 1-D vector unsqueezed
            assert torch.equal(dec32(vec), dbs["sd2"].word_embeddings[dbs["sd2"].report[fn]["name"]].vec)
        name = dbs["sd2"].report[fn]["name"]          # A1111's name: the file stem, a PNG's stored name
        assert name == dbs["sdxl"].report[fn]["name"]
        file_recs.append({
            "file": fn, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest(), "format": fmt,
            "tensors": {k: {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
                        for k, t in ts.items()},
            "vec": vec, "name_ids": dbs["sdxl"].tokenize([name])[0],
            "on": {f: {k: dbs[f].report[fn][k] for k in keep} for f in ("sdxl", "sd2")},
        })

    # ---- the conditionings
    conds = {f: Conditioner(f, tok, dbs[f], models) for f in ("sdxl", "sd2")}
    cond_recs, by_name = [], {}
    for family, prompts in (("sdxl", SDXL_PROMPTS), ("sd2", SD2_PROMPTS)):
        for name, prompt, negative in prompts:
            rec = conds[family].get(prompt, negative)
            by_name[name] = rec
            cond_recs.append(cond_record(name, family, rec))
            bare = without_fixes(conds[family], rec)
            assert not torch.allclose(bare["context"], rec["context"]), name
            if family == "sdxl" and rec["fixes"][0]:
                assert not torch.allclose(bare["pooled"], rec["pooled"]), name
            for d in rec["by_hand_max_abs_diff"].values():
                assert d < 1e-5, (name, rec["by_hand_max_abs_diff"])
            print(f"{name:40s} chunks={len(rec['chunks'])} fixes={rec['fixes']} "
                  f"by_hand={max(rec['by_hand_max_abs_diff'].values()):.1e}", flush=True)
    # the claims
    a = by_name["one embedding"]
    assert a["chunk_ids"]["clip_l"][0][:7] == [ID_START, 320, 1125, 539, PLACEHOLDER, ID_END, ID_END]
    assert a["chunk_ids"]["clip_g"][0][:7] == [ID_START, 320, 1125, 539, PLACEHOLDER, ID_END, 0]
    assert a["fixes"] == [[{"offset": 3, "name": "xlone", "vectors": 1}]] and a["pooled_token_index"] == [5]
    c = by_name["three embeddings with emphasis"]
    assert [f["offset"] for f in c["fixes"][0]] == [0, 2, 5]
    assert c["multipliers"][0][1:9] == [1.0, 1.0, 1.2, 1.2, 1.0, 1 / 1.1, 1 / 1.1, 1 / 1.1]
    d = by_name["embedding moved to the second chunk"]
    assert len(d["chunks"]) == 2 and d["context"].shape == (1, 154, 24)
    assert d["chunk_ids"]["clip_l"][0][74:] == [ID_END] * 3 and PLACEHOLDER not in d["chunk_ids"]["clip_l"][0]
    assert d["chunk_ids"]["clip_g"][0][74:] == [ID_END, 0, 0]
    assert d["fixes"] == [[], [{"offset": 0, "name": "xlthree", "vectors": 3}]]
    assert d["chunk_ids"]["clip_l"][1][:4] == [ID_START] + [PLACEHOLDER] * 3
    assert d["token_count"] == 75 + 6 and not d["comma_backtracks"]
    assert torch.equal(d["pooled"], d["pooled_each_chunk"][0])
    s = by_name["sd2: the same embedding twice"]
    assert s["fixes"] == [[{"offset": 0, "name": "sdtwo", "vectors": 2}, {"offset": 3, "name": "sdtwo", "vectors": 2}]]
    s = by_name["sd2: two embeddings"]
    assert s["fixes"] == [[{"offset": 0, "name": "sdtwo", "vectors": 2}, {"offset": 3, "name": "sdbin", "vectors": 1}]]
    assert s["chunk_ids"]["open_clip"][0][:9] == [ID_START, PLACEHOLDER, PLACEHOLDER, 537, PLACEHOLDER, 525, 320,
                                                  2175, ID_END]
    s = by_name["sd2: three embeddings with emphasis"]
    assert s["fixes"] == [[{"offset": 0, "name": "sdtwo", "vectors": 2}, {"offset": 3, "name": "sdbin", "vectors": 1},
                           {"offset": 5, "name": PNG_NAME, "vectors": PNG_VECTORS}]]
    assert s["multipliers"][0][1:9] == [1.0, 1.0, 1.0, 1.2, 1.0, 1 / 1.1, 1 / 1.1, 1 / 1.1]
    assert s["embedding_rows"] == [[1, 2, 4, 6, 7, 8]]
    s = by_name["sd2: embedding moved to the second chunk"]
    assert len(s["chunks"]) == 2 and s["context"].shape == (1, 154, 8)
    assert s["chunk_ids"]["open_clip"][0][74:] == [ID_END, 0, 0] and PLACEHOLDER not in s["chunks"][0].tokens
    assert s["chunks"][0].tokens[74:] == [ID_END] * 3
    assert s["fixes"] == [[], [{"offset": 0, "name": PNG_NAME, "vectors": PNG_VECTORS}]]
    assert s["chunk_ids"]["open_clip"][1][:4] == [ID_START] + [PLACEHOLDER] * 3
    assert s["token_count"] == 75 + 6 and not s["comma_backtracks"]
    s = by_name["sd2: negative prompt"]
    assert s["is_negative_prompt"] and s["fixes"] == [[{"offset": 0, "name": "sdbin", "vectors": 1}]]

    # ---- cross-check with families.json (the restatement of its conditioning and run)
    with open(FAMILIES) as f:
        fam = json.load(f)
    same_cpu = fam["versions"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    fam_runs = {r["name"]: r for r in fam["runs"]}

    def check(got, want, what):
        want = dec32(want)
        diff = (got - want).abs().max().item()
        ok = torch.equal(got, want) if same_cpu else diff <= 3e-5 * max(1.0, want.abs().max().item())
        assert ok, (what, diff)
        return diff

    m = models["sdxl"]
    ac = fs.make_alphas_cumprod()
    sizes, time_ids = sdxl_size_vector()
    assert torch.equal(m["unet"].add_time_proj(time_ids.flatten()).reshape(1, -1), sizes)
    inner = SGMLike(m["unet"], ac, time_ids)
    model_wrap = K.external.CompVisDenoiser(inner, quantize=False)
    fc, fu = conds["sdxl"].get(FAMILIES_PROMPT, False), conds["sdxl"].get(FAMILIES_NEGATIVE, True)
    fr = fam_runs["sdxl / Euler a"]
    check(fc["context"], fr["cond_context"], "sdxl cond_context")
    check(fu["context"], fr["uncond_context"], "sdxl uncond_context")
    check(fc["pooled"], fr["cond_pooled"], "sdxl cond_pooled")
    cross = check(run_txt2img(model_wrap, inner, fc, fu)["latents"], fr["latents"], "sdxl / Euler a latents")
    check(conds["sd2"].get(FAMILIES_PROMPT, False)["context"], fam_runs["sd2 / Euler a"]["cond_context"],
          "sd2 cond_context")
    print(f"families.json cross-check: {'bit for bit' if same_cpu else f'max abs diff {cross:.1e}'}")

    # ---- the run
    c, uc = by_name["one embedding"], by_name["negative prompt"]
    assert (c["prompt"], uc["prompt"]) == (RUN["prompt"], RUN["negative_prompt"])
    r = run_txt2img(model_wrap, inner, c, uc)
    r2 = run_txt2img(model_wrap, inner, c, uc)
    assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
    m["unet"].set_attn_processor(AttnProcessor2_0())
    r_sdpa = run_txt2img(model_wrap, inner, c, uc)
    m["unet"].set_attn_processor(AttnProcessor())
    assert torch.isfinite(r["latents"]).all()
    # the embedding reaches the image: the same run with the fixes dropped differs
    bare = run_txt2img(model_wrap, inner, without_fixes(conds["sdxl"], c), uc)
    assert not torch.allclose(r["latents"], bare["latents"])
    _, img, _ = fs.decode_a1111(m["vae"], r["latents"], SCALING_SDXL, "mul")
    run = {
        "name": RUN["name"], "model": RUN["model"],
        "settings": {"prompt": RUN["prompt"], "negative_prompt": RUN["negative_prompt"], "seeds": r["seeds"],
                     "subseeds": None, "subseed": None, "subseed_strength": 0.0, "sampler": RUN["sampler"],
                     "function": RUN["function"], "schedule": RUN["schedule"], "steps": STEPS, "cfg_scale": CFG,
                     "rng": RNG, "clip_skip": RUN["clip_skip"], "width": WIDTH, "height": HEIGHT,
                     "batch_size": BATCH, "sampler_kwargs": dict(r["kwargs"]),
                     "discard_next_to_last_sigma": False, "a1111_default_schedule": True},
        "chunk_ids": {e: {"cond": c["chunk_ids"][e], "uncond": uc["chunk_ids"][e]} for e in c["chunk_ids"]},
        "conditioning": {"cond": side_record(c), "uncond": side_record(uc)},
        "cond_context": fs.enc32(c["context"]), "uncond_context": fs.enc32(uc["context"]),
        "cond_pooled": fs.enc32(c["pooled"]), "cond_vector": fs.enc32(c["vector"]),
        "uncond_pooled": fs.enc32(uc["pooled"]), "uncond_vector": fs.enc32(uc["vector"]),
        **fs.family_run_outcome(r, img, r_sdpa),
    }
    assert run["model_call_batches"] == [4]
    print(f"{RUN['name']:40s} |lat|max={r['latents'].abs().max().item():.4f} calls={r['denoiser_calls']} "
          f"sdpa_diff={run['sdpa_latents_max_abs_diff']:.1e}")

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                     "k_diffusion": fs.version("k-diffusion"), "numpy": np.__version__,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "a1111": A1111_NOTES,
        "embeddings_dir": fs.rel(EMB_DIR), "placeholder_token": PLACEHOLDER, "comma_token": COMMA,
        "models": {f: {"paths": PATHS[f], "encoder_widths": WIDTHS[f], "expected_width": widths[f],
                       "loaded": list(dbs[f].word_embeddings), "skipped": sorted(dbs[f].skipped_embeddings)}
                   for f in ("sdxl", "sd2")},
        "files": file_recs,
        "oldstyle_on_sdxl": oldstyle_on_sdxl,
        "oldstyle_on_sdxl_source": OLDSTYLE_SOURCE,
        "oldstyle_on_sd2": dbs["sd2"].report["oldstyle.safetensors"]["outcome"],
        "conditionings": cond_recs,
        "runs": [run],
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    assert len(text) < MAX_JSON_BYTES, len(text)
    with open(OUT + ".tmp", "w") as f:
        f.write(text + "\n")
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {fs.rel(OUT)} ({len(text) + 1} bytes): {len(cond_recs)} conditionings, 1 run")
    for fn, (b, _) in files.items():
        print(f"  {fs.rel(os.path.join(EMB_DIR, fn)):52s} {len(b):>6d} bytes")


OLDSTYLE_SOURCE = (
    "modules/textual_inversion/textual_inversion.py EmbeddingDatabase.load_from_file: "
    "'if self.expected_shape == -1 or self.expected_shape == embedding.shape: "
    "self.register_embedding(embedding, shared.sd_model) else: self.skipped_embeddings[name] = embedding', "
    "with expected_shape = get_expected_shape() = shared.sd_model.cond_stage_model.encode_embedding_init_text(',', 1)"
    ".shape[1], for SDXL sd_models_xl.encode_embedding_init_text = torch.cat([each embedder's rows], dim=1): "
    "8 + 16 = 24 here (768 + 1280 = 2048 for real SDXL); the single tensor's shape = vec.shape[-1] = 8")

A1111_NOTES = {
    "loading": "expected_shape = cond_stage_model.encode_embedding_init_text(',', 1).shape[1] (SDXL: the SUM of the "
               "text encoders' widths, cat dim=1); SDXL dict {clip_g, clip_l}: shape = clip_g.shape[-1] + "
               "clip_l.shape[-1], vectors = clip_g.shape[0]; other formats shape = vec.shape[-1]; shape != expected -> "
               "skipped_embeddings (never matched). A single tensor is never applied to one SDXL encoder only.",
    "names": "the file stem, tokenized by cond_stage_model.tokenize (SDXL: GeneralConditioner.tokenize = the first "
             "embedder with tokenize, CLIP-L's tokenizer); one database shared by both SDXL wrappers",
    "placeholders": "tokenize_line: chunk.tokens += [0] * emb_len (id 0, '!') for every encoder; CLIP-L keeps the ids "
                    "(id_pad = id_end); bigG sets every position after the chunk's first 49407 to 0 (placeholders "
                    "come before it)",
    "chunk_border": "if len(chunk.tokens) + emb_len > 75: next_chunk() (current chunk padded with 49407, "
                    "multiplier 1); an embedding never splits across chunks; "
                    "the fix offset counts from the token after BOS",
    "insertion": "EmbeddingsWithFixes(textual_inversion_key): vec = embedding.vec[key] if dict else embedding.vec "
                 "(key 'clip_l' for CLIP-L and SD 2.x OpenCLIP, 'clip_g' for bigG); emb_len = min(77 - offset - 1, "
                 "len(vec)); rows[offset + 1 : offset + 1 + emb_len] = vec[:emb_len] before the position embeddings",
    "pooled": "bigG pooled = ln_final(last)[tokens.argmax(-1)] @ text_projection: the first 49407 (placeholders are 0, "
              "pads after it 0); computed before emphasis; from the FIRST chunk only (zs[0].pooled); the end token "
              "attends to the embedding rows, so embeddings in chunk 0 change pooled",
    "emphasis": "EmphasisOriginal per encoder and chunk after the encoder: embedding rows scaled like any token",
    "sd2": "FrozenOpenCLIPEmbedderWithCustomWords: pad 0 after the first 49407; z = ln_final(blocks 0 .. N-2)",
    "diffusers_bin": "load_from_file: .bin / .pt -> torch.load; create_embedding_from_data's 'diffuser concepts' "
                     "branch (a dict of exactly one tensor, e.g. {'<sdbin>': [8]}): that tensor, unsqueezed to "
                     "[1, dim] when 1-D; named by the FILE stem ('sdbin'), not the token key",
    "image_names": "load_from_file: .png / .webp / .jxl / .avif (not *.preview.*): the 'sd-ti-embedding' text chunk "
                   "(else data hidden in the pixels; none: not an embedding) = base64 of json.dumps(data, "
                   "cls=EmbeddingEncoder), tensors as {'TORCHTENSOR': lists}, decoded with np.array (float64) and cast "
                   "to float32; name = data.get('name', name): the STORED name ('pngthree' from sdpng.png), which "
                   "also keys skipped_embeddings",
}

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Makes Tests/FormatsTests/Fixtures/: small model and embedding files written
by torch itself (torch.save, safetensors.torch.save_file, diffusers and
transformers save_pretrained), plus manifest.json describing every tensor in
them, for the tests of sdshell's Swift file readers.

Rerun (after scripts/setup_reference_env.sh):
    .venv-ref/bin/python Tests/Fixtures/generators/make_model_file_fixtures.py
The diffusers -> LDM key converters and the DDPM schedule buffers are in
fixture_support.py (train_demo_model.py uses them too).

What it writes (all under Tests/FormatsTests/Fixtures/, < 2 MB in all):
  Embeddings      emb_a1111.pt, emb_a1111_param.pt, emb_a1111_f16.pt,
                  emb_diffusers.bin, emb_kohya.safetensors, emb_sdxl.safetensors,
                  emb_legacy.pt, emb_bf16_strided.pt, emb_ints.pt
  Checkpoints     ckpt_ldm.ckpt (f32, lightning-style dict), ckpt_ldm.safetensors
                  (f16), diffusers_tiny/ (diffusers folder), vae_separate.safetensors
                  -- a TINY SD-1.x-architecture model with real key names
  Malicious       evil_os_system.pt, evil_eval.pt, evil_popen.pt, evil_nested.pt,
                  evil_legacy.pt -- NEVER load these without weights_only=True;
                  this script only disassembles them and checks that
                  torch.load(weights_only=True) refuses them.
  Broken          bad_*.safetensors, bad_*.pt; nan_inf.safetensors (readable)
  manifest.json   see MANIFEST below

Determinism: every random value comes from a torch.Generator / random.Random
with a fixed seed, so tensor values are identical on every run with the same
torch version. Files are byte-identical across runs too, except the legacy
(non-zip) torch files, whose storage keys are memory addresses
(str(storage._cdata)), so they differ run to run in those key strings only.

Every file is written to a scratch folder under the fixture folder under its
final name (torch.save names the zip's top folder after the file's stem, e.g.
"emb_a1111/data.pkl") and then moved into place with os.replace. The
malicious zips are built in memory, so their top folder is "archive/".

MANIFEST (manifest.json):
  {"generator", "torch", "safetensors", "diffusers", "transformers", "numpy",
   "files": [ENTRY, ...]}
  readable ENTRY: {"file", "kind": "safetensors"|"torch-zip"|"torch-legacy"|
                   "diffusers-folder", "tensors": [T, ...], "metadata": {...}}
      T = {"name", "dtype": F32|F16|BF16|I64|I32|BOOL|F64, "shape",
           "sha256": of the values as contiguous row-major little-endian
                     bytes in the tensor's own dtype (BOOL: one 0/1 byte each),
           "first": up to 4 leading values (row-major) as JSON numbers; NaN and
                    infinities as the strings "nan", "inf", "-inf"; BOOL as 0/1.
                    Floats are the exact stored value written as a double
                    (Python's repr), so Double -> Float (or -> the tensor's
                    own dtype) gives back exactly the stored value}
      torch files add to T, only when the tensor is not a plain contiguous
           tensor owning its whole storage: "stride", "storage_offset" and
           "storage_numel" (all in elements); and "requires_grad": true only
           when set. The storage global follows from the dtype: F32
           torch.FloatStorage, F16 torch.HalfStorage, BF16
           torch.BFloat16Storage, I64 torch.LongStorage, I32
           torch.IntStorage, BOOL torch.BoolStorage, F64 torch.DoubleStorage.
      Names: nested dict keys joined with "." (e.g. "string_to_param.*",
      "state_dict.model.diffusion_model.conv_in.weight"); list items by
      index; an nn.ParameterDict is named like a dict of its _parameters;
      diffusers-folder tensors as "<subfolder>/<key>". Order: pickle order
      for torch files, sorted by name for safetensors and diffusers folders.
      Optional: "note", "arch" (the tiny model's config, checkpoints only),
      "weights_files" (diffusers folder).
      "metadata": safetensors __metadata__, or for torch files every
      non-tensor leaf (str/int/float/bool/None/numpy scalar) under the same
      dotted names; empty containers as [] / {}.
  malicious ENTRY: {"file", "kind", "malicious_global" ("posix.system", ...),
                    "canary": the file that loading it would create,
                    "pickle_globals": every GLOBAL in data.pkl, in order}
  broken ENTRY:    {"file", "kind", "broken": what is wrong}
"""

import copy
import hashlib
import io
import json
import math
import os
import pickle
import pickletools
import random
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy
import torch

from fixture_support import ROOT, ddpm_schedule_buffers, unet_diffusers_to_ldm, vae_diffusers_to_ldm  # noqa: E402

OUT_DIR = os.path.join(ROOT, "Tests", "FormatsTests", "Fixtures")
SCRATCH = os.path.join(OUT_DIR, ".scratch-make-model-file-fixtures")
GENERATOR = "Tests/Fixtures/generators/make_model_file_fixtures.py"
SIZE_LIMIT = 2_000_000  # bytes, whole folder

MANIFEST = []
WRITTEN = []  # names (files or folders) this script published

DTYPE_NAMES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.bool: "BOOL",
    torch.float64: "F64",
}

# The tiny model. UNet/VAE widths are (8, 16) rather than (32, 64): the
# (32, 64) models hold ~1.45M parameters (~6 MB in f32 per copy), far over the
# 2 MB budget for the whole folder.
UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(8, 16),
    layers_per_block=1,
    cross_attention_dim=32,
    attention_head_dim=8,
    norm_num_groups=4,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(8, 16),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=4,
    sample_size=16,
)
TEXT_CONFIG = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=4,
    vocab_size=1000,
    max_position_embeddings=77,
    projection_dim=32,
)


# ---------------------------------------------------------------- helpers

def gen(seed):
    return torch.Generator().manual_seed(seed)


def rel(path):
    return os.path.relpath(path, OUT_DIR)


def scratch_path(name):
    """A path in the scratch folder with the file's final name."""
    os.makedirs(SCRATCH, exist_ok=True)
    return os.path.join(SCRATCH, name)


def publish(name):
    """Moves SCRATCH/name into OUT_DIR/name (atomic for files)."""
    src = os.path.join(SCRATCH, name)
    dst = os.path.join(OUT_DIR, name)
    WRITTEN.append(name)
    # Plain 0644 everywhere (the safetensors writer creates files 0600).
    for d, _, files in os.walk(src):
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    if os.path.isfile(src):
        os.chmod(src, 0o644)
    if os.path.isdir(src):
        old = None
        if os.path.exists(dst):
            old = os.path.join(SCRATCH, name + ".old")
            os.replace(dst, old)
        os.replace(src, dst)
        if old:
            shutil.rmtree(old)
    else:
        os.replace(src, dst)
    return dst


def write_bytes(name, data):
    p = scratch_path(name)
    with open(p, "wb") as f:
        f.write(data)
    return publish(name)


def torch_save(name, obj, legacy=False):
    p = scratch_path(name)
    if legacy:
        torch.save(obj, p, _use_new_zipfile_serialization=False)
    else:
        torch.save(obj, p)
    return publish(name)


def st_save(name, tensors, metadata=None):
    from safetensors.torch import save_file
    p = scratch_path(name)
    save_file(tensors, p, metadata=metadata)
    return publish(name)


def encode_number(x):
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def tensor_le_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        a = t.view(torch.int16).numpy()
    elif t.dtype == torch.bool:
        a = t.to(torch.uint8).numpy()
    else:
        a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def first_value(v, dtype):
    """A JSON number for one value: the exact stored value as a double
    (Python's shortest repr of that double), so parsing to Double and then
    converting to Float (or to the tensor's own dtype) is exact."""
    return encode_number(float(v))


def describe_tensor(name, t, torch_file):
    requires_grad = t.requires_grad
    t = t.detach()
    flat = t.reshape(-1)[:4]
    if t.is_floating_point():
        first = [first_value(v, t.dtype) for v in flat.float().tolist()]
    else:
        first = [int(v) for v in flat.tolist()]
    d = {
        "name": name,
        "dtype": DTYPE_NAMES[t.dtype],
        "shape": list(t.shape),
        "sha256": hashlib.sha256(tensor_le_bytes(t)).hexdigest(),
        "first": first,
    }
    if torch_file:
        storage_numel = t.untyped_storage().nbytes() // t.element_size()
        if not t.is_contiguous() or t.storage_offset() != 0 or storage_numel != t.numel():
            d["stride"] = list(t.stride())
            d["storage_offset"] = t.storage_offset()
            d["storage_numel"] = storage_numel
        if requires_grad:
            d["requires_grad"] = True
    return d


def flatten(obj, prefix, tensors, metadata):
    """Walks a loaded torch object: tensors -> tensors, leaves -> metadata."""
    def key(k):
        return f"{prefix}.{k}" if prefix else str(k)

    if isinstance(obj, torch.Tensor):
        tensors.append((prefix, obj))
    elif isinstance(obj, torch.nn.ParameterDict):
        flatten(dict(obj._parameters), prefix, tensors, metadata)
    elif isinstance(obj, dict):
        if not obj and prefix:
            metadata[prefix] = {}
        for k, v in obj.items():
            flatten(v, key(k), tensors, metadata)
    elif isinstance(obj, (list, tuple)):
        if not obj and prefix:
            metadata[prefix] = []
        for i, v in enumerate(obj):
            flatten(v, key(i), tensors, metadata)
    elif isinstance(obj, numpy.generic):
        metadata[prefix] = encode_number(obj.item())
    elif obj is None or isinstance(obj, (str, bool)):
        metadata[prefix] = obj
    elif isinstance(obj, (int, float)):
        metadata[prefix] = encode_number(obj)
    else:
        raise TypeError(f"unexpected {type(obj)} at {prefix}")


def torch_entry(file, obj, kind, **extra):
    tensors, metadata = [], {}
    flatten(obj, "", tensors, metadata)
    entry = {"file": file, "kind": kind,
             "tensors": [describe_tensor(n, t, True) for n, t in tensors],
             "metadata": metadata}
    entry.update(extra)
    return entry


def load_back(path, safe_globals=()):
    """Loads one of OUR benign files the way a careful reader would."""
    with torch.serialization.safe_globals(list(safe_globals)):
        return torch.load(path, weights_only=True)


def add_torch_file(name, obj, legacy=False, safe_globals=(), **extra):
    path = torch_save(name, obj, legacy=legacy)
    kind = "torch-legacy" if legacy else "torch-zip"
    assert zipfile.is_zipfile(path) != legacy
    loaded = load_back(path, safe_globals)
    entry = torch_entry(name, loaded, kind, **extra)
    expected = torch_entry(name, obj, kind, **extra)
    # The reloaded file must hold exactly what we saved (values, strides,
    # offsets, requires_grad, metadata).
    assert entry == expected, f"{name}: reload differs"
    MANIFEST.append(entry)
    return path


def safetensors_entry(name, path):
    from safetensors import safe_open
    tensors = []
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        for k in sorted(f.keys()):
            tensors.append(describe_tensor(k, f.get_tensor(k), False))
    return {"file": name, "kind": "safetensors", "tensors": tensors, "metadata": metadata}


def add_safetensors_file(name, tensors, metadata=None, **extra):
    path = st_save(name, tensors, metadata)
    entry = safetensors_entry(name, path)
    expected = sorted((describe_tensor(k, v, False) for k, v in tensors.items()),
                      key=lambda d: d["name"])
    assert entry["tensors"] == expected, name
    entry.update(extra)
    MANIFEST.append(entry)
    return path


# ---------------------------------------------------------------- embeddings

def make_embeddings():
    g = gen(1001)
    vec3 = (torch.randn(3, 768, generator=g) * 0.1).requires_grad_()
    a1111 = {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": vec3},
        "name": "emb_a1111",
        "step": 120,
        "sd_checkpoint": "a1b2c3d4e5",
        "sd_checkpoint_name": "v1-5-pruned-emaonly",
    }
    add_torch_file("emb_a1111.pt", a1111)

    g = gen(1002)
    pd = torch.nn.ParameterDict(
        {"*": torch.nn.Parameter(torch.randn(2, 768, generator=g) * 0.1)})
    add_torch_file("emb_a1111_param.pt", {
        "string_to_token": {"*": 265},
        "string_to_param": pd,
        "name": "emb_a1111_param",
        "step": 3000,
        "sd_checkpoint": "7460a6fa",
        "sd_checkpoint_name": "sd-v1-4",
    }, safe_globals=[torch.nn.ParameterDict],
        note="string_to_param is a pickled torch.nn.ParameterDict (NEWOBJ + BUILD "
             "of its __dict__); its tensors are in state['_parameters']")

    g = gen(1003)
    add_torch_file("emb_a1111_f16.pt", {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": (torch.randn(1, 768, generator=g) * 0.1).half()},
        "name": "emb_a1111_f16",
        "step": 500,
        "sd_checkpoint": None,
        "sd_checkpoint_name": None,
    })

    g = gen(1004)
    add_torch_file("emb_diffusers.bin",
                   {"<my-token>": torch.randn(768, generator=g) * 0.1})

    g = gen(1005)
    add_safetensors_file("emb_kohya.safetensors",
                         {"emb_params": torch.randn(2, 768, generator=g) * 0.1},
                         metadata={"format": "pt"})

    g = gen(1006)
    add_safetensors_file("emb_sdxl.safetensors", {
        "clip_l": torch.randn(2, 768, generator=g) * 0.1,
        "clip_g": torch.randn(2, 1280, generator=g) * 0.1,
    })

    add_torch_file("emb_legacy.pt", a1111, legacy=True)

    g = gen(1007)
    base = (torch.randn(768, 2, generator=g) * 0.1).to(torch.bfloat16)
    t = base.t()
    assert t.shape == (2, 768) and t.stride() == (1, 2) and not t.is_contiguous()
    base2 = torch.randn(5, 8, generator=g)
    view = base2[1:]
    assert view.storage_offset() == 8
    add_torch_file("emb_bf16_strided.pt", {
        "string_to_param": {"*": t},
        "offset_view": view,
        "shared_base": base2,
    }, note="string_to_param.* is a transposed view (strides (1, 2)) of a "
            "[768, 2] bf16 storage; offset_view is rows 1.. of shared_base and "
            "shares its storage (same storage key, storage_offset 8)")

    add_torch_file("emb_ints.pt", {
        "ids": torch.arange(5, dtype=torch.int64),
        "mask": torch.tensor([1, 0, 1], dtype=torch.int32),
        "flags": torch.tensor([True, False]),
        "scale": torch.tensor(0.5, dtype=torch.float64),
        "np_scalar": numpy.float64(2.5),
        "np_int": numpy.int64(7),
    }, safe_globals=[numpy.core.multiarray.scalar, numpy.dtype,
                     numpy.dtypes.Float64DType, numpy.dtypes.Int64DType],
        note="np_scalar/np_int are numpy scalars: GLOBAL numpy.core.multiarray.scalar "
             "applied to (numpy.dtype('f8'|'i8', False, True) + BUILD state, raw bytes "
             "as _codecs.encode(latin1 str))")


# ---------------------------------------------------------------- tiny model

def randomize(module, seed):
    """Fills every parameter with seeded random values (no 1/0 norms, so a
    swapped key is visible) scaled to keep activations sane."""
    g = gen(seed)
    sd = module.state_dict()
    with torch.no_grad():
        for k in sorted(sd):
            p = sd[k]
            if not p.is_floating_point():
                continue
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if k.endswith(".bias"):
                v = r * 0.05
            elif p.dim() == 1:                 # norm weights
                v = 1.0 + 0.1 * r
            else:
                fan_in = p[0].numel()
                v = r / math.sqrt(fan_in)
            p.copy_(v)
    return module


def build_models(seed):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    unet = randomize(UNet2DConditionModel(**UNET_CONFIG), seed + 1).eval()
    vae = randomize(AutoencoderKL(**VAE_CONFIG), seed + 2).eval()
    text = randomize(CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)), seed + 3).eval()
    return unet, vae, text


# unet_diffusers_to_ldm, vae_diffusers_to_ldm (diffusers keys -> LDM keys) and ddpm_schedule_buffers
# (the LatentDiffusion buffers of SD 1.x checkpoints): fixture_support.


def check_roundtrip(unet, vae, text, ldm):
    """Our diffusers->LDM mapping must be undone exactly by diffusers' own
    single-file loader code."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint)
    for name, module, back in [
        ("unet", unet, convert_ldm_unet_checkpoint(ldm, dict(UNET_CONFIG))),
        ("vae", vae, convert_ldm_vae_checkpoint(ldm, dict(VAE_CONFIG))),
        ("text", text, convert_ldm_clip_checkpoint(ldm)),
    ]:
        sd = module.state_dict()
        back = {k: v for k, v in back.items() if k != "text_model.embeddings.position_ids"}
        assert set(back) == set(sd), (name, sorted(set(back) ^ set(sd))[:10])
        for k in sd:
            assert back[k].shape == sd[k].shape and torch.equal(back[k], sd[k]), (name, k)


def arch_record():
    return {
        "unet": {k: list(v) if isinstance(v, tuple) else v for k, v in UNET_CONFIG.items()},
        "vae": {k: list(v) if isinstance(v, tuple) else v for k, v in VAE_CONFIG.items()},
        "text": {
            "hidden_size": TEXT_CONFIG["hidden_size"],
            "intermediate_size": TEXT_CONFIG["intermediate_size"],
            "num_hidden_layers": TEXT_CONFIG["num_hidden_layers"],
            "num_attention_heads": TEXT_CONFIG["num_attention_heads"],
            "vocab_size": TEXT_CONFIG["vocab_size"],
            "max_position_embeddings": TEXT_CONFIG["max_position_embeddings"],
            "hidden_act": "quick_gelu",
        },
        "note": "diffusers' attention_head_dim=8 is used as the NUMBER of heads "
                "(SD-1.x num_heads=8), so head width = channels/8",
    }


def make_checkpoints():
    unet, vae, text = build_models(2000)
    ldm = {}
    ldm.update(ddpm_schedule_buffers())
    for k, v in unet_diffusers_to_ldm(unet.state_dict(), UNET_CONFIG).items():
        ldm["model.diffusion_model." + k] = v.clone()
    for k, v in vae_diffusers_to_ldm(vae.state_dict(), VAE_CONFIG).items():
        ldm["first_stage_model." + k] = v.clone()
    for k, v in text.state_dict().items():
        ldm["cond_stage_model.transformer." + k] = v.clone()
    # Real SD-1.x files carry the CLIP position_ids buffer (int64 [1, 77]).
    ldm["cond_stage_model.transformer.text_model.embeddings.position_ids"] = \
        torch.arange(TEXT_CONFIG["max_position_embeddings"], dtype=torch.int64)[None]
    check_roundtrip(unet, vae, text, ldm)
    arch = arch_record()

    ckpt_sd = dict(ldm)
    ckpt_sd["model_ema.decay"] = torch.tensor(0.9999, dtype=torch.float32)
    ckpt_sd["model_ema.num_updates"] = torch.tensor(10, dtype=torch.int32)
    ckpt = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "1.4.2",
        "state_dict": ckpt_sd,
        "callbacks": {
            "ModelCheckpoint{'monitor': None, 'mode': 'min'}": {
                "monitor": None,
                "best_model_score": None,
                "best_model_path": "",
                "current_score": 0.125,          # a Python float: BINFLOAT (big-endian)
                "save_top_k": -1,                # negative int: BININT
                "every_n_train_steps": 100000,   # > 65535: BININT
                "dirpath": "logs/checkpoints",
            },
        },
        "optimizer_states": [],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
    }
    add_torch_file("ckpt_ldm.ckpt", ckpt, arch=arch,
                   note="the model's tensors are under 'state_dict.'; strip it to get LDM keys")

    st = {k: (v.half() if v.is_floating_point() else v) for k, v in ldm.items()}
    add_safetensors_file("ckpt_ldm.safetensors", st, metadata={"format": "pt"}, arch=arch,
                         note="all float tensors F16 (as civitai files); "
                              "position_ids stays I64 as in real files")

    # diffusers folder layout, saved from the models cast to f16 (the f32
    # default would not fit the 2 MB budget). Its values are therefore the
    # same as ckpt_ldm.safetensors', tensor by tensor.
    folder = scratch_path("diffusers_tiny")
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    half = {"unet": copy.deepcopy(unet).half(), "vae": copy.deepcopy(vae).half(),
            "text_encoder": copy.deepcopy(text).half()}
    for sub, module in half.items():
        module.save_pretrained(os.path.join(folder, sub), safe_serialization=True)
    from diffusers import PNDMScheduler
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                  num_train_timesteps=1000, skip_prk_steps=True, set_alpha_to_one=False,
                  steps_offset=1).save_pretrained(os.path.join(folder, "scheduler"))
    import diffusers
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump(model_index, f, indent=2, sort_keys=True)
        f.write("\n")
    weights_files = {"text_encoder": "text_encoder/model.safetensors",
                     "unet": "unet/diffusion_pytorch_model.safetensors",
                     "vae": "vae/diffusion_pytorch_model.safetensors"}
    tensors = []
    from safetensors import safe_open
    for sub, fname in weights_files.items():
        sd = half[sub].state_dict()
        with safe_open(os.path.join(folder, fname), framework="pt") as f:
            assert set(f.keys()) == set(sd), sub
            for k in sorted(f.keys()):
                t = f.get_tensor(k)
                assert t.dtype == torch.float16 and torch.equal(t, sd[k]), (sub, k)
                tensors.append(describe_tensor(f"{sub}/{k}", t, False))
    publish("diffusers_tiny")
    # Every diffusers tensor has the same bytes (so the same sha256) as the
    # ckpt_ldm.safetensors tensor it maps to: a test can recover the key
    # mapping from the hashes. Check that, and that the hashes are unique.
    st_hashes = {t["sha256"]: t["name"] for t in MANIFEST[-1]["tensors"]}
    assert len(st_hashes) == len(MANIFEST[-1]["tensors"])
    for t in tensors:
        assert t["sha256"] in st_hashes, t["name"]
    MANIFEST.append({
        "file": "diffusers_tiny", "kind": "diffusers-folder", "tensors": tensors,
        "metadata": {"model_index": model_index}, "arch": arch,
        "weights_files": weights_files,
        "note": "same weights as ckpt_ldm.*, stored F16: each tensor's bytes and "
                "sha256 equal those of its LDM-named twin in ckpt_ldm.safetensors "
                "(VAE mid attention q/k/v/proj_out: [C,C] here, [C,C,1,1] there); "
                "no tokenizer folder (model_index lists tokenizer as [null, null])",
    })

    # A separately shipped VAE: LDM names without 'first_stage_model.'.
    _, vae2, _ = build_models(3000)
    vsd = {k: v.half() for k, v in vae_diffusers_to_ldm(vae2.state_dict(), VAE_CONFIG).items()}
    add_safetensors_file("vae_separate.safetensors", vsd, arch={"vae": arch["vae"]},
                         note="LDM VAE names without the first_stage_model. prefix, F16; "
                              "values differ from ckpt_ldm's VAE")


# ---------------------------------------------------------------- malicious

class Evil:
    """Pickles as a call of fn(*args). Only ever PICKLED here, never loaded."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def pickle_globals(data):
    out = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            out.append(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            out.append("STACK_GLOBAL")
    return out


def legacy_main_pickle(data):
    """The 4th pickle of a legacy torch file (magic, protocol, sys_info, obj)."""
    f = io.BytesIO(data)
    for _ in range(3):
        pickle_end(f)
    start = f.tell()
    pickle_end(f)
    return data[start:f.tell()]


def pickle_end(f):
    for op, _, _ in pickletools.genops(f):
        if op.name == "STOP":
            break


def rewrite_data_pkl(zip_bytes, new_pkl):
    """Rebuilds a torch zip with torch's own writer (same records, same
    64-byte alignment), replacing data.pkl."""
    z = zipfile.ZipFile(io.BytesIO(zip_bytes))
    out = io.BytesIO()
    with torch.serialization._open_zipfile_writer(out) as w:
        for n in z.namelist():
            rec = n.split("/", 1)[1]
            if rec in ("version", ".data/serialization_id"):
                continue  # written by the writer itself at the end
            data = new_pkl if rec == "data.pkl" else z.read(n)
            w.write_record(rec, data, len(data))
    return out.getvalue()


def verify_refused(path, expected_global, legacy):
    data = open(path, "rb").read()
    if legacy:
        assert not zipfile.is_zipfile(path)
        pkl = legacy_main_pickle(data)
    else:
        z = zipfile.ZipFile(path)
        pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    pickletools.dis(pkl, out=io.StringIO())  # must be a well-formed pickle
    globs = pickle_globals(pkl)
    assert expected_global in globs, (path, globs)
    try:
        torch.load(path, weights_only=True)
    except pickle.UnpicklingError as e:
        assert expected_global in str(e) or "GLOBAL" in str(e), str(e)[:300]
    else:
        raise AssertionError(f"{path}: weights_only load did not refuse")
    return globs


def make_malicious():
    canaries = {}
    clean = {"string_to_token": {"*": 265},
             "string_to_param": {"*": torch.randn(1, 768, generator=gen(4000)) * 0.1},
             "name": "innocent", "step": 1}
    buf = io.BytesIO()
    torch.save(clean, buf)  # in-memory: the zip's top folder is "archive/"
    clean_zip = buf.getvalue()

    cases = [
        ("evil_os_system.pt", os.system, ("touch /tmp/sdshell_canary_os",), "posix.system",
         "/tmp/sdshell_canary_os", True),
        ("evil_eval.pt", eval, ("__import__('os').system('touch /tmp/sdshell_canary_eval')",),
         "builtins.eval", "/tmp/sdshell_canary_eval", False),
        ("evil_popen.pt", subprocess.Popen, (["touch", "/tmp/sdshell_canary_popen"],),
         "subprocess.Popen", "/tmp/sdshell_canary_popen", False),
    ]
    for name, fn, args, glob, canary, fix_imports in cases:
        # fix_imports=False keeps "builtins eval" / "subprocess Popen"
        # (protocol 2's default fix_imports=True writes the Python 2 aliases
        # "__builtin__ eval" / "commands Popen"; "posix system" is unchanged).
        pkl = pickle.dumps(Evil(fn, args), protocol=2, fix_imports=fix_imports)
        write_bytes(name, rewrite_data_pkl(clean_zip, pkl))
        canaries[name] = (glob, canary, False)

    # Nested: torch.save itself pickles the payload (its __reduce__ runs at
    # save time, the callable does not).
    nested = copy.deepcopy(clean)
    nested["name"] = [{"display": Evil(os.system, ("touch /tmp/sdshell_canary_nested",))}]
    torch_save("evil_nested.pt", nested)
    canaries["evil_nested.pt"] = ("posix.system", "/tmp/sdshell_canary_nested", False)

    legacy = copy.deepcopy(clean)
    legacy["name"] = Evil(os.system, ("touch /tmp/sdshell_canary_legacy",))
    torch_save("evil_legacy.pt", legacy, legacy=True)
    canaries["evil_legacy.pt"] = ("posix.system", "/tmp/sdshell_canary_legacy", True)

    for name, (glob, canary, is_legacy) in canaries.items():
        existed = os.path.exists(canary)
        globs = verify_refused(os.path.join(OUT_DIR, name), glob, is_legacy)
        assert existed or not os.path.exists(canary), f"{canary} appeared!"
        MANIFEST.append({"file": name, "kind": "torch-legacy" if is_legacy else "torch-zip",
                         "malicious_global": glob, "canary": canary,
                         "pickle_globals": globs})


# ---------------------------------------------------------------- broken

def st_raw(header, data, header_len=None):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    n = len(h) if header_len is None else header_len
    return struct.pack("<Q", n) + h + data


def expect_safetensors_error(path):
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt") as f:
            for k in f.keys():
                f.get_tensor(k)
    except Exception:
        return
    raise AssertionError(f"{path} loaded without error")


def expect_torch_error(path):
    try:
        torch.load(path, weights_only=True)
    except Exception:
        return
    raise AssertionError(f"{path} loaded without error")


def make_broken():
    # A valid file, then cut in half (the cut falls inside the data region).
    g = gen(5000)
    valid = scratch_path("valid_for_truncation.safetensors")
    from safetensors.torch import save_file
    save_file({"weight": torch.randn(64, 4, generator=g), "bias": torch.randn(4, generator=g)},
              valid)
    full = open(valid, "rb").read()
    os.remove(valid)
    header_end = 8 + struct.unpack("<Q", full[:8])[0]
    cut = len(full) // 2
    assert cut > header_end
    broken = [("bad_truncated.safetensors",
               full[:cut],
               f"valid file of {len(full)} bytes cut to {cut}: header intact, data "
               f"ends {len(full) - cut} bytes short")]

    f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
    data8 = f32(1, 2, 3, 4, 5, 6, 7, 8)
    hdr = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
           "b": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}
    ok = st_raw(hdr, data8)
    broken.append(("bad_header_len.safetensors",
                   st_raw(hdr, data8, header_len=len(ok) + 16),
                   f"header length field {len(ok) + 16} is larger than the whole file "
                   f"({len(ok)} bytes)"))
    broken.append(("bad_offsets.safetensors",
                   st_raw({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                           "b": {"dtype": "F32", "shape": [4], "data_offsets": [1000, 1016]}},
                          data8),
                   "tensor b has data_offsets [1000, 1016] but the data region is 32 bytes"))
    broken.append(("bad_overlap.safetensors",
                   st_raw({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                           "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}},
                          f32(1, 2, 3, 4, 5, 6)),
                   "tensors a [0, 16] and b [8, 24] overlap (data region 24 bytes)"))
    broken.append(("bad_dtype_size.safetensors",
                   st_raw({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}},
                          f32(1, 2)),
                   "F32 [4] needs 16 bytes but data_offsets [0, 8] span 8"))
    for name, data, what in broken:
        path = write_bytes(name, data)
        expect_safetensors_error(path)
        MANIFEST.append({"file": name, "kind": "safetensors", "broken": what})

    rng = random.Random(5001)
    junk = bytes(rng.getrandbits(8) for _ in range(512))
    assert junk[:2] != b"PK" and junk[0] != 0x80
    path = write_bytes("bad_magic.pt", junk)
    expect_torch_error(path)
    MANIFEST.append({"file": "bad_magic.pt", "kind": "unknown",
                     "broken": "512 random bytes: neither a zip (no PK header, no end of "
                               "central directory) nor a legacy pickle (no 0x80 PROTO)"})

    good = open(os.path.join(OUT_DIR, "emb_a1111.pt"), "rb").read()
    path = write_bytes("bad_truncated.pt", good[:len(good) // 2])
    expect_torch_error(path)
    MANIFEST.append({"file": "bad_truncated.pt", "kind": "torch-zip",
                     "broken": f"emb_a1111.pt ({len(good)} bytes) cut to {len(good) // 2}: "
                               "no central directory / end record; local headers intact"})

    g = gen(5002)
    add_safetensors_file("nan_inf.safetensors", {
        "weird": torch.tensor([1.0, float("nan"), float("inf"), -2.0], dtype=torch.float32),
        "normal": torch.randn(2, 3, generator=g),
    }, note="readable; 'weird' holds NaN (0x7fc00000) and +inf")


# ---------------------------------------------------------------- main

def tree_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(path) for f in files)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    if os.path.exists(SCRATCH):
        shutil.rmtree(SCRATCH)
    make_embeddings()
    make_checkpoints()
    make_malicious()
    make_broken()

    import diffusers
    import safetensors
    import transformers
    manifest = {
        "generator": GENERATOR,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "files": MANIFEST,
    }
    # One tensor per line keeps the file small and diffable.
    lines = ["{"]
    for k in ["generator", "torch", "safetensors", "diffusers", "transformers", "numpy"]:
        lines.append(f"  {json.dumps(k)}: {json.dumps(manifest[k])},")
    lines.append('  "files": [')  # entries and tensors unindented: size
    for i, e in enumerate(MANIFEST):
        head = {k: v for k, v in e.items() if k != "tensors"}
        s = json.dumps(head, sort_keys=True)
        if "tensors" in e:
            body = ",\n".join(json.dumps(t, separators=(",", ":")) for t in e["tensors"])
            s = s[:-1] + ', "tensors": [\n' + body + "\n]}"
        lines.append(s + ("," if i + 1 < len(MANIFEST) else ""))
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(manifest))
    write_bytes("manifest.json", text.encode())
    shutil.rmtree(SCRATCH, ignore_errors=True)

    for name in sorted(WRITTEN):
        p = os.path.join(OUT_DIR, name)
        paths = [p] if os.path.isfile(p) else sorted(
            os.path.join(d, f) for d, _, files in os.walk(p) for f in files)
        for q in paths:
            print(f"{os.path.getsize(q):9d}  {rel(q)}")
    size = sum(tree_size(os.path.join(OUT_DIR, n)) for n in WRITTEN)
    folder = tree_size(OUT_DIR)
    print(f"{size:9d}  total written by this script ({size / 1e6:.3f} MB)")
    if folder != size:
        print(f"{folder:9d}  whole folder, with files from elsewhere")
    assert size < SIZE_LIMIT, "fixtures over 2 MB"
    if folder >= SIZE_LIMIT:
        print("warning: the fixture folder as a whole is over 2 MB", file=sys.stderr)


if __name__ == "__main__":
    main()

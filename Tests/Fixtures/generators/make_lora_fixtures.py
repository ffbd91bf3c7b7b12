#!/usr/bin/env python3
"""Makes tiny seeded LoRA / LoCon / LoHa / LoKr / PEFT network files for the tiny models and the
reference results of AUTOMATIC1111 1.10's built-in Lora extension merging them, for sdshell's network
support:

    .venv-ref/bin/python Tests/Fixtures/generators/make_lora_fixtures.py

Needs tiny-sd/ and tiny-sdxl/ (make_tiny_sd.py, make_family_fixtures.py), k-diffusion, torchsde,
diffusers, transformers and peft (the diffusers cross-check; `pip install peft`). IMPORTS
make_hires_fixtures.py (its Model, txt2img_pass, quote / number; through it make_pipeline_fixtures.py's
A1111 pieces: ImageRNG, CFGDenoiser, get_sigmas, a1111_chunk_ids) and make_family_fixtures.py (its SDXL
loading, Conditioner, LDMLike, run_txt2img, sdxl_size_vector, unet_to_ldm); importing them writes
nothing. Everything float32 on the CPU, one thread; deterministic for the same library versions and CPU
kind (about 20 s on 2 cores; checked: two runs wrote the same bytes). safetensors writes metadata in
hash-map order, so every .safetensors header is rewritten with sorted keys (same length, same data).

What it writes
--------------
Tests/ModelsTests/Fixtures/loras/ (every file seeded; "f16" = stored float16, the reference uses the
float16 values widened to float32, as A1111 does with --no-half, devices.dtype float32):
  sd_lora.safetensors     kohya LoRA (sd-scripts networks/lora.py) for tiny-sd, f16, dim 4, alpha 2:
                          every Linear / 1x1 Conv2d inside the UNet's Transformer2DModels (proj_in,
                          proj_out (1x1 convs: use_linear_projection is off), attn1/attn2 to_q/k/v/out_0,
                          ff_net_0_proj, ff_net_2) and the text encoder's CLIPAttention / CLIPMLP
                          (q/k/v/out_proj, fc1, fc2); keys `lora_unet_<diffusers name with _>` /
                          `lora_te_text_model_encoder_layers_N_...` + `.lora_down.weight` [r, in(, 1, 1)],
                          `.lora_up.weight` [out, r(, 1, 1)], `.alpha` (0-d); kohya metadata (ss_network_dim,
                          ss_network_alpha, ss_network_module, ss_base_model_version "sd_v1",
                          ss_sd_model_name, ss_output_name, sshs_model_hash = the addnet hash as kohya's
                          precalculate_safetensors_hashes computes it).
  sd_locon.safetensors    kohya LoCon (networks/lora.py with conv_dim): as sd_lora with dim 4 alpha 4
                          (scale 1), plus the ResnetBlock2D / Downsample2D / Upsample2D children: conv1,
                          conv2, the downsampler / upsampler convs (3x3: lora_down [2, in, 3, 3], lora_up
                          [out, 2, 1, 1], conv_dim 2, conv_alpha 1.5), conv_shortcut (1x1) and time_emb_proj
                          (Linear), which take the linear dim / alpha as kohya gives them; f16.
  sd_loha.safetensors     LyCORIS LoHa, f32: hada_w1_a [out, r], hada_w1_b [r, in * k * k] (2-D for convs, no
                          tucker), hada_w2_a, hada_w2_b, alpha; r 2, alpha 1 on the attention / ff Linears and
                          the text encoder, alpha 2 on the convs (resnet conv1 / conv2 3x3, proj_in / proj_out
                          1x1).
  sd_lokr.safetensors     LyCORIS LoKr, f32, Linears only (not the 1x1 proj_in / proj_out): UNet attention
                          projections: lokr_w1 [4, 4] full +
                          lokr_w2_a [out/4, 2] @ lokr_w2_b [2, in/4] with alpha 3 (dim = w2_b.shape[0] = 2:
                          scale 1.5); UNet ff and the text encoder: lokr_w1 and lokr_w2 both full with
                          alpha 4 (dim stays None in A1111: scale 1, the alpha is IGNORED).
  sd_peft.safetensors     a diffusers / PEFT LoRA written by StableDiffusionPipeline.save_lora_weights:
                          `unet.<diffusers module>.lora_A.weight` / `.lora_B.weight`,
                          `text_encoder.<module>.lora_A.weight` ...; r 4, no alpha (PEFT lora_alpha = r:
                          scale 1), f32; attention q/k/v/out of the UNet and q/k/v/out_proj of the text encoder.
  sd_bundle.safetensors   a kohya LoRA (f16, dim 2, alpha 1) on a few modules, ONE of them WITHOUT an
                          alpha key (A1111: scale 1.0), bundling the embedding
                          `bundle_emb.tinybundle.string_to_param.*` [2, 32] (A1111's bundle format).
  xl_lora.safetensors     kohya SDXL LoRA (sd-scripts sdxl_train_network) for tiny-sdxl, f16, dim 4,
                          alpha 8 (scale 2): UNet keys with the ORIGINAL sgm / LDM names
                          (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`,
                          `lora_unet_middle_block_1_proj_in`, `lora_unet_output_blocks_0_1_...`; proj_in /
                          proj_out are Linears here) on every transformer Linear; `lora_te1_text_model_...`
                          (CLIP-L) and `lora_te2_text_model_...` (the OpenCLIP bigG role) on q/k/v/out_proj,
                          fc1, fc2 of every layer; ss_base_model_version "sdxl_base_v1-0".
  xl_lokr.safetensors     LyCORIS LoKr for tiny-sdxl on 9 modules (UNet attn1 q/k/v of input_blocks_4_1
                          block 0, te1 layer 0 q/k, te2 layer 0 q/k/v/out_proj), f32; in sorted key order
                          the even ones w1 [2, 2] + w2_a @ w2_b (r 2, alpha 1: scale 0.5), the odd ones
                          w1 + w2 full (alpha 2, ignored: scale 1).
  xl_locon.safetensors    kohya SDXL LoCon (sdxl_train_network with conv_dim) for tiny-sdxl, f16: xl_lora's
                          modules with dim 2, alpha 4 (scale 2), plus the children of sd-scripts'
                          sdxl_original_unet ResnetBlock2D / Downsample2D / Upsample2D, LDM-named:
                          `lora_unet_<block>_in_layers_2` / `_out_layers_3` (3x3: lora_down [2, in, 3, 3],
                          lora_up [out, 2, 1, 1], conv_dim 2, conv_alpha 1.5: scale 0.75),
                          `_skip_connection` (1x1 conv) and `_emb_layers_1` (Linear) with the linear dim /
                          alpha, `lora_unet_input_blocks_3_0_op` (downsampler), `lora_unet_output_blocks_2_2_conv`
                          (upsampler); 213 modules.
  xl_loha.safetensors     LyCORIS LoHa for tiny-sdxl, f32, r 2 (2-D hada_w*_b, no tucker), 34 modules: UNet
                          Linears (input_blocks_4_1 block 0 attn1 q/k/v/out, attn2 k/v, ff_net_2,
                          middle_block_1 proj_in / proj_out, output_blocks_0_1 block 1 attn1 out) with alpha 1
                          (scale 0.5), UNet convs (input_blocks_1_0_in_layers_2, input_blocks_3_0_op,
                          input_blocks_4_0_out_layers_3, input_blocks_4_0_skip_connection (1x1),
                          middle_block_0_in_layers_2, output_blocks_2_2_conv, output_blocks_3_0_in_layers_2)
                          with alpha 2 (scale 1); lora_te1_ layer 0 q/k/v/out_proj, fc1, layer 1 fc2; lora_te2_
                          layers 0 and 1 q/k/v/out_proj (all four: OpenCLIP's MultiheadAttention), layer 0 fc2,
                          layer 2 fc1 / fc2 (alpha 1).
  xl_peft.safetensors     a diffusers / PEFT SDXL LoRA written by StableDiffusionXLPipeline.save_lora_weights:
                          `unet.<diffusers module>.lora_A.weight` / `.lora_B.weight` on every attn1 / attn2
                          to_q/k/v/out.0, `text_encoder.<CLIP-L module>...` and `text_encoder_2.<module>...` on
                          q/k/v/out_proj of every layer; r 2, no alpha (scale 1), f32, metadata {"format": "pt"}.
                          A1111 1.10 matches none of its keys (as sd_peft).
  broken.safetensors      sd_lora.safetensors cut in the middle of its tensor data (the header parses,
                          the data is short): a loader must refuse it.
  sd_lora_pt.pt           sd_lora's tensors (f16) as torch.save({key: tensor}) (torch's zip format):
                          A1111 reads .pt networks with torch.load; it merges exactly as sd_lora.
Tests/ModelsTests/Fixtures/lora.json: per file its hashes, metadata, modules and A1111's reading of
  them; a few modules' ΔW; the UNet output and text-encoder states of both models, plain and with each
  network merged at several (te, unet) multipliers, and with two networks at once (sd: sd_lora 0.6 +
  sd_loha 1:0.5; sdxl: xl_lora 0.6 + xl_loha 1:0.5); the diffusers cross-checks (SD: sd_lora, sd_peft;
  SDXL: xl_peft, and the kohya xl_lora / xl_locon through diffusers' SGM-name conversion).
Tests/DiffusionTests/Fixtures/lora_images.json: A1111 txt2img runs with networks in the prompt (tiny-sd,
  and two on tiny-sdxl: xl_lora 0.8; xl_lora 0.6 + xl_loha 1:0.5), A1111's prompt parsing of <lora:...> tags.
Append-only: the files and entries added for xl_locon / xl_loha / xl_peft come after the earlier ones
  (own seeds; their records after "broken"; their cases, deltas and runs at the ends of the lists;
  "diffusers_cross_check_sdxl" last), so the earlier files and JSON entries stay byte-identical.

lora.json layout (tensors {"shape", "data"} as fixture_support.enc32 writes them)
  "files": {name: {"path", "bytes", "sha256", "a1111_hash" (addnet for .safetensors, whole-file sha256 for
      .pt), "a1111_shorthash" (12 hex), "hash_rule", "header_bytes", "metadata", "dtypes", "module_count",
      "kinds", "a1111_1_10_matched" (modules A1111 1.10's literal key chain puts where the key says),
      "modules": [{"key" (the file's module part), "kind", "target" (unet | te | clip_l | te2), "module"
      (the diffusers / transformers module), "a1111_sd_key", "a1111_layer", "a1111_literal",
      "a1111_literal_ok", "layer" (linear | conv), "weight_shape", "tensors" {name: shape}, "dim",
      "alpha", "scale", "multiplier" (te | unet)}], sd_bundle: "bundle_embeddings"}, "broken": its sizes}
  "deltas": [{"file", "key", "kind", "te", "unet", "multiplier_used", "scale", "weight_shape", "delta"
      (the finalized updown; "rows" [0, 2]: only the first two output channels of a conv)}]
  "outputs": {"sd" | "sdxl": {"plain": OUT, "cases": [{"networks": [{"file", "te", "unet"}] (merged in
      this order), "max_abs_change" (vs plain), OUT}]}}; OUT = {"unet" [1, 4, 8, 8]; sd: "te_last_hidden";
      sdxl: "clip_l_penultimate", "clip_g_penultimate" (the text states: token positions 0..11 of 77),
      "clip_g_pooled" [1, 16]}
  "inputs", "two_networks_order_max_abs_diff" (sd_lora then sd_loha vs the other order: the float32
      addition order), "diffusers_cross_check", "diffusers_cross_check_sdxl" ({"what", "results": {"<file>
      te=.. unet=..": {"<output>_rel_max_diff", "diffusers_<output>_change_vs_plain"}}}).
lora_images.json: "parsing": [{"prompt", "stripped", "loras": [{"name", "te", "unet", "dyn"}]}]; "runs":
  [{"model", "prompt", "stripped_prompt", "networks", "settings", "sigmas", "latents", "image",
  "infotexts", "infotext_parameters"}] (images as pipeline_images.json's).

What A1111 1.10 does (extensions-builtin/Lora: networks.py, network.py, network_lora.py,
network_hada.py, network_lokr.py, lyco_helpers.py, extra_networks_lora.py; modules/hashes.py,
modules/extra_networks.py), and what this script restates
-------------------------------------------------------------------------------------------------
Prompt: extra_networks.parse_prompt removes every `<(\\w+):([^>]+)>` from the prompt (re.sub with "",
  so the spaces around a tag stay) and collects ExtraNetworkParams(items = args.split(":")): an item
  with one "=" is named (te=, unet=, dyn=), the others positional. extra_networks_lora.activate: name =
  positional[0]; te = float(positional[1]) if given else 1.0, then named "te" overrides; unet =
  float(positional[2]) if given else te, then named "unet" overrides; dyn = positional[3] / named "dyn"
  (None here: no truncation). Networks load in the order their tags appear (all tags of the batch's
  prompts, in order). The infotext keeps the prompt WITH its tags (all_prompts), and
  extra_generation_params["Lora hashes"] = ", ".join(f"{name}: {shorthash}") over the loaded networks,
  name = the mentioned name with ":" and "," removed.
Hash: NetworkOnDisk.set_hash(metadata "sshs_model_hash" or the cached sha256 "lora/<name>"); read_hash:
  hashes.sha256(filename, "lora/<name>", use_addnet_hash=is_safetensors): for .safetensors the "addnet"
  hash = sha256 of the bytes after the 8-byte little-endian header length n and the n header bytes (so
  the metadata does not count); for any other extension sha256 of the whole file. shorthash = hash[0:12].
Keys (load_network): key_network.partition(".") -> (module part, network part); "bundle_emb" keys
  collect embeddings (string_to_param.<k> -> {"string_to_param": {k: tensor}}, create_embedding_from_data;
  they fail the module match and are skipped there); key = convert_diffusers_name_to_compvis(module
  part, is_sd2); look it up in network_layer_mapping (every named module of the LDM model: the UNet as
  "diffusion_model_<ldm name with _>", SD 1.x's text encoder "transformer_text_model_...", SDXL's
  embedders "0_transformer_text_model_..." and "1_model_transformer_resblocks_N_..."); on a miss: a
  key ending in _q_proj/_k_proj/_v_proj -> the module named without it (the OpenCLIP
  MultiheadAttention "..._attn"); then "lora_unet" -> "diffusion_model" (SDXL's LDM-named keys), or
  "lora_te1_text_model" -> "0_transformer_text_model" (then "transformer_text_model"). Keys that match
  nothing are dropped silently (a debug log). NOTE: convert_diffusers_name_to_compvis hard-codes SD's
  layers_per_block 2 (input block = 1 + 3 * block + index, output block = 3 * block + index,
  downsampler input_blocks_{3 + 3 b}_0_op, upsampler output_blocks_{2 + 3 b}_{2 if b > 0 else 1}_conv);
  on tiny-sd (layers_per_block 1) it maps down_blocks_1_*, the down/upsamplers and up_blocks_1_* to
  wrong or missing LDM modules (recorded per module: "a1111_literal" and "a1111_literal_ok"). The
  reference merges here use the STRUCTURAL mapping (each key to the module it names), which is what
  A1111's conversion gives on real SD 1.x; sdshell should do that. A PEFT / diffusers file's keys
  ("unet.down_blocks...", "text_encoder.text_model...") partition to "unet" / "text_encoder" and match
  NOTHING in A1111 1.10: it loads as a network without modules (no effect; its hash still goes to the
  infotext). Its reference merges follow diffusers (checked) with A1111's multiplier split.
Module kinds (module_types order: lora, hada, ia3, lokr, full, norm, glora, oft):
  lora ("lora_up.weight" + "lora_down.weight", optional "lora_mid.weight" / "alpha" / "scale"): dim =
    lora_down.shape[0]; up and down cast to devices.dtype (float32 here); updown = (up.reshape(out, -1) @
    down.reshape(r, -1)).reshape(output_shape), output_shape = [out, in] + down.shape[2:] for a 4-D down
    (LoCon: a k x k down, a 1 x 1 up: [out, in, k, k]).
  hada: dim = hada_w1_b.shape[0]; output_shape = [w1a.size(0), w1b.size(1)] (+ w1b.shape[2:] if 4-D);
    updown = rebuild(w1a, w1b) * rebuild(w2a, w2b) (elementwise), each (a.reshape(a.size(0), -1) @
    b.reshape(b.size(0), -1)).reshape(output_shape).
  lokr: w1 = lokr_w1 or lokr_w1_a @ lokr_w1_b; w2 = lokr_w2 or lokr_w2_a @ lokr_w2_b; dim =
    lokr_w1_b.shape[0] if present, then lokr_w2_b.shape[0] if present, else None (so with both full
    factors calc_scale is 1.0 whatever the alpha); updown = torch.kron(w1, w2) (w1 unsqueezed to 4-D for
    a 4-D w2) reshaped to [w1.rows * w2.rows, w1.cols * w2.cols] (a conv: the weight's shape).
finalize_updown: (bias: none here) if len(output_shape) == 4: reshape to it; if the numel equals the
  weight's: reshape to the weight's shape; updown = updown * calc_scale(); updown = updown *
  multiplier(). calc_scale = "scale" if present, else alpha / dim (alpha = the tensor's .item(), a Python
  double; dim an int) if both are known, else 1.0. The two multiplications are separate float32 tensor
  x Python-scalar products (the scalar rounded to float32 first): ((updown * f32(alpha / dim)) *
  f32(multiplier)). multiplier() = te_multiplier if "transformer" occurs in sd_key[:20] (every text
  encoder module: "transformer_text_model_...", "0_transformer_...", "1_model_transformer_..."), else
  unet_multiplier (all UNet modules: "diffusion_model_..." has it only after position 20).
network_apply_weights (on the first forward of each layer after the set of networks changes): restore
  the backup, then for each loaded network IN ORDER: weight = weight + updown (float32; Linear / Conv2d:
  self.weight.copy_(weight + updown)); so two networks give (W + u1) + u2. OpenCLIP's
  MultiheadAttention (SDXL's te2): only when the network has all four of _q_proj, _k_proj, _v_proj and
  _out_proj: updown_q/k/v from calc_updown(in_proj_weight.chunk(3)[j]), in_proj_weight +=
  vstack(q, k, v), out_proj.weight += updown_out (the out_proj key also matches the out_proj Linear
  itself, whose own forward is never called, so it is added once).

The inputs of the direct checks (lora.json "inputs"): a seeded latent [1, 4, 8, 8] (torch.Generator
  7001, randn), timestep 500, a seeded context [1, 77, width] (7002 / 7003: randn), SDXL's y = cat(a
  seeded pooled [1, 16] (7004), the 16x16 size embedding) with diffusers' time_ids; the UNet with
  diffusers' AttnProcessor (explicit softmax); token ids = A1111's chunk of PROMPT (SD: last_hidden_state;
  SDXL: CLIP-L hidden_states[-2] with id_pad = id_end, OpenCLIP penultimate (input of the last block) and
  pooled with id_pad 0, as make_family_fixtures.py's Conditioner).
"""

import base64
import copy
import json
import os
import re
import struct
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_hires_fixtures as mhf  # noqa: E402  (imports make_pipeline_fixtures; writes nothing)
import make_family_fixtures as mff  # noqa: E402  (writes nothing on import)
import fixture_support as fs  # noqa: E402
from fixture_support import enc32, f32_text  # noqa: E402
import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor  # noqa: E402

mpf = mhf.mpf
GENERATOR = "Tests/Fixtures/generators/make_lora_fixtures.py"
LORA_DIR = os.path.join(fs.ROOT, "Tests", "ModelsTests", "Fixtures", "loras")
OUT = os.path.join(fs.ROOT, "Tests", "ModelsTests", "Fixtures", "lora.json")
OUT_IMAGES = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "lora_images.json")
MAX_JSON_BYTES = 1_500_000
MAX_IMAGES_JSON_BYTES = 300_000
MAX_LORA_BYTES = 1_500_000          # every file in loras/ together
PROMPT = "a red circle on a blue background"
MULTIPLIERS = [(1.0, 1.0), (0.8, 0.8), (1.0, 0.5)]
TIMESTEP = 500
TE_POSITIONS = 12      # the text-encoder states are recorded for token positions 0..11 of 77 (size)
SEEDS = {"latent": 7001, "context_sd": 7002, "context_sdxl": 7003, "pooled_sdxl": 7004,
         "sd_lora": 7101, "sd_locon": 7102, "sd_loha": 7103, "sd_lokr": 7104, "sd_peft": 7105,
         "sd_bundle": 7106, "xl_lora": 7107, "xl_lokr": 7108, "xl_locon": 7109, "xl_loha": 7110, "xl_peft": 7111}
PEFT_PREFIXES = ("unet.", "text_encoder.", "text_encoder_2.")     # diffusers / PEFT keys (SD: the first two)
XL_MORE = ("xl_locon", "xl_loha", "xl_peft")     # recorded after the first SDXL files (append-only fixtures)


# --- A1111's prompt parsing and key conversion (restated) -----------------------------------------

RE_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")
RE_X_PROJ = re.compile(r"(.*)_([qkv]_proj)$")
SUFFIX_CONVERSION = {"attentions": {}, "resnets": {"conv1": "in_layers_2", "conv2": "out_layers_3",
                                                   "norm1": "in_layers_0", "norm2": "out_layers_0",
                                                   "time_emb_proj": "emb_layers_1",
                                                   "conv_shortcut": "skip_connection"}}


def parse_prompt(prompt):
    """extra_networks.parse_prompt + ExtraNetworkParams + ExtraNetworkLora.activate's multipliers:
    (stripped prompt, [(name, te, unet, dyn)] of the lora tags in order)."""
    found = []

    def sub(m):
        if m.group(1) == "lora":
            items = m.group(2).split(":")
            positional, named = [], {}
            for item in items:
                parts = item.split("=", 2)
                if len(parts) == 2:
                    named[parts[0]] = parts[1]
                else:
                    positional.append(item)
            te = float(positional[1]) if len(positional) > 1 else 1.0
            te = float(named.get("te", te))
            unet = float(positional[2]) if len(positional) > 2 else te
            unet = float(named.get("unet", unet))
            dyn = int(positional[3]) if len(positional) > 3 else None
            dyn = int(named["dyn"]) if "dyn" in named else dyn
            found.append((positional[0], te, unet, dyn))
        return ""

    return RE_EXTRA_NET.sub(sub, prompt), found


def convert_diffusers_name_to_compvis(key, is_sd2=False):
    """networks.convert_diffusers_name_to_compvis (1.10), SD / SDXL branches."""
    def match(regex):
        r = re.match(regex, key)
        return None if not r else [int(x) if re.match(r"\d+", x) else x for x in r.groups()]
    if (m := match(r"lora_unet_conv_in(.*)")):
        return f"diffusion_model_input_blocks_0_0{m[0]}"
    if (m := match(r"lora_unet_conv_out(.*)")):
        return f"diffusion_model_out_2{m[0]}"
    if (m := match(r"lora_unet_time_embedding_linear_(\d+)(.*)")):
        return f"diffusion_model_time_embed_{m[0] * 2 - 2}{m[1]}"
    if (m := match(r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)")):
        suffix = SUFFIX_CONVERSION.get(m[1], {}).get(m[3], m[3])
        return f"diffusion_model_input_blocks_{1 + m[0] * 3 + m[2]}_{1 if m[1] == 'attentions' else 0}_{suffix}"
    if (m := match(r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)")):
        suffix = SUFFIX_CONVERSION.get(m[0], {}).get(m[2], m[2])
        return f"diffusion_model_middle_block_{1 if m[0] == 'attentions' else m[1] * 2}_{suffix}"
    if (m := match(r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)")):
        suffix = SUFFIX_CONVERSION.get(m[1], {}).get(m[3], m[3])
        return f"diffusion_model_output_blocks_{m[0] * 3 + m[2]}_{1 if m[1] == 'attentions' else 0}_{suffix}"
    if (m := match(r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv")):
        return f"diffusion_model_input_blocks_{3 + m[0] * 3}_0_op"
    if (m := match(r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv")):
        return f"diffusion_model_output_blocks_{2 + m[0] * 3}_{2 if m[0] > 0 else 1}_conv"
    if (m := match(r"lora_te_text_model_encoder_layers_(\d+)_(.+)")):
        assert not is_sd2
        return f"transformer_text_model_encoder_layers_{m[0]}_{m[1]}"
    if (m := match(r"lora_te2_text_model_encoder_layers_(\d+)_(.+)")):
        if "mlp_fc1" in m[1]:
            return f"1_model_transformer_resblocks_{m[0]}_{m[1].replace('mlp_fc1', 'mlp_c_fc')}"
        if "mlp_fc2" in m[1]:
            return f"1_model_transformer_resblocks_{m[0]}_{m[1].replace('mlp_fc2', 'mlp_c_proj')}"
        return f"1_model_transformer_resblocks_{m[0]}_{m[1].replace('self_attn', 'attn')}"
    return key


def a1111_lookup(part, layer_names):
    """load_network's lookup chain for one module part: (sd_key, the name of the layer it lands on)
    or (key, None) when nothing matches. layer_names: the set of network_layer_mapping names."""
    key = convert_diffusers_name_to_compvis(part)
    if key in layer_names:
        return key, key
    m = RE_X_PROJ.match(key)
    if m and m.group(1) in layer_names:
        return key, m.group(1)
    if "lora_unet" in part:
        key = part.replace("lora_unet", "diffusion_model")
        return key, (key if key in layer_names else None)
    if "lora_te1_text_model" in part:
        key = part.replace("lora_te1_text_model", "0_transformer_text_model")
        if key in layer_names:
            return key, key
        key = part.replace("lora_te1_text_model", "transformer_text_model")
        return key, (key if key in layer_names else None)
    return key, None


def addnet_hash(path):
    """modules/hashes.py addnet_hash_safetensors."""
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    return fs.sha256_bytes(b[8 + n:])


def a1111_hash(path):
    return addnet_hash(path) if path.lower().endswith(".safetensors") else fs.sha256_file(path)


# --- A1111's updown (restated from network_lora / network_hada / network_lokr / network.py) --------

def rebuild_conventional(up, down, shape):
    return (up.reshape(up.size(0), -1) @ down.reshape(down.size(0), -1)).reshape(shape)


def module_kind(w):
    if "lora_up.weight" in w and "lora_down.weight" in w:
        return "lora"
    if all(k in w for k in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")):
        return "loha"
    if ("lokr_w1" in w or "lokr_w1_a" in w) and ("lokr_w2" in w or "lokr_w2_a" in w):
        return "lokr"
    raise AssertionError(sorted(w))


def dim_of(kind, w):
    if kind == "lora":
        return w["lora_down.weight"].shape[0]
    if kind == "loha":
        return w["hada_w1_b"].shape[0]
    dim = None
    if "lokr_w1_b" in w:
        dim = w["lokr_w1_b"].shape[0]
    if "lokr_w2_b" in w:
        dim = w["lokr_w2_b"].shape[0]
    return dim


def calc_scale(kind, w):
    dim = dim_of(kind, w)
    if "scale" in w:
        return w["scale"].item()
    if dim is not None and "alpha" in w:
        return w["alpha"].item() / dim
    return 1.0


def calc_updown(kind, w, orig_weight, multiplier):
    """calc_updown + finalize_updown of one module for orig_weight (float32); w: the file's tensors."""
    f = {k: v.to(torch.float32) for k, v in w.items()}     # devices.dtype float32 (--no-half)
    if kind == "lora":
        up, down = f["lora_up.weight"], f["lora_down.weight"]
        if orig_weight.dim() == 2:       # a Linear: create_module keeps [out, r] / [r, in]
            up, down = up.reshape(up.shape[0], -1), down.reshape(down.shape[0], -1)
        output_shape = [up.size(0), down.size(1)]
        if down.dim() == 4:
            output_shape += list(down.shape[2:])
        updown = rebuild_conventional(up, down, output_shape)
    elif kind == "loha":
        w1a, w1b, w2a, w2b = f["hada_w1_a"], f["hada_w1_b"], f["hada_w2_a"], f["hada_w2_b"]
        output_shape = [w1a.size(0), w1b.size(1)]
        if w1b.dim() == 4:
            output_shape += list(w1b.shape[2:])
        updown = rebuild_conventional(w1a, w1b, output_shape) * rebuild_conventional(w2a, w2b, output_shape)
    else:
        w1 = f["lokr_w1"] if "lokr_w1" in f else f["lokr_w1_a"] @ f["lokr_w1_b"]
        w2 = f["lokr_w2"] if "lokr_w2" in f else f["lokr_w2_a"] @ f["lokr_w2_b"]
        output_shape = [w1.size(0) * w2.size(0), w1.size(1) * w2.size(1)]
        if orig_weight.dim() == 4:
            output_shape = list(orig_weight.shape)
        if w2.dim() == 4:
            w1 = w1.unsqueeze(2).unsqueeze(2)
        updown = torch.kron(w1, w2.contiguous()).reshape(output_shape)
    if len(output_shape) == 4:
        updown = updown.reshape(output_shape)
    if orig_weight.numel() == updown.numel():
        updown = updown.reshape(orig_weight.shape)
    updown = updown * calc_scale(kind, w)
    return updown * multiplier


def is_te_key(sd_key):
    """NetworkModule.multiplier: the te multiplier when "transformer" occurs in sd_key[:20]."""
    return "transformer" in sd_key[:20]


# --- the models' module maps ----------------------------------------------------------------------

def underscored(modules, prefix):
    out = {}
    for name, m in modules.named_modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            k = prefix + name.replace(".", "_")
            assert k not in out, k
            out[k] = (name, m)
    return out


def ldm_module_names(unet, convert):
    """{diffusers module name: LDM module name} of the UNet's weight-carrying modules."""
    sd = {k: k for k in unet.state_dict()}
    ldm = convert(sd, dict(unet.config))
    out = {}
    for lk, dk in ldm.items():
        if dk.endswith(".weight"):
            out[dk[:-len(".weight")]] = lk[:-len(".weight")]
    return out


class Target:
    """One module of a reference model a network module lands on: the torch modules to add the
    updown to (a diffusers / transformers Linear or Conv2d, and for SDXL's te2 also the OpenCLIP
    MultiheadAttention in_proj chunk or Linear), the A1111 sd_key and layer name."""

    def __init__(self, where, diffusers_name, params, sd_key, a1111_layer):
        self.where, self.diffusers_name, self.params = where, diffusers_name, params
        self.sd_key, self.a1111_layer = sd_key, a1111_layer


class SDModel:
    """tiny-sd (the hires fixtures' Model: CLIP eager, UNet/VAE AttnProcessor) with A1111's names."""

    def __init__(self):
        self.m = mhf.Model()
        self.family = "sd"
        unet, te = self.m.unet, self.m.te
        self.parts = {"unet": unet, "te": te}
        self.ldm = ldm_module_names(unet, fs.unet_diffusers_to_ldm)
        self.by_kohya = {**underscored(unet, "lora_unet_"), **underscored(te, "lora_te_")}
        self.modules = {"unet": dict(unet.named_modules()), "te": dict(te.named_modules())}
        # network_layer_mapping names of A1111's LDM model (weight-carrying layers)
        self.layer_names = {"diffusion_model_" + v.replace(".", "_") for v in self.ldm.values()}
        self.layer_names |= {"transformer_" + n.replace(".", "_") for n, mod in te.named_modules()
                             if isinstance(mod, torch.nn.Linear)}
        self.backup = {k: copy.deepcopy(p.state_dict()) for k, p in self.parts.items()}

    def target(self, part):
        """Structural target of a kohya module part (lora_unet_<diffusers>, lora_te_<te>) or a PEFT
        prefix (unet.<diffusers>, text_encoder.<te>)."""
        if part.startswith("unet."):
            where, name = "unet", part[len("unet."):]
        elif part.startswith("text_encoder."):
            where, name = "te", part[len("text_encoder."):]
        else:
            name, _ = self.by_kohya[part]
            where = "unet" if part.startswith("lora_unet_") else "te"
        mod = self.modules[where][name]
        if where == "unet":
            sd_key = "diffusion_model_" + self.ldm[name].replace(".", "_")
        else:
            sd_key = "transformer_" + name.replace(".", "_")
        return Target(where, name, [(mod, "weight", None)], sd_key, sd_key)

    def restore(self):
        for k, p in self.parts.items():
            p.load_state_dict(self.backup[k])
        self.m.conds = {}

    def outputs(self, inputs):
        with torch.no_grad():
            unet = self.m.unet(inputs["latent"], torch.tensor([TIMESTEP]),
                               encoder_hidden_states=inputs["context"]).sample
            te = self.m.te(input_ids=torch.asarray([inputs["ids"]])).last_hidden_state
        return {"unet": unet, "te_last_hidden": te}


class SDXLModel:
    """tiny-sdxl as make_family_fixtures.py loads it (diffusers UNet and CLIP-L, the single file's
    OpenCLIP bigG, the diffusers text_encoder_2 kept equal to it)."""

    def __init__(self, models):
        m = models["sdxl"]
        self.mm = m
        self.family = "sdxl"
        unet, clip_l, og, te2 = m["unet"], m["encoders"]["clip_l"], m["encoders"]["open_clip"], \
            m["encoders"]["text_encoder_2"]
        self.parts = {"unet": unet, "clip_l": clip_l, "open_clip": og, "te2": te2}
        self.ldm = ldm_module_names(unet, mff.unet_to_ldm)
        self.from_ldm = {v: k for k, v in self.ldm.items()}
        self.modules = {k: dict(p.named_modules()) for k, p in self.parts.items()}
        self.layer_names = {"diffusion_model_" + v.replace(".", "_") for v in self.ldm.values()}
        self.layer_names |= {"0_transformer_" + n.replace(".", "_") for n, mod in clip_l.named_modules()
                             if isinstance(mod, torch.nn.Linear)}
        self.layer_names |= {"1_model_" + n.replace(".", "_") for n, mod in og.named_modules()
                             if isinstance(mod, (torch.nn.Linear, torch.nn.MultiheadAttention))}
        self.kohya_unet = {"lora_unet_" + v.replace(".", "_"): v for v in self.ldm.values()}
        self.kohya_te1 = {k: n for k, (n, _) in underscored(clip_l, "lora_te1_").items()}
        self.kohya_te2 = {k: n for k, (n, _) in underscored(te2, "lora_te2_").items()}
        self.backup = {k: copy.deepcopy(p.state_dict()) for k, p in self.parts.items()}

    def target(self, part):
        """Structural target of a kohya / LyCORIS module part (lora_unet_<LDM name>, lora_te1_<CLIP-L>,
        lora_te2_<text_encoder_2>) or a PEFT prefix (unet.<diffusers>, text_encoder.<CLIP-L>,
        text_encoder_2.<text_encoder_2>)."""
        if part in self.kohya_unet or part.startswith("unet."):
            if part.startswith("unet."):
                name = part[len("unet."):]
                ldm = self.ldm[name]
            else:
                ldm = self.kohya_unet[part]
                name = self.from_ldm[ldm]
            sd_key = "diffusion_model_" + ldm.replace(".", "_")
            return Target("unet", name, [(self.modules["unet"][name], "weight", None)], sd_key, sd_key)
        if part in self.kohya_te1 or part.startswith("text_encoder."):
            name = part[len("text_encoder."):] if part.startswith("text_encoder.") else self.kohya_te1[part]
            sd_key = "0_transformer_" + name.replace(".", "_")
            return Target("clip_l", name, [(self.modules["clip_l"][name], "weight", None)], sd_key, sd_key)
        name = part[len("text_encoder_2."):] if part.startswith("text_encoder_2.") else self.kohya_te2[part]
        m = re.match(r"text_model\.encoder\.layers\.(\d+)\.(self_attn\.([qkv])_proj|self_attn\.out_proj|mlp\.fc1|mlp\.fc2)$",
                     name)
        i, what, qkv = int(m.group(1)), m.group(2), m.group(3)
        block = self.modules["open_clip"][f"transformer.resblocks.{i}"]
        if qkv:
            oc = (block.attn, "in_proj_weight", "qkv".index(qkv))
            sd_key = f"1_model_transformer_resblocks_{i}_attn_{qkv}_proj"
            layer = f"1_model_transformer_resblocks_{i}_attn"
        else:
            sub = {"self_attn.out_proj": block.attn.out_proj, "mlp.fc1": block.mlp.c_fc, "mlp.fc2": block.mlp.c_proj}[what]
            oc = (sub, "weight", None)
            ocname = {"self_attn.out_proj": "attn_out_proj", "mlp.fc1": "mlp_c_fc", "mlp.fc2": "mlp_c_proj"}[what]
            sd_key = layer = f"1_model_transformer_resblocks_{i}_{ocname}"
            if what == "self_attn.out_proj":
                layer = f"1_model_transformer_resblocks_{i}_attn"    # applied through the MHA
        return Target("te2", name, [(self.modules["te2"][name], "weight", None), oc], sd_key, layer)

    def restore(self):
        for k, p in self.parts.items():
            p.load_state_dict(self.backup[k])

    def outputs(self, inputs):
        clip_l, og, te2 = self.parts["clip_l"], self.parts["open_clip"], self.parts["te2"]
        with torch.no_grad():
            unet = self.parts["unet"](inputs["latent"], torch.tensor([TIMESTEP]),
                                      encoder_hidden_states=inputs["context"],
                                      added_cond_kwargs={"text_embeds": inputs["y"][:, :mff.SDXL_POOLED],
                                                         "time_ids": inputs["time_ids"]}).sample
            l_pen = clip_l(input_ids=torch.asarray([inputs["ids_l"]]), output_hidden_states=True).hidden_states[-2]
            tokens = torch.asarray([inputs["ids_g"]])
            g_pen, pooled, _ = og.encode_sdxl(tokens)
            out = te2(input_ids=tokens, output_hidden_states=True)
            diff = max((out.hidden_states[-2] - g_pen).abs().max().item(), (out.text_embeds - pooled).abs().max().item())
        assert diff < 1e-5, diff
        return {"unet": unet, "clip_l_penultimate": l_pen, "clip_g_penultimate": g_pen, "clip_g_pooled": pooled}


# --- reading a network file as A1111 does, and merging it -------------------------------------------

def group_modules(sd):
    """load_network's grouping: {module part: {network part: tensor}} (PEFT keys grouped by their
    module prefix for the structural path), bundle embeddings apart."""
    groups, bundle = {}, {}
    for key, w in sd.items():
        if key.startswith(PEFT_PREFIXES):
            part, net_part = key.rsplit(".", 2)[0], ".".join(key.rsplit(".", 2)[1:])
            net_part = net_part.replace("lora_A", "lora_down").replace("lora_B", "lora_up")
        else:
            part, _, net_part = key.partition(".")
        if part == "bundle_emb":
            emb, vec = net_part.split(".", 1)
            d = bundle.setdefault(emb, {})
            if vec.split(".")[0] == "string_to_param":
                d["string_to_param"] = {vec.split(".", 1)[1]: w}
            else:
                d[vec] = w
            continue
        groups.setdefault(part, {})[net_part] = w
    return groups, bundle


class Network:
    def __init__(self, model, name, path):
        self.name, self.path = name, path
        if path.endswith(".safetensors"):
            sd = safetensors.torch.load_file(path)
        else:
            sd = torch.load(path, weights_only=True)
        self.groups, self.bundle = group_modules(sd)
        self.modules = []
        for part in sorted(self.groups):
            w = self.groups[part]
            t = model.target(part)
            kind = module_kind(w)
            if part.startswith(PEFT_PREFIXES):
                literal, literal_layer = part.partition(".")[0], None       # A1111 1.10 matches nothing
            else:
                literal, literal_layer = a1111_lookup(part, model.layer_names)
            self.modules.append({"part": part, "w": w, "kind": kind, "t": t, "literal": literal,
                                 "literal_layer": literal_layer})

    def apply(self, te, unet):
        """network_apply_weights for every module of this network: weight = weight + updown."""
        with torch.no_grad():
            for mod in self.modules:
                mult = te if is_te_key(mod["t"].sd_key) else unet
                for module, attr, chunk in mod["t"].params:
                    p = getattr(module, attr)
                    if chunk is None:
                        p.copy_(p + calc_updown(mod["kind"], mod["w"], p, mult))
                    else:
                        n = p.shape[0] // 3
                        orig = p[chunk * n:(chunk + 1) * n]
                        p[chunk * n:(chunk + 1) * n] = orig + calc_updown(mod["kind"], mod["w"], orig, mult)


def outputs_json(out):
    """enc32 of each output; the text-encoder states (everything but "unet" and the pooled vector) cut to
    the first TE_POSITIONS token positions."""
    return {k: enc32(v if k == "unet" or v.dim() == 2 else v[:, :TE_POSITIONS].contiguous()) for k, v in out.items()}


def run_with(model, nets, inputs):
    """The model's outputs with [(Network, te, unet)] merged in order; restores the weights after."""
    for net, te, unet in nets:
        net.apply(te, unet)
    out = model.outputs(inputs)
    model.restore()
    return out


# --- making the files -----------------------------------------------------------------------------

def randn(g, shape, scale):
    return torch.randn(shape, generator=g, dtype=torch.float32) * scale


def sd_transformer_linear(name):
    return ".attentions." in name and re.search(
        r"(proj_in|proj_out|attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.0\.proj|ff\.net\.2)$", name) is not None


def te_linear(name):
    return re.search(r"layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$", name) is not None


def sd_resnet_child(name):
    return re.search(r"(resnets\.\d+\.(conv1|conv2|conv_shortcut|time_emb_proj)|(down|up)samplers\.0\.conv)$",
                     name) is not None


def kohya_lora_tensors(g, prefix, module, dim, alpha, dtype):
    w = module.weight
    out_f, in_f = w.shape[0], w.shape[1]
    if w.dim() == 4:
        k = w.shape[2:]
        down = randn(g, (dim, in_f, *k), 0.5 / (in_f * k[0] * k[1]) ** 0.5)
        up = randn(g, (out_f, dim, 1, 1), 0.15)
    else:
        down = randn(g, (dim, in_f), 0.5 / in_f ** 0.5)
        up = randn(g, (out_f, dim), 0.15)
    t = {f"{prefix}.lora_down.weight": down.to(dtype), f"{prefix}.lora_up.weight": up.to(dtype)}
    if alpha is not None:
        t[f"{prefix}.alpha"] = torch.tensor(float(alpha)).to(dtype)
    return t


def kohya_metadata(model_name, base, dim, alpha, module="networks.lora", args=None):
    md = {"ss_network_module": module, "ss_network_dim": str(dim), "ss_network_alpha": str(alpha),
          "ss_base_model_version": base, "ss_sd_model_name": model_name, "ss_v2": "False"}
    if args is not None:
        md["ss_network_args"] = json.dumps(args)
    return md


def save(tensors, name, metadata=None, with_sshs=False):
    path = os.path.join(LORA_DIR, name)
    tensors = {k: v.contiguous() for k, v in sorted(tensors.items())}
    md = dict(metadata or {})
    if with_sshs:
        # sd-scripts precalculate_safetensors_hashes: the addnet hash of the tensors saved with the ss_*
        # metadata only; the data bytes are the same as the final file's, so it equals its addnet hash
        b = safetensors.torch.save(tensors, {k: v for k, v in md.items() if k.startswith("ss_")})
        n = int.from_bytes(b[:8], "little")
        md["sshs_model_hash"] = fs.sha256_bytes(b[8 + n:])
    safetensors.torch.save_file(tensors, path, metadata=md or None)
    sort_header(path)
    return path


def sort_header(path):
    """safetensors writes the metadata in hash-map order (it changes from run to run): rewrite the
    header JSON with sorted keys, the same length (space padding as safetensors pads), so the file is
    byte-reproducible; the data and the addnet hash are unchanged."""
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    text = json.dumps(json.loads(b[8:8 + n]), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    assert len(text) <= n
    with open(path, "wb") as f:
        f.write(b[:8] + text + b" " * (n - len(text)) + b[8 + n:])


def make_sd_files(sdm):
    unet, te = sdm.m.unet, sdm.m.te
    umods = [(n, m) for n, m in unet.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    tmods = [(n, m) for n, m in te.named_modules() if isinstance(m, torch.nn.Linear)]
    attn = sorted((n, m) for n, m in umods if sd_transformer_linear(n))
    res = sorted((n, m) for n, m in umods if sd_resnet_child(n))
    tel = sorted((n, m) for n, m in tmods if te_linear(n))
    assert len(attn) == 48 and len(tel) == 12, (len(attn), len(tel))
    uk = lambda n: "lora_unet_" + n.replace(".", "_")  # noqa: E731
    tk = lambda n: "lora_te_" + n.replace(".", "_")    # noqa: E731
    paths = {}

    # 1. kohya LoRA
    g = torch.Generator().manual_seed(SEEDS["sd_lora"])
    t = {}
    for n, m in attn:
        t.update(kohya_lora_tensors(g, uk(n), m, 4, 2, torch.float16))
    for n, m in tel:
        t.update(kohya_lora_tensors(g, tk(n), m, 4, 2, torch.float16))
    md = kohya_metadata("tiny-sd", "sd_v1", 4, 2.0)
    md["ss_output_name"] = "sd_lora"
    paths["sd_lora"] = save(t, "sd_lora.safetensors", md, with_sshs=True)
    lora_tensors = t

    # 2. LoCon
    g = torch.Generator().manual_seed(SEEDS["sd_locon"])
    t = {}
    for n, m in attn + tel:
        t.update(kohya_lora_tensors(g, uk(n) if n in dict(attn) else tk(n), m, 4, 4, torch.float16))
    for n, m in res:
        conv3 = isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)
        t.update(kohya_lora_tensors(g, uk(n), m, 2 if conv3 else 4, 1.5 if conv3 else 4, torch.float16))
    paths["sd_locon"] = save(t, "sd_locon.safetensors", kohya_metadata(
        "tiny-sd", "sd_v1", 4, 4.0, args={"conv_dim": "2", "conv_alpha": "1.5"}))

    # 3. LoHa
    g = torch.Generator().manual_seed(SEEDS["sd_loha"])
    t = {}
    resconv = [(n, m) for n, m in res if re.search(r"resnets\.\d+\.conv[12]$", n)]
    for n, m in attn + tel + resconv:
        key = tk(n) if n.startswith("text_model") else uk(n)
        w = m.weight
        out_f, in_all = w.shape[0], int(np.prod(w.shape[1:]))
        r, alpha = 2, (2.0 if w.dim() == 4 else 1.0)
        t[f"{key}.hada_w1_a"] = randn(g, (out_f, r), 0.5)
        t[f"{key}.hada_w1_b"] = randn(g, (r, in_all), 0.5 / in_all ** 0.25)
        t[f"{key}.hada_w2_a"] = randn(g, (out_f, r), 0.5)
        t[f"{key}.hada_w2_b"] = randn(g, (r, in_all), 0.5 / in_all ** 0.25)
        t[f"{key}.alpha"] = torch.tensor(alpha)
    paths["sd_loha"] = save(t, "sd_loha.safetensors", {
        "ss_network_module": "lycoris.kohya", "ss_network_dim": "2", "ss_network_alpha": "1",
        "ss_network_args": json.dumps({"algo": "loha", "conv_dim": "2", "conv_alpha": "2"}),
        "ss_base_model_version": "sd_v1", "ss_sd_model_name": "tiny-sd"})

    # 4. LoKr
    g = torch.Generator().manual_seed(SEEDS["sd_lokr"])
    t = {}
    for n, m in attn + tel:
        if isinstance(m, torch.nn.Conv2d):
            continue            # proj_in / proj_out are 1x1 convs on tiny-sd: Linears only here
        key = tk(n) if n.startswith("text_model") else uk(n)
        out_f, in_f = m.weight.shape
        t[f"{key}.lokr_w1"] = randn(g, (4, 4), 0.5)
        if ".attn" in n:
            t[f"{key}.lokr_w2_a"] = randn(g, (out_f // 4, 2), 0.3)
            t[f"{key}.lokr_w2_b"] = randn(g, (2, in_f // 4), 0.3 / (in_f // 4) ** 0.5)
            t[f"{key}.alpha"] = torch.tensor(3.0)
        else:
            t[f"{key}.lokr_w2"] = randn(g, (out_f // 4, in_f // 4), 0.1 / (in_f // 4) ** 0.5)
            t[f"{key}.alpha"] = torch.tensor(4.0)
    paths["sd_lokr"] = save(t, "sd_lokr.safetensors", {
        "ss_network_module": "lycoris.kohya", "ss_network_dim": "2", "ss_network_alpha": "3",
        "ss_network_args": json.dumps({"algo": "lokr", "factor": "4"}),
        "ss_base_model_version": "sd_v1", "ss_sd_model_name": "tiny-sd"})

    # 5. PEFT, through diffusers' save_lora_weights
    g = torch.Generator().manual_seed(SEEDS["sd_peft"])
    ul, tl = {}, {}
    for n, m in attn:
        if re.search(r"attn[12]\.(to_q|to_k|to_v|to_out\.0)$", n):
            out_f, in_f = m.weight.shape
            ul[f"{n}.lora_A.weight"] = randn(g, (4, in_f), 0.5 / in_f ** 0.5)
            ul[f"{n}.lora_B.weight"] = randn(g, (out_f, 4), 0.15)
    for n, m in tel:
        if "self_attn" in n:
            out_f, in_f = m.weight.shape
            tl[f"{n}.lora_A.weight"] = randn(g, (4, in_f), 0.5 / in_f ** 0.5)
            tl[f"{n}.lora_B.weight"] = randn(g, (out_f, 4), 0.15)
    diffusers.StableDiffusionPipeline.save_lora_weights(LORA_DIR, unet_lora_layers=ul, text_encoder_lora_layers=tl,
                                                        weight_name="sd_peft.safetensors", safe_serialization=True)
    paths["sd_peft"] = os.path.join(LORA_DIR, "sd_peft.safetensors")
    sort_header(paths["sd_peft"])

    # 6. a kohya LoRA bundling an embedding; one module without alpha
    g = torch.Generator().manual_seed(SEEDS["sd_bundle"])
    t = {}
    few = [(n, m) for n, m in attn if n.startswith("down_blocks.0.") and re.search(r"attn1\.to_[qkv]$", n)]
    few += [(n, m) for n, m in tel if n.startswith("text_model.encoder.layers.0.self_attn.") and n[-6:] in ("q_proj", "k_proj")]
    for i, (n, m) in enumerate(few):
        key = tk(n) if n.startswith("text_model") else uk(n)
        t.update(kohya_lora_tensors(g, key, m, 2, None if i == 0 else 1, torch.float16))
    t["bundle_emb.tinybundle.string_to_param.*"] = randn(g, (2, 32), fs.EMBEDDING_SCALE).to(torch.float16)
    paths["sd_bundle"] = save(t, "sd_bundle.safetensors", kohya_metadata("tiny-sd", "sd_v1", 2, 1.0))

    # 9. broken and .pt
    with open(paths["sd_lora"], "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    cut = 8 + n + (len(b) - 8 - n) // 2
    paths["broken"] = os.path.join(LORA_DIR, "broken.safetensors")
    with open(paths["broken"], "wb") as f:
        f.write(b[:cut])
    paths["sd_lora_pt"] = os.path.join(LORA_DIR, "sd_lora_pt.pt")
    torch.save({k: v for k, v in sorted(lora_tensors.items())}, paths["sd_lora_pt"])
    return paths, {"broken_header_bytes": 8 + n, "broken_bytes": cut, "broken_full_bytes": len(b)}


def make_xl_files(xm):
    unet, clip_l, te2 = xm.parts["unet"], xm.parts["clip_l"], xm.parts["te2"]
    paths = {}
    attn = sorted((ldm, xm.modules["unet"][d]) for d, ldm in xm.ldm.items()
                  if re.search(r"\.\d+\.1\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.0\.proj|ff\.net\.2))$",
                               ldm) or re.search(r"^middle_block\.1\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.0\.proj|ff\.net\.2))$", ldm))
    t1 = sorted((n, m) for n, m in clip_l.named_modules() if isinstance(m, torch.nn.Linear) and te_linear(n))
    t2 = sorted((n, m) for n, m in te2.named_modules() if isinstance(m, torch.nn.Linear) and te_linear(n))
    assert len(attn) == 6 * 2 * 10 + 12 and len(t1) == 18 and len(t2) == 18, (len(attn), len(t1), len(t2))
    g = torch.Generator().manual_seed(SEEDS["xl_lora"])
    t = {}
    for ldm, m in attn:
        t.update(kohya_lora_tensors(g, "lora_unet_" + ldm.replace(".", "_"), m, 4, 8, torch.float16))
    for n, m in t1:
        t.update(kohya_lora_tensors(g, "lora_te1_" + n.replace(".", "_"), m, 4, 8, torch.float16))
    for n, m in t2:
        t.update(kohya_lora_tensors(g, "lora_te2_" + n.replace(".", "_"), m, 4, 8, torch.float16))
    md = kohya_metadata("tiny-sdxl", "sdxl_base_v1-0", 4, 8.0)
    md["ss_output_name"] = "xl_lora"
    paths["xl_lora"] = save(t, "xl_lora.safetensors", md, with_sshs=True)

    g = torch.Generator().manual_seed(SEEDS["xl_lokr"])
    t = {}
    sel = [("lora_unet_" + ldm.replace(".", "_"), m) for ldm, m in attn
           if re.match(r"input_blocks\.4\.1\.transformer_blocks\.0\.attn1\.to_[qkv]$", ldm)]
    sel += [("lora_te1_" + n.replace(".", "_"), m) for n, m in t1 if re.search(r"layers\.0\.self_attn\.[qk]_proj$", n)]
    sel += [("lora_te2_" + n.replace(".", "_"), m) for n, m in t2 if re.search(r"layers\.0\.self_attn\.", n)]
    for i, (key, m) in enumerate(sel):
        out_f, in_f = m.weight.shape
        t[f"{key}.lokr_w1"] = randn(g, (2, 2), 0.5)
        if i % 2 == 0:
            t[f"{key}.lokr_w2_a"] = randn(g, (out_f // 2, 2), 0.3)
            t[f"{key}.lokr_w2_b"] = randn(g, (2, in_f // 2), 0.3 / (in_f // 2) ** 0.5)
            t[f"{key}.alpha"] = torch.tensor(1.0)
        else:
            t[f"{key}.lokr_w2"] = randn(g, (out_f // 2, in_f // 2), 0.2 / (in_f // 2) ** 0.5)
            t[f"{key}.alpha"] = torch.tensor(2.0)
    paths["xl_lokr"] = save(t, "xl_lokr.safetensors", {
        "ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps({"algo": "lokr", "factor": "2"}),
        "ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "tiny-sdxl"})
    paths.update(make_xl_more_files(xm, attn, t1, t2))
    return paths


def make_xl_more_files(xm, attn, t1, t2):
    """xl_locon, xl_loha, xl_peft (each from its own seed: xl_lora / xl_lokr do not change)."""
    paths = {}
    uk = lambda ldm: "lora_unet_" + ldm.replace(".", "_")   # noqa: E731  (sd-scripts' SDXL: LDM names)
    # LoCon: xl_lora's Linears (dim 2, alpha 4: scale 2) + the ResnetBlock2D / Downsample2D / Upsample2D children of
    # sd-scripts' sdxl_original_unet: in_layers.2 / out_layers.3 (3x3: conv_dim 2, conv_alpha 1.5),
    # skip_connection (1x1) and emb_layers.1 (Linear) with the linear dim / alpha, op, conv (3x3)
    res = sorted((ldm, xm.modules["unet"][d]) for d, ldm in xm.ldm.items()
                 if re.search(r"^(input_blocks\.\d+\.\d+|middle_block\.\d+|output_blocks\.\d+\.\d+)\."
                              r"(in_layers\.2|out_layers\.3|emb_layers\.1|skip_connection|op|conv)$", ldm))
    assert len(res) == 12 * 3 + 7 + 2, len(res)
    assert "input_blocks.3.0.op" in dict(res) and "output_blocks.2.2.conv" in dict(res)
    g = torch.Generator().manual_seed(SEEDS["xl_locon"])
    t = {}
    for ldm, m in attn:
        t.update(kohya_lora_tensors(g, uk(ldm), m, 2, 4, torch.float16))
    for n, m in t1:
        t.update(kohya_lora_tensors(g, "lora_te1_" + n.replace(".", "_"), m, 2, 4, torch.float16))
    for n, m in t2:
        t.update(kohya_lora_tensors(g, "lora_te2_" + n.replace(".", "_"), m, 2, 4, torch.float16))
    for ldm, m in res:
        conv3 = isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)
        t.update(kohya_lora_tensors(g, uk(ldm), m, 2, 1.5 if conv3 else 4, torch.float16))
    md = kohya_metadata("tiny-sdxl", "sdxl_base_v1-0", 2, 4.0, args={"conv_dim": "2", "conv_alpha": "1.5"})
    md["ss_output_name"] = "xl_locon"
    paths["xl_locon"] = save(t, "xl_locon.safetensors", md)

    # LoHa: some Linears and convs of the UNet, some Linears of both text encoders (te2 attention with all
    # of q, k, v, out_proj, as A1111 needs for OpenCLIP's MultiheadAttention)
    umods = {ldm: xm.modules["unet"][d] for d, ldm in xm.ldm.items()}
    t1d, t2d = dict(t1), dict(t2)
    tb = "input_blocks.4.1.transformer_blocks.0."
    sel = [(uk(l), umods[l]) for l in (
        tb + "attn1.to_q", tb + "attn1.to_k", tb + "attn1.to_v", tb + "attn1.to_out.0", tb + "attn2.to_k",
        tb + "attn2.to_v", tb + "ff.net.2", "middle_block.1.proj_in", "middle_block.1.proj_out",
        "output_blocks.0.1.transformer_blocks.1.attn1.to_out.0",
        "input_blocks.1.0.in_layers.2", "input_blocks.3.0.op", "input_blocks.4.0.out_layers.3",
        "input_blocks.4.0.skip_connection", "middle_block.0.in_layers.2", "output_blocks.2.2.conv",
        "output_blocks.3.0.in_layers.2")]
    sel += [("lora_te1_" + n.replace(".", "_"), t1d[n]) for n in (
        "text_model.encoder.layers.0.self_attn.q_proj", "text_model.encoder.layers.0.self_attn.k_proj",
        "text_model.encoder.layers.0.self_attn.v_proj", "text_model.encoder.layers.0.self_attn.out_proj",
        "text_model.encoder.layers.0.mlp.fc1", "text_model.encoder.layers.1.mlp.fc2")]
    sel += [("lora_te2_" + n.replace(".", "_"), t2d[n]) for n in
            [f"text_model.encoder.layers.{i}.self_attn.{x}" for i in (0, 1) for x in ("q_proj", "k_proj", "v_proj", "out_proj")]
            + ["text_model.encoder.layers.0.mlp.fc2", "text_model.encoder.layers.2.mlp.fc1", "text_model.encoder.layers.2.mlp.fc2"]]
    g = torch.Generator().manual_seed(SEEDS["xl_loha"])
    t = {}
    for key, m in sel:
        w = m.weight
        out_f, in_all = w.shape[0], int(np.prod(w.shape[1:]))
        r, alpha = 2, (2.0 if w.dim() == 4 else 1.0)
        t[f"{key}.hada_w1_a"] = randn(g, (out_f, r), 0.5)
        t[f"{key}.hada_w1_b"] = randn(g, (r, in_all), 0.5 / in_all ** 0.25)
        t[f"{key}.hada_w2_a"] = randn(g, (out_f, r), 0.5)
        t[f"{key}.hada_w2_b"] = randn(g, (r, in_all), 0.5 / in_all ** 0.25)
        t[f"{key}.alpha"] = torch.tensor(alpha)
    paths["xl_loha"] = save(t, "xl_loha.safetensors", {
        "ss_network_module": "lycoris.kohya", "ss_network_dim": "2", "ss_network_alpha": "1",
        "ss_network_args": json.dumps({"algo": "loha", "conv_dim": "2", "conv_alpha": "2"}),
        "ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "tiny-sdxl"})

    # PEFT, through diffusers' StableDiffusionXLPipeline.save_lora_weights: r 2, no alpha (scale 1), f32;
    # the UNet's attention q/k/v/out (diffusers names), both text encoders' q/k/v/out_proj
    g = torch.Generator().manual_seed(SEEDS["xl_peft"])
    ul, tl1, tl2 = {}, {}, {}
    for n in sorted(d for d in xm.ldm if re.search(r"attn[12]\.(to_q|to_k|to_v|to_out\.0)$", d)):
        out_f, in_f = xm.modules["unet"][n].weight.shape
        ul[f"{n}.lora_A.weight"] = randn(g, (2, in_f), 0.5 / in_f ** 0.5)
        ul[f"{n}.lora_B.weight"] = randn(g, (out_f, 2), 0.2)
    for tl, mods in ((tl1, t1), (tl2, t2)):
        for n, m in mods:
            if "self_attn" in n:
                out_f, in_f = m.weight.shape
                tl[f"{n}.lora_A.weight"] = randn(g, (2, in_f), 0.5 / in_f ** 0.5)
                tl[f"{n}.lora_B.weight"] = randn(g, (out_f, 2), 0.2)
    assert len(ul) == 2 * 8 * 12 and len(tl1) == len(tl2) == 2 * 4 * 3, (len(ul), len(tl1), len(tl2))
    diffusers.StableDiffusionXLPipeline.save_lora_weights(
        LORA_DIR, unet_lora_layers=ul, text_encoder_lora_layers=tl1, text_encoder_2_lora_layers=tl2,
        weight_name="xl_peft.safetensors", safe_serialization=True)
    paths["xl_peft"] = os.path.join(LORA_DIR, "xl_peft.safetensors")
    sort_header(paths["xl_peft"])
    return paths


# --- records ----------------------------------------------------------------------------------------

def read_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return header.get("__metadata__", {}), n


def file_record(net, path, model):
    md, n = read_metadata(path) if path.endswith(".safetensors") else ({}, None)
    full = a1111_hash(path)
    if "sshs_model_hash" in md:
        assert md["sshs_model_hash"] == full
    dtypes = sorted({str(v.dtype).replace("torch.", "") for w in net.groups.values() for v in w.values()})
    mods = []
    for mod in net.modules:
        t, w = mod["t"], mod["w"]
        layer = [p for p in t.params][0][0]
        orig = layer.weight
        rec = {"key": mod["part"], "kind": mod["kind"], "target": t.where, "module": t.diffusers_name,
               "a1111_sd_key": t.sd_key, "a1111_layer": t.a1111_layer,
               "a1111_literal": mod["literal"],
               "a1111_literal_ok": mod["literal"] == t.sd_key and mod["literal_layer"] is not None,
               "layer": "conv" if orig.dim() == 4 else "linear", "weight_shape": list(orig.shape),
               "tensors": {k: list(v.shape) for k, v in sorted(w.items())},
               "dim": dim_of(mod["kind"], w), "alpha": (w["alpha"].item() if "alpha" in w else None),
               "scale": calc_scale(mod["kind"], w),
               "multiplier": "te" if is_te_key(t.sd_key) else "unet"}
        mods.append(rec)
    rec = {"path": fs.rel(path), "bytes": os.path.getsize(path), "sha256": fs.sha256_file(path),
           "a1111_hash": full, "a1111_shorthash": full[:12],
           "hash_rule": "addnet (sha256 after the header)" if path.endswith(".safetensors") else "sha256 of the file",
           "header_bytes": n, "metadata": md, "dtypes": dtypes, "module_count": len(mods),
           "kinds": sorted({m["kind"] for m in mods}),
           "a1111_1_10_matched": sum(m["a1111_literal_ok"] and not m["key"].startswith(PEFT_PREFIXES)
                                     for m in mods),
           "modules": mods}
    if net.bundle:
        rec["bundle_embeddings"] = {k: {"string_to_param": {kk: enc32(vv.float()) for kk, vv in v["string_to_param"].items()}}
                                    for k, v in net.bundle.items()}
    return rec


def delta_record(net, part, te, unet, rows=None):
    mod = next(m for m in net.modules if m["part"] == part)
    t = mod["t"]
    module, attr, chunk = t.params[-1]
    p = getattr(module, attr)
    if chunk is not None:
        n = p.shape[0] // 3
        p = p[chunk * n:(chunk + 1) * n]
    mult = te if is_te_key(t.sd_key) else unet
    d = calc_updown(mod["kind"], mod["w"], p.detach(), mult)
    out = {"file": net.name, "key": part, "kind": mod["kind"], "te": te, "unet": unet, "multiplier_used": mult,
           "scale": calc_scale(mod["kind"], mod["w"]), "weight_shape": list(p.shape)}
    if rows is not None:
        out["rows"] = [0, rows]
        d = d[:rows]
    out["delta"] = enc32(d.contiguous())
    return out


def cross_check_diffusers(sdm, nets, inputs):
    """diffusers' own loading (load_lora_weights + fuse_lora per component) of sd_lora and sd_peft against
    this script's A1111 merge: max |a - b| / max |b| over the UNet output and the text-encoder state."""
    from transformers import CLIPTextModel
    from diffusers import UNet2DConditionModel, StableDiffusionPipeline, PNDMScheduler
    results = {}
    for name, te, un in (("sd_lora", 1.0, 1.0), ("sd_lora", 1.0, 0.5), ("sd_peft", 1.0, 1.0), ("sd_peft", 0.8, 0.5)):
        unet = UNet2DConditionModel.from_pretrained(mpf.MODEL, subfolder="unet", torch_dtype=torch.float32,
                                                    local_files_only=True).eval()
        tenc = CLIPTextModel.from_pretrained(mpf.MODEL, subfolder="text_encoder", dtype=torch.float32,
                                             attn_implementation="eager", local_files_only=True).eval()
        unet.set_attn_processor(AttnProcessor())
        pipe = StableDiffusionPipeline(vae=sdm.m.vae, text_encoder=tenc, tokenizer=None, unet=unet,
                                       scheduler=PNDMScheduler(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        pipe.load_lora_weights(nets[name].path, adapter_name="x")
        pipe.fuse_lora(components=["unet"], lora_scale=un)
        pipe.fuse_lora(components=["text_encoder"], lora_scale=te)
        with torch.no_grad():
            u = unet(inputs["latent"], torch.tensor([TIMESTEP]), encoder_hidden_states=inputs["context"]).sample
            z = tenc(input_ids=torch.asarray([inputs["ids"]])).last_hidden_state
        ours = run_with(sdm, [(nets[name], te, un)], inputs)
        ru = ((u - ours["unet"]).abs().max() / ours["unet"].abs().max()).item()
        rz = ((z - ours["te_last_hidden"]).abs().max() / ours["te_last_hidden"].abs().max()).item()
        plain = sdm.outputs(inputs)
        moved = (u - plain["unet"]).abs().max().item()
        moved_te = (z - plain["te_last_hidden"]).abs().max().item()
        assert ru <= 1e-5 and rz <= 1e-5, (name, te, un, ru, rz)
        assert moved > 1e-3 and moved_te > 1e-3, (name, moved, moved_te)
        results[f"{name} te={te} unet={un}"] = {"unet_rel_max_diff": ru, "te_rel_max_diff": rz,
                                                "diffusers_unet_change_vs_plain": moved,
                                                "diffusers_te_change_vs_plain": moved_te}
        print(f"  diffusers cross-check {name} te={te} unet={un}: unet {ru:.2e} te {rz:.2e}", flush=True)
    return results


def cross_check_diffusers_sdxl(xm, nets, inputs):
    """diffusers' own SDXL loading (StableDiffusionXLPipeline.load_lora_weights + fuse_lora per component) of
    xl_peft (and the kohya xl_lora / xl_locon through diffusers' SGM-name conversion) against this script's
    A1111 merge: max |a - b| / max |b| of the UNet output, CLIP-L's penultimate state and text_encoder_2's
    penultimate state / text_embeds (vs OpenCLIP's, merged through its MultiheadAttention)."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    from diffusers import UNet2DConditionModel, StableDiffusionXLPipeline, EulerDiscreteScheduler
    folder = os.path.join(mff.ROOT, mff.PATHS["sdxl"]["diffusers"])
    results = {}
    for name, te, un in (("xl_peft", 1.0, 1.0), ("xl_peft", 0.8, 0.5), ("xl_lora", 1.0, 0.5), ("xl_locon", 0.8, 0.8)):
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32,
                                                    local_files_only=True).eval()
        te1 = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=torch.float32,
                                            attn_implementation="eager", local_files_only=True).eval()
        te2 = CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2", dtype=torch.float32,
                                                          attn_implementation="eager", local_files_only=True).eval()
        unet.set_attn_processor(AttnProcessor())
        pipe = StableDiffusionXLPipeline(vae=xm.mm["vae"], text_encoder=te1, text_encoder_2=te2, tokenizer=None,
                                         tokenizer_2=None, unet=unet, scheduler=EulerDiscreteScheduler())
        pipe.load_lora_weights(nets[name].path, adapter_name="x")
        pipe.fuse_lora(components=["unet"], lora_scale=un)
        pipe.fuse_lora(components=["text_encoder", "text_encoder_2"], lora_scale=te)
        with torch.no_grad():
            theirs = {"unet": unet(inputs["latent"], torch.tensor([TIMESTEP]), encoder_hidden_states=inputs["context"],
                                   added_cond_kwargs={"text_embeds": inputs["y"][:, :mff.SDXL_POOLED],
                                                      "time_ids": inputs["time_ids"]}).sample,
                      "clip_l_penultimate": te1(input_ids=torch.asarray([inputs["ids_l"]]),
                                                output_hidden_states=True).hidden_states[-2]}
            o2 = te2(input_ids=torch.asarray([inputs["ids_g"]]), output_hidden_states=True)
            theirs["clip_g_penultimate"], theirs["clip_g_pooled"] = o2.hidden_states[-2], o2.text_embeds
        ours = run_with(xm, [(nets[name], te, un)], inputs)
        plain = xm.outputs(inputs)
        rec = {}
        for k in ours:
            rec[f"{k}_rel_max_diff"] = ((theirs[k] - ours[k]).abs().max() / ours[k].abs().max()).item()
            rec[f"diffusers_{k}_change_vs_plain"] = (theirs[k] - plain[k]).abs().max().item()
        assert all(v <= 1e-5 for k, v in rec.items() if k.endswith("_rel_max_diff")), (name, te, un, rec)
        assert all(v > 1e-3 for k, v in rec.items() if k.endswith("_vs_plain")), (name, te, un, rec)
        results[f"{name} te={te} unet={un}"] = rec
        print(f"  diffusers sdxl cross-check {name} te={te} unet={un}: "
              + ", ".join(f"{k[:-len('_rel_max_diff')]} {v:.2e}" for k, v in rec.items() if k.endswith("_rel_max_diff")),
              flush=True)
    return results


def infotext(prompt_with_tags, seed, s, hashes):
    params = [("Steps", str(s["steps"])), ("Sampler", s["sampler"]), ("Schedule type", "Automatic"),
              ("CFG scale", mhf.number(s["cfg"])), ("Seed", str(seed)), ("Size", f"{s['size'][0]}x{s['size'][1]}"),
              ("RNG", "NV")]
    if hashes:
        params.append(("Lora hashes", ", ".join(f"{k}: {v}" for k, v in hashes.items())))
    text = ", ".join(f"{k}: {mhf.quote(v)}" for k, v in params)
    negative = f"\nNegative prompt: {s['negative']}" if s["negative"] else ""
    return f"{prompt_with_tags}{negative}\n{text}".strip(), [[k, v] for k, v in params]


def lora_hashes(found, records):
    """extra_networks_lora: {mentioned name without ':' ',': shorthash} in load order."""
    out = {}
    for name, *_ in found:
        rec = records[name]
        out[name.replace(":", "").replace(",", "")] = rec["a1111_shorthash"]
    return out


def main():
    t0 = time.time()
    torch.set_num_threads(1)
    fs._check_nv()
    os.makedirs(LORA_DIR, exist_ok=True)
    sdm = SDModel()
    models = mff.load_models()
    xm = SDXLModel(models)

    paths, broken = make_sd_files(sdm)
    paths.update(make_xl_files(xm))
    total = sum(os.path.getsize(p) for p in paths.values())
    assert total < MAX_LORA_BYTES, total

    nets = {}
    for name in ("sd_lora", "sd_locon", "sd_loha", "sd_lokr", "sd_peft", "sd_bundle", "sd_lora_pt"):
        nets[name] = Network(sdm, name, paths[name])
    for name in ("xl_lora", "xl_lokr") + XL_MORE:
        nets[name] = Network(xm, name, paths[name])
        # A1111 applies a te2 (OpenCLIP MultiheadAttention) network only with all of q, k, v and out_proj
        te2 = {m["t"].diffusers_name for m in nets[name].modules if m["t"].where == "te2"}
        for p in te2:
            if ".self_attn." in p:
                base = p.rsplit(".", 1)[0]
                assert all(f"{base}.{x}" in te2 for x in ("q_proj", "k_proj", "v_proj", "out_proj")), p
    try:
        safetensors.torch.load_file(paths["broken"])
        raise AssertionError("broken.safetensors loaded")
    except Exception as e:              # safetensors refuses the short data
        broken["safetensors_error"] = type(e).__name__
    records = {name: file_record(net, paths[name], sdm if name.startswith("sd") else xm) for name, net in nets.items()
               if name not in XL_MORE}
    records["broken"] = {"path": fs.rel(paths["broken"]), "bytes": os.path.getsize(paths["broken"]),
                         "sha256": fs.sha256_file(paths["broken"]), **broken,
                         "a1111": "sd_models.read_state_dict raises (safetensors: incomplete data); load_networks "
                                  "catches it (errors.display), skips the network: not loaded, not in Lora hashes"}
    for name in XL_MORE:        # after the earlier records: the fixtures only grow
        records[name] = file_record(nets[name], paths[name], xm)
    # the .pt is sd_lora's tensors: the same modules and merges
    assert [m["part"] for m in nets["sd_lora_pt"].modules] == [m["part"] for m in nets["sd_lora"].modules]
    # A1111 1.10's literal key handling: kohya SDXL and the text encoders match exactly; PEFT matches nothing
    for name in ("xl_lora", "xl_lokr", "xl_locon", "xl_loha"):
        assert all(m["a1111_literal_ok"] for m in records[name]["modules"]), name
    assert records["sd_peft"]["a1111_1_10_matched"] == 0 and records["xl_peft"]["a1111_1_10_matched"] == 0
    assert records["xl_locon"]["module_count"] == 132 + 36 + 45 and records["xl_peft"]["module_count"] == 96 + 24
    for name in ("sd_lora", "sd_locon", "sd_loha", "sd_lokr", "sd_bundle"):
        for m in records[name]["modules"]:
            if m["target"] == "te":
                assert m["a1111_literal_ok"], m

    # inputs
    g = torch.Generator().manual_seed(SEEDS["latent"])
    latent = torch.randn((1, 4, 8, 8), generator=g)
    with tempfile.TemporaryDirectory() as d:
        tok = fs.load_tokenizer(*fs.build_tokenizer_files(fs.VOCAB_GZ, d))
    ids = mpf.a1111_chunk_ids(tok, PROMPT)
    sd_in = {"latent": latent, "context": torch.randn((1, 77, 32), generator=torch.Generator().manual_seed(SEEDS["context_sd"])),
             "ids": ids}
    sizes, time_ids = mff.sdxl_size_vector()
    pooled = torch.randn((1, mff.SDXL_POOLED), generator=torch.Generator().manual_seed(SEEDS["pooled_sdxl"]))
    xl_in = {"latent": latent, "context": torch.randn((1, 77, 24), generator=torch.Generator().manual_seed(SEEDS["context_sdxl"])),
             "y": torch.cat([pooled, sizes], dim=1), "time_ids": time_ids,
             "ids_l": fs.a1111_pad(ids, mff.ID_END), "ids_g": fs.a1111_pad(ids, 0)}

    # outputs
    outputs = {"sd": {"plain": None, "cases": []}, "sdxl": {"plain": None, "cases": []}}
    for fam, model, inp in (("sd", sdm, sd_in), ("sdxl", xm, xl_in)):
        plain = model.outputs(inp)
        assert all(torch.equal(a, b) for a, b in zip(plain.values(), model.outputs(inp).values()))
        outputs[fam]["plain"] = outputs_json(plain)
        cases = []
        names = ["sd_lora", "sd_locon", "sd_loha", "sd_lokr", "sd_peft", "sd_bundle"] if fam == "sd" else \
            ["xl_lora", "xl_lokr", *XL_MORE]
        for name in names:
            for te, un in (MULTIPLIERS if name != "sd_bundle" else [(1.0, 1.0)]):
                cases.append([(name, te, un)])
        if fam == "sd":
            cases.append([("sd_lora", 0.6, 0.6), ("sd_loha", 1.0, 0.5)])
            cases.append([("sd_lora", 0.0, 1.0)])
            cases.append([("sd_lora", 1.0, 0.0)])
        else:
            cases.append([("xl_lora", 0.6, 0.6), ("xl_loha", 1.0, 0.5)])
        for case in cases:
            out = run_with(model, [(nets[n], te, un) for n, te, un in case], inp)
            again = run_with(model, [(nets[n], te, un) for n, te, un in case], inp)
            assert all(torch.equal(out[k], again[k]) for k in out), "not deterministic"
            changed = {k: (out[k] - plain[k]).abs().max().item() for k in out}
            for k, v in changed.items():
                zero = (k == "unet" and all(un == 0 for _, _, un in case)) or \
                       (k != "unet" and all(te == 0 for _, te, _ in case))
                assert (v == 0.0) == zero, (case, k, v)
            outputs[fam]["cases"].append({"networks": [{"file": n, "te": te, "unet": un} for n, te, un in case],
                                          "max_abs_change": changed, **outputs_json(out)})
            print(f"  {fam} {case}: change {', '.join(f'{k} {v:.3g}' for k, v in changed.items())}", flush=True)
        # the .pt merges exactly as the safetensors
        if fam == "sd":
            a = run_with(model, [(nets["sd_lora"], 0.8, 0.8)], inp)
            b = run_with(model, [(nets["sd_lora_pt"], 0.8, 0.8)], inp)
            assert all(torch.equal(a[k], b[k]) for k in a)
            # two networks: (W + u1) + u2, the order matters only in the last bits
            ab = run_with(model, [(nets["sd_lora"], 0.6, 0.6), (nets["sd_loha"], 1.0, 0.5)], inp)
            ba = run_with(model, [(nets["sd_loha"], 1.0, 0.5), (nets["sd_lora"], 0.6, 0.6)], inp)
            order_diff = max((ab[k] - ba[k]).abs().max().item() for k in ab)
    cross = cross_check_diffusers(sdm, nets, sd_in)
    cross_xl = cross_check_diffusers_sdxl(xm, nets, xl_in)

    deltas = [
        delta_record(nets["sd_lora"], "lora_te_text_model_encoder_layers_0_self_attn_q_proj", 1.0, 0.5),
        delta_record(nets["sd_lora"], "lora_unet_down_blocks_0_attentions_0_proj_in", 1.0, 0.5),
        delta_record(nets["sd_locon"], "lora_unet_down_blocks_0_resnets_0_conv1", 0.8, 0.8, rows=2),
        delta_record(nets["sd_loha"], "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k", 1.0, 1.0),
        delta_record(nets["sd_loha"], "lora_unet_mid_block_resnets_0_conv2", 1.0, 1.0, rows=2),
        delta_record(nets["sd_lokr"], "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q", 1.0, 1.0),
        delta_record(nets["sd_lokr"], "lora_te_text_model_encoder_layers_1_mlp_fc1", 1.0, 1.0),
        delta_record(nets["sd_peft"], "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_v", 1.0, 1.0),
        delta_record(nets["sd_bundle"], "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k", 1.0, 1.0),
        delta_record(nets["xl_lora"], "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 0.8, 0.8),
        delta_record(nets["xl_lora"], "lora_te2_text_model_encoder_layers_1_self_attn_v_proj", 1.0, 0.5),
        delta_record(nets["xl_lokr"], "lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1.0, 1.0),
        delta_record(nets["xl_locon"], "lora_unet_input_blocks_4_0_in_layers_2", 0.8, 0.8, rows=2),
        delta_record(nets["xl_locon"], "lora_unet_input_blocks_3_0_op", 1.0, 0.5, rows=2),
        delta_record(nets["xl_locon"], "lora_unet_output_blocks_0_0_skip_connection", 1.0, 1.0, rows=2),
        delta_record(nets["xl_locon"], "lora_unet_output_blocks_2_2_conv", 1.0, 1.0, rows=2),
        delta_record(nets["xl_loha"], "lora_unet_input_blocks_4_0_out_layers_3", 1.0, 1.0, rows=2),
        delta_record(nets["xl_loha"], "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 1.0, 0.5),
        delta_record(nets["xl_loha"], "lora_te2_text_model_encoder_layers_1_self_attn_k_proj", 0.8, 0.8),
        delta_record(nets["xl_peft"], "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 1.0, 0.5),
        delta_record(nets["xl_peft"], "text_encoder_2.text_model.encoder.layers.0.self_attn.v_proj", 0.8, 0.8),
    ]

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                     "peft": fs.version("peft"), "numpy": np.__version__},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "models": {"sd": "Tests/Fixtures/tiny-sd", "sdxl": "Tests/Fixtures/tiny-sdxl (+ tiny-sdxl.safetensors' OpenCLIP)"},
        "a1111": A1111_NOTES,
        "outputs_layout": {"unet": "[1, 4, 8, 8] the UNet's output (epsilon)",
                           "te_last_hidden / clip_l_penultimate / clip_g_penultimate":
                               f"[1, {TE_POSITIONS}, width]: token positions 0..{TE_POSITIONS - 1} of the 77",
                           "clip_g_pooled": "[1, 16]"},
        "inputs": {
            "timestep": TIMESTEP, "seeds": SEEDS, "prompt": PROMPT,
            "sd": {"latent": enc32(latent), "context": enc32(sd_in["context"]), "token_ids": ids},
            "sdxl": {"latent": enc32(latent), "context": enc32(xl_in["context"]), "y": enc32(xl_in["y"]),
                     "time_ids": [float(v) for v in time_ids[0]], "token_ids_clip_l": xl_in["ids_l"],
                     "token_ids_clip_g": xl_in["ids_g"]},
        },
        "files": records,
        "deltas": deltas,
        "outputs": outputs,
        "two_networks_order_max_abs_diff": order_diff,
        "diffusers_cross_check": {"what": "diffusers load_lora_weights + fuse_lora(components=[unet], lora_scale=unet) "
                                          "and fuse_lora(components=[text_encoder], lora_scale=te) on fresh models "
                                          "vs this script's A1111 merge; asserted <= 1e-5 relative (max |a - b| / max |b|)",
                                  "results": cross},
        "diffusers_cross_check_sdxl": {
            "what": "StableDiffusionXLPipeline.load_lora_weights + fuse_lora(components=[unet], lora_scale=unet) and "
                    "fuse_lora(components=[text_encoder, text_encoder_2], lora_scale=te) on fresh tiny-sdxl diffusers "
                    "models vs this script's A1111 merge (OpenCLIP MHA for te2); UNet output, CLIP-L penultimate, "
                    "text_encoder_2 penultimate / text_embeds vs OpenCLIP penultimate / pooled; asserted <= 1e-5 "
                    "relative (max |a - b| / max |b|)",
            "results": cross_xl},
    }
    size = fs.write_json_fixture(OUT, doc, MAX_JSON_BYTES)
    print(f"wrote {fs.rel(OUT)} ({size} bytes)", flush=True)

    # --- the image runs
    images = {"generator": GENERATOR, "versions": doc["versions"], "cpu_capability": doc["cpu_capability"],
              "a1111": {"prompt": A1111_NOTES["prompt"], "infotext": A1111_NOTES["infotext"],
                        "sd_runs": "make_hires_fixtures.txt2img_pass (make_pipeline_fixtures' ImageRNG NV, CFGDenoiser, "
                                   "Euler a over get_sigmas(6)), the networks merged into CLIP and the UNet first; "
                                   "decode_a1111 (truncating 8-bit)",
                        "sdxl_run": "make_family_fixtures.run_txt2img (seed 2718281828 + i, 6 steps, CFG 7, NEGATIVE) "
                                    "with xl_lora merged into CLIP-L, OpenCLIP (MHA in_proj / out_proj) and the UNet"},
              "parsing": [], "runs": []}
    for text in ("a red circle on a blue background <lora:sd_lora:0.8>",
                 "<lora:sd_lora:0.6> <lora:sd_loha:1:0.5>, a red circle",
                 "x <lora:sd_locon:te=0.5:unet=1.2> y", "<lora:sd_lokr> z", "<lora:sd_lora:0.3:unet=0.9><lora:sd_peft:0.7:0.2:8>",
                 "<hypernet:foo:1> <lora:sd_lora:te=0.4>"):
        stripped, found = parse_prompt(text)
        images["parsing"].append({"prompt": text, "stripped": stripped,
                                  "loras": [{"name": n, "te": te, "unet": un, "dyn": dyn} for n, te, un, dyn in found]})
    s = {"steps": 6, "sampler": "Euler a", "cfg": 5.0, "size": [16, 16], "seed": 11, "batch": 2, "negative": ""}
    plain_latents = None
    for text in ("a red circle on a blue background", "a red circle on a blue background <lora:sd_lora:0.8>",
                 "a red circle on a blue background <lora:sd_lora:0.6> <lora:sd_loha:1:0.5>"):
        stripped, found = parse_prompt(text)
        nl = [(nets[n], te, un) for n, te, un, _ in found]
        for net, te, un in nl:
            net.apply(te, un)
        sdm.m.conds = {}
        seeds = [s["seed"] + i for i in range(s["batch"])]
        r = mhf.txt2img_pass(sdm.m, s["sampler"], (4, 8, 8), seeds, "nv", s["steps"], stripped, s["negative"], s["cfg"])
        r2 = mhf.txt2img_pass(sdm.m, s["sampler"], (4, 8, 8), seeds, "nv", s["steps"], stripped, s["negative"], s["cfg"])
        assert torch.equal(r["latents"], r2["latents"])
        _, img, _ = fs.decode_a1111(sdm.m.vae, r["latents"], mpf.SCALE_FACTOR, "mul")
        sdm.restore()
        if plain_latents is None:
            plain_latents = r["latents"]
        else:
            assert not torch.allclose(r["latents"], plain_latents)
        hashes = lora_hashes(found, records)
        texts = [infotext(text, sd_seed, s, hashes) for sd_seed in seeds]
        run = {"model": "sd", "prompt": text, "stripped_prompt": stripped,
               "networks": [{"file": n, "te": te, "unet": un} for n, te, un, _ in found],
               "settings": dict(s, seeds=seeds, rng="nv"), "sigmas": [f32_text(v) for v in r["sigmas"].tolist()],
               "latents": enc32(r["latents"]), **mhf.images_json(img, texts)}
        images["runs"].append(run)
        print(f"  image run {text!r}: |lat|max {r['latents'].abs().max().item():.3f} {texts[0][0]!r}", flush=True)
    # SDXL
    m = models["sdxl"]
    m["inner"] = mff.LDMLike(m["unet"], m["alphas_cumprod"], time_ids)
    m["model_wrap"] = mff.K.external.CompVisDenoiser(m["inner"], quantize=False)
    text = "a red circle on a blue background <lora:xl_lora:0.8>"
    stripped, found = parse_prompt(text)
    for n, te, un, _ in found:
        nets[n].apply(te, un)
    m["conditioner"] = mff.Conditioner("sdxl", mff.Tokenizer(tok), m["encoders"])
    spec = {"name": "sdxl lora", "sampler": "Euler a", "schedule": "automatic", "prompt": stripped,
            "negative_prompt": mff.NEGATIVE, "clip_skip": 1}
    r = mff.run_txt2img(spec, m)
    _, img, _ = fs.decode_a1111(m["vae"], r["latents"], mff.SCALING["sdxl"], "mul")
    xm.restore()
    sx = {"steps": mff.STEPS, "sampler": "Euler a", "cfg": mff.CFG, "size": [mff.WIDTH, mff.HEIGHT],
          "negative": mff.NEGATIVE, "batch": mff.BATCH}
    hashes = lora_hashes(found, records)
    texts = [infotext(text, seed, sx, hashes) for seed in r["seeds"]]
    images["runs"].append({"model": "sdxl", "prompt": text, "stripped_prompt": stripped,
                           "networks": [{"file": n, "te": te, "unet": un} for n, te, un, _ in found],
                           "settings": dict(sx, seeds=r["seeds"], rng="nv"),
                           "sigmas": [f32_text(v) for v in r["sigmas"].tolist()],
                           "latents": enc32(r["latents"]), **mhf.images_json(img, texts)})
    print(f"  image run sdxl {text!r}: {texts[0][0]!r}", flush=True)
    # SDXL, two networks at once (appended: the runs above stay as they were)
    first_latents = r["latents"]
    text = "a red circle on a blue background <lora:xl_lora:0.6> <lora:xl_loha:1:0.5>"
    stripped, found = parse_prompt(text)
    for n, te, un, _ in found:
        nets[n].apply(te, un)
    m["conditioner"] = mff.Conditioner("sdxl", mff.Tokenizer(tok), m["encoders"])
    spec = dict(spec, name="sdxl two networks", prompt=stripped)
    r = mff.run_txt2img(spec, m)
    r2 = mff.run_txt2img(spec, m)
    assert torch.equal(r["latents"], r2["latents"])
    _, img, _ = fs.decode_a1111(m["vae"], r["latents"], mff.SCALING["sdxl"], "mul")
    xm.restore()
    assert not torch.allclose(r["latents"], first_latents)
    hashes = lora_hashes(found, records)
    texts = [infotext(text, seed, sx, hashes) for seed in r["seeds"]]
    images["runs"].append({"model": "sdxl", "prompt": text, "stripped_prompt": stripped,
                           "networks": [{"file": n, "te": te, "unet": un} for n, te, un, _ in found],
                           "settings": dict(sx, seeds=r["seeds"], rng="nv"),
                           "sigmas": [f32_text(v) for v in r["sigmas"].tolist()],
                           "latents": enc32(r["latents"]), **mhf.images_json(img, texts)})
    images["a1111"]["sdxl_run_two_networks"] = ("the same run with xl_lora (te 0.6, unet 0.6) then xl_loha (te 1, "
                                                "unet 0.5) merged in tag order: weight = (W + u_lora) + u_loha")
    print(f"  image run sdxl {text!r}: {texts[0][0]!r}", flush=True)
    size2 = fs.write_json_fixture(OUT_IMAGES, images, MAX_IMAGES_JSON_BYTES)
    print(f"wrote {fs.rel(OUT_IMAGES)} ({size2} bytes)")
    for name, p in sorted(paths.items()):
        print(f"  {fs.rel(p):50s} {os.path.getsize(p):8d} bytes")
    print(f"  loras together: {total} bytes; {time.time() - t0:.0f} s")


A1111_NOTES = {
    "version": "AUTOMATIC1111 stable-diffusion-webui 1.10 extensions-builtin/Lora, --no-half (devices.dtype float32)",
    "prompt": "extra_networks.parse_prompt: re.sub(r'<(\\w+):([^>]+)>', '', prompt) (surrounding spaces stay); "
              "items = args.split(':'); an item with one '=' is named. te = positional[1] or 1.0, named te "
              "overrides; unet = positional[2] or te, named unet overrides; dyn = positional[3] / named dyn. "
              "Networks load and merge in the order of their tags",
    "hash": "NetworkOnDisk: metadata sshs_model_hash if present, else sha256 'lora/<name>'; .safetensors: addnet "
            "hash = sha256(file[8 + n:]), n = little-endian u64 at offset 0 (header + metadata skipped); other "
            "extensions: sha256 of the whole file; shorthash = hash[:12]",
    "infotext": "the prompt WITH its tags (all_prompts), then Steps, Sampler, Schedule type, CFG scale, Seed, Size, "
                "[Model hash, Model], RNG, then extra_generation_params: 'Lora hashes: name: shorthash, name2: "
                "shorthash2' (load order; ':' and ',' removed from names), [Version]",
    "keys": "partition('.') -> module part; convert_diffusers_name_to_compvis (SD layers_per_block 2 hard-coded); "
            "then the _q/_k/_v_proj -> MultiheadAttention fallback, 'lora_unet' -> 'diffusion_model', "
            "'lora_te1_text_model' -> '0_transformer_text_model'; unmatched keys are dropped. PEFT keys "
            "('unet.', 'text_encoder.') match nothing in 1.10. Per module here: a1111_literal (what 1.10's chain "
            "produces), a1111_literal_ok (it lands on the module the key names); merges use the named module",
    "lora": "dim = lora_down.shape[0]; updown = (up.reshape(out, -1) @ down.reshape(r, -1)).reshape([out, in] + "
            "down.shape[2:])",
    "loha": "dim = hada_w1_b.shape[0]; updown = (w1a @ w1b) * (w2a @ w2b), each reshaped to [w1a.rows, w1b.cols] "
            "(+ w1b.shape[2:] if 4-D), then to the weight's shape",
    "lokr": "w1 = lokr_w1 or w1_a @ w1_b; w2 = lokr_w2 or w2_a @ w2_b; dim = w1_b.shape[0], then w2_b.shape[0] if "
            "present, else None (scale 1.0 whatever the alpha); updown = kron(w1, w2) reshaped",
    "scale": "calc_scale = scale key, else alpha.item() / dim if both known, else 1.0; finalize: updown = updown * "
             "f32(scale); updown = updown * f32(multiplier)",
    "multiplier": "te multiplier when 'transformer' in sd_key[:20] (transformer_text_model_*, 0_transformer_*, "
                  "1_model_transformer_*), else the unet multiplier",
    "merge": "per layer, networks in order: weight = weight + updown (float32); SDXL te2 (OpenCLIP "
             "MultiheadAttention): needs q, k, v and out_proj modules; in_proj_weight += vstack(updown_q, k, v), "
             "out_proj.weight += updown_out",
    "bundle": "bundle_emb.<name>.string_to_param.<k> -> an embedding <name> (create_embedding_from_data), "
              "registered when the network loads unless an embedding of that name is already loaded",
}

if __name__ == "__main__":
    sys.exit(main())

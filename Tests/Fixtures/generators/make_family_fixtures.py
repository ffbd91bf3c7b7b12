#!/usr/bin/env python3
"""Makes tiny, seeded-random Stable Diffusion 2.x (epsilon and v-prediction) and SDXL models in the
forms real ones come in (diffusers folders, original LDM / SGM single files), and
Tests/DiffusionTests/Fixtures/families.json: txt2img reference runs on them computed with
AUTOMATIC1111 1.10's semantics (its conditioning for each family, ImageRNG with the "NV" source,
CFGDenoiser around k-diffusion's CompVisDenoiser / CompVisVDenoiser, the real k-diffusion samplers,
its 8-bit VAE decode), so that sdshell can test loading and running these families. Everything
float32 on the CPU, one thread.

Rerun (after scripts/setup_reference_env.sh; needs k-diffusion, safetensors, ftfy; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_family_fixtures.py
About 15 s on 2 cores. It uses fixture_support.py for A1111's Philox "NV" RNG, the k-diffusion
import, alphas_cumprod and the LDM buffers, the slow CLIPTokenizer built from
Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz, A1111's attention parser / tokenize_line /
EmbeddingDatabase (empty here) / emphasis, the diffusers -> LDM key converters and decode_a1111.
Deterministic: same library versions -> the same weight files (bit for bit on any CPU: only seeded
randn and float16 casts) and, on the same CPU kind, the same families.json (float32 results follow
the CPU's kernels, as pipeline.json's do; see README.md).

What it writes (every weight float16; the alphas buffers float32)
------------------------------------------------------------------
  Tests/Fixtures/tiny-sd2/               diffusers folder, SD 2.x base (epsilon)        1,986,943 B
      model_index.json (StableDiffusionPipeline; tokenizer, safety_checker, feature_extractor,
      image_encoder [null, null]), text_encoder/ (CLIPTextModel), unet/, vae/,
      scheduler/scheduler_config.json (PNDMScheduler, scaled_linear 0.00085 .. 0.012, 1000 steps,
      prediction_type "epsilon")
  Tests/Fixtures/tiny-sd2.ckpt           the SAME model as an original LDM checkpoint:  2,081,682 B
      torch.save({"state_dict": sd}) (torch's zip format, archive folder "tiny-sd2")
  Tests/Fixtures/tiny-sd2-v.safetensors  an SD 2.x v-prediction model (own seeds), LDM  2,003,864 B
      keys only: no config, no prediction type anywhere (sdshell must detect v itself)
  Tests/Fixtures/tiny-sdxl/              diffusers folder, SDXL base                    4,249,820 B
      model_index.json (StableDiffusionXLPipeline, force_zeros_for_empty_prompt true, both
      tokenizers [null, null]), text_encoder/ (CLIPTextModel: the CLIP-L role),
      text_encoder_2/ (CLIPTextModelWithProjection: the OpenCLIP bigG role), unet/, vae/,
      scheduler/ (EulerDiscreteScheduler, scaled_linear, prediction_type "epsilon")
  Tests/Fixtures/tiny-sdxl.safetensors   the SAME model as an original SGM single file  4,255,712 B
  Tests/DiffusionTests/Fixtures/families.json   the reference runs (about 570 KB)
No tokenizer folders: every text encoder has the FULL CLIP vocabulary (49408 ids) and 77 positions,
so sdshell's own tokenizer drives them all.

The models
----------
SD 2.x (tiny-sd2, tiny-sd2-v; the same architecture):
  * text: the ORIGINAL OpenCLIP text model has 3 resblocks (width 8, 1 head, mlp 32, exact GELU,
    LayerNorm eps 1e-5, text_projection [8, 8], logit_scale). LDM's
    FrozenOpenCLIPEmbedder(layer="penultimate") runs the first 2 blocks, then ln_final. As in
    real SD 2 diffusers folders (23 of OpenCLIP-H's 24 blocks) the diffusers text_encoder has only
    blocks 0-1 + ln_final as final_layer_norm (CLIPTextModel: hidden 8, intermediate 32, 1 head,
    "gelu", 2 layers, bos 49406, eos 49407, pad_token_id 1), whose last_hidden_state is the
    same thing. The single files carry all 3 blocks (block 2 is never used for SD 2.x).
  * UNet2DConditionModel: block_out_channels (32, 32) [WIDTHS below], layers_per_block 1,
    CrossAttnDownBlock2D + DownBlock2D, UpBlock2D + CrossAttnUpBlock2D, UNetMidBlock2DCrossAttn,
    cross_attention_dim 8, attention_head_dim [1, 1] (diffusers' name for the NUMBER of heads;
    SD 2's convention is heads = channels / 64, at least 1: 1 head of width 32 everywhere),
    use_linear_projection true (proj_in / proj_out are Linear, stored 2-D in LDM files too),
    norm_num_groups 32, sample_size 8.
  * AutoencoderKL as make_tiny_sd.py's: block_out_channels (32, 32), two levels (vae scale 2: an
    8x8 latent is a 16x16 image), layers_per_block 1, latent_channels 4, scaling_factor 0.18215.
SDXL (tiny-sdxl):
  * text_encoder (CLIP-L role): CLIPTextModel, hidden 8, 1 head, intermediate 32, quick_gelu,
    3 layers. text_encoder_2 (bigG role): CLIPTextModelWithProjection, hidden 16, 1 head,
    intermediate 64, gelu, 3 layers, projection_dim 16 (text_projection.weight [16, 16], no
    bias), made from an OpenCLIP text model (3 resblocks) whose text_projection [width, proj] is
    the TRANSPOSE of diffusers' text_projection.weight [proj, width].
  * UNet2DConditionModel: block_out_channels (32, 64) [SDXL_UNET_WIDTHS], layers_per_block 2, DownBlock2D +
    CrossAttnDownBlock2D, CrossAttnUpBlock2D + UpBlock2D, transformer_layers_per_block [1, 2] (so
    the mid block has depth 2 too, as SDXL's deepest level and middle share a depth),
    attention_head_dim [1, 1], use_linear_projection true, cross_attention_dim 24 (= 8 + 16),
    addition_embed_type "text_time", addition_time_embed_dim 8,
    projection_class_embeddings_input_dim 64 (= 16 pooled + 6 * 8), norm_num_groups 32,
    sample_size 8.
  * AutoencoderKL as above with scaling_factor 0.13025 (SDXL's).

WIDTHS: the brief asked for UNet block_out_channels (32, 64) AND about 13 MB of new files in all.
The seven full-vocabulary token embeddings alone (3 x 49408 x 8 for the SD 2 forms, 2 x 49408 x
(8 + 16) for SDXL's two forms) are 7.1 MB; with (32, 64) UNets the five model copies come to
about 22.1 MB (7.6 MB more UNet weights). UNET_WIDTHS = (32, 32) (as make_tiny_sd.py chose for the
same reason) keeps GroupNorm(32, .) everywhere, two levels, every block type and depth asked for,
and makes 14.6 MB.
Set UNET_WIDTHS = (32, 64) for the brief's widths (MAX_MODEL_BYTES must then rise). UNet channel
changes between levels are covered by make_model_file_fixtures.py's diffusers_tiny.
The SDXL UNet alone is (32, 64) (SDXL_UNET_WIDTHS): with 32 channels in 32 GroupNorm groups, each
group is one channel, and the norm right after a resnet adds the projected time embedding
removes that per-channel constant exactly, so the timestep, the pooled text and the size
conditioning would not change the output at all. 64 channels (two per group) at SDXL's attention
level and in the middle keep them in play, so the added "text_time" path is checked by value.
The SD 2 UNets stay (32, 32): their time embedding is inert in the same way (the runs check the
rest; sdshell's time embedding is the SD 1.x one, checked at full size by
scripts/check_unet_against_diffusers.py).

Weights
-------
make_tiny_sd.py's rule: EVERY parameter is overwritten, module by module, from its own
torch.Generator, parameters in sorted-name order: GroupNorm / LayerNorm weight = 1 + 0.1 * randn,
every other parameter (norm biases, embeddings, conv / linear weights and biases, OpenCLIP's
positional_embedding, text_projection and logit_scale) = 0.2 * randn (float32), then the module
is cast to float16. Seeds (SEEDS): sd2 open_clip 2001, unet 2002, vae 2003; sd2-v 2101, 2102, 2103;
sdxl clip_l 2201, clip_g (OpenCLIP) 2202, unet 2203, vae 2204. The SD 2 text encoders and SDXL's
text_encoder_2 are initialised in OpenCLIP layout (fixture_support.OpenCLIPText: open_clip's parameter
names) and converted to transformers' (openclip_to_hf); SDXL's CLIP-L is initialised as the
transformers model. Reference runs use the float16 values widened to float32.

The v-prediction test (deliberate bias shift)
---------------------------------------------
A1111 decides v vs epsilon for an SD 2.x file with sd_models_config.is_using_v_parameterization_for_sd2:
it loads the file's model.diffusion_model.* into an SD 2 UNet, runs it in float32 on
x = ones((1, 4, 8, 8)) * 0.5, t = [999], context = ones((1, 2, 1024)) * 0.5, and calls the model v if
(out - x).mean() < -1 (a v model predicts about -x there, an epsilon model about noise). With random
weights that mean is arbitrary, so each SD 2 UNet here is DESIGNED to land clearly on its side: after
the random init, every entry of unet.conv_out.bias is shifted by the same amount (float32, then
rounded to float16) so that the test's mean (context width 8 here) is about +0.5 for tiny-sd2
(epsilon) and about -2.0 for tiny-sd2-v (v). Before the shift the means were -0.302 and +0.291;
after it +0.50002 and -2.00034 (families.json "models" records both; the script asserts A1111's
verdict for both models, on the loaded committed files).

Single-file layouts (every key of each file is checked, see "Checks")
----------------------------------------------------------------------
tiny-sd2.ckpt / tiny-sd2-v.safetensors (LDM v2-inference(-v).yaml names):
  model.diffusion_model.*   LDM openaimodel UNet (time_embed.0/2, input_blocks, middle_block,
                            output_blocks, out.0/2; proj_in / proj_out 2-D Linear weights)
  first_stage_model.*       LDM autoencoder (mid.attn_1 q / k / v / proj_out as 1x1 conv weights)
  cond_stage_model.model.*  OpenCLIP: token_embedding.weight [49408, 8], positional_embedding
                            [77, 8], transformer.resblocks.{0,1,2}.{ln_1.weight/bias,
                            attn.in_proj_weight [24, 8] (q; k; v rows), attn.in_proj_bias [24],
                            attn.out_proj.weight/bias, ln_2.weight/bias, mlp.c_fc.weight/bias
                            [32, 8] / [32], mlp.c_proj.weight/bias}, ln_final.weight/bias,
                            text_projection [8, 8] (unused by SD 2), logit_scale (a 0-d scalar)
  alphas_cumprod, betas, alphas_cumprod_prev   [1000] float32, the scaled-linear schedule, as
                            real SD 2 files carry them (fixture_support.ddpm_schedule_buffers);
                            no model_ema.* keys
tiny-sdxl.safetensors (SGM sd_xl_base.yaml names; no alphas buffers, as real SDXL files):
  conditioner.embedders.0.transformer.text_model.*  the transformers CLIP-L state dict
  conditioner.embedders.1.model.*   OpenCLIP layout as above (width 16: in_proj_weight [48, 16],
                                    3 resblocks, ln_final, text_projection [16, 16] in OpenCLIP
                                    orientation [width, proj] = diffusers' weight TRANSPOSED,
                                    logit_scale)
  model.diffusion_model.*   SGM UNet names: as LDM's plus label_emb.0.0.weight/bias and
                            label_emb.0.2.weight/bias (= diffusers add_embedding.linear_1 /
                            linear_2), transformer_blocks.0 and .1 in each attention block of the
                            second level and the middle block
  first_stage_model.*       LDM autoencoder names
The UNet keys come from fixture_support.unet_diffusers_to_ldm (plus label_emb here), the VAE keys
from fixture_support.vae_diffusers_to_ldm.

Checks
------
* Each diffusers folder's weight files are float16 and equal the modules bit for bit.
* Each single file is read back from disk and converted with diffusers' OWN converters
  (single_file_utils.convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
  convert_open_clip_checkpoint, convert_ldm_clip_checkpoint: independent of this script's maps);
  every resulting tensor must equal the model's bit for bit, loaded strictly (only OpenCLIP block 2
  of the SD 2 files has no place in the 2-layer transformers model). The OpenCLIP part is also
  loaded strictly into OpenCLIPText.
* The reference runs load the COMMITTED forms: tiny-sd2's UNet / VAE / text encoder from the folder
  and its OpenCLIP from the .ckpt; tiny-sd2-v entirely from its safetensors (through diffusers'
  converters); tiny-sdxl's UNet / VAE / CLIP-L / text_encoder_2 from the folder and the OpenCLIP
  bigG from the single file. OpenCLIP encodings are computed with OpenCLIPText (open_clip's
  modules: nn.MultiheadAttention, sequence-first) and compared with the transformers models
  ("transformers_max_abs_diff": about 1e-6), which also checks the q/k/v split and the
  text_projection orientation.

How A1111 1.10 conditions each family (and this script does the same)
----------------------------------------------------------------------
Common (sd_hijack_clip.FrozenCLIPEmbedderWithCustomWordsBase): tokenize_line (emphasis "Original":
prompt_parser.parse_prompt_attention; chunks of 75 ids, comma backtrack 20, each chunk
[49406] + ids + [49407] * pad + [49407]: fixture_support.tokenize_line); each chunk encoded on its
own (process_tokens); if the wrapper's id_pad != id_end, every position AFTER the first 49407 of the
chunk becomes id_pad; emphasis per chunk (z * multipliers, then z * (mean before / mean after));
the chunks hstacked. Each distinct prompt is encoded once as a batch of one; cond and uncond rows
are copies.
SD 2.x (FrozenOpenCLIPEmbedderWithCustomWords over LDM's FrozenOpenCLIPEmbedder, penultimate):
  tokens from open_clip's tokenizer (the same BPE; for plain prompts the same ids as
  fixture_support's CLIPTokenizer), id_pad 0; z = ln_final(blocks 0 .. N-2(token_embedding +
  positional_embedding)). clip_skip is IGNORED: encode_with_transformers never reads
  CLIP_stop_at_last_layers for OpenCLIP ("sd2 / Euler a / clip skip 2" equals "sd2 / Euler a"
  bit for bit; asserted).
SDXL (sd_models_xl.get_learned_conditioning -> sgm GeneralConditioner; A1111 replaces embedders 0
and 1 by its wrappers):
  * embedder 0, CLIP-L (FrozenCLIPEmbedderForSDXLWithCustomWords; sd_xl_base.yaml layer "hidden",
    layer_idx 11 of ViT-L's 12 layers): id_pad = id_end 49407; z = hidden_states[11] =
    hidden_states[-2], NO final_layer_norm. (This 3-layer model: hidden_states[-2] =
    hidden_states[2].) clip_skip is ignored unless the non-default option sdxl_clip_l_skip is on.
  * embedder 1, bigG (FrozenOpenCLIPEmbedder2WithCustomWords over sgm FrozenOpenCLIPEmbedder2,
    layer "penultimate", legacy False, always_return_pooled): id_pad 0; z = the INPUT of the last
    resblock, NO ln_final; pooled = ln_final(output of the last block) at tokens.argmax(-1) (the
    first 49407, since the pad is 0) @ text_projection ([width, proj]); the wrapper returns
    (hstack(zs), zs[0].pooled): the pooled of the FIRST chunk only.
  * emphasis is applied to each encoder's z separately (each wrapper runs its own
    process_tokens; the means restored per encoder and per chunk).
  * crossattn = cat([clip_l z, bigG z], dim 2) -> [1, 77 * chunks, 24].
  * vector = cat(pooled [16], emb(orig_h), emb(orig_w), emb(crop_top), emb(crop_left),
    emb(target_h), emb(target_w)) -> [1, 64]; emb = sgm ConcatTimestepEmbedderND(8):
    timestep_embedding(x, 8) per number (cos half first, then sin; freqs
    exp(-ln(10000) * arange(4) / 4)). A1111 sends original_size = target_size = (height, width)
    of the image (16, 16) and crop (opts.sdxl_crop_top, sdxl_crop_left) = (0, 0).
  * an EMPTY negative prompt: get_learned_conditioning passes force_zero_embeddings=['txt'] (both
    text embedders have input_key 'txt'), so the uncond crossattn AND pooled are zeros; the size
    embeddings stay.
  * the UNet gets y = vector: here through diffusers' added_cond_kwargs (text_embeds =
    vector[:, :16], time_ids = [h, w, top, left, h, w]); every UNet call asserts that diffusers'
    embedding of time_ids equals vector[:, 16:] bit for bit (so this IS feeding y).
Denoiser: k-diffusion CompVisDenoiser (epsilon; SDXL too: sd_models_xl.extend_sdxl sets
alphas_cumprod from sgm's LegacyDDPMDiscretization, the same scaled-linear schedule) or
CompVisVDenoiser (v: c_skip = 1 / (sigma^2 + 1), c_out = -sigma / sqrt(sigma^2 + 1), c_in =
1 / sqrt(sigma^2 + 1)), quantize off, wrapped in CFGDenoiser.forward (batch_cond_uncond on,
pad_cond_uncond and pad_cond_uncond_v0 off): cond rows then uncond rows in ONE model call when both
have the same token length; otherwise (the long prompt: 154 vs 77 tokens) the cond rows in one call
and the uncond rows in another ("model_call_batches" [2, 2]); denoised = uncond + (cond - uncond)
* cfg_scale. For SDXL the conditionings are dicts {"crossattn", "vector"} (catenate_conds /
subscript_cond per key).
Noise and samplers as make_pipeline_fixtures.py: ImageRNG with one Philox "NV" generator per image
(seeds seed, seed + 1), the first draw the initial noise (x = noise * sigmas[0]), every
torch.randn_like of k-diffusion one more draw per image (TorchHijack); sigmas: Euler, Euler a
"automatic" = CompVis(V)Denoiser.get_sigmas(6) (A1111's Uniform), DPM++ 2M "karras"
(get_sigmas_karras(6, sigma_min = sigmas[0], sigma_max = sigmas[-1], rho 7)) -- A1111 1.10's
"Automatic" scheduler for each; sample_euler gets s_churn 0, s_tmin 0, s_tmax inf, s_noise 1,
sample_euler_ancestral eta 1.0. Images: fixture_support.decode_a1111 (per image
vae.decode(latent / scaling_factor), clamp((x + 1) / 2), 255 * x, astype(uint8)).
UNet and VAE use diffusers' AttnProcessor (explicit softmax), transformers CLIP eager attention;
each run is repeated with SDPA ("sdpa_latents_max_abs_diff", a guide for tolerances).

What A1111 itself would do with THESE files (sdshell must generalise)
----------------------------------------------------------------------
* guess_model_config_from_state_dict calls a file SD 2.x only if
  cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight has shape[1] == 1024; these
  have width 8, so A1111 would take them for SD 1.x. sdshell should recognise SD 2.x by the
  OpenCLIP layout (cond_stage_model.model.*) whatever the width.
* is_using_v_parameterization_for_sd2 builds a real-size UNet (model_channels 320, context 1024)
  and load_state_dict(strict=True) would fail on these; sdshell must build the test UNet from the
  file's own shapes (restated above; context width = the cross-attention width).
* SDXL is recognised by conditioner.embedders.1.model.ln_final.weight (that works at any width), but
  A1111 instantiates sd_xl_base.yaml's fixed sizes, so it could not load these files either: the
  runs apply A1111's semantics to the tiny models.
* open_clip's tokenizer (SD 2.x, bigG) also html-unescapes the text twice and knows the special
  tokens as "<start_of_text>" / "<end_of_text>", where transformers' CLIPTokenizer (CLIP-L) does
  not unescape and uses "<|startoftext|>" / "<|endoftext|>": prompts with HTML entities or literal
  special-token text tokenize differently (none here).

families.json layout
--------------------
Tensors are {"shape", "data": row-major float32 values}; each value is written as the SHORTEST
decimal that reads back (decimal -> nearest double -> nearest float32, what JSON readers do) as
exactly that float32 (f32_text, checked for every value): about half the characters of
fixture_support.enc's exact doubles, which keeps the file near 560 KB with every run's
conditioning inline.
{"generator", "versions" (+ "cpu_capability"), "a1111": {notes as strings}, "sigma_min", "sigma_max",
 "models": {"sd2" | "sd2-v" | "sdxl": {"family" ("sd2" | "sdxl"), "paths" (the committed forms:
     "diffusers" folder, "ckpt", "safetensors"), "single_file_layout" ("ldm" | "sgm"),
     "prediction" ("epsilon" | "v_prediction"), "v_test_mean" (A1111's test on the loaded UNet;
     null for SDXL), "v_test_mean_before_bias_shift", "native_size" (what A1111 users render at:
     512, 768, 1024; informational), "scaling_factor", "vae_scale" 2, "weight_files" {path:
     {"bytes", "sha256"}}, "init_seeds", "init_counts", "single_file_check"}},
 "runs": [{"name" ("<model> / <sampler>[ / suffix]"), "model",
     "settings" (pipeline.json's keys: prompt, negative_prompt, seeds [2], subseeds null, subseed
         null, subseed_strength 0, sampler (A1111 label), function (k-diffusion), schedule
         ("automatic" | "karras"), steps 6, cfg_scale 7, rng "nv", clip_skip, width 16, height 16,
         batch_size 2, sampler_kwargs, discard_next_to_last_sigma false, a1111_default_schedule true),
     "chunk_ids" {encoder ("open_clip" | "clip_l" | "clip_g"): {"cond", "uncond": [[77 ids] per
         chunk], as fed to that encoder, pads applied}},
     "conditioning" {"cond", "uncond": {"prompt", "is_negative_prompt", "token_count" (A1111's
         count), "comma_backtracks" [{"chunk", "break_location", "moved"}], "multipliers" [[77] per
         chunk], SDXL "force_zero_embeddings", "transformers_max_abs_diff"}},
     "cond_context", "uncond_context" [1, 77 * chunks, D] (after emphasis; the zeros of
         force_zero_embeddings for SDXL's empty negative), SDXL also "cond_pooled" / "uncond_pooled"
         [1, 16], "cond_vector" / "uncond_vector" [1, 64] and, for the long prompt,
         "cond_pooled_each_chunk" [2 x [1, 16]],
     "initial_noise" [2, 4, 8, 8], "sigmas" [7], "denoiser_calls", "model_call_batches" (UNet batch
     sizes per denoiser call), "rng_next_calls", "latents" [2, 4, 8, 8], "image_shape"
     [2, 16, 16, 3], "image_uint8_base64" (A1111's 8-bit decode, [image, y, x, RGB] bytes),
     "sdpa_latents_max_abs_diff"}]}
"""

import base64
import copy
import inspect
import json
import math
import os
import shutil
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
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, PNDMScheduler,  # noqa: E402
                       UNet2DConditionModel)
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint,  # noqa: E402
                                                 convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
                                                 convert_open_clip_checkpoint)
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

K = fs.import_k_diffusion()      # after diffusers / transformers: it stubs torchvision
KS = K.sampling
REAL_TORCH = torch

GENERATOR = "Tests/Fixtures/generators/make_family_fixtures.py"
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "families.json")
MAX_MODEL_BYTES = 20_000_000      # every weight file and folder this script writes, together
MAX_JSON_BYTES = 650_000

# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------

UNET_WIDTHS = (32, 32)   # block_out_channels of the SD 2 UNets (the docstring: (32, 64) makes about 22.1 MB)
SDXL_UNET_WIDTHS = (32, 64)   # two channels per GroupNorm group at the attention level (see the docstring)
VOCAB, POSITIONS = 49408, 77
ID_START, ID_END = 49406, 49407

SEEDS = {
    "sd2": {"open_clip": 2001, "unet": 2002, "vae": 2003},
    "sd2-v": {"open_clip": 2101, "unet": 2102, "vae": 2103},
    "sdxl": {"clip_l": 2201, "clip_g": 2202, "unet": 2203, "vae": 2204},
}
# the A1111 v-prediction test's mean, set by shifting the UNet's conv_out.bias (see the docstring)
V_TEST_TARGET = {"sd2": 0.5, "sd2-v": -2.0}
NATIVE_SIZE = {"sd2": 512, "sd2-v": 768, "sdxl": 1024}

SD2_OPENCLIP = dict(width=8, heads=1, layers=3, proj=8)          # the ORIGINAL OpenCLIP text model (3 blocks)
SDXL_OPENCLIP = dict(width=16, heads=1, layers=3, proj=16)       # the bigG role

SD2_TEXT_CONFIG = dict(   # diffusers' text_encoder: OpenCLIP blocks 0-1 + ln_final (penultimate)
    vocab_size=VOCAB, max_position_embeddings=POSITIONS, hidden_size=8, intermediate_size=32,
    num_hidden_layers=2, num_attention_heads=1, hidden_act="gelu", layer_norm_eps=1e-5,
    projection_dim=8, bos_token_id=ID_START, eos_token_id=ID_END, pad_token_id=1,
)
SDXL_CLIP_L_CONFIG = dict(
    vocab_size=VOCAB, max_position_embeddings=POSITIONS, hidden_size=8, intermediate_size=32,
    num_hidden_layers=3, num_attention_heads=1, hidden_act="quick_gelu", layer_norm_eps=1e-5,
    projection_dim=8, bos_token_id=ID_START, eos_token_id=ID_END, pad_token_id=1,
)
SDXL_CLIP_G_CONFIG = dict(
    vocab_size=VOCAB, max_position_embeddings=POSITIONS, hidden_size=16, intermediate_size=64,
    num_hidden_layers=3, num_attention_heads=1, hidden_act="gelu", layer_norm_eps=1e-5,
    projection_dim=16, bos_token_id=ID_START, eos_token_id=ID_END, pad_token_id=1,
)
SD2_UNET_CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    block_out_channels=UNET_WIDTHS, layers_per_block=1, cross_attention_dim=8,
    attention_head_dim=(1, 1), use_linear_projection=True, norm_num_groups=32,
)
SDXL_POOLED, SDXL_TIME_DIM = 16, 8
SDXL_UNET_CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    block_out_channels=SDXL_UNET_WIDTHS, layers_per_block=2, transformer_layers_per_block=(1, 2),
    cross_attention_dim=8 + 16, attention_head_dim=(1, 1), use_linear_projection=True, norm_num_groups=32,
    addition_embed_type="text_time", addition_time_embed_dim=SDXL_TIME_DIM,
    projection_class_embeddings_input_dim=SDXL_POOLED + 6 * SDXL_TIME_DIM,
)


def vae_config(scaling_factor):
    return dict(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=32,
        sample_size=16, scaling_factor=scaling_factor,
    )


SINGLE_FILE_LAYOUT = {"sd2": "ldm", "sd2-v": "ldm", "sdxl": "sgm"}
SCALING = {"sd2": 0.18215, "sd2-v": 0.18215, "sdxl": 0.13025}
PNDM_CONFIG = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                   skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
EULER_CONFIG = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                    interpolation_type="linear", steps_offset=1, timestep_spacing="leading",
                    use_karras_sigmas=False, prediction_type="epsilon")

PATHS = {
    "sd2": {"diffusers": "Tests/Fixtures/tiny-sd2", "ckpt": "Tests/Fixtures/tiny-sd2.ckpt"},
    "sd2-v": {"safetensors": "Tests/Fixtures/tiny-sd2-v.safetensors"},
    "sdxl": {"diffusers": "Tests/Fixtures/tiny-sdxl", "safetensors": "Tests/Fixtures/tiny-sdxl.safetensors"},
}
FOLDER_WEIGHTS = {
    "sd2": ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
            "vae/diffusion_pytorch_model.safetensors"],
    "sdxl": ["text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
             "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"],
}


# --- OpenCLIP's text tower: fixture_support.OpenCLIPText, as open_clip 2.20 (A1111's pinned
# version) builds it. open_clip itself cannot be imported here (it needs torchvision), so it is
# restated with the same parameter names: open_clip.model.CLIP without .visual (what LDM's
# FrozenOpenCLIPEmbedder and sgm's FrozenOpenCLIPEmbedder2 keep).

def openclip_to_hf(sd, layers, with_projection):
    """OpenCLIP text keys -> transformers CLIPTextModel(WithProjection) keys (this script's own map;
    the checks load the single files with diffusers' convert_open_clip_checkpoint instead)."""
    out = {
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
    }
    for i in range(layers):
        p, q = f"transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}."
        w, b = sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"]
        width = w.shape[1]
        for j, n in enumerate("qkv"):
            out[q + f"self_attn.{n}_proj.weight"] = w[j * width:(j + 1) * width].clone()
            out[q + f"self_attn.{n}_proj.bias"] = b[j * width:(j + 1) * width].clone()
        for a, c in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[q + c + ".weight"] = sd[p + a + ".weight"]
            out[q + c + ".bias"] = sd[p + a + ".bias"]
    if with_projection:
        out["text_projection.weight"] = sd["text_projection"].t().contiguous()
    return out


def unet_to_ldm(sd, cfg):
    """diffusers UNet keys -> LDM / sgm openaimodel keys: fixture_support.unet_diffusers_to_ldm (whose
    tables already cover linear proj_in / proj_out, kept 2-D as SD2 / SDXL files store them, and any
    transformer depth), plus SDXL's add_embedding.linear_1 / linear_2 -> label_emb.0.0 / label_emb.0.2."""
    label = {"add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2."}
    rest = {k: v for k, v in sd.items() if not k.startswith("add_embedding.")}
    out = fs.unet_diffusers_to_ldm(rest, cfg)
    for k, v in sd.items():
        for a, b in label.items():
            if k.startswith(a):
                out[b + k[len(a):]] = v
    assert len(out) == len(sd)
    return out


def half_state(module):
    return {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def f32_module(module):
    return copy.deepcopy(module).float().eval()


# --- A1111's v-prediction test -------------------------------------------------------------------

def v_test_mean(unet32, context_dim):
    """sd_models_config.is_using_v_parameterization_for_sd2, restated on this UNet (A1111 builds a
    real-size SD2 UNet there and loads the file's model.diffusion_model.* strictly): float32, x =
    ones((1, 4, 8, 8)) * 0.5, t = [999], context = ones((1, 2, 1024)) * 0.5 (here the model's
    context width); out = (unet(x, t, context) - x).mean(); v-prediction if out < -1."""
    with torch.no_grad():
        x = torch.ones((1, 4, 8, 8)) * 0.5
        ctx = torch.ones((1, 2, context_dim)) * 0.5
        return (unet32(x, torch.asarray([999]), encoder_hidden_states=ctx).sample - x).mean().item()


def set_v_test_mean(unet16, target, context_dim):
    """Shifts every conv_out.bias entry by the same amount (in float32, then rounded to float16) so
    that the v test's mean lands at about `target` (the mean is linear in that shift)."""
    m0 = v_test_mean(f32_module(unet16), context_dim)
    with torch.no_grad():
        b = unet16.conv_out.bias
        b.copy_((b.float() + (target - m0)).half())
    m = v_test_mean(f32_module(unet16), context_dim)
    assert abs(m - target) < 0.05, (m0, m, target)
    return m0, m


# --- writing -------------------------------------------------------------------------------------

def write_folder(path, parts, model_index, scheduler):
    os.makedirs(path)
    for name, m in parts.items():
        m.save_pretrained(os.path.join(path, name), safe_serialization=True)
    scheduler.save_pretrained(os.path.join(path, "scheduler"))
    with open(os.path.join(path, "model_index.json"), "w") as f:
        json.dump(model_index, f, indent=2, sort_keys=True)
        f.write("\n")


def model_index(pipeline, parts):
    idx = {"_class_name": pipeline, "_diffusers_version": diffusers.__version__,
           "feature_extractor": [None, None], "image_encoder": [None, None]}
    idx.update(parts)
    return idx


def tree_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs_ in os.walk(path) for f in fs_)


def load_single(path):
    if path.endswith(".ckpt"):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        assert list(obj) == ["state_dict"], list(obj)
        return obj["state_dict"]
    return safetensors.torch.load_file(path)


def assert_same_state(module, sd, what, allow_unexpected=()):
    """Loads sd into a copy of module strictly (apart from allow_unexpected) and checks every tensor is
    bit-equal to the module's own."""
    extra = sorted(k for k in sd if k in allow_unexpected)
    sd = {k: v for k, v in sd.items() if k not in allow_unexpected}
    own = module.state_dict()
    assert set(sd) == set(own), (what, sorted(set(sd) ^ set(own))[:10])
    fresh = copy.deepcopy(module)
    fresh.load_state_dict(sd, strict=True)
    for k, v in fresh.state_dict().items():
        assert v.dtype == own[k].dtype and v.shape == own[k].shape and torch.equal(v, own[k]), (what, k)
    return extra


# ---------------------------------------------------------------------------------------------
# making the models
# ---------------------------------------------------------------------------------------------

def make_sd2_like(name):
    """One SD 2.x model: OpenCLIP (3 blocks) + UNet + VAE, float16; returns the parts and the LDM dict."""
    seeds = SEEDS[name]
    torch.manual_seed(0)
    oc = fs.OpenCLIPText(**SD2_OPENCLIP).eval()
    counts = {"open_clip": fs.randomize_parameters(oc, seeds["open_clip"])}
    oc.half()
    unet = UNet2DConditionModel(**SD2_UNET_CONFIG).eval()
    counts["unet"] = fs.randomize_parameters(unet, seeds["unet"])
    unet.half()
    vae = AutoencoderKL(**vae_config(SCALING[name])).eval()
    counts["vae"] = fs.randomize_parameters(vae, seeds["vae"])
    vae.half()
    m0, m = set_v_test_mean(unet, V_TEST_TARGET[name], SD2_UNET_CONFIG["cross_attention_dim"])
    assert (m < -1) == (name == "sd2-v"), (name, m)

    oc_sd = half_state(oc)
    te = CLIPTextModel(CLIPTextConfig(**SD2_TEXT_CONFIG)).eval().half()
    te.load_state_dict(openclip_to_hf(oc_sd, SD2_TEXT_CONFIG["num_hidden_layers"], False), strict=True)

    ldm = {}
    for k, v in unet_to_ldm(half_state(unet), unet.config).items():
        ldm["model.diffusion_model." + k] = v
    for k, v in fs.vae_diffusers_to_ldm(half_state(vae), vae.config).items():
        ldm["first_stage_model." + k] = v
    for k, v in oc_sd.items():
        ldm["cond_stage_model.model." + k] = v
    bufs = fs.ddpm_schedule_buffers()
    for k in ("alphas_cumprod", "betas", "alphas_cumprod_prev"):
        ldm[k] = bufs[k].clone()
    ldm = {k: ldm[k].contiguous() for k in sorted(ldm)}
    return {"open_clip": oc, "text_encoder": te, "unet": unet, "vae": vae, "ldm": ldm,
            "init_counts": counts, "v_test_mean_before_shift": m0, "v_test_mean": m}


def make_sdxl():
    seeds = SEEDS["sdxl"]
    torch.manual_seed(0)
    clip_l = CLIPTextModel(CLIPTextConfig(**SDXL_CLIP_L_CONFIG)).eval()
    counts = {"clip_l": fs.randomize_parameters(clip_l, seeds["clip_l"])}
    clip_l.half()
    og = fs.OpenCLIPText(**SDXL_OPENCLIP).eval()
    counts["clip_g"] = fs.randomize_parameters(og, seeds["clip_g"])
    og.half()
    unet = UNet2DConditionModel(**SDXL_UNET_CONFIG).eval()
    counts["unet"] = fs.randomize_parameters(unet, seeds["unet"])
    unet.half()
    vae = AutoencoderKL(**vae_config(SCALING["sdxl"])).eval()
    counts["vae"] = fs.randomize_parameters(vae, seeds["vae"])
    vae.half()

    og_sd = half_state(og)
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_CLIP_G_CONFIG)).eval().half()
    te2.load_state_dict(openclip_to_hf(og_sd, SDXL_CLIP_G_CONFIG["num_hidden_layers"], True), strict=True)

    sgm = {}
    for k, v in half_state(clip_l).items():
        sgm["conditioner.embedders.0.transformer." + k] = v
    for k, v in og_sd.items():
        sgm["conditioner.embedders.1.model." + k] = v
    for k, v in unet_to_ldm(half_state(unet), unet.config).items():
        sgm["model.diffusion_model." + k] = v
    for k, v in fs.vae_diffusers_to_ldm(half_state(vae), vae.config).items():
        sgm["first_stage_model." + k] = v
    sgm = {k: sgm[k].contiguous() for k in sorted(sgm)}
    return {"clip_l": clip_l, "open_clip": og, "text_encoder_2": te2, "unet": unet, "vae": vae, "ldm": sgm,
            "init_counts": counts}


def verify_single_file(name, parts, path):
    """Reads the written single file back and converts it with diffusers' own converters
    (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint, convert_open_clip_checkpoint,
    convert_ldm_clip_checkpoint: independent of this script's maps); every tensor must equal the
    model's. The OpenCLIP part is also loaded strictly into OpenCLIPText."""
    sd = load_single(path)
    notes = {}
    for k, v in sd.items():
        want = torch.float32 if k in ("alphas_cumprod", "betas", "alphas_cumprod_prev") else torch.float16
        assert v.dtype == want, (path, k, v.dtype)
    unet_sd = convert_ldm_unet_checkpoint(sd, dict(parts["unet"].config))
    assert_same_state(parts["unet"], unet_sd, f"{name} unet")
    vae_sd = convert_ldm_vae_checkpoint(sd, dict(parts["vae"].config))
    assert_same_state(parts["vae"], vae_sd, f"{name} vae")
    prefix = "conditioner.embedders.1.model." if name == "sdxl" else "cond_stage_model.model."
    oc_sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    assert_same_state(parts["open_clip"], oc_sd, f"{name} open_clip")
    te = parts["text_encoder_2"] if name == "sdxl" else parts["text_encoder"]
    te_sd = convert_open_clip_checkpoint(te, sd, prefix=prefix)
    n = te.config.num_hidden_layers
    unexpected = {k for k in te_sd if k.startswith(f"text_model.encoder.layers.{n}.")}
    extra = assert_same_state(te, te_sd, f"{name} open_clip -> transformers", allow_unexpected=unexpected)
    notes["open_clip_blocks_not_in_transformers_model"] = sorted({k.split(".")[3] for k in extra})
    if name == "sdxl":
        l_sd = convert_ldm_clip_checkpoint(sd)
        assert_same_state(parts["clip_l"], l_sd, "sdxl clip_l")
        assert not [k for k in sd if k.startswith("conditioner.embedders.0.transformer.")
                    and k[len("conditioner.embedders.0.transformer."):] not in l_sd]
    known = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.model.", "conditioner.embedders.")
    assert all(k.startswith(known) or k in ("alphas_cumprod", "betas", "alphas_cumprod_prev") for k in sd)
    assert not any(k.startswith("model_ema") for k in sd)
    return sd, notes



# ---------------------------------------------------------------------------------------------
# The reference runs (A1111 1.10 semantics)
# ---------------------------------------------------------------------------------------------

SEED = 2718281828            # > 2**31, as pipeline.json
STEPS = 6
CFG = 7.0
BATCH = 2
WIDTH = HEIGHT = 16
LATENT = (4, 8, 8)
RNG = "nv"
PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry, low quality, text"
EMPHASIS_PROMPT = "a (red:1.3) circle on a [blue] background"
# 89 tokens; the 75-token boundary falls 4 tokens after a comma, so A1111's comma backtrack
# (comma_padding_backtrack 20) moves those tokens into the second chunk (asserted below).
LONG_PROMPT = ("a red circle on a blue background, a green square in the top left corner, a yellow triangle "
               "below it, a white star on the right, thin black outlines around every shape, soft shadows, "
               "a wooden table under the paper, warm morning light from the window, high contrast, sharp "
               "focus, a small blue dot in the middle, simple flat colours, a faint grid of pale lines behind "
               "everything, a tiny green leaf near the bottom edge")
CROP_TOP = CROP_LEFT = 0     # opts.sdxl_crop_top / sdxl_crop_left defaults
SAMPLERS = {                 # A1111 label: (k-diffusion function, A1111 1.10's "Automatic" schedule for it)
    "Euler": ("sample_euler", "automatic"),
    "Euler a": ("sample_euler_ancestral", "automatic"),
    "DPM++ 2M": ("sample_dpmpp_2m", "karras"),
}
assert all(fs.A1111_DEFAULT_SCHEDULE[label] == sched for label, (_, sched) in SAMPLERS.items())
EXTRA_PARAMS = {"sample_euler": ["s_churn", "s_tmin", "s_tmax", "s_noise"]}   # sampler_extra_params (1.10)
P_VALUES = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0}
ETA = 1.0                    # opts.eta_ancestral


def concat_timestep_embedder_nd(x, outdim):
    """sgm ConcatTimestepEmbedderND: each column embedded on its own, concatenated per row."""
    b, dims = x.shape
    return fs.sgm_timestep_embedding(x.reshape(-1), outdim).reshape(b, dims * outdim)


def sdxl_size_vector():
    """GeneralConditioner's embedders 2-4 (original_size_as_tuple, crop_coords_top_left,
    target_size_as_tuple), as sd_models_xl.get_learned_conditioning fills them: (height, width),
    (sdxl_crop_top, sdxl_crop_left), (height, width); returns [1, 48] and diffusers' time_ids [1, 6]."""
    orig = torch.tensor([[HEIGHT, WIDTH]], dtype=torch.float32)
    crop = torch.tensor([[CROP_TOP, CROP_LEFT]], dtype=torch.float32)
    target = torch.tensor([[HEIGHT, WIDTH]], dtype=torch.float32)
    vec = torch.cat([concat_timestep_embedder_nd(v, SDXL_TIME_DIM) for v in (orig, crop, target)], dim=1)
    time_ids = torch.tensor([[HEIGHT, WIDTH, CROP_TOP, CROP_LEFT, HEIGHT, WIDTH]], dtype=torch.float32)
    return vec, time_ids


class Tokenizer:
    def __init__(self, tok):
        self.tok = tok
        self.db = fs.EmbeddingDatabase(tok, -1)          # no embeddings
        self.comma = tok.get_vocab()[",</w>"]
        assert self.comma == 267

    def chunks(self, text):
        backtracks = []
        _, chunks, count = fs.tokenize_line(text, self.tok, self.db, self.comma, backtracks=backtracks)
        return chunks, count, backtracks


class Conditioner:
    """get_learned_conditioning for one prompt (a batch of one; each distinct (prompt, negative?) once)."""

    def __init__(self, family, tokenizer, encoders):
        self.family = family
        self.tokenizer = tokenizer
        self.enc = encoders
        self.cache = {}

    def get(self, text, is_negative, clip_skip):
        key = (text, is_negative and self.family == "sdxl" and text == "")
        if key in self.cache:
            return self.cache[key]
        chunks, count, backtracks = self.tokenizer.chunks(text)
        rec = {"prompt": text, "is_negative_prompt": bool(is_negative), "token_count": count,
               "comma_backtracks": [{"chunk": b["chunk"], "break_location": b["break_location"], "moved": b["moved"]}
                                    for b in backtracks],
               "multipliers": [list(map(float, ch.multipliers)) for ch in chunks]}
        with torch.no_grad():
            if self.family == "sd2":
                rec.update(self.encode_sd2(chunks, clip_skip))
            else:
                rec.update(self.encode_sdxl(chunks, force_zero=bool(is_negative) and text == ""))
        self.cache[key] = rec
        return rec

    def encode_sd2(self, chunks, clip_skip):
        # FrozenOpenCLIPEmbedderWithCustomWords.encode_with_transformers never reads
        # CLIP_stop_at_last_layers: clip_skip has no effect on SD 2.x
        oc, te = self.enc["open_clip"], self.enc["text_encoder"]
        zs, ids, diff = [], [], 0.0
        for ch in chunks:
            t = fs.a1111_pad(ch.tokens, 0)
            ids.append(t)
            tokens = torch.asarray([t])
            z = oc.encode_sd2(tokens)
            diff = max(diff, (te(input_ids=tokens).last_hidden_state - z).abs().max().item())
            zs.append(fs.emphasis_original(z, torch.asarray([ch.multipliers])))
        return {"chunk_ids": {"open_clip": ids}, "context": torch.hstack(zs),
                "transformers_max_abs_diff": {"open_clip": diff}}

    def encode_sdxl(self, chunks, force_zero):
        clip_l, og, te2 = self.enc["clip_l"], self.enc["open_clip"], self.enc["text_encoder_2"]
        zl, zg, ids_l, ids_g, pooled_each = [], [], [], [], []
        diff_g, diff_pool = 0.0, 0.0
        for ch in chunks:
            m = torch.asarray([ch.multipliers])
            # CLIP-L: FrozenCLIPEmbedderForSDXLWithCustomWords, id_pad = id_end; sgm layer "hidden",
            # layer_idx 11 of ViT-L's 12 = hidden_states[-2]; no final_layer_norm
            tl = fs.a1111_pad(ch.tokens, ID_END)
            ids_l.append(tl)
            z_l = clip_l(input_ids=torch.asarray([tl]), output_hidden_states=True).hidden_states[-2]
            zl.append(fs.emphasis_original(z_l, m))
            # bigG: FrozenOpenCLIPEmbedder2WithCustomWords, id_pad 0 after the first id_end
            tg = fs.a1111_pad(ch.tokens, 0)
            ids_g.append(tg)
            tokens = torch.asarray([tg])
            z_g, pooled, _ = og.encode_sdxl(tokens)
            out = te2(input_ids=tokens, output_hidden_states=True)
            diff_g = max(diff_g, (out.hidden_states[-2] - z_g).abs().max().item())
            diff_pool = max(diff_pool, (out.text_embeds - pooled).abs().max().item())
            zg.append(fs.emphasis_original(z_g, m))
            pooled_each.append(pooled)
        crossattn = torch.cat([torch.hstack(zl), torch.hstack(zg)], dim=2)
        pooled = pooled_each[0]                          # forward(): zs[0].pooled
        if force_zero:                                   # force_zero_embeddings=['txt']
            crossattn = torch.zeros_like(crossattn)
            pooled = torch.zeros_like(pooled)
        sizes, _ = sdxl_size_vector()
        vector = torch.cat([pooled, sizes], dim=1)
        return {"chunk_ids": {"clip_l": ids_l, "clip_g": ids_g}, "force_zero_embeddings": force_zero,
                "context": crossattn, "pooled": pooled, "vector": vector, "pooled_each_chunk": pooled_each,
                "transformers_max_abs_diff": {"clip_g_penultimate": diff_g, "clip_g_pooled": diff_pool}}


class LDMLike:
    """What k-diffusion's CompVis(V)Denoiser needs of A1111's model: alphas_cumprod and
    apply_model(x, t, cond). LDM (SD 2.x): cond = {"c_crossattn": [context]}. sgm (SDXL, A1111's
    apply_model -> OpenAIWrapper): cond = {"crossattn", "vector"} -> diffusion_model(x, t, context,
    y = vector); here through diffusers' added_cond_kwargs (text_embeds = vector[:, :16], time_ids),
    checking every call that diffusers' embedding of time_ids IS vector[:, 16:] bit for bit."""

    def __init__(self, unet, alphas_cumprod, time_ids=None):
        self.unet = unet
        self.alphas_cumprod = alphas_cumprod
        self.time_ids = time_ids
        self.batches = []

    def apply_model(self, x, t, cond):
        self.batches.append(x.shape[0])
        if "crossattn" in cond:
            y = cond["vector"]
            b = x.shape[0]
            time_ids = self.time_ids.repeat(b, 1)
            emb = self.unet.add_time_proj(time_ids.flatten()).reshape(b, -1)
            assert torch.equal(emb, y[:, SDXL_POOLED:]), "diffusers time_ids embedding != sgm's"
            return self.unet(x, t, encoder_hidden_states=cond["crossattn"],
                             added_cond_kwargs={"text_embeds": y[:, :SDXL_POOLED], "time_ids": time_ids}).sample
        return self.unet(x, t, encoder_hidden_states=torch.cat(cond["c_crossattn"], 1)).sample


def catenate_conds(conds):
    if not isinstance(conds[0], dict):
        return torch.cat(conds)
    return {key: torch.cat([x[key] for x in conds]) for key in conds[0].keys()}


def subscript_cond(cond, a, b):
    if not isinstance(cond, dict):
        return cond[a:b]
    return {key: vec[a:b] for key, vec in cond.items()}


def cond_width(c):
    return (c["crossattn"] if isinstance(c, dict) else c).shape[1]


class CFGDenoiser:
    """sd_samplers_cfg_denoiser.CFGDenoiser.forward (1.10) for txt2img, one prompt per image,
    batch_cond_uncond on, pad_cond_uncond(_v0) off: with cond and uncond of the same token length one
    model call on [cond rows; uncond rows]; otherwise (the long prompt) the cond rows in one call and
    the uncond rows in another. denoised = uncond + (cond - uncond) * cfg_scale."""

    def __init__(self, model_wrap):
        self.model_wrap = model_wrap
        self.calls = 0

    def __call__(self, x, sigma, uncond, cond, cond_scale, s_min_uncond=0.0, image_cond=None):
        batch_size = x.shape[0]
        conds_list, x_in, sigma_in = fs.a1111_cfg_inputs(x, sigma)

        def make_condition_dict(c):
            return dict(c) if isinstance(c, dict) else {"c_crossattn": [c]}

        if cond_width(cond) == cond_width(uncond):
            x_out = self.model_wrap(x_in, sigma_in, cond=make_condition_dict(catenate_conds([cond, uncond])))
        else:
            x_out = torch.zeros_like(x_in)
            step = batch_size * 2
            n_cond = (cond["crossattn"] if isinstance(cond, dict) else cond).shape[0]
            for a in range(0, n_cond, step):
                b = min(a + step, n_cond)
                x_out[a:b] = self.model_wrap(x_in[a:b], sigma_in[a:b], cond=make_condition_dict(subscript_cond(cond, a, b)))
            x_out[-batch_size:] = self.model_wrap(x_in[-batch_size:], sigma_in[-batch_size:],
                                                  cond=make_condition_dict(uncond))
        denoised_uncond = x_out[-batch_size:]
        denoised = torch.clone(denoised_uncond)
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)
        self.calls += 1
        return denoised


def batch_of(rec, family):
    """reconstruct_(multi)cond_batch: the prompt's conditioning repeated per image."""
    if family == "sdxl":
        return {"crossattn": torch.cat([rec["context"]] * BATCH), "vector": torch.cat([rec["vector"]] * BATCH)}
    return torch.cat([rec["context"]] * BATCH)


def get_sigmas(model_wrap, schedule, steps):
    if schedule == "automatic":
        return model_wrap.get_sigmas(steps)
    assert schedule == "karras"
    return KS.get_sigmas_karras(n=steps, sigma_min=model_wrap.sigmas[0].item(),
                                sigma_max=model_wrap.sigmas[-1].item(), device="cpu")


def run_txt2img(spec, m):
    funcname, _ = SAMPLERS[spec["sampler"]]
    func = getattr(KS, funcname)
    seeds = [SEED + i for i in range(BATCH)]
    c = m["conditioner"].get(spec["prompt"], False, spec["clip_skip"])
    uc = m["conditioner"].get(spec["negative_prompt"], True, spec["clip_skip"])
    cond, uncond = batch_of(c, m["family"]), batch_of(uc, m["family"])
    rng = fs.NVImageRNG(seeds, LATENT)
    noise = rng.next()
    sigmas = get_sigmas(m["model_wrap"], spec["schedule"], STEPS)
    x = noise * sigmas[0]
    params = inspect.signature(func).parameters
    kwargs = {k: P_VALUES[k] for k in EXTRA_PARAMS.get(funcname, []) if k in params}
    if "eta" in params:
        kwargs["eta"] = ETA
    cfg = CFGDenoiser(m["model_wrap"])
    m["inner"].batches = []
    extra_args = {"cond": cond, "image_cond": None, "uncond": uncond, "cond_scale": CFG, "s_min_uncond": 0.0}
    KS.torch = fs.TorchHijack(rng.next)
    try:
        with torch.no_grad():
            latents = func(cfg, x, sigmas=sigmas, extra_args=extra_args, disable=True, **kwargs)
    finally:
        KS.torch = REAL_TORCH
    return {"seeds": seeds, "c": c, "uc": uc, "noise": noise, "sigmas": sigmas, "latents": latents,
            "kwargs": kwargs, "denoiser_calls": cfg.calls, "model_batches": list(m["inner"].batches),
            "rng_next_calls": rng.next_calls}


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def side_record(rec):
    """What a run records of one side's conditioning besides the tensors."""
    out = {"prompt": rec["prompt"], "is_negative_prompt": rec["is_negative_prompt"],
           "token_count": rec["token_count"], "comma_backtracks": rec["comma_backtracks"],
           "multipliers": rec["multipliers"]}
    if "force_zero_embeddings" in rec:
        out["force_zero_embeddings"] = rec["force_zero_embeddings"]
    out["transformers_max_abs_diff"] = rec["transformers_max_abs_diff"]
    return out


def settings_kwargs(kwargs):
    return {k: ("inf" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in kwargs.items()}


def run_specs():
    specs = []
    for model in ("sd2", "sd2-v", "sdxl"):
        for label in SAMPLERS:
            specs.append({"name": f"{model} / {label}", "model": model, "sampler": label, "prompt": PROMPT,
                          "negative_prompt": NEGATIVE, "clip_skip": 1})
    specs.append({"name": "sd2 / Euler a / clip skip 2", "model": "sd2", "sampler": "Euler a", "prompt": PROMPT,
                  "negative_prompt": NEGATIVE, "clip_skip": 2})
    specs.append({"name": "sdxl / Euler / empty negative", "model": "sdxl", "sampler": "Euler", "prompt": PROMPT,
                  "negative_prompt": "", "clip_skip": 1})
    specs.append({"name": "sdxl / Euler / emphasis", "model": "sdxl", "sampler": "Euler", "prompt": EMPHASIS_PROMPT,
                  "negative_prompt": NEGATIVE, "clip_skip": 1})
    specs.append({"name": "sdxl / Euler / long prompt", "model": "sdxl", "sampler": "Euler", "prompt": LONG_PROMPT,
                  "negative_prompt": NEGATIVE, "clip_skip": 1})
    for s in specs:
        s["schedule"] = SAMPLERS[s["sampler"]][1]
    return specs


def build_and_write(scratch):
    """Makes the three models, writes them under scratch/ and checks the files; returns facts."""
    facts = {}
    sd2 = make_sd2_like("sd2")
    sd2v = make_sd2_like("sd2-v")
    sdxl = make_sdxl()

    write_folder(os.path.join(scratch, "tiny-sd2"),
                 {"text_encoder": sd2["text_encoder"], "unet": sd2["unet"], "vae": sd2["vae"]},
                 model_index("StableDiffusionPipeline", {
                     "requires_safety_checker": False, "safety_checker": [None, None],
                     "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
                     "tokenizer": [None, None], "unet": ["diffusers", "UNet2DConditionModel"],
                     "vae": ["diffusers", "AutoencoderKL"]}),
                 PNDMScheduler(**PNDM_CONFIG))
    torch.save({"state_dict": sd2["ldm"]}, os.path.join(scratch, "tiny-sd2.ckpt"))
    safetensors.torch.save_file(sd2v["ldm"], os.path.join(scratch, "tiny-sd2-v.safetensors"))
    write_folder(os.path.join(scratch, "tiny-sdxl"),
                 {"text_encoder": sdxl["clip_l"], "text_encoder_2": sdxl["text_encoder_2"], "unet": sdxl["unet"],
                  "vae": sdxl["vae"]},
                 model_index("StableDiffusionXLPipeline", {
                     "force_zeros_for_empty_prompt": True,
                     "scheduler": ["diffusers", "EulerDiscreteScheduler"],
                     "text_encoder": ["transformers", "CLIPTextModel"],
                     "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
                     "tokenizer": [None, None], "tokenizer_2": [None, None],
                     "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}),
                 EulerDiscreteScheduler(**EULER_CONFIG))
    safetensors.torch.save_file(sdxl["ldm"], os.path.join(scratch, "tiny-sdxl.safetensors"))

    # the folders: float16 on disk, equal to the modules
    for name, parts, sub in (("sd2", sd2, {"text_encoder": "text_encoder", "unet": "unet", "vae": "vae"}),
                             ("sdxl", sdxl, {"clip_l": "text_encoder", "text_encoder_2": "text_encoder_2",
                                             "unet": "unet", "vae": "vae"})):
        folder = os.path.join(scratch, "tiny-" + name)
        for part, d in sub.items():
            fn = "model.safetensors" if d.startswith("text_encoder") else "diffusion_pytorch_model.safetensors"
            w = safetensors.torch.load_file(os.path.join(folder, d, fn))
            assert all(v.dtype == torch.float16 for v in w.values()), (name, d)
            assert_same_state(parts[part], w, f"{name} {d}")
    # the single files, through diffusers' converters
    notes = {}
    for name, parts, fn in (("sd2", sd2, "tiny-sd2.ckpt"), ("sd2-v", sd2v, "tiny-sd2-v.safetensors"),
                            ("sdxl", sdxl, "tiny-sdxl.safetensors")):
        _, notes[name] = verify_single_file(name, parts, os.path.join(scratch, fn))
    for name, parts in (("sd2", sd2), ("sd2-v", sd2v), ("sdxl", sdxl)):
        facts[name] = {"init_counts": parts["init_counts"], "single_file_check": notes[name],
                       "v_test_mean_before_shift": parts.get("v_test_mean_before_shift")}
    return facts


def load_models():
    """The three models from the committed forms, float32 (float16 widened), as the runs use them."""
    out = {}
    ac = fs.make_alphas_cumprod()
    # sd2: diffusers folder (UNet, VAE, transformers text encoder) + the .ckpt's OpenCLIP
    folder = os.path.join(ROOT, PATHS["sd2"]["diffusers"])
    ckpt = load_single(os.path.join(ROOT, PATHS["sd2"]["ckpt"]))
    assert torch.equal(ckpt["alphas_cumprod"], ac)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32, local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32, local_files_only=True)
    te = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=torch.float32,
                                       attn_implementation="eager", local_files_only=True)
    oc = fs.OpenCLIPText(**SD2_OPENCLIP)
    oc.load_state_dict({k[len("cond_stage_model.model."):]: v.float() for k, v in ckpt.items()
                        if k.startswith("cond_stage_model.model.")}, strict=True)
    out["sd2"] = {"family": "sd2", "unet": unet, "vae": vae, "encoders": {"open_clip": oc, "text_encoder": te},
                  "prediction": "epsilon"}
    # sd2-v: the single file only
    sd = load_single(os.path.join(ROOT, PATHS["sd2-v"]["safetensors"]))
    assert torch.equal(sd["alphas_cumprod"], ac)
    unet = UNet2DConditionModel(**SD2_UNET_CONFIG)
    unet.load_state_dict({k: v.float() for k, v in convert_ldm_unet_checkpoint(sd, dict(unet.config)).items()}, strict=True)
    vae = AutoencoderKL(**vae_config(SCALING["sd2-v"]))
    vae.load_state_dict({k: v.float() for k, v in convert_ldm_vae_checkpoint(sd, dict(vae.config)).items()}, strict=True)
    te = CLIPTextModel._from_config(CLIPTextConfig(**SD2_TEXT_CONFIG), attn_implementation="eager")
    te_sd = convert_open_clip_checkpoint(te, sd, prefix="cond_stage_model.model.")
    te.load_state_dict({k: v.float() for k, v in te_sd.items() if not k.startswith("text_model.encoder.layers.2.")},
                       strict=True)
    oc = fs.OpenCLIPText(**SD2_OPENCLIP)
    oc.load_state_dict({k[len("cond_stage_model.model."):]: v.float() for k, v in sd.items()
                        if k.startswith("cond_stage_model.model.")}, strict=True)
    out["sd2-v"] = {"family": "sd2", "unet": unet, "vae": vae, "encoders": {"open_clip": oc, "text_encoder": te},
                    "prediction": "v_prediction"}
    # sdxl: diffusers folder + the single file's OpenCLIP bigG
    folder = os.path.join(ROOT, PATHS["sdxl"]["diffusers"])
    sd = load_single(os.path.join(ROOT, PATHS["sdxl"]["safetensors"]))
    assert not any(k in sd for k in ("alphas_cumprod", "betas", "alphas_cumprod_prev"))
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=torch.float32, local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32, local_files_only=True)
    clip_l = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=torch.float32,
                                           attn_implementation="eager", local_files_only=True)
    te2 = CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2", dtype=torch.float32,
                                                      attn_implementation="eager", local_files_only=True)
    og = fs.OpenCLIPText(**SDXL_OPENCLIP)
    og.load_state_dict({k[len("conditioner.embedders.1.model."):]: v.float() for k, v in sd.items()
                        if k.startswith("conditioner.embedders.1.model.")}, strict=True)
    out["sdxl"] = {"family": "sdxl", "unet": unet, "vae": vae,
                   "encoders": {"clip_l": clip_l, "open_clip": og, "text_encoder_2": te2}, "prediction": "epsilon"}
    for name, m in out.items():
        for mod in [m["unet"], m["vae"], *m["encoders"].values()]:
            mod.eval()
            assert all(p.dtype == torch.float32 for p in mod.parameters())
        m["unet"].set_attn_processor(AttnProcessor())
        m["vae"].set_attn_processor(AttnProcessor())
        assert m["vae"].config.scaling_factor == SCALING[name]
        m["alphas_cumprod"] = ac
    return out


def main():
    torch.set_num_threads(1)
    _check_nv()
    scratch = os.path.join(FIXTURES, ".make_family_fixtures.tmp")
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(scratch)
    facts = build_and_write(scratch)
    for d, _, files in os.walk(scratch):
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    targets = {"tiny-sd2": "dir", "tiny-sd2.ckpt": "file", "tiny-sd2-v.safetensors": "file",
               "tiny-sdxl": "dir", "tiny-sdxl.safetensors": "file"}
    total = sum(tree_bytes(os.path.join(scratch, t)) for t in targets)
    assert total < MAX_MODEL_BYTES, f"{total} bytes >= {MAX_MODEL_BYTES}"
    for t, kind in targets.items():
        dst = os.path.join(FIXTURES, t)
        if kind == "dir" and os.path.exists(dst):
            shutil.rmtree(dst)
        os.replace(os.path.join(scratch, t), dst)
    shutil.rmtree(scratch)

    # ---- the committed forms, loaded back
    models = load_models()
    with tempfile.TemporaryDirectory() as d:
        tok = fs.load_tokenizer(*fs.build_tokenizer_files(fs.VOCAB_GZ, d))
    tokenizer = Tokenizer(tok)
    assert tok([PROMPT], add_special_tokens=False)["input_ids"][0] == [320, 736, 7117, 525, 320, 1746, 5994]
    sizes, time_ids = sdxl_size_vector()
    for name, m in models.items():
        inner = LDMLike(m["unet"], m["alphas_cumprod"], time_ids if m["family"] == "sdxl" else None)
        den = K.external.CompVisVDenoiser if m["prediction"] == "v_prediction" else K.external.CompVisDenoiser
        m["inner"] = inner
        m["model_wrap"] = den(inner, quantize=False)
        m["conditioner"] = Conditioner(m["family"], tokenizer, m["encoders"])
    # the v test on the loaded UNets (A1111 runs it only for SD 2.x files)
    for name in ("sd2", "sd2-v"):
        mean = v_test_mean(models[name]["unet"], SD2_UNET_CONFIG["cross_attention_dim"])
        assert (mean < -1) == (models[name]["prediction"] == "v_prediction"), (name, mean)
        facts[name]["v_test_mean"] = mean
    # diffusers' time_ids embedding == sgm's vector (bit for bit)
    emb = models["sdxl"]["unet"].add_time_proj(time_ids.flatten()).reshape(1, -1)
    assert torch.equal(emb, sizes), (emb - sizes).abs().max()
    # the schedules: LDM / sgm LegacyDDPMDiscretization alphas_cumprod, the same sigmas for every model
    sig = models["sd2"]["model_wrap"].sigmas
    for m in models.values():
        assert torch.equal(m["model_wrap"].sigmas, sig)

    runs, by_name = [], {}
    for spec in run_specs():
        m = models[spec["model"]]
        r = run_txt2img(spec, m)
        # the same run with diffusers' SDPA attention (a guide to tolerances)
        m["unet"].set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_txt2img(spec, m)
        m["unet"].set_attn_processor(AttnProcessor())
        r2 = run_txt2img(spec, m)
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
        assert torch.equal(r_sdpa["noise"], r["noise"]) and torch.equal(r_sdpa["sigmas"], r["sigmas"])
        assert torch.isfinite(r["latents"]).all()
        _, img, _ = fs.decode_a1111(m["vae"], r["latents"], SCALING[spec["model"]], "mul")
        funcname = SAMPLERS[spec["sampler"]][0]
        rec = {
            "name": spec["name"], "model": spec["model"],
            "settings": {"prompt": spec["prompt"], "negative_prompt": spec["negative_prompt"], "seeds": r["seeds"],
                         "subseeds": None, "subseed": None, "subseed_strength": 0.0, "sampler": spec["sampler"],
                         "function": funcname, "schedule": spec["schedule"], "steps": STEPS, "cfg_scale": CFG,
                         "rng": RNG, "clip_skip": spec["clip_skip"], "width": WIDTH, "height": HEIGHT,
                         "batch_size": BATCH, "sampler_kwargs": settings_kwargs(r["kwargs"]),
                         "discard_next_to_last_sigma": False, "a1111_default_schedule": True},
            "chunk_ids": {e: {"cond": r["c"]["chunk_ids"][e], "uncond": r["uc"]["chunk_ids"][e]}
                          for e in r["c"]["chunk_ids"]},
            "conditioning": {"cond": side_record(r["c"]), "uncond": side_record(r["uc"])},
            "cond_context": fs.enc32(r["c"]["context"]), "uncond_context": fs.enc32(r["uc"]["context"]),
        }
        if m["family"] == "sdxl":
            for side, c in (("cond", r["c"]), ("uncond", r["uc"])):
                rec[f"{side}_pooled"] = fs.enc32(c["pooled"])
                rec[f"{side}_vector"] = fs.enc32(c["vector"])
            if len(r["c"]["pooled_each_chunk"]) > 1:
                rec["cond_pooled_each_chunk"] = [fs.enc32(x) for x in r["c"]["pooled_each_chunk"]]
        rec.update(fs.family_run_outcome(r, img, r_sdpa))
        runs.append(rec)
        by_name[spec["name"]] = r
        print(f"{spec['name']:34s} |lat|max={r['latents'].abs().max().item():9.4f} "
              f"calls={r['denoiser_calls']} batches={rec['model_call_batches']} "
              f"sdpa_diff={rec['sdpa_latents_max_abs_diff']:.2e}", flush=True)

    # ---- the claims the runs stand for
    # clip_skip is ignored for SD 2.x: the same encoding and the same latents
    with torch.no_grad():
        chunks, _, _ = tokenizer.chunks(PROMPT)
        z2 = models["sd2"]["conditioner"].encode_sd2(chunks, 2)["context"]
    assert torch.equal(z2, by_name["sd2 / Euler a"]["c"]["context"])
    assert torch.equal(by_name["sd2 / Euler a / clip skip 2"]["latents"], by_name["sd2 / Euler a"]["latents"])
    # sd2 and sd2-v: same seeds and schedule, different models -> different latents
    assert not torch.allclose(by_name["sd2 / Euler"]["latents"], by_name["sd2-v / Euler"]["latents"])
    # the empty negative: zero context and pooled, the size embeddings kept
    uc = by_name["sdxl / Euler / empty negative"]["uc"]
    assert uc["force_zero_embeddings"] and not uc["context"].any() and not uc["pooled"].any()
    assert torch.equal(uc["vector"][:, SDXL_POOLED:], sizes) and uc["context"].shape == (1, 77, 24)
    # emphasis: multipliers 1.3 and 1 / 1.1 reach both encoders
    em = by_name["sdxl / Euler / emphasis"]["c"]
    assert sorted(set(em["multipliers"][0])) == sorted({1.0, 1.3, 1 / 1.1}), em["multipliers"]
    assert not torch.equal(em["context"], by_name["sdxl / Euler"]["c"]["context"])
    # the long prompt: two chunks, the comma backtrack moved tokens, pooled from the first chunk
    lp = by_name["sdxl / Euler / long prompt"]["c"]
    assert len(lp["chunk_ids"]["clip_g"]) == 2 and lp["context"].shape == (1, 154, 24), lp["context"].shape
    n_ids = len(tok([LONG_PROMPT], add_special_tokens=False)["input_ids"][0])
    assert 80 <= n_ids <= 100, n_ids
    assert len(lp["comma_backtracks"]) == 1
    assert torch.equal(lp["pooled"], lp["pooled_each_chunk"][0])
    assert not torch.allclose(lp["pooled_each_chunk"][0], lp["pooled_each_chunk"][1])
    assert by_name["sdxl / Euler / long prompt"]["model_batches"][:2] == [2, 2]

    model_recs = {}
    for name in ("sd2", "sd2-v", "sdxl"):
        files = {}
        for kind, rel in PATHS[name].items():
            p = os.path.join(ROOT, rel)
            if os.path.isdir(p):
                for w in FOLDER_WEIGHTS[name]:
                    files[f"{rel}/{w}"] = {"bytes": os.path.getsize(os.path.join(p, w)),
                                           "sha256": fs.sha256_file(os.path.join(p, w))}
            else:
                files[rel] = {"bytes": os.path.getsize(p), "sha256": fs.sha256_file(p)}
        model_recs[name] = {
            "family": "sdxl" if name == "sdxl" else "sd2",
            "paths": PATHS[name], "single_file_layout": SINGLE_FILE_LAYOUT[name],
            "prediction": models[name]["prediction"],
            "v_test_mean": facts[name].get("v_test_mean"),
            "v_test_mean_before_bias_shift": facts[name]["v_test_mean_before_shift"],
            "native_size": NATIVE_SIZE[name], "scaling_factor": SCALING[name], "vae_scale": 2,
            "weight_files": files, "init_seeds": SEEDS[name], "init_counts": facts[name]["init_counts"],
            "single_file_check": facts[name]["single_file_check"],
        }

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__, "safetensors": safetensors.__version__,
                     "k_diffusion": fs.version("k-diffusion"), "numpy": np.__version__,
                     "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "a1111": A1111_NOTES,
        "sigma_min": float(sig[0]), "sigma_max": float(sig[-1]),
        "models": model_recs,
        "runs": runs,
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    assert len(text) < MAX_JSON_BYTES, len(text)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(text) + 1} bytes): {len(runs)} runs")
    for t in targets:
        print(f"  {t:28s} {tree_bytes(os.path.join(FIXTURES, t)):>9d} bytes")
    print(f"  models together: {sum(tree_bytes(os.path.join(FIXTURES, t)) for t in targets)} bytes")
    for name in ("sd2", "sd2-v"):
        print(f"  v test mean {name}: {facts[name]['v_test_mean']:.4f} (before the bias shift "
              f"{facts[name]['v_test_mean_before_shift']:.4f})")


A1111_NOTES = {
    "tokens": "tokenize_line: parse_prompt_attention, chunks of 75 ids with comma backtrack 20, each "
              "[49406] + ids + [49407] * pad + [49407]; then per encoder: with id_pad != id_end every position "
              "after the first 49407 becomes id_pad (OpenCLIP: 0; CLIP-L: id_pad = id_end 49407, unchanged)",
    "sd2": "LDM FrozenOpenCLIPEmbedder penultimate: ln_final(the first N-1 resblocks(token_embedding + "
           "positional_embedding)); clip_skip ignored (encode_with_transformers never reads CLIP_stop_at_last_layers)",
    "sdxl_clip_l": "FrozenCLIPEmbedderForSDXLWithCustomWords, layer 'hidden', layer_idx 11 of 12 = hidden_states[-2], "
                   "no final_layer_norm; clip_skip ignored unless opts.sdxl_clip_l_skip (default off)",
    "sdxl_clip_g": "FrozenOpenCLIPEmbedder2WithCustomWords, 'penultimate' = the input of the last resblock, no "
                   "ln_final; pooled = ln_final(last block output)[argmax(tokens)] @ text_projection ([width, proj]), "
                   "from the FIRST chunk only (zs[0].pooled)",
    "emphasis": "EmphasisOriginal per encoder and per chunk: m = z.mean(); z = z * multipliers; z = z * (m / z.mean())",
    "sdxl_context": "crossattn = cat([clip_l z, clip_g z], dim=2); vector = cat(pooled, emb(orig_h), emb(orig_w), "
                    "emb(crop_top), emb(crop_left), emb(target_h), emb(target_w)), emb = sgm timestep_embedding(x, 8) "
                    "(cos, sin); original = target = (height, width) of the image, crop (0, 0)",
    "sdxl_empty_negative": "force_zero_embeddings=['txt']: uncond crossattn and pooled are zeros, the size embeddings stay",
    "denoiser": "CompVisDenoiser (eps) / CompVisVDenoiser (v) over the scaled-linear alphas_cumprod (SDXL: "
                "LegacyDDPMDiscretization, the same), quantize off; CFGDenoiser: [cond rows; uncond rows] in one call when "
                "their token lengths match, else two calls; denoised = uncond + (cond - uncond) * cfg_scale",
    "noise": "ImageRNG, source NV: one rng_philox.Generator(seed_i) per image; first draw = initial noise "
             "(x = noise * sigmas[0]); k-diffusion's randn_like = one more draw per image",
    "schedules": "Euler, Euler a: automatic = get_sigmas(steps) (Uniform); DPM++ 2M: karras(sigma_min = sigmas[0], "
                 "sigma_max = sigmas[-1], rho 7) (A1111 1.10's Automatic scheduler)",
    "v_test": "sd_models_config.is_using_v_parameterization_for_sd2: float32 UNet(ones([1,4,8,8]) * 0.5, t=[999], "
              "context=ones([1,2,width]) * 0.5); v if (out - x).mean() < -1",
    "decode": "per image vae.decode((1 / scaling_factor) * z); clamp((x + 1) / 2, 0, 1); 255 * HWC float32; astype(uint8)",
}

if __name__ == "__main__":
    sys.exit(main())

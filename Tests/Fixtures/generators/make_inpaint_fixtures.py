#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/inpaint.json, inpaint_primitives.json, their pictures and masks
Tests/DiffusionTests/Fixtures/inpaint/*.png, and the tiny inpainting model
Tests/Fixtures/tiny-sd-inpaint.safetensors: reference runs of AUTOMATIC1111's inpainting (webui 1.10:
processing.py StableDiffusionProcessingImg2Img.init / .sample with image_mask, create_binary_mask,
apply_overlay / uncrop, img2img_image_conditioning / inpainting_image_conditioning /
txt2img_image_conditioning; masking.py get_crop_region_v2 / expand_crop_region / fill; images.py
resize_image; sd_samplers_cfg_denoiser.py's mask blend and image_cond; sd_samplers_kdiffusion.py
sample_img2img) on the tiny model Tests/Fixtures/tiny-sd/ and on a tiny 9-channel inpainting model,
for sdshell's inpainting.

    .venv-ref/bin/python Tests/Fixtures/generators/make_inpaint_fixtures.py

Needs what make_img2img_fixtures.py needs (tiny-sd/, k-diffusion, torchsde, diffusers, transformers,
Pillow) plus opencv-python-headless (cv2, A1111's mask blur; run_all.sh installs 4.10.0.84 into
.venv-ref when it is missing) and safetensors, and IMPORTS (importing them writes nothing; their main()
does not run):
  make_img2img_fixtures.py: Model (make_hires_fixtures.Model with the VAE encode: sdshell's posterior
    MEAN x 0.18215, each image on its own), make_picture (the procedural pictures), load_init
    (images.flatten + RGB), resize_image (images.resize_image with Pillow 9.5's LANCZOS pass order,
    lanczos_9_5), a1111_settings, img2img_run (the cross-check), PILLOW_11;
  make_hires_fixtures.py: sample_img2img (ImageRNG's first draw, get_sigmas, sigma_sched, xi, the
    k-diffusion sampler), txt2img_pass, setup_img2img_steps, infotext / quote / number,
    check_img2img_pass, img2img_pass_json, reference_runs, record_runs, pictures_json, OPT_F (= 2, the
    tiny VAE's scale, A1111's opt_f), BATCH, PROMPT;
  make_pipeline_fixtures.py (through them): ImageRNG, CFGDenoiser, LDMLike, k-diffusion, SCALE_FACTOR;
  make_tiny_sd.py: UNET_CONFIG (the tiny UNet, here with in_channels 9);
  fixture_support: randomize_parameters, unet_diffusers_to_ldm, vae_diffusers_to_ldm,
    ddpm_schedule_buffers, decode_a1111, enc32, write_json_fixture.
Its own code: the pictures and masks, A1111's masking code (MASKING_SOURCE: create_binary_mask,
get_crop_region_v2, expand_crop_region, fill, apply_overlay / uncrop, restated from 1.10 and run as they
are under this Pillow and, for the cross-check, under Pillow 11), the mask / picture / latent-mask steps
of init(), the inpainting model's conditioning, the CFG denoiser's image_cond and mask blend (a subclass
of make_pipeline_fixtures.CFGDenoiser that make_hires_fixtures.sample picks up while a run is sampled),
the inpainting model and its single file, the primitive cases with integer restatements of what Pillow
and cv2 compute, and the checks. Everything float32 on the CPU, one thread; deterministic for the same
library versions and CPU kind (run twice: the same bytes).

sdshell's one documented choice: the posterior MEAN
---------------------------------------------------
As in make_img2img_fixtures.py: A1111 encodes with posterior.sample() (mean + std * randn from torch's
unseeded global generator); sdshell, and this reference, use the posterior mean x 0.18215 for EVERY
encode: the init latent (images_tensor_to_samples, each image on its own), the inpainting model's
masked-picture conditioning (encode_first_stage of the whole batch at once, as A1111 calls it) and the
txt2img conditioning of the inpainting model (images_tensor_to_samples of a grey picture, each image on
its own). Everything else is A1111 1.10 with its default settings.

opt_f = 2
---------
A1111's opt_f (8) is the tiny VAE's scale 2 here, as in sdshell: latent size = picture size / 2, so a
24x24 picture here is what a 96x96 one is for SD (a 12x12 latent).

What A1111 1.10 does, step by step (and this script with it)
------------------------------------------------------------
Inputs as the img2img tab's "Inpaint upload" mode passes them (img2img.py mode 4): the init picture
and the mask file, each through images.fix_image (EXIF transpose; a palette / RGB PNG with a
transparency key becomes RGBA; none of these files has either). StableDiffusionProcessingImg2Img(
mask=mask, mask_blur=b (mask_blur_x = mask_blur_y = b), mask_round=True, inpainting_fill,
inpaint_full_res, inpaint_full_res_padding, inpainting_mask_invert, resize_mode, width, height,
denoising_strength, batch_size). init():
 1. extra_generation_params["Denoising strength"] = denoising_strength.
 2. image_mask = create_binary_mask(mask, round=True): an RGBA mask whose alpha is not all 255 becomes
    its alpha channel thresholded, point(255 if a > 128 else 0) (an "L" image); any other mask
    convert("L") (RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, Pillow's L24; grey stays).
 3. inpainting_mask_invert: ImageOps.invert (255 - v); extra "Mask mode": "Inpaint not masked".
 4. mask_blur_x > 0: k = 2 * int(2.5 * b + 0.5) + 1; np_mask = cv2.GaussianBlur(np_mask, (k, 1), b)
    (sigmaY 0 -> sigmaY = sigmaX, but the kernel's height is 1: a horizontal blur only), back to an L
    image; then mask_blur_y > 0: cv2.GaussianBlur(np_mask, (1, k), b) (vertical only). Each is a full
    8-bit cv2 call (rounded to 8 bits in between); extra "Mask blur": b (only when b > 0).
 5a. Whole picture (inpaint_full_res off): image_mask = images.resize_image(resize_mode, image_mask,
    width, height) (modes 1 / 2 paste onto Image.new("RGB"): the mask becomes RGB);
    mask_for_overlay = Image.fromarray(clip(np.array(image_mask).astype(float32) * 2, 0, 255)
    .astype(uint8)) (L or RGB as image_mask).
 5b. Only masked (inpaint_full_res on): mask_for_overlay = image_mask (the blurred mask, own size);
    crop_region = get_crop_region_v2(image_mask.convert("L"), padding): Pillow's getbbox() (the box
    of nonzero pixels, x2 / y2 exclusive), each side moved out by padding and clamped to the mask (pad
    0: the box as it is); an all-zero mask gives None (A1111 then falls back to plain img2img with a
    comment; not exercised here). expand_crop_region(crop_region, width, height, mask.width,
    mask.height) grows the box to the processing aspect ratio (Python doubles, int() truncation; see
    MASKING_SOURCE); image_mask = resize_image(2, mask.crop(region), width, height) ("Resize and
    fill": RGB); paste_to = (x1, y1, x2 - x1, y2 - y1); extras "Inpaint area": "Only masked",
    "Masked area padding": padding.
 6. latent_mask = image_mask. The init picture: images.flatten, then resize_image(resize_mode, ...,
    width, height) unless only-masked (then it keeps its size). If mask_for_overlay's size differs from
    the picture's it is resized with resize_image(resize_mode, ...) (not the case in these runs).
    image_masked = Image.new("RGBa", size); image_masked.paste(picture.convert("RGBA").convert("RGBa"),
    mask=ImageOps.invert(mask_for_overlay.convert("L"))); overlay = image_masked.convert("RGBA") (one
    per image of the batch).
 7. Only masked: picture = resize_image(2, picture.crop(crop_region), width, height).
 8. inpainting_fill != 1: picture = masking.fill(picture, latent_mask) (0 "fill": extra "Masked
    content": "fill"); 1 "original" leaves it; 2 and 3 fill here too (A1111 does, the result feeds the
    init latent and the inpainting conditioning; the latent step below then overrides the masked part).
 9. init_latent = images_tensor_to_samples(picture / 255, repeated per image) (here the mean).
10. latmask = latent_mask.convert("RGB").resize((latent w, latent h)) (Pillow's default filter, BICUBIC;
    computed as Pillow 9.5 does: the horizontal pass first), np.float32 / 255, channel 0, np.around
    (mask_round), tiled over the 4 latent channels; p.mask = 1 - latmask, p.nmask = latmask (float32).
11. inpainting_fill 2 "latent noise": init_latent = init_latent * mask + create_random_tensors(
    init_latent.shape[1:], all_seeds[0:B]) * nmask (a NEW ImageRNG with the image seeds: its first draw,
    which is exactly the draw p.rng.next() makes again in sample()); 3 "latent nothing": init_latent =
    init_latent * mask. Extra "Masked content": "latent noise" / "latent nothing".
12. image_conditioning = img2img_image_conditioning(picture * 2 - 1, init_latent, image_mask, True):
    ordinary model: zeros [B, 5, 1, 1] (unused); inpainting model (conditioning_key "hybrid"):
    conditioning_mask = torch.round(np.array(image_mask.convert("L")) / 255) [1, 1, H, W];
    conditioning_image = torch.lerp(src, src * (1 - mask), inpainting_mask_weight 1.0) (= src * (1 -
    mask) exactly); encoded (mean x 0.18215, the batch at once); the mask
    F.interpolate(..., size=latent size) (mode "nearest": pixel (2 i, 2 j) here), expanded per image;
    torch.cat([mask, latent], 1): [B, 5, h, w]. is_using_inpainting_conditioning -> infotext
    "Conditional mask weight: 1.0" (opts.inpainting_mask_weight, a float).
sample(): x = p.rng.next() (ImageRNG((4, height // 2, width // 2), seeds), its first draw);
   KDiffusionSampler.sample_img2img as make_img2img_fixtures.py (setup_img2img_steps, sigma_sched, xi =
   init_latent + x * sigma_sched[0]); the CFG denoiser (initialize(p): mask = p.mask, nmask = p.nmask,
   init_latent = the init latent after step 11; mask_before_denoising False) concatenates
   image_cond_in = cat([image_cond, image_cond]) (cond rows, then the uncond rows with image_uncond =
   image_cond) and passes cond={"c_crossattn": [cond_in], "c_concat": [image_cond_in]}; LDM's hybrid
   DiffusionWrapper feeds the UNet torch.cat([x * c_in, mask, masked-picture latent], 1) (9 channels);
   the crossattn model ignores c_concat. After combine_denoised: denoised = denoised * nmask +
   init_latent * mask, every call. After sampling: samples = samples * nmask + init_latent * mask.
Decode (fixture_support.decode_a1111: per image, clamp((x + 1) / 2), 255 * float32, astype(uint8)),
then apply_overlay(image, paste_to, overlay) (opts.overlay_inpaint on): only masked: uncrop =
Image.new("RGBA", overlay size).paste(resize_image(1, image, w, h), (x, y)) (the RGB picture pasted
as opaque RGBA; outside it transparent black); then image.convert("RGBA").alpha_composite(overlay)
.convert("RGB"). Whole picture: the final image is width x height; only masked: the INIT picture's size.
Infotext (create_infotext): Steps, Sampler, Schedule type, CFG scale, Seed, Size (width x height),
[Model hash, Model: left out], Denoising strength, Conditional mask weight (inpainting model), RNG,
then the extras in the order init() inserts them: Mask mode, Mask blur, Inpaint area, Masked area
padding, Masked content; [Version: left out].
txt2img on the inpainting model: txt2img_image_conditioning(x): images_tensor_to_samples(torch.ones(B,
3, height, width) * 0.5) (= encoding zeros in [-1, 1], each image on its own), then F.pad(..., (0, 0, 0,
0, 1, 0), value=1.0): [B, 5, h, w] = [ones mask, grey latent]; sampled as txt2img with that
image_cond; infotext "Conditional mask weight: 1.0" after Size (no Denoising strength).

The tiny inpainting model (Tests/Fixtures/tiny-sd-inpaint.safetensors)
----------------------------------------------------------------------
tiny-sd's architecture (make_tiny_sd.UNET_CONFIG) with in_channels 9: UNet2DConditionModel built, every
parameter from fixture_support.randomize_parameters(unet, 1004), cast to float16. Text encoder and VAE:
tiny-sd's own float16 weights, read from its folder. Written as ONE original LDM single file (what
A1111 loads; an SD 1.x inpainting checkpoint): model.diffusion_model.* (fixture_support.
unet_diffusers_to_ldm; input_blocks.0.0.weight is [32, 9, 3, 3]: A1111's sd_models_config picks
v1-inpainting-inference.yaml from that 9), first_stage_model.* (vae_diffusers_to_ldm),
cond_stage_model.transformer.text_model.* (transformers' CLIP names) with
cond_stage_model.transformer.text_model.embeddings.position_ids (int64 [1, 77]), and the DDPM buffers
(fixture_support.ddpm_schedule_buffers, float32) as SD 1.x files carry them. Read back with diffusers'
own converters (convert_ldm_unet_checkpoint / convert_ldm_vae_checkpoint / convert_ldm_clip_checkpoint)
and checked tensor for tensor; the reference runs use the UNet converted from the FILE, widened to
float32. About 4.4 MB: the full-vocabulary CLIP embedding alone is 3.2 MB.

File layout of inpaint.json (tensors {"shape", "data"} as fixture_support.enc32 writes them; pictures
{"mode" (Pillow's mode name), "shape" [H, W] or [H, W, C] (or [B, H, W, C]), "uint8_base64": the bytes
in (image,) row, column, channel order})
-----------------------------------------------------------------------------------------------------
{"generator", "versions", "cpu_capability", "models": {"tiny-sd": {"path"}, "tiny-sd-inpaint": {"path",
  "bytes", "sha256", "unet_in_channels", "unet_seed", ...}}, "a1111": {notes},
 "files": {repository-relative PNG path: {"mode", "size" [w, h], "png_sha256", "pixels"}},
 "runs": [RUN, ...]}
RUN = {"name", "model" ("tiny-sd" | "tiny-sd-inpaint"), "kind" ("inpaint" | "txt2img"),
  "settings": sdshell's names: "prompt", "negative", "seed" (image i: seed + i), "steps", "cfg",
      "sampler", "size" [w, h], "batch", "rng"; inpaint runs also "init", "mask" (PNG paths), "resize_mode",
      "denoise", "exact_steps" (false), "mask_blur", "inpainting_mask_invert" (0/1), "inpainting_fill"
      (0 fill, 1 original, 2 latent noise, 3 latent nothing), "inpaint_full_res" (0/1),
      "inpaint_full_res_padding",
  "a1111": make_img2img_fixtures.a1111_settings plus mask_round, inpainting_mask_weight,
      conditioning_key ("crossattn" | "hybrid"),
  "mask" (inpaint runs): {"binary" (L after create_binary_mask and the inversion), "blurred" (L after
      the two cv2 blurs; = binary when mask_blur is 0), "crop_region" (get_crop_region_v2: [x1, y1, x2, y2]
      or null), "expanded_region" (expand_crop_region, or null), "paste_to" ([x, y, w, h] or null),
      "processed" (image_mask / latent_mask after resize or crop: L or RGB, width x height),
      "for_overlay" (mask_for_overlay), "latmask" ([h/2, w/2] 0/1 integers: channel 0 after np.around),
      "conditioning_mask" (inpainting model: [H, W] 0/1 integers, torch.round of L / 255, else null)},
  "picture": {"fitted" (the init picture after flatten and resize_image, or after crop + resize_image(2)
      for only-masked: RGB width x height), "overlay" (RGBA, the init picture's fitted size: width x height
      or, only masked, the init picture's own), "encoded_input" (the 8-bit RGB picture the encoder gets,
      after fill; = fitted for fill 1)},
  "init": {"encoded" (images_tensor_to_samples: mean x 0.18215, [B, 4, h, w]), "latent" (init_latent
      after latent noise / nothing: what the sampler starts from and blends with)},
  "image_conditioning": [B, 5, h, w] (inpainting model; the txt2img run's too) or null,
  "img2img": {"noise", "steps", "t_enc", "start_index", "sigmas", "sigma_sched", "brownian",
      "denoiser_calls", "rng_next_calls", "rng_draws_used", "latents" (the sampler's result, before the
      final blend)} (txt2img: {"noise", "sigmas", "denoiser_calls", "rng_next_calls", "latents"}),
  "blended": the final latents (samples * nmask + init_latent * mask; txt2img: = latents),
  "decoded": RGB [B, height, width, 3] (decode_a1111 of "blended"),
  "uncropped": only masked: RGBA [B, H0, W0, 4] (uncrop before the composite), else null,
  "image": RGB [B, ...] the final pictures after the overlay,
  "sdpa_latents_max_abs_diff", "infotexts", "infotext_parameters"}

inpaint_primitives.json: the Pillow / cv2 operations alone on small procedural arrays (pictures as
above), each case with its inputs and the library's output, plus the integer restatement this script
checks against them (on these cases and on random ones; documented in "formulas"):
 "cv2_gaussian_blur": [{"input" (L), "ksize" [kx, ky], "sigma", "kernel_q8" (the integer kernel),
     "output"}]: cv2.GaussianBlur(uint8 2-D, ksize, sigma) with A1111's (k, 1) / (1, k) kernels,
     sigmas 0.5 .. 16, kernels larger than the image included.
 "pil_gaussian_blur": [{"input" (RGBa), "radius", "box_radius" (float32 value), "ww", "fw",
     "output"}]: image.filter(ImageFilter.GaussianBlur(radius)), radii 0, 2, 4, 16, 64, 256.
 "premultiply" / "unpremultiply": RGBA -> RGBa and RGBa -> RGBA conversions (every alpha 0..255).
 "paste_l_mask": [{"dest" (RGBa), "source" (RGBa), "mask" (L), "output"}].
 "alpha_composite": [{"dest" (RGBA), "source" (RGBA), "output"}].
 "fill": [{"picture" (RGB), "mask" (L or RGB), "output" (RGB)}]: masking.fill.
 "crop_region": [{"mask" (L), "padding", "width", "height", "crop_region", "expanded_region"}].
 "latmask_resize": [{"input" (RGB), "size" [w, h], "output"}]: Pillow 9.5's default BICUBIC resize.
 "create_binary_mask": [{"input" (RGBA / RGB / L), "output" (L)}].
"""

import base64
import contextlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_img2img_fixtures as mi  # noqa: E402  (imports make_hires_fixtures / make_pipeline_fixtures)
import make_hires_fixtures as mhf  # noqa: E402
import make_pipeline_fixtures as mpf  # noqa: E402
import make_tiny_sd as mts  # noqa: E402
import fixture_support as fs  # noqa: E402
from fixture_support import enc32  # noqa: E402
from make_hires_fixtures import (BATCH, OPT_F, PROMPT, check_img2img_pass, img2img_pass_json,  # noqa: E402
                                 record_runs, reference_runs, sample_img2img, setup_img2img_steps,
                                 txt2img_pass)
import cv2  # noqa: E402
import safetensors.torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint,  # noqa: E402
                                                 convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint)

FIX = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures")
OUT = os.path.join(FIX, "inpaint.json")
PRIMITIVES_OUT = os.path.join(FIX, "inpaint_primitives.json")
PIC_DIR = os.path.join(FIX, "inpaint")
MODEL_FILE = os.path.join(fs.ROOT, "Tests", "Fixtures", "tiny-sd-inpaint.safetensors")
GENERATOR = "Tests/Fixtures/generators/make_inpaint_fixtures.py"
MAX_BYTES = 1_500_000
MAX_PRIMITIVE_BYTES = 600_000
MAX_MODEL_BYTES = 5_000_000
UNET_SEED = 1004
INPAINTING_MASK_WEIGHT = 1.0       # opts.inpainting_mask_weight (default)


# --- A1111's masking code (1.10), run as it is here and under Pillow 11 -----------------------------

MASKING_SOURCE = r'''
from PIL import Image, ImageFilter, ImageOps


def create_binary_mask(image, round=True):
    """processing.create_binary_mask."""
    if image.mode == 'RGBA' and image.getextrema()[-1] != (255, 255):
        if round:
            image = image.split()[-1].convert("L").point(lambda x: 255 if x > 128 else 0)
        else:
            image = image.split()[-1].convert("L")
    else:
        image = image.convert('L')
    return image


def get_crop_region_v2(mask, pad=0):
    """masking.get_crop_region_v2 (a PIL L image)."""
    if box := mask.getbbox():
        x1, y1, x2, y2 = box
        return (max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.size[0]), min(y2 + pad, mask.size[1])) if pad else box


def expand_crop_region(crop_region, processing_width, processing_height, image_width, image_height):
    """masking.expand_crop_region."""
    x1, y1, x2, y2 = crop_region
    ratio_crop_region = (x2 - x1) / (y2 - y1)
    ratio_processing = processing_width / processing_height
    if ratio_crop_region > ratio_processing:
        desired_height = (x2 - x1) / ratio_processing
        desired_height_diff = int(desired_height - (y2-y1))
        y1 -= desired_height_diff//2
        y2 += desired_height_diff - desired_height_diff//2
        if y2 >= image_height:
            diff = y2 - image_height
            y2 -= diff
            y1 -= diff
        if y1 < 0:
            y2 -= y1
            y1 -= y1
        if y2 >= image_height:
            y2 = image_height
    else:
        desired_width = (y2 - y1) * ratio_processing
        desired_width_diff = int(desired_width - (x2-x1))
        x1 -= desired_width_diff//2
        x2 += desired_width_diff - desired_width_diff//2
        if x2 >= image_width:
            diff = x2 - image_width
            x2 -= diff
            x1 -= diff
        if x1 < 0:
            x2 -= x1
            x1 -= x1
        if x2 >= image_width:
            x2 = image_width
    return x1, y1, x2, y2


def fill(image, mask):
    """masking.fill."""
    image_mod = Image.new('RGBA', (image.width, image.height))
    image_masked = Image.new('RGBa', (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert('L')))
    image_masked = image_masked.convert('RGBa')
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = image_masked.filter(ImageFilter.GaussianBlur(radius)).convert('RGBA')
        for _ in range(repeats):
            image_mod.alpha_composite(blurred)
    return image_mod.convert("RGB")


def masked_overlay(image, mask_for_overlay):
    """init()'s overlay of one picture."""
    image_masked = Image.new('RGBa', (image.width, image.height))
    image_masked.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask_for_overlay.convert('L')))
    return image_masked.convert('RGBA')


def composite(image, overlay):
    """apply_overlay's last three lines (image: RGB, or uncrop's RGBA)."""
    image = image.convert('RGBA')
    image.alpha_composite(overlay)
    return image.convert('RGB')
'''
_ns = {}
exec(MASKING_SOURCE, _ns)
create_binary_mask = _ns["create_binary_mask"]
get_crop_region_v2 = _ns["get_crop_region_v2"]
expand_crop_region = _ns["expand_crop_region"]
masking_fill = _ns["fill"]
masked_overlay = _ns["masked_overlay"]
composite = _ns["composite"]
BICUBIC = Image.Resampling.BICUBIC


def bicubic_9_5(im, w, h):
    """im.resize((w, h)) with Pillow's default filter (BICUBIC for L / RGB) as Pillow 9.5 computes it:
    the horizontal pass first (see make_img2img_fixtures.lanczos_9_5; two calls, each one pass)."""
    return im.resize((w, im.height), resample=BICUBIC).resize((w, h), resample=BICUBIC)


def uncrop(image, dest_size, paste_loc):
    """processing.uncrop: resize_image(1, image, w, h) pasted at (x, y) on a transparent RGBA canvas."""
    x, y, w, h = paste_loc
    base_image = Image.new('RGBA', dest_size)
    image = mi.resize_image(1, image, w, h)[0]
    base_image.paste(image, (x, y))
    return base_image


def gaussian_blur_mask(np_mask, blur):
    """init()'s mask blur (mask_blur_x = mask_blur_y = blur > 0): two cv2 calls, each 8-bit."""
    k = 2 * int(2.5 * blur + 0.5) + 1
    np_mask = np.array(Image.fromarray(cv2.GaussianBlur(np_mask, (k, 1), blur)))
    return np.array(Image.fromarray(cv2.GaussianBlur(np_mask, (1, k), blur)))


# --- the pictures and masks --------------------------------------------------------------------------

PICTURES = [("square_24x24.png", 24, 24, 3001), ("tall_20x28.png", 20, 28, 3002)]


def rel_pic(name):
    return fs.rel(os.path.join(PIC_DIR, name))


def make_masks():
    """The masks (float64 geometry, only + - * / and sqrt: the same bytes on any IEEE machine):
    disc: a hard binary disc (L); alpha_rect: RGBA, colours from a gradient, the mask in the alpha
    (255 inside, a ring of 200 and one of 100 at the rectangle's edge: create_binary_mask keeps > 128);
    rgb_blob: an RGB mask (grey levels with a tint: convert("L") weighs the channels); soft: a soft
    16x16 blob (grey levels 0..255) for the resize-mode-1 run; corner: a small rectangle near the
    top-right corner (only masked: the region grows to the aspect and is clamped at the edges); band:
    a wide band (only masked at 16x24: the region grows in height); white: all 255."""
    masks = {}
    yy, xx = np.mgrid[0:24, 0:24].astype(np.float64) + 0.5
    disc = np.sqrt((xx - 13.5) ** 2 + (yy - 11.0) ** 2) <= 6.5
    masks["disc_24x24.png"] = Image.fromarray((disc * 255).astype(np.uint8), "L")
    alpha = np.zeros((24, 24), np.uint8)
    alpha[8:22, 5:19] = 100
    alpha[9:21, 6:18] = 200
    alpha[10:20, 7:17] = 255
    rgb = np.stack([xx * 10, yy * 10, 255 - xx * 5], axis=-1).clip(0, 255).astype(np.uint8)
    masks["alpha_rect_24x24.png"] = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    blob = np.clip(255 * (1.2 - np.sqrt((xx - 9) ** 2 + (yy - 14) ** 2) / 7.0), 0, 255)
    masks["rgb_blob_24x24.png"] = Image.fromarray(
        np.stack([blob, np.clip(blob * 0.9, 0, 255), np.clip(blob * 0.8 + 20, 0, 255)], -1).astype(np.uint8), "RGB")
    y16, x16 = np.mgrid[0:16, 0:16].astype(np.float64) + 0.5
    soft = np.clip(255 * (1.6 - np.sqrt((x16 - 7) ** 2 + (y16 - 9) ** 2) / 4.0), 0, 255)
    masks["soft_16x16.png"] = Image.fromarray(soft.astype(np.uint8), "L")
    corner = np.zeros((24, 24), np.uint8)
    corner[2:6, 13:21] = 255
    masks["corner_24x24.png"] = Image.fromarray(corner, "L")
    band = np.zeros((24, 24), np.uint8)
    band[10:14, 2:22] = 255
    masks["band_24x24.png"] = Image.fromarray(band, "L")
    masks["white_24x24.png"] = Image.fromarray(np.full((24, 24), 255, np.uint8), "L")
    return masks


def write_png(path, im):
    tmp = path + ".tmp"
    im.save(tmp, format="PNG")
    os.replace(tmp, path)


def write_files():
    os.makedirs(PIC_DIR, exist_ok=True)
    files = {}
    for name, w, h, seed in PICTURES:
        write_png(os.path.join(PIC_DIR, name), Image.fromarray(mi.make_picture(w, h, seed)))
        files[rel_pic(name)] = None
    for name, im in make_masks().items():
        write_png(os.path.join(PIC_DIR, name), im)
        files[rel_pic(name)] = None
    out = {}
    for p in files:
        with Image.open(os.path.join(fs.ROOT, p)) as im:
            im.load()
            out[p] = {"mode": im.mode, "size": list(im.size), "png_sha256": fs.sha256_file(os.path.join(fs.ROOT, p)),
                      "pixels": pic(im)}
    return out


def load_mask(rel_path):
    with Image.open(os.path.join(fs.ROOT, rel_path)) as im:
        im.load()
        return im.copy()


def pic(im):
    """A Pillow image or uint8 array as {"mode", "shape", "uint8_base64"}."""
    if isinstance(im, Image.Image):
        mode, arr = im.mode, np.array(im)
    else:
        arr = np.asarray(im)
        mode = {2: "L", 3: "RGB"}.get(arr.ndim) if arr.ndim != 4 else "RGB"
    assert arr.dtype == np.uint8
    return {"mode": mode, "shape": list(arr.shape), "uint8_base64": base64.b64encode(arr.tobytes()).decode()}


def pics(ims, mode):
    arr = np.stack([np.array(im) for im in ims])
    return {"mode": mode, "shape": list(arr.shape), "uint8_base64": base64.b64encode(arr.tobytes()).decode()}


# --- the models --------------------------------------------------------------------------------------

class InpaintLDM(mpf.LDMLike):
    """LDM's DiffusionWrapper with conditioning_key "hybrid": torch.cat([x] + c_concat, 1) into the UNet,
    torch.cat(c_crossattn, 1) as its context."""

    def apply_model(self, x, t, cond):
        self.calls += 1
        xc = torch.cat([x] + cond["c_concat"], dim=1)
        cc = torch.cat(cond["c_crossattn"], 1)
        return self.unet(xc, t, encoder_hidden_states=cc).sample


class TinySD(mi.Model):
    """tiny-sd (make_img2img_fixtures.Model: the encode with the mean), conditioning_key crossattn."""
    name = "tiny-sd"
    inpainting = False

    def encode_batch(self, x):
        """encode_first_stage of a whole batch x in [-1, 1] (A1111's inpainting conditioning): the mean x
        0.18215."""
        with torch.no_grad():
            return self.vae.encode(x).latent_dist.mean * mpf.SCALE_FACTOR

    def encode_each(self, x):
        """images_tensor_to_samples of x already in [-1, 1]: each image on its own (len > 1)."""
        outs = [self.encode_batch(torch.unsqueeze(img, 0))[0] for img in x]
        return torch.stack(outs) if len(outs) > 1 else outs[0][None]


class TinySDInpaint(TinySD):
    """tiny-sd's text encoder and VAE with the 9-channel UNet read from tiny-sd-inpaint.safetensors."""
    name = "tiny-sd-inpaint"
    inpainting = True

    def __init__(self, unet):
        super().__init__()
        self.unet = unet
        self.inner = InpaintLDM(self.unet, self.ac)
        self.model_wrap = mpf.K.external.CompVisDenoiser(self.inner, quantize=False)
        self.attention(sdpa=False)


def unet9_config():
    return dict(mts.UNET_CONFIG, in_channels=9)


def make_inpaint_model():
    """Builds the 9-channel UNet, writes the LDM single file, reads it back with diffusers' converters
    (every tensor checked) and returns (the float32 UNet loaded from the file, info)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet9_config()).eval()
    counts = fs.randomize_parameters(unet, UNET_SEED)
    unet.half()
    te = safetensors.torch.load_file(os.path.join(mpf.MODEL, "text_encoder", "model.safetensors"))
    vae = safetensors.torch.load_file(os.path.join(mpf.MODEL, "vae", "diffusion_pytorch_model.safetensors"))
    with open(os.path.join(mpf.MODEL, "vae", "config.json")) as f:
        vae_cfg = json.load(f)
    ldm = dict(fs.ddpm_schedule_buffers())
    for k, v in fs.unet_diffusers_to_ldm({k: v.detach().clone() for k, v in unet.state_dict().items()},
                                         unet.config).items():
        ldm["model.diffusion_model." + k] = v
    for k, v in fs.vae_diffusers_to_ldm(vae, vae_cfg).items():
        ldm["first_stage_model." + k] = v.clone()
    for k, v in te.items():
        ldm["cond_stage_model.transformer." + k] = v.clone()
    ldm["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    ldm = {k: ldm[k].contiguous() for k in sorted(ldm)}
    assert list(ldm["model.diffusion_model.input_blocks.0.0.weight"].shape) == [32, 9, 3, 3]
    tmp = MODEL_FILE + ".tmp"
    # The tiny text encoder's 4 heads of width 8 break the convention a single file is read by (heads of
    # width 64), so the file says so the way sdshell reads it: safetensors metadata "sdshell_config".
    with open(os.path.join(mpf.MODEL, "text_encoder", "config.json")) as f:
        te_cfg = json.load(f)
    config = {"text_encoder": {k: te_cfg[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers")},
              "unet": {"attention_head_dim": unet.config.attention_head_dim}}
    safetensors.torch.save_file(ldm, tmp, metadata={"sdshell_config": json.dumps(config, sort_keys=True)})
    os.replace(tmp, MODEL_FILE)
    size = os.path.getsize(MODEL_FILE)
    assert size < MAX_MODEL_BYTES, size

    # read back: diffusers' own converters, every tensor equal
    sd = safetensors.torch.load_file(MODEL_FILE)
    u = convert_ldm_unet_checkpoint(sd, dict(unet.config))
    own = unet.state_dict()
    assert set(u) == set(own), sorted(set(u) ^ set(own))[:10]
    for k, v in own.items():
        assert u[k].dtype == torch.float16 and torch.equal(u[k], v), k
    vb = convert_ldm_vae_checkpoint(sd, vae_cfg)
    assert set(vb) == set(vae) and all(torch.equal(vb[k], vae[k]) for k in vae)
    cb = convert_ldm_clip_checkpoint(sd)
    assert all(torch.equal(cb[k], te[k]) for k in te)
    assert not [k for k in cb if k not in te and not k.endswith("position_ids")]
    unet32 = UNet2DConditionModel(**unet9_config()).eval()
    unet32.load_state_dict({k: v.float() for k, v in u.items()}, strict=True)
    info = {"path": fs.rel(MODEL_FILE), "bytes": size, "sha256": fs.sha256_file(MODEL_FILE),
            "layout": "original LDM (SD 1.x inpainting): model.diffusion_model.*, first_stage_model.*, "
                      "cond_stage_model.transformer.text_model.*, DDPM buffers; float16 weights",
            "unet_in_channels": 9, "unet_in_channel_order": ["x (4)", "mask (1)", "masked-picture latent (4)"],
            "unet_seed": UNET_SEED, "unet_init_counts": counts,
            "text_encoder_and_vae": "tiny-sd's own float16 weights (Tests/Fixtures/tiny-sd)",
            "keys": len(sd)}
    return unet32, info


# --- the CFG denoiser with image_cond and the mask blend -----------------------------------------------

class InpaintCFGDenoiser(mpf.CFGDenoiser):
    """make_pipeline_fixtures.CFGDenoiser (A1111's forward for one prompt per image) with what 1.10's
    forward adds for img2img / inpainting: image_cond_in = cat([image_cond, image_uncond = image_cond])
    passed as c_concat, and after combine_denoised (mask_before_denoising False) the blend
    denoised * nmask + init_latent * mask. The bound image_cond / mask / nmask / init_latent are what
    KDiffusionSampler.initialize / sample_img2img give A1111's model_wrap_cfg."""

    bound = None

    def __call__(self, x, sigma, uncond, cond, cond_scale, s_min_uncond=0.0, image_cond=None):
        b = self.bound
        ic = b["image_cond"]
        image_cond_in = torch.cat([torch.stack([ic[i]]) for i in range(x.shape[0])] + [ic])
        inner = self.model_wrap
        self.model_wrap = lambda x_in, sigma_in, cond: inner(x_in, sigma_in,
                                                             cond={**cond, "c_concat": [image_cond_in]})
        try:
            denoised = super().__call__(x, sigma, uncond, cond, cond_scale, s_min_uncond)
        finally:
            self.model_wrap = inner
        if b["mask"] is not None:
            denoised = denoised * b["nmask"] + b["init_latent"] * b["mask"]
        return denoised


@contextlib.contextmanager
def a1111_denoiser(image_cond, mask=None, nmask=None, init_latent=None):
    """While it is open, make_hires_fixtures.sample (which makes mpf.CFGDenoiser(model.model_wrap))
    samples with InpaintCFGDenoiser bound to these tensors."""
    bound = {"image_cond": image_cond, "mask": mask, "nmask": nmask, "init_latent": init_latent}

    def factory(model_wrap):
        d = InpaintCFGDenoiser(model_wrap)
        d.bound = bound
        return d

    saved = mpf.CFGDenoiser
    mpf.CFGDenoiser = factory
    try:
        yield
    finally:
        mpf.CFGDenoiser = saved


# --- one inpainting run ----------------------------------------------------------------------------------

def a1111_settings(model, spec):
    a = mi.a1111_settings(spec)
    a.update({"mask_blur_x": spec["mask_blur"], "mask_blur_y": spec["mask_blur"], "mask_round": True,
              "inpainting_fill": spec["inpainting_fill"], "inpaint_full_res": bool(spec["inpaint_full_res"]),
              "inpaint_full_res_padding": spec["inpaint_full_res_padding"],
              "inpainting_mask_invert": spec["inpainting_mask_invert"],
              "inpainting_mask_weight": INPAINTING_MASK_WEIGHT,
              "conditioning_key": "hybrid" if model.inpainting else "crossattn"})
    return a


def prepare(model, spec):
    """StableDiffusionProcessingImg2Img.init with a mask: every intermediate, and the extras in order."""
    s = spec
    w, h = s["size"]
    B = s["batch"]
    extra = {}
    m = create_binary_mask(load_mask(s["mask"]), round=True)
    if s["inpainting_mask_invert"]:
        m = ImageOps.invert(m)
        extra["Mask mode"] = "Inpaint not masked"
    binary = np.array(m)
    if s["mask_blur"] > 0:
        m = Image.fromarray(gaussian_blur_mask(np.array(m), s["mask_blur"]))
        extra["Mask blur"] = s["mask_blur"]
    blurred = np.array(m)
    crop = expanded = paste_to = None
    if s["inpaint_full_res"]:
        mask_for_overlay = m
        mL = m.convert("L")
        crop = get_crop_region_v2(mL, s["inpaint_full_res_padding"])
        assert crop, "blank mask"
        expanded = expand_crop_region(crop, w, h, mL.width, mL.height)
        x1, y1, x2, y2 = expanded
        image_mask = mi.resize_image(2, mL.crop(expanded), w, h)[0]
        paste_to = (x1, y1, x2 - x1, y2 - y1)
        extra["Inpaint area"] = "Only masked"
        extra["Masked area padding"] = s["inpaint_full_res_padding"]
    else:
        image_mask = mi.resize_image(s["resize_mode"], m, w, h)[0]
        np_mask = np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8)
        mask_for_overlay = Image.fromarray(np_mask)
    latent_mask = image_mask

    image = mi.load_init(s["init"])
    if crop is None:
        image = mi.resize_image(s["resize_mode"], image, w, h)[0]
    assert mask_for_overlay.size == image.size      # (A1111 would resize it; not needed in these runs)
    overlay = masked_overlay(image, mask_for_overlay)
    if crop is not None:
        image = mi.resize_image(2, image.crop(expanded), w, h)[0]
    fitted = image
    if s["inpainting_fill"] != 1:
        image = masking_fill(image, latent_mask)
        if s["inpainting_fill"] == 0:
            extra["Masked content"] = "fill"
    assert image.size == (w, h) and image.mode == "RGB"
    pixels = np.array(image)
    return dict(binary=binary, blurred=blurred, crop=crop, expanded=expanded, paste_to=paste_to,
                image_mask=image_mask, mask_for_overlay=mask_for_overlay, overlay=overlay, fitted=fitted,
                pixels=pixels, extra=extra, batch=B)


def inpaint_run(model, spec, scramble=False):
    """The whole inpainting of one run; returns every intermediate."""
    s = spec
    a = a1111_settings(model, spec)
    w, h = s["size"]
    B = s["batch"]
    p = prepare(model, spec)
    extra = dict(p["extra"])
    encoded = model.encode(p["pixels"], B)
    lh, lw = encoded.shape[2], encoded.shape[3]
    assert (lh, lw) == (h // OPT_F, w // OPT_F)
    latmask = bicubic_9_5(p["image_mask"].convert("RGB"), lw, lh)
    latmask = np.moveaxis(np.array(latmask, dtype=np.float32), 2, 0) / 255
    latmask = latmask[0]
    latmask = np.around(latmask)
    latmask = np.tile(latmask[None], (encoded.shape[1], 1, 1))
    mask = torch.asarray(1.0 - latmask)
    nmask = torch.asarray(latmask)
    assert mask.dtype == nmask.dtype == torch.float32
    init_latent = encoded
    fill_noise = None
    if s["inpainting_fill"] == 2:
        fill_noise = mpf.ImageRNG(s["rng"], init_latent.shape[1:], a["seeds"][:B]).next()
        init_latent = init_latent * mask + fill_noise * nmask
        extra["Masked content"] = "latent noise"
    elif s["inpainting_fill"] == 3:
        init_latent = init_latent * mask
        extra["Masked content"] = "latent nothing"

    # img2img_image_conditioning(image * 2 - 1, init_latent, image_mask, round_image_mask=True)
    image = np.moveaxis(p["pixels"].astype(np.float32) / 255.0, 2, 0)
    image = torch.from_numpy(np.expand_dims(image, axis=0).repeat(B, axis=0))
    source = image * 2 - 1
    cond_mask_px = None
    if model.inpainting:
        cm = np.array(p["image_mask"].convert("L")).astype(np.float32) / 255.0
        cm = torch.round(torch.from_numpy(cm[None, None]))
        cond_mask_px = cm
        cimg = torch.lerp(source, source * (1.0 - cm), INPAINTING_MASK_WEIGHT)
        assert torch.equal(cimg, source * (1.0 - cm))
        clat = model.encode_batch(cimg)
        cmask = torch.nn.functional.interpolate(cm, size=init_latent.shape[-2:])
        cmask = cmask.expand(clat.shape[0], -1, -1, -1)
        image_cond = torch.cat([cmask, clat], dim=1)
    else:
        image_cond = init_latent.new_zeros(init_latent.shape[0], 5, 1, 1)

    steps, t_enc = setup_img2img_steps(s["steps"], s["denoise"], s["exact_steps"])
    with a1111_denoiser(image_cond, mask, nmask, init_latent):
        sampled = sample_img2img(model, s["sampler"], init_latent, s["rng"], a["seeds"], steps, t_enc,
                                 s["prompt"], s["negative"], s["cfg"], scramble=scramble)
    blended = sampled["latents"] * nmask + init_latent * mask
    return dict(sampled, a=a, prep=p, extra=extra, encoded=encoded, init_latent=init_latent, latmask=latmask,
                mask=mask, nmask=nmask, fill_noise=fill_noise, image_cond=image_cond, cond_mask_px=cond_mask_px,
                blended=blended)


def txt2img_run(model, spec, scramble=False):
    """txt2img on the inpainting model: txt2img_image_conditioning, then the txt2img pass."""
    s = spec
    w, h = s["size"]
    B = s["batch"]
    seeds = [s["seed"] + i for i in range(B)]
    grey = torch.ones(B, 3, h, w) * 0.5
    z = model.encode_each(grey * 2 - 1)          # images_tensor_to_samples: image * 2 - 1, each image
    image_cond = torch.nn.functional.pad(z, (0, 0, 0, 0, 1, 0), value=1.0)
    with a1111_denoiser(image_cond):
        r = txt2img_pass(model, s["sampler"], (4, h // OPT_F, w // OPT_F), seeds, s["rng"], s["steps"], s["prompt"],
                         s["negative"], s["cfg"], scramble=scramble)
    a = {"seeds": seeds, "sampler_name": s["sampler"], "schedule": mhf.sampler_schedule(s["sampler"]),
         "width": w, "height": h, "cfg_scale": s["cfg"], "opt_f": OPT_F, "conditioning_key": "hybrid",
         "inpainting_mask_weight": INPAINTING_MASK_WEIGHT}
    return dict(r, a=a, image_cond=image_cond, blended=r["latents"])


def infotext(spec, a, i, extra, cond_mask_weight, txt2img=False):
    """create_infotext: make_hires_fixtures.infotext's core keys (hires=False), "Conditional mask weight"
    after "Denoising strength" (where the inpainting conditioning is used), the extras in init()'s
    insertion order. Values through make_hires_fixtures.quote."""
    if txt2img:
        spec = dict(spec, denoise=0.0)
        a = dict(a, denoising_strength=0.0)
    _, params = mhf.infotext(spec, a, i, hires=False)
    params = [tuple(p) for p in params]
    if txt2img:
        params = [p for p in params if p[0] != "Denoising strength"]
    if cond_mask_weight is not None:
        at = [k for k, _ in params].index("RNG")
        params.insert(at, ("Conditional mask weight", str(cond_mask_weight)))
    for k in ("Mask mode", "Mask blur", "Inpaint area", "Masked area padding", "Masked content"):
        if k in extra:
            params.append((k, mhf.number(extra[k]) if not isinstance(extra[k], str) else extra[k]))
    assert list(extra) == [k for k in ("Mask mode", "Mask blur", "Inpaint area", "Masked area padding",
                                       "Masked content") if k in extra], list(extra)
    text = ", ".join(f"{k}: {mhf.quote(v)}" for k, v in params)
    negative = f"\nNegative prompt: {spec['negative']}" if spec["negative"] else ""
    return f"{spec['prompt']}{negative}\n{text}".strip(), [[k, v] for k, v in params]


# --- runs -------------------------------------------------------------------------------------------

BASE = {"prompt": PROMPT, "negative": "", "seed": 21, "steps": 6, "cfg": 5.0, "sampler": "Euler a",
        "size": [24, 24], "batch": BATCH, "rng": "nv", "init": rel_pic("square_24x24.png"),
        "mask": rel_pic("disc_24x24.png"), "resize_mode": 0, "denoise": 0.75, "exact_steps": False,
        "mask_blur": 2, "inpainting_mask_invert": 0, "inpainting_fill": 1, "inpaint_full_res": 0,
        "inpaint_full_res_padding": 0}


def run_specs():
    """(name, model name, kind, settings)."""
    sq, tall = rel_pic("square_24x24.png"), rel_pic("tall_20x28.png")
    specs = [
        ("tiny-sd / whole picture / fill / blur 2 / Euler a", "tiny-sd", "inpaint",
         dict(BASE, inpainting_fill=0)),
        ("tiny-sd / whole picture / original / blur 0 / DPM++ 2M", "tiny-sd", "inpaint",
         dict(BASE, inpainting_fill=1, mask_blur=0, sampler="DPM++ 2M", seed=22)),
        ("tiny-sd / whole picture / latent noise / RGBA alpha mask / blur 2 / Euler a", "tiny-sd", "inpaint",
         dict(BASE, inpainting_fill=2, mask=rel_pic("alpha_rect_24x24.png"), seed=23)),
        ("tiny-sd / whole picture / latent nothing / inverted / blur 0 / Euler / cpu", "tiny-sd", "inpaint",
         dict(BASE, inpainting_fill=3, inpainting_mask_invert=1, mask_blur=0, sampler="Euler", batch=1, rng="cpu",
              seed=24)),
        ("tiny-sd / whole picture / original / RGB mask / blur 2 / Euler a / denoise 0.5", "tiny-sd", "inpaint",
         dict(BASE, inpainting_fill=1, mask=rel_pic("rgb_blob_24x24.png"), denoise=0.5, seed=25)),
        ("tiny-sd / crop and resize 20x28 picture + 16x16 mask to 24x24 / original / blur 2 / Euler a",
         "tiny-sd", "inpaint",
         dict(BASE, init=tall, mask=rel_pic("soft_16x16.png"), resize_mode=1, inpainting_fill=1, seed=26)),
        ("tiny-sd / white mask / original / blur 0 / Euler a (= plain img2img)", "tiny-sd", "inpaint",
         dict(BASE, mask=rel_pic("white_24x24.png"), inpainting_fill=1, mask_blur=0, seed=27)),
        ("tiny-sd / only masked / padding 4 / original / blur 2 / Euler a", "tiny-sd", "inpaint",
         dict(BASE, mask=rel_pic("corner_24x24.png"), inpaint_full_res=1, inpaint_full_res_padding=4, seed=28)),
        ("tiny-sd / only masked 16x24 / padding 4 / fill / blur 0 / DPM++ 2M", "tiny-sd", "inpaint",
         dict(BASE, mask=rel_pic("band_24x24.png"), size=[16, 24], inpaint_full_res=1, inpaint_full_res_padding=4,
              inpainting_fill=0, mask_blur=0, sampler="DPM++ 2M", batch=1, seed=29)),
        ("tiny-sd-inpaint / whole picture / original / blur 2 / Euler a", "tiny-sd-inpaint", "inpaint",
         dict(BASE, inpainting_fill=1, seed=31)),
        ("tiny-sd-inpaint / whole picture / fill / blur 0 / DPM++ 2M", "tiny-sd-inpaint", "inpaint",
         dict(BASE, inpainting_fill=0, mask_blur=0, sampler="DPM++ 2M", batch=1, seed=32)),
        ("tiny-sd-inpaint / only masked / padding 4 / original / blur 2 / Euler a", "tiny-sd-inpaint", "inpaint",
         dict(BASE, mask=rel_pic("corner_24x24.png"), inpaint_full_res=1, inpaint_full_res_padding=4, seed=33)),
        ("tiny-sd-inpaint / txt2img 24x24 / Euler a", "tiny-sd-inpaint", "txt2img",
         {"prompt": PROMPT, "negative": "", "seed": 34, "steps": 6, "cfg": 5.0, "sampler": "Euler a",
          "size": [24, 24], "batch": BATCH, "rng": "nv"}),
    ]
    assert sq == BASE["init"]
    return specs


def record(models, name, entry):
    model_name, kind, spec = entry
    model = models[model_name]
    t0 = time.time()
    s = spec
    w, h = s["size"]
    B = s["batch"]
    if kind == "txt2img":
        r, r_sdpa = reference_runs(txt2img_run, model, spec, same=("latents", "image_cond"))
        r3 = txt2img_run(model, spec, scramble=True)
        assert torch.equal(r3["noise"], r["noise"]) and not torch.equal(r3["latents"], r["latents"])  # Euler a
        assert torch.equal(r["image_cond"][:, :1], torch.ones(B, 1, h // OPT_F, w // OPT_F))
        _, img, _ = fs.decode_a1111(model.vae, r["latents"], mpf.SCALE_FACTOR, "mul")
        texts = [infotext(spec, r["a"], i, {}, INPAINTING_MASK_WEIGHT, txt2img=True) for i in range(B)]
        run = {"name": name, "model": model_name, "kind": kind, "settings": dict(spec), "a1111": r["a"],
               "mask": None, "picture": None, "init": None,
               "image_conditioning": enc32(r["image_cond"]),
               "img2img": {"noise": enc32(r["noise"]), "sigmas": [fs.f32_text(v) for v in r["sigmas"].tolist()],
                           "denoiser_calls": r["calls"], "rng_next_calls": r["next_calls"],
                           "latents": enc32(r["latents"])},
               "blended": enc32(r["latents"]), "decoded": pic(img), "uncropped": None, "image": pic(img),
               "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
               "infotexts": [t for t, _ in texts], "infotext_parameters": [p for _, p in texts]}
        print(f"  {name:95s} calls={r['calls']} ({time.time() - t0:.1f} s)", flush=True)
        return run, r

    r, r_sdpa = reference_runs(inpaint_run, model, spec, same=("latents", "blended", "init_latent", "image_cond"))
    p, a = r["prep"], r["a"]
    draws_used = check_img2img_pass(name, r, inpaint_run(model, spec, scramble=True))
    lat = (B, 4, h // OPT_F, w // OPT_F)
    assert tuple(r["init_latent"].shape) == lat == tuple(r["blended"].shape) == tuple(r["noise"].shape)
    lm = r["latmask"][0]
    assert set(np.unique(lm).tolist()) <= {0.0, 1.0}
    assert 0 < lm.sum() < lm.size or "white" in s["mask"], name
    # the blend keeps the init latent where the latent mask is 0
    keep = torch.from_numpy(lm == 0)
    for i in range(B):
        for c in range(4):
            assert torch.equal(r["blended"][i, c][keep], r["init_latent"][i, c][keep])
            assert torch.equal(r["blended"][i, c][~keep], r["latents"][i, c][~keep])
    if r["fill_noise"] is not None:
        assert torch.equal(r["fill_noise"], r["noise"])     # create_random_tensors == p.rng's first draw
    if s["inpainting_fill"] == 3:
        assert torch.equal(r["init_latent"][:, :, torch.from_numpy(lm == 1)],
                           torch.zeros_like(r["init_latent"][:, :, torch.from_numpy(lm == 1)]))
    if s["inpainting_fill"] == 1:
        assert np.array_equal(p["pixels"], np.array(p["fitted"]))
    else:
        assert not np.array_equal(p["pixels"], np.array(p["fitted"]))

    _, img, _ = fs.decode_a1111(model.vae, r["blended"], mpf.SCALE_FACTOR, "mul")
    assert img.shape == (B, h, w, 3)
    finals, uncropped = [], []
    for i in range(B):
        im = Image.fromarray(img[i])
        if p["paste_to"] is not None:
            im = uncrop(im, p["overlay"].size, p["paste_to"])
            uncropped.append(im)
        finals.append(composite(im, p["overlay"]))
    final = np.stack([np.array(f) for f in finals])
    if p["paste_to"] is None:
        assert final.shape == (B, h, w, 3)
    else:
        assert final.shape[1:3] == np.array(mi.load_init(s["init"])).shape[:2]
        x1, y1, x2, y2 = p["expanded"]
        c = p["crop"]
        assert x1 <= c[0] and y1 <= c[1] and x2 >= c[2] and y2 >= c[3] and p["expanded"] != c
        # outside the paste box the final picture is the init picture (the overlay is opaque there)
        init = np.array(mi.load_init(s["init"]))
        outside = np.ones(init.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        assert np.array_equal(final[0][outside], init[outside])
    # where mask_for_overlay is 0 the final picture is the fitted picture
    mfo = np.array(p["mask_for_overlay"].convert("L"))
    if p["paste_to"] is None:
        fitted0 = np.array(mi.resize_image(s["resize_mode"], mi.load_init(s["init"]), w, h)[0])
        assert np.array_equal(final[0][mfo == 0], fitted0[mfo == 0])
    texts = [infotext(spec, a, i, r["extra"], INPAINTING_MASK_WEIGHT if model.inpainting else None)
             for i in range(B)]
    mask_json = {
        "binary": pic(Image.fromarray(p["binary"])), "blurred": pic(Image.fromarray(p["blurred"])),
        "crop_region": list(p["crop"]) if p["crop"] else None,
        "expanded_region": list(p["expanded"]) if p["expanded"] else None,
        "paste_to": list(p["paste_to"]) if p["paste_to"] else None,
        "processed": pic(p["image_mask"]), "for_overlay": pic(p["mask_for_overlay"]),
        "latmask": lm.astype(np.int64).tolist(),
        "conditioning_mask": r["cond_mask_px"][0, 0].to(torch.int64).tolist() if r["cond_mask_px"] is not None else None,
    }
    run = {
        "name": name, "model": model_name, "kind": kind, "settings": dict(spec), "a1111": a,
        "mask": mask_json,
        "picture": {"fitted": pic(p["fitted"]), "overlay": pic(p["overlay"]), "encoded_input": pic(p["pixels"])},
        "init": {"encoded": enc32(r["encoded"]), "latent": enc32(r["init_latent"])},
        "image_conditioning": enc32(r["image_cond"]) if model.inpainting else None,
        "img2img": {"noise": enc32(r["noise"]), "steps": r["steps"], "t_enc": r["t_enc"], "start_index": r["start"],
                    **img2img_pass_json(r, draws_used)},
        "blended": enc32(r["blended"]),
        "decoded": pic(img),
        "uncropped": pics(uncropped, "RGBA") if uncropped else None,
        "image": pic(final),
        "sdpa_latents_max_abs_diff": float((r_sdpa["blended"] - r["blended"]).abs().max()),
        "infotexts": [t for t, _ in texts], "infotext_parameters": [q for _, q in texts],
    }
    print(f"  {name:95s} crop={p['crop']} exp={p['expanded']} latmask={int(lm.sum())}/{lm.size} "
          f"sdpa={run['sdpa_latents_max_abs_diff']:.1e} ({time.time() - t0:.1f} s)", flush=True)
    return run, dict(r, final=final, decoded=img, settings=dict(spec))


def check_white_mask(models, raw, name):
    """An all-white mask with fill 1 is plain img2img: make_img2img_fixtures.img2img_run's init latent,
    latents and picture, bit for bit."""
    r = raw[name]
    s = r["settings"]
    plain_spec = {k: s[k] for k in ("prompt", "negative", "seed", "steps", "cfg", "sampler", "size", "batch", "rng",
                                    "init", "resize_mode", "denoise", "exact_steps")}
    plain = mi.img2img_run(models["tiny-sd"], plain_spec)
    assert torch.equal(plain["init_latent"], r["init_latent"])
    assert torch.equal(plain["noise"], r["noise"])
    assert torch.equal(plain["latents"], r["latents"]) and torch.equal(plain["latents"], r["blended"])
    _, img, _ = fs.decode_a1111(models["tiny-sd"].vae, plain["latents"], mpf.SCALE_FACTOR, "mul")
    assert np.array_equal(img, r["final"]) and np.array_equal(img, r["decoded"])
    print(f"  check: {name!r} == make_img2img_fixtures.img2img_run (init latent, noise, latents, picture)", flush=True)


# --- the primitives: Pillow / cv2 and their integer restatements ----------------------------------------

def cv2_kernel_q8(n, sigma):
    """The integer kernel cv2.GaussianBlur uses for 8-bit pictures (smooth.dispatch.cpp, OpenCV 4.x):
    getGaussianKernelBitExact (sigma > 0): v[i] = exp(-(x_i^2) / (8 sigma^2)) with x_i = 2 i - (n - 1)
    (i.e. exp(-(i - c)^2 / (2 sigma^2))) for i < n // 2, centre 1, normalised by 1 / (2 sum(v[i < c]) + 1)
    (doubles; OpenCV uses softfloat, the same values here); then getGaussianKernelFixedPoint_ED with 8
    fraction bits: from the outside in, adj = k[i] * 256 + err, q[i] = q[n-1-i] = cvRound(adj) (half to
    even), err = adj - q[i]; the centre = 256 - 2 sum(q[i < c])."""
    assert n % 2 == 1 and sigma > 0
    scale2 = -0.125 / (sigma * sigma)
    half = (n - 1) // 2
    vals = [math.exp(float((x * x)) * scale2) for x in range(1 - n, 0, 2)]
    assert len(vals) == half
    total = sum(vals) * 2 + 1.0
    mul = 1.0 / total
    k = [v * mul for v in vals]
    q, err, acc = [0] * n, 0.0, 0
    for i in range(half):
        adj = k[i] * 256 + err
        v0 = int(np.rint(adj))
        err = adj - v0
        q[i] = q[n - 1 - i] = v0
        acc += v0
    q[half] = 256 - 2 * acc
    return q


def reflect101(p, n):
    """cv::borderInterpolate(p, n, BORDER_REFLECT_101), cv2.GaussianBlur's default border."""
    if n == 1:
        return 0
    while p < 0 or p >= n:
        p = -p if p < 0 else n - 1 - (p - n) - 1
    return p


def cv2_blur_restated(a, ksize, sigma):
    """cv2.GaussianBlur(uint8 2-D, (k, 1) or (1, k), sigma) in integers: out = (sum q[i] *
    a[reflect101(x + i - k // 2)] + 128) >> 8 along the kernel's axis (the other kernel is [256]:
    the fixed-point result (S * 256 + 2^15) >> 16)."""
    kx, ky = ksize
    assert 1 in (kx, ky)
    horizontal = ky == 1
    k = kx if horizontal else ky
    q = cv2_kernel_q8(k, sigma)
    src = a.astype(np.int64) if horizontal else a.T.astype(np.int64)
    hh, ww = src.shape
    out = np.zeros_like(src)
    for x in range(ww):
        acc = np.zeros(hh, np.int64)
        for i in range(k):
            acc += q[i] * src[:, reflect101(x + i - k // 2, ww)]
        out[:, x] = (acc + 128) >> 8
    out = out.astype(np.uint8)
    return out if horizontal else out.T.copy()


def f32(v):
    return np.float32(v)


def pil_box_radius(radius, passes=3):
    """Pillow's _gaussian_blur_radius (BoxBlur.c), C float arithmetic (float32; sqrt and floor in double)."""
    sigma2 = f32(f32(radius) * f32(radius)) / f32(passes)
    L = f32(math.sqrt(12.0 * float(sigma2) + 1.0))
    l_ = f32(math.floor((float(L) - 1.0) / 2.0))
    a = f32(f32(f32(2) * l_) + f32(1)) * f32(f32(l_ * f32(l_ + f32(1))) - f32(f32(3) * sigma2))
    a = f32(a / f32(f32(6) * f32(sigma2 - f32(f32(l_ + f32(1)) * f32(l_ + f32(1))))))
    return f32(l_ + a)


def pil_box_weights(box_radius):
    """ImagingHorizontalBoxBlur's weights: radius = (int) r, ww = (UINT32)(2^24 / (r * 2 + 1)) (float
    division), fw = (2^24 - (2 radius + 1) ww) / 2 (integer)."""
    r = int(box_radius)
    ww = int(f32(16777216.0) / f32(f32(box_radius * f32(2)) + f32(1)))
    fw = (16777216 - (2 * r + 1) * ww) // 2
    return r, ww, fw


def pil_box_line(a, r, ww, fw):
    """One horizontal box pass on [rows, x] uint8: out = (ww * sum(a[clamp(x - r .. x + r)]) + fw *
    (a[clamp(x - r - 1)] + a[clamp(x + r + 1)]) + 2^23) >> 24, positions clamped to the row (the edge
    pixel repeats)."""
    n = a.shape[1]
    a = a.astype(np.int64)
    out = np.zeros_like(a)
    for x in range(n):
        idx = np.clip(np.arange(x - r, x + r + 1), 0, n - 1)
        s = a[:, idx].sum(axis=1)
        far = a[:, min(max(x - r - 1, 0), n - 1)] + a[:, min(max(x + r + 1, 0), n - 1)]
        out[:, x] = (s * ww + far * fw + (1 << 23)) >> 24
    return out.astype(np.uint8)


def pil_gaussian_blur_restated(arr, radius):
    """image.filter(ImageFilter.GaussianBlur(radius)) on an 8-bit [H, W, C] picture (each band alone):
    three horizontal box passes (8-bit after each), then three vertical ones."""
    br = pil_box_radius(radius)
    r, ww, fw = pil_box_weights(br)
    out = arr.copy()
    for c in range(arr.shape[2]):
        band = arr[:, :, c]
        for _ in range(3):
            band = pil_box_line(band, r, ww, fw)
        band = band.T
        for _ in range(3):
            band = pil_box_line(band, r, ww, fw)
        out[:, :, c] = band.T
    return out


def muldiv255(a, b):
    t = a.astype(np.int64) * b + 128
    return ((t >> 8) + t) >> 8


def premultiply_restated(rgba):
    """RGBA -> RGBa (Pillow's rgbA2rgba): c' = MULDIV255(c, a) = ((t >> 8) + t) >> 8 with t = c a + 128."""
    out = rgba.astype(np.int64).copy()
    a = out[..., 3:4]
    out[..., :3] = muldiv255(out[..., :3], a)
    return out.astype(np.uint8)


def unpremultiply_restated(rgba_pm):
    """RGBa -> RGBA (Pillow's rgba2rgbA): alpha 0 or 255: c as it is; else min(255 c // a, 255)."""
    out = rgba_pm.astype(np.int64).copy()
    a = out[..., 3:4]
    div = np.minimum((255 * out[..., :3]) // np.maximum(a, 1), 255)
    out[..., :3] = np.where((a == 0) | (a == 255), out[..., :3], div)
    return out.astype(np.uint8)


def paste_l_restated(dest, src, mask):
    """Image.paste(src, mask=L) (Paste.c paste_mask_L) on every band: DIV255(d (255 - m) + s m) with
    DIV255(x) = ((t >> 8) + t) >> 8, t = x + 128."""
    d, s_, m = dest.astype(np.int64), src.astype(np.int64), mask.astype(np.int64)[..., None]
    t = d * (255 - m) + s_ * m + 128
    return (((t >> 8) + t) >> 8).astype(np.uint8)


def alpha_composite_restated(dst, src):
    """Image.alpha_composite(dst, src) (AlphaComposite.c, PRECISION_BITS 7): src alpha 0 -> dst; else
    blend = da (255 - sa), outa255 = sa 255 + blend, coef1 = sa 255 255 2^7 // outa255, coef2 = 255 2^7
    - coef1, c = SHIFTFORDIV255(sc coef1 + dc coef2 + (0x80 << 7)) >> 7, a = SHIFTFORDIV255(outa255 +
    0x80), SHIFTFORDIV255(x) = ((x >> 8) + x) >> 8."""
    d, s_ = dst.astype(np.int64), src.astype(np.int64)
    sa, da = s_[..., 3:4], d[..., 3:4]
    blend = da * (255 - sa)
    outa255 = sa * 255 + blend
    coef1 = np.where(sa == 0, 0, (sa * 255 * 255 * 128) // np.maximum(outa255, 1))
    coef2 = 255 * 128 - coef1
    tmp = s_[..., :3] * coef1 + d[..., :3] * coef2 + (0x80 << 7)
    rgb = (((tmp >> 8) + tmp) >> 8) >> 7
    t = outa255 + 0x80
    alpha = ((t >> 8) + t) >> 8
    out = np.concatenate([rgb, alpha], axis=-1)
    return np.where(sa == 0, d, out).astype(np.uint8)


def fill_restated(rgb, mask_l):
    """masking.fill from the restated primitives."""
    hh, ww_ = mask_l.shape
    rgba = np.dstack([rgb, np.full((hh, ww_), 255, np.uint8)])
    masked = paste_l_restated(np.zeros((hh, ww_, 4), np.uint8), premultiply_restated(rgba), 255 - mask_l)
    mod = np.zeros((hh, ww_, 4), np.uint8)
    for radius, repeats in [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]:
        blurred = unpremultiply_restated(pil_gaussian_blur_restated(masked, radius))
        for _ in range(repeats):
            mod = alpha_composite_restated(mod, blurred)
    return mod[..., :3].copy()


def rand_u8(rng, shape):
    return rng.integers(0, 256, shape).astype(np.uint8)


def primitive_cases():
    """The cases (inputs from np.random.default_rng(4001) and the masks here) with the library's outputs;
    each checked against its restatement, and the restatements again on random inputs."""
    rng = np.random.default_rng(4001)
    masks = make_masks()
    disc = np.array(masks["disc_24x24.png"])
    doc = {}

    # cv2.GaussianBlur: A1111's (k, 1) / (1, k) kernels, k = 2 int(2.5 sigma + 0.5) + 1
    cases = []
    inputs = [disc[4:10, 6:14].copy(), rand_u8(rng, (9, 12)), disc, (rand_u8(rng, (6, 8)) > 128).astype(np.uint8) * 255]
    for arr in inputs:
        for sigma in (0.5, 1, 2, 4, 16):
            k = 2 * int(2.5 * sigma + 0.5) + 1
            for ksize in ((k, 1), (1, k)):
                out = cv2.GaussianBlur(arr, ksize, sigma)
                assert np.array_equal(out, cv2_blur_restated(arr, ksize, sigma)), (arr.shape, ksize, sigma)
                cases.append({"input": pic(arr), "ksize": list(ksize), "sigma": sigma,
                              "kernel_q8": cv2_kernel_q8(k, sigma), "output": pic(out)})
    for _ in range(200):
        hh, ww_ = rng.integers(1, 20, 2)
        sigma = float(rng.choice([0.5, 1, 1.5, 2, 3, 4, 7, 16]))
        k = 2 * int(2.5 * sigma + 0.5) + 1
        arr = rand_u8(rng, (hh, ww_))
        ksize = (k, 1) if rng.integers(2) else (1, k)
        assert np.array_equal(cv2.GaussianBlur(arr, ksize, sigma), cv2_blur_restated(arr, ksize, sigma)), (hh, ww_, ksize, sigma)
    doc["cv2_gaussian_blur"] = cases

    # Pillow GaussianBlur on RGBa pictures
    cases = []
    for hh, ww_ in ((6, 8), (13, 11), (24, 24)):
        arr = rand_u8(rng, (hh, ww_, 4))
        arr = premultiply_restated(arr)
        im = Image.frombytes("RGBa", (ww_, hh), arr.tobytes())
        for radius in (0, 2, 4, 16, 64, 256):
            out = np.frombuffer(im.filter(ImageFilter.GaussianBlur(radius)).tobytes(), np.uint8).reshape(hh, ww_, 4)
            assert np.array_equal(out, pil_gaussian_blur_restated(arr, radius)), (hh, ww_, radius)
            br = pil_box_radius(radius)
            r, ww, fw = pil_box_weights(br)
            cases.append({"input": {"mode": "RGBa", **rgba_bytes(arr)}, "radius": radius, "box_radius": float(br),
                          "box_int_radius": r, "ww": ww, "fw": fw, "output": {"mode": "RGBa", **rgba_bytes(out)}})
    for radius in list(range(0, 40)) + [64, 100, 256, 0.5, 1.5, 2.5]:
        arr = rand_u8(rng, (int(rng.integers(1, 9)), int(rng.integers(1, 9)), 4))
        im = Image.frombytes("RGBa", (arr.shape[1], arr.shape[0]), arr.tobytes())
        out = np.frombuffer(im.filter(ImageFilter.GaussianBlur(radius)).tobytes(), np.uint8).reshape(arr.shape)
        assert np.array_equal(out, pil_gaussian_blur_restated(arr, radius)), radius
    doc["pil_gaussian_blur"] = cases

    # RGBA <-> RGBa
    a = np.array([[c, c // 2, 255 - c, al] for al in range(256) for c in (0, 1, 77, 128, 200, 254, 255)], np.uint8)
    a = a.reshape(1, -1, 4)
    pm = np.frombuffer(Image.frombytes("RGBA", (a.shape[1], 1), a.tobytes()).convert("RGBa").tobytes(),
                       np.uint8).reshape(a.shape)
    assert np.array_equal(pm, premultiply_restated(a))
    back = np.frombuffer(Image.frombytes("RGBa", (a.shape[1], 1), pm.tobytes()).convert("RGBA").tobytes(),
                         np.uint8).reshape(a.shape)
    assert np.array_equal(back, unpremultiply_restated(pm))
    raw = rand_u8(rng, (1, 4000, 4))
    unp = np.frombuffer(Image.frombytes("RGBa", (4000, 1), raw.tobytes()).convert("RGBA").tobytes(), np.uint8).reshape(raw.shape)
    assert np.array_equal(unp, unpremultiply_restated(raw))   # also premultiplied values above their alpha
    doc["premultiply"] = [{"input": {"mode": "RGBA", **rgba_bytes(a)}, "output": {"mode": "RGBa", **rgba_bytes(pm)}}]
    doc["unpremultiply"] = [{"input": {"mode": "RGBa", **rgba_bytes(pm)}, "output": {"mode": "RGBA", **rgba_bytes(back)}},
                            {"input": {"mode": "RGBa", **rgba_bytes(raw[:, :300])},
                             "output": {"mode": "RGBA", **rgba_bytes(unp[:, :300])}}]

    # paste with an L mask (RGBa into RGBa, as init() and fill do)
    cases = []
    for hh, ww_ in ((6, 8), (24, 24)):
        for trial in range(2):
            dest = rand_u8(rng, (hh, ww_, 4)) if trial else np.zeros((hh, ww_, 4), np.uint8)
            src = rand_u8(rng, (hh, ww_, 4))
            m = rand_u8(rng, (hh, ww_))
            im = Image.frombytes("RGBa", (ww_, hh), dest.tobytes())
            im.paste(Image.frombytes("RGBa", (ww_, hh), src.tobytes()), mask=Image.fromarray(m, "L"))
            out = np.frombuffer(im.tobytes(), np.uint8).reshape(hh, ww_, 4)
            assert np.array_equal(out, paste_l_restated(dest, src, m))
            cases.append({"dest": {"mode": "RGBa", **rgba_bytes(dest)}, "source": {"mode": "RGBa", **rgba_bytes(src)},
                          "mask": pic(m), "output": {"mode": "RGBa", **rgba_bytes(out)}})
    doc["paste_l_mask"] = cases

    # alpha_composite
    cases = []
    for hh, ww_ in ((6, 8), (24, 24), (40, 100)):
        dst = rand_u8(rng, (hh, ww_, 4))
        src = rand_u8(rng, (hh, ww_, 4))
        src[0, :, 3] = 0
        src[1, :, 3] = 255
        dst[2, :, 3] = 0
        dst[3, :, 3] = 255
        out = np.array(Image.alpha_composite(Image.fromarray(dst, "RGBA"), Image.fromarray(src, "RGBA")))
        assert np.array_equal(out, alpha_composite_restated(dst, src))
        if hh < 40:
            cases.append({"dest": pic_rgba(dst), "source": pic_rgba(src), "output": pic_rgba(out)})
    doc["alpha_composite"] = cases

    # masking.fill
    cases = []
    pict = mi.make_picture(24, 24, 3001)
    for mname in ("disc_24x24.png", "corner_24x24.png", "white_24x24.png"):
        m = masks[mname]
        out = np.array(masking_fill(Image.fromarray(pict), m))
        assert np.array_equal(out, fill_restated(pict, np.array(m.convert("L"))))
        cases.append({"picture": pic(pict), "mask": pic(m), "output": pic(out)})
    small = mi.make_picture(8, 6, 3003)
    sm = np.zeros((6, 8), np.uint8)
    sm[1:4, 2:7] = 255
    sm[4, 3] = 90
    out = np.array(masking_fill(Image.fromarray(small), Image.fromarray(sm)))
    assert np.array_equal(out, fill_restated(small, sm))
    cases.append({"picture": pic(small), "mask": pic(sm), "output": pic(out)})
    blurred = Image.fromarray(gaussian_blur_mask(np.array(masks["disc_24x24.png"]), 2)).convert("RGB")
    out = np.array(masking_fill(Image.fromarray(pict), blurred))
    assert np.array_equal(out, fill_restated(pict, np.array(blurred.convert("L"))))
    cases.append({"picture": pic(pict), "mask": pic(blurred), "output": pic(out)})
    doc["fill"] = cases

    # crop regions
    cases = []
    for mname, pad, w, h in (("corner_24x24.png", 4, 24, 24), ("corner_24x24.png", 0, 24, 24),
                             ("corner_24x24.png", 4, 16, 24), ("band_24x24.png", 4, 16, 24),
                             ("band_24x24.png", 0, 24, 24), ("disc_24x24.png", 2, 24, 16),
                             ("disc_24x24.png", 30, 24, 24), ("band_24x24.png", 2, 8, 24)):
        m = masks[mname].convert("L")
        for blur in (0, 2):
            mb = Image.fromarray(gaussian_blur_mask(np.array(m), blur)) if blur else m
            crop = get_crop_region_v2(mb, pad)
            exp = expand_crop_region(crop, w, h, mb.width, mb.height)
            cases.append({"mask": pic(mb), "padding": pad, "width": w, "height": h,
                          "crop_region": list(crop), "expanded_region": list(exp)})
    assert get_crop_region_v2(Image.new("L", (8, 6))) is None
    cases.append({"mask": pic(Image.new("L", (8, 6))), "padding": 4, "width": 8, "height": 8,
                  "crop_region": None, "expanded_region": None})
    doc["crop_region"] = cases

    # the latent mask resize (default filter: BICUBIC), as Pillow 9.5 computes it
    cases = []
    for mname, size in (("disc_24x24.png", (12, 12)), ("rgb_blob_24x24.png", (12, 12)), ("soft_16x16.png", (8, 12))):
        m = masks[mname].convert("RGB")
        blurred = Image.fromarray(gaussian_blur_mask(np.array(masks[mname].convert("L")), 2)).convert("RGB")
        for im in (m, blurred):
            cases.append({"input": pic(im), "size": list(size), "output": pic(bicubic_9_5(im, *size))})
    doc["latmask_resize"] = cases

    # create_binary_mask
    cases = []
    for mname in ("alpha_rect_24x24.png", "rgb_blob_24x24.png", "disc_24x24.png"):
        cases.append({"input": pic(masks[mname]), "output": pic(create_binary_mask(masks[mname]))})
    opaque = masks["alpha_rect_24x24.png"].copy()
    opaque.putalpha(255)
    cases.append({"input": pic(opaque), "output": pic(create_binary_mask(opaque))})   # alpha all 255: convert("L")
    doc["create_binary_mask"] = cases
    return doc


def rgba_bytes(arr):
    return {"shape": list(arr.shape), "uint8_base64": base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()}


def pic_rgba(arr):
    return {"mode": "RGBA", **rgba_bytes(arr)}


PILLOW_11_CHECK = MASKING_SOURCE + r'''
import base64, json, sys
import numpy as np
import PIL
from PIL import Image, ImageFilter


def load(d):
    a = np.frombuffer(base64.b64decode(d["uint8_base64"]), np.uint8).reshape(d["shape"])
    return Image.frombytes(d["mode"], (a.shape[1], a.shape[0]), a.tobytes())


def b64(im):
    return base64.b64encode(im.tobytes()).decode()


doc = json.load(sys.stdin)
out = {"version": PIL.__version__, "ok": 0}
for c in doc["pil_gaussian_blur"]:
    assert b64(load(c["input"]).filter(ImageFilter.GaussianBlur(c["radius"]))) == c["output"]["uint8_base64"]
    out["ok"] += 1
for c in doc["premultiply"]:
    assert b64(load(c["input"]).convert("RGBa")) == c["output"]["uint8_base64"]; out["ok"] += 1
for c in doc["unpremultiply"]:
    assert b64(load(c["input"]).convert("RGBA")) == c["output"]["uint8_base64"]; out["ok"] += 1
for c in doc["paste_l_mask"]:
    im = load(c["dest"]); im.paste(load(c["source"]), mask=load(c["mask"]))
    assert b64(im) == c["output"]["uint8_base64"]; out["ok"] += 1
for c in doc["alpha_composite"]:
    assert b64(Image.alpha_composite(load(c["dest"]), load(c["source"]))) == c["output"]["uint8_base64"]; out["ok"] += 1
for c in doc["fill"]:
    assert b64(fill(load(c["picture"]), load(c["mask"]))) == c["output"]["uint8_base64"]; out["ok"] += 1
for c in doc["crop_region"]:
    cr = get_crop_region_v2(load(c["mask"]), c["padding"])
    assert (list(cr) if cr else None) == c["crop_region"]; out["ok"] += 1
for c in doc["latmask_resize"]:
    assert b64(load(c["input"]).resize(tuple(c["size"]))) == c["output"]["uint8_base64"]; out["ok"] += 1
for c in doc["create_binary_mask"]:
    assert b64(create_binary_mask(load(c["input"]))) == c["output"]["uint8_base64"]; out["ok"] += 1
for r in doc["runs"]:
    if r["kind"] != "inpaint":
        continue
    for i in range(r["image"]["shape"][0]):
        dec = np.frombuffer(base64.b64decode(r["decoded"]["uint8_base64"]), np.uint8).reshape(r["decoded"]["shape"])[i]
        im = Image.fromarray(dec)
        if r["mask"]["paste_to"]:
            uc = np.frombuffer(base64.b64decode(r["uncropped"]["uint8_base64"]), np.uint8).reshape(r["uncropped"]["shape"])[i]
            im = Image.fromarray(uc, "RGBA")
        fin = np.frombuffer(base64.b64decode(r["image"]["uint8_base64"]), np.uint8).reshape(r["image"]["shape"])[i]
        assert composite(im, load(r["picture"]["overlay"])).tobytes() == fin.tobytes(), r["name"]
        out["ok"] += 1
print(json.dumps(out))
'''


def check_pillow_11(prim, runs):
    """The Pillow cases (blur, conversions, paste, alpha_composite, fill, crop region, the latent-mask
    resize with ONE resize call, create_binary_mask) and every run's overlay composite again under Pillow
    11 (run_all.sh's .venv-ref/pillow-11; 9.5's algorithms), in a subprocess. Skipped when absent."""
    if not os.path.isdir(os.path.join(mi.PILLOW_11, "PIL")):
        print("  check: Pillow 11 not at .venv-ref/pillow-11, cross-check skipped", flush=True)
        return
    env = dict(os.environ, PYTHONPATH=mi.PILLOW_11)
    res = subprocess.run([sys.executable, "-c", PILLOW_11_CHECK], input=json.dumps(dict(prim, runs=runs)),
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout)
    assert got["version"].startswith("11."), got
    print(f"  check: {got['ok']} primitive cases and overlay composites the same under Pillow {got['version']}",
          flush=True)


# --- main -------------------------------------------------------------------------------------------

def main():
    t_start = time.time()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    fs._check_nv()
    files = write_files()
    prim = primitive_cases()
    print("  primitives: " + ", ".join(f"{k} {len(v)}" for k, v in prim.items()), flush=True)

    unet9, model_info = make_inpaint_model()
    models = {"tiny-sd": TinySD(), "tiny-sd-inpaint": TinySDInpaint(unet9)}
    mhf.check_against_pipeline_generator(models["tiny-sd"])
    specs = [(name, (m, kind, s)) for name, m, kind, s in run_specs()]
    runs, raw, names = record_runs(models, specs, record)
    check_white_mask(models, raw, "tiny-sd / white mask / original / blur 0 / Euler a (= plain img2img)")
    # the two models see the same picture and latent mask on the same settings; their latents differ
    a, b = raw["tiny-sd / only masked / padding 4 / original / blur 2 / Euler a"], \
        raw["tiny-sd-inpaint / only masked / padding 4 / original / blur 2 / Euler a"]
    assert np.array_equal(a["latmask"], b["latmask"]) and np.array_equal(a["prep"]["pixels"], b["prep"]["pixels"])
    assert not torch.equal(a["blended"], b["blended"])
    # the inpainting model's conditioning: channel 0 the mask, 1..4 the masked picture's latent
    r = raw["tiny-sd-inpaint / whole picture / original / blur 2 / Euler a"]
    assert set(torch.unique(r["image_cond"][:, 0]).tolist()) == {0.0, 1.0}
    check_pillow_11(prim, runs)

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": fs.version("diffusers"),
                     "transformers": fs.version("transformers"), "k_diffusion": fs.version("k-diffusion"),
                     "torchsde": fs.version("torchsde"), "numpy": np.__version__, "pillow": fs.version("pillow"),
                     "opencv": cv2.__version__},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "models": {"tiny-sd": {"path": "Tests/Fixtures/tiny-sd", "conditioning_key": "crossattn"},
                   "tiny-sd-inpaint": dict(model_info, conditioning_key="hybrid"),
                   "vae_scale": OPT_F, "scaling_factor": mpf.SCALE_FACTOR,
                   "attention": "UNet/VAE: diffusers AttnProcessor (explicit softmax); CLIP: eager"},
        "a1111": {
            "encode_choice": "sdshell's documented choice, the one difference from A1111: every VAE encode (init "
                             "latent, the inpainting model's masked-picture conditioning, its txt2img grey "
                             "conditioning) is the posterior MEAN x 0.18215; A1111 samples the posterior",
            "opt_f": "A1111's opt_f (8) is the tiny VAE's scale 2: latent = picture / 2",
            "mask": "create_binary_mask (RGBA with alpha not all 255: alpha > 128; else convert L); invert "
                    "(Mask mode); cv2.GaussianBlur (k, 1) then (1, k), k = 2 int(2.5 b + 0.5) + 1, sigma b; whole "
                    "picture: resize_image(resize_mode) and mask_for_overlay = clip(2 mask); only masked: "
                    "get_crop_region_v2(pad) -> expand_crop_region -> crop -> resize_image(2), paste_to",
            "picture": "flatten; resize_image(resize_mode) (whole) or crop + resize_image(2) (only masked); overlay "
                       "= RGBa paste of the picture through the inverted mask_for_overlay, as RGBA; fill != 1: "
                       "masking.fill with latent_mask",
            "latent_mask": "latent_mask.convert('RGB').resize(latent size) (BICUBIC, Pillow 9.5 pass order) / 255, "
                           "channel 0, np.around, tiled to 4 channels; mask = 1 - latmask, nmask = latmask",
            "latent_fill": "2: init_latent * mask + ImageRNG(seeds).next() * nmask; 3: init_latent * mask",
            "denoiser": "image_cond_in = cat([image_cond, image_cond]) as c_concat (hybrid: cat([x * c_in, "
                        "c_concat]) into the UNet); after CFG: denoised * nmask + init_latent * mask; after "
                        "sampling: samples * nmask + init_latent * mask",
            "overlay": "decode; only masked: uncrop (resize_image(1) to the paste box, pasted on transparent "
                       "RGBA of the init size); convert RGBA, alpha_composite(overlay), convert RGB",
            "infotext": "Steps, Sampler, Schedule type, CFG scale, Seed, Size, [Model hash, Model], Denoising "
                        "strength, Conditional mask weight (inpainting model, '1.0'), RNG, Mask mode, Mask blur "
                        "(only > 0), Inpaint area, Masked area padding, Masked content (fill / latent noise / "
                        "latent nothing; none for original), [Version]",
            "defaults_assumed": "mask_round True, inpainting_mask_weight 1.0, overlay_inpaint on, "
                                "upscaler_for_img2img None, img2img_color_correction off, initial_noise_multiplier 1, "
                                "img2img_extra_noise 0, img2img_fix_steps off, sd_vae_encode_method Full, "
                                "eta_ancestral 1, s_noise 1, scheduler Automatic, batch_cond_uncond on, no "
                                "extension scripts (soft inpainting off)",
        },
        "files": files,
        "runs": runs,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    formulas = {
        "cv2_gaussian_blur": cv2_kernel_q8.__doc__ + " " + cv2_blur_restated.__doc__,
        "pil_gaussian_blur": pil_box_radius.__doc__ + " " + pil_box_weights.__doc__ + " " + pil_box_line.__doc__
                             + " " + pil_gaussian_blur_restated.__doc__,
        "premultiply": premultiply_restated.__doc__, "unpremultiply": unpremultiply_restated.__doc__,
        "paste_l_mask": paste_l_restated.__doc__, "alpha_composite": alpha_composite_restated.__doc__,
        "fill": "masking.fill: image_masked = RGBa zeros, paste(picture RGBA->RGBa, mask = 255 - mask L); image_mod "
                "= RGBA zeros; for (radius, repeats) in (256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1): blurred = "
                "GaussianBlur(radius) of image_masked, RGBa -> RGBA; repeats x image_mod = alpha_composite("
                "image_mod, blurred); RGB of image_mod (alpha dropped)",
    }
    pdoc = {"generator": GENERATOR,
            "versions": {"pillow": fs.version("pillow"), "opencv": cv2.__version__, "numpy": np.__version__},
            "note": "pictures as {mode, shape, uint8_base64}; every output here is the library's own, and "
                    "this script checks the integer restatements in 'formulas' against them and random inputs",
            "formulas": {k: " ".join(v.split()) for k, v in formulas.items()},
            **prim}
    psize = fs.write_json_fixture(PRIMITIVES_OUT, pdoc, MAX_PRIMITIVE_BYTES)
    print(f"wrote {fs.rel(OUT)} ({size} bytes, {len(runs)} runs), {fs.rel(PRIMITIVES_OUT)} ({psize} bytes), "
          f"{fs.rel(MODEL_FILE)} ({model_info['bytes']} bytes), {len(files)} PNGs; {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

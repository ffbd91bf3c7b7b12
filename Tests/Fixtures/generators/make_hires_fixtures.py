#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/hires.json: reference runs of AUTOMATIC1111's hires fix (txt2img
with enable_hr and a *latent* upscaler, webui 1.10) on the tiny model Tests/Fixtures/tiny-sd/, for
sdshell's TextToImage.latents / hiresPass / pass and HiresFix.

    .venv-ref/bin/python Tests/Fixtures/generators/make_hires_fixtures.py

Needs what make_pipeline_fixtures.py needs (tiny-sd/, k-diffusion, torchsde, diffusers, transformers)
and IMPORTS that script for the A1111 pieces it already restates (importing it writes nothing; its
main() does not run): ImageRNG (modules/rng.py, CPU and NV sources), CFGDenoiser
(sd_samplers_cfg_denoiser.py), LDMLike + k-diffusion's CompVisDenoiser, get_sigmas
(KDiffusionSampler.get_sigmas with discard_next_to_last_sigma), a1111_chunk_ids (the prompt's 77 ids),
a1111_torchsde_randn (A1111's replacement of torchsde's _randn), SAMPLER_OPTS / EXTRA_PARAMS /
P_VALUES / ETA (what KDiffusionSampler passes). Also fixture_support's TorchHijack, decode_a1111,
enc32 / f32_text and write_json_fixture. Its own code: the hires fix itself (below), a sampling loop
that takes a sigma list (the txt2img and the img2img pass share it; checked bit for bit against
make_pipeline_fixtures.run_txt2img on two pipeline.json settings) and the infotext.
Everything float32 on the CPU, one thread; deterministic for the same library versions and CPU kind.

make_img2img_fixtures.py IMPORTS from here what the two share rather than restating it (importing this
script writes nothing; its main() does not run): Model (its attention() switches the VAE's too: the
encode's spread there), sample, sample_img2img (the img2img pass from given latents: ImageRNG's first
draw, get_sigmas, sigma_sched, xi, the sampler), setup_img2img_steps (fix_steps: the hires pass's
branch, or img2img's default), quote / number / infotext (hires=False: without the "Hires ..." keys),
sampler_schedule, check_against_pipeline_generator and the record helpers (reference_runs,
check_img2img_pass, img2img_pass_json, images_json, pictures_json, record_runs), and OPT_F / BATCH /
PROMPT.

The model's latent scale
------------------------
A1111 divides pixel sizes by opt_f = 8, the SD VAE's scale. The tiny model's VAE scale is 2 (tiny_sd_info.json),
so here opt_f = 2 everywhere A1111 writes opt_f: the first pass's latent [4, h // 2, w // 2], the
interpolation size (target // 2) and truncate_x / truncate_y ((hr_upscale_to - hr_resize) // 2). This
is what sdshell does (model.vaeScale). So a 16x16 first pass here is what a 64x64 one is for SD (an
8x8 latent), hires_size 32x24 here is SD's 128x96 (latent 16x12, truncate_y 4), and so on. (A1111's seed
resize, not used here, divides by a literal 8 in sdshell as in A1111.)

What A1111 does (processing.py StableDiffusionProcessingTxt2Img, sd_samplers_kdiffusion.py,
sd_samplers_common.py; 1.10), and this script too
---------------------------------------------------------------------------------------------------
1. First pass: txt2img at width x height exactly as make_pipeline_fixtures.py does it (seeds seed + i,
   ImageRNG(rng, [4, h/2, w/2]) first draw x sigmas[0], CFG denoiser with cond first, the k-diffusion
   sampler over get_sigmas(steps); its step noise is the ImageRNG's next() (TorchHijack); the SDE
   samplers' BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(), seed=seeds)).
2. Target (calculate_target_resolution): hires_scale: hr_upscale_to_x = int(width * hr_scale), _y likewise
   (Python double); hires_size (hr_resize_x x hr_resize_y): one side 0 -> to_x = hr_resize_x,
   to_y = hr_resize_x * height // width (or the other way round); both set -> if width / height <
   hr_resize_x / hr_resize_y: to_x = hr_resize_x, to_y = hr_resize_x * height // width, else to_y =
   hr_resize_y, to_x = hr_resize_y * width // height; truncate_x = (to_x - hr_resize_x) // opt_f,
   truncate_y = (to_y - hr_resize_y) // opt_f (0 unless both sides are set).
3. samples = F.interpolate(first_latents, size=(to_y // opt_f, to_x // opt_f), mode, antialias) with
   shared.latent_upscale_modes: "Latent" bilinear/False, "Latent (antialiased)" bilinear/True,
   "Latent (bicubic)" bicubic/False, "Latent (bicubic antialiased)" bicubic/True, "Latent (nearest)"
   nearest/False, "Latent (nearest-exact)" nearest-exact/False (align_corners unset);
   then samples = samples[:, :, ty // 2 : H - (ty + 1) // 2, tx // 2 : W - (tx + 1) // 2].
   The second pass's image is [3, 2 H', 2 W'] for the truncated latent [4, H', W']: NOT to_x x to_y when
   to_x or to_y is odd (the runs "... / hires_size 0x56 ..." and "... / scale 1.35" have such targets).
4. self.rng = ImageRNG(samples.shape[1:], seeds, subseeds, subseed_strength, seed resize); noise =
   rng.next(): the FIRST draw of a fresh generator per seed at the new shape (NV: Philox(seed) at offset
   0, so its first numel(first pass) values per image equal the first pass's initial noise; checked).
   Every later next() (k-diffusion's randn_like, through TorchHijack(p) made in sampler.initialize after
   p.rng was replaced) continues these generators: the second pass's ancestral step noise.
5. hr conds: hr_prompt or prompt, hr_negative_prompt or negative_prompt, one encode per distinct text
   (plain prompts here: the prompt-editing schedule, steps = hr_second_pass_steps or steps, plays no part).
6. sampler = create_sampler(hr_sampler_name or sampler_name) (scheduler: hr_scheduler = scheduler =
   "Automatic", i.e. the HIRES sampler's default schedule); sample_img2img(p, samples, noise, hr_c, hr_uc,
   steps=hr_second_pass_steps or steps):
       requested = steps given (setup_img2img_steps: a steps argument always takes the "fix steps" branch)
       total = int(requested / min(denoising_strength, 0.999))  (Python float division, truncation;
               0 if the strength is 0)
       t_enc = requested - 1
       sigmas = get_sigmas(p, total)  (the sampler's schedule for `total` steps; with
               discard_next_to_last_sigma made for total + 1 and its penultimate value dropped)
       sigma_sched = sigmas[total - t_enc - 1:]    (requested + 1 values, the last 0)
       xi = samples + noise * sigma_sched[0]       (img2img_extra_noise 0)
       the sampler runs from xi over sigma_sched (t_enc + 1 = requested steps), eta 1 etc. as txt2img;
       SDE samplers: BrownianTreeNoiseSampler(samples, FULL sigmas[sigmas > 0].min(), FULL sigmas.max(),
       seed=the batch's seeds) (create_noise_sampler(x, sigmas, p) gets the whole list, not sigma_sched).
7. Decode: per image vae.decode((1. / 0.18215) * latent), clamp((x + 1) / 2, 0, 1), 255. * HWC float32,
   astype(uint8) (truncation) -- fixture_support.decode_a1111.
8. Infotext (create_infotext; extra_generation_params in insertion order): "Steps" (first pass), "Sampler"
   (first pass), "Schedule type" (p.scheduler = "Automatic", replaced by the first pass's scheduler label
   where the sampler's default schedule has one: "Karras" for DPM++ 2M / DPM++ SDE), "CFG scale", "Seed"
   (the image's), "Size" (the FIRST pass's), ["Model hash", "Model": left out here], "Denoising
   strength" (a core key: its place is fixed there, before "Clip skip"), "RNG" ("NV" / "CPU"; none for
   A1111's "GPU" source), then the extra params as init() inserts them: "Hires sampler" (when it differs),
   "Hires prompt" / "Hires negative prompt" (when they differ from the image's prompt / negative),
   "Hires schedule type" (only when the hires schedule's label differs from "Schedule type"),
   "Hires upscale" (hr_scale) or "Hires resize" ("WxH"), "Hires steps" (when set), "Hires upscaler";
   ["Version": left out]. Numbers as the webui's sliders send them: whole numbers without ".0" ("Hires
   upscale: 2", "CFG scale: 5"), others as Python's repr ("Denoising strength: 0.45"). Values with ",",
   ":" or a newline are JSON-quoted (infotext_utils.quote).

File layout (tensors {"shape", "data"} with float32 values as fixture_support.enc32 writes them:
the shortest decimal that reads back as that float32; images as pipeline_images.json: "shape"
[N, H, W, 3] and "uint8_base64" of the bytes in [image, y, x, RGB] order)
---------------------------------------------------------------------------------------------------
{"generator", "versions", "model": {"path", "vae_scale" 2 (= opt_f here), "scaling_factor",
  "attention"}, "a1111": {notes}, "hires_defaults": {sdshell's defaults of the hires_* parameters,
  which "settings" leaves out}, "runs": [RUN, ...]}
RUN = {
  "name",
  "settings": sdshell parameter names and values: "prompt", "negative", "seed" (image i has seed + i),
      "steps", "cfg", "sampler", "size" [w, h], "batch", "rng" ("nv" | "cpu"), and each hires_* whose
      value is not its default: "hires_scale", "hires_size" [w, h], "hires_steps", "hires_upscaler",
      "hires_denoise", "hires_sampler", "hires_prompt", "hires_negative",
  "a1111": what A1111 ran: "seeds", "sampler_name", "hr_sampler_name" (null: the same), "schedule"
      and "hr_schedule" (resolved: "automatic" = k-diffusion get_sigmas, "karras", ...),
      "discard_next_to_last_sigma" / "hr_discard_next_to_last_sigma", "enable_hr", "hr_scale",
      "hr_resize_x", "hr_resize_y", "hr_upscaler", "mode", "antialias", "denoising_strength",
      "hr_second_pass_steps", "hr_prompt", "hr_negative_prompt" (as processed: "" -> the first pass's),
      "cfg_scale", "opt_f",
  "first_pass": {"latent_shape" [B, 4, h/2, w/2], "sigmas", "denoiser_calls", "rng_next_calls",
      "latents" [B, 4, h/2, w/2]},
  "hires": {"hr_upscale_to_x", "hr_upscale_to_y", "truncate_x", "truncate_y" (latent cells),
      "interpolate_size" [to_y // 2, to_x // 2], "width", "height" (the second pass's image size:
      2 x the truncated latent's), "upscaled" (the interpolated AND truncated latents, contiguous),
      "noise" (the hires ImageRNG's first draw, same shape), "requested_steps", "total", "t_enc",
      "start_index" (= total - t_enc - 1), "sigmas" (get_sigmas(total): the full schedule, total + 1
      values), "sigma_sched" (sigmas[start_index:], what the sampler runs over), "brownian" (SDE
      samplers: {"sigma_min", "sigma_max"} of the tree, from the FULL sigmas; else null),
      "denoiser_calls", "rng_next_calls" (next() calls after the first draw), "rng_draws_used"
      (whether those draws reach the result: ancestral samplers), "latents" (the final latents)},
  "sdpa_latents_max_abs_diff": max |final latents with diffusers' SDPA attention - these| (the
      reference's own float32 spread, for tolerances; "first_pass_sdpa_max_abs_diff" likewise),
  "image": {"shape" [B, H, W, 3], "uint8_base64"} (A1111's 8-bit decode of the final latents),
  "infotexts": [per image: the A1111 infotext text, without "Model hash", "Model" and "Version"],
  "infotext_parameters": [per image: [[key, value], ...] in that order]}
"""

import base64
import inspect
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# make_pipeline_fixtures imports transformers / diffusers before k-diffusion (see there) and
# writes nothing on import
import make_pipeline_fixtures as mpf  # noqa: E402
import fixture_support as fs  # noqa: E402
from fixture_support import enc32, f32_text  # noqa: E402
from transformers import CLIPTextModel  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402

KS = mpf.KS
BI = mpf.BI
OUT = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "hires.json")
GENERATOR = "Tests/Fixtures/generators/make_hires_fixtures.py"
MAX_BYTES = 1_500_000
OPT_F = mpf.VAE_SCALE            # A1111's opt_f (8 for SD) is the model's VAE scale: 2
BATCH = 2
PROMPT = "a red circle on a blue background"
HR_PROMPT = "a green square on a yellow background"

# shared.latent_upscale_modes
LATENT_UPSCALE_MODES = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
# sdshell's defaults of the hires rows (GenerationParameters.swift); "settings" lists the others
HIRES_DEFAULTS = {"hires_scale": 0.0, "hires_size": [0, 0], "hires_steps": 0, "hires_upscaler": "Latent",
                  "hires_denoise": 0.7, "hires_sampler": "", "hires_prompt": "", "hires_negative": ""}
# the labels A1111 1.10 writes for the schedule of a sampler's default (None: "Automatic" stays)
SCHEDULE_LABELS = {"automatic": None, "karras": "Karras", "exponential": "Exponential"}

BASE = {"prompt": PROMPT, "negative": "", "seed": 11, "steps": 6, "cfg": 5.0, "sampler": "Euler a",
        "size": [16, 16], "batch": BATCH, "rng": "nv"}


def run_specs():
    """(name, sdshell settings): the six latent upscalers at scale 2 (Euler a, its step noise from the new
    ImageRNG), DPM++ 2M with hires_steps, a denoising strength where Python's double division truncates
    below the exact quotient, hires_size with truncation, DPM++ SDE (the Brownian tree over the whole
    schedule, cpu rng), another hires prompt and sampler, nearest vs nearest-exact at a non-integer
    factor, a downscale with an odd truncation, one side of hires_size 0 with an odd target width, and
    a hires_scale whose target is odd. Sizes as SD's latent sizes (see the module doc)."""
    specs = []
    for upscaler in LATENT_UPSCALE_MODES:
        s = dict(BASE, hires_scale=2.0, hires_denoise=0.6)
        if upscaler != "Latent":
            s["hires_upscaler"] = upscaler
        specs.append((f"{upscaler} / Euler a / scale 2 / denoise 0.6", s))
    specs.append(("Latent / DPM++ 2M / scale 2 / hires_steps 4 / denoise 0.45",
                  dict(BASE, sampler="DPM++ 2M", hires_scale=2.0, hires_steps=4, hires_denoise=0.45)))
    # int(7 / 0.28) = int(24.999999999999996) = 24 in Python doubles; exact arithmetic and float32 give 25
    specs.append(("Latent (bicubic antialiased) / Euler / scale 1.5 / hires_steps 7 / denoise 0.28",
                  dict(BASE, sampler="Euler", hires_scale=1.5, hires_steps=7, hires_denoise=0.28,
                       hires_upscaler="Latent (bicubic antialiased)")))
    specs.append(("Latent / Euler a / hires_size 32x24 (truncate_y 4)",
                  dict(BASE, hires_size=[32, 24])))
    specs.append(("Latent / DPM++ SDE / scale 2 / denoise 0.5 / cpu",
                  dict(BASE, sampler="DPM++ SDE", rng="cpu", hires_scale=2.0, hires_denoise=0.5)))
    # at an integer factor nearest and nearest-exact agree (and bilinear with / without antialias up to
    # rounding): these two runs compare them at 1.75 (latent 8 -> 14) from the same first pass
    specs.append(("Latent (nearest-exact) / Euler a -> Euler / hires_prompt / scale 1.75",
                  dict(BASE, hires_scale=1.75, hires_upscaler="Latent (nearest-exact)", hires_prompt=HR_PROMPT,
                       hires_sampler="Euler")))
    specs.append(("Latent (nearest) / Euler a / scale 1.75",
                  dict(BASE, hires_scale=1.75, hires_upscaler="Latent (nearest)")))
    # 24x40 -> hires_size 16x16: to 16x26 (26 = 16 * 40 // 24), latent 8x13, truncate_y 5 (2 above, 3 below)
    specs.append(("Latent (antialiased) / Euler a / 24x40 to hires_size 16x16 (downscale, truncate_y 5)",
                  dict(BASE, size=[24, 40], hires_size=[16, 16], hires_upscaler="Latent (antialiased)",
                       hires_denoise=0.55)))
    # 16x24 -> hires_size 0x56: to_x = 56 * 16 // 24 = 37, latent 18x28, the image 36x56
    specs.append(("Latent (bicubic) / Euler a / 16x24 to hires_size 0x56 (to_x 37, image 36 wide)",
                  dict(BASE, size=[16, 24], hires_size=[0, 56], hires_upscaler="Latent (bicubic)")))
    # int(16 * 1.35) = 21: latent 10x10, the image 20x20
    specs.append(("Latent / Euler a / scale 1.35 (to 21x21, image 20x20)",
                  dict(BASE, hires_scale=1.35)))
    return specs


# --- A1111 pieces --------------------------------------------------------------------------------

def calculate_target_resolution(width, height, hr_scale, hr_resize_x, hr_resize_y):
    """StableDiffusionProcessingTxt2Img.calculate_target_resolution (1.10, use_old_hires_fix_width_height
    off), opt_f = the model's VAE scale. Returns (to_x, to_y, truncate_x, truncate_y)."""
    truncate_x = truncate_y = 0
    if hr_resize_x == 0 and hr_resize_y == 0:
        to_x, to_y = int(width * hr_scale), int(height * hr_scale)
    elif hr_resize_y == 0:
        to_x, to_y = hr_resize_x, hr_resize_x * height // width
    elif hr_resize_x == 0:
        to_x, to_y = hr_resize_y * width // height, hr_resize_y
    else:
        if width / height < hr_resize_x / hr_resize_y:
            to_x, to_y = hr_resize_x, hr_resize_x * height // width
        else:
            to_x, to_y = hr_resize_y * width // height, hr_resize_y
        truncate_x = (to_x - hr_resize_x) // OPT_F
        truncate_y = (to_y - hr_resize_y) // OPT_F
    return to_x, to_y, truncate_x, truncate_y


def setup_img2img_steps(p_steps, denoising_strength, fix_steps=True):
    """sd_samplers_common.setup_img2img_steps: (steps, t_enc). fix_steps: the branch a steps argument
    always takes (the hires pass: steps = int(requested / min(strength, 0.999)), t_enc = requested - 1),
    and img2img's with opts.img2img_fix_steps; else img2img's default (steps = p.steps,
    t_enc = int(min(strength, 0.999) * steps)). Python doubles throughout."""
    if fix_steps:
        requested = p_steps
        steps = int(requested / min(denoising_strength, 0.999)) if denoising_strength > 0 else 0
        t_enc = requested - 1
    else:
        steps = p_steps
        t_enc = int(min(denoising_strength, 0.999) * steps)
    return steps, t_enc


def quote(v):
    """infotext_utils.quote."""
    text = str(v)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    import json
    return json.dumps(text, ensure_ascii=False)


def number(v):
    """A number as the webui's sliders send it: whole numbers as ints."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def infotext(spec, a, image_index, hires=True):
    """create_infotext for one image of the run (Model hash, Model and Version left out); the "Hires ..."
    keys unless hires is False (make_img2img_fixtures: "Size" is the target there, spec's size too)."""
    s = spec
    w, h = s["size"]
    params = [("Steps", str(s["steps"])), ("Sampler", a["sampler_name"]),
              ("Schedule type", SCHEDULE_LABELS[a["schedule"]] or "Automatic"),
              ("CFG scale", number(s["cfg"])), ("Seed", str(a["seeds"][image_index])), ("Size", f"{w}x{h}"),
              ("Denoising strength", number(a["denoising_strength"])),
              ("RNG", {"nv": "NV", "cpu": "CPU"}[s["rng"]])]
    if hires:
        params += hires_params(s, a)
    text = ", ".join(f"{k}: {quote(v)}" for k, v in params)
    negative = f"\nNegative prompt: {s['negative']}" if s["negative"] else ""
    return f"{s['prompt']}{negative}\n{text}".strip(), [[k, v] for k, v in params]


def hires_params(s, a):
    """The hires fix's extra_generation_params, in the order init() inserts them."""
    extra = []
    if a["hr_sampler_name"] is not None and a["hr_sampler_name"] != a["sampler_name"]:
        extra.append(("Hires sampler", a["hr_sampler_name"]))
    if a["hr_prompt"] != s["prompt"]:
        extra.append(("Hires prompt", a["hr_prompt"]))
    if a["hr_negative_prompt"] != s["negative"]:
        extra.append(("Hires negative prompt", a["hr_negative_prompt"]))
    hr_label, first_label = SCHEDULE_LABELS[a["hr_schedule"]], SCHEDULE_LABELS[a["schedule"]]
    if hr_label is not None and hr_label != first_label:
        extra.append(("Hires schedule type", hr_label))
    if a["hr_resize_x"] == 0 and a["hr_resize_y"] == 0:
        extra.append(("Hires upscale", number(a["hr_scale"])))
    else:
        extra.append(("Hires resize", f"{a['hr_resize_x']}x{a['hr_resize_y']}"))
    if a["hr_second_pass_steps"]:
        extra.append(("Hires steps", str(a["hr_second_pass_steps"])))
    extra.append(("Hires upscaler", a["hr_upscaler"]))
    return extra


# --- the model and one sampling pass ----------------------------------------------------------------

class Model:
    def __init__(self):
        m = mpf.MODEL
        self.te = CLIPTextModel.from_pretrained(m, subfolder="text_encoder", dtype=torch.float32,
                                                attn_implementation="eager", local_files_only=True).eval()
        self.unet = UNet2DConditionModel.from_pretrained(m, subfolder="unet", torch_dtype=torch.float32,
                                                         local_files_only=True).eval()
        self.vae = AutoencoderKL.from_pretrained(m, subfolder="vae", torch_dtype=torch.float32,
                                                 local_files_only=True).eval()
        assert self.vae.config.scaling_factor == mpf.SCALE_FACTOR
        assert 2 ** (len(self.vae.config.block_out_channels) - 1) == OPT_F
        self.attention(sdpa=False)
        with tempfile.TemporaryDirectory() as d:
            self.tok = fs.load_tokenizer(*fs.build_tokenizer_files(fs.VOCAB_GZ, d))
        self.ac = fs.make_alphas_cumprod()
        self.inner = mpf.LDMLike(self.unet, self.ac)
        self.model_wrap = mpf.K.external.CompVisDenoiser(self.inner, quantize=False)
        self.conds = {}

    def cond(self, text):
        """A1111's conditioning of a plain prompt, clip skip 1 (one chunk, encoded once per text as a batch
        of one; emphasis with weights 1.0 is a no-op, asserted in make_pipeline_fixtures.Conditioner)."""
        if text not in self.conds:
            ids = mpf.a1111_chunk_ids(self.tok, text)
            with torch.no_grad():
                self.conds[text] = self.te(input_ids=torch.asarray([ids])).last_hidden_state
        return self.conds[text]

    def attention(self, sdpa):
        """The UNet's and the VAE's attention: diffusers' AttnProcessor (explicit softmax) or SDPA (the
        reference's own float32 spread; the VAE's counts for make_img2img_fixtures' encode)."""
        self.unet.set_attn_processor(AttnProcessor2_0() if sdpa else AttnProcessor())
        self.vae.set_attn_processor(AttnProcessor2_0() if sdpa else AttnProcessor())


def sampler_schedule(label):
    return mpf.A1111_DEFAULT_SCHEDULE[label]


def sample(model, label, x, sigmas, tree_sigmas, tree_x, cond_text, uncond_text, rng, rng_kind, seeds, cfg_scale):
    """KDiffusionSampler's call of the k-diffusion function (as make_pipeline_fixtures.run_txt2img):
    x is the start (txt2img: noise * sigmas[0]; img2img: samples + noise * sigma_sched[0]), sigmas the
    list it runs over; the SDE samplers' Brownian tree spans tree_sigmas' positive range, its shape
    from tree_x. Returns (latents, the CFG denoiser, the tree's (sigma_min, sigma_max) or None)."""
    funcname, opts = mpf.SAMPLER_OPTS[label]
    assert not opts.get("model_range") and funcname in KS.__dict__, label
    func = getattr(KS, funcname)
    parameters = inspect.signature(func).parameters
    kwargs = {name: mpf.P_VALUES[name] for name in mpf.EXTRA_PARAMS.get(funcname, []) if name in parameters}
    if "eta" in parameters:
        kwargs["eta"] = mpf.ETA
    if opts.get("solver_type") == "heun":
        kwargs["solver_type"] = "heun"
    tree_range = None
    BI._randn = mpf.a1111_torchsde_randn(rng_kind)
    if opts.get("brownian_noise"):
        smin, smax = tree_sigmas[tree_sigmas > 0].min(), tree_sigmas.max()
        kwargs["noise_sampler"] = KS.BrownianTreeNoiseSampler(tree_x, smin, smax, seed=seeds)
        tree_range = (smin, smax)
    c = torch.cat([model.cond(cond_text)] * x.shape[0])
    uc = torch.cat([model.cond(uncond_text)] * x.shape[0])
    cfg = mpf.CFGDenoiser(model.model_wrap)
    extra_args = {"cond": c, "image_cond": None, "uncond": uc, "cond_scale": cfg_scale, "s_min_uncond": 0.0}
    KS.torch = fs.TorchHijack(rng.next)
    try:
        with torch.no_grad():
            latents = func(cfg, x, sigmas=sigmas, extra_args=extra_args, disable=True, **kwargs)
    finally:
        KS.torch = mpf.REAL_TORCH
        BI._randn = mpf.TORCHSDE_RANDN
    assert torch.equal(cfg.first["x"], x)
    return latents, cfg, tree_range


def sample_img2img(model, label, samples, rng_kind, seeds, steps, t_enc, prompt, negative, cfg_scale,
                   scramble=False):
    """The img2img pass from samples (the hires fix's upscaled latents, img2img's init latent): p.rng =
    ImageRNG(samples' [4, h, w], seeds), noise = its first draw; KDiffusionSampler.sample_img2img with
    (steps, t_enc) from setup_img2img_steps: sigmas = get_sigmas(steps) of the sampler's default
    schedule, sigma_sched = sigmas[steps - t_enc - 1:], xi = samples + noise * sigma_sched[0], the
    sampler over sigma_sched (the SDE samplers' Brownian tree over the FULL sigmas, shaped as samples)."""
    _, opts = mpf.SAMPLER_OPTS[label]
    rng = mpf.ImageRNG(rng_kind, samples.shape[1:], seeds)
    rng.scramble = scramble
    noise = rng.next()
    sigmas = mpf.get_sigmas(model.model_wrap, sampler_schedule(label), steps,
                            bool(opts.get("discard_next_to_last_sigma")))
    start = steps - t_enc - 1
    sigma_sched = sigmas[start:]
    xi = samples + noise * sigma_sched[0]
    latents, cfg, tree = sample(model, label, xi, sigma_sched, sigmas, samples, prompt, negative, rng, rng_kind,
                                seeds, cfg_scale)
    return {"noise": noise, "steps": steps, "t_enc": t_enc, "start": start, "sigmas": sigmas, "sigma_sched": sigma_sched,
            "tree": tree, "latents": latents, "calls": cfg.calls, "next_calls": rng.next_calls, "label": label}


def txt2img_pass(model, label, shape, seeds, rng_kind, steps, prompt, negative, cfg_scale, scramble=False):
    """The first pass (processing.py: p.rng = ImageRNG(...); x = rng.next(); KDiffusionSampler.sample)."""
    _, opts = mpf.SAMPLER_OPTS[label]
    rng = mpf.ImageRNG(rng_kind, shape, seeds)
    rng.scramble = scramble
    noise = rng.next()
    sigmas = mpf.get_sigmas(model.model_wrap, sampler_schedule(label), steps,
                            bool(opts.get("discard_next_to_last_sigma")))
    x = noise * sigmas[0]
    latents, cfg, _ = sample(model, label, x, sigmas, sigmas, x, prompt, negative, rng, rng_kind, seeds, cfg_scale)
    return {"noise": noise, "sigmas": sigmas, "latents": latents, "calls": cfg.calls, "next_calls": rng.next_calls}


def a1111_settings(spec):
    s = spec
    hr_sampler = s.get("hires_sampler") or None
    hr_label = hr_sampler or s["sampler"]
    upscaler = s.get("hires_upscaler", "Latent")
    mode, antialias = LATENT_UPSCALE_MODES[upscaler]
    hr_w, hr_h = s.get("hires_size", [0, 0])
    return {
        "seeds": [s["seed"] + i for i in range(s["batch"])],
        "sampler_name": s["sampler"], "hr_sampler_name": hr_sampler,
        "schedule": sampler_schedule(s["sampler"]), "hr_schedule": sampler_schedule(hr_label),
        "discard_next_to_last_sigma": bool(mpf.SAMPLER_OPTS[s["sampler"]][1].get("discard_next_to_last_sigma")),
        "hr_discard_next_to_last_sigma": bool(mpf.SAMPLER_OPTS[hr_label][1].get("discard_next_to_last_sigma")),
        "enable_hr": True, "hr_scale": s.get("hires_scale", 0.0), "hr_resize_x": hr_w, "hr_resize_y": hr_h,
        "hr_upscaler": upscaler, "mode": mode, "antialias": antialias,
        "denoising_strength": s.get("hires_denoise", HIRES_DEFAULTS["hires_denoise"]),
        "hr_second_pass_steps": s.get("hires_steps", 0),
        "hr_prompt": s.get("hires_prompt") or s["prompt"],
        "hr_negative_prompt": s.get("hires_negative") or s["negative"],
        "cfg_scale": s["cfg"], "opt_f": OPT_F,
    }


def hires_run(model, spec, scramble_hires=False):
    """The whole txt2img + hires fix of one run; returns every intermediate."""
    s, a = spec, a1111_settings(spec)
    w, h = s["size"]
    seeds = a["seeds"]
    first = txt2img_pass(model, s["sampler"], (4, h // OPT_F, w // OPT_F), seeds, s["rng"], s["steps"],
                         s["prompt"], s["negative"], s["cfg"])
    to_x, to_y, tx, ty = calculate_target_resolution(w, h, a["hr_scale"], a["hr_resize_x"], a["hr_resize_y"])
    size = (to_y // OPT_F, to_x // OPT_F)
    samples = torch.nn.functional.interpolate(first["latents"], size=size, mode=a["mode"], antialias=a["antialias"])
    H, W = samples.shape[2], samples.shape[3]
    samples = samples[:, :, ty // 2:H - (ty + 1) // 2, tx // 2:W - (tx + 1) // 2]
    label = a["hr_sampler_name"] or a["sampler_name"]
    requested = a["hr_second_pass_steps"] or s["steps"]
    total, t_enc = setup_img2img_steps(requested, a["denoising_strength"])
    second = sample_img2img(model, label, samples, s["rng"], seeds, total, t_enc, a["hr_prompt"],
                            a["hr_negative_prompt"], s["cfg"], scramble=scramble_hires)
    return dict(second, a=a, first=first, to=(to_x, to_y), truncate=(tx, ty), interpolate_size=list(size),
                samples=samples.contiguous(), requested=requested, total=total)


def check_against_pipeline_generator(model):
    """This script's sampling loop against make_pipeline_fixtures.run_txt2img (the pipeline.json code)
    on two of its settings (8x8 latent, 8 steps, CFG 7): bit-equal latents."""
    conditioner = mpf.Conditioner(model.tok, model.te)
    for name, label, rng_kind in (("Euler a / automatic / nv", "Euler a", "nv"), ("DPM++ SDE / karras", "DPM++ SDE", "cpu")):
        spec = {"name": name, "prompt": mpf.PROMPT, "negative_prompt": "", "seed": mpf.SEED, "subseed": None,
                "subseed_strength": 0.0, "rng": rng_kind, "clip_skip": 1, "sampler": label,
                "schedule": sampler_schedule(label)}
        want = mpf.run_txt2img(spec, model.unet, model.model_wrap, conditioner)
        got = txt2img_pass(model, label, mpf.LATENT, want["seeds"], rng_kind, mpf.STEPS, mpf.PROMPT, "", mpf.CFG)
        assert torch.equal(got["latents"], want["latents"]), name
        assert torch.equal(model.cond(mpf.PROMPT), conditioner.table["prompt_skip1"]["z"])
        print(f"  check: first-pass loop == make_pipeline_fixtures.run_txt2img on {name!r}", flush=True)


# --- main ------------------------------------------------------------------------------------------

def reference_runs(run, model, spec, same=("latents",)):
    """run(model, spec), again (deterministic: the `same` results bit-equal) and with SDPA attention (the
    reference's own float32 spread): (r, r_sdpa)."""
    r = run(model, spec)
    r2 = run(model, spec)
    assert all(torch.equal(r2[k], r[k]) for k in same), "not deterministic"
    model.attention(sdpa=True)
    r_sdpa = run(model, spec)
    model.attention(sdpa=False)
    return r, r_sdpa


def check_img2img_pass(name, r, r_scrambled):
    """The checks of a sample_img2img result r (r_scrambled: the same run with the ImageRNG's draws after
    its first scrambled): the schedule's lengths and slice, t_enc + 1 steps' denoiser calls, the step
    noise reaching the result only for the ancestral samplers (Euler, DPM++ 2M: drawn or not, unused),
    the SDE samplers' tree over the FULL schedule. Returns whether those draws are used."""
    assert len(r["sigmas"]) == r["steps"] + 1 and len(r["sigma_sched"]) == r["t_enc"] + 2 and r["start"] >= 0
    assert torch.equal(r["sigma_sched"], r["sigmas"][r["start"]:]) and float(r["sigma_sched"][-1]) == 0.0
    _, opts = mpf.SAMPLER_OPTS[r["label"]]
    second_order = r["label"] in ("DPM++ SDE", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a")
    n = r["t_enc"] + 1
    assert r["calls"] == (2 * n - 1 if second_order else n), (name, r["calls"])
    draws_used = bool(opts.get("ancestral"))
    assert torch.equal(r_scrambled["latents"], r["latents"]) == (not draws_used), name
    assert torch.equal(r_scrambled["noise"], r["noise"])
    if opts.get("brownian_noise"):
        assert r["next_calls"] == 0 and r["tree"] is not None
        assert float(r["tree"][1]) == float(r["sigmas"][0]) > float(r["sigma_sched"][0])
        assert float(r["tree"][0]) == float(r["sigmas"][-2])
    return draws_used


def img2img_pass_json(r, draws_used):
    """A sample_img2img result's schedule, calls and final latents, as both fixtures write them."""
    return {
        "sigmas": [f32_text(v) for v in r["sigmas"].tolist()],
        "sigma_sched": [f32_text(v) for v in r["sigma_sched"].tolist()],
        "brownian": None if r["tree"] is None else {"sigma_min": f32_text(r["tree"][0]), "sigma_max": f32_text(r["tree"][1])},
        "denoiser_calls": r["calls"], "rng_next_calls": r["next_calls"], "rng_draws_used": draws_used,
        "latents": enc32(r["latents"]),
    }


def pictures_json(arr):
    """8-bit pictures: {"shape", "uint8_base64" of the bytes in [(image,) y, x, RGB] order}."""
    return {"shape": list(arr.shape), "uint8_base64": base64.b64encode(arr.astype(np.uint8).tobytes()).decode()}


def images_json(img, texts):
    """A run's 8-bit pictures and per image its infotext (text, [[key, value], ...]), as both fixtures
    write them."""
    return {"image": pictures_json(img), "infotexts": [t for t, _ in texts],
            "infotext_parameters": [p for _, p in texts]}


def record_runs(model, specs, record):
    """record(model, name, spec) of each (name, spec): (the runs' JSON in order, {name: record's raw
    result}, the names, which are unique)."""
    runs, raw = [], {}
    for name, spec in specs:
        run, r = record(model, name, spec)
        runs.append(run)
        raw[name] = r
    names = [r["name"] for r in runs]
    assert len(set(names)) == len(names)
    return runs, raw, names


def record(model, name, spec):
    t0 = time.time()
    r, r_sdpa = reference_runs(hires_run, model, spec)
    a = r["a"]
    s = spec
    w, h = s["size"]
    B = s["batch"]

    # --- checks
    to_x, to_y = r["to"]
    tx, ty = r["truncate"]
    lat_h, lat_w = to_y // OPT_F - ty, to_x // OPT_F - tx
    assert tuple(r["first"]["latents"].shape) == (B, 4, h // OPT_F, w // OPT_F)
    assert tuple(r["samples"].shape) == (B, 4, lat_h, lat_w) == tuple(r["noise"].shape) == tuple(r["latents"].shape)
    assert r["total"] == int(r["requested"] / min(a["denoising_strength"], 0.999)) and r["t_enc"] == r["requested"] - 1
    assert r["steps"] == r["total"] and r["start"] == r["total"] - r["t_enc"] - 1
    if s["rng"] == "nv":
        # Philox: the fresh generator's first draw at the larger shape starts with the first pass's noise
        n = r["first"]["noise"][0].numel()
        if r["noise"][0].numel() >= n:
            assert torch.equal(r["noise"].reshape(B, -1)[:, :n], r["first"]["noise"].reshape(B, -1)), name
    # the hires pass's step noise: ImageRNG draws after its first (ancestral: used; Euler: drawn, unused)
    r3 = hires_run(model, spec, scramble_hires=True)
    draws_used = check_img2img_pass(name, r, r3)
    assert torch.equal(r3["samples"], r["samples"])

    _, img, _ = fs.decode_a1111(model.vae, r["latents"], mpf.SCALE_FACTOR, "mul")
    assert img.shape == (B, lat_h * OPT_F, lat_w * OPT_F, 3)
    texts = [infotext(spec, a, i) for i in range(B)]
    settings = dict(spec)
    for k, v in HIRES_DEFAULTS.items():       # only the hires_* values that are not sdshell's defaults
        assert k not in settings or settings[k] != v, (name, k)
    run = {
        "name": name,
        "settings": settings,
        "a1111": a,
        "first_pass": {
            "latent_shape": list(r["first"]["latents"].shape),
            "sigmas": [f32_text(v) for v in r["first"]["sigmas"].tolist()],
            "denoiser_calls": r["first"]["calls"], "rng_next_calls": r["first"]["next_calls"],
            "latents": enc32(r["first"]["latents"]),
        },
        "hires": {
            "hr_upscale_to_x": to_x, "hr_upscale_to_y": to_y, "truncate_x": tx, "truncate_y": ty,
            "interpolate_size": r["interpolate_size"], "width": lat_w * OPT_F, "height": lat_h * OPT_F,
            "upscaled": enc32(r["samples"]),
            "noise": enc32(r["noise"]),
            "requested_steps": r["requested"], "total": r["total"], "t_enc": r["t_enc"], "start_index": r["start"],
            **img2img_pass_json(r, draws_used),
        },
        "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
        "first_pass_sdpa_max_abs_diff": float((r_sdpa["first"]["latents"] - r["first"]["latents"]).abs().max()),
        **images_json(img, texts),
    }
    print(f"  {name:90s} to={to_x}x{to_y} trunc=({tx},{ty}) latent={lat_h}x{lat_w} total={r['total']:2d} "
          f"t_enc={r['t_enc']} start={r['start']:2d} calls={r['calls']:2d} next={r['next_calls']:2d} "
          f"|lat|max={r['latents'].abs().max().item():7.3f} sdpa={run['sdpa_latents_max_abs_diff']:.1e} "
          f"({time.time() - t0:.1f} s)", flush=True)
    return run, r


def main():
    t_start = time.time()
    torch.set_num_threads(1)
    fs._check_nv()
    model = Model()
    check_against_pipeline_generator(model)
    # the float-division edge of the hires_steps 7 / denoise 0.28 run
    assert 7 / 0.28 < 25 and int(7 / 0.28) == 24 and int(np.float32(7) / np.float32(0.28)) == 25
    runs, raw, names = record_runs(model, run_specs(), record)
    # the six upscalers differ from each other on the same first pass (all six start from equal latents)
    six = [n for n in names if n.endswith("/ Euler a / scale 2 / denoise 0.6")]
    assert len(six) == 6
    for n in six[1:]:
        assert torch.equal(raw[n]["first"]["latents"], raw[six[0]]["first"]["latents"])
    ups = {n: raw[n]["samples"] for n in six}
    same = [(m, n) for i, m in enumerate(six) for n in six[i + 1:] if torch.equal(ups[m], ups[n])]
    for m, n in [(m, n) for i, m in enumerate(six) for n in six[i + 1:]]:
        print(f"    upscaled max |{m.split(' /')[0]} - {n.split(' /')[0]}| = {(ups[m] - ups[n]).abs().max().item():.3e}")
    # 2x: nearest == nearest-exact exactly; 1.75x: they differ (the same first pass)
    assert same == [("Latent (nearest) / Euler a / scale 2 / denoise 0.6",
                     "Latent (nearest-exact) / Euler a / scale 2 / denoise 0.6")], same
    n175 = [raw[n] for n in names if "scale 1.75" in n]
    assert len(n175) == 2 and torch.equal(n175[0]["first"]["latents"], n175[1]["first"]["latents"])
    assert not torch.equal(n175[0]["samples"], n175[1]["samples"])
    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": fs.version("diffusers"),
                     "transformers": fs.version("transformers"), "k_diffusion": fs.version("k-diffusion"),
                     "torchsde": fs.version("torchsde"), "numpy": np.__version__},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "model": {"path": "Tests/Fixtures/tiny-sd", "vae_scale": OPT_F, "scaling_factor": mpf.SCALE_FACTOR,
                  "attention": "UNet/VAE: diffusers AttnProcessor (explicit softmax); CLIP: eager"},
        "a1111": {
            "opt_f": "A1111's opt_f (8, SD's VAE scale) is the tiny model's VAE scale 2 here, as in sdshell: first-pass "
                     "latent [4, h/2, w/2], interpolate size (to_y // 2, to_x // 2), truncate = (to - resize) // 2",
            "target": "calculate_target_resolution: scale: to = int(size * hr_scale); resize with one side 0: that side "
                      "from the aspect (a * b // c); both sides: the larger fit by aspect, then truncate_x/y = "
                      "(to - resize) // opt_f latent cells",
            "upscale": "F.interpolate(first latents, size=(to_y // opt_f, to_x // opt_f), mode, antialias) per "
                       "shared.latent_upscale_modes; then [:, :, ty//2 : H-(ty+1)//2, tx//2 : W-(tx+1)//2]; the second "
                       "pass's image is opt_f x the truncated latent (not to_x x to_y when those are odd)",
            "noise": "ImageRNG(upscaled.shape[1:], seeds) anew: noise = its first draw (fresh generator per seed); "
                     "the hires sampler's randn_like = its next() draws",
            "steps": "requested = hires_steps or steps; total = int(requested / min(denoise, 0.999)) (Python double); "
                     "t_enc = requested - 1; sigmas = get_sigmas(total) of the HIRES sampler's default schedule; "
                     "sigma_sched = sigmas[total - t_enc - 1:]; xi = upscaled + noise * sigma_sched[0]",
            "brownian": "SDE samplers: BrownianTreeNoiseSampler(upscaled, full sigmas[sigmas > 0].min(), full "
                        "sigmas.max(), seed=seeds), the rng's source for its normals as in pipeline.json",
            "conds": "hr_prompt or prompt, hr_negative_prompt or negative (a1111_chunk_ids, last_hidden_state)",
            "infotext": "create_infotext order: Steps, Sampler, Schedule type, CFG scale, Seed, Size (first pass), "
                        "[Model hash, Model], Denoising strength, RNG, then Hires sampler, Hires prompt, Hires "
                        "negative prompt, Hires schedule type, Hires upscale | Hires resize, Hires steps, Hires "
                        "upscaler, [Version]; the bracketed keys are left out here",
            "defaults_assumed": "eta_ancestral 1, s_churn 0, s_noise 1, ENSD 0, img2img_extra_noise 0, "
                                "hr_scheduler = scheduler = Automatic, inpainting_mask_weight 1, no subseed / seed "
                                "resize, clip skip 1, batch_cond_uncond on",
        },
        "hires_defaults": HIRES_DEFAULTS,
        "runs": runs,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    print(f"wrote {fs.rel(OUT)} ({size} bytes), {len(runs)} runs, identical upscales: {same}, "
          f"{time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

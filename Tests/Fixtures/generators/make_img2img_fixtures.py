#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/img2img.json and its init pictures
Tests/DiffusionTests/Fixtures/img2img/*.png: reference runs of AUTOMATIC1111's img2img without a mask
(webui 1.10: processing.py StableDiffusionProcessingImg2Img, images.resize_image,
sd_samplers_common.setup_img2img_steps, sd_samplers_kdiffusion.sample_img2img) on the tiny model
Tests/Fixtures/tiny-sd/, for sdshell's image-to-image.

    .venv-ref/bin/python Tests/Fixtures/generators/make_img2img_fixtures.py

Needs what make_pipeline_fixtures.py needs (tiny-sd/, k-diffusion, torchsde, diffusers, transformers)
and Pillow, and IMPORTS make_hires_fixtures.py (importing it writes nothing; its main() does not run)
for what the two share, and through it make_pipeline_fixtures.py's A1111 pieces (ImageRNG, CFGDenoiser,
LDMLike + k-diffusion's CompVisDenoiser, get_sigmas, a1111_chunk_ids, a1111_torchsde_randn,
SAMPLER_OPTS / EXTRA_PARAMS / P_VALUES / ETA): its Model (subclassed here with the VAE encode),
sample_img2img (the img2img pass from the init latent: the ImageRNG's first draw, get_sigmas,
sigma_sched, xi, make_hires_fixtures.sample), setup_img2img_steps (fix_steps = "do exact steps"),
infotext (hires=False) with quote / number, sampler_schedule, check_against_pipeline_generator (the
sampling call bit for bit against make_pipeline_fixtures.run_txt2img on two pipeline.json settings),
the record helpers (reference_runs, check_img2img_pass, img2img_pass_json, images_json, pictures_json,
record_runs) and OPT_F / BATCH / PROMPT. Also fixture_support's decode_a1111, enc32 and
write_json_fixture. Its own code: the init pictures, A1111's resize_image, the VAE encode, the run
settings and checks. Everything float32 on the CPU, one thread; deterministic for the same library
versions and CPU kind. If Tests/Fixtures/generators/run_all.sh's Pillow 11 (.venv-ref/pillow-11)
is there, every fitted picture is also made with it in a subprocess and compared (printed, not written).

The model's latent scale
------------------------
A1111 divides pixel sizes by opt_f = 8, the SD VAE's scale. The tiny model's VAE scale is 2
(tiny_sd_info.json), so here opt_f = 2 wherever A1111 writes opt_f: the ImageRNG shape
[4, height // 2, width // 2] and, for resize mode 3, the latent interpolation size
(height // 2, width // 2). A 16x16 image here is what a 64x64 one is for SD (an 8x8 latent).

sdshell's one documented choice: the posterior MEAN
---------------------------------------------------
A1111's images_tensor_to_samples -> LatentDiffusion.get_first_stage_encoding(encode_first_stage(x)) is
`posterior.sample() * scale_factor` for the SD 1.x VAE: mean + std * torch.randn drawn from torch's
unseeded GLOBAL generator (not the image seeds), so A1111's img2img is not reproducible from its
infotext alone. sdshell encodes to the posterior mean (diffusers' retrieve_latents(...,
sample_mode="argmax")) times the scaling factor, and so does this reference. Everything else is A1111.

What A1111 does (1.10), and this script too
--------------------------------------------
1. The init picture (an 8-bit RGB PNG; images.flatten: RGBA over opts.img2img_background_color,
   then convert("RGB")) is fitted to width x height unless resize_mode is 3, by
   images.resize_image(resize_mode, im, width, height) with opts.upscaler_for_img2img None (the
   default), so its resize(im, w, h) is im.resize((w, h), resample=LANCZOS) -- as Pillow 9.5, A1111
   1.10's pin, computes it: the horizontal pass first (lanczos_9_5; Pillow 13 changed the order):
     0 "Just resize": resize(im, width, height).
     1 "Crop and resize": ratio = width / height, src_ratio = im.width / im.height (Python doubles);
       src_w = width if ratio > src_ratio else im.width * height // im.height;
       src_h = height if ratio <= src_ratio else im.height * width // im.width;
       resized = resize(im, src_w, src_h); pasted on a black RGB width x height canvas at
       (width // 2 - src_w // 2, height // 2 - src_h // 2) (negative offsets: the crop).
     2 "Resize and fill": src_w = width if ratio < src_ratio else im.width * height // im.height;
       src_h = height if ratio >= src_ratio else im.height * width // im.width; resized and pasted the
       same way; then if ratio < src_ratio: fill_height = height // 2 - src_h // 2,
       resized.resize((width, fill_height), box=(0, 0, width, 0)) pasted at (0, 0) and
       resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)) at
       (0, fill_height + src_h); if ratio > src_ratio: fill_width = width // 2 - src_w // 2, the same
       with box=(0, 0, 0, height) at (0, 0) and box=(resized.width, 0, resized.width, height) at
       (fill_width + src_w, 0). These two resizes use Pillow's DEFAULT filter (BICUBIC for RGB) on a
       box of zero height (width): every output row (column) samples the source at the box's edge
       coordinate, i.e. bicubic (a = -0.5) taps of the two nearest rows with the out-of-image tap
       dropped and the weights renormalised: min(max(floor(1.125 * edge - 0.125 * next + 0.5), 0), 255)
       per channel (Pillow's fixed-point rounding; it matches every band of "fits" exactly), not a copy
       of the edge row. Pastes are clipped to the canvas (the run
       "resize and fill 12x20" pastes a 4-column band at x = 13 of which 3 columns remain).
     3 "Just resize (latent upscale)": the picture is NOT resized (step 3 below).
2. image = np.array(img).astype(np.float32) / 255.0, moved to [3, H, W], repeated batch_size times;
   images_tensor_to_samples: image * 2 - 1 (float32), then with more than one image EACH IMAGE is
   encoded on its own (torch.stack of get_first_stage_encoding(encode_first_stage(img[None]))[0]):
   here the mean of the posterior, times scale_factor 0.18215 (a float32 multiply).
3. resize_mode 3: init_latent = F.interpolate(init_latent, size=(height // opt_f, width // opt_f),
   mode="bilinear") (align_corners and antialias unset: False).
4. x = p.rng.next(): p.rng = ImageRNG((4, height // opt_f, width // opt_f), seeds) made in
   process_images_inner exactly as for txt2img, so this is the same first draw txt2img would make.
   Every later next() (k-diffusion's randn_like through TorchHijack) continues those generators: the
   ancestral samplers' step noise. opts.initial_noise_multiplier 1 (no "Noise multiplier").
5. setup_img2img_steps(p) (no steps argument): opts.img2img_fix_steps ("do exact steps", settings
   exact_steps) off: steps = p.steps, t_enc = int(min(denoising_strength, 0.999) * steps); on:
   requested = p.steps, steps = int(requested / min(denoising_strength, 0.999)) (0 if the strength is
   0), t_enc = requested - 1. Python doubles throughout: int(7 / 0.28) = int(24.999999999999996) = 24
   (float32 or exact arithmetic give 25); int(0.3 * 6) = int(1.7999999999999998) = 1.
   sigmas = get_sigmas(p, steps) (the sampler's default schedule; discard_next_to_last_sigma samplers
   make steps + 1 and drop the penultimate value); sigma_sched = sigmas[steps - t_enc - 1:]
   (t_enc + 2 values, the last 0); xi = init_latent + x * sigma_sched[0] (opts.img2img_extra_noise 0);
   the k-diffusion sampler runs from xi over sigma_sched (t_enc + 1 steps), eta 1, s_noise 1 etc. as
   txt2img. SDE samplers: BrownianTreeNoiseSampler(init_latent, FULL sigmas[sigmas > 0].min(), FULL
   sigmas.max(), seed=the batch's seeds) (create_noise_sampler(x, sigmas, p) gets the whole list).
6. The CFG denoiser as txt2img (cond first, then uncond; image_cond is the non-inpainting model's
   dummy, unused by a crossattn model; no mask). Conditioning as txt2img (plain prompts here).
7. Decode: per image vae.decode((1. / 0.18215) * latent), clamp((x + 1) / 2, 0, 1), 255. * HWC
   float32, astype(uint8) (truncation): fixture_support.decode_a1111.
8. Infotext (create_infotext): "Steps" (p.steps, the requested steps also with exact_steps),
   "Sampler", "Schedule type" ("Automatic", or the sampler default's label: "Karras" for DPM++ 2M /
   DPM++ SDE), "CFG scale", "Seed" (the image's), "Size" (width x height, the target), ["Model hash",
   "Model": left out], "Denoising strength" (init() puts it in extra_generation_params, but it is a
   core key, so its place is fixed there: after "Seed resize from", before "Clip skip"), "RNG"
   ("NV" / "CPU"), ["Version": left out]. No resize-mode, exact-steps or "Hires" keys; "Mask blur" only
   with a mask. Numbers as the webui's sliders send them ("CFG scale: 5", "Denoising strength: 0.3").

File layout (tensors {"shape", "data"} with float32 values as fixture_support.enc32 writes them: the
shortest decimal that reads back as that float32; pictures {"shape" [H, W, 3] or [N, H, W, 3],
"uint8_base64": the bytes in [(image,) y, x, RGB] order})
----------------------------------------------------------------------------------------------------
{"generator", "versions", "cpu_capability", "model": {"path", "vae_scale" 2 (= opt_f here),
  "scaling_factor", "attention"}, "a1111": {notes},
 "inits": {repository-relative PNG path: {"size" [w, h], "png_sha256", "pixels" (the picture as
  decoded, [H, W, 3])}},
 "fits": [{"init", "size" [w, h], "resize_mode" 0-2, "fitted" ([h, w, 3]), "src_size" [src_w, src_h]
  (the resized picture's size; [w, h] for mode 0), "paste" [x, y] (its offset; [0, 0] for mode 0),
  "fill" null | {"axis": "y" | "x", "extent" fill_height | fill_width}}, ...]: images.resize_image
  alone, every mode 0-2 x three pictures x four target sizes (both crop and both fill branches,
  odd bands, an identity resize),
 "runs": [RUN, ...]}
RUN = {
  "name",
  "settings": sdshell parameter names, every one in every run: "prompt", "negative", "seed" (image i
      has seed + i), "steps", "cfg", "sampler", "size" [w, h] (the target), "batch", "rng" ("nv" |
      "cpu"), "init" (the PNG's repository-relative path), "resize_mode" (0-3), "denoise" (a double),
      "exact_steps" (bool),
  "a1111": what A1111 ran: "seeds", "sampler_name", "schedule" (resolved: "automatic" = k-diffusion
      get_sigmas, "karras"), "discard_next_to_last_sigma", "width", "height", "resize_mode",
      "denoising_strength", "img2img_fix_steps", "cfg_scale", "opt_f",
  "init": {"fitted" ([H, W, 3]: the picture that is encoded; for resize mode 3 the unresized init),
      "encoded" (resize mode 3: the mean x scaling factor at the init's own size, [B, 4, h0/2, w0/2],
      before the interpolation; else null), "latent" (init_latent [B, 4, height/2, width/2]: what the
      sampler starts from)},
  "img2img": {"noise" (the ImageRNG's first draw, [B, 4, height/2, width/2]), "steps" (what
      setup_img2img_steps returns: the schedule's step count), "t_enc", "start_index"
      (= steps - t_enc - 1), "sigmas" (get_sigmas(steps): steps + 1 values), "sigma_sched"
      (sigmas[start_index:]), "brownian" (SDE samplers: {"sigma_min", "sigma_max"} of the tree, from
      the FULL sigmas; else null), "denoiser_calls", "rng_next_calls" (next() calls after the first
      draw), "rng_draws_used" (whether those draws reach the result: ancestral samplers), "latents"
      (the final latents)},
  "sdpa_latents_max_abs_diff": max |final latents with diffusers' SDPA attention (UNet and VAE) -
      these|, "init_latent_sdpa_max_abs_diff" likewise for the encode (the reference's own float32
      spread, for tolerances),
  "image": {"shape" [B, H, W, 3], "uint8_base64"} (A1111's 8-bit decode of the final latents),
  "infotexts": [per image: the A1111 infotext, without "Model hash", "Model" and "Version"],
  "infotext_parameters": [per image: [[key, value], ...] in that order]}
"""

import base64
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# make_hires_fixtures imports make_pipeline_fixtures (transformers / diffusers before k-diffusion, see
# there); neither writes anything on import
import make_hires_fixtures as mhf  # noqa: E402
import make_pipeline_fixtures as mpf  # noqa: E402
import fixture_support as fs  # noqa: E402
from fixture_support import enc32  # noqa: E402
from make_hires_fixtures import (BATCH, OPT_F, PROMPT, check_against_pipeline_generator,  # noqa: E402
                                 check_img2img_pass, images_json, img2img_pass_json, number, pictures_json,
                                 record_runs, reference_runs, sample_img2img, sampler_schedule,
                                 setup_img2img_steps)

OUT = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "img2img.json")
INIT_DIR = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "img2img")
GENERATOR = "Tests/Fixtures/generators/make_img2img_fixtures.py"
MAX_BYTES = 1_200_000
PILLOW_11 = os.path.join(fs.ROOT, ".venv-ref", "pillow-11")   # run_all.sh's second Pillow, if there

# (file name, width, height, seed) of the procedural init pictures
INIT_PICTURES = [("wide_20x12.png", 20, 12, 2001), ("tall_12x20.png", 12, 20, 2002),
                 ("square_16x16.png", 16, 16, 2003)]
FIT_SIZES = [[16, 16], [24, 16], [16, 24], [18, 10]]


def init_path(name):
    return fs.rel(os.path.join(INIT_DIR, name))


BASE = {"prompt": PROMPT, "negative": "", "seed": 11, "steps": 6, "cfg": 5.0, "sampler": "Euler a",
        "size": [16, 16], "batch": BATCH, "rng": "nv", "init": init_path("wide_20x12.png"),
        "resize_mode": 0, "denoise": 0.75, "exact_steps": False}


def run_specs():
    """(name, sdshell settings): Euler a at three strengths (0.95: t_enc = steps - 1, the whole
    schedule), crop and fill of a tall picture (Euler), the latent upscale (Euler a), DPM++ 2M at
    denoise 0.28 / steps 7 with and without "do exact steps" (24 steps in doubles), DPM++ SDE with the
    cpu rng (its Brownian tree over the whole schedule)."""
    wide, tall, square = (init_path(n) for n, _, _, _ in INIT_PICTURES)
    specs = []
    for d in (0.3, 0.6, 0.95):
        specs.append((f"Euler a / just resize 20x12 to 16x16 / denoise {d}", dict(BASE, denoise=d)))
    specs.append(("Euler / crop and resize 12x20 to 16x16 / denoise 0.5",
                  dict(BASE, sampler="Euler", init=tall, resize_mode=1, denoise=0.5)))
    specs.append(("Euler / resize and fill 12x20 to 16x16 / denoise 0.5",
                  dict(BASE, sampler="Euler", init=tall, resize_mode=2, denoise=0.5)))
    specs.append(("Euler a / latent upscale 16x16 to 24x24 / denoise 0.6",
                  dict(BASE, init=square, size=[24, 24], resize_mode=3, denoise=0.6)))
    specs.append(("DPM++ 2M / exact steps / steps 7 / denoise 0.28 (24 steps, t_enc 6)",
                  dict(BASE, sampler="DPM++ 2M", steps=7, denoise=0.28, exact_steps=True)))
    specs.append(("DPM++ 2M / steps 7 / denoise 0.28 (t_enc 1)",
                  dict(BASE, sampler="DPM++ 2M", steps=7, denoise=0.28)))
    specs.append(("DPM++ SDE / just resize 20x12 to 16x16 / denoise 0.5 / cpu",
                  dict(BASE, sampler="DPM++ SDE", rng="cpu", denoise=0.5)))
    return specs


# --- the init pictures -----------------------------------------------------------------------------

def make_picture(w, h, seed):
    """A small RGB picture: a two-colour linear gradient, an anti-aliased disc, a rectangle and +-6
    speckle, all from np.random.default_rng(seed) (float64, only + - * / and sqrt: the same bytes on
    any IEEE machine)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    c0, c1 = rng.integers(0, 256, 3).astype(np.float64), rng.integers(0, 256, 3).astype(np.float64)
    dx, dy = rng.integers(1, 4), rng.integers(1, 4)
    t = (xx / w * dx + yy / h * dy) / (dx + dy)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    r = rng.uniform(0.2, 0.35) * min(w, h)
    cover = np.clip(r - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) + 0.5, 0.0, 1.0)[..., None]
    img = img * (1 - cover) + rng.integers(0, 256, 3).astype(np.float64) * cover
    x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
    x1, y1 = x0 + rng.integers(2, w // 2 + 1), y0 + rng.integers(2, h // 2 + 1)
    img[y0:y1, x0:x1] = 0.5 * img[y0:y1, x0:x1] + 0.5 * rng.integers(0, 256, 3).astype(np.float64)
    img = img + rng.integers(-6, 7, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_pictures():
    """Writes the PNGs (atomically; Pillow's PNG writer, no metadata); returns {rel path: pixels}."""
    os.makedirs(INIT_DIR, exist_ok=True)
    pixels = {}
    for name, w, h, seed in INIT_PICTURES:
        arr = make_picture(w, h, seed)
        assert arr.shape == (h, w, 3)
        path = os.path.join(INIT_DIR, name)
        tmp = path + ".tmp"
        Image.fromarray(arr).save(tmp, format="PNG")
        os.replace(tmp, path)
        pixels[fs.rel(path)] = arr
    return pixels


def load_init(rel_path):
    """The init picture as A1111 gets it: the PNG opened, then images.flatten (RGBA over the background
    colour; convert("RGB"))."""
    with Image.open(os.path.join(fs.ROOT, rel_path)) as im:
        im.load()
        if im.mode == "RGBA":
            bg = Image.new("RGBA", im.size, "#ffffff")
            bg.paste(im, mask=im)
            im = bg
        return im.convert("RGB")


# --- A1111 pieces --------------------------------------------------------------------------------

RESIZE_IMAGE_SOURCE = r'''
def resize_image(resize_mode, im, width, height, resize):
    """images.resize_image (1.10) with opts.upscaler_for_img2img None, its resize(im, w, h) (A1111's
    im.resize((w, h), resample=LANCZOS)) passed in; the fill bands use Pillow's default filter.
    Returns (picture, layout)."""
    from PIL import Image

    layout = {"src_size": [width, height], "paste": [0, 0], "fill": None}
    if resize_mode == 0:
        res = resize(im, width, height)
    elif resize_mode == 1:
        ratio = width / height
        src_ratio = im.width / im.height
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        layout = {"src_size": [src_w, src_h], "paste": [width // 2 - src_w // 2, height // 2 - src_h // 2],
                  "fill": None}
    else:
        ratio = width / height
        src_ratio = im.width / im.height
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
        resized = resize(im, src_w, src_h)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        layout = {"src_size": [src_w, src_h], "paste": [width // 2 - src_w // 2, height // 2 - src_h // 2],
                  "fill": None}
        if ratio < src_ratio:
            fill_height = height // 2 - src_h // 2
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)),
                      box=(0, fill_height + src_h))
            layout["fill"] = {"axis": "y", "extent": fill_height}
        elif ratio > src_ratio:
            fill_width = width // 2 - src_w // 2
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)),
                      box=(fill_width + src_w, 0))
            layout["fill"] = {"axis": "x", "extent": fill_width}
    return res, layout
'''
_namespace = {}
exec(RESIZE_IMAGE_SOURCE, _namespace)   # the same text runs under Pillow 11 (check_pillow_11)
_resize_image = _namespace["resize_image"]
LANCZOS = Image.Resampling.LANCZOS


def lanczos_9_5(im, w, h):
    """A1111's im.resize((w, h), resample=LANCZOS) as Pillow 9.5 (A1111 1.10's pin; 9.5 to 12 alike)
    computes it: a horizontal pass to w x im.height (8-bit result), then a vertical pass to w x h.
    Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height shrinks much
    more than the width, which changes such resizes by a level here and there; two calls, each a single
    pass, give 9.5's order under any Pillow (checked: byte-equal to 9.5's one call on 1,500 random
    sizes, and to Pillow 11's on every fit here when .venv-ref/pillow-11 is there). A size that does
    not change is a copy in both."""
    return im.resize((w, im.height), resample=LANCZOS).resize((w, h), resample=LANCZOS)


def resize_image(resize_mode, im, width, height):
    return _resize_image(resize_mode, im, width, height, lanczos_9_5)


def fit(rel_path, resize_mode, width, height):
    """StableDiffusionProcessingImg2Img.init's picture: flatten, then resize_image unless mode 3."""
    im = load_init(rel_path)
    if resize_mode == 3:
        return np.array(im), None
    res, layout = resize_image(resize_mode, im, width, height)
    assert res.size == (width, height) and res.mode == "RGB"
    return np.array(res), layout


def check_pillow_11(cases):
    """Every fitted picture again with Pillow 11 (run_all.sh's .venv-ref/pillow-11; its resampling is
    9.5's) in a subprocess, running A1111's code as it is (one im.resize call): the same bytes as
    lanczos_9_5 under this Pillow. Skipped when it is not installed."""
    if not os.path.isdir(os.path.join(PILLOW_11, "PIL")):
        print("  check: Pillow 11 not at .venv-ref/pillow-11, version cross-check skipped", flush=True)
        return
    script = RESIZE_IMAGE_SOURCE + r'''
import base64, json, sys
from PIL import Image
import PIL
out = []
for path, mode, w, h in json.load(sys.stdin):
    im = Image.open(path).convert("RGB")
    res, _ = resize_image(mode, im, w, h, lambda im, w, h: im.resize((w, h), resample=Image.LANCZOS))
    out.append(base64.b64encode(res.tobytes()).decode())
print(json.dumps({"version": PIL.__version__, "fits": out}))
'''
    env = dict(os.environ, PYTHONPATH=PILLOW_11)
    inp = json.dumps([[os.path.join(fs.ROOT, p), m, w, h] for p, m, w, h, _ in cases])
    res = subprocess.run([sys.executable, "-c", script], input=inp, capture_output=True, text=True, env=env,
                         check=True)
    got = json.loads(res.stdout)
    assert got["version"].startswith("11."), got["version"]
    for (p, m, w, h, want), b in zip(cases, got["fits"]):
        assert base64.b64decode(b) == want.tobytes(), (p, m, w, h)
    print(f"  check: A1111's resize_image as it is under Pillow {got['version']} == these {len(cases)} fitted "
          f"pictures (lanczos_9_5 under Pillow {fs.version('pillow')})", flush=True)


# --- the model with the encode ------------------------------------------------------------------------

class Model(mhf.Model):
    """make_hires_fixtures.Model (its attention() sets the VAE's too) with the VAE encode."""

    def encode(self, pixels, batch):
        """images_tensor_to_samples with sdshell's mean: [H, W, 3] uint8 -> [batch, 4, H/2, W/2]."""
        image = np.moveaxis(pixels.astype(np.float32) / 255.0, 2, 0)
        image = torch.from_numpy(np.expand_dims(image, axis=0).repeat(batch, axis=0))
        assert image.dtype == torch.float32
        image = image * 2 - 1
        outs = []
        with torch.no_grad():
            for img in image:       # len(image) > 1: one image at a time, as A1111
                mean = self.vae.encode(torch.unsqueeze(img, 0)).latent_dist.mean
                z = mean * mpf.SCALE_FACTOR
                # the float32 product, the factor rounded to float32 first
                assert np.array_equal(z.numpy(), mean.numpy() * np.float32(mpf.SCALE_FACTOR))
                outs.append(z[0])
        return torch.stack(outs) if batch > 1 else outs[0][None]


def a1111_settings(spec):
    s = spec
    w, h = s["size"]
    return {
        "seeds": [s["seed"] + i for i in range(s["batch"])],
        "sampler_name": s["sampler"], "schedule": sampler_schedule(s["sampler"]),
        "discard_next_to_last_sigma": bool(mpf.SAMPLER_OPTS[s["sampler"]][1].get("discard_next_to_last_sigma")),
        "width": w, "height": h, "resize_mode": s["resize_mode"], "denoising_strength": s["denoise"],
        "img2img_fix_steps": s["exact_steps"], "cfg_scale": s["cfg"], "opt_f": OPT_F,
    }


def img2img_run(model, spec, scramble=False):
    """The whole img2img of one run; returns every intermediate."""
    s, a = spec, a1111_settings(spec)
    w, h = s["size"]
    B = s["batch"]
    fitted, layout = fit(s["init"], s["resize_mode"], w, h)
    encoded = model.encode(fitted, B)
    init_latent = encoded
    if s["resize_mode"] == 3:
        init_latent = torch.nn.functional.interpolate(encoded, size=(h // OPT_F, w // OPT_F), mode="bilinear")
    steps, t_enc = setup_img2img_steps(s["steps"], s["denoise"], s["exact_steps"])
    # p.rng's shape (4, height // opt_f, width // opt_f) is init_latent's
    sampled = sample_img2img(model, s["sampler"], init_latent, s["rng"], a["seeds"], steps, t_enc, s["prompt"],
                             s["negative"], s["cfg"], scramble=scramble)
    return dict(sampled, a=a, fitted=fitted, layout=layout, encoded=encoded, init_latent=init_latent)


# --- main ------------------------------------------------------------------------------------------

def record(model, name, spec):
    t0 = time.time()
    r, r_sdpa = reference_runs(img2img_run, model, spec, same=("latents", "init_latent"))
    a, s = r["a"], spec
    w, h = s["size"]
    B = s["batch"]

    # --- checks
    lat = (B, 4, h // OPT_F, w // OPT_F)
    assert tuple(r["init_latent"].shape) == lat == tuple(r["noise"].shape) == tuple(r["latents"].shape), name
    for i in range(1, B):     # one init picture, repeated: the same latent per image
        assert torch.equal(r["init_latent"][i], r["init_latent"][0])
    if s["resize_mode"] == 3:
        ih, iw = r["fitted"].shape[:2]
        assert tuple(r["encoded"].shape) == (B, 4, ih // OPT_F, iw // OPT_F) != lat
    else:
        assert r["fitted"].shape == (h, w, 3) and r["encoded"] is r["init_latent"]
    d = s["denoise"]
    if s["exact_steps"]:
        assert r["steps"] == int(s["steps"] / min(d, 0.999)) and r["t_enc"] == s["steps"] - 1
    else:
        assert r["steps"] == s["steps"] and r["t_enc"] == int(min(d, 0.999) * s["steps"])
    # the step noise: ImageRNG draws after its first (ancestral: used; Euler / DPM++ 2M: none reach it)
    draws_used = check_img2img_pass(name, r, img2img_run(model, spec, scramble=True))

    _, img, _ = fs.decode_a1111(model.vae, r["latents"], mpf.SCALE_FACTOR, "mul")
    assert img.shape == (B, h, w, 3)
    assert s["size"] == [a["width"], a["height"]]     # infotext's "Size": the target
    texts = [mhf.infotext(spec, a, i, hires=False) for i in range(B)]
    assert f"Denoising strength: {number(d)}" in texts[0][0] and "Hires" not in texts[0][0]
    run = {
        "name": name,
        "settings": dict(spec),
        "a1111": a,
        "init": {"fitted": pictures_json(r["fitted"]),
                 "encoded": enc32(r["encoded"]) if s["resize_mode"] == 3 else None,
                 "latent": enc32(r["init_latent"])},
        "img2img": {
            "noise": enc32(r["noise"]),
            "steps": r["steps"], "t_enc": r["t_enc"], "start_index": r["start"],
            **img2img_pass_json(r, draws_used),
        },
        "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
        "init_latent_sdpa_max_abs_diff": float((r_sdpa["init_latent"] - r["init_latent"]).abs().max()),
        **images_json(img, texts),
    }
    print(f"  {name:70s} steps={r['steps']:2d} t_enc={r['t_enc']} start={r['start']:2d} "
          f"sched0={float(r['sigma_sched'][0]):7.3f} calls={r['calls']:2d} next={r['next_calls']:2d} "
          f"|lat|max={r['latents'].abs().max().item():6.3f} sdpa={run['sdpa_latents_max_abs_diff']:.1e} "
          f"enc_sdpa={run['init_latent_sdpa_max_abs_diff']:.1e} ({time.time() - t0:.1f} s)", flush=True)
    return run, r


def fit_records(pixels):
    """images.resize_image alone: modes 0-2 x the pictures x FIT_SIZES, with checks of the layout."""
    fits, cases = [], []
    branches = set()
    order_differs = 0
    for p in pixels:
        for w, h in FIT_SIZES:
            for mode in (0, 1, 2):
                arr, layout = fit(p, mode, w, h)
                assert arr.shape == (h, w, 3)
                im = load_init(p)
                if mode == 0 and im.size == (w, h):
                    assert np.array_equal(arr, pixels[p])          # Pillow: same size -> a copy
                if mode == 1:
                    sw, sh = layout["src_size"]
                    assert sw >= w and sh >= h and (sw == w or sh == h)
                    px, py = layout["paste"]
                    want = np.array(lanczos_9_5(im, sw, sh))[-py:-py + h, -px:-px + w]
                    assert np.array_equal(arr, want), (p, w, h)
                    branches.add(("crop", "x" if sw > w else "y" if sh > h else "none"))
                if mode == 2:
                    sw, sh = layout["src_size"]
                    assert sw <= w and sh <= h and (sw == w or sh == h)
                    f = layout["fill"]
                    branches.add(("fill", f["axis"] if f else "none"))
                    if f is not None:
                        # every row (column) of a band is the same: the box has zero extent
                        px, py = layout["paste"]
                        if f["axis"] == "y":
                            top, bottom = arr[:py], arr[py + sh:]
                            assert (top == top[:1]).all() and (bottom == bottom[:1]).all()
                        else:
                            left, right = arr[:, :px], arr[:, px + sw:]
                            assert (left == left[:, :1]).all() and (right == right[:, :1]).all()
                one_call = _resize_image(mode, im, w, h, lambda im, w, h: im.resize((w, h), resample=LANCZOS))[0]
                order_differs += not np.array_equal(np.array(one_call), arr)
                fits.append({"init": p, "size": [w, h], "resize_mode": mode, "fitted": pictures_json(arr),
                             "src_size": layout["src_size"], "paste": layout["paste"], "fill": layout["fill"]})
                cases.append((p, mode, w, h, arr))
    assert {("crop", "x"), ("crop", "y"), ("fill", "x"), ("fill", "y")} <= branches, branches
    print(f"  fits: {len(fits)}; this Pillow's ({fs.version('pillow')}) one-call resize differs from 9.5's pass "
          f"order in {order_differs} of them", flush=True)
    return fits, cases


def main():
    t_start = time.time()
    torch.set_num_threads(1)
    fs._check_nv()
    # the double-precision edges: exact steps 7 / 0.28, and the strengths' t_enc at 6 steps
    assert 7 / 0.28 < 25 and int(7 / 0.28) == 24 and int(np.float32(7) / np.float32(0.28)) == 25
    assert int(0.3 * 6) == 1 and int(np.float32(0.3) * np.float32(6)) == 1 and int(0.6 * 6) == 3
    assert int(0.95 * 6) == 5 and int(0.28 * 7) == 1

    pixels = write_pictures()
    inits = {}
    for p, arr in pixels.items():
        assert np.array_equal(np.array(load_init(p)), arr), p      # the PNG reads back
        inits[p] = {"size": [arr.shape[1], arr.shape[0]], "png_sha256": fs.sha256_file(os.path.join(fs.ROOT, p)),
                    "pixels": pictures_json(arr)}
    fits, cases = fit_records(pixels)

    model = Model()
    check_against_pipeline_generator(model)
    runs, raw, names = record_runs(model, run_specs(), record)
    # the fitted pictures of the runs are those of "fits" (mode 0-2)
    for run in runs:
        s = run["settings"]
        if s["resize_mode"] != 3:
            same = [f for f in fits if f["init"] == s["init"] and f["size"] == s["size"]
                    and f["resize_mode"] == s["resize_mode"]]
            assert len(same) == 1 and same[0]["fitted"] == run["init"]["fitted"], run["name"]
    # the three Euler a strengths share picture, init latent and noise; 0.95 runs the whole schedule
    three = [raw[n] for n in names if n.startswith("Euler a / just resize")]
    assert len(three) == 3
    for r in three[1:]:
        assert torch.equal(r["init_latent"], three[0]["init_latent"]) and torch.equal(r["noise"], three[0]["noise"])
    assert [r["t_enc"] for r in three] == [1, 3, 5] and [r["start"] for r in three] == [4, 2, 0]
    top = three[2]
    assert torch.equal(top["sigma_sched"], top["sigmas"])
    sigma_max = float(model.model_wrap.sigmas[-1])
    assert abs(float(top["sigma_sched"][0]) - sigma_max) <= 1e-5 * sigma_max, (float(top["sigma_sched"][0]), sigma_max)
    # NV: the latent upscale's 12x12 first draw starts with the 8x8 runs' (Philox(seed) at offset 0)
    up = raw["Euler a / latent upscale 16x16 to 24x24 / denoise 0.6"]
    k = three[0]["noise"][0].numel()
    assert torch.equal(up["noise"].reshape(BATCH, -1)[:, :k], three[0]["noise"].reshape(BATCH, -1))
    exact = raw["DPM++ 2M / exact steps / steps 7 / denoise 0.28 (24 steps, t_enc 6)"]
    plain = raw["DPM++ 2M / steps 7 / denoise 0.28 (t_enc 1)"]
    assert (exact["steps"], exact["t_enc"], exact["start"]) == (24, 6, 17)
    assert (plain["steps"], plain["t_enc"], plain["start"]) == (7, 1, 5)
    crop, fill = (raw[f"Euler / {m} 12x20 to 16x16 / denoise 0.5"] for m in ("crop and resize", "resize and fill"))
    assert not np.array_equal(crop["fitted"], fill["fitted"])
    check_pillow_11(cases)

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": fs.version("diffusers"),
                     "transformers": fs.version("transformers"), "k_diffusion": fs.version("k-diffusion"),
                     "torchsde": fs.version("torchsde"), "numpy": np.__version__, "pillow": fs.version("pillow")},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "model": {"path": "Tests/Fixtures/tiny-sd", "vae_scale": OPT_F, "scaling_factor": mpf.SCALE_FACTOR,
                  "attention": "UNet/VAE: diffusers AttnProcessor (explicit softmax); CLIP: eager"},
        "a1111": {
            "encode_choice": "sdshell's documented choice, the one difference from A1111: init_latent = the VAE "
                             "posterior's MEAN x scaling_factor (diffusers retrieve_latents sample_mode='argmax'); "
                             "A1111 (LDM get_first_stage_encoding) uses posterior.sample(), mean + std * randn from "
                             "torch's unseeded global generator",
            "opt_f": "A1111's opt_f (8, SD's VAE scale) is the tiny model's VAE scale 2 here, as in sdshell: ImageRNG "
                     "shape [4, height // 2, width // 2]; resize mode 3 interpolates to (height // 2, width // 2)",
            "fit": "images.flatten then images.resize_image(resize_mode, im, width, height) with "
                   "opts.upscaler_for_img2img None: Pillow LANCZOS resizes as Pillow 9.5 (A1111 1.10's pin, "
                   "alike up to 12) computes them: the horizontal pass to w x H0 in 8 bits, then the vertical "
                   "(Pillow 13 runs the vertical pass first when the height shrinks much more than the width, "
                   "python-pillow/Pillow#9549); mode 1 pastes the covering resize "
                   "centred (floor divisions), mode 2 the fitting one and fills the bands with Pillow's default "
                   "filter (BICUBIC) over a zero-extent box at the edge; mode 3 leaves the picture as it is",
            "encode": "np.float32 pixels / 255.0, [3, H, W], repeated per image; image * 2 - 1; each image encoded on "
                      "its own (batch > 1); mean * 0.18215 in float32; mode 3: F.interpolate(init_latent, "
                      "size=(height // 2, width // 2), mode='bilinear')",
            "noise": "ImageRNG((4, height // 2, width // 2), seeds).next(): txt2img's first draw; later next() calls "
                     "are the sampler's randn_like",
            "steps": "setup_img2img_steps: exact_steps off: steps = p.steps, t_enc = int(min(denoise, 0.999) * steps); "
                     "on (opts.img2img_fix_steps): steps = int(p.steps / min(denoise, 0.999)), t_enc = p.steps - 1 "
                     "(Python doubles); sigmas = get_sigmas(steps) of the sampler's default schedule; sigma_sched = "
                     "sigmas[steps - t_enc - 1:]; xi = init_latent + noise * sigma_sched[0]; t_enc + 1 sampler steps",
            "brownian": "SDE samplers: BrownianTreeNoiseSampler(init_latent, full sigmas[sigmas > 0].min(), full "
                        "sigmas.max(), seed=seeds), the rng's source for its normals as in pipeline.json",
            "infotext": "create_infotext order: Steps (p.steps), Sampler, Schedule type, CFG scale, Seed, Size "
                        "(the target), [Model hash, Model], Denoising strength, RNG, [Version]; the bracketed keys "
                        "are left out here; no key for the resize mode or exact steps",
            "defaults_assumed": "upscaler_for_img2img None, img2img_background_color #ffffff, img2img_color_correction "
                                "off, save_init_img off, sd_vae_encode_method Full, initial_noise_multiplier 1, "
                                "img2img_extra_noise 0, eta_ancestral 1, s_churn 0, s_noise 1, ENSD 0, scheduler "
                                "Automatic, no subseed / seed resize, clip skip 1, batch_cond_uncond on",
        },
        "inits": inits,
        "fits": fits,
        "runs": runs,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    print(f"wrote {fs.rel(OUT)} ({size} bytes), {len(fits)} fits, {len(runs)} runs, "
          f"{time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

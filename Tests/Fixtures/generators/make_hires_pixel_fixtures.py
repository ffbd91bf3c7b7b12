#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/hires_pixel.json: reference runs of AUTOMATIC1111's hires fix with
PIXEL upscalers (webui 1.10: processing.py StableDiffusionProcessingTxt2Img.sample / sample_hr_pass, the
branch taken when hr_upscaler is not one of shared.latent_upscale_modes) on the tiny model
Tests/Fixtures/tiny-sd/, for sdshell's hires fix with "None", "Lanczos", "Nearest" and ESRGAN model files.

    .venv-ref/bin/python Tests/Fixtures/generators/make_hires_pixel_fixtures.py

Needs what make_hires_fixtures.py needs, Pillow, spandrel 0.3.4 and the model files
make_esrgan_fixtures.py writes (Tests/DiffusionTests/Fixtures/upscalers/). IMPORTS, rather than restating
(importing them writes nothing): make_hires_fixtures.py (its txt2img_pass, calculate_target_resolution,
setup_img2img_steps, sample_img2img, a1111_settings, infotext, check_img2img_pass, the record helpers,
BASE / OPT_F / HIRES_DEFAULTS, and through it make_pipeline_fixtures.py's A1111 pieces),
make_img2img_fixtures.py (its Model with the VAE encode: sdshell's posterior MEAN x scaling factor, one
picture at a time as A1111 encodes a batch) and make_esrgan_fixtures.py (A1111's images.resize_image /
Upscaler.upscale / upscale_with_model / split_grid / combine_grid, the spandrel loading of the model files,
Pillow 9.5's LANCZOS order through make_img2img_fixtures.lanczos_9_5). Its own code: the pixel branch,
the run settings and checks. Everything float32 on the CPU, one thread; deterministic for the same library
versions and CPU kind.

The model's latent scale: opt_f = 2 (the tiny VAE's scale) wherever A1111 writes opt_f, as in
make_hires_fixtures.py; the pixel sizes are the pictures' own.

What A1111 does (1.10), and this script too
--------------------------------------------
1. First pass: txt2img at width x height exactly as make_hires_fixtures.py (ImageRNG, CFG denoiser,
   the k-diffusion sampler).
2. sample(): latent_scale_mode is None (a pixel upscaler), so decoded_samples =
   torch.stack(decode_latent_batch(sd_model, samples)) in float32: per image vae.decode((1 / 0.18215) *
   latent) (fixture_support.decode_a1111's raw output).
3. Target: calculate_target_resolution as for the latent upscalers (hr_upscale_to_x / _y, truncate_x /
   _y; make_hires_fixtures.calculate_target_resolution).
4. sample_hr_pass, pixel branch: lowres = clamp((decoded + 1) / 2, 0, 1); per image 255. * HWC float32,
   astype(uint8) (TRUNCATION: the same 8 bits as the final decode), Image.fromarray; then
   images.resize_image(0, image, target_width, target_height, upscaler_name=hr_upscaler): "None" -> one
   LANCZOS resize to the target; "Lanczos" / "Nearest" / a model: scale = max(tw / w, th / h); if > 1:
   Upscaler.upscale (dest = int((side * scale) // 8 * 8); do_upscale up to 3 times until the picture
   covers dest: Lanczos / Nearest resize to int(side * scale), a model runs once (upscale_with_model
   with ESRGAN_tile 192, ESRGAN_tile_overlap 8, so a picture under 192 pixels is ONE tile padded with
   black on the left / top); then LANCZOS to dest if the size differs); then LANCZOS to the target if
   the size differs. Every LANCZOS as Pillow 9.5 (horizontal pass first). So at scale 2 "Lanczos" is
   the one resize "None" makes (16 -> 32, dest 32), while at 1.75 it is 16 -> 28 -> 24 (dest) -> 28.
5. np.array(image).astype(np.float32) / 255.0, [3, H, W] per image, stacked; images_tensor_to_samples:
   image * 2 - 1, each image encoded on its own: the posterior MEAN x 0.18215 (sdshell's documented
   choice; A1111 samples the posterior with torch's unseeded global generator, see
   make_img2img_fixtures.py). image_conditioning: the non-inpainting model's dummy (unused).
6. samples[:, :, ty // 2 : H - (ty + 1) // 2, tx // 2 : W - (tx + 1) // 2] (after the encode), then as
   for the latent upscalers: ImageRNG(samples.shape[1:], seeds) anew, noise = its first draw,
   sample_img2img with steps = hr_second_pass_steps or steps (total = int(steps / min(denoise, 0.999)),
   t_enc = steps - 1, ...), the final decode to 8 bits (truncation), and the infotext with
   "Hires upscaler: <the name>" (make_hires_fixtures.infotext).

File layout (as hires.json's where the fields are the same; tensors {"shape", "data"} as
fixture_support.enc32 writes them; pictures {"shape" [N, H, W, 3], "uint8_base64" in [image, y, x, RGB]
order})
---------------------------------------------------------------------------------------------------
{"generator", "versions", "cpu_capability", "model": {"path", "vae_scale", "scaling_factor", "attention"},
 "a1111": {notes}, "hires_defaults": {sdshell's hires_* defaults}, "upscalers": {A1111 name: the model
  file (repository-relative) and its sha256, for the model upscalers used},
 "runs": [RUN, ...]}
RUN = {"name", "settings" (sdshell names as in hires.json; "hires_upscaler" is the A1111 name),
  "a1111": hires.json's keys with "latent_scale_mode": null instead of "mode" / "antialias", and
      "ESRGAN_tile", "ESRGAN_tile_overlap",
  "first_pass": {"latent_shape", "sigmas", "denoiser_calls", "rng_next_calls", "latents",
      "lowres" (the 8-bit pictures handed to the upscaler, [B, h, w, 3])},
  "hires": {"hr_upscale_to_x", "hr_upscale_to_y", "truncate_x", "truncate_y", "width", "height" (the
      second pass's picture: opt_f x the truncated latent), "passes" (the picture sizes [w, h] after each
      resize the upscaler makes, in order: do_upscale calls, the LANCZOS to dest, the LANCZOS to the
      target; [] for "None", whose one LANCZOS is the whole resize), "upscaled" (the 8-bit pictures
      encoded, [B, to_y, to_x, 3]), "encoded" (the encode [B, 4, to_y / 2, to_x / 2] when truncation
      cuts it; else null), "init_latent" (the truncated latents the pass starts from), "noise",
      "requested_steps", "total", "t_enc", "start_index", "sigmas", "sigma_sched", "brownian",
      "denoiser_calls", "rng_next_calls", "rng_draws_used", "latents"},
  "sdpa_latents_max_abs_diff", "first_pass_sdpa_max_abs_diff", "upscaled_sdpa_differing_bytes" (the
      reference's own float32 spread under diffusers' SDPA attention, for tolerances),
  "image", "infotexts", "infotext_parameters"}
"""

import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_hires_fixtures as mhf  # noqa: E402  (imports make_pipeline_fixtures; writes nothing)
import make_pipeline_fixtures as mpf  # noqa: E402
import make_img2img_fixtures as mif  # noqa: E402
import make_esrgan_fixtures as mef  # noqa: E402
import fixture_support as fs  # noqa: E402
from fixture_support import enc32, f32_text  # noqa: E402
from make_hires_fixtures import BASE, HIRES_DEFAULTS, OPT_F  # noqa: E402

OUT = os.path.join(fs.ROOT, "Tests", "DiffusionTests", "Fixtures", "hires_pixel.json")
GENERATOR = "Tests/Fixtures/generators/make_hires_pixel_fixtures.py"
MAX_BYTES = 1_000_000
ESRGAN = "4x-TinyOld"


def run_specs():
    """(name, sdshell settings): the four kinds of pixel upscaler at scale 2 (Euler a), three of them at
    1.75 (DPM++ 2M: dest 24 and the final LANCZOS to 28), and a downscale with hires_size (no upscaler
    runs, one LANCZOS; truncate_y after the encode; Euler)."""
    specs = []
    for up in ("None", "Lanczos", "Nearest", ESRGAN):
        specs.append((f"{up} / Euler a / scale 2 / denoise 0.6",
                      dict(BASE, hires_scale=2.0, hires_denoise=0.6, hires_upscaler=up)))
    for up in ("None", "Lanczos", ESRGAN):
        specs.append((f"{up} / DPM++ 2M / scale 1.75 (to 28x28, dest 24) / denoise 0.55",
                      dict(BASE, sampler="DPM++ 2M", hires_scale=1.75, hires_denoise=0.55, hires_upscaler=up)))
    # 24x40 -> hires_size 16x16: to 16x26, scale = max(16 / 24, 26 / 40) < 1: only LANCZOS; latent 8x13,
    # truncate_y 5 (2 above, 3 below)
    specs.append(("Nearest / Euler / 24x40 to hires_size 16x16 (downscale: LANCZOS only, truncate_y 5)",
                  dict(BASE, sampler="Euler", size=[24, 40], hires_size=[16, 16], hires_denoise=0.55,
                       hires_upscaler="Nearest")))
    return specs


class Model(mif.Model):
    """make_img2img_fixtures.Model (the VAE encode with sdshell's mean) with a batch of different pictures."""

    def encode_pictures(self, pictures):
        """images_tensor_to_samples of [B, H, W, 3] uint8 pictures: each encoded on its own."""
        return torch.cat([self.encode(p, 1) for p in pictures])


def a1111_settings(spec):
    """make_hires_fixtures.a1111_settings with the pixel upscaler's name (latent_scale_mode None) and the
    ESRGAN tile options."""
    a = mhf.a1111_settings(dict(spec, hires_upscaler="Latent"))
    out = {}
    for k, v in a.items():
        if k == "mode":
            out["latent_scale_mode"] = None
        elif k != "antialias":
            out[k] = v
    out["hr_upscaler"] = spec["hires_upscaler"]
    out["ESRGAN_tile"], out["ESRGAN_tile_overlap"] = mef.ESRGAN_TILE, mef.ESRGAN_TILE_OVERLAP
    return out


def hires_pixel_run(model, spec, scramble_hires=False):
    """The whole txt2img + pixel-upscaler hires fix of one run; returns every intermediate."""
    s, a = spec, a1111_settings(spec)
    w, h = s["size"]
    seeds = a["seeds"]
    first = mhf.txt2img_pass(model, s["sampler"], (4, h // OPT_F, w // OPT_F), seeds, s["rng"], s["steps"],
                             s["prompt"], s["negative"], s["cfg"])
    to_x, to_y, tx, ty = mhf.calculate_target_resolution(w, h, a["hr_scale"], a["hr_resize_x"], a["hr_resize_y"])
    _, lowres, _ = fs.decode_a1111(model.vae, first["latents"], mpf.SCALE_FACTOR, "mul")
    upscaled, passes = [], []
    for img in lowres:
        p = []
        up = mef.resize_image(Image.fromarray(img), to_x, to_y, a["hr_upscaler"], p)
        assert up.size == (to_x, to_y) and up.mode == "RGB"
        upscaled.append(np.array(up))
        passes.append(p)
    assert all(p == passes[0] for p in passes)
    upscaled = np.stack(upscaled)
    encoded = model.encode_pictures(upscaled)
    H, W = encoded.shape[2], encoded.shape[3]
    samples = encoded[:, :, ty // 2:H - (ty + 1) // 2, tx // 2:W - (tx + 1) // 2]
    label = a["hr_sampler_name"] or a["sampler_name"]
    requested = a["hr_second_pass_steps"] or s["steps"]
    total, t_enc = mhf.setup_img2img_steps(requested, a["denoising_strength"])
    second = mhf.sample_img2img(model, label, samples, s["rng"], seeds, total, t_enc, a["hr_prompt"],
                                a["hr_negative_prompt"], s["cfg"], scramble=scramble_hires)
    return dict(second, a=a, first=first, to=(to_x, to_y), truncate=(tx, ty), lowres=lowres, upscaled=upscaled,
                passes=passes[0], encoded=encoded, samples=samples.contiguous(), requested=requested, total=total)


def record(model, name, spec):
    t0 = time.time()
    r, r_sdpa = mhf.reference_runs(hires_pixel_run, model, spec, same=("latents", "samples"))
    a, s = r["a"], spec
    w, h = s["size"]
    B = s["batch"]
    to_x, to_y = r["to"]
    tx, ty = r["truncate"]
    lat_h, lat_w = to_y // OPT_F - ty, to_x // OPT_F - tx

    # --- checks
    assert r["lowres"].shape == (B, h, w, 3) and r["upscaled"].shape == (B, to_y, to_x, 3)
    assert tuple(r["encoded"].shape) == (B, 4, to_y // OPT_F, to_x // OPT_F)
    assert tuple(r["samples"].shape) == (B, 4, lat_h, lat_w) == tuple(r["noise"].shape) == tuple(r["latents"].shape)
    assert r["total"] == int(r["requested"] / min(a["denoising_strength"], 0.999)) and r["t_enc"] == r["requested"] - 1
    up, scale = a["hr_upscaler"], max(to_x / w, to_y / h)
    direct = np.stack([np.array(mif.lanczos_9_5(Image.fromarray(p), to_x, to_y)) for p in r["lowres"]])
    if up == "None" or scale <= 1.0:
        assert r["passes"] == ([] if up == "None" else [[to_x, to_y]]) and np.array_equal(r["upscaled"], direct), name
    else:
        assert not np.array_equal(r["upscaled"], direct) or up == "Lanczos", name
    if s["rng"] == "nv":
        n = r["first"]["noise"][0].numel()
        if r["noise"][0].numel() >= n:
            assert torch.equal(r["noise"].reshape(B, -1)[:, :n], r["first"]["noise"].reshape(B, -1)), name
    r3 = hires_pixel_run(model, spec, scramble_hires=True)
    draws_used = mhf.check_img2img_pass(name, r, r3)
    assert torch.equal(r3["samples"], r["samples"])

    _, img, _ = fs.decode_a1111(model.vae, r["latents"], mpf.SCALE_FACTOR, "mul")
    assert img.shape == (B, lat_h * OPT_F, lat_w * OPT_F, 3)
    texts = [mhf.infotext(spec, a, i) for i in range(B)]
    assert f"Hires upscaler: {up}" in texts[0][0]
    settings = dict(spec)
    for k, v in HIRES_DEFAULTS.items():
        assert k not in settings or settings[k] != v, (name, k)
    cut = (tx, ty) != (0, 0)
    run = {
        "name": name,
        "settings": settings,
        "a1111": a,
        "first_pass": {
            "latent_shape": list(r["first"]["latents"].shape),
            "sigmas": [f32_text(v) for v in r["first"]["sigmas"].tolist()],
            "denoiser_calls": r["first"]["calls"], "rng_next_calls": r["first"]["next_calls"],
            "latents": enc32(r["first"]["latents"]),
            "lowres": mhf.pictures_json(r["lowres"]),
        },
        "hires": {
            "hr_upscale_to_x": to_x, "hr_upscale_to_y": to_y, "truncate_x": tx, "truncate_y": ty,
            "width": lat_w * OPT_F, "height": lat_h * OPT_F,
            "passes": r["passes"],
            "upscaled": mhf.pictures_json(r["upscaled"]),
            "encoded": enc32(r["encoded"]) if cut else None,
            "init_latent": enc32(r["samples"]),
            "noise": enc32(r["noise"]),
            "requested_steps": r["requested"], "total": r["total"], "t_enc": r["t_enc"], "start_index": r["start"],
            **mhf.img2img_pass_json(r, draws_used),
        },
        "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
        "first_pass_sdpa_max_abs_diff": float((r_sdpa["first"]["latents"] - r["first"]["latents"]).abs().max()),
        "upscaled_sdpa_differing_bytes": int((r_sdpa["upscaled"] != r["upscaled"]).sum()),
        **mhf.images_json(img, texts),
    }
    print(f"  {name:85s} to={to_x}x{to_y} passes={r['passes']} latent={lat_h}x{lat_w} total={r['total']} "
          f"t_enc={r['t_enc']} calls={r['calls']} |lat|max={r['latents'].abs().max().item():6.3f} "
          f"sdpa={run['sdpa_latents_max_abs_diff']:.1e} up_sdpa_bytes={run['upscaled_sdpa_differing_bytes']} "
          f"({time.time() - t0:.1f} s)", flush=True)
    return run, r


def main():
    t_start = time.time()
    torch.set_num_threads(1)
    fs._check_nv()
    mef.import_spandrel()
    model = Model()
    mhf.check_against_pipeline_generator(model)
    runs, raw, names = mhf.record_runs(model, run_specs(), record)
    # the scale-2 runs share the first pass; "None" and "Lanczos" agree there (one 16 -> 32 LANCZOS each),
    # "Nearest" and the model differ from them
    two = {n.split(" /")[0]: raw[n] for n in names if "scale 2 /" in n}
    assert len(two) == 4
    for r in two.values():
        assert torch.equal(r["first"]["latents"], two["None"]["first"]["latents"])
    assert np.array_equal(two["None"]["upscaled"], two["Lanczos"]["upscaled"])
    assert torch.equal(two["None"]["latents"], two["Lanczos"]["latents"])
    for k in ("Nearest", ESRGAN):
        assert not np.array_equal(two["None"]["upscaled"], two[k]["upscaled"]), k
    assert two[ESRGAN]["passes"] == [[64, 64], [32, 32]] and two["Lanczos"]["passes"] == [[32, 32]]
    # 1.75: Lanczos goes 16 -> 28 -> 24 -> 28 and differs from None's one resize; the model 16 -> 64 -> 24 -> 28
    f = {n.split(" /")[0]: raw[n] for n in names if "scale 1.75" in n}
    assert f["Lanczos"]["passes"] == [[28, 28], [24, 24], [28, 28]]
    assert f[ESRGAN]["passes"] == [[64, 64], [24, 24], [28, 28]]
    assert not np.array_equal(f["None"]["upscaled"], f["Lanczos"]["upscaled"])
    model_file = os.path.join(mef.UPSCALER_DIR, [fn for n, fn, *_ in mef.MODELS if n == ESRGAN][0])
    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": fs.version("diffusers"),
                     "transformers": fs.version("transformers"), "k_diffusion": fs.version("k-diffusion"),
                     "torchsde": fs.version("torchsde"), "numpy": np.__version__, "pillow": fs.version("pillow"),
                     "spandrel": fs.version("spandrel")},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "model": {"path": "Tests/Fixtures/tiny-sd", "vae_scale": OPT_F, "scaling_factor": mpf.SCALE_FACTOR,
                  "attention": "UNet/VAE: diffusers AttnProcessor (explicit softmax); CLIP: eager"},
        "a1111": {
            "encode_choice": "sdshell's documented choice, the one difference from A1111: the upscaled pictures are "
                             "encoded to the VAE posterior's MEAN x scaling_factor (A1111 samples the posterior with "
                             "torch's unseeded global generator)",
            "opt_f": "opt_f = the tiny VAE's scale 2 (ImageRNG shapes, truncation); pixel sizes are the pictures' own",
            "lowres": "decode_latent_batch (per image, 1 / 0.18215 * latent), clamp((x + 1) / 2, 0, 1), 255. * HWC "
                      "float32, astype(uint8): truncation, as the final decode",
            "upscale": "images.resize_image(0, picture, hr_upscale_to_x, hr_upscale_to_y, upscaler_name=hr_upscaler): "
                       "'None' = one LANCZOS resize; otherwise Upscaler.upscale(picture, max(tw / w, th / h)) when that "
                       "scale > 1 (dest = int((side * scale) // 8 * 8), up to 3 do_upscale calls, LANCZOS to dest), "
                       "then LANCZOS to the target if the size differs; LANCZOS as Pillow 9.5 (horizontal pass first); "
                       "ESRGAN models through upscale_with_model with ESRGAN_tile 192 / ESRGAN_tile_overlap 8 (see "
                       "esrgan.json)",
            "encode": "np.float32 pixels / 255.0, [3, H, W], stacked; image * 2 - 1; each image encoded on its own; "
                      "mean * 0.18215; then the truncation slice; then as the latent hires fix (hires.json)",
            "infotext": "as hires.json: ... Hires upscale | Hires resize, [Hires steps], Hires upscaler: the A1111 name "
                        "(a model file's stem)",
            "defaults_assumed": "ESRGAN_tile 192, ESRGAN_tile_overlap 8, sd_vae_encode_method Full, eta_ancestral 1, "
                                "s_noise 1, ENSD 0, img2img_extra_noise 0, hr_scheduler = scheduler = Automatic, "
                                "inpainting_mask_weight 1, no subseed / seed resize, clip skip 1",
        },
        "hires_defaults": HIRES_DEFAULTS,
        "upscalers": {ESRGAN: {"file": fs.rel(model_file), "sha256": fs.sha256_file(model_file)}},
        "runs": runs,
    }
    size = fs.write_json_fixture(OUT, doc, MAX_BYTES)
    print(f"wrote {fs.rel(OUT)} ({size} bytes), {len(runs)} runs, {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/pipeline.json: reference txt2img runs on
the tiny model Tests/Fixtures/tiny-sd/, computed the way AUTOMATIC1111's webui
(1.10) computes them: its prompt conditioning, its ImageRNG, its CFGDenoiser
around k-diffusion's CompVisDenoiser, the real k-diffusion samplers, its VAE
decode and 8-bit conversion. Everything float32 on the CPU, one thread.

Rerun (after scripts/setup_reference_env.sh and make_tiny_sd.py,
make_embedding_fixtures.py, make_png_embedding_fixtures.py; needs k-diffusion,
torchsde, scipy, ftfy, safetensors, Pillow in .venv-ref; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_pipeline_fixtures.py [--append]
It uses fixture_support.py for A1111's Philox "NV" RNG, the k-diffusion import
without torchvision, alphas_cumprod, A1111's schedule types (a1111_sigmas, shared with
make_schedule_fixtures.py), the slow CLIPTokenizer built from
Sources/Prompting/Resources/bpe_simple_vocab_16e6.txt.gz and, for the
textual-inversion runs, A1111's embedding loading / tokenize_line /
EmbeddingsWithFixes and its image-embedding reader.
Deterministic: same library versions and CPU kind -> same file. float32 rounding
follows the CPU's kernels (AVX-512 vs AVX2 matmuls): elsewhere the latents move by up to
about 1e-5 of their largest value. To add runs without touching the existing ones, run with
--append: every run is recomputed, but the file keeps its contents byte for byte
and gets only the runs it lacks (the existing ones are compared and printed).

What A1111 does, step by step (and this script does the same)
---------------------------------------------------------------
1. Seeds (processing.py process_images_inner):
       all_seeds    = [seed + (i if subseed_strength == 0 else 0) for image i]
       all_subseeds = [subseed + i]
   QUIRK: with a variation seed (subseed_strength != 0) every image of the
   batch gets the SAME seed; only the subseeds differ ("subseed" run:
   seeds [S, S], subseeds [123, 124]).
2. Conditioning (sd_hijack_clip.py FrozenCLIPEmbedderWithCustomWords, emphasis
   "Original", plain prompts without attention syntax):
       ids = tokenizer(text, truncation=False, add_special_tokens=False).input_ids
       chunk = [49406] + ids + [49407] * (75 - len(ids)) + [49407]   (77 ids)
   i.e. padded with id_end = 49407 (SD 1.x: id_pad == id_end, so no pad
   rewrite), one chunk for <= 75 tokens (every prompt here), "" gives
   [49406] + [49407] * 76. Each distinct prompt is encoded ONCE, as a batch
   of one (prompt_parser.get_learned_conditioning caches per prompt), and the
   batch's rows are copies of it.
       clip_skip 1: z = text_model(ids).last_hidden_state
       clip_skip n>1: z = final_layer_norm(hidden_states[-n])
   Emphasis (sd_emphasis.EmphasisOriginal.after_transformers), multipliers all
   1.0 (float32): m = z.mean(); z = z * multipliers[..., None]; z = z * (m / z.mean()).
   With all weights 1.0 this is bit-exact a no-op (z * 1 == z, then the
   ratio of two equal means is exactly 1.0); the script asserts torch.equal.
   The negative prompt (uncond) goes through the same code.
3. Initial noise (rng.py ImageRNG, shape [4, h, w], one generator per image):
       cpu: generator_i = torch.Generator("cpu").manual_seed(seed_i)
       nv:  generator_i = rng_philox.Generator(seed_i)   (offset 0, +1 per randn call)
   first(): for image i:
       if subseeds and strength != 0:
           subnoise = randn(subseed_i, [4, h, w]) with a FRESH global generator
                      (torch.manual_seed(subseed_i); torch.randn(...)) /
                      rng_philox.Generator(subseed_i) -- NOT generator_i
       noise = generator_i.randn([4, h, w])          (generator_i's 1st draw)
       if subnoise: noise = slerp(strength, noise, subnoise)
   x = stack(noise_i)  -> [B, 4, h, w]; then x = x * sigmas[0].
   next() (every later call): stack(generator_i.randn([4, h, w]) for each i).
   k_diffusion.sampling.torch is replaced by sd_samplers_common.TorchHijack,
   whose randn_like(x) returns p.rng.next() (per image, concatenated over the
   batch). So ancestral noise continues each image's generator after its first
   draw (the subseed draws never touch generator_i). eta_noise_seed_delta = 0
   (default), so no reseeding.
   slerp(val, low=noise, high=subnoise) (rng.py), on [4, h, w] tensors:
       low_norm  = low  / torch.norm(low,  dim=1, keepdim=True)    # dim 1 = H!
       high_norm = high / torch.norm(high, dim=1, keepdim=True)
       dot = (low_norm * high_norm).sum(1)                         # [4, w]
       if dot.mean() > 0.9995: return low * val + high * (1 - val)  # (sic: weights swapped vs slerp)
       omega = acos(dot); so = sin(omega)
       res = (sin((1.0 - val) * omega) / so).unsqueeze(1) * low
             + (sin(val * omega) / so).unsqueeze(1) * high
   QUIRKS: written for [B, D] rows but applied to a 3-D [C, H, W] tensor, so
   the "vectors" are the columns (norm over H, per channel and x); the
   Python-float factors (1.0 - val), val are rounded to float32 before they
   multiply the float32 omega.
4. Sigmas (sd_samplers_kdiffusion.KDiffusionSampler.get_sigmas):
       automatic = CompVisDenoiser.get_sigmas(n) (uniform in t: t = linspace(999,
                   0, n), sigma = t_to_sigma(t), + [0]). In A1111 1.10 this is the
                   "Uniform" scheduler (sd_schedulers.uniform), and what its
                   "Automatic" scheduler gives Euler, Euler a, Heun and LMS
                   (before 1.9, "Automatic" was this for every sampler)
       karras    = k_diffusion.sampling.get_sigmas_karras(n, sigma_min =
                   model_wrap.sigmas[0].item(), sigma_max = model_wrap.sigmas[-1].item(), rho 7)
       the other A1111 1.10 scheduler types (exponential, polyexponential, sgm_uniform,
                   kl_optimal, align_your_steps, simple, normal, ddim, beta; the runs of 6d):
                   fixture_support.a1111_sigmas, i.e. sd_schedulers.py's function with
                   sigma_min = model_wrap.sigmas[0].item(), sigma_max = model_wrap.sigmas[-1].item(),
                   inner_model = model_wrap where it takes one, default options (rho: k-diffusion's
                   default, beta alpha = beta = 0.6) -- the same code as schedules.json's
                   (make_schedule_fixtures.py). kl_optimal's list has no final 0 (it ends at
                   sigma_min); the samplers run over the sigmas as they are.
   DPM2, DPM2 a and DPM++ 3M SDE have discard_next_to_last_sigma: the schedule is made for
   n + 1 steps and its second-to-last sigma dropped
   (torch.cat([sigmas[:-2], sigmas[-1:]])), with ANY schedule. Those runs
   use that variant (run field "discard_next_to_last_sigma": true).
   ("a1111_default_schedule" says which schedule A1111 >= 1.9's "Automatic"
   scheduler picks for the sampler.)
5. Denoiser (sd_samplers_cfg_denoiser.CFGDenoiser.forward, batch_cond_uncond
   on, one prompt per image so conds_list = [[(i, 1.0)]]):
       x_in     = cat([x[0], x[1], ..., x])      -> [x_0, x_1, x_0, x_1]
       sigma_in = [s_0, s_1, s_0, s_1]
       cond_in  = cat([cond, uncond])            -> [c, c, u, u]   (cond FIRST)
       x_out = CompVisDenoiser(x_in, sigma_in, cond={"c_crossattn": [cond_in]})
             = x_in + eps * (-sigma),  eps = UNet(x_in * c_in, sigma_to_t(sigma), cond_in),
               c_in = 1 / sqrt(sigma^2 + 1), quantize off (t is fractional)
       uncond_out = x_out[-B:]; denoised = clone(uncond_out)
       denoised[i] += (x_out[i] - uncond_out[i]) * (1.0 * cfg_scale)
   i.e. denoised = u + (c - u) * 7.0, one UNet call of batch 2B per step.
   s_min_uncond 0 and skip_early_cond 0 (defaults): uncond is never skipped.
6. Samplers: the real k_diffusion.sampling functions, with A1111's arguments:
   eta = 1.0 where the function takes eta; s_churn 0, s_tmin 0, s_tmax inf,
   s_noise 1 (euler, heun, dpm_2; except the churn runs of 6c); s_noise 1 for
   the others. DPM++ SDE, DPM++ 2M SDE, DPM++ 2M SDE Heun and DPM++ 3M SDE get
   noise_sampler = BrownianTreeNoiseSampler(x, sigma_min =
   sigmas[sigmas > 0].min(), sigma_max = sigmas.max(), seed = the batch's seeds)
   (KDiffusionSampler.create_noise_sampler; x = the scaled initial latent).
   DPM++ 2M SDE Heun is sample_dpmpp_2m_sde with solver_type="heun" (A1111 option
   'solver_type': 'heun', passed by KDiffusionSampler.sample).
   The tree's normals: A1111 (sd_samplers_common.replace_torchsde_browinan) replaces
   torchsde's _randn(size, dtype, device, seed) with rng.randn_local(seed, size): for the
   "nv" source rng_philox.Generator(seed).randn(size), for "cpu"
   torch.randn(size, generator=torch.Generator("cpu").manual_seed(seed)) -- the same values
   as torchsde's own _randn. The script does that replacement for every run (as in
   make_brownian_fixtures.py's nv case); the light SDE runs (6d) assert that the cpu
   replacement equals torchsde's default and that the nv one does not.
6b. DDIM (the two runs "DDIM / automatic" and "DDIM / automatic / nv", appended
   after the k-diffusion runs). A1111 1.10 runs DDIM as a *timestep* sampler,
   not through k-diffusion (modules/sd_samplers_timesteps.py CompVisSampler,
   modules/sd_samplers_timesteps_impl.py ddim; the version with
   s_x = x.new_ones((B, 1, 1, 1)), A1111 commit aeb76ef "fix batch size > 1
   for timestep samplers", in every release since 1.6.0):
       timesteps = clip(asarray(range(0, 1000, 1000 // steps)) + 1, 0, 999)
                   (int64; steps 8 -> [1, 126, 251, ..., 876]; the scheduler
                   setting is ignored; when 1000 % steps != 0 the list can be
                   LONGER than steps, e.g. steps 7 -> 8 entries)
       x = the ImageRNG initial noise AS IS: CompVisSampler.sample passes
           p.rng.next() to the function unscaled (no * sigmas[0], no
           sqrt(1 + sigma_max^2)); img2img alone mixes x * sqrt(a) + noise *
           sqrt(1 - a)
       alphas = ac[timesteps] (float32, ac = sd_model.alphas_cumprod)
       alphas_prev = ac[pad(timesteps[:-1], (1, 0))] cast to float64 (the pad
           value is 0, so alphas_prev[0] = ac[0], never used)
       sqrt_one_minus_alphas = sqrt(1 - alphas) (float32)
       sigmas = eta * np.sqrt(...) = 0 for eta = opts.eta_ddim = 0 (default)
       for index = len - 1 down to 1 (len - 1 = 7 model calls; index 0 never):
           e = CFGDenoiserTimesteps(x, timesteps[index].item() * ones(B))
           a_t, a_prev, sigma_t, sqrt_one_minus_at = python floats * ones(B,1,1,1)
               (float32 again: the float64 alphas_prev is exact float32 values)
           pred_x0 = (x - sqrt_one_minus_at * e) / a_t.sqrt()
           dir_xt = (1. - a_prev - sigma_t ** 2).sqrt() * e
           noise = sigma_t * k_diffusion.sampling.torch.randn_like(x)
                   (= ImageRNG.next(): drawn every step although multiplied by 0)
           x = a_prev.sqrt() * pred_x0 + dir_xt + noise
       return x. No extra final step: the result sits at ac[timesteps[0]] =
       ac[1], not at ac[0] or 1 (no alphas_cumprod[0] / "final alpha" step).
   CFGDenoiserTimesteps = CFGDenoiser with inner model CompVisTimestepsDenoiser
   (eps parameterization): x_out = sd_model.apply_model(x_in, t_in, cond) = the
   UNet eps on the RAW x (no c_in), t the integer timestep as float32; batching
   [x_0, x_1, x_0, x_1] / [c, c, u, u] and combine_denoised exactly as in 5, so
   e = u + (c - u) * 7.0 on eps. (get_pred_x0 there only feeds the live preview.)
6c. s_churn / s_tmin / s_tmax (the runs "euler_churn", "heun_churn", "dpm2_churn",
   appended LAST, after the textual-inversion runs). A1111 passes p.s_churn,
   p.s_tmin, p.s_tmax, p.s_noise to sample_euler / sample_heun / sample_dpm_2
   (sampler_extra_params), where StableDiffusionProcessing.__post_init__ sets
   s_tmax = opts.s_tmax or float('inf'): the option value 0 means infinity.
       euler_churn: Euler, automatic, nv rng,  s_churn 1.5, s_tmin 0.5, s_tmax 10, s_noise 1
                    (sigma 14.61 above s_tmax, 0.44 and 0.029 below s_tmin: steps 0, 6, 7
                    gated, steps 1-5 churned)
       heun_churn:  Heun, automatic, cpu rng,  s_churn 0.8, s_tmin 0, s_tmax 0 (= inf), s_noise 1
                    (every step churned)
       dpm2_churn:  DPM2, karras (A1111's default for DPM2; discard_next_to_last_sigma),
                    nv rng, s_churn 2.0, s_tmin 0.3, s_tmax 0 (= inf), s_noise 0.9
                    (sigmas 0.248 and 0.092 below s_tmin: steps 6, 7 gated, 0-5 churned)
   k-diffusion ab527a9 (0.0.16, A1111 1.10's pin; 0.1.1.post1's sampling.py is the same
   file), per step i of n = len(sigmas) - 1:
       gamma = min(s_churn / n, 2 ** 0.5 - 1) if s_tmin <= sigmas[i] <= s_tmax else 0.
               (Python floats; sigmas[i] a float32 tensor compared with them)
       eps = torch.randn_like(x) * s_noise        # EVERY step, before the gate
       sigma_hat = sigmas[i] * (gamma + 1)        # float32 tensor * Python float
       if gamma > 0: x = x + eps * (sigma_hat ** 2 - sigmas[i] ** 2) ** 0.5
       denoised = model(x, sigma_hat); d = (x - denoised) / sigma_hat
       then the sampler's step from sigma_hat (Euler: x + d * (sigmas[i+1] - sigma_hat);
       Heun's and DPM2's second evaluation as in k-diffusion, from sigma_hat).
   So the ImageRNG advances by one next() per step whether or not the step is in
   [s_tmin, s_tmax] (rng_next_calls = 8), and a gated step's draw is thrown away.
   The script asserts that the installed k-diffusion draws before the gate (it would
   stop on a version that draws only when gamma > 0), that each churned step's draw
   reaches x (shifting it alone changes the latents) and that the gated steps'
   draws do not (shifting them all leaves the latents bit-equal), and that
   k-diffusion's sigma_hat (callback) equals sigmas[i] * (gamma + 1).
7. Decode (processing.decode_latent_batch -> LDM decode_first_stage), per
   image (batch of one): z = (1. / 0.18215) * latent  (a Python double
   5.489980786165248 times the float32 tensor, NOT latent / 0.18215);
   image = vae.decode(z).sample.
   8-bit (process_images_inner): x = torch.stack(images).float();
   x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0);
   per image: x = 255. * np.moveaxis(x.numpy(), 0, 2)  (float32, HWC);
   x.astype(np.uint8) -> TRUNCATION toward zero, not rounding.

6d. Newer samplers and schedule types (the "light" runs, appended after the churn runs; they
   leave out initial_noise, first_denoised, sde_noise and the debug fields and point at another
   run's initial noise with "initial_noise_as"), all Euler-grid conventions (prompt, seeds, empty
   negative prompt, cfg 7, 8 steps):
       "DPM++ 2M SDE Heun / exponential" (cpu), "DPM++ 3M SDE / exponential" (cpu) and
       "DPM++ 3M SDE / exponential / nv": A1111's default schedule for both (exponential; 3M
       with discard_next_to_last_sigma), Brownian tree as in 6 with the run's rng source;
       "Euler / KIND" and "DPM++ 2M / KIND" for KIND in polyexponential, sgm_uniform,
       kl_optimal, align_your_steps, simple, normal, ddim, beta (cpu rng; sigmas as in 4;
       ddim: sigmas[1], sigmas[126], ..., sigmas[876] reversed + [0], so sigmas[0] = 7.37;
       kl_optimal: 9 sigmas ending at sigma_min, no 0).
   Each is checked for determinism and that no ImageRNG draw reaches x (Euler's eps times
   gamma = 0; the others draw none).
6e. PLMS and DDIM CFG++ (the light runs "PLMS / automatic" and "DDIM CFG++ / automatic", cpu rng,
   appended LAST, after the runs of 6d; keys as in 6d plus "timesteps" and "x0_scale" as the DDIM
   runs, "initial_noise_as": "DDIM / automatic"). A1111 1.10's other timestep samplers
   (modules/sd_samplers_timesteps.py samplers_timesteps, CompVisSampler, CFGDenoiserTimesteps):
   the same timesteps [1, 126, ..., 876], the same unscaled start x = ImageRNG first() and
   alphas / alphas_prev / sqrt(1 - alphas) as the DDIM of 6b, the scheduler ignored.
       PLMS (sd_samplers_timesteps_impl.plms; no eta parameter, so no eta is passed):
           for index = len - 1 down to 1:
               e = CFG(x, t[index])                 (eps, combined as in 6b)
               step(e) = sqrt(a_prev) (x - sqrt(1 - a_t) e) / sqrt(a_t) + sqrt(1 - a_prev) e
                         (a_t, a_prev, sqrt(1 - a_t) float32 [B, 1, 1, 1] as in 6b)
               first step: e' = (e + CFG(step(e), t[index - 1])) / 2   (pseudo improved Euler)
               then e' = (3 e - e_1) / 2, (23 e - 16 e_1 + 5 e_2) / 12,
                    (55 e - 59 e_1 + 37 e_2 - 9 e_3) / 24   (e_k: the k-th previous step's e,
                    NOT e'; at most 3 kept)
               x = step(e')
           -> len(timesteps) = 8 CFG calls for 7 steps; no randn_like call at all.
       DDIM CFG++ (sd_samplers_timesteps_impl.ddim_cfgpp; eta = opts.eta_ddim = 0): before the
           loop model.cond_scale_miltiplier = 1 / 12.5 and model.need_last_noise_uncond = True on
           the CFG denoiser (model = CFGDenoiserTimesteps). sd_samplers_cfg_denoiser.CFGDenoiser
           .forward then, after the UNet call (and cfg_denoised_callback), keeps
           last_noise_uncond = torch.clone(x_out[-B:]) (the unconditional eps of the call) and
           combines with combine_denoised(x_out, conds_list, uncond, cond_scale *
           cond_scale_miltiplier), i.e. e = u + (c - u) * (1.0 * (7.0 * (1 / 12.5))) (Python
           doubles, then the float32 tensor op). The multiplier also scales the edit-model
           combine; the skip_uncond branch keeps 1.0 (not taken here). Per step, as DDIM but:
               pred_x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t)
               dir_xt = sqrt(1 - a_prev - sigma_t^2) * last_noise_uncond
               x = sqrt(a_prev) pred_x0 + dir_xt + sigma_t * randn_like(x)
           -> 7 CFG calls, 7 rng.next() draws, all multiplied by sigma_t = 0.
       The script's CFGDenoiser carries both attributes (defaults 1.0 and False: the other runs
       are unchanged, cond_scale * 1.0 == cond_scale). Each run is checked for determinism, that
       no ImageRNG draw reaches x (every draw shifted by 1: same latents), its call / draw counts,
       PLMS's history (0, 1, 2, 3, 3, 3, 3 previous e's) and, for CFG++, that the first call's
       guided eps is u + (c - u) * 0.56.

8. Textual inversion (the four runs "Euler a / automatic / TI ...", appended after
   the DDIM runs): A1111 with the embedding folders EMBEDDINGS_DIRS loaded
   (embeddings/ then png-embeddings/: .pt, .bin, .safetensors and PNG embeddings;
   names across both folders distinct), conditioning computed with
   fixture_support.py's A1111 code (tokenize_line: a matched name
   -> placeholder id 0 per vector and a fix (offset after BOS, embedding);
   encode_a1111: the text model with EmbeddingsWithFixes, the vectors replacing the
   token-embedding rows offset+1 .. before the position embeddings; asserted equal to
   encode_by_hand and, for "a redshape on a table", to the JSON of
   make_embedding_fixtures.py), PNG files read by fixture_support.a1111_outcome (vectors
   checked against png-embeddings/expected.json). Sampling as in 1-6 (Euler a,
   automatic schedule, cpu rng, the usual seeds). Each run asserts that without the
   substitution (token-0 rows at the placeholders) the latents differ.

Reference model: Tests/Fixtures/tiny-sd loaded with torch_dtype float32 (the
float16 weights widened exactly); CLIP with transformers' eager attention;
UNet and VAE with diffusers' plain AttnProcessor (explicit softmax), as in
make_network_fixtures.py. Each run is repeated with diffusers'
default SDPA attention; "sdpa_latents_max_abs_diff" shows how far an
equally valid float32 implementation lands (a guide for test tolerances).
VAE scale 2: latent 8x8 <-> image 16x16.

File layout (tensors are {"shape": [...], "data": [row-major float32 values
written as exact Python floats]}; token ids are ints)
-------------------------------------------------------------------------------
{"generator", "versions", "model": {path, sha256 of the weight files, vae_scale,
  latent shape}, "a1111": {the notes above, as strings},
 "alphas_cumprod": [1000 floats], "sigma_min", "sigma_max",
 "conditionings": {KEY: {"prompt", "clip_skip", "ids": [77 ints],
                         "z": tensor [1, 77, 32]}},
 "runs": [RUN, ...]}
RUN = {
  "name", "settings": {"prompt", "negative_prompt", "seeds": [2] (as A1111
      uses them), "subseeds": [2] | null, "subseed", "subseed_strength",
      "sampler" (A1111 label), "function" (k-diffusion; "ddim", "plms", "ddim_cfgpp" = A1111's
      sd_samplers_timesteps_impl functions), "schedule"
      ("automatic" (= A1111's Uniform) | "karras" | "exponential" | "polyexponential" | "sgm_uniform"
      | "kl_optimal" | "align_your_steps" | "simple" | "normal" | "ddim" | "beta"; the DDIM,
      PLMS and DDIM CFG++ samplers: "automatic", they have no sigma schedule), "steps" 8,
      "cfg_scale" 7.0, "rng" ("cpu" | "nv"), "clip_skip", "width" 16, "height" 16, "batch_size" 2,
      "sampler_kwargs" (what A1111 passes: eta, s_churn, s_tmin, s_tmax ("inf"),
      s_noise, solver_type; {} for PLMS), "discard_next_to_last_sigma", "a1111_default_schedule"},
  "cond_key", "uncond_key"  (into "conditionings"),
  "cond_ids": [[77], [77]], "uncond_ids": [[77], [77]]  (per image),
  "initial_noise": [2, 4, 8, 8]  (ImageRNG first(); x0 = initial_noise * sigmas[0];
      DDIM: x0 = initial_noise, unscaled),
  "sigmas": [...] (the exact schedule passed to the sampler; 9 values, the
      last 0, but kl_optimal's last is sigma_min; [] for DDIM, PLMS and DDIM CFG++),
  "timesteps": the timestep samplers only (DDIM, PLMS, DDIM CFG++): [8 ints] (the list passed
      to the function; evaluated from the last down to index 1), "x0_scale": "none"; the two
      DDIM runs also "ddim_steps": [{"index", "t", "a_t", "a_prev", "sqrt_one_minus_at"}] per
      model call,
  "cond_scale_multiplier": DDIM CFG++ only, 0.08 (= 1 / 12.5, what ddim_cfgpp sets),
  "denoiser_calls" (CFG denoiser calls = UNet calls, each of batch
      "unet_calls_batch" 4), "first_denoised": [2, 4, 8, 8] (CFG output of
      the first call, at sigmas[0] with x0; DDIM: the CFG-combined EPS of
      the first call, at timesteps[-1] with x0),
  "rng_next_calls": how many ImageRNG.next() calls (randn_like) the sampler
      made after the initial noise,
  "rng_draws_used": true for the ancestral samplers (Euler a, DPM2 a,
      DPM++ 2S a) and the churn runs, whose draws reach x; false where they are multiplied by
      gamma = 0 (Euler, Heun, DPM2: k-diffusion 0.1.1 draws eps every step even
      with s_churn = 0; checked by rerunning with every draw shifted by 1) or
      there are none,
  "sde_noise": only the DPM++ SDE / DPM++ 2M SDE grid runs: [{"sigma", "sigma_next",
      "noise": [2, 4, 8, 8]}] in call order (what the BrownianTreeNoiseSampler
      returned; inject these),
  "latents": [2, 4, 8, 8] (the sampler's result),
  "sdpa_latents_max_abs_diff" (see above),
  textual-inversion runs only (they leave out initial_noise, first_denoised and
  the debug fields, to stay near 2 MB):
  "embeddings_dirs": [folders, relative to the repository, loaded in order],
  "cond_fixes" / "uncond_fixes": [{"offset" (after BOS: ids row offset + 1 is the
      first placeholder), "name", "vectors"}], "initial_noise_as": the run whose
      initial_noise (and sigmas) these runs share (asserted: same seeds, cpu rng),
  "cond_key" / "uncond_key": null where the conditioning is not in
      "conditionings" (the prompts with embeddings; "a cat"),
  churn runs only (appended last; like the textual-inversion runs they leave out
  initial_noise, first_denoised and the debug fields):
  "settings" has, besides the usual keys, "s_churn", "s_tmin", "s_tmax", "s_noise":
      the A1111 option values (numbers; s_tmax 0 = infinity), while
      "sampler_kwargs" holds what k-diffusion got (s_tmax "inf" there),
  "initial_noise_as": a run with the same seeds and rng (its initial_noise is
      this run's; asserted),
  "churn_steps": [{"i", "sigma", "in_range" (s_tmin <= sigma <= s_tmax), "gamma"
      (Python float), "sigma_hat" (float32, where the model is evaluated)}] per step,
  "rng_next_calls": 8 (one draw per step, churned or not),
  light runs only (6d; appended after the churn runs): the keys of the churn runs but
  "churn_steps" and the churn settings ("initial_noise_as", "sigmas", "latents", counts);
  the light timestep runs (6e; appended last) the same plus "timesteps" and "x0_scale",
  only in the FULL_DETAIL_RUNS (to stay near 2 MB):
  "first_x_out": [4, 4, 8, 8] (x_out of the first call: denoised
      [cond_0, cond_1, uncond_0, uncond_1] before CFG),
  "rng_draws" (ancestral samplers): [[2, 4, 8, 8] per next() call, in order],
  "subseed_detail" (subseed run): per image {"seed_noise", "subseed_noise"
      ([4, 8, 8] each), "dot_mean", "linear_fallback"},
  "decoded" (run "Euler a / karras" only): {"z_scale", "vae_output": [2, 3, 16, 16]
      (vae.decode(...).sample, before clamping), "image_uint8": {"shape":
      [2, 16, 16, 3], "layout", "data": ints} (HWC, RGB), "conversion",
      "rounding_would_differ": bytes where round() != truncation,
      "div_scale_would_differ": bytes that change if latents / 0.18215 is
      used instead of (1. / 0.18215) * latents, "saturated_fraction"}}
"""

import json
import math
import os
import sys
import tempfile
import warnings

import numpy as np
import torch

# transformers / diffusers first: import_k_diffusion stubs torchvision in
# sys.modules (for k-diffusion), which transformers' import-time probe rejects.
from transformers import CLIPTextModel  # noqa: E402
from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0  # noqa: E402
import fixture_support as fs  # noqa: E402
from fixture_support import (ROOT, VOCAB_GZ, PhiloxGenerator, _check_nv, build_tokenizer_files,  # noqa: E402
                             load_tokenizer, sha256_file, version)
import transformers  # noqa: E402

transformers.logging.set_verbosity_error()   # the max_length / sequence-length notices A1111 also triggers
warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)
warnings.filterwarnings("ignore", message=".*torch_dtype.*")

K = fs.import_k_diffusion()
KS = K.sampling
REAL_TORCH = torch
import torchsde._brownian.brownian_interval as BI  # noqa: E402  (after k-diffusion, which imports torchsde)

TORCHSDE_RANDN = BI._randn

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "tiny-sd")
OUT = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "pipeline.json")
GENERATOR = "Tests/Fixtures/generators/make_pipeline_fixtures.py"
MAX_BYTES = 2_600_000   # keep the fixture small (it is read by every test run)

SEED = 2718281828            # > 2**31: exercises unsigned 32-bit seed handling
STEPS = 8
CFG = 7.0
BATCH = 2
LATENT = (4, 8, 8)
VAE_SCALE = 2
SCALE_FACTOR = 0.18215
PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry, low quality, text"
SUBSEED = 123
SUBSEED_STRENGTH = 0.3

# (A1111 label, k-diffusion function, options as in A1111's samplers_k_diffusion)
SAMPLERS = [
    ("Euler", "sample_euler", {}),
    ("Euler a", "sample_euler_ancestral", {"ancestral": True}),
    ("Heun", "sample_heun", {}),
    ("DPM2", "sample_dpm_2", {"discard_next_to_last_sigma": True}),
    ("DPM2 a", "sample_dpm_2_ancestral", {"discard_next_to_last_sigma": True, "ancestral": True}),
    ("LMS", "sample_lms", {}),
    ("DPM++ 2M", "sample_dpmpp_2m", {}),
    ("DPM++ 2S a", "sample_dpmpp_2s_ancestral", {"ancestral": True}),
    ("DPM++ SDE", "sample_dpmpp_sde", {"brownian_noise": True}),
    ("DPM++ 2M SDE", "sample_dpmpp_2m_sde", {"brownian_noise": True}),
    ("DPM++ 2M SDE Heun", "sample_dpmpp_2m_sde", {"scheduler": "exponential", "brownian_noise": True,
                                                  "solver_type": "heun"}),
    ("DPM++ 3M SDE", "sample_dpmpp_3m_sde", {"scheduler": "exponential", "discard_next_to_last_sigma": True,
                                             "brownian_noise": True}),
    # sd_samplers_lcm.py: not a k-diffusion function (fixture_support.a1111_sample_lcm), and its own
    # denoiser (fixture_support.a1111_lcm_denoiser), see lcm_run_records
    ("LCM", "sample_lcm", {"ancestral": True}),
    # No sigma list: A1111 passes the model's sigma_min / sigma_max (and n = steps to DPM fast) and
    # eta (eta_ancestral, 1); their step noise is randn_like, the image RNG.
    ("DPM fast", "sample_dpm_fast", {"ancestral": True, "model_range": True}),
    ("DPM adaptive", "sample_dpm_adaptive", {"ancestral": True, "model_range": True}),
    # modules/sd_samplers_extra.py (fixture_support.a1111_restart_sampler); at 8 steps plain Heun steps
    ("Restart", "a1111_restart_sampler", {"ancestral": True}),
]
# samplers A1111 defines outside k-diffusion
LOCAL_SAMPLER_FUNCTIONS = {"sample_lcm": fs.a1111_sample_lcm, "a1111_restart_sampler": fs.a1111_restart_sampler}
SAMPLER_OPTS = {label: (fn, opts) for label, fn, opts in SAMPLERS}
# the samplers of the automatic x karras grid (run_specs); the later ones have only the runs of LIGHT_RUNS
GRID_SAMPLERS = ["Euler", "Euler a", "Heun", "DPM2", "DPM2 a", "LMS", "DPM++ 2M", "DPM++ 2S a", "DPM++ SDE",
                 "DPM++ 2M SDE"]
# A1111 >= 1.9: what scheduler "Automatic" resolves to for each sampler.
A1111_DEFAULT_SCHEDULE = dict(fs.A1111_DEFAULT_SCHEDULE)
assert all(A1111_DEFAULT_SCHEDULE[label] == opts["scheduler"] for label, _, opts in SAMPLERS if "scheduler" in opts)
# sd_samplers_kdiffusion.sampler_extra_params (1.10)
EXTRA_PARAMS = {
    "sample_euler": ["s_churn", "s_tmin", "s_tmax", "s_noise"],
    "sample_heun": ["s_churn", "s_tmin", "s_tmax", "s_noise"],
    "sample_dpm_2": ["s_churn", "s_tmin", "s_tmax", "s_noise"],
    "sample_dpm_2_ancestral": ["s_noise"],
    "sample_dpmpp_2s_ancestral": ["s_noise"],
    "sample_dpmpp_sde": ["s_noise"],
    "sample_dpmpp_2m_sde": ["s_noise"],
    "sample_dpmpp_3m_sde": ["s_noise"],
}
P_VALUES = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0}
ETA = 1.0   # opts.eta_ancestral


# --- helpers ------------------------------------------------------------------

def enc(t):
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32, t.dtype
        data = [float(v) for v in t.flatten().tolist()]
        assert all(math.isfinite(v) for v in data)
    else:
        data = [int(v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def f32(v):
    if isinstance(v, torch.Tensor):
        v = v.detach().to(torch.float32).reshape(-1)
        assert v.numel() == 1
        v = v[0].item()
    return float(np.float32(v))


# --- A1111 conditioning ---------------------------------------------------------

ID_START, ID_END = 49406, 49407
CHUNK = 75


def a1111_chunk_ids(tok, text):
    """FrozenCLIPEmbedderWithCustomWords.tokenize_line for a plain prompt of at
    most 75 tokens (one chunk; no BREAK, embeddings or attention syntax)."""
    for c in "()[]:\\":
        assert c not in text, text
    assert "BREAK" not in text
    ids = tok([text], truncation=False, add_special_tokens=False)["input_ids"][0]
    assert len(ids) <= CHUNK, (text, len(ids))
    tokens = list(ids) + [ID_END] * (CHUNK - len(ids))
    return [ID_START] + tokens + [ID_END]


class Conditioner:
    def __init__(self, tok, te):
        self.tok, self.te = tok, te
        self.table = {}

    def get(self, text, clip_skip):
        key = f"{'neg' if text == NEGATIVE else ('empty' if text == '' else 'prompt')}_skip{clip_skip}"
        if key in self.table:
            assert self.table[key]["prompt"] == text
            return key, self.table[key]["z"]
        ids = a1111_chunk_ids(self.tok, text)
        tokens = torch.asarray([ids])                       # batch of ONE (per-prompt cache)
        with torch.no_grad():
            out = self.te(input_ids=tokens, output_hidden_states=True)
            if clip_skip > 1:
                z = self.te.text_model.final_layer_norm(out.hidden_states[-clip_skip])
            else:
                z = out.last_hidden_state
            # EmphasisOriginal.after_transformers with all multipliers 1.0
            multipliers = torch.asarray([[1.0] * len(ids)])
            original_mean = z.mean()
            z2 = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
            new_mean = z2.mean()
            z3 = z2 * (original_mean / new_mean)
            assert multipliers.dtype == torch.float32
            assert torch.equal(z3, z), "emphasis with weights 1.0 is not a no-op"
            assert (original_mean / new_mean).item() == 1.0
        self.table[key] = {"prompt": text, "clip_skip": clip_skip, "ids": ids, "z": z3}
        return key, z3


# --- A1111 ImageRNG -------------------------------------------------------------

def slerp(val, low, high):
    """A1111's variation-seed slerp (modules/rng.py), written from its formula: norms and cosines
    per (channel, column), i.e. over dim 1 of [C, H, W]; when the mean cosine exceeds 0.9995 a
    linear blend with swapped weights. Also returns (mean cosine, whether the blend was linear)."""
    unit_low = low / torch.norm(low, dim=1, keepdim=True)
    unit_high = high / torch.norm(high, dim=1, keepdim=True)
    cosine = (unit_low * unit_high).sum(1)
    mean_cosine = cosine.mean()
    if mean_cosine > 0.9995:
        return low * val + high * (1 - val), float(mean_cosine), True
    angle = torch.acos(cosine)
    sine = torch.sin(angle)
    weight_low = (torch.sin((1.0 - val) * angle) / sine).unsqueeze(1)
    weight_high = (torch.sin(val * angle) / sine).unsqueeze(1)
    return weight_low * low + weight_high * high, float(mean_cosine), False


class ImageRNG:
    """modules/rng.py ImageRNG with randn_source CPU or NV, its seed resize
    (seed_resize_from_h/w in pixels: the seed's noise drawn at that size, pasted centred into the
    image generator's first draw) and eta_noise_seed_delta (the generators reseeded with
    seed + delta after the first noise)."""

    def __init__(self, source, shape, seeds, subseeds=None, subseed_strength=0.0, seed_resize_from_h=0,
                 seed_resize_from_w=0, eta_noise_seed_delta=0):
        self.source = source
        self.seed_resize_from_h = seed_resize_from_h
        self.seed_resize_from_w = seed_resize_from_w
        self.eta_noise_seed_delta = eta_noise_seed_delta
        self.shape = tuple(shape)
        self.seeds = seeds
        self.subseeds = subseeds
        self.subseed_strength = subseed_strength
        self.generators = [self.create_generator(s) for s in seeds]
        self.is_first = True
        self.next_calls = 0
        self.draws = []
        self.detail = None
        self.scramble = False
        self.scramble_calls = ()     # next() call numbers (1, 2, ...) to shift by 1 (churn gating check)

    def create_generator(self, seed):
        if self.source == "nv":
            return PhiloxGenerator(seed)
        return torch.Generator("cpu").manual_seed(int(seed))

    def randn_with(self, generator, shape=None):
        shape = self.shape if shape is None else tuple(shape)
        if self.source == "nv":
            return torch.asarray(generator.randn(shape))
        return torch.randn(shape, device="cpu", generator=generator)

    def randn_global(self, seed, shape=None):
        """rng.randn(seed, shape) without a generator: reseeds the GLOBAL rng."""
        shape = self.shape if shape is None else tuple(shape)
        if self.source == "nv":
            return torch.asarray(PhiloxGenerator(seed).randn(shape))
        torch.manual_seed(seed)
        return torch.randn(shape, device="cpu")

    def first(self):
        xs = []
        details = []
        resized = self.seed_resize_from_h > 0 and self.seed_resize_from_w > 0
        noise_shape = (self.shape[0], self.seed_resize_from_h // 8, self.seed_resize_from_w // 8) if resized else self.shape
        for i, (seed, generator) in enumerate(zip(self.seeds, self.generators)):
            subnoise = None
            if self.subseeds is not None and self.subseed_strength != 0:
                subseed = 0 if i >= len(self.subseeds) else self.subseeds[i]
                subnoise = self.randn_global(subseed, noise_shape)
            if noise_shape != self.shape:
                noise = self.randn_global(seed, noise_shape)
            else:
                noise = self.randn_with(generator)
            if subnoise is not None:
                seed_noise = noise
                noise, dot_mean, fallback = slerp(self.subseed_strength, noise, subnoise)
                details.append({"seed_noise": seed_noise, "subseed_noise": subnoise,
                                "dot_mean": dot_mean, "linear_fallback": fallback})
            if noise_shape != self.shape:
                # rng.py: the image generator's first draw, the seed's noise pasted centred (floor division)
                x = self.randn_with(generator)
                dx = (self.shape[2] - noise_shape[2]) // 2
                dy = (self.shape[1] - noise_shape[1]) // 2
                w = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
                h = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
                tx = 0 if dx < 0 else dx
                ty = 0 if dy < 0 else dy
                dx = max(-dx, 0)
                dy = max(-dy, 0)
                x[:, ty:ty + h, tx:tx + w] = noise[:, dy:dy + h, dx:dx + w]
                noise = x
            xs.append(noise)
        if details:
            self.detail = details
        if self.eta_noise_seed_delta:
            self.generators = [self.create_generator(seed + self.eta_noise_seed_delta) for seed in self.seeds]
        return torch.stack(xs)

    def next(self):
        if self.is_first:
            self.is_first = False
            return self.first()
        self.next_calls += 1
        x = torch.stack([self.randn_with(g) for g in self.generators])
        if self.scramble or self.next_calls in self.scramble_calls:
            x = x + 1.0
        self.draws.append(x.clone())
        return x


# --- model ----------------------------------------------------------------------

class LDMLike:
    """What CompVisDenoiser needs of A1111's LatentDiffusion: alphas_cumprod and
    apply_model(x, t, cond) with cond = {"c_crossattn": [tensor]} (crossattn
    conditioning: DiffusionWrapper concatenates c_crossattn along dim 1)."""

    def __init__(self, unet, alphas_cumprod):
        self.unet = unet
        self.alphas_cumprod = alphas_cumprod
        self.calls = 0

    def apply_model(self, x, t, cond):
        self.calls += 1
        cc = torch.cat(cond["c_crossattn"], 1)
        return self.unet(x, t, encoder_hidden_states=cc).sample


class CFGDenoiser:
    """sd_samplers_cfg_denoiser.CFGDenoiser.forward for txt2img with one prompt
    per image (conds_list[i] = [(i, 1.0)]), batch_cond_uncond on, with A1111 1.10's CFG++ hooks
    (cond_scale_miltiplier, need_last_noise_uncond / last_noise_uncond)."""

    def __init__(self, model_wrap):
        self.model_wrap = model_wrap
        self.calls = 0
        self.first = None
        # A1111 1.10 (sic, its spelling): forward combines with cond_scale * cond_scale_miltiplier and,
        # with need_last_noise_uncond, keeps torch.clone(x_out[-uncond.shape[0]:]); ddim_cfgpp sets them
        self.cond_scale_miltiplier = 1.0
        self.need_last_noise_uncond = False
        self.last_noise_uncond = None

    def __call__(self, x, sigma, uncond, cond, cond_scale, s_min_uncond=0.0, image_cond=None):
        conds_list, x_in, sigma_in = fs.a1111_cfg_inputs(x, sigma)
        assert cond.shape[1] == uncond.shape[1]
        cond_in = torch.cat([cond, uncond])
        x_out = self.model_wrap(x_in, sigma_in, cond={"c_crossattn": [cond_in]})
        if self.need_last_noise_uncond:
            self.last_noise_uncond = torch.clone(x_out[-uncond.shape[0]:])
        # combine_denoised(x_out, conds_list, uncond, cond_scale * self.cond_scale_miltiplier)
        # (multiplier 1.0: cond_scale * 1.0 == cond_scale exactly, the runs without CFG++ are unchanged)
        cond_scale = cond_scale * self.cond_scale_miltiplier
        denoised_uncond = x_out[-uncond.shape[0]:]
        denoised = torch.clone(denoised_uncond)
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)
        if self.calls == 0:
            self.first = {"x_out": x_out.clone(), "denoised": denoised.clone(), "x": x.clone(),
                          "sigma": sigma.clone()}
        self.calls += 1
        return denoised


def get_sigmas(model_wrap, schedule, steps, discard):
    """KDiffusionSampler.get_sigmas: 'automatic' (model_wrap.get_sigmas, A1111's Uniform), 'karras',
    and every other A1111 1.10 schedule type through fixture_support.a1111_sigmas (the
    sd_schedulers.py functions with sigma_min = model_wrap.sigmas[0].item(), sigma_max =
    model_wrap.sigmas[-1].item(), inner_model = model_wrap where they take one; default options)."""
    steps += 1 if discard else 0
    if schedule == "automatic":
        sigmas = model_wrap.get_sigmas(steps)
    elif schedule == "karras":
        sigmas = KS.get_sigmas_karras(n=steps, sigma_min=model_wrap.sigmas[0].item(),
                                      sigma_max=model_wrap.sigmas[-1].item(), device="cpu")
    elif schedule in fs.SCHEDULE_KINDS:
        sigmas = fs.a1111_sigmas(schedule, steps, model_wrap)
        assert sigmas.dtype == torch.float32, (schedule, sigmas.dtype)
    else:
        raise ValueError(schedule)
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas.cpu()


# --- one txt2img run ------------------------------------------------------------------

def a1111_torchsde_randn(source):
    """sd_samplers_common.replace_torchsde_browinan: torchsde's _randn(size, dtype, device, seed)
    becomes rng.randn_local(seed, size).to(device, dtype): for randn_source "NV"
    rng_philox.Generator(seed).randn(size), for "CPU" torch.randn on torch.Generator("cpu")
    .manual_seed(seed) (the same normals as torchsde's own _randn on the CPU)."""
    def randn(size, dtype, device, seed):
        if source == "nv":
            x = torch.asarray(PhiloxGenerator(int(seed)).randn(tuple(size)))
        else:
            x = torch.randn(size, device="cpu", generator=torch.Generator("cpu").manual_seed(int(seed)))
        return x.to(device=device, dtype=dtype)
    return randn


def run_txt2img(spec, unet, model_wrap, conditioner, scramble=False, conds=None, scramble_calls=(),
                brownian_randn=None):
    label = spec["sampler"]
    funcname, opts = SAMPLER_OPTS[label]
    func = LOCAL_SAMPLER_FUNCTIONS.get(funcname) or getattr(KS, funcname)
    discard = bool(opts.get("discard_next_to_last_sigma"))
    if spec["subseed_strength"] != 0:
        seeds = [spec["seed"]] * BATCH                     # A1111 quirk, see doc
        subseeds = [spec["subseed"] + i for i in range(BATCH)]
    else:
        seeds = [spec["seed"] + i for i in range(BATCH)]
        subseeds = [spec["subseed"] + i for i in range(BATCH)] if spec["subseed"] is not None else None

    if conds is None:
        cond_key, c = conditioner.get(spec["prompt"], spec["clip_skip"])
        uncond_key, uc = conditioner.get(spec["negative_prompt"], spec["clip_skip"])
    else:                                # precomputed (the textual-inversion runs)
        (cond_key, c), (uncond_key, uc) = conds
    cond = torch.cat([c] * BATCH)        # reconstruct_multicond_batch: one row per image
    uncond = torch.cat([uc] * BATCH)     # reconstruct_cond_batch

    rng = ImageRNG(spec["rng"], LATENT, seeds, subseeds=subseeds if spec["subseed_strength"] != 0 else None,
                   subseed_strength=spec["subseed_strength"], seed_resize_from_h=spec.get("seed_resize_from_h", 0),
                   seed_resize_from_w=spec.get("seed_resize_from_w", 0), eta_noise_seed_delta=spec.get("eta_noise_seed_delta", 0))
    rng.scramble = scramble
    rng.scramble_calls = scramble_calls
    noise = rng.next()
    sigmas = get_sigmas(model_wrap, spec["schedule"], STEPS, discard)
    x = noise * sigmas[0]

    parameters = __import__("inspect").signature(func).parameters
    kwargs = {}
    p_values = a1111_p_values(spec["churn"]) if "churn" in spec else P_VALUES
    for name in EXTRA_PARAMS.get(funcname, []):
        if name in parameters:
            kwargs[name] = p_values[name]
    if "eta" in parameters:
        kwargs["eta"] = ETA
    if opts.get("solver_type") == "heun":            # KDiffusionSampler.sample
        kwargs["solver_type"] = "heun"
    if opts.get("model_range"):                      # KDiffusionSampler.sample for DPM fast / adaptive
        kwargs.update(sigma_min=model_wrap.sigmas[0].item(), sigma_max=model_wrap.sigmas[-1].item())
        if "n" in parameters:
            kwargs["n"] = len(sigmas) - 1
    steps_seen = []
    if "churn" in spec:                  # the callback only records (sigma_hat per step)
        kwargs["callback"] = lambda d: steps_seen.append({"i": d["i"], "sigma": d["sigma"], "sigma_hat": d["sigma_hat"]})
    sde_noise = []
    # A1111 replaces torchsde's _randn for good at startup; here only for this run (brownian_randn:
    # another replacement, for the checks)
    BI._randn = brownian_randn or a1111_torchsde_randn(spec["rng"])
    if opts.get("brownian_noise"):
        smin, smax = sigmas[sigmas > 0].min(), sigmas.max()
        tree = KS.BrownianTreeNoiseSampler(x, smin, smax, seed=seeds)

        def noise_sampler(sigma, sigma_next):
            v = tree(sigma, sigma_next)
            sde_noise.append({"sigma": f32(sigma), "sigma_next": f32(sigma_next), "noise": v.clone()})
            return v
        kwargs["noise_sampler"] = noise_sampler

    cfg = CFGDenoiser(model_wrap)
    extra_args = {"cond": cond, "image_cond": None, "uncond": uncond, "cond_scale": CFG, "s_min_uncond": 0.0}
    KS.torch = fs.TorchHijack(rng.next)
    try:
        with torch.no_grad():
            if opts.get("model_range"):
                latents = func(cfg, x, extra_args=extra_args, disable=True, **kwargs)
            else:
                latents = func(cfg, x, sigmas=sigmas, extra_args=extra_args, disable=True, **kwargs)
    finally:
        KS.torch = REAL_TORCH
        BI._randn = TORCHSDE_RANDN
    assert torch.equal(cfg.first["x"], x) or ("churn" in spec and steps_seen[0]["sigma_hat"] != sigmas[0])
    kwargs.pop("callback", None)
    return {
        "seeds": seeds, "subseeds": subseeds, "cond_key": cond_key, "uncond_key": uncond_key,
        "noise": noise, "sigmas": sigmas, "latents": latents, "cfg": cfg, "rng": rng,
        "sde_noise": sde_noise, "kwargs": kwargs, "discard": discard, "steps_seen": steps_seen,
    }


# --- A1111's DDIM (timestep sampler) ---------------------------------------------------

DDIM_ETA = 0.0   # opts.eta_ddim (CompVisSampler.eta_default)


class CompVisTimestepsDenoiser:
    """sd_samplers_timesteps.CompVisTimestepsDenoiser (eps model): apply_model on
    the raw input with the timesteps as given; no c_in, no c_out."""

    def __init__(self, model):
        self.inner_model = model

    def __call__(self, input, timesteps, **kwargs):
        return self.inner_model.apply_model(input, timesteps, **kwargs)


class CFGDenoiserTimesteps(CFGDenoiser):
    """sd_samplers_timesteps.CFGDenoiserTimesteps: CFGDenoiser.forward unchanged
    (the combine works on eps); inner_model is the timesteps denoiser."""

    @property
    def inner_model(self):
        return self.model_wrap


def a1111_ddim_timesteps(steps, discard_next_to_last_sigma=False):
    """CompVisSampler.get_timesteps (opts.always_discard_next_to_last_sigma off)."""
    steps += 1 if discard_next_to_last_sigma else 0
    timesteps = torch.clip(torch.asarray(list(range(0, 1000, 1000 // steps)), device="cpu") + 1, 0, 999)
    assert timesteps.dtype == torch.int64
    assert timesteps.tolist() == np.clip(np.arange(0, 1000, 1000 // steps) + 1, 0, 999).tolist()
    return timesteps


@torch.no_grad()
def a1111_ddim(model, x, timesteps, extra_args=None, callback=None, disable=None, eta=0.0, cfgpp=False):
    """A1111's DDIM (modules/sd_samplers_timesteps_impl.py, 1.10), written from its equations:
    alphas = ac[t], alphas_prev = ac[[t0] + t[:-1]] (float64 on CPU), n - 1 model calls from the
    last timestep down; every per-step constant becomes a float32 tensor of shape [B, 1, 1, 1];
    pred_x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t); x = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev - s^2) d
    + s * randn_like(x) (drawn even when s = 0), with d = e.
    cfgpp (A1111's DDIM CFG++, ddim_cfgpp): model.cond_scale_miltiplier = 1 / 12.5 and
    model.need_last_noise_uncond = True on the CFG denoiser, so e = u + (c - u) * (cond_scale / 12.5)
    feeds pred_x0 while the direction d is the denoiser's unconditional eps of the same call
    (model.last_noise_uncond)."""
    ac = model.inner_model.inner_model.alphas_cumprod
    a_all = ac[timesteps]
    a_prev_all = ac[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].to(torch.float64)
    sqrt_one_minus_all = torch.sqrt(1 - a_all)
    sig_all = eta * np.sqrt((1 - a_prev_all.cpu().numpy()) / (1 - a_all.cpu()) * (1 - a_all.cpu() / a_prev_all.cpu().numpy()))
    if cfgpp:
        model.cond_scale_miltiplier = CFGPP_MULTIPLIER
        model.need_last_noise_uncond = True
    extra = {} if extra_args is None else extra_args
    ones_b = x.new_ones((x.shape[0]))
    ones_x = x.new_ones((x.shape[0], 1, 1, 1))
    for i in range(len(timesteps) - 1):
        k = len(timesteps) - 1 - i
        eps = model(x, timesteps[k].item() * ones_b, **extra)
        eps_uncond = model.last_noise_uncond if cfgpp else None
        a_t = a_all[k].item() * ones_x
        a_prev = a_prev_all[k].item() * ones_x
        sig = sig_all[k].item() * ones_x
        sqrt_one_minus = sqrt_one_minus_all[k].item() * ones_x
        x0 = (x - sqrt_one_minus * eps) / a_t.sqrt()
        direction = (1. - a_prev - sig ** 2).sqrt() * (eps_uncond if cfgpp else eps)
        fresh = sig * KS.torch.randn_like(x)
        x = a_prev.sqrt() * x0 + direction + fresh
        if callback is not None:
            info = {'x': x, 'i': i, 'index': k, 't': timesteps[k].item(), 'a_t': a_t,
                    'a_prev': a_prev, 'sigma_t': sig, 'sqrt_one_minus_at': sqrt_one_minus}
            if cfgpp:
                info.update(eps=eps, eps_uncond=eps_uncond)
            callback(info)
    return x


CFGPP_MULTIPLIER = 1 / 12.5   # ddim_cfgpp: model.cond_scale_miltiplier


def a1111_ddim_cfgpp(model, x, timesteps, extra_args=None, callback=None, disable=None, eta=0.0):
    """A1111's DDIM CFG++: a1111_ddim with cfgpp."""
    return a1111_ddim(model, x, timesteps, extra_args=extra_args, callback=callback, disable=disable, eta=eta, cfgpp=True)


@torch.no_grad()
def a1111_plms(model, x, timesteps, extra_args=None, callback=None, disable=None):
    """A1111's PLMS (modules/sd_samplers_timesteps_impl.py plms, 1.10, the s_x = [B, 1, 1, 1] version),
    written from its equations (as make_sampler_fixtures.py's toy-model a1111_plms, here through the
    CFG denoiser): for index = len - 1 .. 1, e = model(x, t[index]); the first step a pseudo improved
    Euler (x' = the DDIM step with e, e' = (e + model(x', t[index - 1])) / 2: two calls), then
    Adams-Bashforth 2, 3, 4 over the last e's; x = sqrt(a_prev) (x - sqrt(1 - a_t) e') / sqrt(a_t)
    + sqrt(1 - a_prev) e'; alphas_prev float64 as .item() scalars. No noise, no eta."""
    ac = model.inner_model.inner_model.alphas_cumprod
    a_all = ac[timesteps]
    a_prev_all = ac[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].to(torch.float64)
    sqrt_one_minus_all = torch.sqrt(1 - a_all)
    extra = {} if extra_args is None else extra_args
    ones_b = x.new_ones([x.shape[0]])
    ones_x = x.new_ones((x.shape[0], 1, 1, 1))
    history = []

    def step_from(x, e, k):
        a_t = a_all[k].item() * ones_x
        a_prev = a_prev_all[k].item() * ones_x
        sqrt_one_minus = sqrt_one_minus_all[k].item() * ones_x
        x0 = (x - sqrt_one_minus * e) / a_t.sqrt()
        return a_prev.sqrt() * x0 + (1. - a_prev).sqrt() * e, x0

    for i in range(len(timesteps) - 1):
        k = len(timesteps) - 1 - i
        t_now = timesteps[k].item() * ones_b
        t_after = timesteps[max(k - 1, 0)].item() * ones_b
        eps = model(x, t_now, **extra)
        used = len(history)              # 0: pseudo improved Euler; 1, 2, 3: Adams-Bashforth 2, 3, 4
        if not history:
            x_trial, _ = step_from(x, eps, k)
            eps_prime = (eps + model(x_trial, t_after, **extra)) / 2
        elif len(history) == 1:
            eps_prime = (3 * eps - history[-1]) / 2
        elif len(history) == 2:
            eps_prime = (23 * eps - 16 * history[-1] + 5 * history[-2]) / 12
        else:
            eps_prime = (55 * eps - 59 * history[-1] + 37 * history[-2] - 9 * history[-3]) / 24
        x_next, x0 = step_from(x, eps_prime, k)
        history.append(eps)
        if len(history) >= 4:
            history.pop(0)
        x = x_next
        if callback is not None:
            callback({'x': x, 'i': i, 'index': k, 't': timesteps[k].item(), 't_next': t_after[0].item(),
                      'old_eps': used, 'denoised': x0})
    return x


# A1111 1.10 samplers_timesteps: label -> (function name, the restated function, takes eta)
TIMESTEP_SAMPLERS = {
    "DDIM": ("ddim", a1111_ddim, True),
    "DDIM CFG++": ("ddim_cfgpp", a1111_ddim_cfgpp, True),
    "PLMS": ("plms", a1111_plms, False),
    "UniPC": ("unipc", fs.a1111_unipc, False),
}


def run_ddim(spec, unet, inner, conditioner, scramble=False):
    """txt2img with one of A1111's timestep samplers (DDIM, DDIM CFG++, PLMS):
    CompVisSampler.sample(p, x = p.rng.next(), ...), eta = opts.eta_ddim where the function takes eta."""
    assert spec["sampler"] in TIMESTEP_SAMPLERS and spec["subseed_strength"] == 0
    _, func, takes_eta = TIMESTEP_SAMPLERS[spec["sampler"]]
    seeds = [spec["seed"] + i for i in range(BATCH)]
    cond_key, c = conditioner.get(spec["prompt"], spec["clip_skip"])
    uncond_key, uc = conditioner.get(spec["negative_prompt"], spec["clip_skip"])
    cond = torch.cat([c] * BATCH)
    uncond = torch.cat([uc] * BATCH)

    rng = ImageRNG(spec["rng"], LATENT, seeds)
    rng.scramble = scramble
    noise = rng.next()
    timesteps = a1111_ddim_timesteps(STEPS)
    x = noise                                   # NOT scaled (CompVisSampler.sample)

    cfg = CFGDenoiserTimesteps(CompVisTimestepsDenoiser(inner))
    extra_args = {"cond": cond, "image_cond": None, "uncond": uncond, "cond_scale": CFG, "s_min_uncond": 0.0}
    steps = []

    def callback(d):
        if "unipc" in d:
            steps.append({"i": d["i"], "t": d["t"], "order": d["order"], "corrector": d["corrector"]})
            return
        if "a_t" not in d:               # PLMS
            steps.append({"index": d["index"], "t": int(d["t"]), "t_next": int(d["t_next"]), "old_eps": d["old_eps"]})
            return
        steps.append({"index": d["index"], "t": int(d["t"]), "a_t": f32(d["a_t"].reshape(-1)[0]),
                      "a_prev": f32(d["a_prev"].reshape(-1)[0]),
                      "sqrt_one_minus_at": f32(d["sqrt_one_minus_at"].reshape(-1)[0])})
        assert float(d["sigma_t"].abs().max()) == 0.0
        if "eps_uncond" in d:            # CFG++: the unconditional eps of this call, not the guided one
            assert not torch.equal(d["eps_uncond"], d["eps"])

    KS.torch = fs.TorchHijack(rng.next)
    try:
        with torch.no_grad():
            latents = func(cfg, x, timesteps, extra_args=extra_args, callback=callback, disable=True,
                           **({"eta": DDIM_ETA} if takes_eta else {}),
                           **({"options": spec["unipc"]} if "unipc" in spec else {}))
    finally:
        KS.torch = REAL_TORCH
    assert torch.equal(cfg.first["x"], noise)
    if spec["sampler"] == "UniPC":
        # len(timesteps) updates: one model call at t = 1 ((1 - 1/1000) * 1000), then one a corrector
        assert cfg.first["sigma"].tolist() == [999.0] * BATCH, cfg.first["sigma"]
        assert cfg.calls == len(timesteps) and len(steps) == len(timesteps)
    else:
        assert cfg.first["sigma"].tolist() == [float(timesteps[-1])] * BATCH
        # PLMS: one extra call in its first (pseudo improved Euler) step
        assert cfg.calls == len(timesteps) - 1 + (spec["sampler"] == "PLMS") and len(steps) == len(timesteps) - 1
    if spec["sampler"] == "DDIM CFG++":
        assert cfg.cond_scale_miltiplier == 1 / 12.5 and cfg.need_last_noise_uncond
    else:
        assert cfg.cond_scale_miltiplier == 1.0 and not cfg.need_last_noise_uncond
    return {"seeds": seeds, "cond_key": cond_key, "uncond_key": uncond_key, "noise": noise,
            "timesteps": timesteps, "latents": latents, "cfg": cfg, "rng": rng, "steps": steps}


def ddim_specs():
    base = {"prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": None,
            "subseed_strength": 0.0, "clip_skip": 1, "sampler": "DDIM", "schedule": "automatic"}
    return [dict(base, name="DDIM / automatic", rng="cpu"),
            dict(base, name="DDIM / automatic / nv", rng="nv")]


def ddim_run_record(spec, unet, inner, conditioner):
    r = run_ddim(spec, unet, inner, conditioner)
    unet.set_attn_processor(AttnProcessor2_0())
    r_sdpa = run_ddim(spec, unet, inner, conditioner)
    unet.set_attn_processor(AttnProcessor())
    assert torch.equal(r_sdpa["noise"], r["noise"])
    r2 = run_ddim(spec, unet, inner, conditioner)
    assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
    # eta 0: the per-step draws are multiplied by 0 and must not reach x
    r3 = run_ddim(spec, unet, inner, conditioner, scramble=True)
    assert torch.equal(r3["latents"], r["latents"]), spec["name"]
    rng = r["rng"]
    assert rng.next_calls == len(r["timesteps"]) - 1
    table = conditioner.table
    return {
        "name": spec["name"],
        "settings": {
            "prompt": spec["prompt"], "negative_prompt": spec["negative_prompt"],
            "seeds": r["seeds"], "subseeds": None,
            "subseed": spec["subseed"], "subseed_strength": spec["subseed_strength"],
            "sampler": spec["sampler"], "function": "ddim", "schedule": spec["schedule"],
            "steps": STEPS, "cfg_scale": CFG, "rng": spec["rng"], "clip_skip": spec["clip_skip"],
            "width": LATENT[2] * VAE_SCALE, "height": LATENT[1] * VAE_SCALE, "batch_size": BATCH,
            "sampler_kwargs": {"eta": DDIM_ETA},
            "discard_next_to_last_sigma": False,
            "a1111_default_schedule": True,
        },
        "cond_key": r["cond_key"], "uncond_key": r["uncond_key"],
        "cond_ids": [table[r["cond_key"]]["ids"]] * BATCH,
        "uncond_ids": [table[r["uncond_key"]]["ids"]] * BATCH,
        "initial_noise": enc(r["noise"]),
        "sigmas": [],
        "timesteps": [int(v) for v in r["timesteps"].tolist()],
        "x0_scale": "none",
        "ddim_steps": r["steps"],
        "denoiser_calls": r["cfg"].calls,
        "unet_calls_batch": 2 * BATCH,
        "first_denoised": enc(r["cfg"].first["denoised"]),
        "rng_next_calls": rng.next_calls,
        "rng_draws_used": False,
        "latents": enc(r["latents"]),
        "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
    }


# --- textual-inversion runs ----------------------------------------------------------

EMBEDDINGS_DIRS = ["Tests/PromptingTests/Fixtures/embeddings", "Tests/PromptingTests/Fixtures/png-embeddings"]
IMAGE_EXTS = (".PNG", ".WEBP", ".JXL", ".AVIF")
# (name, prompt, negative prompt, the embeddings expected in cond / uncond, in order)
EMBEDDING_RUNS = [
    ("Euler a / automatic / TI one (.pt)", "a redshape on a table", "", ["redshape"], []),
    ("Euler a / automatic / TI two (.bin, .safetensors)", "glow and texture-mix", "", ["glow", "texture-mix"], []),
    ("Euler a / automatic / TI three (.png, .pt, .pt)", "pngtext, redshape and bluestyle", "",
     ["pngtext", "redshape", "bluestyle"], []),
    ("Euler a / automatic / TI negative", "a cat", "bluestyle", [], ["bluestyle"]),
]
# the run whose initial noise, sigmas and settings (but prompts) the TI runs share
TI_SAME_AS = "Euler a / automatic"


class EmbeddingDatabase(fs.EmbeddingDatabase):
    """fixture_support's EmbeddingDatabase plus A1111's image branch of load_from_file
    (fixture_support.a1111_outcome: '.preview' stems skipped, text chunk before
    pixels, name = the data's 'name'); the JSON's TORCHTENSOR lists become a float64 tensor
    (A1111's EmbeddingDecoder: torch.from_numpy(np.array(...))), then create_embedding_from_data."""

    def load_from_file(self, path, filename, rel):
        if os.path.splitext(filename)[1].upper() not in IMAGE_EXTS:
            return super().load_from_file(path, filename, rel)
        with open(path, "rb") as f:
            png = f.read()
        got, how = fs.a1111_outcome(filename, png)
        if got is None:
            self.report[rel] = {"outcome": "ignored", "reason": how}
            return
        data = {"string_to_param": {"*": torch.tensor(got["vectors"], dtype=torch.float64)},
                "step": got["step"], "sd_checkpoint": got["sd_checkpoint"],
                "sd_checkpoint_name": got["sd_checkpoint_name"]}
        e = fs.create_embedding_from_data(data, got["name"], filename=filename, filepath=path)
        assert e.shape == self.expected_shape, filename
        self.register_embedding(e)
        self.report[rel] = {"outcome": "loaded", "name": e.name, "read_from": how}


class EmbeddingConditioner:
    """A1111's conditioning with the embeddings of EMBEDDINGS_DIRS loaded (clip_skip 1):
    fixture_support.tokenize_line (placeholder id 0, fixes) and encode_a1111 (the
    text model with EmbeddingsWithFixes: vectors replace the token-embedding rows at
    offset + 1 ...), checked bit for bit against encode_by_hand."""

    def __init__(self, tok, te):
        self.tok, self.te = tok, te
        width = te.text_model.embeddings.token_embedding.weight.shape[1]
        self.db = EmbeddingDatabase(tok, width)
        loaded = 0
        for d in EMBEDDINGS_DIRS:           # embedding_dirs in order (each load re-sorts by name.lower())
            self.db.report = {}
            self.db.load_from_dir(os.path.join(ROOT, *d.split("/")))
            loaded += sum(1 for r in self.db.report.values() if r["outcome"] == "loaded")
        assert loaded == len(self.db.word_embeddings), "an embedding name occurs twice"
        self.comma = tok.get_vocab()[",</w>"]
        self.hijack = fs.Hijack()

    def get(self, text):
        parsed, chunks, _ = fs.tokenize_line(text, self.tok, self.db, self.comma)
        assert len(chunks) == 1 and all(w == 1.0 for _, w in parsed), text
        emb_module = self.te.text_model.embeddings
        plain = emb_module.token_embedding
        emb_module.token_embedding = fs.EmbeddingsWithFixes(plain, self.hijack)
        try:
            z = fs.encode_a1111(self.te, self.hijack, chunks)
        finally:
            emb_module.token_embedding = plain
        assert torch.equal(z, fs.encode_by_hand(self.te, plain, chunks)), text
        if not chunks[0].fixes:             # no embedding: the plain path of Conditioner
            with torch.no_grad():
                z_plain = self.te(input_ids=torch.asarray([a1111_chunk_ids(self.tok, text)])).last_hidden_state
            assert chunks[0].tokens == a1111_chunk_ids(self.tok, text) and torch.equal(z, z_plain), text
        return chunks[0], z


def check_embedding_vectors(db):
    """The loaded vectors are the fixtures' (embedding_conditioning.json, png-embeddings/expected.json)."""
    with open(os.path.join(ROOT, "Tests", "PromptingTests", "Fixtures", "embedding_conditioning.json")) as f:
        ec = json.load(f)
    with open(os.path.join(ROOT, "Tests", "PromptingTests", "Fixtures", "png-embeddings", "expected.json")) as f:
        pe = json.load(f)
    want = {r["name"]: r["vec"]["data"] for r in ec["files"] if r["outcome"] == "loaded"}
    want.update({f["embedding"]["name"]: [v for row in f["embedding"]["vectors"] for v in row]
                 for f in pe["files"].values() if f["loaded"]})
    assert sorted(want) == sorted(db.word_embeddings), (sorted(want), list(db.word_embeddings))
    for name, e in db.word_embeddings.items():
        assert e.vec.dtype == torch.float32 and e.vec.flatten().tolist() == want[name], name
    return {p["prompt"]: p for p in ec["prompts"]}


def embedding_run_records(unet, model_wrap, conditioner, te, same_as):
    ec = EmbeddingConditioner(conditioner.tok, te)
    ec_prompts = check_embedding_vectors(ec.db)
    records = []
    for name, prompt, negative, cond_names, uncond_names in EMBEDDING_RUNS:
        spec = {"name": name, "prompt": prompt, "negative_prompt": negative, "seed": SEED, "subseed": None,
                "subseed_strength": 0.0, "rng": "cpu", "clip_skip": 1, "sampler": "Euler a",
                "schedule": "automatic"}
        (cc, c), (uc_chunk, uc) = ec.get(prompt), ec.get(negative)
        assert [e.name for _, e in cc.fixes] == cond_names and [e.name for _, e in uc_chunk.fixes] == uncond_names
        for chunk, z in ((cc, c), (uc_chunk, uc)):
            if chunk.fixes:
                assert all(chunk.tokens[o + 1: o + 1 + e.vectors] == [fs.PLACEHOLDER] * e.vectors
                           for o, e in chunk.fixes)
        if prompt in ec_prompts:            # the same prompt in embedding_conditioning.json
            # bit-equal where that file was made on this kind of CPU; elsewhere float32 matmul
            # rounding differs (AVX2 vs AVX-512 kernels), by about 1e-6 here
            want = torch.tensor(ec_prompts[prompt]["z"]["data"], dtype=torch.float32).reshape(c.shape)
            if enc(c) != ec_prompts[prompt]["z"]:
                err = (c - want).abs().max().item()
                print(f"  note: z of {prompt!r} differs from embedding_conditioning.json by {err:.2e} "
                      "(other CPU's rounding)")
                assert err <= 1e-5 * max(want.abs().max().item(), 1.0), prompt
        # keys into "conditionings" only where that z is there (it is: "" -> empty_skip1)
        keys = []
        for text, z in ((prompt, c), (negative, uc)):
            key = "empty_skip1" if text == "" else None
            if key is not None:
                assert torch.equal(conditioner.table[key]["z"], z)
            keys.append(key)
        conds = ((keys[0], c), (keys[1], uc))
        r = run_txt2img(spec, unet, model_wrap, conditioner, conds=conds)
        unet.set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_txt2img(spec, unet, model_wrap, conditioner, conds=conds)
        unet.set_attn_processor(AttnProcessor())
        r2 = run_txt2img(spec, unet, model_wrap, conditioner, conds=conds)
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
        # the embeddings must matter: without EmbeddingsWithFixes (rows of token 0) the result differs
        with torch.no_grad():
            c0, u0 = (te(input_ids=torch.asarray([ch.tokens])).last_hidden_state for ch in (cc, uc_chunk))
        r0 = run_txt2img(spec, unet, model_wrap, conditioner, conds=((None, c0), (None, u0)))
        assert not torch.equal(r0["latents"], r["latents"]), name
        # shared with the TI_SAME_AS run (its initial noise / sigmas are not repeated here)
        assert enc(r["noise"]) == same_as["initial_noise"] and [f32(v) for v in r["sigmas"]] == same_as["sigmas"]
        rng = r["rng"]
        funcname, opts = SAMPLER_OPTS[spec["sampler"]]
        fixes = lambda ch: [{"offset": o, "name": e.name, "vectors": int(e.vectors)} for o, e in ch.fixes]  # noqa: E731
        run = {
            "name": name,
            "settings": {
                "prompt": prompt, "negative_prompt": negative, "seeds": r["seeds"], "subseeds": None,
                "subseed": None, "subseed_strength": 0.0, "sampler": spec["sampler"], "function": funcname,
                "schedule": spec["schedule"], "steps": STEPS, "cfg_scale": CFG, "rng": spec["rng"],
                "clip_skip": 1, "width": LATENT[2] * VAE_SCALE, "height": LATENT[1] * VAE_SCALE,
                "batch_size": BATCH,
                "sampler_kwargs": {k: (v if math.isfinite(v) else "inf") for k, v in r["kwargs"].items()},
                "discard_next_to_last_sigma": r["discard"],
                "a1111_default_schedule": A1111_DEFAULT_SCHEDULE[spec["sampler"]] == spec["schedule"],
            },
            "embeddings_dirs": EMBEDDINGS_DIRS,
            "cond_key": keys[0], "uncond_key": keys[1],
            "cond_ids": [cc.tokens] * BATCH, "uncond_ids": [uc_chunk.tokens] * BATCH,
            "cond_fixes": fixes(cc), "uncond_fixes": fixes(uc_chunk),
            "initial_noise_as": TI_SAME_AS,
            "sigmas": [f32(s) for s in r["sigmas"]],
            "denoiser_calls": r["cfg"].calls,
            "unet_calls_batch": 2 * BATCH,
            "rng_next_calls": rng.next_calls,
            "rng_draws_used": bool(opts.get("ancestral")),
            "latents": enc(r["latents"]),
            "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
        }
        records.append(run)
        print(f"  {name:50s} fixes={[(f['offset'], f['name']) for f in run['cond_fixes']]} "
              f"/ {[(f['offset'], f['name']) for f in run['uncond_fixes']]} "
              f"|lat|max={r['latents'].abs().max().item():9.4f} "
              f"no-TI |lat diff|max={(r0['latents'] - r['latents']).abs().max().item():.3e} "
              f"sdpa_diff={run['sdpa_latents_max_abs_diff']:.2e}", flush=True)
    return records


# --- s_churn / s_tmin / s_tmax runs ---------------------------------------------------

# (name, A1111 sampler label, schedule, rng, A1111 options s_churn / s_tmin / s_tmax / s_noise, the run
# whose initial noise they share). s_tmax is the option's value: 0 means infinity (see a1111_p_values).
CHURN_RUNS = [
    ("euler_churn", "Euler", "automatic", "nv", {"s_churn": 1.5, "s_tmin": 0.5, "s_tmax": 10.0, "s_noise": 1.0},
     "Euler a / automatic / nv"),
    ("heun_churn", "Heun", "automatic", "cpu", {"s_churn": 0.8, "s_tmin": 0.0, "s_tmax": 0.0, "s_noise": 1.0},
     "Euler / automatic"),
    ("dpm2_churn", "DPM2", "karras", "nv", {"s_churn": 2.0, "s_tmin": 0.3, "s_tmax": 0.0, "s_noise": 0.9},
     "Euler a / automatic / nv"),
]


def a1111_p_values(options):
    """StableDiffusionProcessing.__post_init__ (1.10): s_churn, s_tmin, s_noise as set;
    s_tmax = opts.s_tmax or float('inf') (0 means infinity)."""
    return {"s_churn": options["s_churn"], "s_tmin": options["s_tmin"],
            "s_tmax": options["s_tmax"] or float("inf"), "s_noise": options["s_noise"]}


def in_churn_range(sigmas, i, p):
    return bool(p["s_tmin"] <= sigmas[i] <= p["s_tmax"])


def churn_gamma(sigmas, i, p):
    """k-diffusion's gamma for step i (Python float; sigmas[i] is a float32 tensor compared with the
    Python floats s_tmin / s_tmax)."""
    if in_churn_range(sigmas, i, p):
        return min(p["s_churn"] / (len(sigmas) - 1), 2 ** 0.5 - 1)
    return 0.


def check_draws_every_step():
    """sample_euler / sample_heun / sample_dpm_2 must draw eps = randn_like(x) * s_noise on every step,
    before `if gamma > 0` (k-diffusion ab527a9 = 0.0.16, A1111 1.10's pin; 0.1.1 has the same code).
    A version that draws only when gamma > 0 gives other results with the TorchHijack RNG."""
    import inspect
    for name in ("sample_euler", "sample_heun", "sample_dpm_2"):
        src = inspect.getsource(getattr(KS, name))
        draw = src.find("eps = torch.randn_like(x) * s_noise")
        gate = src.find("if gamma > 0:")
        assert 0 <= draw < gate, f"k_diffusion.sampling.{name} does not draw randn_like before `if gamma > 0`"


def churn_run_records(unet, model_wrap, conditioner, runs_so_far):
    check_draws_every_step()
    records = []
    for name, label, schedule, rng_kind, options, noise_as in CHURN_RUNS:
        spec = {"name": name, "prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": None,
                "subseed_strength": 0.0, "rng": rng_kind, "clip_skip": 1, "sampler": label,
                "schedule": schedule, "churn": options}
        funcname, opts = SAMPLER_OPTS[label]
        p = a1111_p_values(options)
        r = run_txt2img(spec, unet, model_wrap, conditioner)
        unet.set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_txt2img(spec, unet, model_wrap, conditioner)
        unet.set_attn_processor(AttnProcessor())
        r2 = run_txt2img(spec, unet, model_wrap, conditioner)
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
        sigmas, rng = r["sigmas"], r["rng"]
        assert r["kwargs"] == p, (r["kwargs"], p)
        steps = []
        for i in range(len(sigmas) - 1):
            gamma = churn_gamma(sigmas, i, p)
            seen = r["steps_seen"][i]
            assert seen["i"] == i and torch.equal(seen["sigma"], sigmas[i])
            assert torch.equal(seen["sigma_hat"], sigmas[i] * (gamma + 1)), (name, i)
            steps.append({"i": i, "sigma": f32(sigmas[i]), "in_range": in_churn_range(sigmas, i, p), "gamma": gamma,
                          "sigma_hat": f32(seen["sigma_hat"])})
        assert all(s["in_range"] == (s["gamma"] > 0) for s in steps)
        inside = [s["i"] for s in steps if s["in_range"]]
        outside = [s["i"] for s in steps if not s["in_range"]]
        # one randn_like per step, in range or not (call i + 1 belongs to step i)
        assert rng.next_calls == len(steps) == STEPS, (name, rng.next_calls)
        # the draws of in-range steps reach x ...
        r3 = run_txt2img(spec, unet, model_wrap, conditioner, scramble=True)
        assert not torch.equal(r3["latents"], r["latents"]), name
        for i in inside:
            r4 = run_txt2img(spec, unet, model_wrap, conditioner, scramble_calls=(i + 1,))
            assert not torch.equal(r4["latents"], r["latents"]), (name, i)
        # ... those of the gated steps do not
        if outside:
            r5 = run_txt2img(spec, unet, model_wrap, conditioner, scramble_calls=tuple(i + 1 for i in outside))
            assert torch.equal(r5["latents"], r["latents"]), name
        same_as = next(run for run in runs_so_far if run["name"] == noise_as)
        assert same_as["settings"]["seeds"] == r["seeds"] and same_as["settings"]["rng"] == rng_kind
        assert enc(r["noise"]) == same_as["initial_noise"], name
        run = light_run_record(
            spec, r, r_sdpa, conditioner, noise_as, function=funcname,
            sampler_kwargs={k: (v if math.isfinite(v) else "inf") for k, v in r["kwargs"].items()},
            discard=r["discard"], default_schedule=A1111_DEFAULT_SCHEDULE[label] == schedule,
            settings_extra={k: options[k] for k in ("s_churn", "s_tmin", "s_tmax", "s_noise")},
            sigmas=[f32(s) for s in sigmas], middle={"churn_steps": steps},
            calls=r["cfg"].calls, next_calls=rng.next_calls, draws_used=True)
        records.append(run)
        print(f"  {name:34s} calls={run['denoiser_calls']:2d} next={rng.next_calls:2d} "
              f"sigmas={[round(v, 4) for v in run['sigmas']]} in range: steps {inside}, gated: {outside} "
              f"|lat|max={r['latents'].abs().max().item():9.4f} sdpa_diff={run['sdpa_latents_max_abs_diff']:.2e}",
              flush=True)
    return records


# --- light runs: the newer samplers and schedule types ------------------------------------

# (name, A1111 sampler label, schedule, rng, the run whose initial noise they share: same seeds
# and rng). Like the churn runs they store no initial_noise, first_denoised or debug fields.
SCHEDULE_RUN_KINDS = ["polyexponential", "sgm_uniform", "kl_optimal", "align_your_steps", "simple", "normal",
                      "ddim", "beta"]
LIGHT_RUNS = [
    ("DPM++ 2M SDE / exponential", "DPM++ 2M SDE", "exponential", "cpu", "Euler / automatic"),
    ("Euler / exponential", "Euler", "exponential", "cpu", "Euler / automatic"),
    ("DPM++ 2M / exponential", "DPM++ 2M", "exponential", "cpu", "Euler / automatic"),
    ("DPM++ 2M SDE Heun / exponential", "DPM++ 2M SDE Heun", "exponential", "cpu", "Euler / automatic"),
    ("DPM++ 3M SDE / exponential", "DPM++ 3M SDE", "exponential", "cpu", "Euler / automatic"),
    ("DPM++ 3M SDE / exponential / nv", "DPM++ 3M SDE", "exponential", "nv", "Euler a / automatic / nv"),
] + [(f"{label} / {kind}", label, kind, "cpu", "Euler / automatic")
     for label in ("Euler", "DPM++ 2M") for kind in SCHEDULE_RUN_KINDS]


def light_run_record(spec, r, r_sdpa, conditioner, noise_as, *, function, sampler_kwargs, discard, default_schedule,
                     sigmas, calls, next_calls, draws_used, settings_extra=None, middle=None):
    """The record of a light run (no initial_noise, first_denoised or debug fields): the settings
    as A1111 had them (plus settings_extra), token ids, the run whose initial noise it shares,
    sigmas, the fields of `middle` (churn steps, timesteps), counts, and the final latents."""
    table = conditioner.table
    return {
        "name": spec["name"],
        "settings": {
            "prompt": spec["prompt"], "negative_prompt": spec["negative_prompt"],
            "seeds": r["seeds"], "subseeds": None, "subseed": None, "subseed_strength": 0.0,
            "sampler": spec["sampler"], "function": function, "schedule": spec["schedule"],
            "steps": STEPS, "cfg_scale": CFG, "rng": spec["rng"], "clip_skip": 1,
            "width": LATENT[2] * VAE_SCALE, "height": LATENT[1] * VAE_SCALE, "batch_size": BATCH,
            "sampler_kwargs": sampler_kwargs,
            "discard_next_to_last_sigma": discard,
            "a1111_default_schedule": default_schedule,
            **(settings_extra or {}),
        },
        "cond_key": r["cond_key"], "uncond_key": r["uncond_key"],
        "cond_ids": [table[r["cond_key"]]["ids"]] * BATCH,
        "uncond_ids": [table[r["uncond_key"]]["ids"]] * BATCH,
        "initial_noise_as": noise_as,
        "sigmas": sigmas,
        **(middle or {}),
        "denoiser_calls": calls,
        "unet_calls_batch": 2 * BATCH,
        "rng_next_calls": next_calls,
        "rng_draws_used": draws_used,
        "latents": enc(r["latents"]),
        "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
    }


def settings_kwargs(kwargs):
    """sampler_kwargs as recorded: what k-diffusion got, infinity as "inf", no noise_sampler."""
    return {k: ("inf" if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in kwargs.items() if k not in ("noise_sampler", "callback")}


def light_run_records(unet, model_wrap, conditioner, runs_so_far):
    records = []
    for name, label, schedule, rng_kind, noise_as in LIGHT_RUNS:
        spec = {"name": name, "prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": None,
                "subseed_strength": 0.0, "rng": rng_kind, "clip_skip": 1, "sampler": label, "schedule": schedule}
        funcname, opts = SAMPLER_OPTS[label]
        assert not opts.get("ancestral")
        r = run_txt2img(spec, unet, model_wrap, conditioner)
        unet.set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_txt2img(spec, unet, model_wrap, conditioner)
        unet.set_attn_processor(AttnProcessor())
        r2 = run_txt2img(spec, unet, model_wrap, conditioner)
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
        # no ImageRNG draw reaches x (Euler draws eps every step, times gamma = 0; the others draw none)
        r3 = run_txt2img(spec, unet, model_wrap, conditioner, scramble=True)
        assert torch.equal(r3["latents"], r["latents"]), name
        sigmas, rng = r["sigmas"], r["rng"]
        assert bool(torch.isfinite(r["latents"]).all()), name
        assert torch.equal(sigmas, get_sigmas(model_wrap, schedule, STEPS, r["discard"]))
        if opts.get("brownian_noise"):
            assert r["sde_noise"] and rng.next_calls == 0, name
            # the Brownian tree's normals reach x; for the cpu source A1111's _randn replacement
            # equals torchsde's own _randn, for nv it does not
            r4 = run_txt2img(spec, unet, model_wrap, conditioner, brownian_randn=TORCHSDE_RANDN)
            assert torch.equal(r4["latents"], r["latents"]) == (rng_kind == "cpu"), name
            r5 = run_txt2img(spec, unet, model_wrap, conditioner, brownian_randn=a1111_torchsde_randn(
                "cpu" if rng_kind == "nv" else "nv"))
            assert not torch.equal(r5["latents"], r["latents"]), name
        same_as = next(run for run in runs_so_far if run["name"] == noise_as)
        assert same_as["settings"]["seeds"] == r["seeds"] and same_as["settings"]["rng"] == rng_kind
        assert enc(r["noise"]) == same_as["initial_noise"], name
        run = light_run_record(
            spec, r, r_sdpa, conditioner, noise_as, function=funcname, sampler_kwargs=settings_kwargs(r["kwargs"]),
            discard=r["discard"], default_schedule=A1111_DEFAULT_SCHEDULE[label] == schedule,
            sigmas=[f32(v) for v in sigmas], calls=r["cfg"].calls, next_calls=rng.next_calls, draws_used=False)
        records.append(run)
        print(f"  {name:34s} calls={run['denoiser_calls']:2d} next={rng.next_calls:2d} sde={len(r['sde_noise']):2d} "
              f"sigmas={[round(v, 4) for v in run['sigmas']]} |lat|max={r['latents'].abs().max().item():9.4f} "
              f"sdpa_diff={run['sdpa_latents_max_abs_diff']:.2e}", flush=True)
    return records


# --- light timestep-sampler runs: PLMS and DDIM CFG++ ---------------------------------------

# (name, A1111 sampler label, rng, the run whose initial noise they share: same seeds and rng). Light
# like the runs of 6d (no initial_noise, first_denoised or debug fields); appended after them.
TIMESTEP_RUNS = [
    ("PLMS / automatic", "PLMS", "cpu", "DDIM / automatic"),
    ("DDIM CFG++ / automatic", "DDIM CFG++", "cpu", "DDIM / automatic"),
    ("UniPC / automatic", "UniPC", "cpu", "DDIM / automatic"),
]
# UniPC runs with A1111's uni_pc_* options other than its defaults (name -> options)
UNIPC_OPTIONS = {"UniPC / automatic / bh2 logSNR order 2": {"variant": "bh2", "skip_type": "logSNR", "order": 2},
                 "UniPC / automatic / vary_coeff time_quadratic": {"variant": "vary_coeff", "skip_type": "time_quadratic",
                                                                   "lower_order_final": False}}
TIMESTEP_RUNS += [(name, "UniPC", "cpu", "DDIM / automatic") for name in UNIPC_OPTIONS]


def timestep_run_records(unet, inner, conditioner, runs_so_far):
    records = []
    for name, label, rng_kind, noise_as in TIMESTEP_RUNS:
        spec = {"name": name, "prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": None,
                "subseed_strength": 0.0, "clip_skip": 1, "sampler": label, "schedule": "automatic", "rng": rng_kind}
        funcname, _, takes_eta = TIMESTEP_SAMPLERS[label]
        if name in UNIPC_OPTIONS:
            spec["unipc"] = UNIPC_OPTIONS[name]
        r = run_ddim(spec, unet, inner, conditioner)
        unet.set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_ddim(spec, unet, inner, conditioner)
        unet.set_attn_processor(AttnProcessor())
        assert torch.equal(r_sdpa["noise"], r["noise"])
        r2 = run_ddim(spec, unet, inner, conditioner)
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
        # no ImageRNG draw reaches x: PLMS draws none, DDIM CFG++ one per call times sigma_t = 0 (eta 0)
        r3 = run_ddim(spec, unet, inner, conditioner, scramble=True)
        assert torch.equal(r3["latents"], r["latents"]), name
        rng, cfg, timesteps = r["rng"], r["cfg"], r["timesteps"]
        assert bool(torch.isfinite(r["latents"]).all()), name
        if label == "UniPC":
            o = dict(fs.UNIPC_DEFAULTS, **spec.get("unipc", {}))
            n = len(timesteps)
            orders = list(range(1, o["order"])) + [min(o["order"], n + 1 - st) if o["lower_order_final"] else o["order"]
                                                   for st in range(o["order"], n + 1)]
            assert rng.next_calls == 0 and [st["order"] for st in r["steps"]] == orders, (name, r["steps"])
            assert [st["corrector"] for st in r["steps"]] == [True] * (n - 1) + [False], name
        elif label == "PLMS":
            assert rng.next_calls == 0 and cfg.calls == len(timesteps), name
            assert [st["old_eps"] for st in r["steps"]] == [0, 1, 2, 3, 3, 3, 3], r["steps"]
            assert [st["t_next"] for st in r["steps"]] == [int(v) for v in timesteps.tolist()][-2::-1], r["steps"]
        else:
            assert rng.next_calls == cfg.calls == len(timesteps) - 1, name
            # the guided eps of the first call uses cond_scale / 12.5 (u + (c - u) * 0.56)
            x_out = cfg.first["x_out"]
            u, c = x_out[-BATCH:], x_out[:BATCH]
            assert torch.allclose(cfg.first["denoised"], u + (c - u) * (CFG / 12.5), rtol=0, atol=1e-5), name
            assert not torch.allclose(cfg.first["denoised"], u + (c - u) * CFG), name
        same_as = next(run for run in runs_so_far if run["name"] == noise_as)
        assert same_as["settings"]["seeds"] == r["seeds"] and same_as["settings"]["rng"] == rng_kind
        assert enc(r["noise"]) == same_as["initial_noise"], name
        assert same_as["timesteps"] == [int(v) for v in timesteps.tolist()], name
        assert enc(r["latents"]) != same_as["latents"], name
        run = light_run_record(
            spec, r, r_sdpa, conditioner, noise_as, function=funcname, sampler_kwargs={"eta": DDIM_ETA} if takes_eta else {},
            discard=False, default_schedule=True,
            settings_extra={"uni_pc_" + k: v for k, v in dict(fs.UNIPC_DEFAULTS, **spec.get("unipc", {})).items()}
            if label == "UniPC" else None,
            sigmas=[], middle={"timesteps": [int(v) for v in timesteps.tolist()], "x0_scale": "none"},
            calls=cfg.calls, next_calls=rng.next_calls, draws_used=False)
        if label == "DDIM CFG++":
            run["cond_scale_multiplier"] = CFGPP_MULTIPLIER
        records.append(run)
        print(f"  {name:34s} calls={run['denoiser_calls']:2d} next={rng.next_calls:2d} "
              f"timesteps={run['timesteps']} |lat|max={r['latents'].abs().max().item():9.4f} "
              f"sdpa_diff={run['sdpa_latents_max_abs_diff']:.2e}", flush=True)
    return records


# --- LCM: k-diffusion style, its own denoiser and sigmas -----------------------------------

# (name, A1111 label, schedule, rng, the run whose initial noise it shares)
DRAWING_RUNS = [("LCM / automatic", "LCM", "automatic", "cpu", "Euler / automatic"),
                ("LCM / automatic / nv", "LCM", "automatic", "nv", "Euler a / automatic / nv"),
                ("DPM fast / automatic", "DPM fast", "automatic", "cpu", "Euler / automatic"),
                ("DPM adaptive / automatic", "DPM adaptive", "automatic", "cpu", "Euler / automatic"),
                ("Restart / karras", "Restart", "karras", "cpu", "Euler / automatic")]


def drawing_run_records(unet, inner, model_wrap, conditioner, runs_so_far):
    """Light runs of samplers whose step noise is the image RNG's (randn_like) and is used: A1111's
    LCM (sd_samplers_lcm.py: LCMSampler = KDiffusionSampler with CFGDenoiserLCM, whose inner model
    is LCMCompVisDenoiser: sigmas from that denoiser, "Automatic" = Uniform = its get_sigmas;
    sample_lcm), DPM fast and DPM adaptive (the model's sigma range, eta 1) and Restart."""
    lcm_wrap = fs.a1111_lcm_denoiser(inner)
    assert lcm_wrap.sigmas.shape[0] == fs.LCM_ORIGINAL_TIMESTEPS
    records = []
    for name, label, schedule, rng_kind, noise_as in DRAWING_RUNS:
        spec = {"name": name, "prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": None,
                "subseed_strength": 0.0, "rng": rng_kind, "clip_skip": 1, "sampler": label, "schedule": schedule}
        wrap = lcm_wrap if label == "LCM" else model_wrap
        funcname, _ = SAMPLER_OPTS[label]
        r = run_txt2img(spec, unet, wrap, conditioner)
        unet.set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_txt2img(spec, unet, wrap, conditioner)
        unet.set_attn_processor(AttnProcessor())
        r2 = run_txt2img(spec, unet, wrap, conditioner)
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"
        sigmas, rng = r["sigmas"], r["rng"]
        # the image RNG's draws reach x (LCM: one per step but the last; Restart at 8 steps: none)
        r3 = run_txt2img(spec, unet, wrap, conditioner, scramble=True)
        assert torch.equal(r3["latents"], r["latents"]) == (label == "Restart"), name
        if label == "LCM":
            assert rng.next_calls == STEPS - 1 and r["cfg"].calls == STEPS, (rng.next_calls, r["cfg"].calls)
        # every model call at one of LCM's 50 timesteps
        assert bool(torch.isfinite(r["latents"]).all()), name
        same_as = next(run for run in runs_so_far if run["name"] == noise_as)
        assert same_as["settings"]["seeds"] == r["seeds"] and same_as["settings"]["rng"] == rng_kind
        assert enc(r["noise"]) == same_as["initial_noise"], name
        records.append(light_run_record(
            spec, r, r_sdpa, conditioner, noise_as, function=funcname, sampler_kwargs=settings_kwargs(r["kwargs"]),
            discard=False, default_schedule=A1111_DEFAULT_SCHEDULE[label] == schedule,
            sigmas=[f32(v) for v in sigmas], calls=r["cfg"].calls, next_calls=rng.next_calls, draws_used=label != "Restart"))
        print(f"  {name:34s} calls={r['cfg'].calls:2d} next={rng.next_calls:2d} "
              f"sigmas={[round(float(v), 4) for v in sigmas]} |lat|max={r['latents'].abs().max().item():9.4f}", flush=True)
    return records


# --- main ----------------------------------------------------------------------------

def run_specs():
    base = {"prompt": PROMPT, "negative_prompt": "", "seed": SEED, "subseed": None,
            "subseed_strength": 0.0, "rng": "cpu", "clip_skip": 1}
    specs = []
    for label in GRID_SAMPLERS:
        for schedule in ("automatic", "karras"):
            specs.append(dict(base, name=f"{label} / {schedule}", sampler=label, schedule=schedule))
    specs.append(dict(base, name="Euler a / automatic / nv", sampler="Euler a", schedule="automatic", rng="nv"))
    specs.append(dict(base, name="DPM++ 2M / karras / nv", sampler="DPM++ 2M", schedule="karras", rng="nv"))
    specs.append(dict(base, name="DPM++ 2M / karras / negative", sampler="DPM++ 2M", schedule="karras",
                      negative_prompt=NEGATIVE))
    specs.append(dict(base, name="Euler a / automatic / subseed", sampler="Euler a", schedule="automatic",
                      subseed=SUBSEED, subseed_strength=SUBSEED_STRENGTH))
    specs.append(dict(base, name="DPM++ 2M / karras / clip_skip 2", sampler="DPM++ 2M", schedule="karras",
                      clip_skip=2))
    # A1111's "ENSD" (eta noise seed delta: the step noise from seed + delta) and "Seed resize
    # from" (the seed's noise made at another size and centred: 24x16 and 8x32 pixels here, wider
    # or taller than the 16x16 image, so both the crop and the paste are exercised).
    specs.append(dict(base, name="Euler a / automatic / ensd", sampler="Euler a", schedule="automatic",
                      eta_noise_seed_delta=31337))
    specs.append(dict(base, name="DPM++ 2S a / karras / nv / ensd", sampler="DPM++ 2S a", schedule="karras", rng="nv",
                      eta_noise_seed_delta=31337))
    specs.append(dict(base, name="Euler a / automatic / seed resize", sampler="Euler a", schedule="automatic",
                      seed_resize_from_w=24, seed_resize_from_h=16, subseed=SUBSEED, subseed_strength=SUBSEED_STRENGTH))
    specs.append(dict(base, name="Euler / automatic / nv / seed resize", sampler="Euler", schedule="automatic", rng="nv",
                      seed_resize_from_w=8, seed_resize_from_h=32))
    return specs


DECODE_RUN = "Euler a / karras"
# Runs that also store first_x_out and (ancestral samplers) every rng_draws
# value; the other runs store only counts, to keep the file near 2 MB.
FULL_DETAIL_RUNS = {"Euler / automatic", "Euler a / karras", "Euler a / automatic / nv",
                    "Euler a / automatic / subseed", "DPM++ 2M / karras / negative",
                    "DPM++ 2M / karras / clip_skip 2"}


def append_to_existing(doc):
    """--append: the file as it is, plus the runs it lacks (appended in this script's order).
    Everything already in it stays byte for byte (the file round-trips through json), so runs
    can be added on a machine whose float32 rounding differs from the one that made the file;
    the recomputed runs are only compared (printed). Versions, model, notes and the
    conditionings' token ids must match."""
    with open(OUT) as f:
        old_text = f.read()
    old = json.loads(old_text)
    assert json.dumps(old, separators=(",", ":"), allow_nan=False) + "\n" == old_text, "no json round trip"
    for key in ("versions", "model", "a1111", "alphas_cumprod"):
        assert old[key] == doc[key], f"{key} differs from the existing file: regenerate it in full"
    for key in ("sigma_min", "sigma_max"):          # float32 sqrt / division: rounding may differ by an ulp
        assert abs(old[key] - doc[key]) <= 1e-6 * old[key], (key, old[key], doc[key])
        print(f"  existing {key} {old[key]!r}, recomputed {doc[key]!r}")
    assert sorted(old["conditionings"]) == sorted(doc["conditionings"])
    for key, c in old["conditionings"].items():
        want = doc["conditionings"][key]
        assert (c["prompt"], c["clip_skip"], c["ids"]) == (want["prompt"], want["clip_skip"], want["ids"]), key
        print(f"  existing conditioning {key:14s} max |z - recomputed| = "
              f"{max(abs(a - b) for a, b in zip(c['z']['data'], want['z']['data'])):.2e}")
    names = [r["name"] for r in doc["runs"]]
    old_names = [r["name"] for r in old["runs"]]
    assert set(old_names) <= set(names), "the existing file has runs this script does not make"
    recomputed = {r["name"]: r for r in doc["runs"]}
    for o in old["runs"]:
        a, b = o["latents"]["data"], recomputed[o["name"]]["latents"]["data"]
        print(f"  existing run {o['name']:50s} max |latents - recomputed| / max |latents| = "
              f"{max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a):.2e}")
    old["generator"] = doc["generator"]
    added = [r for r in doc["runs"] if r["name"] not in set(old_names)]
    old["runs"] += added
    print(f"  kept {len(old_names)} runs, appended {len(added)}: {[r['name'] for r in added]}")
    return old


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--append", action="store_true",
                    help="keep the existing file's contents and append only the runs it lacks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    _check_nv()

    # sanity of torch's scalar handling the slerp note relies on
    om = torch.tensor([0.3, 1.1, 2.9], dtype=torch.float32)
    assert torch.equal(om * (1.0 - 0.3), om * torch.tensor(1.0 - 0.3, dtype=torch.float32))

    with open(os.path.join(MODEL, "tiny_sd_info.json")) as f:
        info = json.load(f)
    assert info["vae_scale"] == VAE_SCALE
    for k, wf in info["weight_files"].items():
        assert sha256_file(os.path.join(MODEL, wf["path"])) == wf["sha256"], k

    te = CLIPTextModel.from_pretrained(MODEL, subfolder="text_encoder", dtype=torch.float32,
                                       attn_implementation="eager", local_files_only=True).eval()
    unet = UNet2DConditionModel.from_pretrained(MODEL, subfolder="unet", torch_dtype=torch.float32,
                                                local_files_only=True).eval()
    vae = AutoencoderKL.from_pretrained(MODEL, subfolder="vae", torch_dtype=torch.float32,
                                        local_files_only=True).eval()
    assert vae.config.scaling_factor == SCALE_FACTOR
    unet.set_attn_processor(AttnProcessor())
    vae.set_attn_processor(AttnProcessor())

    with tempfile.TemporaryDirectory() as d:
        tok = load_tokenizer(*build_tokenizer_files(VOCAB_GZ, d))
        # known ids (as in make_tokenizer_fixtures.py)
        assert tok("a photo of an astronaut riding a horse on mars", add_special_tokens=False)["input_ids"] == \
            [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496]

    ac = fs.make_alphas_cumprod()
    inner = LDMLike(unet, ac)
    model_wrap = K.external.CompVisDenoiser(inner, quantize=False)
    assert model_wrap.sigmas.dtype == torch.float32
    conditioner = Conditioner(tok, te)

    runs = []
    decoded = None
    for spec in run_specs():
        r = run_txt2img(spec, unet, model_wrap, conditioner)
        # the same run with diffusers' default SDPA attention (informational)
        unet.set_attn_processor(AttnProcessor2_0())
        r_sdpa = run_txt2img(spec, unet, model_wrap, conditioner)
        unet.set_attn_processor(AttnProcessor())
        assert torch.equal(r_sdpa["noise"], r["noise"]) and torch.equal(r_sdpa["sigmas"], r["sigmas"])
        # determinism
        r2 = run_txt2img(spec, unet, model_wrap, conditioner) if spec["name"] == DECODE_RUN else r
        assert torch.equal(r2["latents"], r["latents"]), "not deterministic"

        funcname, opts = SAMPLER_OPTS[spec["sampler"]]
        cond_ids = [conditioner.table[r["cond_key"]]["ids"]] * BATCH
        uncond_ids = [conditioner.table[r["uncond_key"]]["ids"]] * BATCH
        rng = r["rng"]
        ancestral = bool(opts.get("ancestral"))
        if not ancestral:
            # no draw may reach x: redo the run with every next() draw shifted by 1
            r3 = run_txt2img(spec, unet, model_wrap, conditioner, scramble=True)
            assert torch.equal(r3["latents"], r["latents"]), spec["name"]
        run = {
            "name": spec["name"],
            "settings": {
                "prompt": spec["prompt"], "negative_prompt": spec["negative_prompt"],
                "seeds": r["seeds"], "subseeds": r["subseeds"] if spec["subseed_strength"] != 0 else None,
                "subseed": spec["subseed"], "subseed_strength": spec["subseed_strength"],
                "sampler": spec["sampler"], "function": funcname, "schedule": spec["schedule"],
                "steps": STEPS, "cfg_scale": CFG, "rng": spec["rng"], "clip_skip": spec["clip_skip"],
                "width": LATENT[2] * VAE_SCALE, "height": LATENT[1] * VAE_SCALE, "batch_size": BATCH,
                "sampler_kwargs": {k: (v if math.isfinite(v) else "inf") for k, v in r["kwargs"].items()
                                   if k != "noise_sampler"},
                "discard_next_to_last_sigma": r["discard"],
                "a1111_default_schedule": A1111_DEFAULT_SCHEDULE[spec["sampler"]] == spec["schedule"],
                **{k: spec[k] for k in ("eta_noise_seed_delta", "seed_resize_from_w", "seed_resize_from_h") if k in spec},
            },
            "cond_key": r["cond_key"], "uncond_key": r["uncond_key"],
            "cond_ids": cond_ids, "uncond_ids": uncond_ids,
            "initial_noise": enc(r["noise"]),
            "sigmas": [f32(s) for s in r["sigmas"]],
            "denoiser_calls": r["cfg"].calls,
            "unet_calls_batch": 2 * BATCH,
            "first_denoised": enc(r["cfg"].first["denoised"]),
            "rng_next_calls": rng.next_calls,
            "rng_draws_used": ancestral,
            "latents": enc(r["latents"]),
            "sdpa_latents_max_abs_diff": float((r_sdpa["latents"] - r["latents"]).abs().max()),
        }
        if spec["name"] in FULL_DETAIL_RUNS:
            run["first_x_out"] = enc(r["cfg"].first["x_out"])
        if ancestral and spec["name"] in FULL_DETAIL_RUNS:
            run["rng_draws"] = [enc(v) for v in rng.draws]
        if r["sde_noise"]:
            run["sde_noise"] = [{"sigma": s["sigma"], "sigma_next": s["sigma_next"], "noise": enc(s["noise"])}
                                for s in r["sde_noise"]]
        if rng.detail is not None:
            run["subseed_detail"] = [{"seed_noise": enc(dd["seed_noise"]), "subseed_noise": enc(dd["subseed_noise"]),
                                      "dot_mean": dd["dot_mean"], "linear_fallback": dd["linear_fallback"]}
                                     for dd in rng.detail]
        if spec["name"] == DECODE_RUN:
            raw, img, img_round = fs.decode_a1111(vae, r["latents"], SCALE_FACTOR, "mul")
            raw_div, img_div, _ = fs.decode_a1111(vae, r["latents"], SCALE_FACTOR, "div")
            decoded = {
                "run": spec["name"],
                "z_scale": "z = (1. / 0.18215) * latents[i:i+1] (LDM decode_first_stage), per image",
                "vae_output": enc(raw),
                "image_uint8": {"shape": list(img.shape), "layout": "[image, y, x, RGB]",
                                "data": [int(v) for v in img.reshape(-1)]},
                "conversion": "x = clamp((vae_output + 1.0) / 2.0, 0, 1) (float32); v = 255. * moveaxis(x, 0, 2) "
                              "(float32); v.astype(uint8) (truncation)",
                "rounding_would_differ": int((img != img_round).sum()),
                "div_scale_would_differ": int((img != img_div).sum()),
                "div_scale_vae_output_max_abs_diff": float((raw_div - raw).abs().max()),
                "saturated_fraction": float(((img == 0) | (img == 255)).mean()),
            }
            run["decoded"] = decoded
        runs.append(run)
        print(f"  {spec['name']:34s} calls={run['denoiser_calls']:2d} next={rng.next_calls:2d} "
              f"sde={len(r['sde_noise']):2d} |lat|max={r['latents'].abs().max().item():9.4f} "
              f"sdpa_diff={run['sdpa_latents_max_abs_diff']:.2e}", flush=True)

    inner_ddim = LDMLike(unet, ac)
    for spec in ddim_specs():
        run = ddim_run_record(spec, unet, inner_ddim, conditioner)
        runs.append(run)
        print(f"  {spec['name']:34s} calls={run['denoiser_calls']:2d} next={run['rng_next_calls']:2d} "
              f"timesteps={run['timesteps']} |lat|max={max(abs(v) for v in run['latents']['data']):9.4f} "
              f"sdpa_diff={run['sdpa_latents_max_abs_diff']:.2e}", flush=True)

    same_as = next(r for r in runs if r["name"] == TI_SAME_AS)
    runs += embedding_run_records(unet, model_wrap, conditioner, te, same_as)
    runs += churn_run_records(unet, model_wrap, conditioner, runs)
    runs += light_run_records(unet, model_wrap, conditioner, runs)
    runs += timestep_run_records(unet, inner_ddim, conditioner, runs)
    runs += drawing_run_records(unet, inner, model_wrap, conditioner, runs)

    assert decoded is not None
    conds = {k: {"prompt": v["prompt"], "clip_skip": v["clip_skip"], "ids": v["ids"], "z": enc(v["z"])}
             for k, v in conditioner.table.items()}

    doc = {
        "generator": GENERATOR,
        "versions": {"torch": torch.__version__, "diffusers": version("diffusers"),
                     "transformers": version("transformers"), "k_diffusion": version("k-diffusion"),
                     "torchsde": version("torchsde"), "scipy": version("scipy"), "numpy": np.__version__},
        "model": {"path": "Tests/Fixtures/tiny-sd", "weight_files": info["weight_files"],
                  "vae_scale": VAE_SCALE, "latent_shape": [BATCH, *LATENT],
                  "image_shape": [BATCH, 3, LATENT[1] * VAE_SCALE, LATENT[2] * VAE_SCALE],
                  "scaling_factor": SCALE_FACTOR,
                  "attention": "UNet/VAE: diffusers AttnProcessor (explicit softmax); CLIP: eager"},
        "a1111": {
            "seeds": "all_seeds[i] = seed + (i if subseed_strength == 0 else 0); all_subseeds[i] = subseed + i "
                     "(with a variation seed every image has the SAME seed)",
            "tokens": "tokenizer(text, truncation=False, add_special_tokens=False).input_ids; chunk of 75, "
                      "[49406] + ids + [49407] * (75 - len) + [49407]; padding id = id_end 49407 (SD 1.x); "
                      "each distinct prompt encoded once as a batch of one",
            "clip_skip": "1: last_hidden_state; n > 1: text_model.final_layer_norm(hidden_states[-n])",
            "emphasis": "EmphasisOriginal: m = z.mean(); z = z * multipliers; z = z * (m / z.mean()); "
                        "with all multipliers 1.0 a bit-exact no-op (asserted)",
            "rng": "ImageRNG: generator per image seeded seed_i; first draw randn([4, h, w]) is the initial noise; "
                   "every k-diffusion torch.randn_like(x) call is rng.next() = stack of each image generator's "
                   "next randn([4, h, w]); subseed noise comes from a fresh generator seeded subseed_i "
                   "(the global rng for CPU), drawn BEFORE the seed noise but never from generator_i",
            "slerp": "slerp(strength, noise, subnoise), norms over dim 1 (H) of [C, H, W]; dot.mean() > 0.9995 "
                     "-> noise * val + subnoise * (1 - val) (swapped weights); else sin((1-val) w)/sin w * noise "
                     "+ sin(val w)/sin w * subnoise, w = acos(dot) per (channel, column)",
            "x0": "x = initial_noise * sigmas[0]",
            "cfg": "one UNet call per denoiser call: x_in = [x_0, x_1, x_0, x_1], sigma_in likewise, "
                   "cond_in = [cond, cond, uncond, uncond] (cond first); "
                   "denoised[i] = u_i + (c_i - u_i) * (1.0 * cfg_scale), u = x_out[-B:]",
            "denoiser": "CompVisDenoiser, quantize False: c_in = 1 / sqrt(sigma^2 + 1), t = sigma_to_t(sigma) "
                        "(fractional), out = x + eps * (-sigma)",
            "schedules": "automatic = CompVisDenoiser.get_sigmas(n) = A1111 1.10 scheduler 'Uniform' (and its "
                         "'Automatic' for Euler, Euler a, Heun, LMS); karras = get_sigmas_karras(n, model sigma_min, "
                         "model sigma_max, rho 7); a run's settings.a1111_default_schedule says whether A1111 1.10's "
                         "'Automatic' scheduler picks that schedule for the sampler",
            "dpm2": "DPM2 and DPM2 a: schedule for steps + 1, then drop the second-to-last sigma "
                    "(discard_next_to_last_sigma), for automatic and karras alike",
            "sde": "DPM++ SDE / DPM++ 2M SDE: BrownianTreeNoiseSampler(x0, sigmas[sigmas > 0].min(), sigmas.max(), "
                   "seed=[batch seeds]); values recorded per call in sde_noise",
            "decode": "per image: vae.decode((1. / 0.18215) * latent); stack; clamp((x + 1) / 2, 0, 1); "
                      "255. * moveaxis(x, 0, 2) in float32; astype(uint8) truncates",
            "defaults_assumed": "eta_ancestral 1, s_churn 0, s_tmin 0, s_tmax inf, s_noise 1, "
                                "eta_noise_seed_delta 0, s_min_uncond 0, skip_early_cond 0, batch_cond_uncond on, "
                                "enable_quantization off, sgm_noise_multiplier off, pad_cond_uncond off",
            "ddim": "DDIM runs (A1111 sd_samplers_timesteps CompVisSampler + sd_samplers_timesteps_impl.ddim, "
                    "eta = opts.eta_ddim = 0): timesteps = clip(range(0, 1000, 1000 // steps) + 1, 0, 999) "
                    "(scheduler ignored); x0 = initial_noise unscaled; alphas = ac[timesteps], alphas_prev = "
                    "ac[[0] + timesteps[:-1]] (float64, exact float32 values); for index = len - 1 .. 1 "
                    "(len - 1 calls): e = CFG(eps) with x_in = [x_0, x_1, x_0, x_1] raw (no c_in), t_in = "
                    "float(timesteps[index]), cond_in = [c, c, u, u], e = u + (c - u) * cfg; a_t, a_prev, "
                    "sqrt(1 - a_t) as float32 [B, 1, 1, 1]; pred_x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t); "
                    "x = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev - 0) e + 0 * rng.next(); one rng.next() per "
                    "call (unused); no final step: the result is at ac[1]",
            "textual_inversion": "runs with embeddings_dirs: every file of those folders loaded as A1111's "
                                 "EmbeddingDatabase does (see Tests/PromptingTests/Fixtures/embedding_conditioning.json "
                                 "and png-embeddings/expected.json); a matched name becomes placeholder ids 0 (one per "
                                 "vector) and its vectors replace the token-embedding rows offset+1 .. (cond_fixes / "
                                 "uncond_fixes: offset counted after BOS) before the position embeddings; the rest as above",
        },
        "alphas_cumprod": [float(v) for v in ac.tolist()],
        "sigma_min": model_wrap.sigmas[0].item(),
        "sigma_max": model_wrap.sigmas[-1].item(),
        "conditionings": conds,
        "runs": runs,
    }
    if args.append:
        doc = append_to_existing(doc)
        runs = doc["runs"]
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    if len(text) >= MAX_BYTES or os.environ.get("PIPELINE_SIZES"):
        for k, v in doc.items():
            print("  size", k, len(json.dumps(v, separators=(",", ":"))))
        for k in doc["runs"][0]:
            print("  run field", k, sum(len(json.dumps(r.get(k), separators=(",", ":"))) for r in doc["runs"]))
    assert len(text) < MAX_BYTES, len(text)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(text) + 1} bytes), {len(runs)} runs; "
          f"decoded: saturated {decoded['saturated_fraction']:.3f}, rounding differs in "
          f"{decoded['rounding_would_differ']} bytes, /0.18215 differs in {decoded['div_scale_would_differ']}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/samplers.json: k-diffusion reference runs
of sdshell's schedules and samplers around a TOY eps model, so no UNet is
needed and the tests can be exact up to float32 rounding.

Rerun (after scripts/setup_reference_env.sh; needs k-diffusion, torchsde,
scipy in .venv-ref):
    .venv-ref/bin/python Tests/Fixtures/generators/make_sampler_fixtures.py
k-diffusion is imported without torchvision by fixture_support.import_k_diffusion,
which also has make_alphas_cumprod and A1111_DEFAULT_SCHEDULE.

What is recorded
----------------
* "alphas_cumprod": SD's DDPM schedule as checkpoints carry it (float32):
      betas = linspace(0.00085**0.5, 0.012**0.5, 1000, float64) ** 2
      alphas_cumprod = cumprod(1 - betas) (float64) -> float32
* The REAL k_diffusion.external.CompVisDenoiser wraps a fake inner model whose
  apply_model(x, t, cond) is the toy eps (see TOY_EPS below and "toy_eps" in the
  JSON). A1111 wraps SD the same way (quantize=False, its default).
* "denoiser_checks": direct CompVisDenoiser calls, sigma_to_t / t_to_sigma
  values, to test the wrapper on its own.
* "schedules": automatic (model.get_sigmas(n)), karras, exponential, for 8
  steps (and 9, which A1111 uses for DPM2 / DPM2 a before dropping the
  penultimate sigma).
* "runs": every sampler at 8 steps with the automatic and the karras schedule
  (plus the exponential one for DPM++ 2M SDE, A1111's default for it).
  x0 = noise * sigmas[0]. All noise comes from ONE stream: a
  torch.Generator().manual_seed(1) drawing randn([1, 4, 4, 4]) over and over;
  "noise_stream" holds those draws, stream[0] is the initial noise of every
  run and each run's "noise_draws" names, in order, the stream entries the
  sampler consumed (indices 1, 2, ...), who asked ("noise_sampler" or
  "randn_like") and whether the value reached x ("used"). As in A1111
  (k_diffusion.sampling.torch is replaced by a hijack whose randn_like returns
  the image RNG's next draw), sample_euler / sample_heun / sample_dpm_2 draw a
  randn_like every step even with s_churn = 0 (the value is multiplied by
  gamma = 0 and never reaches x), and A1111's DDIM draws one per step even with
  eta = 0 (multiplied by sigma_t = 0).
  The ancestral and SDE samplers get noise_sampler = next draw from the same
  stream, so the runs are exact given the stream. "brownian" runs also record
  what A1111's BrownianTreeNoiseSampler(seed=[1]) returned for the SDE
  samplers (torchsde; reproducing those values needs torchsde's Brownian
  tree, so they are informational; the run is exact given "noise_values").
* "ddim": A1111's DDIM (modules/sd_samplers_timesteps_impl.py `ddim`, eta 0,
  timesteps from modules/sd_samplers_timesteps.py), re-implemented here.

All tensors are float32 [1, 4, 4, 4] (64 values, row-major); floats are the
exact float32 values as Python floats. Float64 appears only where the
reference code uses it (alphas_cumprod before the cast, LMS coefficients,
Python-float scalars such as sigma_min / sigma_max).
"""

import json
import math
import os
import sys

import warnings

import numpy as np
import torch

# torchsde warns that the float32 sigma range sits a rounding error outside the
# float64 tree interval (A1111 sees the same); harmless.
warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)

import fixture_support
from fixture_support import ROOT, A1111_DEFAULT_SCHEDULE, import_k_diffusion, make_alphas_cumprod  # noqa: E402

OUT_PATH = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "samplers.json")
GENERATOR = "Tests/Fixtures/generators/make_sampler_fixtures.py"

SHAPE = [1, 4, 4, 4]
STEPS = 8
NOISE_SEED = 1
STREAM_LEN = 40


K = import_k_diffusion()     # fixture_support: k-diffusion without torchvision
KS = K.sampling
REAL_TORCH = torch


# --- toy model ---------------------------------------------------------------

TOY = {"x_coef": 0.9, "tanh_coef": 0.1, "t_coef": 0.1}
TOY_EPS = (
    "eps = (x_coef * x + tanh_coef * tanh(x)) + ((t / 1000) * t_coef) * cond with the coefficients in "
    "\"toy\" (x_coef 0.9, tanh_coef 0.1, t_coef 0.1), all float32 (constants rounded to float32; t has "
    "shape [batch] and is broadcast per batch item); evaluation order exactly: a = x * x_coef; "
    "b = tanh(x); b = b * tanh_coef; a = a + b; k = t / 1000; k = k * t_coef; c = k * cond; eps = a + c. "
    "Near-linear in x, so it acts like a noise predictor for a zero image and runs end with |x| of order 1. "
    "(An earlier version of this file used x_coef 0, tanh_coef 0.5, t_coef 0.01; same order of operations.)"
)
COND_FORMULA = "cond[i] = ((i % 9) - 4) / 4 for flat row-major index i of [1, 4, 4, 4]"


def make_cond():
    i = torch.arange(64)
    return (((i % 9) - 4).to(torch.float32) / 4).reshape(SHAPE)


class ToyInnerModel:
    """Stands in for the LDM: has alphas_cumprod and apply_model."""

    def __init__(self, alphas_cumprod):
        self.alphas_cumprod = alphas_cumprod

    def apply_model(self, x, t, cond):
        t = t.to(torch.float32)
        a = x * TOY["x_coef"]
        b = torch.tanh(x)
        b = b * TOY["tanh_coef"]
        a = a + b
        k = t / 1000
        k = k * TOY["t_coef"]
        c = k.view(-1, *([1] * (x.ndim - 1))) * cond
        return a + c


class CountingModel:
    """Counts denoiser calls; passes cond via extra_args like A1111."""

    def __init__(self, model):
        self.model = model
        self.calls = 0

    def __call__(self, x, sigma, **kwargs):
        self.calls += 1
        return self.model(x, sigma, **kwargs)


# --- noise -------------------------------------------------------------------

def make_stream():
    g = torch.Generator().manual_seed(NOISE_SEED)
    return [torch.randn(SHAPE, generator=g, dtype=torch.float32) for _ in range(STREAM_LEN)]


class NoiseLog:
    """Hands out stream[1], stream[2], ... and records who asked."""

    def __init__(self, stream):
        self.stream = stream
        self.next_index = 1
        self.draws = []

    def take(self, source, sigma=None, sigma_next=None):
        idx = self.next_index
        self.next_index += 1
        d = {"index": idx, "source": source}
        if sigma is not None:
            d["sigma"] = f32(sigma)
            d["sigma_next"] = f32(sigma_next)
        self.draws.append(d)
        return self.stream[idx].clone()

    def noise_sampler(self, sigma, sigma_next):
        return self.take("noise_sampler", sigma, sigma_next)


# --- helpers -----------------------------------------------------------------

def f32(v):
    if isinstance(v, torch.Tensor):
        v = v.detach().to(torch.float32).reshape(-1)
        assert v.numel() == 1
        v = v[0].item()
    return float(np.float32(v))


def flist(t):
    return [float(v) for v in np.asarray(t.detach().to(torch.float32).reshape(-1).numpy(), dtype=np.float32)]


# --- schedule ---------------------------------------------------------------

def schedules_for(model, n):
    sigma_min = model.sigmas[0].item()   # A1111: self.model_wrap.sigmas[0].item()
    sigma_max = model.sigmas[-1].item()
    return {
        "automatic": model.get_sigmas(n),
        "karras": KS.get_sigmas_karras(n=n, sigma_min=sigma_min, sigma_max=sigma_max, rho=7.0),
        "exponential": KS.get_sigmas_exponential(n=n, sigma_min=sigma_min, sigma_max=sigma_max),
    }


def discard_penultimate(sigmas):
    return torch.cat([sigmas[:-2], sigmas[-1:]])


# --- samplers ---------------------------------------------------------------

# (A1111 label, k-diffusion function, kind, A1111 options that matter here)
SAMPLERS = [
    ("Euler", "sample_euler", "ode", {}),
    ("Euler a", "sample_euler_ancestral", "ancestral", {}),
    ("Heun", "sample_heun", "ode", {}),
    ("DPM2", "sample_dpm_2", "ode", {"discard_next_to_last_sigma": True}),
    ("DPM2 a", "sample_dpm_2_ancestral", "ancestral", {"discard_next_to_last_sigma": True}),
    ("LMS", "sample_lms", "ode", {}),
    ("DPM++ 2M", "sample_dpmpp_2m", "ode", {}),
    ("DPM++ 2S a", "sample_dpmpp_2s_ancestral", "ancestral", {}),
    ("DPM++ SDE", "sample_dpmpp_sde", "sde", {"brownian_noise": True}),
    ("DPM++ 2M SDE", "sample_dpmpp_2m_sde", "sde", {"brownian_noise": True}),
    ("DPM++ 2M SDE Heun", "sample_dpmpp_2m_sde", "sde", {"brownian_noise": True, "solver_type": "heun"}),
    ("DPM++ 3M SDE", "sample_dpmpp_3m_sde", "sde", {"brownian_noise": True, "discard_next_to_last_sigma": True}),
    # No sigma list: A1111 passes the model's sigma_min / sigma_max, n = steps and eta (eta_ancestral,
    # 1); its step noise is k-diffusion's default noise sampler, randn_like, i.e. the image RNG.
    ("DPM fast", "sample_dpm_fast", "ancestral", {"model_range": True}),
    ("DPM adaptive", "sample_dpm_adaptive", "ancestral", {"model_range": True}),
    # A1111's own sampler (modules/sd_samplers_extra.py), restated in fixture_support; run at
    # 8 steps (plain Heun), 24 (one restart) and 40 steps (two restarts).
    ("Restart", "a1111_restart_sampler", "ancestral", {"restart": True}),
]

# A1111_DEFAULT_SCHEDULE (fixture_support): what A1111 >= 1.9's "Automatic" scheduler picks.


def run_sampler(model, stream, label, funcname, kind, sigmas, cond, brownian=False, solver_type=None):
    log = NoiseLog(stream)
    counting = CountingModel(model)
    func = getattr(KS, funcname, None) or getattr(fixture_support, funcname)
    x0 = stream[0] * sigmas[0]
    kwargs = {"extra_args": {"cond": cond}, "disable": True}
    if solver_type is not None:   # A1111's "DPM++ 2M SDE Heun" passes solver_type="heun"
        kwargs["solver_type"] = solver_type
    model_range = funcname in ("sample_dpm_fast", "sample_dpm_adaptive")
    if model_range:
        # KDiffusionSampler.sample: sigma_min/max of the model, n = steps (DPM fast), eta 1; x = noise * sigmas[0].
        kwargs.update(sigma_min=model.sigmas[0].item(), sigma_max=model.sigmas[-1].item(), eta=1.0)
        if funcname == "sample_dpm_fast":
            kwargs["n"] = len(sigmas) - 1

    lms_coeffs = []
    orig_coeff = KS.linear_multistep_coeff
    brownian_values = []
    if funcname == "sample_lms":
        def coeff(order, t, i, j):
            c = orig_coeff(order, t, i, j)
            if j == 0:
                lms_coeffs.append([])
            lms_coeffs[-1].append(c)
            return c
        KS.linear_multistep_coeff = coeff
    restart = funcname == "a1111_restart_sampler"
    if kind in ("ancestral", "sde") and not model_range and not restart:
        if brownian:
            # What A1111's KDiffusionSampler.create_noise_sampler builds
            # (seed = [image seed], so the batched form).
            smin, smax = sigmas[sigmas > 0].min(), sigmas.max()
            tree = KS.BrownianTreeNoiseSampler(x0, smin, smax, seed=[NOISE_SEED])

            def ns(sigma, sigma_next):
                v = tree(sigma, sigma_next)
                brownian_values.append(flist(v))
                log.draws.append({"index": None, "source": "brownian", "sigma": f32(sigma),
                                  "sigma_next": f32(sigma_next)})
                return v
            kwargs["noise_sampler"] = ns
        else:
            kwargs["noise_sampler"] = log.noise_sampler
    KS.torch = fixture_support.TorchHijack(lambda: log.take("randn_like"))
    try:
        x = func(counting, x0.clone(), **kwargs) if model_range else func(counting, x0.clone(), sigmas, **kwargs)
    finally:
        KS.torch = REAL_TORCH
        KS.linear_multistep_coeff = orig_coeff

    for d in log.draws:
        # randn_like draws in euler/heun/dpm_2 are the unused s_churn eps.
        # (DPM fast draws its step noise through randn_like too, and uses it.)
        d["used"] = d["source"] != "randn_like" or model_range or restart
    run = {
        "sampler": label,
        "function": funcname,
        "sigmas": flist(sigmas),
        "x0": flist(x0),
        "noise_draws": log.draws,
        "denoiser_calls": counting.calls,
        "x": flist(x),
    }
    if funcname == "sample_lms":
        run["lms_coeffs"] = lms_coeffs
    if brownian:
        run["noise_values"] = brownian_values
    return run


# --- A1111 DDIM ----------------------------------------------------------------

def a1111_timesteps(steps, discard_next_to_last_sigma=False):
    steps += 1 if discard_next_to_last_sigma else 0
    return torch.clip(torch.asarray(list(range(0, 1000, 1000 // steps))) + 1, 0, 999)


def a1111_plms(inner, x, timesteps, cond):
    """Mirrors modules/sd_samplers_timesteps_impl.py `plms` (A1111 1.10, x.device = cpu): the
    first step a pseudo improved Euler (two model calls), then Adams-Bashforth of order 2, 3, 4
    over the last noise predictions; alphas_prev in float64 as .item() scalars. No noise."""
    calls = 0
    alphas_cumprod = inner.alphas_cumprod
    alphas = alphas_cumprod[timesteps]
    alphas_prev = alphas_cumprod[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].to(torch.float64)
    sqrt_one_minus_alphas = torch.sqrt(1 - alphas)
    s_in = x.new_ones((x.shape[0]))
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    old_eps = []

    def x_prev_of(x, e_t, index):
        a_t = alphas[index].item() * s_x
        a_prev = alphas_prev[index].item() * s_x
        sqrt_one_minus_at = sqrt_one_minus_alphas[index].item() * s_x
        pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
        return a_prev.sqrt() * pred_x0 + (1. - a_prev).sqrt() * e_t

    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        ts = timesteps[index].item() * s_in
        t_next = timesteps[max(index - 1, 0)].item() * s_in
        e_t = inner.apply_model(x, ts, cond)
        calls += 1
        if len(old_eps) == 0:
            x_prev = x_prev_of(x, e_t, index)
            e_t_next = inner.apply_model(x_prev, t_next, cond)
            calls += 1
            e_t_prime = (e_t + e_t_next) / 2
        elif len(old_eps) == 1:
            e_t_prime = (3 * e_t - old_eps[-1]) / 2
        elif len(old_eps) == 2:
            e_t_prime = (23 * e_t - 16 * old_eps[-1] + 5 * old_eps[-2]) / 12
        else:
            e_t_prime = (55 * e_t - 59 * old_eps[-1] + 37 * old_eps[-2] - 9 * old_eps[-3]) / 24
        x_prev = x_prev_of(x, e_t_prime, index)
        old_eps.append(e_t)
        if len(old_eps) >= 4:
            old_eps.pop(0)
        x = x_prev
    return x, calls


def a1111_ddim(inner, x, timesteps, cond, log, eta=0.0):
    """Mirrors modules/sd_samplers_timesteps_impl.py `ddim` (x.device = cpu)."""
    calls = 0
    alphas_cumprod = inner.alphas_cumprod
    alphas = alphas_cumprod[timesteps]
    alphas_prev = alphas_cumprod[torch.nn.functional.pad(timesteps[:-1], pad=(1, 0))].to(torch.float64)
    sqrt_one_minus_alphas = torch.sqrt(1 - alphas)
    sigmas = eta * np.sqrt((1 - alphas_prev.cpu().numpy()) / (1 - alphas.cpu()) * (1 - alphas.cpu() / alphas_prev.cpu().numpy()))
    s_in = x.new_ones((x.shape[0]))
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    steps = []
    for i in range(len(timesteps) - 1):
        index = len(timesteps) - 1 - i
        t_in = timesteps[index].item() * s_in
        e_t = inner.apply_model(x, t_in, cond)   # CompVisTimestepsDenoiser: apply_model(input, timesteps)
        calls += 1
        a_t = alphas[index].item() * s_x
        a_prev = alphas_prev[index].item() * s_x
        sigma_t = sigmas[index].item() * s_x
        sqrt_one_minus_at = sqrt_one_minus_alphas[index].item() * s_x
        pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
        dir_xt = (1. - a_prev - sigma_t ** 2).sqrt() * e_t
        noise = sigma_t * log.take("randn_like")
        x = a_prev.sqrt() * pred_x0 + dir_xt + noise
        steps.append({"index": index, "t": int(timesteps[index].item()),
                      "a_t": f32(a_t.reshape(-1)[0]), "a_prev": f32(a_prev.reshape(-1)[0]),
                      "sqrt_one_minus_at": f32(sqrt_one_minus_at.reshape(-1)[0])})
    return x, calls, steps


# --- main --------------------------------------------------------------------

def main():
    torch.set_num_threads(1)
    try:
        from importlib.metadata import version
        kd_version = version("k-diffusion")
        sde_version = version("torchsde")
        scipy_version = version("scipy")
    except Exception:
        kd_version = sde_version = scipy_version = "unknown"

    ac = make_alphas_cumprod()
    inner = ToyInnerModel(ac)
    model = K.external.CompVisDenoiser(inner, quantize=False)
    cond = make_cond()
    stream = make_stream()

    # Sanity: the wrapper really is eps-parameterised as documented.
    sig = torch.tensor([2.5])
    xin = stream[0] * 3
    c_in = 1 / (sig ** 2 + 1) ** 0.5
    want = xin + inner.apply_model(xin * c_in, model.sigma_to_t(sig), cond) * (-sig)
    assert torch.equal(model(xin, sig, cond=cond), want)

    # --- wrapper checks
    check_sigmas = [model.sigmas[-1].item(), 14.0, 7.5, 2.5, 1.0, 0.5, 0.1,
                    model.sigmas[0].item(), 0.02, 20.0]
    sigma_to_t = []
    for s in check_sigmas:
        st = torch.tensor([s], dtype=torch.float32)
        sigma_to_t.append({"sigma": f32(st), "t": f32(model.sigma_to_t(st))})
    t_to_sigma = []
    for t in [0.0, 0.5, 1.25, 499.5, 500.0, 856.2857055664062, 998.75, 999.0]:
        tt = torch.tensor([t], dtype=torch.float32)
        t_to_sigma.append({"t": f32(tt), "sigma": f32(model.t_to_sigma(tt))})
    denoise_calls = []
    for k, s in enumerate([14.614641189575195, 3.0, 0.5, 0.0291675]):
        st = torch.tensor([s], dtype=torch.float32)
        xin = stream[0] * st
        denoise_calls.append({"sigma": f32(st), "x_index": 0, "x": flist(xin),
                              "t": f32(model.sigma_to_t(st)),
                              "denoised": flist(model(xin, st, cond=cond))})

    # --- schedules
    sched8 = schedules_for(model, STEPS)
    sched9 = schedules_for(model, STEPS + 1)
    t_lin = torch.linspace(len(model.sigmas) - 1, 0, STEPS)
    schedules = {
        "sigma_min": model.sigmas[0].item(),
        "sigma_max": model.sigmas[-1].item(),
        "steps_8": {k: flist(v) for k, v in sched8.items()},
        "steps_9": {k: flist(v) for k, v in sched9.items()},
        "steps_8_discarded": {k: flist(discard_penultimate(v)) for k, v in sched9.items()},
        "automatic_t_8": flist(t_lin),
        "karras_ramp_8": flist(torch.linspace(0, 1, STEPS)),
        "exponential_log_8": flist(torch.linspace(math.log(model.sigmas[-1].item()),
                                                  math.log(model.sigmas[0].item()), STEPS)),
    }

    # --- sampler runs
    runs = []
    for label, funcname, kind, opts in SAMPLERS:
        sched_names = ["automatic", "karras"]
        if A1111_DEFAULT_SCHEDULE[label] == "exponential":
            sched_names.append("exponential")
        for sname in sched_names:
            variants = [("plain", sched8[sname])]
            if opts.get("discard_next_to_last_sigma"):
                variants.append(("a1111_discard", discard_penultimate(sched9[sname])))
            for variant, sigmas in variants:
                run = run_sampler(model, stream, label, funcname, kind, sigmas, cond, solver_type=opts.get("solver_type"))
                run["schedule"] = sname
                run["variant"] = variant
                if opts.get("discard_next_to_last_sigma"):
                    run["a1111_uses"] = variant == "a1111_discard"
                else:
                    run["a1111_uses"] = True
                run["a1111_default_schedule"] = A1111_DEFAULT_SCHEDULE[label] == sname
                runs.append(run)
        if opts.get("restart"):
            for n in (24, 40):
                sigmas = KS.get_sigmas_karras(n, model.sigmas[0].item(), model.sigmas[-1].item())
                run = run_sampler(model, stream, label, funcname, kind, sigmas, cond)
                run["schedule"] = "karras"
                run["variant"] = f"{n}_steps"
                run["a1111_uses"] = True
                run["a1111_default_schedule"] = True
                runs.append(run)
        if kind == "sde":
            sname = A1111_DEFAULT_SCHEDULE[label]
            run = run_sampler(model, stream, label, funcname, kind, sched8[sname], cond, brownian=True,
                              solver_type=opts.get("solver_type"))
            run["schedule"] = sname
            run["variant"] = "brownian"
            run["a1111_uses"] = True
            run["a1111_default_schedule"] = True
            runs.append(run)

    # --- DDIM as A1111 runs it
    timesteps = a1111_timesteps(STEPS)
    log = NoiseLog(stream)
    x0 = stream[0].clone()
    x, calls, ddim_steps = a1111_ddim(inner, x0, timesteps, cond, log)
    for d in log.draws:
        d["used"] = False   # multiplied by sigma_t = 0 (eta 0)
    ddim = {
        "sampler": "DDIM",
        "eta": 0.0,
        "timesteps": [int(v) for v in timesteps.tolist()],
        "x0": flist(x0),
        "x0_note": "x0 = stream[0] unscaled (A1111's CompVisSampler.sample passes the noise as is)",
        "steps": ddim_steps,
        "noise_draws": log.draws,
        "denoiser_calls": calls,
        "x": flist(x),
    }

    # --- PLMS as A1111 runs it (same timesteps and start as DDIM)
    plms_x, plms_calls = a1111_plms(inner, x0, timesteps, cond)
    plms = {"sampler": "PLMS", "timesteps": [int(v) for v in timesteps.tolist()], "x0": flist(x0),
            "denoiser_calls": plms_calls, "x": flist(plms_x)}

    max_index = max([d["index"] for r in runs for d in r["noise_draws"] if d["index"] is not None]
                    + [d["index"] for d in ddim["noise_draws"]])
    assert max_index < STREAM_LEN
    noise_stream = {"seed": NOISE_SEED, "shape": SHAPE,
                    "how": "g = torch.Generator().manual_seed(1); draws[k] = torch.randn([1, 4, 4, 4], generator=g) for k = 0, 1, ...",
                    "draws": [flist(v) for v in stream[:max_index + 1]]}

    doc = {
        "generator": GENERATOR,
        "torch": torch.__version__,
        "k_diffusion": kd_version,
        "torchsde": sde_version,
        "scipy": scipy_version,
        "toy_eps": TOY_EPS,
        "toy": TOY,
        "cond": {"formula": COND_FORMULA, "values": flist(cond)},
        "alphas_cumprod": flist(ac),
        "formulas": {
            "alphas_cumprod": "betas = linspace(0.00085**0.5, 0.012**0.5, 1000, float64)**2; "
                              "alphas_cumprod = cumprod(1 - betas) in float64, then cast to float32",
            "sigmas": "sigmas = sqrt((1 - ac) / ac) in float32 (ac = float32 alphas_cumprod); log_sigmas = log(sigmas) float32",
            "denoiser": "CompVisDenoiser(x, sigma): c_in = 1 / sqrt(sigma^2 + 1); c_out = -sigma; "
                        "eps = apply_model(x * c_in, sigma_to_t(sigma), cond); denoised = x + eps * c_out (float32)",
            "sigma_to_t": "ls = log(sigma); low = (last index i with log_sigmas[i] <= ls, or 0 if none), clamped to <= 998; "
                          "high = low + 1; w = clamp((log_sigmas[low] - ls) / (log_sigmas[low] - log_sigmas[high]), 0, 1); "
                          "t = (1 - w) * low + w * high (float32)",
            "t_to_sigma": "low = floor(t), high = ceil(t), w = t - floor(t); sigma = exp((1 - w) * log_sigmas[low] + w * log_sigmas[high]) (float32)",
            "automatic": "t = torch.linspace(999, 0, n) (float32); sigmas = t_to_sigma(t) + [0]",
            "karras": "ramp = torch.linspace(0, 1, n) (float32); min_inv_rho = sigma_min**(1/7), max_inv_rho = sigma_max**(1/7) "
                      "as Python float64 with sigma_min = float(sigmas[0]) and sigma_max = float(sigmas[999]); "
                      "sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** 7 in float32 (the Python scalars "
                      "are rounded to float32 when combined with the tensor) + [0]",
            "exponential": "sigmas = exp(torch.linspace(log(sigma_max), log(sigma_min), n)) (logs as float64, linspace float32) + [0]",
            "linspace": "torch float32 linspace(start, end, n): step = (end - start) / (n - 1) in float32; "
                        "v[i] = start + step * i for i < n / 2, else end - step * (n - 1 - i)",
            "discard_next_to_last_sigma": "A1111: compute the schedule for n + 1 steps, then drop the second-to-last sigma "
                                          "(torch.cat([sigmas[:-2], sigmas[-1:]]))",
            "x0": "k-diffusion runs: x0 = noise_stream[0] * sigmas[0] (float32)",
            "lms": "sample_lms order 4: coeffs[j] = integral over [sigmas[i], sigmas[i+1]] of the Lagrange basis "
                   "polynomial for sigmas[i-j] through sigmas[i..i-order+1] (scipy quad, float64; sigmas as float32 "
                   "values); x += sum_j float32(coeffs[j]) * d[i-j], summed j = 0, 1, ... (newest d first)",
            "ddim": "A1111 modules/sd_samplers_timesteps_impl.py ddim: timesteps = clip(range(0, 1000, 1000 // steps) + 1, 0, 999); "
                    "alphas = ac[timesteps]; alphas_prev = ac[[0] + timesteps[:-1]]; loop index = len-1 down to 1 "
                    "(len(timesteps) - 1 model calls, index 0 is never evaluated); e_t = apply_model(x, float(timesteps[index]), cond) "
                    "(x NOT scaled, t the integer timestep as float32); pred_x0 = (x - sqrt(1 - a_t) * e_t) / sqrt(a_t); "
                    "dir_xt = sqrt(1 - a_prev - sigma_t^2) * e_t; x = sqrt(a_prev) * pred_x0 + dir_xt + sigma_t * randn_like(x); "
                    "sigma_t = 0 for eta = 0",
        },
        "noise_stream": noise_stream,
        "denoiser_checks": {"sigma_to_t": sigma_to_t, "t_to_sigma": t_to_sigma, "calls": denoise_calls,
                            "note": "calls[k].x = noise_stream[0] * sigma; cond as above"},
        "schedules": schedules,
        "runs": runs,
        "ddim": ddim,
        "plms": plms,
        "a1111_notes": [
            "karras/exponential: sigma_min = model.sigmas[0] (~0.0292), sigma_max = model.sigmas[-1] (~14.6146) "
            "unless the option use_old_karras_scheduler_sigmas (0.1, 10) or the sigma_min/sigma_max/rho overrides are set",
            "DPM2 and DPM2 a have discard_next_to_last_sigma in every schedule (runs with variant 'a1111_discard'); "
            "the option always_discard_next_to_last_sigma applies it to every sampler",
            "A1111 >= 1.9: scheduler 'Automatic' means the sampler's default: karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, "
            "DPM2, DPM2 a; exponential for DPM++ 2M SDE; model.get_sigmas (uniform in t) for Euler, Euler a, Heun, LMS "
            "(field a1111_default_schedule)",
            "eta = 1 (opts.eta_ancestral) for ancestral and SDE samplers; s_noise = 1; s_churn = 0, s_tmin = 0, s_tmax = inf",
            "DPM++ SDE / DPM++ 2M SDE use BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(), seed=[image seed]) "
            "unless opts.no_dpmpp_sde_batch_determinism",
            "every other per-step noise (randn_like) is the image RNG's next draw: the same generator that made the initial "
            "noise continues (reseeded to seed + eta_noise_seed_delta when that option is non-zero)",
            "sample_euler, sample_heun, sample_dpm_2 and A1111's DDIM consume one randn_like per step even when unused",
            "DDIM with n steps makes n - 1 model calls and ends at alphas_cumprod[1], not at 1",
            "A1111 replaces k_diffusion.sampling.to_d by (x - denoised) / sigma (no append_dims); same values for batch 1",
        ],
    }
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    if "--append" in sys.argv and os.path.exists(OUT_PATH):
        # Keep the committed runs as they are (recomputed on another CPU they differ in the last
        # bits) and add the runs of samplers the file does not have yet, after their sampler's
        # predecessors; every other key stays as committed.
        with open(OUT_PATH) as f:
            old = json.load(f)
        have = {r["sampler"] for r in old["runs"]}
        old["runs"] += [r for r in runs if r["sampler"] not in have]
        for key in doc:          # sections the file does not have yet
            old.setdefault(key, doc[key])
        runs, doc = old["runs"], old
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes), {len(runs)} runs")
    for r in runs:
        print(f"  {r['sampler']:13s} {r['schedule']:11s} {r['variant']:13s} calls={r['denoiser_calls']:2d} "
              f"draws={len(r['noise_draws']):2d} |x|max={max(abs(v) for v in r['x']):.4f}")
    print(f"  DDIM calls={calls} |x|max={max(abs(v) for v in ddim['x']):.4f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/schedules.json: the sigmas of every schedule type A1111
1.10 offers (modules/sd_schedulers.py), for SD 1.x's DDPM schedule, at several step counts, with
A1111's defaults and with its schedule settings overridden ("Schedule min sigma", "Schedule max
sigma", "Schedule rho", "Beta schedule alpha/beta").

Rerun (after scripts/setup_reference_env.sh; needs k-diffusion, scipy, numpy in .venv-ref):
    .venv-ref/bin/python Tests/Fixtures/generators/make_schedule_fixtures.py

How A1111 calls them (KDiffusionSampler.get_sigmas): uniform = model_wrap.get_sigmas(n); every
other schedule function gets sigma_min = model_wrap.sigmas[0].item(), sigma_max =
model_wrap.sigmas[-1].item() (float32 values as Python floats), replaced by the "Schedule
min/max sigma" options when those are set (not 0), rho when the schedule has a default rho
(Karras 7, Polyexponential 1) and the option is set, and the inner model (k-diffusion's
CompVisDenoiser, whose sigma_to_t / t_to_sigma / sigmas are used) where it needs one.
Karras, Exponential and Polyexponential are k-diffusion's own functions. A1111's own schedule
functions cannot be imported without the webui, so fixture_support.py restates them line for line
from modules/sd_schedulers.py (A1111 1.10.1; one copy, shared with make_pipeline_fixtures.py, called
here through fixture_support.a1111_sigmas):
  sgm_uniform: t from sigma_to_t(sigma_max) to sigma_to_t(sigma_min), torch.linspace(.., n + 1)[:-1],
               t_to_sigma each, + [0]
  kl_optimal:  tan(i / n * atan(sigma_min) + (1 - i / n) * atan(sigma_max)) for i in arange(n + 1)
               (float32; no final 0: the last sigma is sigma_min)
  align_your_steps: SD 1.5's eleven levels, log-linearly interpolated (numpy) to n when n != 11, + [0]
  simple:      ss = len(sigmas) / n; sigmas[-(1 + int(x * ss))] for x in range(n), + [0]
  normal:      torch.linspace(sigma_to_t(sigma_max), sigma_to_t(sigma_min), n), t_to_sigma each, + [0]
  ddim:        ss = max(len(sigmas) // n, 1); sigmas[1], sigmas[1 + ss], ... reversed, + [0]
  beta:        1 - np.linspace(0, 1, n) through scipy.stats.beta.ppf(x, alpha, beta), scaled to
               [sigma_min, sigma_max], + [0]; alpha = beta = 0.6 by default
Each result is torch.FloatTensor (float32), recorded as exact float32 values.
"""

import json
import os

import numpy as np
import torch

from fixture_support import ROOT, a1111_sigmas, import_k_diffusion, make_alphas_cumprod, rel, version

OUT = os.path.join(ROOT, "Tests/DiffusionTests/Fixtures/schedules.json")
K = import_k_diffusion()


class Inner(torch.nn.Module):
    """Stands in for the LDM: CompVisDenoiser reads only alphas_cumprod here."""
    def __init__(self, ac):
        super().__init__()
        self.register_buffer("alphas_cumprod", ac)


def main():
    torch.set_num_threads(1)
    inner = K.external.CompVisDenoiser(Inner(make_alphas_cumprod()), quantize=False)
    kinds = ["uniform", "karras", "exponential", "polyexponential", "sgm_uniform", "kl_optimal", "align_your_steps",
             "simple", "normal", "ddim", "beta"]
    variants = [{}, {"sigma_min": 0.1, "sigma_max": 10.0}, {"rho": 3.0}, {"beta_dist_alpha": 0.5, "beta_dist_beta": 0.8}]
    cases = []
    for kind in kinds:
        for n in [1, 7, 8, 11, 20, 33]:
            for options in variants:
                if "rho" in options and kind not in ("karras", "polyexponential"):
                    continue
                if "beta_dist_alpha" in options and kind != "beta":
                    continue
                if n == 1 and kind in ("align_your_steps", "beta", "normal"):
                    continue   # A1111's own functions divide by n - 1 or interpolate over 0 intervals there
                s = a1111_sigmas(kind, n, inner, options)
                cases.append({"schedule": kind, "steps": n, "options": options,
                              "sigmas": [float(v) for v in s.to(torch.float32)]})
    out = {"generator": rel(__file__), "torch": torch.__version__, "k_diffusion": version("k-diffusion"),
           "scipy": version("scipy"), "numpy": np.__version__, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"wrote {rel(OUT)}: {len(cases)} cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()

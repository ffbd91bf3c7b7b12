#!/usr/bin/env python3
"""Makes Tests/DiffusionTests/Fixtures/brownian.json: what k-diffusion's
BrownianTreeNoiseSampler (over torchsde's BrownianTree) returns to A1111's SDE
samplers, for Sources/Diffusion/BrownianTreeNoise.swift.

Rerun (needs torch, torchsde, numpy and k-diffusion in .venv-ref; no network):
    .venv-ref/bin/python Tests/Fixtures/generators/make_brownian_fixtures.py
k-diffusion is imported without torchvision by fixture_support.import_k_diffusion.

What is recorded
----------------
* "cases": each builds the noise sampler as A1111's
  Sampler.create_noise_sampler does (modules/sd_samplers_common.py):
      BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(), seed=seeds)
  with x a float32 CPU tensor [len(seeds), *shape] and seeds a LIST (one tree per
  image), then runs the REAL k-diffusion sampler ("sampler") over "sigmas" with a
  toy model (denoised = 0.5 x) and that noise sampler, recording every call in
  order: the float32 sigma and sigma_next the sampler passed and the returned
  noise ([len(seeds), *shape] flattened, float32 written with 9 significant
  digits, which recovers the float32 exactly). DPM++ 2M SDE / 3M SDE ask for
  (sigmas[i], sigmas[i+1]); DPM++ SDE asks for (sigma_fn(t), sigma_fn(s)) then
  (sigma_fn(t), sigma_fn(t_next)) with t = -log sigma, s = t + h / 2.
  "source" is where the tree's normals come from: "cpu" is torchsde's own
  torch.randn on a CPU generator (what A1111 draws with its "CPU" RNG source);
  "nv" replaces torchsde's _randn with A1111's Philox "NV" generator as A1111's
  replace_torchsde_browinan does (rng.randn_local with randn_source == "NV").
  Shapes cover torch's randn paths: 9 elements (< 16: scalar Box-Muller in
  double), 16, 60 (not a multiple of 16: the last 16 are redrawn), 64, 256.
* "order_checks": the same sampler built afresh and queried in another order
  gives bit-identical values (torchsde's halfway tree depends on the entropy
  only); "order" lists the indices of the case's calls in the order asked.
* "seed_sequences": numpy SeedSequence(entropy, spawn_key, pool_size=24)
  .generate_state(4), the seeds torchsde derives for each tree node.
* "round6": Python's round(x, 6), which torchsde applies to every time (tol=1e-6).
* "versions" of python, torch, torchsde, k-diffusion and numpy.

Float32 results follow torch's CPU kernels: the torch.randn of 16 or more
float32 values (avx_mathfun log / sincos) and torch's MKL sqrt of the final
divisor can differ in the last bit from other builds (a correctly rounded sqrt,
CUDA's); the values are the same to about 1e-7 relative.
"""

import json
import math
import os
import platform
import sys
import warnings

import numpy as np
import torch

# torchsde warns that the float32 sigma range sits a rounding error outside the
# float64 tree interval (A1111 sees the same); harmless.
warnings.filterwarnings("ignore", message="Should have t", category=UserWarning)

from fixture_support import ROOT, PhiloxGenerator, import_k_diffusion, version  # noqa: E402

OUT_PATH = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures", "brownian.json")
GENERATOR = "Tests/Fixtures/generators/make_brownian_fixtures.py"

K = import_k_diffusion()
KS = K.sampling
import torchsde._brownian.brownian_interval as BI  # noqa: E402

TORCHSDE_RANDN = BI._randn


def a1111_randn_nv(size, dtype, device, seed):
    # modules/sd_samplers_common.py replace_torchsde_browinan -> rng.randn_local(seed, size)
    # with opts.randn_source == "NV": rng_philox.Generator(seed).randn(shape), then .to(device, dtype).
    return torch.asarray(PhiloxGenerator(int(seed)).randn(size)).to(device=device, dtype=dtype)


def a1111_randn_cpu(size, dtype, device, seed):
    # rng.randn_local with opts.randn_source == "CPU".
    g = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(size, device="cpu", generator=g).to(device=device, dtype=dtype)


def g9(v):
    return float("%.9g" % v)


def flist9(t):
    return [g9(v) for v in t.detach().flatten().tolist()]


def toy_model(x, sigma, **kwargs):
    return x * 0.5


class Recorder:
    def __init__(self, inner):
        self.inner = inner
        self.calls = []

    def __call__(self, sigma, sigma_next):
        out = self.inner(sigma, sigma_next)
        assert out.dtype == torch.float32
        self.calls.append((sigma, sigma_next, out.clone()))
        return out


def make_sampler(sigmas, shape, seeds):
    x = torch.zeros([len(seeds), *shape], dtype=torch.float32)
    smin, smax = sigmas[sigmas > 0].min(), sigmas.max()
    return x, smin, smax, KS.BrownianTreeNoiseSampler(x, smin, smax, seed=list(seeds))


def run_case(name, sampler, sigmas, shape, seeds, source="cpu"):
    BI._randn = {"cpu": TORCHSDE_RANDN, "nv": a1111_randn_nv}[source]
    try:
        x, smin, smax, ns = make_sampler(sigmas, shape, seeds)
        rec = Recorder(ns)
        getattr(KS, sampler)(toy_model, torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * sigmas[0],
                             sigmas, disable=True, noise_sampler=rec)
        if source == "cpu":
            # A1111's own CPU replacement draws the same normals as torchsde's default.
            BI._randn = a1111_randn_cpu
            _, _, _, again = make_sampler(sigmas, shape, seeds)
            for s, sn, out in rec.calls:
                assert torch.equal(again(s, sn), out), name
    finally:
        BI._randn = TORCHSDE_RANDN
    assert rec.calls, name
    return {
        "name": name,
        "sampler": sampler,
        "source": source,
        "shape": list(shape),
        "seeds": list(seeds),
        "sigmas": [float(v) for v in sigmas.tolist()],
        "sigma_min": float(smin),
        "sigma_max": float(smax),
        "calls": [{"sigma": float(s), "sigma_next": float(sn), "noise": flist9(out)} for s, sn, out in rec.calls],
    }, rec.calls


def order_check(case, calls, order):
    x, smin, smax, ns = make_sampler(torch.tensor(case["sigmas"], dtype=torch.float32),
                                     case["shape"], case["seeds"])
    for i in order:
        s, sn, out = calls[i]
        assert torch.equal(ns(s, sn), out), (case["name"], i)
    return {"case": case["name"], "order": order}


def main():
    karras10 = KS.get_sigmas_karras(10, 0.0292, 14.6146)
    # A1111's DPM++ 3M SDE drops the penultimate sigma ('discard_next_to_last_sigma').
    karras11 = KS.get_sigmas_karras(11, 0.0292, 14.6146)
    karras10_discard = torch.cat([karras11[:-2], karras11[-1:]])
    exponential8 = KS.get_sigmas_exponential(8, 0.0292, 14.6146)
    wide = KS.get_sigmas_karras(12, 0.0292, 4096.0)

    cases, all_calls = [], {}
    for spec in [
        ("karras10_dpmpp_2m_sde", "sample_dpmpp_2m_sde", karras10, [4, 8, 8], [1234], "cpu"),
        ("karras10_dpmpp_sde", "sample_dpmpp_sde", karras10, [4, 8, 8], [1234], "cpu"),
        ("karras10_batch2_dpmpp_2m_sde", "sample_dpmpp_2m_sde", karras10, [4, 8, 8], [7, 2 ** 32 + 11], "cpu"),
        ("exponential8_16_dpmpp_sde", "sample_dpmpp_sde", exponential8, [4, 2, 2], [42], "cpu"),
        ("exponential8_9_batch2_dpmpp_sde", "sample_dpmpp_sde", exponential8, [3, 1, 3], [5, 99], "cpu"),
        ("karras10_discard_60_dpmpp_3m_sde", "sample_dpmpp_3m_sde", karras10_discard, [4, 3, 5], [2024], "cpu"),
        ("nv_karras10_dpmpp_2m_sde", "sample_dpmpp_2m_sde", karras10, [4, 4, 4], [1234, 4294967295], "nv"),
        ("wide_karras12_dpmpp_2m_sde", "sample_dpmpp_2m_sde", wide, [4, 2, 3], [31337], "cpu"),
    ]:
        case, calls = run_case(*spec)
        cases.append(case)
        all_calls[case["name"]] = calls

    by_name = {c["name"]: c for c in cases}
    checks = []
    for name, order in [
        ("exponential8_16_dpmpp_sde", list(reversed(range(len(all_calls["exponential8_16_dpmpp_sde"]))))),
        ("karras10_dpmpp_sde", [int(i) for i in np.random.default_rng(7).permutation(len(all_calls["karras10_dpmpp_sde"]))]),
        ("exponential8_9_batch2_dpmpp_sde", [int(i) for i in np.random.default_rng(8).permutation(len(all_calls["exponential8_9_batch2_dpmpp_sde"]))]),
    ]:
        checks.append(order_check(by_name[name], all_calls[name], order))

    seed_sequences = []
    for entropy in [0, 1, 1234, 4294967295, 2 ** 32 + 11, 2 ** 62 + 12345]:
        for spawn in [None, (0, 0), (1, 1), (6, 3), (2 ** 33 + 1, 34)]:
            ss = np.random.SeedSequence(entropy=entropy, spawn_key=() if spawn is None else spawn, pool_size=24)
            seed_sequences.append({"entropy": entropy, "spawn_key": None if spawn is None else list(spawn),
                                   "state": [int(v) for v in ss.generate_state(4)]})

    rng = np.random.default_rng(3)
    xs = [0.0078125, 0.0234375, 1.0000005, 2.5e-7, 5e-7, 7.5e-7, 0.0291675, 14.6146, 4096.0, 1e-9,
          0.5 * (14.614642 + 0.029168), 123456.7890125]
    xs += [float(np.float32(v)) for v in karras10.tolist() + exponential8.tolist()]
    xs += [float(v) for v in rng.uniform(0, 20, 40)] + [float(v) for v in rng.uniform(0, 1e-3, 10)]
    xs += [-0.0078125, -3.1415926535]
    round6 = [[x, round(x, 6)] for x in xs]

    out = {
        "generator": GENERATOR,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchsde": version("torchsde"), "k_diffusion": version("k-diffusion"),
                     "numpy": np.__version__},
        "cases": cases,
        "order_checks": checks,
        "seed_sequences": seed_sequences,
        "round6": round6,
    }
    with open(OUT_PATH, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT_PATH, ROOT)} ({os.path.getsize(OUT_PATH)} bytes, "
          f"{sum(len(c['calls']) for c in cases)} calls)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes Tests/EngineTests/Fixtures/engine_ops.json: PyTorch reference values
for every sdshell engine primitive (forward outputs, and gradients through
autograd) on small random inputs.

Rerun (after scripts/setup_reference_env.sh):
    .venv-ref/bin/python Tests/Fixtures/generators/make_engine_fixtures.py

Everything is float32 on the CPU, single-threaded, with a fixed seed per case
(derived from the case name, so adding a case does not change the others);
the output is the same on every run with the same torch version.

File layout:
    {"generator": ..., "torch": torch.__version__, "cases": [CASE, ...]}
    CASE = {"name", "op", "attrs": {...}, "inputs": {arg: TENSOR},
            "outputs": [TENSOR], "grad_outputs": [TENSOR], "grads": {arg: TENSOR}}
    TENSOR = {"shape": [...], "data": [flat row-major values]}
"grad_outputs" are random upstream gradients (same shapes as "outputs") and
"grads"[arg] = d(sum_i sum(outputs[i] * grad_outputs[i])) / d(arg). Ops without
gradients leave both keys out.

Floats are written as the exact float32 value (Python's shortest repr of that
double), so parsing to Double and converting to Float is exact. Non-finite
values, which JSON cannot hold, are written as the strings "inf", "-inf", "nan"
(only the to_f16/to_bf16 round-trip outputs have them).
"""

import json
import math
import os
import struct
import sys
import zlib

import torch
import torch.nn.functional as F

from fixture_support import ROOT  # noqa: E402  (the repository)
OUT_PATH = os.path.join(ROOT, "Tests", "EngineTests", "Fixtures", "engine_ops.json")
GENERATOR = "Tests/Fixtures/generators/make_engine_fixtures.py"

CASES = []


# ---------------------------------------------------------------- helpers

def randn(*shape):
    """Lazy standard-normal input, drawn after the case's seed is set."""
    return lambda: torch.randn(*shape, dtype=torch.float32)


def positive(*shape):
    """Lazy input in [0.5, 1.5): for log, sqrt and divisors."""
    return lambda: torch.rand(*shape, dtype=torch.float32) + 0.5


def encode_float(x):
    if math.isfinite(x):
        return float(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def encode(t):
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32, t.dtype
        data = [encode_float(v) for v in t.flatten().tolist()]
    else:
        data = [int(v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def record(name, op, inputs, fn, attrs=None, grads=()):
    """Runs fn(*inputs.values()) forward (and backward for the arguments named in
    grads) and appends the case.

    inputs: {argname: tensor or lazy input}; lazy ones are drawn in dict order
    after seeding with a hash of the case name. fn returns a tensor or a
    tuple/list of tensors.
    """
    assert all(c["name"] != name for c in CASES), f"duplicate case {name}"
    torch.manual_seed(zlib.crc32(name.encode()))
    values = {k: (v() if callable(v) else v) for k, v in inputs.items()}
    for k in grads:
        values[k] = values[k].detach().requires_grad_(True)

    with torch.set_grad_enabled(bool(grads)):
        out = fn(*values.values())
    outputs = list(out) if isinstance(out, (tuple, list)) else [out]

    case = {"name": name, "op": op, "attrs": attrs or {},
            "inputs": {k: encode(v) for k, v in values.items()},
            "outputs": [encode(o) for o in outputs]}
    if grads:
        grad_outputs = [torch.randn_like(o) for o in outputs]
        g = torch.autograd.grad(outputs, [values[k] for k in grads], grad_outputs)
        case["grad_outputs"] = [encode(t) for t in grad_outputs]
        case["grads"] = {k: encode(t) for k, t in zip(grads, g)}
    CASES.append(case)


# ---------------------------------------------------------------- op families

def matmul_cases():
    mm = lambda a, b: a @ b
    record("matmul", "matmul", {"a": randn(5, 7), "b": randn(7, 6)}, mm, grads=("a", "b"))
    record("matmul_batched4d", "matmul", {"a": randn(2, 3, 5, 7), "b": randn(2, 3, 7, 6)},
           mm, grads=("a", "b"))
    record("matmul_bmm3d", "matmul", {"a": randn(3, 5, 7), "b": randn(3, 7, 4)},
           mm, grads=("a", "b"))
    # a.T is a non-contiguous view.
    record("matmul_at", "matmul_at", {"a": randn(4, 6), "b": randn(4, 3)},
           lambda a, b: a.t() @ b, grads=("a", "b"))


def linear_cases():
    record("linear", "linear", {"x": randn(2, 3, 8), "weight": randn(5, 8), "bias": randn(5)},
           F.linear, grads=("x", "weight", "bias"))
    record("linear_nobias", "linear", {"x": randn(2, 3, 8), "weight": randn(5, 8)},
           F.linear, grads=("x", "weight"))


def conv2d_cases():
    # (name, x shape, out channels, kernel, stride, padding, bias)
    configs = [
        ("conv2d_3x3_s1_p1", (2, 4, 7, 6), 5, 3, 1, 1, True),
        ("conv2d_3x3_s2_p1", (2, 4, 8, 7), 3, 3, 2, 1, True),
        ("conv2d_1x1_s1_p0", (2, 6, 5, 5), 4, 1, 1, 0, True),
        ("conv2d_3x3_s1_p1_nobias", (2, 4, 7, 6), 5, 3, 1, 1, False),
    ]
    for name, xs, o, k, s, p, has_bias in configs:
        inputs = {"x": randn(*xs), "weight": randn(o, xs[1], k, k)}
        if has_bias:
            inputs["bias"] = randn(o)
        record(name, "conv2d", inputs,
               lambda x, weight, bias=None, s=s, p=p: F.conv2d(x, weight, bias, stride=s, padding=p),
               attrs={"stride": s, "padding": p}, grads=tuple(inputs))


def upsample_cases():
    record("upsample_nearest2x", "upsample_nearest2x", {"x": randn(2, 3, 4, 5)},
           lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), grads=("x",))


def norm_cases():
    for name, xs, eps in [("group_norm_g32_eps1e-5", (2, 64, 3, 3), 1e-5),
                          ("group_norm_g32_eps1e-6", (1, 64, 4, 2), 1e-6)]:
        record(name, "group_norm", {"x": randn(*xs), "weight": randn(64), "bias": randn(64)},
               lambda x, weight, bias, eps=eps: F.group_norm(x, 32, weight, bias, eps),
               attrs={"groups": 32, "eps": eps}, grads=("x", "weight", "bias"))
    record("layer_norm", "layer_norm", {"x": randn(2, 5, 16), "weight": randn(16), "bias": randn(16)},
           lambda x, weight, bias: F.layer_norm(x, (16,), weight, bias, 1e-5),
           attrs={"eps": 1e-5}, grads=("x", "weight", "bias"))


def softmax_cases():
    record("softmax", "softmax", {"x": randn(3, 4, 9)}, lambda x: F.softmax(x, dim=-1),
           attrs={"dim": -1}, grads=("x",))


def sdpa_cases():
    # (name, B, H, Lq, Lk, D, Dv, causal)
    configs = [
        ("sdpa_self", 2, 3, 11, 11, 8, 8, False),
        ("sdpa_self_causal", 2, 3, 11, 11, 8, 8, True),
        ("sdpa_cross", 2, 3, 13, 7, 8, 8, False),
        ("sdpa_large", 1, 2, 150, 150, 16, 16, False),  # spans several blocks
    ]
    for name, b, h, lq, lk, d, dv, causal in configs:
        record(name, "sdpa", {"q": randn(b, h, lq, d), "k": randn(b, h, lk, d), "v": randn(b, h, lk, dv)},
               lambda q, k, v, causal=causal: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
               attrs={"causal": causal}, grads=("q", "k", "v"))


def unary_cases():
    ops = [
        ("gelu", randn, lambda x: F.gelu(x, approximate="none"), {}),
        ("gelu_tanh", randn, lambda x: F.gelu(x, approximate="tanh"), {}),
        ("quick_gelu", randn, lambda x: x * torch.sigmoid(1.702 * x), {}),
        ("silu", randn, F.silu, {}),
        ("exp", randn, torch.exp, {}),
        ("log", positive, torch.log, {}),
        ("sqrt", positive, torch.sqrt, {}),
        ("clamp", randn, lambda x: torch.clamp(x, -0.5, 0.7), {"min": -0.5, "max": 0.7}),
    ]
    for op, make, fn, attrs in ops:
        record(op, op, {"x": make(3, 17)}, fn, attrs=attrs, grads=("x",))


def geglu_cases():
    def geglu(x):
        a, gate = x.chunk(2, dim=-1)
        return a * F.gelu(gate)
    record("geglu", "geglu", {"x": randn(2, 3, 10)}, geglu, grads=("x",))


def embedding_cases():
    ids = torch.tensor([3, 1, 3, 0, 5, 3, 2], dtype=torch.int64)
    record("embedding", "embedding", {"ids": ids, "weight": randn(6, 4)},
           lambda ids, weight: F.embedding(ids, weight), grads=("weight",))


def binary_cases():
    fns = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    for op, fn in fns.items():
        b = positive(3, 1, 5) if op == "div" else randn(3, 1, 5)
        record(op, op, {"a": randn(2, 3, 4, 5), "b": b}, fn, grads=("a", "b"))
    record("add_broadcast_both", "add", {"a": randn(4, 1), "b": randn(1, 3)}, torch.add,
           grads=("a", "b"))


def scalar_cases():
    record("add_scalar", "add_scalar", {"x": randn(3, 4)}, lambda x: x + 2.5,
           attrs={"scalar": 2.5}, grads=("x",))
    record("mul_scalar", "mul_scalar", {"x": randn(3, 4)}, lambda x: x * -1.5,
           attrs={"scalar": -1.5}, grads=("x",))


def shape_cases():
    record("concat", "concat", {"a": randn(2, 3, 4), "b": randn(2, 5, 4)},
           lambda a, b: torch.cat([a, b], dim=1), attrs={"dim": 1}, grads=("a", "b"))
    record("chunk", "chunk", {"x": randn(2, 6, 4)}, lambda x: x.chunk(3, dim=1),
           attrs={"chunks": 3, "dim": 1}, grads=("x",))


def reduction_cases():
    record("sum", "sum", {"x": randn(2, 3, 4, 5)}, lambda x: x.sum(dim=(1, 3), keepdim=True),
           attrs={"dims": [1, 3], "keepdim": True}, grads=("x",))
    record("mean", "mean", {"x": randn(2, 3, 4, 5)}, lambda x: x.mean(dim=(2,), keepdim=False),
           attrs={"dims": [2], "keepdim": False}, grads=("x",))
    # Population variance (correction=0), as GroupNorm uses.
    record("var", "var", {"x": randn(2, 3, 4, 5)},
           lambda x: x.var(dim=(1, 2, 3), correction=0, keepdim=True),
           attrs={"dims": [1, 2, 3], "keepdim": True}, grads=("x",))


def get_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False,
                           downscale_freq_shift=1, scale=1, max_period=10000):
    """diffusers.models.embeddings.get_timestep_embedding, restated."""
    half_dim = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half_dim, dtype=torch.float32)
    exponent = exponent / (half_dim - downscale_freq_shift)
    emb = torch.exp(exponent)
    emb = timesteps[:, None].float() * emb[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half_dim:], emb[:, :half_dim]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


def timestep_embedding_cases():
    try:
        from diffusers.models.embeddings import get_timestep_embedding as diffusers_gte
    except Exception:  # diffusers missing or broken: the restatement stands alone
        diffusers_gte = None
    t = torch.tensor([1.0, 500.0, 999.0])
    for name, dim, flip, shift in [("timestep_embedding_320", 320, True, 0),
                                   ("timestep_embedding_8_noflip_shift1", 8, False, 1)]:
        attrs = {"dim": dim, "flip_sin_to_cos": flip, "downscale_freq_shift": shift,
                 "max_period": 10000}
        fn = lambda timesteps, dim=dim, flip=flip, shift=shift: get_timestep_embedding(
            timesteps, dim, flip_sin_to_cos=flip, downscale_freq_shift=shift, max_period=10000)
        if diffusers_gte is not None:
            ref = diffusers_gte(t, dim, flip_sin_to_cos=flip, downscale_freq_shift=shift, max_period=10000)
            assert torch.equal(ref, fn(t)), f"{name}: differs from diffusers"
        record(name, "timestep_embedding", {"timesteps": t}, fn, attrs=attrs)


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def conversion_inputs():
    """64 float32 values that probe f16/bf16 rounding, then random fill."""
    tricky = [
        0.0, -0.0, 1.0, -1.0, 1 / 3, -2 / 3, 0.1, -3.14159,
        # f16 subnormals and underflow (min subnormal 2^-24, min normal 2^-14)
        1e-8, -1e-8, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 1e-6, 1e-5, 2.0 ** -14,
        2.0 ** -14 - 2.0 ** -24, 6e-5,
        # f16 top of range and overflow (65520 is the tie with inf -> inf)
        65504.0, -65504.0, 65519.0, 65520.0, 70000.0, -70000.0, 1e5, 1e4,
        # f16 ties (spacing 2^-10 at 1): even neighbour wins
        1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -11 + 2.0 ** -20, -(1 + 3 * 2.0 ** -11),
        2049.0, 2051.0,
        # bf16 ties (spacing 2^-7 at 1, 2 at 256)
        1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 1 + 2.0 ** -8 + 2.0 ** -20, 257.0, 259.0, -259.0,
        # float32 extremes: largest (-> inf in bf16), subnormals
        f32(0x7F7FFFFF), -f32(0x7F7FFFFF), f32(0x00000001), 1e-40, f32(0x00800000),
        # just below/above the bf16 tie 0x3F808000
        f32(0x3F807FFF), f32(0x3F808001),
    ]
    x = torch.tensor(tricky, dtype=torch.float32)
    torch.manual_seed(zlib.crc32(b"conversion_inputs"))
    n = 64 - len(tricky)
    scales = torch.tensor([1e-3, 1.0, 100.0, 3e4]).repeat((n + 3) // 4)[:n]
    fill = torch.randn(n) * scales
    return torch.cat([x, fill])


def conversion_cases():
    x = conversion_inputs()
    assert x.numel() == 64 and not torch.isnan(x).any()
    for op, dtype in [("to_f16", torch.float16), ("to_bf16", torch.bfloat16)]:
        def convert(x, dtype=dtype):
            y = x.to(dtype)
            bits = y.view(torch.int16).to(torch.int64) & 0xFFFF
            return bits, y.to(torch.float32)
        record(op, op, {"x": x}, convert)


# ---------------------------------------------------------------- main

def check(doc):
    names = [c["name"] for c in doc["cases"]]
    assert len(names) == len(set(names))
    for c in doc["cases"]:
        tensors = list(c["inputs"].values()) + c["outputs"] + c.get("grad_outputs", []) \
            + list(c.get("grads", {}).values())
        for t in tensors:
            assert len(t["data"]) == math.prod(t["shape"]), c["name"]
        if "grads" in c:
            assert len(c["grad_outputs"]) == len(c["outputs"])
            for k, g in c["grads"].items():
                assert g["shape"] == c["inputs"][k]["shape"], (c["name"], k)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for family in [matmul_cases, linear_cases, conv2d_cases, upsample_cases, norm_cases,
                   softmax_cases, sdpa_cases, unary_cases, geglu_cases, embedding_cases,
                   binary_cases, scalar_cases, shape_cases, reduction_cases,
                   timestep_embedding_cases, conversion_cases]:
        family()

    doc = {"generator": GENERATOR, "torch": torch.__version__, "cases": CASES}
    check(doc)
    # One case per line: small diffs when a case changes.
    body = ",\n".join(json.dumps(c, separators=(",", ":"), allow_nan=False) for c in CASES)
    text = ('{"generator":%s,"torch":%s,"cases":[\n%s\n]}\n'
            % (json.dumps(GENERATOR), json.dumps(torch.__version__), body))
    assert json.loads(text) == json.loads(json.dumps(doc))  # same document

    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    tmp = OUT_PATH + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, OUT_PATH)
    print(f"wrote {os.path.relpath(OUT_PATH, ROOT)}: {len(CASES)} cases, {len(text)} bytes, "
          f"torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Makes the A1111-style optimizer-state fixture for OptimizerStateTests:

  Tests/TrainingTests/Fixtures/optim/a1111.pt        an embedding as A1111 saves it (step 3)
  Tests/TrainingTests/Fixtures/optim/a1111.pt.optim  {'hash': checksum, 'optimizer_state_dict': AdamW state}
  Tests/TrainingTests/Fixtures/optim/expected.json   the checksum, step, lr and the moments' values

A1111 writes `<file>.optim` with torch.save({'hash': embedding.checksum(), 'optimizer_state_dict':
optimizer.state_dict()}) and reads it back only when the hash equals the loaded vectors' checksum.
The checksum (a 4-hex legacy hash, shared/reference/a1111.md): r = 0; for v in (vec.flatten() * 100)
(float32): r = ((r * 281) ^ (int(v) * 997)) & 0xFFFFFFFF; then "%04x" % (r & 0xFFFF).

    .venv-ref/bin/python Tests/Fixtures/generators/make_optim_fixtures.py
Deterministic (seeded generator); small (two vectors of 32)."""
import json
import os

import torch

from fixture_support import ROOT

OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "optim")
os.makedirs(OUT, exist_ok=True)


def checksum(vec):
    r = 0
    for v in (vec.detach().reshape(-1) * 100):
        r = (r * 281 ^ int(v) * 997) & 0xFFFFFFFF
    return f"{r & 0xffff:04x}"


g = torch.Generator().manual_seed(11)
vec = torch.nn.Parameter(torch.randn(2, 32, generator=g) * 0.02)
opt = torch.optim.AdamW([vec], lr=0.005, weight_decay=0)
for _ in range(3):
    vec.grad = torch.randn(2, 32, generator=g)
    opt.step()
embedding = {"string_to_token": {"*": 265}, "string_to_param": {"*": vec.detach().clone()}, "name": "a1111",
             "step": 3, "sd_checkpoint": "0123456789", "sd_checkpoint_name": "tiny"}
torch.save(embedding, os.path.join(OUT, "a1111.pt"))
torch.save({"hash": checksum(vec), "optimizer_state_dict": opt.state_dict()}, os.path.join(OUT, "a1111.pt.optim"))

# Checksums of chosen vectors, including negative and large values (int() truncates toward zero).
cases = [[0.0, 0.0], [0.01, -0.01, 0.5], [-1.2345, 3.5, -0.999, 12.0], [1e6, -2.5e7, 0.004]]
state = opt.state_dict()["state"][0]
expected = {
    "hash": checksum(vec),
    "step": float(state["step"]),
    "lr": 0.005,
    "vectors": vec.detach().reshape(-1).tolist(),
    "exp_avg": state["exp_avg"].reshape(-1).tolist(),
    "exp_avg_sq": state["exp_avg_sq"].reshape(-1).tolist(),
    "checksums": [{"values": c, "hash": checksum(torch.tensor(c, dtype=torch.float32))} for c in cases],
}
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print("hash", expected["hash"])

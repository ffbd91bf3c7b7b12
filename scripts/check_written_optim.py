#!/usr/bin/env python3
"""Checks an optimizer state written by sdshell the way A1111's trainer reads one.

    .venv-ref/bin/python scripts/check_written_optim.py FILE.pt.optim VECTORS DIM

torch.load(weights_only=True); a dict with 'hash' (4 hex) and 'optimizer_state_dict'; the state
loads into torch.optim.AdamW([param [VECTORS, DIM]], weight_decay=0) with load_state_dict, and one
more step runs. Prints the step, lr and moment norms. Exits 1 on failure."""
import sys

import torch

path, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
saved = torch.load(path, map_location="cpu", weights_only=True)
assert set(saved) >= {"hash", "optimizer_state_dict"}, f"keys {list(saved)}"
assert isinstance(saved["hash"], str) and len(saved["hash"]) == 4, saved["hash"]
param = torch.nn.Parameter(torch.zeros(n, dim))
opt = torch.optim.AdamW([param], lr=0.005, weight_decay=0)
opt.load_state_dict(saved["optimizer_state_dict"])
state = opt.state[param]
print("step", float(state["step"]), "lr", opt.param_groups[0]["lr"],
      "|exp_avg|", float(state["exp_avg"].norm()), "|exp_avg_sq|", float(state["exp_avg_sq"].norm()))
param.grad = torch.ones(n, dim)
opt.step()
print("OK: loads into torch AdamW and steps; hash", saved["hash"])

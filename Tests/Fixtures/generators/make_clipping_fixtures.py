"""Reference gradient clipping from torch (clip_grad_value_, clip_grad_norm_) for
Tests/TrainingTests/Fixtures/clipping.json.  Run with the reference environment:
    .venv-ref/bin/python Tests/Fixtures/generators/make_clipping_fixtures.py
"""
import json
import os

import torch

from fixture_support import ROOT

torch.manual_seed(0)
gradient = (torch.randn(2 * 32) * 0.3).float()
cases = []
for mode, limit in [("value", 0.05), ("value", 10.0), ("norm", 0.5), ("norm", 1000.0)]:
    p = torch.nn.Parameter(torch.zeros_like(gradient))
    p.grad = gradient.clone()
    if mode == "value":
        torch.nn.utils.clip_grad_value_([p], limit)
    else:
        torch.nn.utils.clip_grad_norm_([p], limit)
    cases.append({"mode": mode, "limit": limit, "clipped": p.grad.tolist()})
with open(os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "clipping.json"), "w") as f:
    json.dump({"torch": torch.__version__, "gradient": gradient.tolist(), "cases": cases}, f)
print("wrote", len(cases), "cases")

"""Side-by-side reference for `sdbench train`: one textual-inversion step in PyTorch on the same
SD 1.5 architecture with random weights (diffusers UNet, transformers CLIP text model): the
frozen model, 4 trainable vectors spliced into the token embeddings, MSE on the noise
prediction, backward, AdamW.  Prints seconds per step (mean of the later steps) and peak RSS.
With --bf16 the forward pass runs under torch.autocast("cpu", dtype=torch.bfloat16) (the backward
follows the forward's types), as `sdbench train --precision bf16` is compared with.
    .venv-ref/bin/python scripts/bench_reference_train.py SIZE [STEPS] [THREADS] [--bf16]
"""
import resource
import sys
import time

import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

BF16 = "--bf16" in sys.argv
args = [a for a in sys.argv[1:] if not a.startswith("--")]
size = int(args[0])
steps = int(args[1]) if len(args) > 1 else 4
torch.set_num_threads(int(args[2]) if len(args) > 2 else 2)
torch.manual_seed(0)
unet = UNet2DConditionModel(cross_attention_dim=768).eval().requires_grad_(False)
text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                    max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu")).eval().requires_grad_(False)
vectors = torch.nn.Parameter(torch.randn(4, 768) * 0.01)
table = text.text_model.embeddings.token_embedding


class Spliced(torch.nn.Module):
    """The token embeddings with the trainable vectors at positions 3..6 (after "a painting of")."""
    def forward(self, ids):
        base = table(ids)
        return torch.cat([base[:, :3], vectors.unsqueeze(0).expand(ids.shape[0], -1, -1), base[:, 7:]], dim=1)


text.text_model.embeddings.token_embedding = Spliced()
optimizer = torch.optim.AdamW([vectors], lr=0.005, weight_decay=0.0)
ids = torch.randint(0, 49407, (1, 77))
alphas = torch.cumprod(1 - torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2, 0)
times = []
for step in range(steps):
    start = time.perf_counter()
    latents = torch.randn(1, 4, size // 8, size // 8)
    noise = torch.randn_like(latents)
    t = torch.randint(0, 1000, (1,))
    a = alphas[t].float().view(1, 1, 1, 1)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
        context = text(ids).last_hidden_state
        loss = torch.nn.functional.mse_loss(unet(noisy, t, context).sample.float(), noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    times.append(time.perf_counter() - start)
later = times[1:] or times
print(f"torch {torch.__version__} {size}x{size} batch 1 {'bf16 autocast' if BF16 else 'f32'}, {torch.get_num_threads()} threads: {sum(later) / len(later):.2f} s/step "
      f"(steps {' '.join(f'{x:.2f}' for x in times)}), peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")

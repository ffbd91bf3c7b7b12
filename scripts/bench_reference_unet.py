"""Side-by-side reference for `sdbench unet` (and the VAE decode and text encoder timings):
diffusers' UNet2DConditionModel with SD 1.5's configuration and random weights, f32, no_grad,
batch 2 (one CFG step), context [2, 77, 768]; median of the timed passes after one warm-up.
    .venv-ref/bin/python scripts/bench_reference_unet.py SIZE [PASSES] [THREADS] [--vae] [--text]
"""
import resource
import sys
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

args = [a for a in sys.argv[1:] if not a.startswith("--")]
size = int(args[0])
passes = int(args[1]) if len(args) > 1 else 3
torch.set_num_threads(int(args[2]) if len(args) > 2 else 2)
torch.manual_seed(0)


def median_time(fn):
    fn()
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], times


def report(what, fn):
    with torch.no_grad():
        median, times = median_time(fn)
    print(f"torch {torch.__version__} {what}, {torch.get_num_threads()} threads: {median:.2f} s "
          f"(passes {' '.join(f'{t:.2f}' for t in times)}), peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB",
          flush=True)


unet = UNet2DConditionModel(cross_attention_dim=768).eval()
x = torch.randn(2, 4, size // 8, size // 8)
context = torch.randn(2, 77, 768)
t = torch.tensor([500, 500])
report(f"UNet {size}x{size} batch 2 (s/step)", lambda: unet(x, t, context))
if "--vae" in sys.argv:
    del unet
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4).eval()
    z = torch.randn(1, 4, size // 8, size // 8)
    report(f"VAE decode {size}x{size} batch 1", lambda: vae.decode(z))
if "--text" in sys.argv:
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                        max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu")).eval()
    ids = torch.randint(0, 49407, (2, 77))
    report("text encoder 2x77 tokens", lambda: text(ids))

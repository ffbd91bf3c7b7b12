"""Side-by-side reference for `sdbench unet` (and the VAE decode and text encoder timings):
diffusers' UNet2DConditionModel with the configuration of SD 1.5 (default), SD 2.1 (--arch sd2)
or SDXL base (--arch sdxl, with its text_time added conditioning) and random weights, f32,
no_grad, batch 2 (one CFG step), context [2, 77, width]; median of the timed passes after one warm-up.
--bf16 runs the passes under torch.autocast("cpu", dtype=torch.bfloat16), the comparison #23 names
(fast only where the CPU has bf16 dot products: AVX512_BF16 or AMX).
    .venv-ref/bin/python scripts/bench_reference_unet.py SIZE [PASSES] [THREADS] [--arch=sd2|sdxl] [--vae] [--text] [--bf16]
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


BF16 = "--bf16" in sys.argv


def report(what, fn):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
        median, times = median_time(fn)
    what += ", bf16 autocast" if BF16 else ", f32"
    print(f"torch {torch.__version__} {what}, {torch.get_num_threads()} threads: {median:.2f} s "
          f"(passes {' '.join(f'{t:.2f}' for t in times)}), peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB",
          flush=True)


arch = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--arch=")), "sd15")
UNET_CONFIGS = {
    "sd15": dict(cross_attention_dim=768),
    "sd2": dict(cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True),
    "sdxl": dict(block_out_channels=(320, 640, 1280), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=[1, 2, 10],
                 attention_head_dim=[5, 10, 20], cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
                 addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816),
}
unet = UNet2DConditionModel(**UNET_CONFIGS[arch]).eval()
x = torch.randn(2, 4, size // 8, size // 8)
context = torch.randn(2, 77, unet.config.cross_attention_dim)
t = torch.tensor([500, 500])
added = {"text_embeds": torch.randn(2, 1280), "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, dtype=torch.float32)}
extra = {"added_cond_kwargs": added} if arch == "sdxl" else {}
report(f"{arch} UNet {size}x{size} batch 2 (s/step)", lambda: unet(x, t, context, **extra))
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

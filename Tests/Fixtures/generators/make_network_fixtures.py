#!/usr/bin/env python3
"""Makes Tests/ModelsTests/Fixtures/networks.json: reference forward passes of
the TINY SD-1.x-architecture model in Tests/FormatsTests/Fixtures/diffusers_tiny/
(CLIP text encoder, UNet, VAE) computed by transformers / diffusers themselves,
for the tests of sdshell's Swift network implementations.

Rerun (after scripts/setup_reference_env.sh and
Tests/Fixtures/generators/make_model_file_fixtures.py, which makes the diffusers_tiny folder):
    .venv-ref/bin/python Tests/Fixtures/generators/make_network_fixtures.py

How the reference is run
------------------------
* The three modules are loaded from the local folder (no hub access):
      CLIPTextModel.from_pretrained(folder, subfolder="text_encoder",
                                    attn_implementation="eager")
      UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
      AutoencoderKL.from_pretrained(folder, subfolder="vae")
  The weights on disk are float16; each module is widened with .float() (f16 ->
  f32 is exact) and everything runs in float32, eval(), torch.no_grad(), on
  the CPU with torch.set_num_threads(1) (deterministic).
* Attention: UNet and VAE use diffusers' plain AttnProcessor (explicit
  softmax(q k^T * scale) v via Attention.get_attention_scores, which uses
  torch.baddbmm with beta=0), set with set_attn_processor(AttnProcessor()), not
  the default AttnProcessor2_0 (SDPA). CLIP uses transformers' "eager"
  attention. "sdpa_max_abs_diff" records how far the SDPA / default paths are
  from the recorded values (informational; well under float32 test tolerances).
* Every input comes from a torch.Generator with a fixed seed (see "inputs").

What is recorded (every tensor is {"shape": [...], "data": [row-major float32
values as exact Python floats]} or, for ids, ints)
------------------------------------------------------------------------------
text_encoder:
  inputs.input_ids [2, 77] int: ids must be < vocab_size 1000, so the real
      BOS 49406 / EOS 49407 cannot be used. Sequence A = [0, 5, 17, 300, 999]
      then id 2 up to length 77; sequence B = [1, 42, 7, 7, 500, 998, 3, 250]
      then id 2 up to 77 (2 plays the role of the padding / EOS id here).
      attention_mask = None: CLIPTextModel applies its causal mask internally,
      and A1111 passes no padding mask.
  outputs.last_hidden_state [2, 77, 32]: after text_model.final_layer_norm.
  outputs.clip_skip_2 [2, 77, 32]: A1111's clip skip 2 =
      final_layer_norm(hidden_states[-2]) (hidden_states[-2] is the output of
      encoder layer 0 of 2, i.e. the output of the second-to-last layer).
  debug.hidden_states_{0,1,2} [2, 77, 32]: output_hidden_states=True tuple:
      [0] = token_embedding(ids) + position_embedding(arange(77)),
      [1] = after layer 0, [2] = after layer 1 (before final_layer_norm).
unet:
  inputs.x [2, 4, 8, 8] = randn(seed 1); inputs.t = [999.0, 500.0] (float32);
  inputs.encoder_hidden_states = text_encoder last_hidden_state above.
  outputs.sample [2, 4, 8, 8] = unet(x, t, encoder_hidden_states).sample
  debug (forward hooks in the same run):
      time_proj [2, 8] = unet.time_proj(t) (sinusoidal, flip_sin_to_cos: [cos|sin])
      time_embedding [2, 32] = linear_2(silu(linear_1(time_proj)))
      conv_in [2, 8, 8, 8]
      down_blocks.0 [2, 8, 4, 4] (after its downsampler), down_blocks.1 [2, 16, 4, 4]
      mid_block [2, 16, 4, 4]
      up_blocks.0 [2, 16, 8, 8] (after its upsampler), up_blocks.1 [2, 8, 8, 8]
      conv_norm_out [2, 8, 8, 8] (GroupNorm only; silu and conv_out follow)
vae:
  decode: inputs.z [1, 4, 8, 8] = randn(seed 2), passed to vae.decode(z)
      DIRECTLY (no 1/0.18215 scaling inside decode; in SD the caller divides
      the latents by scaling_factor 0.18215 beforehand).
      outputs.decoded [1, 3, 16, 16] = vae.decode(z).sample (no clamp)
      debug.post_quant_conv [1, 4, 8, 8], debug.decoder_mid_block [1, 16, 8, 8]
  encode: inputs.image [1, 3, 16, 16] = rand(seed 3) * 2 - 1
      outputs.moments [1, 8, 8, 8] = quant_conv(encoder(image))
        (channels 0..3 mean, 4..7 logvar)
      outputs.mean [1, 4, 8, 8] = latent_dist.mean
      outputs.logvar [1, 4, 8, 8] = clamp(moments[:, 4:], -30, 20)
      outputs.std [1, 4, 8, 8] = exp(0.5 * logvar)
      debug.encoder_mid_block [1, 16, 8, 8]
"config": the module hyperparameters read from the loaded modules (eps values,
head counts, activations, ...) that an independent implementation must match.
"""

import json
import math
import os
import sys

import torch

from fixture_support import ROOT  # noqa: E402  (the repository)
MODEL = os.path.join(ROOT, "Tests", "FormatsTests", "Fixtures", "diffusers_tiny")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "networks.json")
GENERATOR = "Tests/Fixtures/generators/make_network_fixtures.py"

SEQ_LEN = 77
PAD_ID = 2
SEQ_A = [0, 5, 17, 300, 999]
SEQ_B = [1, 42, 7, 7, 500, 998, 3, 250]
SEED_X, SEED_Z, SEED_IMG = 1, 2, 3
TIMESTEPS = [999.0, 500.0]


def encode(t):
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        assert t.dtype == torch.float32, t.dtype
        data = [float(v) for v in t.flatten().tolist()]
        assert all(math.isfinite(v) for v in data)
    else:
        data = [int(v) for v in t.flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def first(out):
    return out[0] if isinstance(out, tuple) else out


class Hooks:
    def __init__(self):
        self.values = {}
        self.handles = []

    def add(self, name, module):
        def hook(_m, _inp, out):
            self.values[name] = first(out).detach().clone()
        self.handles.append(module.register_forward_hook(hook))

    def remove(self):
        for h in self.handles:
            h.remove()


def norm_info(m):
    d = {"type": type(m).__name__, "eps": m.eps}
    if isinstance(m, torch.nn.GroupNorm):
        d.update(groups=m.num_groups, channels=m.num_channels, affine=m.affine)
    else:
        d.update(shape=list(m.normalized_shape), affine=m.elementwise_affine,
                 bias=m.bias is not None)
    return d


def norms(module):
    """Every GroupNorm / LayerNorm in module, grouped by (type, eps, affine)."""
    groups = {}
    for name, m in module.named_modules():
        if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            info = norm_info(m)
            key = json.dumps({k: info[k] for k in ("type", "eps")}, sort_keys=True)
            groups.setdefault(key, []).append(name)
    return [dict(json.loads(k), modules=v) for k, v in sorted(groups.items())]


def attn_info(m):
    d = {"heads": m.heads, "scale": m.scale, "inner_dim": m.inner_dim,
         "dim_head": m.inner_dim // m.heads,
         "is_cross_attention": m.is_cross_attention,
         "upcast_attention": m.upcast_attention, "upcast_softmax": m.upcast_softmax,
         "residual_connection": m.residual_connection,
         "rescale_output_factor": m.rescale_output_factor,
         "qkv_bias": m.to_q.bias is not None,
         "out_bias": m.to_out[0].bias is not None,
         "group_norm": None if m.group_norm is None else norm_info(m.group_norm),
         "spatial_norm": m.spatial_norm is not None,
         "norm_cross": m.norm_cross is not None,
         "processor": type(m.processor).__name__}
    return d


def conv_info(m):
    return {"in": m.in_channels, "out": m.out_channels, "kernel": list(m.kernel_size),
            "stride": list(m.stride), "padding": list(m.padding), "bias": m.bias is not None}


def unet_config(unet):
    from diffusers.models.attention_processor import Attention
    from diffusers.models.attention import BasicTransformerBlock, FeedForward, GEGLU
    from diffusers.models.resnet import ResnetBlock2D, Downsample2D, Upsample2D

    attns = {n: attn_info(m) for n, m in unet.named_modules() if isinstance(m, Attention)}
    blocks = {}
    for n, m in unet.named_modules():
        if isinstance(m, BasicTransformerBlock):
            ff = m.ff
            act = ff.net[0]
            blocks[n] = {"norm_type": m.norm_type, "only_cross_attention": m.only_cross_attention,
                         "pos_embed": m.pos_embed is not None,
                         "ff_act": type(act).__name__,
                         "ff_act_approximate": getattr(act, "approximate", None),
                         "ff_proj": [act.proj.in_features, act.proj.out_features],
                         "ff_out": [ff.net[2].in_features, ff.net[2].out_features]}
    transformers_ = {}
    for n, m in unet.named_modules():
        if type(m).__name__ == "Transformer2DModel":
            transformers_[n] = {"use_linear_projection": m.use_linear_projection,
                                "proj_in": type(m.proj_in).__name__,
                                "proj_out": type(m.proj_out).__name__,
                                "norm": norm_info(m.norm),
                                "num_layers": len(m.transformer_blocks)}
    resnets = {}
    for n, m in unet.named_modules():
        if isinstance(m, ResnetBlock2D):
            resnets[n] = {"in": m.in_channels, "out": m.out_channels,
                          "time_emb_proj": [m.time_emb_proj.in_features, m.time_emb_proj.out_features],
                          "time_embedding_norm": m.time_embedding_norm,
                          "nonlinearity": type(m.nonlinearity).__name__,
                          "conv_shortcut": None if m.conv_shortcut is None else conv_info(m.conv_shortcut),
                          "output_scale_factor": m.output_scale_factor,
                          "skip_time_act": m.skip_time_act, "up": m.up, "down": m.down,
                          "norm1_eps": m.norm1.eps, "norm2_eps": m.norm2.eps}
    samplers = {}
    for n, m in unet.named_modules():
        if isinstance(m, Downsample2D):
            samplers[n] = {"type": "Downsample2D", "use_conv": m.use_conv, "padding": m.padding,
                           "conv": conv_info(m.conv)}
        elif isinstance(m, Upsample2D):
            samplers[n] = {"type": "Upsample2D", "use_conv": m.use_conv,
                           "interpolate": m.interpolate, "mode": "nearest, scale_factor 2",
                           "conv": conv_info(m.conv)}
    te = unet.time_embedding
    return {
        "config": {k: v for k, v in dict(unet.config).items() if not k.startswith("_")},
        "time_proj": {"num_channels": unet.time_proj.num_channels,
                      "flip_sin_to_cos": unet.time_proj.flip_sin_to_cos,
                      "downscale_freq_shift": unet.time_proj.downscale_freq_shift,
                      "scale": unet.time_proj.scale, "max_period": 10000},
        "time_embedding": {"linear_1": [te.linear_1.in_features, te.linear_1.out_features],
                           "act": type(te.act).__name__,
                           "linear_2": [te.linear_2.in_features, te.linear_2.out_features],
                           "post_act": te.post_act is not None, "cond_proj": te.cond_proj is not None},
        "conv_in": conv_info(unet.conv_in), "conv_out": conv_info(unet.conv_out),
        "conv_act": type(unet.conv_act).__name__,
        "norms": norms(unet), "attentions": attns, "transformer_blocks": blocks,
        "transformer_2d": transformers_, "resnets": resnets, "samplers": samplers,
    }


def vae_config(vae):
    from diffusers.models.attention_processor import Attention
    from diffusers.models.resnet import ResnetBlock2D, Downsample2D, Upsample2D
    attns = {n: attn_info(m) for n, m in vae.named_modules() if isinstance(m, Attention)}
    resnets = {}
    for n, m in vae.named_modules():
        if isinstance(m, ResnetBlock2D):
            resnets[n] = {"in": m.in_channels, "out": m.out_channels,
                          "time_emb_proj": m.time_emb_proj is not None,
                          "nonlinearity": type(m.nonlinearity).__name__,
                          "conv_shortcut": None if m.conv_shortcut is None else conv_info(m.conv_shortcut),
                          "output_scale_factor": m.output_scale_factor,
                          "norm1_eps": m.norm1.eps, "norm2_eps": m.norm2.eps}
    samplers = {}
    for n, m in vae.named_modules():
        if isinstance(m, Downsample2D):
            samplers[n] = {"type": "Downsample2D", "use_conv": m.use_conv, "padding": m.padding,
                           "note": "padding 0: input is first padded F.pad(x, (0, 1, 0, 1)) (right/bottom only, zeros), then conv stride 2",
                           "conv": conv_info(m.conv)}
        elif isinstance(m, Upsample2D):
            samplers[n] = {"type": "Upsample2D", "use_conv": m.use_conv,
                           "interpolate": m.interpolate, "mode": "nearest, scale_factor 2",
                           "conv": conv_info(m.conv)}
    return {
        "config": {k: v for k, v in dict(vae.config).items() if not k.startswith("_")},
        "encoder": {"conv_in": conv_info(vae.encoder.conv_in), "conv_out": conv_info(vae.encoder.conv_out),
                    "double_z": vae.encoder.conv_out.out_channels == 2 * vae.config.latent_channels},
        "decoder": {"conv_in": conv_info(vae.decoder.conv_in), "conv_out": conv_info(vae.decoder.conv_out)},
        "quant_conv": conv_info(vae.quant_conv), "post_quant_conv": conv_info(vae.post_quant_conv),
        "norms": norms(vae), "attentions": attns, "resnets": resnets, "samplers": samplers,
        "latent_dist": "mean, logvar = chunk(moments, 2, dim=1); logvar = clamp(logvar, -30, 20); std = exp(0.5 * logvar)",
    }


def clip_config(te):
    tm = te.text_model
    c = te.config
    layer = tm.encoder.layers[0]
    return {
        "config": {k: getattr(c, k) for k in (
            "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "max_position_embeddings", "hidden_act",
            "layer_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id", "projection_dim")},
        "attn_implementation": c._attn_implementation,
        "attention": {"heads": layer.self_attn.num_heads, "head_dim": layer.self_attn.head_dim,
                      "scale": layer.self_attn.scale,
                      "qkv_bias": layer.self_attn.q_proj.bias is not None,
                      "out_bias": layer.self_attn.out_proj.bias is not None},
        "mlp": {"act": type(layer.mlp.activation_fn).__name__,
                "formula": "quick_gelu(x) = x * sigmoid(1.702 * x)",
                "fc1": [layer.mlp.fc1.in_features, layer.mlp.fc1.out_features],
                "fc2": [layer.mlp.fc2.in_features, layer.mlp.fc2.out_features]},
        "layer": "pre-LN: h = h + out_proj(attn(layer_norm1(h))); h = h + fc2(act(fc1(layer_norm2(h))))",
        "norms": norms(te),
        "position_ids": "arange(77) (buffer text_model.embeddings.position_ids), added to token embeddings",
        "causal_mask": "additive mask, -inf (dtype min) above the diagonal, applied inside CLIPTextModel; attention_mask None",
    }


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from transformers import CLIPTextModel
    from diffusers import UNet2DConditionModel, AutoencoderKL
    from diffusers.models.attention_processor import AttnProcessor
    import diffusers
    import transformers

    te = CLIPTextModel.from_pretrained(MODEL, subfolder="text_encoder",
                                       attn_implementation="eager", local_files_only=True)
    unet = UNet2DConditionModel.from_pretrained(MODEL, subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(MODEL, subfolder="vae", local_files_only=True)
    for m in (te, unet, vae):
        m.float().eval()
    # default processors (SDPA) first, for the informational comparison
    default_unet_proc = sorted({type(p).__name__ for p in unet.attn_processors.values()})
    default_vae_proc = sorted({type(p).__name__ for p in vae.attn_processors.values()})

    ids = torch.full((2, SEQ_LEN), PAD_ID, dtype=torch.long)
    ids[0, :len(SEQ_A)] = torch.tensor(SEQ_A)
    ids[1, :len(SEQ_B)] = torch.tensor(SEQ_B)
    x = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(SEED_X))
    t = torch.tensor(TIMESTEPS, dtype=torch.float32)
    z = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(SEED_Z))
    img = torch.rand((1, 3, 16, 16), generator=torch.Generator().manual_seed(SEED_IMG)) * 2 - 1

    with torch.no_grad():
        # ---- SDPA / default reference (informational) ----
        unet_sdpa = unet(x, t, encoder_hidden_states=te(ids).last_hidden_state).sample
        dec_sdpa = vae.decode(z).sample
        unet.set_attn_processor(AttnProcessor())
        vae.set_attn_processor(AttnProcessor())

        # ---- text encoder ----
        out = te(input_ids=ids, attention_mask=None, output_hidden_states=True)
        last = out.last_hidden_state
        hs = out.hidden_states
        assert len(hs) == te.config.num_hidden_layers + 1
        skip2 = te.text_model.final_layer_norm(hs[-2])
        assert torch.equal(te.text_model.final_layer_norm(hs[-1]), last)
        # the causal mask is applied internally: changing the last token leaves
        # every earlier position unchanged
        ids_x = ids.clone()
        ids_x[:, -1] = 123
        last_x = te(input_ids=ids_x).last_hidden_state
        assert torch.equal(last_x[:, :-1], last[:, :-1])
        assert not torch.equal(last_x[:, -1], last[:, -1])

        # ---- unet ----
        hooks = Hooks()
        names = ["time_proj", "time_embedding", "conv_in", "down_blocks.0", "down_blocks.1",
                 "mid_block", "up_blocks.0", "up_blocks.1", "conv_norm_out"]
        for n in names:
            hooks.add(n, unet.get_submodule(n))
        sample = unet(x, t, encoder_hidden_states=last).sample
        hooks.remove()
        unet_dbg = hooks.values
        assert set(unet_dbg) == set(names)
        # time_proj by the formula (ldm's timestep_embedding, [cos | sin])
        half = unet.time_proj.num_channels // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None] * freqs[None]
        assert torch.allclose(torch.cat([torch.cos(args), torch.sin(args)], -1),
                              unet_dbg["time_proj"], atol=0, rtol=0)
        sample2 = unet(x, t, encoder_hidden_states=last).sample
        assert torch.equal(sample, sample2), "not deterministic"

        # ---- vae ----
        hooks = Hooks()
        hooks.add("post_quant_conv", vae.post_quant_conv)
        hooks.add("decoder_mid_block", vae.decoder.mid_block)
        decoded = vae.decode(z).sample
        hooks.remove()
        dec_dbg = hooks.values
        hooks = Hooks()
        hooks.add("moments", vae.quant_conv)
        hooks.add("encoder_mid_block", vae.encoder.mid_block)
        dist = vae.encode(img).latent_dist
        hooks.remove()
        enc_dbg = hooks.values
        moments = enc_dbg.pop("moments")
        mean, logvar = torch.chunk(moments, 2, dim=1)
        logvar = torch.clamp(logvar, -30.0, 20.0)
        assert torch.equal(mean, dist.mean) and torch.equal(logvar, dist.logvar)
        assert torch.equal(torch.exp(0.5 * logvar), dist.std)

    doc = {
        "generator": GENERATOR,
        "torch": torch.__version__, "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "model": "Tests/FormatsTests/Fixtures/diffusers_tiny (f16 weights, run as float32)",
        "attention": {
            "unet": "AttnProcessor (set_attn_processor(AttnProcessor()); explicit softmax)",
            "vae": "AttnProcessor (set_attn_processor(AttnProcessor()); explicit softmax)",
            "text_encoder": "transformers eager attention",
            "default_processors": {"unet": default_unet_proc, "vae": default_vae_proc},
            "sdpa_max_abs_diff": {
                "unet_sample": float((unet_sdpa - sample).abs().max()),
                "vae_decoded": float((dec_sdpa - decoded).abs().max())},
        },
        "config": {"text_encoder": clip_config(te), "unet": unet_config(unet), "vae": vae_config(vae)},
        "text_encoder": {
            "inputs": {"input_ids": encode(ids), "attention_mask": None,
                       "seq_a_prefix": SEQ_A, "seq_b_prefix": SEQ_B, "pad_id": PAD_ID},
            "outputs": {"last_hidden_state": encode(last), "clip_skip_2": encode(skip2)},
            "debug": {"hidden_states_%d" % i: encode(h) for i, h in enumerate(hs)},
        },
        "unet": {
            "inputs": {"x": encode(x), "x_seed": SEED_X, "t": encode(t),
                       "encoder_hidden_states": "text_encoder.outputs.last_hidden_state"},
            "outputs": {"sample": encode(sample)},
            "debug": {n: encode(unet_dbg[n]) for n in names},
        },
        "vae": {
            "decode": {"inputs": {"z": encode(z), "z_seed": SEED_Z,
                                  "note": "passed to vae.decode directly; no 1/scaling_factor inside"},
                       "outputs": {"decoded": encode(decoded)},
                       "debug": {k: encode(v) for k, v in dec_dbg.items()}},
            "encode": {"inputs": {"image": encode(img), "image_seed": SEED_IMG,
                                  "note": "rand(seed) * 2 - 1"},
                       "outputs": {"moments": encode(moments), "mean": encode(dist.mean),
                                   "logvar": encode(dist.logvar), "std": encode(dist.std)},
                       "debug": {k: encode(v) for k, v in enc_dbg.items()}},
        },
    }
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    assert len(text) < 1_500_000, len(text)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, OUT)
    print("wrote %s (%d bytes)" % (os.path.relpath(OUT, ROOT), len(text)))
    print("sdpa diff", doc["attention"]["sdpa_max_abs_diff"], "default", default_unet_proc, default_vae_proc)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Prints the tensor and parameter counts of each family's full-size modules as diffusers and
transformers build them (on the meta device: no memory, no weights), the numbers
Tests/ModelsTests/FamilyLayoutTests.swift holds ExpectedWeights to. Writes nothing.
    .venv-ref/bin/python Tests/Fixtures/generators/reference_parameter_counts.py
"""
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection


def count(m):
    sd = {k: v for k, v in m.state_dict().items() if not k.endswith("position_ids")}
    return len(sd), sum(v.numel() for v in sd.values())


with torch.device("meta"):
    print("unet sd1", count(UNet2DConditionModel(cross_attention_dim=768)))
    print("unet sd2", count(UNet2DConditionModel(cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True)))
    print("unet sdxl", count(UNet2DConditionModel(
        block_out_channels=(320, 640, 1280), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=[1, 2, 10],
        attention_head_dim=[5, 10, 20], cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)))
    print("vae", count(AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                                     down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)))
    print("text clip-l", count(CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12))))
    print("text openclip-h (23 layers)", count(CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                                                                             num_attention_heads=16, hidden_act="gelu"))))
    print("text openclip-bigg", count(CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                                                                 num_attention_heads=20, hidden_act="gelu", projection_dim=1280))))

"""The project model's architecture: configs for sdref's AutoencoderKL, ClipTextModel and UNet2DConditionModel.

Sizes (full; fp16 bytes = 2 x parameters):
  VAE   2.14 M  f4, 64x64x3 <-> 16x16x4, block_out_channels [48, 96, 96], 1 resnet per encoder level
  text  5.20 M  CLIP text tower over the real 49408-token BPE vocabulary, width 96, 4 layers, 2 heads,
                77 positions (the token table alone is 49408 x 96 = 4.7 M parameters, so the width stays small)
  UNet 11.03 M  MobileDiffusion layout on 16x16x4 latents, v-prediction:
        level 0 (16x16,  96 ch): resnets only, 1 per down block (no transformer at the highest resolution)
        level 1 ( 8x8,  160 ch): 1 resnet + 1 cross-attention-only transformer (no self-attention), separable convs
        level 2 ( 4x4,  224 ch): 2 resnets, each with a full transformer (self + cross + ff), separable convs
        mid block: 2 full transformers; shared K/V projection; SwiGLU feed-forward, ff_mult 3; 32-wide heads
        attention_activation "softmax" for the teacher, "relu" after the fine-tune;
        time_cond_proj_dim 256 (the guidance-scale embedding) only in distilled students.
`tiny` shrinks every width for the CPU smoke runs; the structure (key set, options) stays the same.
"""
import copy

import torch
from torch import nn

from sdref import AutoencoderKLConfig, ClipTextConfig, UNet2DConditionConfig

GUIDANCE_EMBED_DIM = 256


def vae_config(tiny=False):
    return AutoencoderKLConfig(
        block_out_channels=[16, 32, 32] if tiny else [48, 96, 96],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=64,
        scaling_factor=1.0,  # replaced by 1/std of the latents after VAE training
    )


def text_config(tiny=False):
    return ClipTextConfig(
        vocab_size=49408,
        hidden_size=32 if tiny else 96,
        intermediate_size=64 if tiny else 384,
        projection_dim=32 if tiny else 96,
        num_hidden_layers=1 if tiny else 4,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
    )


def unet_config(tiny=False, attention_activation="softmax", guidance_embedding=False):
    channels = [32, 64, 64] if tiny else [96, 160, 224]
    return UNet2DConditionConfig(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        block_out_channels=channels,
        layers_per_block=[1, 1, 2],
        transformer_layers_per_block=[0, 1, 1],
        mid_block_transformer_layers=1 if tiny else 2,
        self_attention_per_block=[False, False, True],
        norm_num_groups=16 if tiny else 32,
        cross_attention_dim=text_config(tiny).hidden_size,
        attention_head_dim=[c // 32 for c in channels],  # heads (diffusers' naming quirk), 32 wide
        use_linear_projection=True,
        shared_kv_projection=True,
        attention_activation=attention_activation,
        ff_activation="swiglu",
        ff_mult=3,
        separable_conv_per_block=[False, True, True],
        time_cond_proj_dim=GUIDANCE_EMBED_DIM if guidance_embedding else None,
    )


def init_text_encoder(model):
    """CLIP's initialisation of the embeddings (token std 0.02, position std 0.01); PyTorch's N(0, 1) default
    would swamp the small transformer."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.01 if "position" in name else 0.02)
    return model


def with_activation(config, attention_activation):
    config = copy.deepcopy(config)
    config.attention_activation = attention_activation
    return config


def with_guidance_embedding(config):
    config = copy.deepcopy(config)
    config.time_cond_proj_dim = GUIDANCE_EMBED_DIM
    return config


def student_from_teacher(unet_cls, teacher_state, config):
    """A guidance-conditioned student initialised from a teacher's weights, its cond_proj zero so that it starts
    out as the teacher's conditional branch."""
    student = unet_cls(with_guidance_embedding(config))
    missing, unexpected = student.load_state_dict(teacher_state, strict=False)
    if unexpected or any(not k.startswith("time_embedding.cond_proj") for k in missing):
        raise ValueError(f"teacher/student key mismatch: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        student.time_embedding.cond_proj.weight.zero_()
    return student

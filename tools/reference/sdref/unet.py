"""diffusers `UNet2DConditionModel` (SD 1.x / 2.x structure) with the MobileDiffusion options of our config.

State-dict keys equal diffusers' keys: `conv_in`, `time_embedding.{linear_1,linear_2,cond_proj}`,
`down_blocks.{i}.{resnets,attentions,downsamplers}`, `mid_block.{resnets.0,attentions.0,resnets.1}`,
`up_blocks.{i}.{resnets,attentions,upsamplers}`, `conv_norm_out`, `conv_out`.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .config import UNet2DConditionConfig
from .attention import Attention
from .embeddings import TimestepEmbedding, guidance_scale_embedding, timestep_embedding
from .unet_blocks import DownBlock2D, TransformerOptions, UNetMidBlock2DCrossAttn, UpBlock2D


class UNet2DConditionModel(nn.Module):
    """The conditional denoiser: (noisy latents, timesteps, text context[, guidance embedding]) -> model output.

    Forward, numbered as in diffusers:
      1. time: sinusoidal embedding of the timesteps (dim block_out_channels[0]), plus cond_proj(timestep_cond)
         when time_cond_proj_dim is set, then linear_1 -> SiLU -> linear_2 (dim 4*block_out_channels[0]).
      2. pre-process: conv_in.
      3. down: each level's resnets (+ transformers), then a stride-2 downsample except at the last level; every
         output is kept as a skip connection (conv_in's output first).
      4. mid: resnet, transformer, resnet.
      5. up: levels in reverse; each resnet concatenates [hidden, skip] on channels, popping skips from the end;
         upsample x2 except at the last up block.
      6. post-process: GroupNorm -> SiLU -> conv_out.
    """

    def __init__(self, config: UNet2DConditionConfig):
        super().__init__()
        self.config = config
        channels = config.block_out_channels
        levels = config.levels
        temb_channels = config.time_embed_dim
        layers = config.layers_per_level()
        depths = config.transformer_layers_per_level()
        heads = config.heads_per_level()
        self_attention = config.self_attention_per_level()
        separable = config.separable_per_level()
        groups, eps = config.norm_num_groups, config.norm_eps
        transformer = TransformerOptions(config.cross_attention_dim, groups, config.use_linear_projection,
                                         config.shared_kv_projection, config.attention_activation,
                                         config.ff_activation, config.ff_mult)

        self.conv_in = nn.Conv2d(config.in_channels, channels[0], kernel_size=3, padding=1)
        self.time_embedding = TimestepEmbedding(channels[0], temb_channels, config.time_cond_proj_dim)

        self.down_blocks = nn.ModuleList()
        out_ch = channels[0]
        for i in range(levels):
            in_ch, out_ch = out_ch, channels[i]
            self.down_blocks.append(DownBlock2D(
                in_ch, out_ch, temb_channels, layers[i], depths[i], heads[i], self_attention[i],
                add_downsample=i < levels - 1, groups=groups, eps=eps, separable=separable[i],
                transformer=transformer))

        self.mid_block = UNetMidBlock2DCrossAttn(channels[-1], temb_channels, config.mid_transformer_layers(),
                                                 heads[-1], groups, eps, separable[-1], transformer)

        self.up_blocks = nn.ModuleList()
        out_ch = channels[-1]
        for i in range(levels):
            level = levels - 1 - i
            prev_ch, out_ch = out_ch, channels[level]
            in_ch = channels[max(level - 1, 0)]
            self.up_blocks.append(UpBlock2D(
                in_ch, prev_ch, out_ch, temb_channels, layers[level] + 1, depths[level], heads[level],
                self_attention[level], add_upsample=i < levels - 1, groups=groups, eps=eps,
                separable=separable[level], transformer=transformer))

        self.conv_norm_out = nn.GroupNorm(groups, channels[0], eps=eps)
        self.conv_out = nn.Conv2d(channels[0], config.out_channels, kernel_size=3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: Union[torch.Tensor, float, int],
                encoder_hidden_states: torch.Tensor, timestep_cond: Optional[torch.Tensor] = None) -> torch.Tensor:
        """sample [B, in_channels, H, W]; timestep: a number or [B] / [] tensor, fractional values allowed;
        encoder_hidden_states [B, T, cross_attention_dim]; timestep_cond [B, time_cond_proj_dim] (e.g.
        `guidance_scale_embedding(w, time_cond_proj_dim)`) or None. Returns [B, out_channels, H, W]."""
        config = self.config
        batch = sample.shape[0]
        embed_dtype = torch.float64 if sample.dtype == torch.float64 else torch.float32

        # 1. time
        timesteps = torch.as_tensor(timestep, device=sample.device)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(batch)  # [B]
        t_emb = timestep_embedding(timesteps, config.block_out_channels[0], config.flip_sin_to_cos,
                                   config.freq_shift, dtype=embed_dtype).to(sample.dtype)  # [B, C0]
        if timestep_cond is not None:
            timestep_cond = timestep_cond.to(sample.dtype)
        emb = self.time_embedding(t_emb, timestep_cond)  # [B, 4*C0]

        # 2. pre-process
        if config.center_input_sample:
            sample = 2.0 * sample - 1.0
        sample = self.conv_in(sample)  # [B, C0, H, W]

        # 3. down
        skips: List[torch.Tensor] = [sample]
        for block in self.down_blocks:
            sample, block_skips = block(sample, emb, encoder_hidden_states)  # [B, Ci, H/2^i', W/2^i']
            skips.extend(block_skips)

        # 4. mid
        sample = self.mid_block(sample, emb, encoder_hidden_states)  # [B, C_last, h, w]

        # 5. up
        for block in self.up_blocks:
            n = len(block.resnets)
            block_skips, skips = skips[-n:], skips[:-n]
            # Upsample to the size of the next block's skips: x2 when H, W are multiples of 2^(levels-1), and the
            # size diffusers forwards (`upsample_size`) otherwise.
            upsample_size = skips[-1].shape[2:] if len(block.upsamplers) > 0 else None
            sample = block(sample, block_skips, emb, encoder_hidden_states, upsample_size)  # [B, Ci, ., .]

        # 6. post-process
        sample = F.silu(self.conv_norm_out(sample))  # [B, C0, H, W]
        return self.conv_out(sample)  # [B, out_channels, H, W]

    def set_attention_activation(self, activation: str) -> None:
        """Switch every attention of this UNet to "softmax" or "relu" in place, keeping the weights (the
        MobileDiffusion recipe fine-tunes a softmax-trained model into ReLU attention)."""
        self.config = dataclasses.replace(self.config, attention_activation=activation)
        for module in self.modules():
            if isinstance(module, Attention):
                module.activation = activation

    @staticmethod
    def guidance_embedding(w: torch.Tensor, config: UNet2DConditionConfig, dtype: torch.dtype = torch.float32
                           ) -> torch.Tensor:
        """`timestep_cond` for a guidance-distilled UNet: guidance_scale_embedding(w, time_cond_proj_dim)."""
        if config.time_cond_proj_dim is None:
            raise ValueError("this UNet config has no time_cond_proj_dim (no guidance embedding input)")
        return guidance_scale_embedding(w, config.time_cond_proj_dim, dtype)


Unet2DConditionModel = UNet2DConditionModel

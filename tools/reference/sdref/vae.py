"""diffusers `AutoencoderKL` (the SD VAE): `Encoder`, `Decoder`, `quant_conv`, `post_quant_conv`.

All GroupNorms use eps 1e-6. The latent channel count is `config.latent_channels`; the spatial factor is
2^(levels-1). Scaling by `scaling_factor` is the caller's job: `decode` expects z already divided by it.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import merge_heads, scaled_dot_product_attention, split_heads
from .config import AutoencoderKLConfig
from .resnet import Downsample2D, ResnetBlock2D, Upsample2D

VAE_EPS = 1e-6


class AttentionBlock(nn.Module):
    """The VAE mid-block attention: diffusers `Attention` in its `_from_deprecated_attn_block` form, one head over
    all channels, with a GroupNorm in front and a residual connection:

        out = x + to_out.0(softmax(q k^T / sqrt(C)) v),  q, k, v = to_q/to_k/to_v(group_norm(x)) over H*W tokens

    Keys `group_norm`, `to_q`, `to_k`, `to_v`, `to_out.0` (all Linear with bias; LDM stores them as 1x1 convs)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=VAE_EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [B, C, H, W]
        b, c, h, w = x.shape
        hidden = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)  # [B, H*W, C]
        query = split_heads(self.to_q(hidden), 1)  # [B, 1, H*W, C]
        key = split_heads(self.to_k(hidden), 1)  # [B, 1, H*W, C]
        value = split_heads(self.to_v(hidden), 1)  # [B, 1, H*W, C]
        hidden = merge_heads(scaled_dot_product_attention(query, key, value))  # [B, H*W, C]
        hidden = self.to_out[0](hidden)  # [B, H*W, C]
        return x + hidden.transpose(1, 2).reshape(b, c, h, w)  # [B, C, H, W]


class UNetMidBlock2D(nn.Module):
    """diffusers `UNetMidBlock2D` as the VAE uses it: resnets.0 -> attentions.0 -> resnets.1 (no time embedding).
    `add_attention=False` (config `mid_block_add_attention`) leaves out the attention."""

    def __init__(self, channels: int, groups: int, add_attention: bool = True):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(channels, channels, None, groups, VAE_EPS) for _ in range(2)])
        self.attentions = nn.ModuleList([AttentionBlock(channels, groups)] if add_attention else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)  # [B, C, H, W]
        for attention in self.attentions:
            x = attention(x)  # [B, C, H, W]
        return self.resnets[1](x)  # [B, C, H, W]


class DownEncoderBlock2D(nn.Module):
    """diffusers `DownEncoderBlock2D`: keys `resnets.{j}`, `downsamplers.0.conv` (pad right/bottom, stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, groups: int, add_downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels if j == 0 else out_channels, out_channels, None, groups, VAE_EPS)
            for j in range(num_layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, padding=0)] if add_downsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)  # [B, Cout, H, W]
        for downsampler in self.downsamplers:
            x = downsampler(x)  # [B, Cout, H/2, W/2]
        return x


class UpDecoderBlock2D(nn.Module):
    """diffusers `UpDecoderBlock2D`: keys `resnets.{j}` (layers_per_block + 1 of them), `upsamplers.0.conv`."""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, groups: int, add_upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels if j == 0 else out_channels, out_channels, None, groups, VAE_EPS)
            for j in range(num_layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)] if add_upsample else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)  # [B, Cout, H, W]
        for upsampler in self.upsamplers:
            x = upsampler(x)  # [B, Cout, 2H, 2W]
        return x


class Encoder(nn.Module):
    """conv_in -> down_blocks -> mid_block -> conv_norm_out -> SiLU -> conv_out (2 * latent_channels: mean, logvar)."""

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__()
        channels, groups = config.block_out_channels, config.norm_num_groups
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList([
            DownEncoderBlock2D(channels[max(i - 1, 0)], channels[i], config.layers_per_block, groups,
                               add_downsample=i < len(channels) - 1)
            for i in range(len(channels))])
        self.mid_block = UNetMidBlock2D(channels[-1], groups, config.mid_block_add_attention)
        self.conv_norm_out = nn.GroupNorm(groups, channels[-1], eps=VAE_EPS)
        self.conv_out = nn.Conv2d(channels[-1], 2 * config.latent_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [B, in_channels, H, W]
        x = self.conv_in(x)  # [B, C0, H, W]
        for block in self.down_blocks:
            x = block(x)  # [B, Ci, H/2^i, W/2^i]
        x = self.mid_block(x)  # [B, C_last, h, w]
        return self.conv_out(F.silu(self.conv_norm_out(x)))  # [B, 2*latent, h, w]


class Decoder(nn.Module):
    """conv_in -> mid_block -> up_blocks (widths reversed) -> conv_norm_out -> SiLU -> conv_out."""

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__()
        channels, groups = config.block_out_channels, config.norm_num_groups
        reversed_channels = list(reversed(channels))
        self.conv_in = nn.Conv2d(config.latent_channels, channels[-1], kernel_size=3, padding=1)
        self.mid_block = UNetMidBlock2D(channels[-1], groups, config.mid_block_add_attention)
        self.up_blocks = nn.ModuleList([
            UpDecoderBlock2D(reversed_channels[max(i - 1, 0)], reversed_channels[i], config.layers_per_block + 1,
                             groups, add_upsample=i < len(channels) - 1)
            for i in range(len(channels))])
        self.conv_norm_out = nn.GroupNorm(groups, channels[0], eps=VAE_EPS)
        self.conv_out = nn.Conv2d(channels[0], config.out_channels, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # z [B, latent, h, w]
        x = self.conv_in(z)  # [B, C_last, h, w]
        x = self.mid_block(x)  # [B, C_last, h, w]
        for block in self.up_blocks:
            x = block(x)  # [B, Ci, ., .]
        return self.conv_out(F.silu(self.conv_norm_out(x)))  # [B, out_channels, H, W]


class AutoencoderKL(nn.Module):
    """Keys `encoder.*`, `quant_conv`, `post_quant_conv`, `decoder.*` (quant convs are 1x1, present unless the
    config's use_quant_conv / use_post_quant_conv are false)."""

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__()
        self.config = config
        latent = config.latent_channels
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, kernel_size=1) if config.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(latent, latent, kernel_size=1) if config.use_post_quant_conv else None

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """image [B, 3, H, W] in [-1, 1] -> (mean, logvar), each [B, latent, H/f, W/f]; logvar clamped to
        [-30, 20] as diffusers' DiagonalGaussianDistribution does. A sample is mean + exp(logvar/2) * noise."""
        moments = self.encoder(x)  # [B, 2*latent, h, w]
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)  # [B, 2*latent, h, w]
        mean, logvar = moments.chunk(2, dim=1)  # [B, latent, h, w] each
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, latent, h, w] (already divided by scaling_factor) -> image [B, 3, h*f, w*f], nominally [-1, 1]."""
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)  # [B, latent, h, w]
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mean (deterministic)."""
        mean, _ = self.encode(x)
        return self.decode(mean)

"""Convolutional building blocks shared by the UNet and the VAE: diffusers `ResnetBlock2D`, `Downsample2D`,
`Upsample2D`, and the depthwise-separable 3x3 convolution of MobileDiffusion."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (no bias) then pointwise 1x1 (ours, MobileDiffusion). Keys `depthwise.weight` [Cin, 1, 3, 3],
    `pointwise.weight` [Cout, Cin, 1, 1], `pointwise.bias` [Cout]. Stride 1, padding 1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))  # [B, Cout, H, W]


def conv3x3(in_channels: int, out_channels: int, separable: bool = False) -> nn.Module:
    """A 3x3 stride-1 padding-1 convolution: plain `nn.Conv2d`, or `SeparableConv2d` when `separable`."""
    if separable:
        return SeparableConv2d(in_channels, out_channels)
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ResnetBlock2D(nn.Module):
    """diffusers `ResnetBlock2D` (time_embedding_norm "default", output_scale_factor 1, SiLU):

        h = conv1(silu(norm1(x)))
        h = h + time_emb_proj(silu(temb))[:, :, None, None]      (only when temb_channels is given)
        h = conv2(silu(norm2(h)))
        out = conv_shortcut(x) + h                                (conv_shortcut: 1x1, only when Cin != Cout)

    Keys `norm1`, `conv1`, `time_emb_proj`, `norm2`, `conv2`, `conv_shortcut`. With `separable` (ours) conv1 and
    conv2 are `SeparableConv2d` (keys `conv1.depthwise.weight`, `conv1.pointwise.{weight,bias}`, ...).
    The UNet uses eps = norm_eps (1e-5); the VAE uses eps 1e-6 and no time embedding.
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: Optional[int], groups: int, eps: float,
                 separable: bool = False):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = conv3x3(in_channels, out_channels, separable)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels) if temb_channels is not None else None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = conv3x3(out_channels, out_channels, separable)
        self.conv_shortcut = (nn.Conv2d(in_channels, out_channels, kernel_size=1)
                              if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor, temb: Optional[torch.Tensor] = None) -> torch.Tensor:
        # x [B, Cin, H, W]; temb [B, Temb] or None
        h = self.conv1(F.silu(self.norm1(x)))  # [B, Cout, H, W]
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]  # [B, Cout, H, W]
        h = self.conv2(F.silu(self.norm2(h)))  # [B, Cout, H, W]
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)  # [B, Cout, H, W]
        return x + h  # [B, Cout, H, W]


class Downsample2D(nn.Module):
    """diffusers `Downsample2D` with a conv (key `conv`): 3x3 stride 2. `padding=1` (UNet) pads 1 on every side;
    `padding=0` (VAE encoder) pads (left 0, right 1, top 0, bottom 1) with zeros first, then convolves unpadded."""

    def __init__(self, channels: int, padding: int):
        super().__init__()
        if padding not in (0, 1):
            raise ValueError(f"Downsample2D padding must be 0 or 1, got {padding}")
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))  # [B, C, H+1, W+1]
        return self.conv(x)  # [B, C, ceil(H/2), ceil(W/2)]


class Upsample2D(nn.Module):
    """diffusers `Upsample2D` with a conv (key `conv`): nearest-neighbour x2 (or to `output_size`), then 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, output_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        if output_size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # [B, C, 2H, 2W]
        else:
            x = F.interpolate(x, size=tuple(output_size), mode="nearest")  # [B, C, *output_size]
        return self.conv(x)  # [B, C, H', W']

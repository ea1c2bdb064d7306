"""The UNet's down, mid and up blocks (diffusers `unet_2d_blocks.py`).

diffusers has DownBlock2D / CrossAttnDownBlock2D and UpBlock2D / CrossAttnUpBlock2D; here each pair is one class
whose `attentions` list is empty when `transformer_layers` is 0, which yields exactly the plain block's key set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .attention import Transformer2DModel
from .resnet import Downsample2D, ResnetBlock2D, Upsample2D


@dataclass(frozen=True)
class TransformerOptions:
    """What every Transformer2DModel of one UNet shares (from the UNet config)."""

    cross_attention_dim: int
    norm_num_groups: int
    use_linear_projection: bool
    shared_kv: bool
    attention_activation: str
    ff_activation: str
    ff_mult: int

    def build(self, channels: int, heads: int, num_layers: int, self_attention: bool) -> Transformer2DModel:
        return Transformer2DModel(heads, channels // heads, channels, num_layers, self.cross_attention_dim,
                                  self.norm_num_groups, self.use_linear_projection, self_attention, self.shared_kv,
                                  self.attention_activation, self.ff_activation, self.ff_mult)


class DownBlock2D(nn.Module):
    """diffusers `CrossAttnDownBlock2D` (transformer_layers > 0) or `DownBlock2D` (transformer_layers == 0).

    Keys `resnets.{j}`, `attentions.{j}`, `downsamplers.0.conv`. Returns the block output and the tensors it
    hands to the up path as skip connections: each resnet(+attention) output, then the downsampler output."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, num_layers: int,
                 transformer_layers: int, heads: int, self_attention: bool, add_downsample: bool, groups: int,
                 eps: float, separable: bool, transformer: TransformerOptions):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(in_channels if j == 0 else out_channels, out_channels, temb_channels, groups, eps, separable)
            for j in range(num_layers)])
        self.attentions = nn.ModuleList([
            transformer.build(out_channels, heads, transformer_layers, self_attention)
            for _ in range(num_layers if transformer_layers > 0 else 0)])
        self.downsamplers = nn.ModuleList([Downsample2D(out_channels, padding=1)] if add_downsample else [])

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        # hidden_states [B, Cin, H, W]; temb [B, Temb]; encoder_hidden_states [B, Tctx, Cctx]
        skips = []
        for j, resnet in enumerate(self.resnets):
            hidden_states = resnet(hidden_states, temb)  # [B, Cout, H, W]
            if len(self.attentions) > 0:
                hidden_states = self.attentions[j](hidden_states, encoder_hidden_states)  # [B, Cout, H, W]
            skips.append(hidden_states)
        for downsampler in self.downsamplers:
            hidden_states = downsampler(hidden_states)  # [B, Cout, H/2, W/2]
            skips.append(hidden_states)
        return hidden_states, skips


class UNetMidBlock2DCrossAttn(nn.Module):
    """diffusers `UNetMidBlock2DCrossAttn` (num_layers 1): resnets.0 -> attentions.0 -> resnets.1.
    Its transformer always has self-attention."""

    def __init__(self, channels: int, temb_channels: int, transformer_layers: int, heads: int, groups: int,
                 eps: float, separable: bool, transformer: TransformerOptions):
        super().__init__()
        self.resnets = nn.ModuleList([
            ResnetBlock2D(channels, channels, temb_channels, groups, eps, separable) for _ in range(2)])
        self.attentions = nn.ModuleList([transformer.build(channels, heads, transformer_layers, True)])

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        # hidden_states [B, C, H, W]
        hidden_states = self.resnets[0](hidden_states, temb)  # [B, C, H, W]
        hidden_states = self.attentions[0](hidden_states, encoder_hidden_states)  # [B, C, H, W]
        return self.resnets[1](hidden_states, temb)  # [B, C, H, W]


class UpBlock2D(nn.Module):
    """diffusers `CrossAttnUpBlock2D` (transformer_layers > 0) or `UpBlock2D` (transformer_layers == 0).

    Resnet j takes cat([hidden, skip], dim=1) where skip is popped from the END of the skip list; its input
    channels are (prev_output_channels if j == 0 else out_channels) + (in_channels if j is the last resnet else
    out_channels), as in diffusers. Keys `resnets.{j}`, `attentions.{j}`, `upsamplers.0.conv`."""

    def __init__(self, in_channels: int, prev_output_channels: int, out_channels: int, temb_channels: int,
                 num_layers: int, transformer_layers: int, heads: int, self_attention: bool, add_upsample: bool,
                 groups: int, eps: float, separable: bool, transformer: TransformerOptions):
        super().__init__()
        resnets = []
        for j in range(num_layers):
            skip_channels = in_channels if j == num_layers - 1 else out_channels
            resnet_in_channels = prev_output_channels if j == 0 else out_channels
            resnets.append(ResnetBlock2D(resnet_in_channels + skip_channels, out_channels, temb_channels, groups, eps,
                                         separable))
        self.resnets = nn.ModuleList(resnets)
        self.attentions = nn.ModuleList([
            transformer.build(out_channels, heads, transformer_layers, self_attention)
            for _ in range(num_layers if transformer_layers > 0 else 0)])
        self.upsamplers = nn.ModuleList([Upsample2D(out_channels)] if add_upsample else [])

    def forward(self, hidden_states: torch.Tensor, skips: Sequence[torch.Tensor], temb: torch.Tensor,
                encoder_hidden_states: torch.Tensor, upsample_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        # hidden_states [B, Cprev, H, W]; skips: this block's len(resnets) skip tensors, consumed last-first
        for j, resnet in enumerate(self.resnets):
            skip = skips[len(skips) - 1 - j]  # [B, Cskip, H, W]
            hidden_states = torch.cat([hidden_states, skip], dim=1)  # [B, Cprev+Cskip, H, W]
            hidden_states = resnet(hidden_states, temb)  # [B, Cout, H, W]
            if len(self.attentions) > 0:
                hidden_states = self.attentions[j](hidden_states, encoder_hidden_states)  # [B, Cout, H, W]
        for upsampler in self.upsamplers:
            hidden_states = upsampler(hidden_states, upsample_size)  # [B, Cout, 2H, 2W]
        return hidden_states

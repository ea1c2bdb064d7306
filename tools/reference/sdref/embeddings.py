"""Timestep and guidance-scale embeddings (diffusers `get_timestep_embedding`, `TimestepEmbedding`, and the
LCM pipelines' `get_guidance_scale_embedding`)."""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int, flip_sin_to_cos: bool = True, freq_shift: float = 0.0,
                       max_period: float = 10000.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps [B] -> [B, dim].

        half = dim // 2
        freq[i] = exp(-ln(max_period) * i / (half - freq_shift)),  i = 0..half-1
        emb = [sin(t * freq), cos(t * freq)]      ([cos, sin] when flip_sin_to_cos; SD: flip, shift 0)
        an odd dim gets one zero column at the end.

    Computed in `dtype`: float32 as in diffusers; the float64 reference passes float64."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=dtype, device=timesteps.device) / (half - freq_shift)
    args = timesteps.to(dtype)[:, None] * torch.exp(exponent)[None, :]  # [B, half]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)  # [B, 2*half]
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)  # [B, 2*half]
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))  # [B, dim]
    return emb


def guidance_scale_embedding(w: torch.Tensor, dim: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The LCM-style guidance-scale embedding that feeds `time_embedding.cond_proj` (diffusers
    `get_guidance_scale_embedding`): w [B] -> [B, dim].

        w' = 1000 * w
        half = dim // 2
        freq[i] = exp(-ln(10000) * i / (half - 1)),  i = 0..half-1
        emb = [sin(w' * freq), cos(w' * freq)]     (sin first, no flip), an odd dim gets one zero column.

    Which value of the guidance scale the caller passes as `w` (diffusers' LCM pipeline passes guidance_scale - 1)
    is a property of the trained model and is recorded with it. Computed in `dtype` (diffusers: float32)."""
    half = dim // 2
    w = w.to(dtype) * 1000.0
    freqs = torch.exp(torch.arange(half, dtype=dtype, device=w.device) * -(math.log(10000.0) / (half - 1)))
    args = w[:, None] * freqs[None, :]  # [B, half]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # [B, 2*half]
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))  # [B, dim]
    return emb


class TimestepEmbedding(nn.Module):
    """diffusers `TimestepEmbedding`: keys `linear_1`, `linear_2`, and `cond_proj` (Linear, no bias) when
    `cond_proj_dim` is set:  linear_2(silu(linear_1(sample + cond_proj(condition))))."""

    def __init__(self, in_channels: int, time_embed_dim: int, cond_proj_dim: Optional[int] = None):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, time_embed_dim)
        self.linear_2 = nn.Linear(time_embed_dim, time_embed_dim)
        self.cond_proj = nn.Linear(cond_proj_dim, in_channels, bias=False) if cond_proj_dim is not None else None

    def forward(self, sample: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        # sample [B, in_channels]; condition [B, cond_proj_dim] or None
        if condition is not None:
            if self.cond_proj is None:
                raise ValueError("a guidance condition was given but the model has no time_cond_proj_dim")
            sample = sample + self.cond_proj(condition)  # [B, in_channels]
        return self.linear_2(F.silu(self.linear_1(sample)))  # [B, time_embed_dim]

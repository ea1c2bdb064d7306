"""Attention: the scaled-dot-product core, diffusers' `Attention` module, and the feed-forward of a transformer block.

Two attention activations:

- "softmax": out = softmax(Q K^T * scale) V, scale = 1/sqrt(head_dim).
- "relu" (MobileDiffusion): out = (relu(Q K^T * scale) / Tk) V, where Tk is the number of keys. This is
  sequence-length-normalised ReLU attention. The MobileDiffusion paper replaces softmax by ReLU; whether and how
  it normalises is unconfirmed, so this package fixes the definition above (division by Tk keeps the output's
  scale independent of the sequence length, the standard choice in the ReLU-attention literature).

The softmax core uses `torch.nn.functional.scaled_dot_product_attention` when this torch has it (2.x), unless
`reference_mode()` is active; the reference path is plain math (matmul, softmax, matmul) in the input dtype.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
_reference = False


@contextlib.contextmanager
def reference_mode(enabled: bool = True) -> Iterator[None]:
    """Within this context every attention uses plain math instead of the fused PyTorch kernel."""
    global _reference
    previous, _reference = _reference, enabled
    try:
        yield
    finally:
        _reference = previous


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 activation: str = "softmax", causal: bool = False) -> torch.Tensor:
    """query [B, heads, Tq, d], key/value [B, heads, Tk, d] -> [B, heads, Tq, d].

    `causal` masks key positions after the query position (softmax only)."""
    if activation == "softmax" and _HAS_SDPA and not _reference:
        return F.scaled_dot_product_attention(query, key, value, is_causal=causal)
    scale = 1.0 / math.sqrt(query.shape[-1])
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale  # [B, heads, Tq, Tk]
    if activation == "softmax":
        if causal:
            tq, tk = scores.shape[-2], scores.shape[-1]
            mask = torch.ones(tq, tk, dtype=torch.bool, device=scores.device).triu(1)  # [Tq, Tk]
            scores = scores.masked_fill(mask, float("-inf"))
        weights = scores.softmax(dim=-1)  # [B, heads, Tq, Tk]
    elif activation == "relu":
        if causal:
            raise ValueError("causal ReLU attention is not defined in this package")
        weights = F.relu(scores) / key.shape[-2]  # [B, heads, Tq, Tk]
    else:
        raise ValueError(f"unknown attention activation {activation!r} (expected 'softmax' or 'relu')")
    return torch.matmul(weights, value)  # [B, heads, Tq, d]


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, T, heads*d] -> [B, heads, T, d]"""
    b, t, c = x.shape
    return x.reshape(b, t, heads, c // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, T, d] -> [B, T, heads*d]"""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class Attention(nn.Module):
    """diffusers `Attention` as used by the UNet's transformer blocks (keys `to_q`, `to_k`, `to_v`, `to_out.0`).

    Self-attention when `encoder_hidden_states` is None, cross-attention otherwise. `shared_kv` (ours,
    MobileDiffusion) replaces `to_k` and `to_v` by one projection `to_kv`, so K = V.
    """

    def __init__(self, query_dim: int, heads: int, dim_head: int, cross_attention_dim: Optional[int] = None,
                 shared_kv: bool = False, activation: str = "softmax", bias: bool = False):
        super().__init__()
        inner_dim = heads * dim_head
        kv_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.heads = heads
        self.shared_kv = shared_kv
        self.activation = activation
        self.to_q = nn.Linear(query_dim, inner_dim, bias=bias)
        if shared_kv:
            self.to_kv = nn.Linear(kv_dim, inner_dim, bias=bias)
        else:
            self.to_k = nn.Linear(kv_dim, inner_dim, bias=bias)
            self.to_v = nn.Linear(kv_dim, inner_dim, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner_dim, query_dim)])

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: Optional[torch.Tensor] = None) -> torch.Tensor:
        # hidden_states [B, Tq, C]; encoder_hidden_states [B, Tk, Ckv] or None
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query = split_heads(self.to_q(hidden_states), self.heads)  # [B, heads, Tq, d]
        if self.shared_kv:
            key = split_heads(self.to_kv(context), self.heads)  # [B, heads, Tk, d]
            value = key
        else:
            key = split_heads(self.to_k(context), self.heads)  # [B, heads, Tk, d]
            value = split_heads(self.to_v(context), self.heads)  # [B, heads, Tk, d]
        out = scaled_dot_product_attention(query, key, value, self.activation)  # [B, heads, Tq, d]
        return self.to_out[0](merge_heads(out))  # [B, Tq, C]


class GatedProjection(nn.Module):
    """diffusers `GEGLU` (gate activation exact-erf GELU) or SwiGLU (gate activation SiLU): key `proj`.

    proj maps dim_in -> 2*dim_out; the FIRST half is the value, the SECOND half the gate (diffusers:
    `hidden_states, gate = self.proj(x).chunk(2, dim=-1)`; out = hidden_states * act(gate))."""

    def __init__(self, dim_in: int, dim_out: int, activation: str = "geglu"):
        super().__init__()
        if activation not in ("geglu", "swiglu"):
            raise ValueError(f"unknown feed-forward activation {activation!r} (expected 'geglu' or 'swiglu')")
        self.activation = activation
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)  # [B, T, dim_out] each
        gate = F.gelu(gate) if self.activation == "geglu" else F.silu(gate)
        return hidden * gate  # [B, T, dim_out]


class FeedForward(nn.Module):
    """diffusers `FeedForward`: keys `net.0.proj` (gated projection) and `net.2` (output Linear).

    inner_dim = mult * dim (SD: 4; MobileDiffusion's "expansion 6 counting the gate" is mult 3)."""

    def __init__(self, dim: int, mult: int = 4, activation: str = "geglu"):
        super().__init__()
        inner_dim = dim * mult
        # net.1 is a Dropout in diffusers; Identity keeps the checkpoint index of the output projection.
        self.net = nn.ModuleList([GatedProjection(dim, inner_dim, activation), nn.Identity(), nn.Linear(inner_dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.net:
            x = module(x)
        return x  # [B, T, dim]


class BasicTransformerBlock(nn.Module):
    """diffusers `BasicTransformerBlock` (layer_norm variant, eps 1e-5):
    x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x)).

    `self_attention=False` (ours, MobileDiffusion cross-attention-only block) removes norm1/attn1; the remaining
    keys keep their names (norm2, attn2, norm3, ff)."""

    def __init__(self, dim: int, heads: int, dim_head: int, cross_attention_dim: int, self_attention: bool = True,
                 shared_kv: bool = False, attention_activation: str = "softmax", ff_activation: str = "geglu",
                 ff_mult: int = 4):
        super().__init__()
        self.self_attention = self_attention
        if self_attention:
            self.norm1 = nn.LayerNorm(dim, eps=1e-5)
            self.attn1 = Attention(dim, heads, dim_head, None, shared_kv, attention_activation)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.attn2 = Attention(dim, heads, dim_head, cross_attention_dim, shared_kv, attention_activation)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5)
        self.ff = FeedForward(dim, ff_mult, ff_activation)

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        # hidden_states [B, T, C]; encoder_hidden_states [B, Tctx, Cctx]
        if self.self_attention:
            hidden_states = self.attn1(self.norm1(hidden_states)) + hidden_states  # [B, T, C]
        hidden_states = self.attn2(self.norm2(hidden_states), encoder_hidden_states) + hidden_states  # [B, T, C]
        hidden_states = self.ff(self.norm3(hidden_states)) + hidden_states  # [B, T, C]
        return hidden_states


class Transformer2DModel(nn.Module):
    """diffusers `Transformer2DModel` (continuous input): GroupNorm(eps 1e-6) -> proj_in (1x1 conv, or Linear when
    `use_linear_projection`) -> BasicTransformerBlocks -> proj_out -> + residual. Keys `norm`, `proj_in`,
    `transformer_blocks.{i}`, `proj_out`."""

    def __init__(self, heads: int, dim_head: int, in_channels: int, num_layers: int, cross_attention_dim: int,
                 norm_num_groups: int, use_linear_projection: bool = False, self_attention: bool = True,
                 shared_kv: bool = False, attention_activation: str = "softmax", ff_activation: str = "geglu",
                 ff_mult: int = 4):
        super().__init__()
        inner_dim = heads * dim_head
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(norm_num_groups, in_channels, eps=1e-6)
        if use_linear_projection:
            self.proj_in = nn.Linear(in_channels, inner_dim)
            self.proj_out = nn.Linear(inner_dim, in_channels)
        else:
            self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1)
            self.proj_out = nn.Conv2d(inner_dim, in_channels, kernel_size=1)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner_dim, heads, dim_head, cross_attention_dim, self_attention, shared_kv,
                                  attention_activation, ff_activation, ff_mult)
            for _ in range(num_layers)])

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        # hidden_states [B, C, H, W]; encoder_hidden_states [B, Tctx, Cctx]
        b, _, h, w = hidden_states.shape
        residual = hidden_states
        hidden_states = self.norm(hidden_states)  # [B, C, H, W]
        if self.use_linear_projection:
            hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(b, h * w, -1)  # [B, H*W, C]
            hidden_states = self.proj_in(hidden_states)  # [B, H*W, inner]
        else:
            hidden_states = self.proj_in(hidden_states)  # [B, inner, H, W]
            hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(b, h * w, -1)  # [B, H*W, inner]
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, encoder_hidden_states)  # [B, H*W, inner]
        if self.use_linear_projection:
            hidden_states = self.proj_out(hidden_states)  # [B, H*W, C]
            hidden_states = hidden_states.reshape(b, h, w, -1).permute(0, 3, 1, 2)  # [B, C, H, W]
        else:
            hidden_states = hidden_states.reshape(b, h, w, -1).permute(0, 3, 1, 2)  # [B, inner, H, W]
            hidden_states = self.proj_out(hidden_states)  # [B, C, H, W]
        return hidden_states + residual  # [B, C, H, W]

"""transformers `CLIPTextModel`: the text tower of CLIP (SD 1.x uses ViT-L/14's).

Keys: `text_model.embeddings.token_embedding.weight`, `text_model.embeddings.position_embedding.weight`,
`text_model.encoder.layers.{i}.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}`,
`text_model.final_layer_norm`. The `position_ids` buffer that some checkpoints carry is not part of the
state dict (it is always arange(max_position_embeddings)).
"""

from __future__ import annotations

from typing import List, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import merge_heads, scaled_dot_product_attention, split_heads
from .config import ClipTextConfig


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(1.702 x) (OpenAI CLIP's activation)."""
    return x * torch.sigmoid(1.702 * x)


class ClipTextOutput(NamedTuple):
    last_hidden_state: torch.Tensor  # [B, T, C], after final_layer_norm
    pooler_output: torch.Tensor  # [B, C], last_hidden_state at the end token
    hidden_states: List[torch.Tensor]  # num_hidden_layers + 1 tensors [B, T, C]: embeddings, then each layer's output


class ClipAttention(nn.Module):
    """Causal multi-head self-attention with biased projections `q_proj`, `k_proj`, `v_proj`, `out_proj`."""

    def __init__(self, config: ClipTextConfig):
        super().__init__()
        dim = config.hidden_size
        self.heads = config.num_attention_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [B, T, C]
        query = split_heads(self.q_proj(x), self.heads)  # [B, heads, T, d]
        key = split_heads(self.k_proj(x), self.heads)  # [B, heads, T, d]
        value = split_heads(self.v_proj(x), self.heads)  # [B, heads, T, d]
        out = scaled_dot_product_attention(query, key, value, causal=True)  # [B, heads, T, d]
        return self.out_proj(merge_heads(out))  # [B, T, C]


class ClipMlp(nn.Module):
    """fc1 -> activation (quick_gelu or exact gelu) -> fc2."""

    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.quick = config.hidden_act == "quick_gelu"
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # [B, T, intermediate]
        h = quick_gelu(h) if self.quick else F.gelu(h)
        return self.fc2(h)  # [B, T, C]


class ClipEncoderLayer(nn.Module):
    """Pre-LN transformer layer: x += self_attn(layer_norm1(x)); x += mlp(layer_norm2(x))."""

    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = ClipAttention(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ClipMlp(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))  # [B, T, C]
        return x + self.mlp(self.layer_norm2(x))  # [B, T, C]


class ClipTextEmbeddings(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # input_ids [B, T] int64
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # [T]
        return self.token_embedding(input_ids) + self.position_embedding(positions)[None]  # [B, T, C]


class ClipEncoder(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.layers = nn.ModuleList([ClipEncoderLayer(config) for _ in range(config.num_hidden_layers)])


class ClipTextTransformer(nn.Module):
    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.embeddings = ClipTextEmbeddings(config)
        self.encoder = ClipEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class ClipTextModel(nn.Module):
    """Token ids [B, T] (T <= max_position_embeddings; SD: 77, no attention mask) -> `ClipTextOutput`.

    The pooled output takes the last hidden state at the position of the highest token id (the end token
    49407 in CLIP's vocabulary; transformers' rule for configs with eos_token_id 2, as SD 1.x's). For "CLIP skip"
    N > 1, A1111 applies final_layer_norm to hidden_states[-N]."""

    def __init__(self, config: ClipTextConfig):
        super().__init__()
        self.config = config
        self.text_model = ClipTextTransformer(config)

    def forward(self, input_ids: torch.Tensor) -> ClipTextOutput:
        tm = self.text_model
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"{input_ids.shape[1]} tokens exceed max_position_embeddings "
                             f"{self.config.max_position_embeddings}")
        hidden = tm.embeddings(input_ids)  # [B, T, C]
        hidden_states = [hidden]
        for layer in tm.encoder.layers:
            hidden = layer(hidden)  # [B, T, C]
            hidden_states.append(hidden)
        last = tm.final_layer_norm(hidden)  # [B, T, C]
        eos_positions = input_ids.argmax(dim=-1)  # [B]
        pooled = last[torch.arange(last.shape[0], device=last.device), eos_positions]  # [B, C]
        return ClipTextOutput(last, pooled, hidden_states)

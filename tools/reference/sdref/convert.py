"""Key mapping between diffusers / transformers names and the original single-file LDM checkpoint (SD 1.x).

Single-file prefixes: UNet `model.diffusion_model.`, text encoder `cond_stage_model.transformer.` (then the HF
names `text_model.*`), VAE `first_stage_model.`.

UNet (L_b = layers of level b; SD: 2 everywhere):
  conv_in                              <-> input_blocks.0.0
  time_embedding.linear_1 / linear_2   <-> time_embed.0 / time_embed.2
  down_blocks.b.resnets.j              <-> input_blocks.(s_b + j).0          s_b = 1 + sum_{k<b} (L_k + 1)
  down_blocks.b.attentions.j           <-> input_blocks.(s_b + j).1
  down_blocks.b.downsamplers.0.conv    <-> input_blocks.(s_b + L_b).0.op
  mid_block.resnets.0 / attentions.0 / resnets.1 <-> middle_block.0 / .1 / .2
  up_blocks.u.resnets.j                <-> output_blocks.(t_u + j).0         t_u = sum_{k<u} (L_{levels-1-k} + 2)
  up_blocks.u.attentions.j             <-> output_blocks.(t_u + j).1
  up_blocks.u.upsamplers.0.conv        <-> output_blocks.(t_u + L_level).{2 with attention, else 1}.conv
                                           (level = levels-1-u: the upsampler sits in the block's last entry)
  conv_norm_out / conv_out             <-> out.0 / out.2
  inside resnets: norm1 in_layers.0, conv1 in_layers.2, time_emb_proj emb_layers.1, norm2 out_layers.0,
  conv2 out_layers.3, conv_shortcut skip_connection. Transformer internals keep their names.

VAE (n = number of levels):
  encoder.down_blocks.i.resnets.j / downsamplers.0.conv <-> encoder.down.i.block.j / downsample.conv
  decoder.up_blocks.i.resnets.j / upsamplers.0.conv     <-> decoder.up.(n-1-i).block.j / upsample.conv  (REVERSED)
  *.mid_block.resnets.0 / resnets.1                     <-> *.mid.block_1 / block_2
  *.mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0} <-> *.mid.attn_1.{norm,q,k,v,proj_out}
      (LDM stores q, k, v, proj_out weights as 1x1 convs [C, C, 1, 1]; diffusers as Linear [C, C])
  *.conv_norm_out <-> *.norm_out;  inside resnets conv_shortcut <-> nin_shortcut; other names equal.

Models with MobileDiffusion options or a guidance embedding have no LDM counterpart; `unet_key_to_ldm` refuses
`time_embedding.cond_proj`.
"""

from __future__ import annotations

import re
from typing import Dict, List, Mapping, Tuple

import numpy as np
import torch

from .config import AutoencoderKLConfig, UNet2DConditionConfig

UNET_PREFIX = "model.diffusion_model."
TEXT_PREFIX = "cond_stage_model.transformer."
VAE_PREFIX = "first_stage_model."
POSITION_IDS_KEY = TEXT_PREFIX + "text_model.embeddings.position_ids"

_RESNET_TO_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                  "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_RESNET_FROM_LDM = {v: k for k, v in _RESNET_TO_LDM.items()}
_VAE_ATTN_TO_LDM = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_VAE_ATTN_FROM_LDM = {v: k for k, v in _VAE_ATTN_TO_LDM.items()}
_VAE_RESNET_TO_LDM = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2",
                      "conv_shortcut": "nin_shortcut"}
_VAE_RESNET_FROM_LDM = {v: k for k, v in _VAE_RESNET_TO_LDM.items()}


def _rename_head(rest: str, table: Mapping[str, str], key: str) -> str:
    """Rename the leading module path of `rest` (e.g. 'norm1.weight') by `table`."""
    for old, new in table.items():
        if rest.startswith(old + "."):
            return new + rest[len(old):]
    raise ValueError(f"unknown checkpoint key {key!r}")


class _UNetLayout:
    """Flat LDM block indices of each diffusers down/up block for one config."""

    def __init__(self, config: UNet2DConditionConfig):
        layers = config.layers_per_level()
        depths = config.transformer_layers_per_level()
        levels = config.levels
        self.down_start: List[int] = []
        index = 1
        for b in range(levels):
            self.down_start.append(index)
            index += layers[b] + 1
        self.down_layers = layers
        self.up_start: List[int] = []
        self.up_layers: List[int] = []  # resnets per up block
        self.up_has_attention: List[bool] = []
        index = 0
        for u in range(levels):
            level = levels - 1 - u
            self.up_start.append(index)
            self.up_layers.append(layers[level] + 1)
            self.up_has_attention.append(depths[level] > 0)
            index += layers[level] + 1
        self.levels = levels
        # reverse lookups
        self.input_block: Dict[int, Tuple[str, int, int]] = {}  # index -> ("resnet"|"down", b, j)
        for b in range(levels):
            for j in range(layers[b]):
                self.input_block[self.down_start[b] + j] = ("layer", b, j)
            if b < levels - 1:
                self.input_block[self.down_start[b] + layers[b]] = ("down", b, 0)
        self.output_block: Dict[int, Tuple[int, int]] = {}  # index -> (u, j)
        for u in range(levels):
            for j in range(self.up_layers[u]):
                self.output_block[self.up_start[u] + j] = (u, j)


def unet_key_to_ldm(key: str, config: UNet2DConditionConfig) -> str:
    """diffusers UNet key -> LDM key without the `model.diffusion_model.` prefix."""
    layout = _UNetLayout(config)
    simple = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
              "time_embedding.linear_2.": "time_embed.2.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
              "mid_block.attentions.0.": "middle_block.1."}
    for old, new in simple.items():
        if key.startswith(old):
            return new + key[len(old):]
    m = re.fullmatch(r"mid_block\.resnets\.([01])\.(.+)", key)
    if m:
        return f"middle_block.{2 * int(m[1])}." + _rename_head(m[2], _RESNET_TO_LDM, key)
    m = re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if m and int(m[1]) < layout.levels and int(m[3]) < layout.down_layers[int(m[1])]:
        index = layout.down_start[int(m[1])] + int(m[3])
        if m[2] == "resnets":
            return f"input_blocks.{index}.0." + _rename_head(m[4], _RESNET_TO_LDM, key)
        return f"input_blocks.{index}.1.{m[4]}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key)
    if m and int(m[1]) < layout.levels - 1:
        b = int(m[1])
        return f"input_blocks.{layout.down_start[b] + layout.down_layers[b]}.0.op.{m[2]}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if m and int(m[1]) < layout.levels and int(m[3]) < layout.up_layers[int(m[1])]:
        index = layout.up_start[int(m[1])] + int(m[3])
        if m[2] == "resnets":
            return f"output_blocks.{index}.0." + _rename_head(m[4], _RESNET_TO_LDM, key)
        return f"output_blocks.{index}.1.{m[4]}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key)
    if m and int(m[1]) < layout.levels - 1:
        u = int(m[1])
        index = layout.up_start[u] + layout.up_layers[u] - 1
        return f"output_blocks.{index}.{2 if layout.up_has_attention[u] else 1}.conv.{m[2]}"
    raise ValueError(f"UNet key {key!r} has no single-file (LDM) counterpart")


def unet_key_from_ldm(key: str, config: UNet2DConditionConfig) -> str:
    """LDM UNet key (without the `model.diffusion_model.` prefix) -> diffusers key."""
    layout = _UNetLayout(config)
    simple = {"input_blocks.0.0.": "conv_in.", "time_embed.0.": "time_embedding.linear_1.",
              "time_embed.2.": "time_embedding.linear_2.", "out.0.": "conv_norm_out.", "out.2.": "conv_out.",
              "middle_block.1.": "mid_block.attentions.0."}
    for old, new in simple.items():
        if key.startswith(old):
            return new + key[len(old):]
    m = re.fullmatch(r"middle_block\.([02])\.(.+)", key)
    if m:
        return f"mid_block.resnets.{int(m[1]) // 2}." + _rename_head(m[2], _RESNET_FROM_LDM, key)
    m = re.fullmatch(r"input_blocks\.(\d+)\.([01])\.(.+)", key)
    if m and int(m[1]) in layout.input_block:
        kind, b, j = layout.input_block[int(m[1])]
        if kind == "down":
            op = re.fullmatch(r"op\.(.+)", m[3])
            if m[2] == "0" and op:
                return f"down_blocks.{b}.downsamplers.0.conv.{op[1]}"
        elif m[2] == "0":
            return f"down_blocks.{b}.resnets.{j}." + _rename_head(m[3], _RESNET_FROM_LDM, key)
        elif config.transformer_layers_per_level()[b] > 0:
            return f"down_blocks.{b}.attentions.{j}.{m[3]}"
    m = re.fullmatch(r"output_blocks\.(\d+)\.([012])\.(.+)", key)
    if m and int(m[1]) in layout.output_block:
        u, j = layout.output_block[int(m[1])]
        sub, rest = int(m[2]), m[3]
        last = j == layout.up_layers[u] - 1
        upsampler_sub = 2 if layout.up_has_attention[u] else 1
        if sub == 0:
            return f"up_blocks.{u}.resnets.{j}." + _rename_head(rest, _RESNET_FROM_LDM, key)
        if last and u < layout.levels - 1 and sub == upsampler_sub and rest.startswith("conv."):
            return f"up_blocks.{u}.upsamplers.0.{rest}"
        if sub == 1 and layout.up_has_attention[u]:
            return f"up_blocks.{u}.attentions.{j}.{rest}"
    raise ValueError(f"LDM UNet key {key!r} does not fit this UNet config")


def vae_key_to_ldm(key: str, config: AutoencoderKLConfig) -> str:
    """diffusers VAE key -> LDM key without the `first_stage_model.` prefix."""
    n = len(config.block_out_channels)
    if key.split(".")[0] in ("quant_conv", "post_quant_conv"):
        return key
    m = re.fullmatch(r"(encoder|decoder)\.(.+)", key)
    if not m:
        raise ValueError(f"VAE key {key!r} has no single-file (LDM) counterpart")
    part, rest = m[1], m[2]
    for old, new in (("conv_in.", "conv_in."), ("conv_out.", "conv_out."), ("conv_norm_out.", "norm_out.")):
        if rest.startswith(old):
            return f"{part}.{new}{rest[len(old):]}"
    mm = re.fullmatch(r"mid_block\.resnets\.([01])\.(.+)", rest)
    if mm:
        return f"{part}.mid.block_{int(mm[1]) + 1}." + _rename_head(mm[2], _VAE_RESNET_TO_LDM, key)
    mm = re.fullmatch(r"mid_block\.attentions\.0\.(.+)", rest)
    if mm:
        return f"{part}.mid.attn_1." + _rename_head(mm[1], _VAE_ATTN_TO_LDM, key)
    if part == "encoder":
        mm = re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest)
        if mm and int(mm[1]) < n:
            return f"encoder.down.{mm[1]}.block.{mm[2]}." + _rename_head(mm[3], _VAE_RESNET_TO_LDM, key)
        mm = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", rest)
        if mm and int(mm[1]) < n - 1:
            return f"encoder.down.{mm[1]}.downsample.conv.{mm[2]}"
    else:
        mm = re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", rest)
        if mm and int(mm[1]) < n:
            return f"decoder.up.{n - 1 - int(mm[1])}.block.{mm[2]}." + _rename_head(mm[3], _VAE_RESNET_TO_LDM, key)
        mm = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", rest)
        if mm and int(mm[1]) < n - 1:
            return f"decoder.up.{n - 1 - int(mm[1])}.upsample.conv.{mm[2]}"
    raise ValueError(f"VAE key {key!r} has no single-file (LDM) counterpart")


def vae_key_from_ldm(key: str, config: AutoencoderKLConfig) -> str:
    """LDM VAE key (without the `first_stage_model.` prefix) -> diffusers key."""
    n = len(config.block_out_channels)
    if key.split(".")[0] in ("quant_conv", "post_quant_conv"):
        return key
    m = re.fullmatch(r"(encoder|decoder)\.(.+)", key)
    if m:
        part, rest = m[1], m[2]
        for old, new in (("conv_in.", "conv_in."), ("conv_out.", "conv_out."), ("norm_out.", "conv_norm_out.")):
            if rest.startswith(old):
                return f"{part}.{new}{rest[len(old):]}"
        mm = re.fullmatch(r"mid\.block_([12])\.(.+)", rest)
        if mm:
            return f"{part}.mid_block.resnets.{int(mm[1]) - 1}." + _rename_head(mm[2], _VAE_RESNET_FROM_LDM, key)
        mm = re.fullmatch(r"mid\.attn_1\.(.+)", rest)
        if mm:
            return f"{part}.mid_block.attentions.0." + _rename_head(mm[1], _VAE_ATTN_FROM_LDM, key)
        if part == "encoder":
            mm = re.fullmatch(r"down\.(\d+)\.block\.(\d+)\.(.+)", rest)
            if mm and int(mm[1]) < n:
                return f"encoder.down_blocks.{mm[1]}.resnets.{mm[2]}." + _rename_head(mm[3], _VAE_RESNET_FROM_LDM, key)
            mm = re.fullmatch(r"down\.(\d+)\.downsample\.conv\.(.+)", rest)
            if mm and int(mm[1]) < n - 1:
                return f"encoder.down_blocks.{mm[1]}.downsamplers.0.conv.{mm[2]}"
        else:
            mm = re.fullmatch(r"up\.(\d+)\.block\.(\d+)\.(.+)", rest)
            if mm and int(mm[1]) < n:
                return (f"decoder.up_blocks.{n - 1 - int(mm[1])}.resnets.{mm[2]}."
                        + _rename_head(mm[3], _VAE_RESNET_FROM_LDM, key))
            mm = re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(.+)", rest)
            if mm and 0 < int(mm[1]) < n:
                return f"decoder.up_blocks.{n - 1 - int(mm[1])}.upsamplers.0.conv.{mm[2]}"
    raise ValueError(f"LDM VAE key {key!r} does not fit this VAE config")


def is_vae_attention_projection(diffusers_key: str) -> bool:
    """True for the VAE mid-block attention q/k/v/out weights that LDM stores as [C, C, 1, 1]."""
    return re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight",
                        diffusers_key) is not None


def text_key_to_ldm(key: str) -> str:
    """transformers CLIPTextModel key -> LDM key without the `cond_stage_model.transformer.` prefix (identical)."""
    if not key.startswith("text_model."):
        raise ValueError(f"text encoder key {key!r} does not start with 'text_model.'")
    return key


# --------------------------------------------------------------------------------------------------------------
# Whole checkpoints


def ldm_schedule_buffers(num_train_timesteps: int = 1000, beta_start: float = 0.00085,
                         beta_end: float = 0.012) -> Dict[str, torch.Tensor]:
    """The DDPM schedule buffers that LDM's LatentDiffusion registers and SD 1.x single files carry (float32,
    computed in float64 as LDM does: betas = linspace(sqrt(start), sqrt(end), T)^2, i.e. "scaled_linear")."""
    betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas)
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    buffers = {
        "betas": betas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
        "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
        "log_one_minus_alphas_cumprod": np.log(1.0 - alphas_cumprod),
        "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
        "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1.0),
        "posterior_variance": posterior_variance,
        "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
        "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
        "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
    }
    return {k: torch.from_numpy(v).to(torch.float32) for k, v in buffers.items()}


def single_file_key(component: str, key: str, unet_config: UNet2DConditionConfig,
                    vae_config: AutoencoderKLConfig) -> str:
    """Full single-file key of a diffusers `component` ('unet' | 'text_encoder' | 'vae') key."""
    if component == "unet":
        return UNET_PREFIX + unet_key_to_ldm(key, unet_config)
    if component == "text_encoder":
        return TEXT_PREFIX + text_key_to_ldm(key)
    if component == "vae":
        return VAE_PREFIX + vae_key_to_ldm(key, vae_config)
    raise ValueError(f"unknown component {component!r}")


def to_single_file(unet: Mapping[str, torch.Tensor], text_encoder: Mapping[str, torch.Tensor],
                   vae: Mapping[str, torch.Tensor], unet_config: UNet2DConditionConfig,
                   vae_config: AutoencoderKLConfig, max_position_embeddings: int = 77,
                   schedule_buffers: bool = True) -> Dict[str, torch.Tensor]:
    """Three diffusers/transformers state dicts -> one single-file LDM state dict, with the text encoder's
    `position_ids` (int64 [1, max_position_embeddings]) and, optionally, LDM's schedule buffers, as SD 1.x files
    have them. VAE attention projections are reshaped to [C, C, 1, 1]."""
    out: Dict[str, torch.Tensor] = {}
    for key, tensor in unet.items():
        out[single_file_key("unet", key, unet_config, vae_config)] = tensor
    for key, tensor in text_encoder.items():
        out[single_file_key("text_encoder", key, unet_config, vae_config)] = tensor
    out[POSITION_IDS_KEY] = torch.arange(max_position_embeddings, dtype=torch.int64)[None]
    for key, tensor in vae.items():
        if is_vae_attention_projection(key):
            tensor = tensor.reshape(*tensor.shape, 1, 1)
        out[single_file_key("vae", key, unet_config, vae_config)] = tensor
    if schedule_buffers:
        out.update(ldm_schedule_buffers())
    if len(out) != len(unet) + len(text_encoder) + len(vae) + 1 + (12 if schedule_buffers else 0):
        raise AssertionError("two diffusers keys mapped to the same single-file key")
    return out


def from_single_file(state_dict: Mapping[str, torch.Tensor], unet_config: UNet2DConditionConfig,
                     vae_config: AutoencoderKLConfig) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor],
                                                                Dict[str, torch.Tensor], List[str]]:
    """Single-file LDM state dict -> (unet, text_encoder, vae) diffusers/transformers state dicts, plus the keys
    that were ignored (everything outside the three prefixes, e.g. schedule buffers and EMA copies, and
    `position_ids`). A key under one of the prefixes that does not fit the configs raises ValueError."""
    unet, text, vae, ignored = {}, {}, {}, []
    for key, tensor in state_dict.items():
        if key == POSITION_IDS_KEY:
            ignored.append(key)
        elif key.startswith(UNET_PREFIX):
            unet[unet_key_from_ldm(key[len(UNET_PREFIX):], unet_config)] = tensor
        elif key.startswith(TEXT_PREFIX):
            text[text_key_to_ldm(key[len(TEXT_PREFIX):])] = tensor
        elif key.startswith(VAE_PREFIX):
            name = vae_key_from_ldm(key[len(VAE_PREFIX):], vae_config)
            if is_vae_attention_projection(name):
                if tensor.ndim != 4 or tuple(tensor.shape[2:]) != (1, 1):
                    raise ValueError(f"{key}: expected a 1x1 conv weight [C, C, 1, 1], got {list(tensor.shape)}")
                tensor = tensor.reshape(tensor.shape[0], tensor.shape[1])
            vae[name] = tensor
        else:
            ignored.append(key)
    return unet, text, vae, ignored


"""Saving and loading model sets in the two layouts users have: a diffusers folder and a single-file LDM checkpoint.

Diffusers folder (no tokenizer/ folder: the engine embeds CLIP's vocabulary):

    model_index.json
    unet/config.json          unet/diffusion_pytorch_model.safetensors
    text_encoder/config.json  text_encoder/model.safetensors
    vae/config.json           vae/diffusion_pytorch_model.safetensors
    scheduler/scheduler_config.json

Single file: one safetensors with `model.diffusion_model.*`, `cond_stage_model.transformer.text_model.*`,
`first_stage_model.*` (see convert.py), the text encoder's int64 `position_ids` and LDM's schedule buffers.
A single file holds no configs: loading one takes the configs as an argument (default: SD 1.5).

Safetensors are written with the `safetensors` package when it is importable, else with safetensors_file.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from . import safetensors_file
from .clip_text import ClipTextModel
from .config import (DIFFUSERS_VERSION, AutoencoderKLConfig, ClipTextConfig, ModelConfigs, UNet2DConditionConfig,
                     sd15, sd15_scheduler_config)
from .convert import from_single_file, to_single_file
from .unet import UNet2DConditionModel
from .vae import AutoencoderKL

try:
    import safetensors.torch as _st
except ImportError:
    _st = None

DTypeLike = Union[str, torch.dtype]
_DTYPE_ALIASES = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                  "fp32": torch.float32, "float32": torch.float32, "fp64": torch.float64, "float64": torch.float64}


def resolve_dtype(dtype: DTypeLike) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPE_ALIASES:
        raise ValueError(f"unknown dtype {dtype!r} (expected one of {', '.join(_DTYPE_ALIASES)})")
    return _DTYPE_ALIASES[dtype]


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: Union[str, Path], dtype: Optional[DTypeLike] = None,
                     metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write CPU copies of `tensors`, floating-point ones cast to `dtype` when given (integer tensors keep theirs)."""
    target = resolve_dtype(dtype) if dtype is not None else None
    out = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu()
        if target is not None and tensor.is_floating_point():
            tensor = tensor.to(target)
        out[name] = tensor.contiguous()
    meta = {"format": "pt", **(metadata or {})}
    if _st is not None:
        _st.save_file(out, str(path), metadata=meta)
    else:
        safetensors_file.save_file(out, path, meta)


def load_safetensors(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if _st is not None:
        return _st.load_file(str(path))
    return safetensors_file.load_file(path)


def load_into(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Strictly load `state_dict` into `module`, converting dtypes to the module's; missing, unexpected or
    mis-shaped keys raise ValueError naming them and `source`."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source}: {len(missing)} missing keys {missing[:5]}, "
                         f"{len(unexpected)} unexpected keys {unexpected[:5]}")
    converted = {}
    for key, target in expected.items():
        tensor = state_dict[key]
        if tuple(tensor.shape) != tuple(target.shape):
            raise ValueError(f"{source}: {key} has shape {list(tensor.shape)}, the config expects {list(target.shape)}")
        converted[key] = tensor.to(target.dtype)
    module.load_state_dict(converted, strict=True)


@dataclass
class StableDiffusionModels:
    """The three networks of one text-to-image model, their configs and the scheduler config."""

    unet: UNet2DConditionModel
    text_encoder: ClipTextModel
    vae: AutoencoderKL
    scheduler_config: dict = field(default_factory=sd15_scheduler_config)

    @property
    def configs(self) -> ModelConfigs:
        return ModelConfigs(self.unet.config, self.text_encoder.config, self.vae.config)

    @classmethod
    def from_configs(cls, configs: ModelConfigs, scheduler_config: Optional[dict] = None) -> "StableDiffusionModels":
        """Randomly initialised networks (PyTorch's default init) for `configs`."""
        return cls(UNet2DConditionModel(configs.unet), ClipTextModel(configs.text_encoder),
                   AutoencoderKL(configs.vae), scheduler_config or sd15_scheduler_config())

    def to(self, dtype: DTypeLike) -> "StableDiffusionModels":
        target = resolve_dtype(dtype)
        for module in (self.unet, self.text_encoder, self.vae):
            module.to(target)
        return self


def save_diffusers(models: StableDiffusionModels, folder: Union[str, Path], dtype: DTypeLike = "fp16") -> None:
    """Write a diffusers folder (see the module docstring), weights cast to `dtype`."""
    folder = Path(folder)
    for sub in ("unet", "text_encoder", "vae", "scheduler"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    scheduler_class = models.scheduler_config.get("_class_name", "PNDMScheduler")
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", scheduler_class],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": [None, None],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(model_index, indent=2) + "\n", encoding="utf-8")
    models.unet.config.save_json(folder / "unet" / "config.json")
    save_safetensors(models.unet.state_dict(), folder / "unet" / "diffusion_pytorch_model.safetensors", dtype)
    text_config = models.text_encoder.config.to_dict()
    text_config["torch_dtype"] = {torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(
        resolve_dtype(dtype), "float32")
    (folder / "text_encoder" / "config.json").write_text(json.dumps(text_config, indent=2) + "\n", encoding="utf-8")
    save_safetensors(models.text_encoder.state_dict(), folder / "text_encoder" / "model.safetensors", dtype)
    models.vae.config.save_json(folder / "vae" / "config.json")
    save_safetensors(models.vae.state_dict(), folder / "vae" / "diffusion_pytorch_model.safetensors", dtype)
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(models.scheduler_config, indent=2) + "\n", encoding="utf-8")


def load_diffusers(folder: Union[str, Path], dtype: DTypeLike = "fp32") -> StableDiffusionModels:
    """Read a diffusers folder written by `save_diffusers` (or by diffusers, for the supported configs)."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder}: not a diffusers folder (no model_index.json)")
    configs = ModelConfigs(
        unet=UNet2DConditionConfig.from_json(folder / "unet" / "config.json"),
        text_encoder=ClipTextConfig.from_json(folder / "text_encoder" / "config.json"),
        vae=AutoencoderKLConfig.from_json(folder / "vae" / "config.json"))
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    scheduler_config = json.loads(scheduler_path.read_text(encoding="utf-8")) if scheduler_path.is_file() else None
    models = StableDiffusionModels.from_configs(configs, scheduler_config).to(dtype)
    for module, path in ((models.unet, folder / "unet" / "diffusion_pytorch_model.safetensors"),
                         (models.text_encoder, folder / "text_encoder" / "model.safetensors"),
                         (models.vae, folder / "vae" / "diffusion_pytorch_model.safetensors")):
        load_into(module, load_safetensors(path), str(path))
    return models


def save_single_file(models: StableDiffusionModels, path: Union[str, Path], dtype: DTypeLike = "fp16",
                     schedule_buffers: bool = True) -> None:
    """Write one single-file LDM checkpoint (SD 1.x layout). Floating tensors, schedule buffers included, are cast
    to `dtype` as `model.half()` would; `position_ids` stays int64."""
    state = to_single_file(models.unet.state_dict(), models.text_encoder.state_dict(), models.vae.state_dict(),
                           models.unet.config, models.vae.config,
                           models.text_encoder.config.max_position_embeddings, schedule_buffers)
    save_safetensors(state, path, dtype)


def load_single_file(path: Union[str, Path], configs: Optional[ModelConfigs] = None,
                     dtype: DTypeLike = "fp32") -> StableDiffusionModels:
    """Read a single-file LDM checkpoint into networks built from `configs` (default: SD 1.5)."""
    configs = configs or sd15()
    unet_sd, text_sd, vae_sd, _ = from_single_file(load_safetensors(path), configs.unet, configs.vae)
    models = StableDiffusionModels.from_configs(configs).to(dtype)
    load_into(models.unet, unet_sd, f"{path} (model.diffusion_model.)")
    load_into(models.text_encoder, text_sd, f"{path} (cond_stage_model.transformer.)")
    load_into(models.vae, vae_sd, f"{path} (first_stage_model.)")
    return models

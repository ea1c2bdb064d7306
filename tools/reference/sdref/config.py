"""Model configurations, read from and written to diffusers / transformers `config.json` files.

Three dataclasses, one per component:

- `UNet2DConditionConfig`  <- `unet/config.json`       (diffusers `UNet2DConditionModel`)
- `ClipTextConfig`         <- `text_encoder/config.json` (transformers `CLIPTextConfig`)
- `AutoencoderKLConfig`    <- `vae/config.json`        (diffusers `AutoencoderKL`)

Loading ignores keys we do not know (diffusers writes many bookkeeping keys), but a known diffusers key set to a
value this package does not implement raises `ValueError` naming the key, so a checkpoint is never silently run
with the wrong architecture.

The UNet config carries the MobileDiffusion options as OUR extension keys (marked "ours" below). Every one
defaults to Stable Diffusion behaviour, and `to_dict` writes them only when they differ from that default, so an
SD config written here is key-for-key a diffusers config.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Union

DIFFUSERS_VERSION = "0.27.2"
TRANSFORMERS_VERSION = "4.40.0"

IntOrList = Union[int, List[int]]


def _per_level(value: Any, levels: int, key: str) -> list:
    """Broadcast a scalar config value to one entry per resolution level, or check a list's length."""
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise ValueError(f"{key} has {len(value)} entries but block_out_channels has {levels} levels")
        return list(value)
    return [value] * levels


def _read(cls, data: dict, source: str):
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items() if k in names}
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _load_json(path: Union[str, Path]) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


# --------------------------------------------------------------------------------------------------------------
# UNet


_UNET_DOWN_TYPES = ("CrossAttnDownBlock2D", "DownBlock2D")
_UNET_UP_TYPES = ("CrossAttnUpBlock2D", "UpBlock2D")


@dataclass
class UNet2DConditionConfig:
    """diffusers `UNet2DConditionModel` config (the subset SD 1.x/2.x use) plus our MobileDiffusion keys.

    Quirk kept from diffusers: `attention_head_dim` is the number of attention HEADS per level when
    `num_attention_heads` is absent (SD 1.5: 8 heads, head size = channels / 8).
    """

    sample_size: int = 64
    in_channels: int = 4
    out_channels: int = 4
    center_input_sample: bool = False
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    down_block_types: List[str] = field(
        default_factory=lambda: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
    mid_block_type: str = "UNetMidBlock2DCrossAttn"
    up_block_types: List[str] = field(
        default_factory=lambda: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
    only_cross_attention: bool = False
    block_out_channels: List[int] = field(default_factory=lambda: [320, 640, 1280, 1280])
    layers_per_block: IntOrList = 2
    downsample_padding: int = 1
    mid_block_scale_factor: float = 1.0
    act_fn: str = "silu"
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    cross_attention_dim: int = 768
    transformer_layers_per_block: IntOrList = 1
    attention_head_dim: IntOrList = 8
    num_attention_heads: Optional[IntOrList] = None
    dual_cross_attention: bool = False
    use_linear_projection: bool = False
    class_embed_type: Optional[str] = None
    addition_embed_type: Optional[str] = None
    upcast_attention: bool = False
    resnet_time_scale_shift: str = "default"
    time_embedding_type: str = "positional"
    time_cond_proj_dim: Optional[int] = None
    conv_in_kernel: int = 3
    conv_out_kernel: int = 3
    encoder_hid_dim: Optional[int] = None
    # --- ours (MobileDiffusion options; defaults = SD behaviour) ---
    mid_block_transformer_layers: Optional[int] = None
    self_attention_per_block: Optional[List[bool]] = None
    shared_kv_projection: bool = False
    attention_activation: str = "softmax"
    ff_activation: str = "geglu"
    ff_mult: int = 4
    separable_conv_per_block: Optional[List[bool]] = None

    EXTENSION_KEYS = ("mid_block_transformer_layers", "self_attention_per_block", "shared_kv_projection",
                      "attention_activation", "ff_activation", "ff_mult", "separable_conv_per_block")

    def __post_init__(self) -> None:
        levels = len(self.block_out_channels)
        _require(levels >= 1, "block_out_channels must not be empty")
        _require(len(self.down_block_types) == levels,
                 f"down_block_types has {len(self.down_block_types)} entries, block_out_channels {levels}")
        _require(len(self.up_block_types) == levels,
                 f"up_block_types has {len(self.up_block_types)} entries, block_out_channels {levels}")
        for key, value in (("down_block_types", self.down_block_types), ("up_block_types", self.up_block_types)):
            allowed = _UNET_DOWN_TYPES if key == "down_block_types" else _UNET_UP_TYPES
            for t in value:
                _require(t in allowed, f"{key}: unsupported block type {t!r} (supported: {', '.join(allowed)})")
        unsupported = {
            "mid_block_type": (self.mid_block_type, "UNetMidBlock2DCrossAttn"),
            "only_cross_attention": (self.only_cross_attention, False),
            "dual_cross_attention": (self.dual_cross_attention, False),
            "class_embed_type": (self.class_embed_type, None),
            "addition_embed_type": (self.addition_embed_type, None),
            "resnet_time_scale_shift": (self.resnet_time_scale_shift, "default"),
            "time_embedding_type": (self.time_embedding_type, "positional"),
            "act_fn": (self.act_fn, "silu"),
            "conv_in_kernel": (self.conv_in_kernel, 3),
            "conv_out_kernel": (self.conv_out_kernel, 3),
            "encoder_hid_dim": (self.encoder_hid_dim, None),
        }
        for key, (value, supported) in unsupported.items():
            _require(value == supported, f"{key} = {value!r} is not supported (only {supported!r})")
        _require(self.attention_activation in ("softmax", "relu"),
                 f"attention_activation must be 'softmax' or 'relu', got {self.attention_activation!r}")
        _require(self.ff_activation in ("geglu", "swiglu"),
                 f"ff_activation must be 'geglu' or 'swiglu', got {self.ff_activation!r}")
        _require(isinstance(self.ff_mult, int) and self.ff_mult >= 1, f"ff_mult must be a positive int, got {self.ff_mult!r}")
        _require(self.downsample_padding == 1, f"downsample_padding = {self.downsample_padding} is not supported (only 1)")

        layers = self.layers_per_level()
        _require(all(isinstance(n, int) and n >= 1 for n in layers), f"layers_per_block must be >= 1, got {layers}")
        depths = self.transformer_layers_per_level()
        for i, depth in enumerate(depths):
            down, up = self.down_block_types[i], self.up_block_types[levels - 1 - i]
            has_attention = depth > 0
            _require(has_attention == (down == "CrossAttnDownBlock2D"),
                     f"level {i}: transformer_layers_per_block {depth} does not match down block type {down}")
            _require(has_attention == (up == "CrossAttnUpBlock2D"),
                     f"level {i}: transformer_layers_per_block {depth} does not match up block type {up} "
                     f"(up_block_types[{levels - 1 - i}])")
        _require(self.mid_transformer_layers() >= 1, "mid_block_transformer_layers must be >= 1")
        self.self_attention_per_level()
        self.separable_per_level()

        groups = self.norm_num_groups
        for i, ch in enumerate(self.block_out_channels):
            _require(ch % groups == 0, f"block_out_channels[{i}] = {ch} is not divisible by norm_num_groups {groups}")
        heads = self.heads_per_level()
        for i, (ch, h) in enumerate(zip(self.block_out_channels, heads)):
            if depths[i] > 0 or i == levels - 1:
                _require(h >= 1 and ch % h == 0, f"level {i}: {ch} channels are not divisible by {h} attention heads")

    # Resolved per-level values (index = resolution level, 0 = highest resolution).

    @property
    def levels(self) -> int:
        return len(self.block_out_channels)

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.block_out_channels[0]

    def layers_per_level(self) -> List[int]:
        return _per_level(self.layers_per_block, self.levels, "layers_per_block")

    def transformer_layers_per_level(self) -> List[int]:
        """Transformer depth per level; 0 = no attentions at that level (DownBlock2D / UpBlock2D).

        A scalar (diffusers' default 1) applies to the CrossAttn levels only, as in diffusers."""
        value = self.transformer_layers_per_block
        if isinstance(value, (list, tuple)):
            depths = _per_level(value, self.levels, "transformer_layers_per_block")
            for d in depths:
                _require(isinstance(d, int) and d >= 0,
                         f"transformer_layers_per_block entries must be ints >= 0, got {depths}")
            return list(depths)
        return [value if t == "CrossAttnDownBlock2D" else 0 for t in self.down_block_types]

    def mid_transformer_layers(self) -> int:
        if self.mid_block_transformer_layers is not None:
            return self.mid_block_transformer_layers
        value = self.transformer_layers_per_block
        return value[-1] if isinstance(value, (list, tuple)) else value

    def heads_per_level(self) -> List[int]:
        heads = self.num_attention_heads if self.num_attention_heads is not None else self.attention_head_dim
        return _per_level(heads, self.levels, "attention_head_dim")

    def self_attention_per_level(self) -> List[bool]:
        if self.self_attention_per_block is None:
            return [True] * self.levels
        return [bool(b) for b in _per_level(self.self_attention_per_block, self.levels, "self_attention_per_block")]

    def separable_per_level(self) -> List[bool]:
        if self.separable_conv_per_block is None:
            return [False] * self.levels
        return [bool(b) for b in _per_level(self.separable_conv_per_block, self.levels, "separable_conv_per_block")]

    # JSON

    @classmethod
    def from_dict(cls, data: dict, source: str = "unet config") -> "UNet2DConditionConfig":
        return _read(cls, data, source)

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "UNet2DConditionConfig":
        return cls.from_dict(_load_json(path), str(path))

    def to_dict(self) -> dict:
        data = {"_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION}
        defaults = UNet2DConditionConfig()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.EXTENSION_KEYS and value == getattr(defaults, f.name):
                continue
            data[f.name] = value
        return data

    def save_json(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------
# CLIP text encoder


@dataclass
class ClipTextConfig:
    """transformers `CLIPTextConfig` (the text tower of CLIP)."""

    vocab_size: int = 49408
    hidden_size: int = 768
    intermediate_size: int = 3072
    projection_dim: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2

    def __post_init__(self) -> None:
        _require(self.hidden_act in ("quick_gelu", "gelu"),
                 f"hidden_act must be 'quick_gelu' or 'gelu', got {self.hidden_act!r}")
        _require(self.hidden_size % self.num_attention_heads == 0,
                 f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
        for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "max_position_embeddings"):
            _require(getattr(self, key) >= 1, f"{key} must be >= 1")

    @classmethod
    def from_dict(cls, data: dict, source: str = "text encoder config") -> "ClipTextConfig":
        return _read(cls, data, source)

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "ClipTextConfig":
        return cls.from_dict(_load_json(path), str(path))

    def to_dict(self) -> dict:
        data = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
                "transformers_version": TRANSFORMERS_VERSION, "torch_dtype": "float16",
                "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02}
        data.update(dataclasses.asdict(self))
        return data

    def save_json(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------
# VAE


@dataclass
class AutoencoderKLConfig:
    """diffusers `AutoencoderKL` config. The latent channel count is a field (SD: 4). The block type lists, when
    not given, are filled with one DownEncoderBlock2D / UpDecoderBlock2D per level."""

    in_channels: int = 3
    out_channels: int = 3
    down_block_types: Optional[List[str]] = None
    up_block_types: Optional[List[str]] = None
    block_out_channels: List[int] = field(default_factory=lambda: [128, 256, 512, 512])
    layers_per_block: int = 2
    act_fn: str = "silu"
    latent_channels: int = 4
    norm_num_groups: int = 32
    sample_size: int = 512
    scaling_factor: float = 0.18215
    force_upcast: bool = True
    use_quant_conv: bool = True
    use_post_quant_conv: bool = True
    mid_block_add_attention: bool = True

    def __post_init__(self) -> None:
        levels = len(self.block_out_channels)
        _require(levels >= 1, "block_out_channels must not be empty")
        if self.down_block_types is None:
            self.down_block_types = ["DownEncoderBlock2D"] * levels
        if self.up_block_types is None:
            self.up_block_types = ["UpDecoderBlock2D"] * levels
        _require(self.down_block_types == ["DownEncoderBlock2D"] * levels,
                 f"down_block_types must be {levels} x DownEncoderBlock2D, got {self.down_block_types}")
        _require(self.up_block_types == ["UpDecoderBlock2D"] * levels,
                 f"up_block_types must be {levels} x UpDecoderBlock2D, got {self.up_block_types}")
        _require(self.act_fn == "silu", f"act_fn = {self.act_fn!r} is not supported (only 'silu')")
        _require(self.layers_per_block >= 1, "layers_per_block must be >= 1")
        _require(self.latent_channels >= 1, "latent_channels must be >= 1")
        for i, ch in enumerate(self.block_out_channels):
            _require(ch % self.norm_num_groups == 0,
                     f"block_out_channels[{i}] = {ch} is not divisible by norm_num_groups {self.norm_num_groups}")

    @property
    def downscale_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @classmethod
    def from_dict(cls, data: dict, source: str = "vae config") -> "AutoencoderKLConfig":
        return _read(cls, data, source)

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "AutoencoderKLConfig":
        return cls.from_dict(_load_json(path), str(path))

    def to_dict(self) -> dict:
        data = {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION}
        data.update(dataclasses.asdict(self))
        return data

    def save_json(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------
# Scheduler (written into diffusers folders; the models do not use it)


def sd15_scheduler_config(prediction_type: str = "epsilon") -> dict:
    """`scheduler/scheduler_config.json` of runwayml/stable-diffusion-v1-5 (PNDM, scaled_linear betas)."""
    return {
        "_class_name": "PNDMScheduler",
        "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "prediction_type": prediction_type,
        "set_alpha_to_one": False,
        "skip_prk_steps": True,
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "trained_betas": None,
    }


# --------------------------------------------------------------------------------------------------------------
# Presets


@dataclass
class ModelConfigs:
    """The three component configs of one text-to-image model."""

    unet: UNet2DConditionConfig
    text_encoder: ClipTextConfig
    vae: AutoencoderKLConfig


def sd15() -> ModelConfigs:
    """Stable Diffusion 1.5 (runwayml/stable-diffusion-v1-5 config.json values)."""
    return ModelConfigs(
        unet=UNet2DConditionConfig(),
        text_encoder=ClipTextConfig(),
        vae=AutoencoderKLConfig(),
    )


def tiny_sd15() -> ModelConfigs:
    """SD 1.5's structure and key set at tiny widths (for fixtures): 4 UNet levels, attention at the top three,
    2 layers per block, 1x1-conv projections; a 2-layer CLIP text tower over the real 49408-token vocabulary;
    a 4-level (f8) VAE. Group counts are chosen to divide the tiny widths."""
    return ModelConfigs(
        unet=UNet2DConditionConfig(
            sample_size=8,
            block_out_channels=[16, 24, 32, 32],
            norm_num_groups=8,
            cross_attention_dim=32,
            attention_head_dim=4,
        ),
        text_encoder=ClipTextConfig(
            hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=2, num_attention_heads=4),
        vae=AutoencoderKLConfig(
            block_out_channels=[16, 24, 32, 32],
            norm_num_groups=8,
            sample_size=64,
        ),
    )


def tiny_mobile() -> ModelConfigs:
    """A tiny MobileDiffusion-style model with every extension option on (for fixtures): 3 UNet levels, no
    transformer at the top level, cross-attention-only blocks at the middle level, full blocks (self + cross + ff)
    at the lowest level and in the mid block (depth 1, set explicitly), shared K/V projection, ReLU attention, SwiGLU feed-forward with
    ff_mult 3, separable convs at the two lower levels, fewer resnets at the top levels, the guidance-scale
    embedding input, and an f2 VAE with 3 latent channels."""
    return ModelConfigs(
        unet=UNet2DConditionConfig(
            sample_size=8,
            in_channels=3,
            out_channels=3,
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            block_out_channels=[16, 32, 32],
            layers_per_block=[1, 1, 2],
            transformer_layers_per_block=[0, 1, 2],
            mid_block_transformer_layers=1,
            norm_num_groups=8,
            cross_attention_dim=16,
            attention_head_dim=[2, 4, 4],
            time_cond_proj_dim=32,
            use_linear_projection=True,
            self_attention_per_block=[False, False, True],
            shared_kv_projection=True,
            attention_activation="relu",
            ff_activation="swiglu",
            ff_mult=3,
            separable_conv_per_block=[False, True, True],
        ),
        text_encoder=ClipTextConfig(
            hidden_size=16, intermediate_size=32, projection_dim=16, num_hidden_layers=2, num_attention_heads=2,
            hidden_act="gelu"),
        vae=AutoencoderKLConfig(
            block_out_channels=[16, 32],
            latent_channels=3,
            norm_num_groups=8,
            sample_size=16,
            layers_per_block=1,
            scaling_factor=1.0,
        ),
    )

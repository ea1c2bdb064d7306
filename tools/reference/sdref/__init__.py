"""sdref: the PyTorch reference for DiffusionSharp's models (the spec the C# engine must match, and the code the
project's own model is trained with). Runs on torch 1.13 and 2.x.

State-dict keys equal diffusers / transformers keys, so checkpoints move between this package, diffusers and the
engine unchanged. See docs/MODELS.md for the classes, config keys (ours marked) and the LDM key mapping.
"""

from .attention import (Attention, BasicTransformerBlock, FeedForward, GatedProjection, Transformer2DModel,
                        reference_mode, scaled_dot_product_attention)
from .clip_text import ClipTextModel, ClipTextOutput
from .config import (AutoencoderKLConfig, ClipTextConfig, ModelConfigs, UNet2DConditionConfig, sd15,
                     sd15_scheduler_config, tiny_mobile, tiny_sd15)
from .embeddings import TimestepEmbedding, guidance_scale_embedding, timestep_embedding
from .io import (StableDiffusionModels, load_diffusers, load_safetensors, load_single_file, save_diffusers,
                 save_safetensors, save_single_file)
from .meta import meta_device
from .resnet import Downsample2D, ResnetBlock2D, SeparableConv2d, Upsample2D
from .unet import UNet2DConditionModel, Unet2DConditionModel
from .vae import AutoencoderKL

__all__ = [
    "Attention", "AutoencoderKL", "AutoencoderKLConfig", "BasicTransformerBlock", "ClipTextConfig", "ClipTextModel",
    "ClipTextOutput", "Downsample2D", "FeedForward", "GatedProjection", "ModelConfigs", "ResnetBlock2D",
    "SeparableConv2d", "StableDiffusionModels", "TimestepEmbedding", "Transformer2DModel", "UNet2DConditionConfig",
    "UNet2DConditionModel", "Unet2DConditionModel", "Upsample2D", "guidance_scale_embedding", "load_diffusers",
    "load_safetensors", "load_single_file", "meta_device", "reference_mode", "save_diffusers", "save_safetensors",
    "save_single_file", "scaled_dot_product_attention", "sd15", "sd15_scheduler_config", "timestep_embedding",
    "tiny_mobile", "tiny_sd15",
]

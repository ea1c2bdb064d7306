#!/usr/bin/env python3
"""Write a FULL-SIZE Stable Diffusion 1.5 checkpoint with random weights, in the real layout (never committed).

    /usr/bin/python3 tools/make_sd15_random.py OUT [--layout single|diffusers] [--dtype fp16|bf16|fp32] [--seed N]

single (default): one safetensors file OUT in the original LDM layout, as v1-5 single files are:
  model.diffusion_model.* (686), cond_stage_model.transformer.text_model.* (196 + embeddings.position_ids, I64),
  first_stage_model.* (248), and LDM's 12 DDPM schedule buffers (betas, alphas_cumprod, ...) = 1143 tensors,
  about 2.1 GB in fp16.
diffusers: a folder OUT with model_index.json, unet/, text_encoder/, vae/ (configs + safetensors) and scheduler/.

Weights follow PyTorch's default init (Linear/Conv: U(+-1/sqrt(fan_in)) for weight and bias, Embedding N(0, 1),
norms weight 1 bias 0), so activations stay in range. Each tensor is generated from its own seed (crc32 of its
name + --seed) and written before the next is made, so memory stays at one tensor (the largest is the 49408 x 768
token embedding) whatever the file size. Deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))

import sdref  # noqa: E402
from sdref import convert, safetensors_file  # noqa: E402
from sdref.config import DIFFUSERS_VERSION  # noqa: E402
from sdref.io import resolve_dtype  # noqa: E402
from sdref.meta import meta_device  # noqa: E402

Init = Callable[[torch.Generator], torch.Tensor]


def init_rules(module: nn.Module) -> Dict[str, Tuple[Tuple[int, ...], Init]]:
    """Per state-dict key: its shape and a function drawing PyTorch's default init for it (float32)."""
    rules: Dict[str, Tuple[Tuple[int, ...], Init]] = {}
    for prefix, sub in module.named_modules():
        for name, param in sub.named_parameters(recurse=False):
            key = f"{prefix}.{name}" if prefix else name
            shape = tuple(param.shape)
            if isinstance(sub, (nn.GroupNorm, nn.LayerNorm)):
                fill = 1.0 if name == "weight" else 0.0
                rules[key] = (shape, lambda g, s=shape, f=fill: torch.full(s, f))
            elif isinstance(sub, nn.Embedding):
                rules[key] = (shape, lambda g, s=shape: torch.randn(s, generator=g))
            elif isinstance(sub, (nn.Linear, nn.Conv2d)):
                weight_shape = tuple(sub.weight.shape)
                fan_in = math.prod(weight_shape[1:])
                bound = 1.0 / math.sqrt(fan_in)
                rules[key] = (shape, lambda g, s=shape, b=bound: (torch.rand(s, generator=g) * 2 - 1) * b)
            else:
                raise TypeError(f"{key}: no init rule for {type(sub).__name__}")
    if set(rules) != set(module.state_dict()):
        raise AssertionError("init rules do not cover the state dict")
    return rules


def draw(key: str, rule: Tuple[Tuple[int, ...], Init], seed: int, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed((zlib.crc32(key.encode("utf-8")) + seed) % (2 ** 63))
    return rule[1](generator).to(dtype)


def write(path: Path, entries: List[Tuple[str, str, Tuple[int, ...], Callable[[], torch.Tensor]]],
          metadata: Dict[str, str]) -> int:
    producers = {name: produce for name, _, _, produce in entries}
    specs = [(name, dtype, shape) for name, dtype, shape, _ in entries]
    return safetensors_file.write_streaming(path, specs, lambda name: producers[name](), metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--layout", choices=("single", "diffusers"), default="single")
    parser.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dtype = resolve_dtype(args.dtype)
    dtype_name = safetensors_file.DTYPE_NAMES[dtype]
    configs = sdref.sd15()
    with meta_device():
        components = {"unet": sdref.UNet2DConditionModel(configs.unet),
                      "text_encoder": sdref.ClipTextModel(configs.text_encoder),
                      "vae": sdref.AutoencoderKL(configs.vae)}
    rules = {name: init_rules(module) for name, module in components.items()}
    metadata = {"format": "pt", "generator": "tools/make_sd15_random.py", "seed": str(args.seed),
                "note": "random weights, SD 1.5 architecture; not a trained model"}

    def entry(component: str, key: str, out_key: str):
        rule = rules[component][key]
        shape = rule[0]
        if component == "vae" and convert.is_vae_attention_projection(key) and args.layout == "single":
            shape = shape + (1, 1)
        return (out_key, dtype_name, shape, lambda: draw(key, rule, args.seed, dtype).reshape(shape))

    started = time.time()
    files: List[Path] = []
    if args.layout == "single":
        entries = [entry(c, k, convert.single_file_key(c, k, configs.unet, configs.vae))
                   for c in components for k in rules[c]]
        positions = configs.text_encoder.max_position_embeddings
        entries.append((convert.POSITION_IDS_KEY, "I64", (1, positions),
                        lambda: torch.arange(positions, dtype=torch.int64)[None]))
        for name, buffer in convert.ldm_schedule_buffers().items():
            entries.append((name, dtype_name, tuple(buffer.shape), lambda b=buffer: b.to(dtype)))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write(args.out, entries, metadata)
        files.append(args.out)
        count = len(entries)
    else:
        out = args.out
        for sub in ("unet", "text_encoder", "vae", "scheduler"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        models_index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": DIFFUSERS_VERSION,
                        "feature_extractor": [None, None], "requires_safety_checker": False,
                        "safety_checker": [None, None], "scheduler": ["diffusers", "PNDMScheduler"],
                        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": [None, None],
                        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
        (out / "model_index.json").write_text(json.dumps(models_index, indent=2) + "\n", encoding="utf-8")
        configs.unet.save_json(out / "unet" / "config.json")
        configs.text_encoder.save_json(out / "text_encoder" / "config.json")
        configs.vae.save_json(out / "vae" / "config.json")
        (out / "scheduler" / "scheduler_config.json").write_text(
            json.dumps(sdref.sd15_scheduler_config(), indent=2) + "\n", encoding="utf-8")
        count = 0
        for component, filename in (("unet", "unet/diffusion_pytorch_model.safetensors"),
                                    ("text_encoder", "text_encoder/model.safetensors"),
                                    ("vae", "vae/diffusion_pytorch_model.safetensors")):
            entries = [entry(component, k, k) for k in rules[component]]
            write(out / filename, entries, metadata)
            files.append(out / filename)
            count += len(entries)
    size = sum(f.stat().st_size for f in files)
    print(f"{args.out}: {count} tensors, {size} bytes ({size / 2 ** 30:.2f} GiB), {args.layout} layout, "
          f"{args.dtype}, {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cross-check sdref against the upstream implementations on identical random weights (not run by CI).

- UNet2DConditionModel and AutoencoderKL against diffusers' classes (a diffusers source checkout, `--diffusers-src
  .../src`; current diffusers needs torch 2.x). Loading our state dict into diffusers' model with strict=True also
  proves the key sets and shapes are identical.
- ClipTextModel against OpenAI CLIP's text transformer (`--openai-clip`, a checkout of openai/CLIP), weights mapped
  (q/k/v concatenated into in_proj), for configs with intermediate_size = 4 * hidden_size and quick_gelu; in
  float32, because OpenAI's LayerNorm computes in float32.

Configs checked: the tiny SD 1.5 preset, the diffusers-representable part of the tiny MobileDiffusion preset
(layers_per_block list, transformer depth [0, 1, 2], per-level heads, linear projections, time_cond_proj_dim;
our extension options have no diffusers counterpart and are checked by test_sdref.py and the fixtures), and,
with --full, SD 1.5 at full size. Comparison in float64 (full size: float32 on CUDA when available).

Only the model classes are imported from diffusers; packages they import but do not use at run time
(huggingface_hub, ...) are replaced by inert stubs when absent, and diffusers' dependency version check is
skipped.

    python3 tools/reference/crosscheck.py --diffusers-src DIR/src --openai-clip DIR [--full]
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sdref  # noqa: E402
from sdref.config import UNet2DConditionConfig  # noqa: E402

OPTIONAL_ROOTS = {"huggingface_hub", "safetensors", "requests", "filelock", "regex", "httpx", "tqdm", "PIL"}


class _Inert:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]  # used as a decorator
        return _Inert()

    def __getattr__(self, name):
        return _Inert()

    def __mro_entries__(self, bases):
        return (object,)

    def __or__(self, other):
        return self

    __ror__ = __or__

    def __getitem__(self, key):
        return self

    def __iter__(self):
        return iter(())


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__version__ = "999.0.0"

        def getattr_(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return "/nonexistent" if name.isupper() else _Inert()

        module.__getattr__ = getattr_
        return module

    def exec_module(self, module):
        pass


class _StubFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        root = name.split(".")[0]
        if root in OPTIONAL_ROOTS and importlib.machinery.PathFinder.find_spec(root) is None:
            return importlib.machinery.ModuleSpec(name, _StubLoader(), is_package=True)
        return None


def import_diffusers(src: Path):
    if importlib.util.find_spec("packaging") is None:
        import pip._vendor.packaging as packaging
        import pip._vendor.packaging.requirements
        import pip._vendor.packaging.version
        sys.modules["packaging"] = packaging
        sys.modules["packaging.version"] = packaging.version
        sys.modules["packaging.requirements"] = packaging.requirements
    sys.meta_path.insert(0, _StubFinder())
    check = types.ModuleType("diffusers.dependency_versions_check")
    check.dep_version_check = lambda *args, **kwargs: None
    sys.modules["diffusers.dependency_versions_check"] = check
    sys.path.insert(0, str(src))
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    return UNet2DConditionModel, AutoencoderKL


def diffusers_kwargs(config) -> dict:
    data = config.to_dict()
    return {k: v for k, v in data.items() if not k.startswith("_") and k not in UNet2DConditionConfig.EXTENSION_KEYS}


def report(name: str, ours: torch.Tensor, theirs: torch.Tensor, tolerance: float) -> bool:
    diff = (ours - theirs).abs().max().item()
    scale = theirs.abs().max().item()
    ok = diff <= tolerance * max(scale, 1.0)
    print(f"{'OK  ' if ok else 'FAIL'} {name:55s} max|diff| {diff:.3e}  (max|ref| {scale:.3e})")
    return ok


@torch.no_grad()
def check_unet(DiffusersUNet, config, name, device, dtype, tolerance, cond_dim=None) -> bool:
    torch.manual_seed(0)
    ours = sdref.UNet2DConditionModel(config).to(device, dtype).eval()
    theirs = DiffusersUNet(**diffusers_kwargs(config)).to(device, dtype).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    c = config
    x = torch.randn(2, c.in_channels, 16, 16, device=device, dtype=dtype)
    t = torch.tensor([999.0, 10.5], device=device, dtype=dtype)
    ctx = torch.randn(2, 77, c.cross_attention_dim, device=device, dtype=dtype)
    cond = None
    if c.time_cond_proj_dim is not None:
        cond = sdref.guidance_scale_embedding(torch.tensor([7.5, 1.0], device=device), c.time_cond_proj_dim,
                                              dtype).to(dtype)
    expected = theirs(x, t, ctx, timestep_cond=cond).sample
    ok = report(f"{name} UNet", ours(x, t, ctx, cond), expected, tolerance)
    with sdref.reference_mode():
        ok &= report(f"{name} UNet (reference_mode)", ours(x, t, ctx, cond), expected, tolerance)
    odd = torch.randn(1, c.in_channels, 14, 10, device=device, dtype=dtype)
    ok &= report(f"{name} UNet odd size 14x10", ours(odd, 3, ctx[:1], None if cond is None else cond[:1]),
                 theirs(odd, 3, ctx[:1], timestep_cond=None if cond is None else cond[:1]).sample, tolerance)
    return ok


@torch.no_grad()
def check_vae(DiffusersVae, config, name, device, dtype, tolerance) -> bool:
    torch.manual_seed(0)
    ours = sdref.AutoencoderKL(config).to(device, dtype).eval()
    data = {k: v for k, v in config.to_dict().items() if not k.startswith("_")}
    theirs = DiffusersVae(**data).to(device, dtype).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    size = 8 * config.downscale_factor
    image = torch.rand(1, 3, size, size, device=device, dtype=dtype) * 2 - 1
    mean, logvar = ours.encode(image)
    dist = theirs.encode(image).latent_dist
    ok = report(f"{name} VAE encode mean", mean, dist.mean, tolerance)
    ok &= report(f"{name} VAE encode logvar", logvar, dist.logvar, tolerance)
    z = torch.randn(1, config.latent_channels, 8, 8, device=device, dtype=dtype)
    ok &= report(f"{name} VAE decode", ours.decode(z), theirs.decode(z).sample, tolerance)
    return ok


@torch.no_grad()
def check_clip(clip_root: Path, config, name, device, dtype, tolerance) -> bool:
    spec = importlib.util.spec_from_file_location("openai_clip_model", clip_root / "clip" / "model.py")
    clip_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clip_model)
    Transformer = clip_model.Transformer  # OpenAI CLIP's text/vision transformer

    if config.intermediate_size != 4 * config.hidden_size or config.hidden_act != "quick_gelu":
        raise ValueError("OpenAI CLIP's transformer has a 4x quick_gelu MLP")
    torch.manual_seed(0)
    ours = sdref.ClipTextModel(config).to(device, dtype).eval()
    n = config.max_position_embeddings
    mask = torch.empty(n, n).fill_(float("-inf")).triu_(1)
    theirs = Transformer(config.hidden_size, config.num_hidden_layers, config.num_attention_heads, mask)
    theirs = theirs.to(device, dtype).eval()
    state = {}
    for i, layer in enumerate(ours.text_model.encoder.layers):
        a = layer.self_attn
        p = f"resblocks.{i}."
        state[p + "attn.in_proj_weight"] = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
        state[p + "attn.in_proj_bias"] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
        state[p + "attn.out_proj.weight"], state[p + "attn.out_proj.bias"] = a.out_proj.weight, a.out_proj.bias
        for src, dst in (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"),
                         ("mlp.fc2", "mlp.c_proj")):
            module = layer.get_submodule(src)
            state[f"{p}{dst}.weight"], state[f"{p}{dst}.bias"] = module.weight, module.bias
    theirs.load_state_dict(state, strict=True)
    ids = torch.randint(0, config.vocab_size, (2, n), device=device)
    ids[:, 0] = 49406
    emb = ours.text_model.embeddings
    x = emb.token_embedding(ids) + emb.position_embedding.weight[None]
    expected = ours.text_model.final_layer_norm(theirs(x.permute(1, 0, 2)).permute(1, 0, 2))
    return report(f"{name} CLIP text last_hidden_state", ours(ids).last_hidden_state, expected, tolerance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diffusers-src", type=Path, required=True)
    parser.add_argument("--openai-clip", type=Path)
    parser.add_argument("--full", action="store_true", help="also SD 1.5 at full size")
    args = parser.parse_args()
    DiffusersUNet, DiffusersVae = import_diffusers(args.diffusers_src)
    print(f"torch {torch.__version__}")
    cpu, f64 = torch.device("cpu"), torch.float64
    # float64 runs still differ by ~1e-7: diffusers computes the timestep sinusoid in float32 and, without
    # scaled_dot_product_attention, the VAE softmax in float32. A structural error shows at O(1).
    f64_tolerance = 1e-6
    ok = True

    tiny = sdref.tiny_sd15()
    ok &= check_unet(DiffusersUNet, tiny.unet, "tiny-sd15", cpu, f64, f64_tolerance)
    ok &= check_vae(DiffusersVae, tiny.vae, "tiny-sd15", cpu, f64, f64_tolerance)

    mobile = sdref.tiny_mobile()
    structural = UNet2DConditionConfig.from_dict(
        {k: v for k, v in mobile.unet.to_dict().items() if k not in UNet2DConditionConfig.EXTENSION_KEYS})
    ok &= check_unet(DiffusersUNet, structural, "tiny-mobile structure (softmax/geglu/dense)", cpu, f64, f64_tolerance)
    ok &= check_vae(DiffusersVae, mobile.vae, "tiny-mobile", cpu, f64, f64_tolerance)

    if args.openai_clip:
        clip_config = sdref.ClipTextConfig(hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                                           num_attention_heads=4)
        ok &= check_clip(args.openai_clip, clip_config, "tiny", cpu, torch.float32, 1e-5)

    if args.full:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        full = sdref.sd15()
        ok &= check_unet(DiffusersUNet, full.unet, "SD 1.5", device, torch.float32, 1e-4)
        ok &= check_vae(DiffusersVae, full.vae, "SD 1.5", device, torch.float32, 1e-4)
        if args.openai_clip:
            ok &= check_clip(args.openai_clip, full.text_encoder, "SD 1.5 (CLIP ViT-L/14)", device, torch.float32, 1e-4)
    print("ALL OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

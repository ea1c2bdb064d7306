"""Writes tests/fixtures/caching/image_quality.json: pairs of small 8-bit RGB images and their PSNR and SSIM computed
in float64 with PyTorch, the reference for src/DiffusionSharp/Caching/ImageQuality.cs.

SSIM as Wang et al. 2004 (their ssim.m) per channel: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255,
'valid' filtering (no padding), the mean of the SSIM map, averaged over the three channels.
PSNR: 10 log10(255^2 / MSE) over all pixels and channels.

  /usr/bin/python3 tools/eval/make_caching_fixtures.py
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "caching", "image_quality.json")


def gaussian_window(size=11, sigma=1.5):
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(a, b):
    """a, b: uint8 [H, W, 3] -> mean SSIM over channels."""
    x = a.permute(2, 0, 1).unsqueeze(1).double()  # [3, 1, H, W]
    y = b.permute(2, 0, 1).unsqueeze(1).double()
    w = gaussian_window().view(1, 1, 11, 11)
    f = lambda t: torch.nn.functional.conv2d(t, w)  # noqa: E731  valid
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def psnr(a, b):
    mse = float(((a.double() - b.double()) ** 2).mean())
    return 10 * torch.log10(torch.tensor(255.0 ** 2 / mse, dtype=torch.float64)).item()


def main():
    g = torch.Generator().manual_seed(7)
    cases = []
    # A random image and a noisy copy; a smooth gradient image and a shifted, darkened copy; a larger flat-ish pair.
    base = torch.randint(0, 256, (20, 24, 3), generator=g, dtype=torch.int64)
    noisy = (base + torch.randint(-30, 31, base.shape, generator=g)).clamp(0, 255)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(19), indexing="ij")
    smooth = torch.stack([xx * 12, yy * 14, (xx + yy) * 6], dim=-1).clamp(0, 255)
    darker = (smooth * 0.8 + 9).round().clamp(0, 255).long()
    flat = torch.full((32, 32, 3), 128, dtype=torch.int64) + torch.randint(-3, 4, (32, 32, 3), generator=g)
    flat2 = (flat + torch.randint(-2, 3, flat.shape, generator=g)).clamp(0, 255)
    for name, a, b in (("random_noisy", base, noisy), ("smooth_darker", smooth, darker), ("flat", flat, flat2)):
        a8, b8 = a.to(torch.uint8), b.to(torch.uint8)
        cases.append({"name": name, "width": a.shape[1], "height": a.shape[0],
                      "a": a8.flatten().tolist(), "b": b8.flatten().tolist(),
                      "psnr": psnr(a8, b8), "ssim": ssim(a8, b8)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tools/eval/make_caching_fixtures.py", "cases": cases}, f)
    for c in cases:
        print(c["name"], c["psnr"], c["ssim"])


if __name__ == "__main__":
    main()

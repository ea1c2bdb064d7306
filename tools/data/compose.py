"""Compositing emoji over a background colour, in torch, batched (CPU or GPU).

The one definition of a training/evaluation image: the RGBA emoji (premultiplied), placed as the composition
says (captions.COMPOSITIONS), alpha-composited over the named colour, as float [B, 3, 64, 64] in [-1, 1].
"""
import torch
import torch.nn.functional as F

from captions import COLOUR_RGB, COMPOSITIONS


class Compositor:
    def __init__(self, images_rgba, device):
        """images_rgba: uint8 array [N, 64, 64, 4] (straight alpha). Kept on `device` as uint8."""
        self.images = torch.as_tensor(images_rgba).to(device)                    # [N, 64, 64, 4] uint8
        self.colours = torch.as_tensor(COLOUR_RGB, dtype=torch.float32, device=device) / 255.0  # [12, 3]
        self.device = device

    def __call__(self, emoji, colour, composition, background=None):
        """emoji, colour, composition: long tensors [B] on the device; background: optional float [B, 3] in
        [0, 1] replacing the colour table's RGB (classifier augmentation). Returns float [B, 3, 64, 64] in [-1, 1]."""
        rgba = self.images[emoji].permute(0, 3, 1, 2).float() / 255.0             # [B, 4, 64, 64]
        rgba = torch.cat([rgba[:, :3] * rgba[:, 3:], rgba[:, 3:]], dim=1)         # premultiplied
        placed = torch.zeros_like(rgba)
        for m, (_, scale, x0, y0) in enumerate(COMPOSITIONS):
            rows = (composition == m).nonzero().flatten()
            if len(rows) == 0:
                continue
            placed[rows] = place(rgba[rows], scale, x0, y0)
        if background is None:
            background = self.colours[colour]                                     # [B, 3]
        background = background[:, :, None, None]                                 # [B, 3, 1, 1]
        rgb = placed[:, :3] + (1.0 - placed[:, 3:]) * background                 # [B, 3, 64, 64]
        return rgb * 2.0 - 1.0


def place(rgba, scale, x0, y0, size=64):
    """Premultiplied rgba [b, 4, 64, 64] resized by `scale` and pasted with its top-left at (x0, y0) on an
    empty size x size canvas (parts outside are cropped). Returns [b, 4, size, size]."""
    if scale == 1.0 and x0 == 0 and y0 == 0:
        return rgba
    side = int(round(rgba.shape[-1] * scale))
    if scale < 1.0:
        resized = F.adaptive_avg_pool2d(rgba, side)                               # [b, 4, side, side]
    else:
        resized = F.interpolate(rgba, size=(side, side), mode="bilinear", align_corners=False)
    canvas = rgba.new_zeros(rgba.shape[0], 4, size, size)
    sx, sy = max(0, -x0), max(0, -y0)
    dx, dy = max(0, x0), max(0, y0)
    w, h = min(side - sx, size - dx), min(side - sy, size - dy)
    canvas[:, :, dy:dy + h, dx:dx + w] = resized[:, :, sy:sy + h, sx:sx + w]
    return canvas


def to_uint8(images):
    """float [B, 3, H, W] in [-1, 1] -> uint8 numpy [B, H, W, 3]."""
    return ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

"""Minimal PNG reader/writer on zlib + numpy (no Pillow needed).

Reads the 8-bit, non-interlaced PNGs that emoji-datasource ships (colour types 0, 2, 3, 4, 6; tRNS for
palettes) into RGBA uint8 [H, W, 4]. Writes RGB or RGBA uint8 arrays. Anything else is rejected by name.
"""
import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunks(data, path):
    if data[:8] != _SIGNATURE:
        raise ValueError(f"{path}: not a PNG file (bad signature)")
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if pos + 12 + length > len(data):
            raise ValueError(f"{path}: chunk {kind!r} runs past the end of the file")
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            return
    raise ValueError(f"{path}: no IEND chunk")


def _unfilter(raw, height, stride, bpp, path):
    if len(raw) != height * (stride + 1):
        raise ValueError(f"{path}: image data has {len(raw)} bytes, expected {height * (stride + 1)}")
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        cur = bytearray(line)
        if kind == 1:
            for x in range(bpp, stride):
                cur[x] = (cur[x] + cur[x - bpp]) & 255
        elif kind == 2:
            for x in range(stride):
                cur[x] = (cur[x] + prev[x]) & 255
        elif kind == 3:
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                cur[x] = (cur[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif kind != 0:
            raise ValueError(f"{path}: unknown PNG filter type {kind} in row {y}")
        out[y * stride:(y + 1) * stride] = cur
        prev = cur
    return np.frombuffer(bytes(out), dtype=np.uint8)


def read_png_rgba(path):
    """Returns uint8 [H, W, 4] (straight, not premultiplied, alpha)."""
    with open(path, "rb") as f:
        return decode_png_rgba(f.read(), path)


def decode_png_rgba(data, path="<bytes>"):
    """PNG bytes -> uint8 [H, W, 4]; `path` names the source in errors."""
    header, idat, palette, trns = None, [], None, None
    for kind, body in _chunks(data, path):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            trns = np.frombuffer(body, dtype=np.uint8)
    if header is None:
        raise ValueError(f"{path}: no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace != 0:
        raise ValueError(f"{path}: unsupported PNG (bit depth {depth}, colour type {colour}, interlace {interlace})")
    channels = _CHANNELS[colour]
    pixels = _unfilter(zlib.decompress(b"".join(idat)), height, width * channels, channels, path)
    pixels = pixels.reshape(height, width, channels)
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    if colour == 6:
        rgba[:] = pixels
    elif colour == 2:
        rgba[..., :3], rgba[..., 3] = pixels, 255
    elif colour == 4:
        rgba[..., :3], rgba[..., 3] = pixels[..., :1], pixels[..., 1]
    elif colour == 0:
        rgba[..., :3], rgba[..., 3] = pixels, 255
    else:
        if palette is None:
            raise ValueError(f"{path}: palette image without PLTE chunk")
        index = pixels[..., 0]
        if index.max() >= len(palette):
            raise ValueError(f"{path}: palette index out of range")
        alpha = np.full(len(palette), 255, dtype=np.uint8)
        if trns is not None:
            alpha[:len(trns)] = trns[:len(palette)]
        rgba[..., :3], rgba[..., 3] = palette[index], alpha[index]
    return rgba


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(image, text=None):
    """image: uint8 [H, W, 3|4]. text: optional dict of tEXt key -> value. Returns the PNG bytes."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"encode_png needs uint8 [H, W, 3|4], got {image.dtype} {image.shape}")
    height, width, channels = image.shape
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image.reshape(height, -1)], axis=1)
    body = _SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0))
    for key, value in (text or {}).items():
        body += _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace"))
    return body + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + _chunk(b"IEND", b"")


def write_png(path, image, text=None):
    with open(path, "wb") as f:
        f.write(encode_png(image, text))

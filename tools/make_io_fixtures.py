#!/usr/bin/env python3
"""Writes tests/fixtures/io/: safetensors and PNG files made by code independent of DiffusionSharp.

Safetensors files are laid out by a small Python writer that follows the reference writer (huggingface/
safetensors `prepare`: dtypes in descending enum order, then names; compact JSON; space padding to 8 bytes),
with expected float32 values from PyTorch/NumPy conversions and an FP8 decoder written from the format
definitions (checked against the maxima the OCP FP8 spec publishes). PNGs come from PIL's encoder and from
a hand-built encoder (zlib + explicit chunks, every filter type), with the pixels PIL decodes as expected values.

Run: OMP_NUM_THREADS=1 /usr/bin/python3 tools/make_io_fixtures.py   (needs torch, numpy, PIL)
"""
import json
import os
import random
import struct
import zlib
from fractions import Fraction

import numpy as np
import torch
from PIL import Image, PngImagePlugin

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")

DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
               "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]


# ----------------------------------------------------------------------------------------------- safetensors

def header_bytes(header):
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def serialize_reference(tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes)} -> file bytes in the reference writer's layout."""
    items = sorted(tensors.items(), key=lambda kv: (-DTYPE_ORDER.index(kv[1][0]), kv[0].encode("utf-8")))
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    for name, (dtype, shape, data) in items:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = header_bytes(header)
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(d for _, (_, _, d) in items)


def serialize_in_order(tensors, header_order, leading=b"", pad_to_mod8=0):
    """Data in the given dict order (no alignment care), header keys in header_order, custom whitespace."""
    header, offset, blobs = {}, 0, []
    spans = {}
    for name, (dtype, shape, data) in tensors.items():
        spans[name] = (dtype, shape, offset, offset + len(data))
        offset += len(data)
        blobs.append(data)
    for name in header_order:
        dtype, shape, b, e = spans[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [b, e]}
    h = leading + header_bytes(header)
    while len(h) % 8 != pad_to_mod8:
        h += b" "
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32_bytes(values):
    return np.asarray(values, dtype="<f4").tobytes()


def fp8_decode(code, kind):
    """Value of one FP8 code as a Python float (None for NaN), from the format definitions."""
    sign = -1 if code & 0x80 else 1
    if kind == "F8_E8M0":
        return None if code == 0xFF else float(Fraction(2) ** (code - 127))
    if kind in ("F8_E4M3FNUZ", "F8_E5M2FNUZ") and code == 0x80:
        return None
    ebits, mbits, bias = {"F8_E5M2": (5, 2, 15), "F8_E4M3": (4, 3, 7),
                          "F8_E4M3FNUZ": (4, 3, 8), "F8_E5M2FNUZ": (5, 2, 16)}[kind]
    e = (code >> mbits) & ((1 << ebits) - 1)
    m = code & ((1 << mbits) - 1)
    if kind == "F8_E5M2" and e == 31:
        return None if m else sign * float("inf")
    if kind == "F8_E4M3" and e == 15 and m == 7:
        return None
    if e == 0:
        mag = Fraction(m, 1 << mbits) * Fraction(2) ** (1 - bias)
    else:
        mag = (1 + Fraction(m, 1 << mbits)) * Fraction(2) ** (e - bias)
    return sign * float(mag) if mag != 0 else (-0.0 if sign < 0 else 0.0)


def check_fp8_published_values():
    # OCP 8-bit floating point specification (2023), table 1, and the FNUZ maxima of Graphcore/AMD formats.
    assert fp8_decode(0x7E, "F8_E4M3") == 448.0 and fp8_decode(0x01, "F8_E4M3") == 2.0 ** -9
    assert fp8_decode(0x7B, "F8_E5M2") == 57344.0 and fp8_decode(0x01, "F8_E5M2") == 2.0 ** -16
    assert fp8_decode(0x7C, "F8_E5M2") == float("inf")
    assert fp8_decode(0x7F, "F8_E4M3FNUZ") == 240.0 and fp8_decode(0x7F, "F8_E5M2FNUZ") == 57344.0
    assert fp8_decode(0x01, "F8_E4M3FNUZ") == 2.0 ** -10 and fp8_decode(0x01, "F8_E5M2FNUZ") == 2.0 ** -17
    assert fp8_decode(127, "F8_E8M0") == 1.0


def torch_float_of_bits(bits, torch_dtype):
    raw = torch.from_numpy(np.asarray(bits, dtype=np.uint16).view(np.int16).copy())
    return raw.view(torch_dtype).float().numpy()


def bits_of_torch(values, torch_dtype):
    t = torch.from_numpy(np.asarray(values, dtype=np.float32)).to(torch_dtype)
    return t.view(torch.int16).numpy().view(np.uint16)


def make_dtypes():
    rng = random.Random(1234)
    tensors = {}

    def add(dtype, shape, data, expected):
        expected = np.asarray(expected, dtype=np.float32)
        assert expected.size == int(np.prod(shape))
        tensors[f"{dtype}.values"] = (dtype, shape, data)
        tensors[f"{dtype}.expected"] = ("F32", shape, expected.astype("<f4").tobytes())

    half_bits = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00,
                 0x7E00, 0x7C01, 0xFE00, 0x3555, 0x0200]
    half_bits += [rng.randrange(0, 0x7C00) | (rng.randrange(2) << 15) for _ in range(63 - len(half_bits))]
    add("F16", [7, 9], np.asarray(half_bits, "<u2").tobytes(), torch_float_of_bits(half_bits, torch.float16))

    bf_bits = [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x7F81,
               0x4049, 0xC2F7]
    bf_bits += [rng.randrange(0, 0x10000) for _ in range(40 - len(bf_bits))]
    add("BF16", [40], np.asarray(bf_bits, "<u2").tobytes(), torch_float_of_bits(bf_bits, torch.bfloat16))

    f64 = [0.1, 1 / 3, 1e39, -1e39, 1e-46, 3e-45, 2.0 ** -149, 1 + 2.0 ** -24, 1 + 3 * 2.0 ** -24, float("nan"),
           -0.0, 123456789.123, 3.4028235677973366e38, -2.5]
    add("F64", [2, 7], np.asarray(f64, "<f8").tobytes(), torch.tensor(f64, dtype=torch.float64).float().numpy())

    ints = {
        "I8": ("<i1", [-128, -1, 0, 1, 127], torch.int8),
        "U8": ("<u1", [0, 1, 128, 255], torch.uint8),
        "I16": ("<i2", [-32768, -1, 0, 12345, 32767], torch.int16),
        "U16": ("<u2", [0, 1, 40000, 65535], None),
        "I32": ("<i4", [-2 ** 31, 2 ** 31 - 1, 16777217, 16777219, -16777217, 0, 7], torch.int32),
        "U32": ("<u4", [0, 2 ** 32 - 1, 16777217, 16777219, 3000000001], None),
        "I64": ("<i8", [-2 ** 63, 2 ** 63 - 1, 2 ** 53 + 1, 16777217, -3, 0], torch.int64),
        "U64": ("<u8", [0, 2 ** 64 - 1, 2 ** 63, 16777219, 2 ** 63 + 2 ** 39 + 1], None),
    }
    for dtype, (np_type, values, torch_type) in ints.items():
        arr = np.asarray(values, dtype=np_type)
        expected = arr.astype(np.float32)
        if torch_type is not None:
            assert np.array_equal(torch.from_numpy(arr.copy()).float().numpy(), expected)
        add(dtype, [len(values)], arr.tobytes(), expected)

    check_fp8_published_values()
    for dtype in ["F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0"]:
        decoded = [fp8_decode(c, dtype) for c in range(256)]
        add(dtype, [16, 16], bytes(range(256)), [float("nan") if v is None else v for v in decoded])

    # float32 -> F16 / BF16 rounding (what the writer must do), from PyTorch's RNE conversions.
    rounding = [0.0, -0.0, 1.0, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -11 + 2.0 ** -20, 65504.0, 65519.99,
                65520.0, -65520.0, 2.0 ** -24, 2.0 ** -25, 1.5 * 2.0 ** -25, 3 * 2.0 ** -25, 2.0 ** -26, 1e-8,
                6.1e-5, float("inf"), float("-inf"), float("nan"), 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8,
                1 + 2.0 ** -8 + 2.0 ** -20, 3.3895314e38, 3.4028235e38, 1e-40, -7.3e-39, 0.1, -0.3333333]
    rounding += [rng.uniform(-1000, 1000) for _ in range(64 - len(rounding))]
    rounding = np.asarray(rounding, dtype=np.float32)
    tensors["F32.round_input"] = ("F32", [64], rounding.astype("<f4").tobytes())
    tensors["F16.rounded"] = ("F16", [64], bits_of_torch(rounding, torch.float16).astype("<u2").tobytes())
    tensors["BF16.rounded"] = ("BF16", [64], bits_of_torch(rounding, torch.bfloat16).astype("<u2").tobytes())

    meta = {"format": "pt", "source": "tools/make_io_fixtures.py", "unicode": "naïve ✓ 猫"}
    return serialize_reference(tensors, meta)


def make_misaligned():
    """A file as older exporters write them: header not padded to 8, tensors at odd offsets, header keys in
    another order than the data, and whitespace before the JSON."""
    rng = np.random.default_rng(7)
    f32 = rng.standard_normal(37).astype(np.float32)
    f16 = rng.standard_normal(19).astype(np.float16)
    bf16_bits = bits_of_torch(rng.standard_normal(21).astype(np.float32), torch.bfloat16)
    f64 = rng.standard_normal(5)
    tensors = {
        "pad.u8": ("U8", [2], bytes([1, 2])),
        "w.f32": ("F32", [37], f32.astype("<f4").tobytes()),
        "w.f16": ("F16", [19], f16.astype("<f2").tobytes()),
        "w.bf16": ("BF16", [3, 7], bf16_bits.astype("<u2").tobytes()),
        "w.f64": ("F64", [5], f64.astype("<f8").tobytes()),
        "w.f32.expected": ("F32", [37], f32.astype("<f4").tobytes()),
        "w.f16.expected": ("F32", [19], f16.astype(np.float32).astype("<f4").tobytes()),
        "w.bf16.expected": ("F32", [3, 7], torch_float_of_bits(bf16_bits, torch.bfloat16).astype("<f4").tobytes()),
        "w.f64.expected": ("F32", [5], f64.astype(np.float32).astype("<f4").tobytes()),
    }
    order = ["w.f64", "pad.u8", "w.bf16.expected", "w.f16", "w.f32", "w.bf16", "w.f64.expected",
             "w.f32.expected", "w.f16.expected"]
    return serialize_in_order(tensors, order, leading=b"\n  ", pad_to_mod8=5)


def make_writer_layout():
    """The reference layout for a mix of dtypes, a scalar, an empty tensor and a name needing JSON escapes."""
    tensors = {
        "b": ("F16", [2, 3], np.arange(6, dtype="<f2").tobytes()),
        "a": ("F32", [2], f32_bytes([1.5, -2.0])),
        "c": ("U8", [3], bytes([7, 8, 9])),
        "scalar": ("F64", [], np.asarray([2.25], "<f8").tobytes()),
        "empty": ("I32", [0, 4], b""),
        'weird "name"\t✓\\': ("BF16", [1], bytes([0x80, 0x3F])),
        "i64": ("I64", [2], np.asarray([-1, 5], "<i8").tobytes()),
        "e4m3": ("F8_E4M3", [4], bytes([0x00, 0x38, 0x7E, 0xFE])),
    }
    return serialize_reference(tensors, {"format": "pt", "note": "línea\n\"two\"\u0001"})


# ------------------------------------------------------------------------------------------------------- PNG

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prior, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out[i] = (row[i] - pred) & 0xFF
    return bytes(out)


def handmade_png(width, height, color_type, channels, pixels, extra_before_idat=(), idat_splits=3):
    """Every row filtered with type y % 5; the zlib stream split over several IDAT chunks, one of them empty."""
    raw = bytearray()
    stride = width * channels
    prior = bytes(stride)
    for y in range(height):
        row = pixels[y * stride:(y + 1) * stride]
        raw.append(y % 5)
        raw += filter_row(y % 5, row, prior, channels)
        prior = row
    z = zlib.compress(bytes(raw), 9)
    cut = [len(z) * k // idat_splits for k in range(idat_splits + 1)]
    parts = [z[cut[k]:cut[k + 1]] for k in range(idat_splits)]
    parts.insert(1, b"")
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
    for kind, data in extra_before_idat:
        out += png_chunk(kind, data)
    for part in parts:
        out += png_chunk(b"IDAT", part)
    return out + png_chunk(b"IEND", b"")


def pattern(width, height, channels, seed):
    rng = random.Random(seed)
    data = bytearray()
    for y in range(height):
        for x in range(width):
            for ch in range(channels):
                # smooth ramps (so Sub/Up/Paeth matter) plus some noise, wrapping at 256
                data.append((x * (17 + 5 * ch) + y * (29 + 3 * ch) + rng.randrange(12)) & 0xFF)
    return bytes(data)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def make_pngs():
    parameters = ("a photo of a red fox in the snow, (highly detailed:1.2)\n"
                  "Negative prompt: blurry, lowres\n"
                  "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 23x11, Model: café-v1")

    # PIL encoder: RGB with tEXt (Latin-1 parameters), zTXt and iTXt.
    rgb = Image.frombytes("RGB", (23, 11), pattern(23, 11, 3, 1))
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    info.add_text("zipped", "compressed Latin-1 text: déjà vu " * 8, zip=True)
    info.add_itxt("prompt_ja", "雪の中の赤い狐 — ü", lang="ja", tkey="プロンプト", zip=True)
    info.add_itxt("plain_utf8", "a–b “quoted”", zip=False)
    rgb.save(os.path.join(OUT, "pil_rgb.png"), pnginfo=info)

    for mode, channels, seed in [("RGBA", 4, 2), ("L", 1, 3), ("LA", 2, 4)]:
        w, h = 19, 13
        Image.frombytes(mode, (w, h), pattern(w, h, channels, seed)).save(os.path.join(OUT, f"pil_{mode.lower()}.png"))

    # PIL palette image with more than 16 colours (so PIL keeps 8-bit indices) and per-entry alpha (tRNS).
    w, h, entries = 21, 9, 40
    palette = [(i * 6) % 256 for i in range(3 * entries)]
    alpha = bytes((255 - 6 * i) % 256 for i in range(entries - 5))  # shorter than the palette: the rest is opaque
    p = Image.frombytes("P", (w, h), bytes((x * 3 + y * 7) % entries for y in range(h) for x in range(w)))
    p.putpalette(palette)
    p.save(os.path.join(OUT, "pil_palette.png"), transparency=alpha)

    # Hand-built: all five filters, split IDAT, an unknown ancillary chunk, text in all three chunk kinds.
    text_chunks = [
        (b"tEXt", b"parameters\x00" + parameters.encode("latin-1")),
        (b"prVt", b"an ancillary chunk this reader does not know"),
        (b"zTXt", b"Comment\x00\x00" + zlib.compress("zTXt text, Latin-1: \xe9t\xe9".encode("latin-1"))),
        (b"iTXt", b"Title\x00\x01\x00en\x00Title\x00" + zlib.compress("Ünïcödé — 狐".encode("utf-8"))),
    ]
    write("handmade_rgb_filters.png", handmade_png(17, 10, 2, 3, pattern(17, 10, 3, 5), text_chunks))
    write("handmade_rgba_filters.png", handmade_png(9, 10, 6, 4, pattern(9, 10, 4, 6)))
    write("handmade_la_filters.png", handmade_png(11, 10, 4, 2, pattern(11, 10, 2, 7)))

    # Expected pixels as PIL decodes them (palette expanded to RGBA through its tRNS).
    for name in ["pil_rgb", "pil_rgba", "pil_l", "pil_la", "handmade_rgb_filters", "handmade_rgba_filters",
                 "handmade_la_filters"]:
        write(name + ".pixels", Image.open(os.path.join(OUT, name + ".png")).tobytes())
    decoded = Image.open(os.path.join(OUT, "pil_palette.png"))
    assert decoded.mode == "P"
    expected = decoded.convert("RGBA").tobytes()
    manual = b"".join(bytes(palette[3 * i:3 * i + 3]) + bytes([alpha[i] if i < len(alpha) else 255])
                      for i in decoded.tobytes())
    assert expected == manual
    write("pil_palette.pixels", expected)
    # Text as PIL reads it back, for the tests to compare: keyword\0value records.
    for name in ["pil_rgb", "handmade_rgb_filters"]:
        im = Image.open(os.path.join(OUT, name + ".png"))
        im.load()
        records = b"".join(k.encode("utf-8") + b"\x00" + str(v).encode("utf-8") + b"\x00" for k, v in sorted(im.text.items()))
        write(name + ".text", records)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("dtypes.safetensors", make_dtypes())
    write("misaligned.safetensors", make_misaligned())
    write("writer_layout.safetensors", make_writer_layout())
    make_pngs()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the layer-choice variants of docs/QUANTIZATION.md without re-running the whole search.

Every layer is quantized from its own fp32 calibration inputs, independently of the others, so a file in which
some layers are quantized can be assembled from two `diffusion quantize` runs with the same settings: BASE (the
default run, which keeps conv_in, conv_out and time_embedding.* 16-bit) and EXTRA (a run that keeps everything
but those, e.g. --keep 'down_blocks.*' --keep 'mid_block.*' --keep 'up_blocks.*'). The output is BASE with the
EXTRA layers whose key matches one of the patterns taken over (their qweight/wscales/smooth/proj_* tensors replace
the 16-bit weight, their metadata entries join "layers", and "keep" in the calibration record loses them).

    /usr/bin/python3 tools/quant/merge_layers.py BASE EXTRA OUT PATTERN [PATTERN...]     # fnmatch patterns

Plain Python (no numpy): tensors are copied as bytes.
"""
import fnmatch
import json
import os
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
    return meta, tensors


def write(path, meta, tensors):
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name in sorted(tensors):
        dtype, shape, blob = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    base_path, extra_path, out_path, patterns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    base_meta, base = read(base_path)
    extra_meta, extra = read(extra_path)
    for field in ("method", "rank", "group", "source_sha256"):
        if base_meta.get(field) != extra_meta.get(field):
            sys.exit(f"{field} differs: {base_meta.get(field)} vs {extra_meta.get(field)}")
    layers, extra_layers = json.loads(base_meta["layers"]), json.loads(extra_meta["layers"])
    taken = [k for k in extra_layers if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    if not taken:
        sys.exit(f"no layer of {extra_path} matches {patterns}")
    for key in taken:
        if key in layers:
            sys.exit(f"{key} is already quantized in {base_path}")
        layers[key] = extra_layers[key]
        del base[key + ".weight"]
        for name, tensor in extra.items():
            if name.startswith(key + ".") and name != key + ".bias":
                base[name] = tensor
    calibration = json.loads(base_meta["calibration"])
    calibration["keep"] = [k for k in calibration["keep"] if not any(fnmatch.fnmatchcase(t, k) for t in taken)]
    meta = dict(base_meta, layers=json.dumps(layers, separators=(",", ":")), calibration=json.dumps(calibration, separators=(",", ":")))
    write(out_path, meta, base)
    print(f"{out_path}: {len(layers)} quantized layers ({', '.join(taken)} from {extra_path})")


if __name__ == "__main__":
    main()

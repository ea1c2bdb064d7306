"""safetensors read/write in plain Python (the format: 8-byte little-endian header length, a JSON header of
name -> {dtype, shape, data_offsets} plus optional "__metadata__" of strings, then the raw little-endian data).

Used for this project's packed training artefacts and the classifier; sdref writes the diffusers folders.
"""
import json
import os
import struct

import numpy as np
import torch

_DTYPES = {torch.float16: "F16", torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64",
           torch.int32: "I32", torch.uint8: "U8"}
_NUMPY = {"F16": np.float16, "F32": np.float32, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def save(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (sorted by name in the file). Written to path + '.tmp', then renamed,
    so a crash never leaves a partial file under `path`."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name}: dtype {t.dtype} is not supported")
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def load(path):
    """Returns (dict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        if not 0 <= start <= end <= len(body):
            raise ValueError(f"{path}: tensor {name} lies outside the file")
        if info["dtype"] == "BF16":
            arr = np.frombuffer(body[start:end], dtype=np.int16).reshape(info["shape"])
            tensors[name] = torch.from_numpy(arr.copy()).view(torch.bfloat16)
        elif info["dtype"] in _NUMPY:
            arr = np.frombuffer(body[start:end], dtype=_NUMPY[info["dtype"]]).reshape(info["shape"])
            tensors[name] = torch.from_numpy(arr.copy())
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
    return tensors, metadata

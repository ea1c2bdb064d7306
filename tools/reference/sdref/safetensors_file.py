"""A minimal safetensors reader and writer (used when the `safetensors` package is not installed, and always for
streaming writes of large files).

File layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data buffer. The header maps each
tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data buffer) and may
hold "__metadata__": {str: str}. Like the reference writer, tensors are laid out by dtype alignment (largest
first) then by name, back to back, the header lists them in that order after "__metadata__", and the JSON is
padded with spaces to a multiple of 8 bytes. The reader applies the reference parser's checks (no holes,
overlaps or trailing bytes; sizes match shapes).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

DTYPE_NAMES: Dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
TORCH_DTYPES: Dict[str, torch.dtype] = {name: dtype for dtype, name in DTYPE_NAMES.items()}
_NUMPY_STORAGE = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.int16, "I64": np.int64,
                  "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
MAX_HEADER_SIZE = 100_000_000


def _itemsize(dtype_name: str) -> int:
    return np.dtype(_NUMPY_STORAGE[dtype_name]).itemsize


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Little-endian row-major bytes of a CPU tensor."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().astype("<i2", copy=False).tobytes()
    array = tensor.numpy()
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


TensorSpec = Tuple[str, str, Sequence[int]]  # (name, dtype name, shape)


def write_streaming(path: Union[str, Path], specs: Iterable[TensorSpec], produce: Callable[[str], torch.Tensor],
                    metadata: Optional[Mapping[str, str]] = None) -> int:
    """Write a safetensors file whose tensors are produced one at a time by `produce(name)`, so memory stays at
    one tensor. Returns the file size in bytes. The file is written to `path + '.tmp'` and renamed at the end,
    so a failure never leaves a partial file under `path`."""
    path = Path(path)
    specs = [(name, dtype, [int(d) for d in shape]) for name, dtype, shape in specs]
    names = [s[0] for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tensor names")
    for name, dtype, _ in specs:
        if dtype not in _NUMPY_STORAGE:
            raise ValueError(f"{name}: unsupported dtype {dtype}")
    ordered = sorted(specs, key=lambda s: (-_itemsize(s[1]), s[0]))
    header: Dict[str, object] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError("safetensors metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, dtype, shape in ordered:
        size = math.prod(shape) * _itemsize(dtype)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)

    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(header_bytes)))
            f.write(header_bytes)
            for name, dtype, shape in ordered:
                tensor = produce(name)
                if DTYPE_NAMES.get(tensor.dtype) != dtype or list(tensor.shape) != shape:
                    raise ValueError(f"{name}: produced {DTYPE_NAMES.get(tensor.dtype)} {list(tensor.shape)}, "
                                     f"declared {dtype} {shape}")
                f.write(tensor_bytes(tensor))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return 8 + len(header_bytes) + offset


def save_file(tensors: Mapping[str, torch.Tensor], path: Union[str, Path],
              metadata: Optional[Mapping[str, str]] = None) -> int:
    """Write `tensors` (name -> CPU tensor) to `path`. Returns the file size in bytes."""
    specs = []
    for name, tensor in tensors.items():
        if tensor.dtype not in DTYPE_NAMES:
            raise ValueError(f"{name}: unsupported dtype {tensor.dtype}")
        specs.append((name, DTYPE_NAMES[tensor.dtype], list(tensor.shape)))
    return write_streaming(path, specs, lambda name: tensors[name], metadata)


def read_header(path: Union[str, Path]) -> Tuple[Dict[str, dict], Dict[str, str], int]:
    """Parse and validate the header: returns ({name: {"dtype", "shape", "data_offsets"}}, metadata,
    data_start) where data_start = 8 + N is the file offset of the data buffer."""
    path = Path(path)
    file_size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path}: file too small for a safetensors header")
        (n,) = struct.unpack("<Q", prefix)
        if n > MAX_HEADER_SIZE:
            raise ValueError(f"{path}: header length {n} exceeds {MAX_HEADER_SIZE}")
        if 8 + n > file_size:
            raise ValueError(f"{path}: header length {n} runs past the end of the file")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ValueError(f"{path}: invalid safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"{path}: __metadata__ must map str to str")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or info.get("dtype") not in _NUMPY_STORAGE:
            raise ValueError(f"{path}: tensor {name!r}: missing or unsupported dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and o >= 0 for o in offsets)):
            raise ValueError(f"{path}: tensor {name!r}: invalid shape or data_offsets")
        entries.append((offsets[0], offsets[1], name, info))
    cursor = 0
    for begin, end, name, info in sorted(entries, key=lambda e: (e[0], e[1])):
        if begin != cursor or end < begin:
            raise ValueError(f"{path}: tensor {name!r}: invalid offset (holes or overlaps in the data buffer)")
        if end - begin != math.prod(info["shape"]) * _itemsize(info["dtype"]):
            raise ValueError(f"{path}: tensor {name!r}: byte size does not match dtype and shape")
        cursor = end
    if 8 + n + cursor != file_size:
        raise ValueError(f"{path}: data buffer is {file_size - 8 - n} bytes but the tensors cover {cursor}")
    return header, metadata, 8 + n


def _no_duplicates(pairs: List[Tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def load_file(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """Read every tensor of a safetensors file into CPU tensors (header validated as in `read_header`)."""
    header, _, data_start = read_header(path)
    tensors = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            begin, end = info["data_offsets"]
            f.seek(data_start + begin)
            raw = f.read(end - begin)
            storage = np.dtype(_NUMPY_STORAGE[info["dtype"]]).newbyteorder("<")
            array = np.frombuffer(raw, dtype=storage).reshape(info["shape"]).astype(storage.newbyteorder("="))
            tensor = torch.from_numpy(array.copy())
            if info["dtype"] == "BF16":
                tensor = tensor.view(torch.bfloat16)
            tensors[name] = tensor
    return tensors


def load_metadata(path: Union[str, Path]) -> Dict[str, str]:
    return read_header(path)[1]

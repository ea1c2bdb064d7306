"""Building modules without allocating their weights (to list checkpoint keys and shapes of full-size models)."""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Tuple

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.arange, torch.tensor}


class _MetaFactories(TorchFunctionMode):
    """Sends tensor factory calls without an explicit device to the meta device (torch 1.13 has no
    `with torch.device('meta')`)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


@contextlib.contextmanager
def meta_device() -> Iterator[None]:
    """Modules constructed inside this context hold meta tensors: shapes and dtypes, no storage."""
    if hasattr(torch.device, "__enter__"):
        with torch.device("meta"):
            yield
    else:
        with _MetaFactories():
            yield


def state_dict_shapes(module: nn.Module) -> List[Tuple[str, torch.dtype, Tuple[int, ...]]]:
    """(key, dtype, shape) of every state-dict entry, in state-dict order."""
    return [(k, v.dtype, tuple(v.shape)) for k, v in module.state_dict().items()]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def shapes_by_key(module: nn.Module) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}

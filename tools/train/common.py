"""Shared plumbing of the training scripts: import paths, devices, mixed precision, EMA, time budgets, logs.

Runs on torch 1.13 (CPU, Debian) and torch 2.x (CUDA); newer APIs are used only behind availability checks.
"""
import contextlib
import json
import math
import os
import sys
import time

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _sub in ("data", "eval", "train", "reference"):
    _path = os.path.join(TOOLS, _sub)
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import torch  # noqa: E402

START = time.time()


def log(message):
    """A timestamped progress line (seconds since the process started), flushed at once."""
    print(f"[{time.strftime('%H:%M:%S')} +{time.time() - START:7.1f}s] {message}", flush=True)


class JsonLog:
    """Appends one JSON object per line; the file survives crashes line by line."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self, **record):
        record.setdefault("time", round(time.time() - START, 2))
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def pick_device(name="auto"):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return device


def autocast(device):
    """bf16 autocast on CUDA devices that support it; a no-op elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def maybe_compile(module, enabled):
    """torch.compile where available and asked for; the module itself otherwise."""
    if enabled and hasattr(torch, "compile"):
        return torch.compile(module)
    return module


def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    return np.random.RandomState(seed % (2 ** 32))


class Ema:
    """Exponential moving average of a module's floating-point parameters and buffers (fp32 copies).
    decay ramps up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the initial weights.
    Create it after the module has reached its device: it keeps references to the module's tensors."""

    def __init__(self, module, decay):
        self.decay = decay
        self.updates = 0
        live = {k: v for k, v in module.state_dict().items() if v.is_floating_point()}
        self.keys = list(live)
        self.live = [live[k] for k in self.keys]
        self.shadow = {k: v.detach().clone().float() for k, v in live.items()}

    @torch.no_grad()
    def update(self, module=None):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        shadows = [self.shadow[k] for k in self.keys]
        if hasattr(torch, "_foreach_mul_") and all(v.dtype == torch.float32 for v in self.live):
            torch._foreach_mul_(shadows, d)
            torch._foreach_add_(shadows, self.live, alpha=1 - d)
        else:
            for s, v in zip(shadows, self.live):
                s.mul_(d).add_(v.float(), alpha=1 - d)

    def copy_to(self, module):
        state = module.state_dict()
        for k, v in self.shadow.items():
            state[k].copy_(v)

    def state_dict(self):
        return dict(self.shadow)

    def load_state_dict(self, shadow):
        for k in self.keys:
            self.shadow[k].copy_(shadow[k])


class Budget:
    """A wall-clock budget in seconds, counted from construction."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.start = time.time()

    def elapsed(self):
        return time.time() - self.start

    def left(self):
        return self.seconds - self.elapsed()

    def over(self):
        return self.left() <= 0


def scheduled_lr(step, fraction, peak, warmup, floor=0.1):
    """Linear warmup over `warmup` steps, then cosine from `peak` to floor*peak over the time budget
    (`fraction` = share of the stage's budget used so far; stages run by time, not by step count)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction))))


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)

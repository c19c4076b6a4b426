"""Choosing and checking the compute device, once, at the edge of a run."""

from __future__ import annotations

import re

import torch

from .errors import UsageError

__all__ = ["resolve_device"]

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a checked :class:`torch.device`.

    ``auto`` picks CUDA, then Apple MPS, then the CPU. The device is tested
    with a tiny allocation so that a broken driver fails now, not after the
    images are loaded.
    """
    text = str(spec).strip().lower()
    if not _DEVICE_RE.match(text):
        raise UsageError(f"unknown device '{spec}'; use auto, cpu, cuda, cuda:N or mps")
    if text == "auto":
        if torch.cuda.is_available():
            text = "cuda"
        elif _mps_available():
            text = "mps"
        else:
            text = "cpu"
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device '{text}' is not available: this PyTorch sees no CUDA GPU")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UsageError(f"device '{text}' is not available: {count} CUDA GPU(s) found (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not _mps_available():
        raise UsageError("device 'mps' is not available on this machine")
    try:
        torch.zeros(1, device=device).add_(1).item()
    except Exception as exc:  # any driver failure
        raise UsageError(f"device '{text}' does not work: {str(exc).splitlines()[0]}") from None
    if device.type == "cuda":
        # Each scale evaluates one image shape hundreds of times, so cuDNN's autotuning
        # (a few slow first iterations per shape) pays for itself. CUDA runs are not
        # bit-reproducible anyway; CPU runs are, and are untouched.
        torch.backends.cudnn.benchmark = True
    return device


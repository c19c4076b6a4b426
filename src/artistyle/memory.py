"""Memory planning: estimate a run's peak memory before it starts, and fit it to a budget.

The estimate, for the finest scale of ``P = H * W`` pixels in float32::

    peak ~ BASE + SLACK * (kept + incoming + transient + optimiser)

* kept: the one tensor per convolution that the VGG backward keeps
  (:class:`artistyle.vgg.VGGFeatures`), ``sum_l C_l P / 4^(block_l - 1)``;
* incoming: the gradients of the loss layers, handed to the VGG backward together;
* transient: about three tensors of the largest layer alive during the backward;
* optimiser: L-BFGS keeps ``2 * history + 4`` image-sized vectors (Adam 4);
* BASE: the torch runtime, the weights and the loaded images (CPU), or the
  CUDA context (GPU); SLACK: allocator overhead, measured (docs/benchmarks.md).

When the estimate is over the budget the planner first shrinks the L-BFGS
history (down to :data:`MIN_HISTORY`; Johnson's neural-style used 5 at
3620 px), and otherwise fails before any work, naming the largest size that
fits, so a run is never killed for memory half way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from .errors import UsageError
from .vgg import _LAYER_INDEX, _PLAN

__all__ = ["MIN_HISTORY", "Plan", "available_memory", "estimate_peak", "format_bytes", "parse_bytes", "plan_memory"]

MIN_HISTORY = 5
BASE_CPU = 350 * 2**20
BASE_CUDA = 600 * 2**20
SLACK = 1.3
# Share of the free memory a run may use when --max-memory is not given.
DEFAULT_SHARE = 0.8


def format_bytes(n: float) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} KB"


def parse_bytes(text: str) -> int:
    """``'8G'``, ``'512M'``, ``'1.5GB'`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match:
        raise UsageError(f"invalid memory size '{text}'; use e.g. 8G, 512M")
    value, unit = float(match.group(1)), match.group(2)
    return int(value * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[unit])


def available_memory(device: torch.device) -> int:
    """Free memory on the device: CUDA's free memory, or the system's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30  # unknown platform: assume a modest machine


def estimate_peak(
    width: int, height: int, layers: tuple[str, ...], *, history: int, optimizer: str = "lbfgs",
    device: torch.device | str = "cpu", bytes_per_value: int = 4,
) -> int:
    """Estimated peak memory in bytes of one iteration at ``width x height`` (see the module docstring)."""
    pixels = width * height
    deepest = max(_LAYER_INDEX[name] for name in layers)
    scale = 1
    kept = incoming = largest = 0
    for name, kind, channels in _PLAN[: deepest + 1]:
        if kind == "pool":
            scale *= 4
        size = channels * pixels // scale * bytes_per_value
        if kind == "conv":
            kept += size
            largest = max(largest, size)
        if name in layers:
            incoming += size
    image = 3 * pixels * 4
    vectors = 2 * history + 4 if optimizer == "lbfgs" else 4
    base = BASE_CUDA if torch.device(device).type == "cuda" else BASE_CPU
    return int(base + SLACK * (kept + incoming + 3 * largest + vectors * image))


@dataclass(frozen=True)
class Plan:
    history: int
    estimate: int
    budget: int


def plan_memory(
    width: int, height: int, layers: tuple[str, ...], *, history: int, optimizer: str,
    device: torch.device, max_memory: int | None,
) -> Plan:
    """Fit the run into ``max_memory`` (default: a share of the free memory) or raise UsageError."""
    budget = max_memory if max_memory is not None else int(DEFAULT_SHARE * available_memory(device))
    floor = estimate_peak(32, 32, layers, history=MIN_HISTORY, optimizer=optimizer, device=device)
    if budget < floor:
        raise UsageError(f"--max-memory {format_bytes(budget)} is below the {format_bytes(floor)} any run needs")
    candidates = [history] + [h for h in (20, 10, MIN_HISTORY) if h < history] if optimizer == "lbfgs" else [history]
    for h in candidates:
        estimate = estimate_peak(width, height, layers, history=h, optimizer=optimizer, device=device)
        if estimate <= budget:
            return Plan(h, estimate, budget)
    need = estimate_peak(width, height, layers, history=candidates[-1], optimizer=optimizer, device=device)
    # The largest long edge that fits, keeping the aspect ratio.
    lo, hi, long_edge = 32, max(width, height), max(width, height)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        w, h = round(width * mid / long_edge), round(height * mid / long_edge)
        if estimate_peak(w, h, layers, history=candidates[-1], optimizer=optimizer, device=device) <= budget:
            lo = mid
        else:
            hi = mid - 1
    raise UsageError(
        f"a {width}x{height} run needs about {format_bytes(need)}, over the {format_bytes(budget)} available "
        f"(--max-memory); the largest size that fits is about --size {lo}"
    )

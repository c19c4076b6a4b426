"""Memory planning: estimate a run's peak memory before it starts, and fit it to a budget.

The estimate, for the finest scale of ``P = H * W`` pixels in float32::

    peak ~ BASE + SLACK * (kept + incoming + transient + optimiser)

* kept: the one tensor per convolution that the VGG backward keeps
  (:class:`artistyle.vgg.VGGFeatures`), ``sum_l C_l P / 4^(block_l - 1)``;
* incoming: the gradients of the loss layers, handed to the VGG backward together;
* transient: about three tensors of the largest layer alive during the backward;
* optimiser: L-BFGS keeps ``2 * history + 4`` image-sized vectors (Adam 4);
* anchor (scales above ``--style-anchor``): a second, untiled pass on the image
  shrunk to the anchor size, after the main one has freed its tensors, so the
  network's share is the larger of the two; it adds two image-sized gradients;
* BASE: the torch runtime, the weights and the loaded images (CPU), or the
  CUDA context (GPU); SLACK: allocator overhead, measured (docs/benchmarks.md).

When the estimate is over the budget the planner first shrinks the L-BFGS
history (down to :data:`MIN_HISTORY`; Johnson's neural-style used 5 at
3620 px), and otherwise fails before any work, naming the largest size that
fits, so a run is never killed for memory half way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psutil
import torch

from .errors import UsageError
from .losses import ANCHOR_LAYERS
from .optim import HistoryStorage
from .tiling import halo_for
from .vgg import LAYERS, deepest_layer, layers_through

__all__ = [
    "MIN_HISTORY",
    "Plan",
    "available_memory",
    "estimate_peak",
    "format_bytes",
    "keep_freed_memory",
    "parse_bytes",
    "plan_memory",
]

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
    """Free memory on the device: CUDA's free memory, or the system's available memory (psutil)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def estimate_peak(
    width: int, height: int, layers: tuple[str, ...], *, history: int, optimizer: str = "lbfgs",
    device: torch.device | str = "cpu", bytes_per_value: int = 4, tile: int | None = None,
    content_layers: tuple[str, ...] = ("conv4_2",), anchor: tuple[int, int] | None = None,
    sliced_layers: tuple[str, ...] = (), storage: str = "fp32",
) -> int:
    """Estimated peak memory in bytes of one iteration at ``width x height`` (see the module docstring).

    ``storage``: where L-BFGS keeps its ``2 * history`` vectors (:class:`artistyle.optim.LBFGS`): fp32,
    bf16 (half) or disk (memory-mapped: not counted, the operating system pages them).

    With ``tile``, the network's tensors are those of one crop (the tile plus its
    halo on each side), and the full image adds its gradient and the content
    targets (see :mod:`artistyle.tiling`). ``anchor`` is the ``(width, height)``
    of the anchor pass (:meth:`artistyle.objective.StyleObjective.set_anchor`). ``sliced_layers``:
    the style layers of a sliced Wasserstein term (``--style-loss sw``), which keeps per position and
    direction the projection, its sorted copy, the sort's int64 index and the target quantile (24 bytes).
    """
    deepest = deepest_layer(layers)
    if tile is None:
        net_w, net_h, extra = width, height, 0
    else:
        halo = halo_for(deepest)
        net_w, net_h = min(width, tile + 2 * halo), min(height, tile + 2 * halo)
        # The full-size gradient, and the content targets kept at full size.
        extra = 3 * width * height * 4 + sum(
            layer.channels * width * height // layer.stride**2 * 4 for layer in LAYERS if layer.name in content_layers
        )
    image = 3 * width * height * 4
    extra += sum(24 * layer.channels * width * height // layer.stride**2 for layer in LAYERS
                 if layer.name in sliced_layers)
    network = _network_bytes(net_w * net_h, layers, bytes_per_value)
    if anchor is not None:
        # Its own network, cut at the deepest anchor layer (conv5_1).
        network = max(network, _network_bytes(anchor[0] * anchor[1], ANCHOR_LAYERS, bytes_per_value))
        extra += 2 * image
    pairs = 2 * history * {"bf16": 0.5, "disk": 0.0}.get(storage, 1.0)
    vectors = pairs + 4 if optimizer == "lbfgs" else 4
    base = BASE_CUDA if torch.device(device).type == "cuda" else BASE_CPU
    return int(base + SLACK * (network + vectors * image + extra))


def _network_bytes(pixels: int, layers: tuple[str, ...], bytes_per_value: int) -> int:
    """The VGG pass's kept, incoming and transient tensors for an input of ``pixels`` (module docstring)."""
    kept = incoming = largest = 0
    for layer in layers_through(deepest_layer(layers)):
        size = layer.channels * pixels // layer.stride**2 * bytes_per_value
        if layer.kind == "conv":
            kept += size
            largest = max(largest, size)
        if layer.name in layers:
            incoming += size
    return kept + incoming + 3 * largest


@dataclass(frozen=True)
class Plan:
    """How a scale runs: its L-BFGS history, its owned tile size (None: untiled), the estimate and the budget,
    and where the L-BFGS history is kept (fp32, bf16, disk)."""

    history: int
    tile: int | None
    estimate: int
    budget: int
    storage: HistoryStorage = "fp32"


# Owned tile sizes the planner tries, largest first (multiples of 16).
TILE_SIZES = (2048, 1536, 1024, 768, 512, 384, 256)


def plan_memory(
    width: int, height: int, layers: tuple[str, ...], *, history: int, optimizer: str,
    device: torch.device, max_memory: int | None, tile: int | None = None,
    content_layers: tuple[str, ...] = ("conv4_2",), bytes_per_value: int = 4, anchor: tuple[int, int] | None = None,
    sliced_layers: tuple[str, ...] = (), untileable: str | None = None, storage: HistoryStorage = "auto",
) -> Plan:
    """Fit one scale into ``max_memory`` (default: a share of the free memory), or raise UsageError.

    In order: the run as asked; a shorter L-BFGS history (down to MIN_HISTORY);
    exact tiling with the largest tile that fits. ``tile`` forces a tile size.
    ``anchor`` and ``sliced_layers``: see :func:`estimate_peak`. ``untileable``: why the style
    terms cannot be tiled (``--style-loss sw``): then a run that does not fit whole is refused.
    ``storage`` ``auto``: every plan with the history in fp32 first, then in bf16, then on disk.
    """
    budget = max_memory if max_memory is not None else int(DEFAULT_SHARE * available_memory(device))
    floor = estimate_peak(32, 32, layers, history=MIN_HISTORY, optimizer=optimizer, device=device)
    if budget < floor:
        raise UsageError(f"--max-memory {format_bytes(budget)} is below the {format_bytes(floor)} any run needs")
    histories = [history] + [h for h in (20, 10, MIN_HISTORY) if h < history] if optimizer == "lbfgs" else [history]

    storages: list[HistoryStorage] = (
        [storage] if storage != "auto" else ["fp32", "bf16", "disk"] if optimizer == "lbfgs" else ["fp32"]
    )

    def estimate(w: int, h: int, hist: int, t: int | None, kept: str = storages[-1]) -> int:
        return estimate_peak(
            w, h, layers, history=hist, optimizer=optimizer, device=device, tile=t, content_layers=content_layers,
            bytes_per_value=bytes_per_value, anchor=anchor, sliced_layers=sliced_layers, storage=kept,
        )

    smaller_tiles = [t for t in TILE_SIZES if t < max(width, height)] if untileable is None else []
    tile_choices: list[int | None] = [tile] if tile is not None else [None, *smaller_tiles]
    for kept in storages:
        for t in tile_choices:
            for hist in histories:
                need = estimate(width, height, hist, t, kept)
                if need <= budget:
                    return Plan(hist, t, need, budget, kept)
    smallest = tile_choices[-1]
    need = estimate(width, height, histories[-1], smallest)
    # The largest long edge that fits, keeping the aspect ratio.
    lo, hi, long_edge = 32, max(width, height), max(width, height)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate(round(width * mid / long_edge), round(height * mid / long_edge), histories[-1], smallest) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if untileable is not None:
        raise UsageError(
            f"a {width}x{height} run needs about {format_bytes(need)}, over the {format_bytes(budget)} available "
            f"(--max-memory), and {untileable}; use --style-loss w2 or meanstd (exact in tiles), or about --size {lo}"
        )
    raise UsageError(
        f"a {width}x{height} run needs about {format_bytes(need)} even tiled, over the {format_bytes(budget)} "
        f"available (--max-memory); the largest size that fits is about --size {lo}"
    )


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Ask the C allocator to keep freed memory for reuse; True where it could (glibc), else a no-op.

    Why: each VGG-19 pass allocates and frees activations of tens of MB. glibc serves blocks
    that large with ``mmap`` and unmaps them on ``free``, so the next pass page-faults every
    page in again, zeroed: about 200,000 faults and 13-15% of the time of a 512 px iteration
    on a CPU (benchmarks/bench_speed.py --keep-freed-memory). With ``mmap`` off and trimming
    off, freed blocks are reused. The price is a peak RSS about 10% higher that is not given
    back until the process ends: right for a command-line run or a worker, so the drivers
    call this; a library never changes its host process's allocator by itself.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))

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
from dataclasses import dataclass, field

import psutil
import torch

from .errors import UsageError
from .losses import ANCHOR_LAYERS
from .optim import HistoryStorage
from .tiling import TARGET_TILE, halo_for, tiles
from .vgg import LAYERS, deepest_layer, layers_through

__all__ = [
    "MIN_HISTORY",
    "Plan",
    "available_memory",
    "estimate_peak",
    "format_bytes",
    "keep_freed_memory",
    "memory_parts",
    "parse_bytes",
    "plan_memory",
    "process_bytes",
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
    parts = memory_parts(
        width, height, layers, history=history, optimizer=optimizer, bytes_per_value=bytes_per_value, tile=tile,
        content_layers=content_layers, anchor=anchor, sliced_layers=sliced_layers, storage=storage,
    )
    return process_bytes(parts["process"], device)


def process_bytes(parts: dict[str, int], device: torch.device | str = "cpu") -> int:
    """One process's estimate from its parts: the base (runtime, weights, CUDA context) plus the slack."""
    base = BASE_CUDA if torch.device(device).type == "cuda" else BASE_CPU
    return int(base + SLACK * sum(parts.values()))


def memory_parts(
    width: int, height: int, layers: tuple[str, ...], *, history: int, optimizer: str = "lbfgs",
    bytes_per_value: int = 4, tile: int | None = None, content_layers: tuple[str, ...] = ("conv4_2",),
    anchor: tuple[int, int] | None = None, sliced_layers: tuple[str, ...] = (), storage: str = "fp32",
    workers: int | None = None,
) -> dict[str, dict[str, int]]:
    """What a run's processes hold, part by part, in bytes (before the base and the slack).

    ``{"process": parts}`` for one process; with ``workers`` (and a ``tile``), ``{"driver": parts,
    "worker": parts}``: the driver keeps the image, the optimiser, the full gradient and content targets
    and runs the network only for the targets (one crop) and the anchor; the busiest worker (tile ``k``
    goes to worker ``k mod workers``) runs the network on its largest crop and keeps its crops, its
    tiles' owned content targets and their gradient blocks (:mod:`artistyle.tile_workers`).
    """
    deepest = deepest_layer(layers)
    pixels = width * height
    image = 3 * pixels * 4

    def crop_network(side: int | None) -> int:
        if side is None:
            return _network_bytes(pixels, layers, bytes_per_value)
        halo = halo_for(deepest)
        return _network_bytes(min(width, side + 2 * halo) * min(height, side + 2 * halo), layers, bytes_per_value)

    network = crop_network(tile)
    # The driver of tile workers runs the network only for the targets, on small crops (StyleObjective.target_tile).
    driver_network = crop_network(None if tile is None else min(tile, TARGET_TILE))
    if anchor is not None:  # its own network, cut at the deepest anchor layer (conv5_1)
        anchor_network = _network_bytes(anchor[0] * anchor[1], ANCHOR_LAYERS, bytes_per_value)
        network, driver_network = max(network, anchor_network), max(driver_network, anchor_network)
    pairs = 2 * history * {"bf16": 0.5, "disk": 0.0}.get(storage, 1.0) if optimizer == "lbfgs" else 0

    def targets(area: int) -> int:
        return sum(layer.channels * area // layer.stride**2 * 4 for layer in LAYERS if layer.name in content_layers)

    process = {"network": network, f"L-BFGS history ({storage})": int(pairs * image),
               "image, gradient, last steps": 4 * image}
    if tile is not None:
        process.update({"full-size gradient (tiled)": image, "content targets (tiled)": targets(pixels)})
    if sliced_layers:
        process["sliced Wasserstein sort"] = sum(
            24 * layer.channels * pixels // layer.stride**2 for layer in LAYERS if layer.name in sliced_layers)
    if anchor is not None:
        process["anchor gradients"] = 2 * image
    if workers is None or tile is None:
        return {"process": process}
    load: list[list[int]] = [[] for _ in range(workers)]
    owned: list[int] = [0] * workers
    for k, t in enumerate(tiles(height, width, tile, halo_for(deepest))):
        load[k % workers].append((t.cy1 - t.cy0) * (t.cx1 - t.cx0))
        owned[k % workers] += (t.y1 - t.y0) * (t.x1 - t.x0)
    busiest = max(range(workers), key=lambda i: sum(load[i]))
    crops = sum(load[busiest])
    worker = {"network (its largest crop)": _network_bytes(max(load[busiest], default=0), layers, bytes_per_value),
              "its crops, kept for pass 2": 12 * crops, "its gradient blocks": 12 * crops,
              "its tiles' content targets": targets(owned[busiest])}
    return {"driver": {**process, "network": driver_network}, "worker": worker}


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
    # Each process's parts (memory_parts: "process", or "driver" and "worker"); the estimate is the largest.
    parts: dict[str, dict[str, int]] = field(default_factory=dict, compare=False)


# Owned tile sizes the planner tries, largest first (multiples of 16).
TILE_SIZES = (2048, 1536, 1024, 768, 512, 384, 256)


def plan_memory(
    width: int, height: int, layers: tuple[str, ...], *, history: int, optimizer: str,
    device: torch.device, max_memory: int | None, tile: int | None = None,
    content_layers: tuple[str, ...] = ("conv4_2",), bytes_per_value: int = 4, anchor: tuple[int, int] | None = None,
    sliced_layers: tuple[str, ...] = (), untileable: str | None = None, storage: HistoryStorage = "auto",
    workers: int | None = None,
) -> Plan:
    """Fit one scale into ``max_memory`` (default: a share of the free memory), or raise UsageError.

    In order: the run as asked; a shorter L-BFGS history (down to MIN_HISTORY);
    exact tiling with the largest tile that fits. ``tile`` forces a tile size.
    ``anchor`` and ``sliced_layers``: see :func:`estimate_peak`. ``untileable``: why the style
    terms cannot be tiled (``--style-loss sw``): then a run that does not fit whole is refused.
    ``storage`` ``auto``: every plan with the history in fp32 first, then in bf16, then on disk.
    ``workers``: the tiles run on that many tile workers (with ``tile``): the budget is each process's, the
    driver's and every worker's (:func:`memory_parts`).
    """
    budget = max_memory if max_memory is not None else int(DEFAULT_SHARE * available_memory(device))
    floor = estimate_peak(32, 32, layers, history=MIN_HISTORY, optimizer=optimizer, device=device)
    if budget < floor:
        raise UsageError(f"--max-memory {format_bytes(budget)} is below the {format_bytes(floor)} any run needs")
    histories = [history] + [h for h in (20, 10, MIN_HISTORY) if h < history] if optimizer == "lbfgs" else [history]

    storages: list[HistoryStorage] = (
        [storage] if storage != "auto" else ["fp32", "bf16", "disk"] if optimizer == "lbfgs" else ["fp32"]
    )

    def parts(w: int, h: int, hist: int, t: int | None, kept: str = storages[-1]) -> dict[str, dict[str, int]]:
        return memory_parts(
            w, h, layers, history=hist, optimizer=optimizer, tile=t, content_layers=content_layers,
            bytes_per_value=bytes_per_value, anchor=anchor, sliced_layers=sliced_layers, storage=kept,
            workers=workers,
        )

    def estimate(w: int, h: int, hist: int, t: int | None, kept: str = storages[-1]) -> int:
        return max(process_bytes(p, device) for p in parts(w, h, hist, t, kept).values())

    smaller_tiles = [t for t in TILE_SIZES if t < max(width, height)] if untileable is None else []
    tile_choices: list[int | None] = [tile] if tile is not None else [None, *smaller_tiles]
    for kept in storages:
        for t in tile_choices:
            for hist in histories:
                need = estimate(width, height, hist, t, kept)
                if need <= budget:
                    return Plan(hist, t, need, budget, kept, parts(width, height, hist, t, kept))
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
    if workers is not None and smallest is not None:
        split = {name: process_bytes(p, device) for name, p in parts(width, height, histories[-1], smallest).items()}
        raise UsageError(
            f"a {width}x{height} run on {workers} tile workers needs about {format_bytes(split['driver'])} in the "
            f"driver and {format_bytes(split['worker'])} in the busiest worker, over the {format_bytes(budget)} each "
            f"process may use (--max-memory); the largest size that fits is about --size {lo}"
        )
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

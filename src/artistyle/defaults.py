"""The numbers behind StyleConfig's defaults, each with the measurement that chose it.

:mod:`artistyle.config` re-exports them; they live here so the schema stays readable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CPU_DEFAULT_SIZE", "DEFAULT_CONTENT_WEIGHT", "DEFAULT_LR", "DEFAULT_STEPS", "FAST_SCHEDULE", "FIRST_SCALE",
    "GPU_DEFAULT_SIZE", "INITS", "MAX_LBFGS_HISTORY", "MAX_OUTPUT_SIZE", "MAX_SCALES",
    "MIN_SIZE", "SCALE_FACTOR", "STYLE_ANCHOR", "TEMPORAL_WEIGHT", "unset_defaults",
]

# Output long edge when --size is not given. On a CPU it is chosen so that a
# default run takes minutes, not hours, on a laptop CPU (timings: README and docs/benchmarks.md).
GPU_DEFAULT_SIZE = 512
CPU_DEFAULT_SIZE = 448
MIN_SIZE = 32
# Coarse-to-fine: the first scale's long edge is about this, and each scale is
# SCALE_FACTOR times the previous one, up to the output size.
FIRST_SCALE = 256
SCALE_FACTOR = math.sqrt(2)
# The most scales a run may have (given, or made by the size and --scale-factor): the default makes 15 at 32768
# px; more only repeat nearly the same size, and 4^31 is still a float (checked before any power is taken).
MAX_SCALES = 32
# Ceilings that keep the arithmetic finite (a size of 10^400 px overflows a float) and the messages short: an
# output or style long edge, far beyond what any memory holds (the memory plan refuses much less), and the
# L-BFGS memory in image-sized vector pairs (default 20; 1000 is 6 GB at 512 px).
MAX_OUTPUT_SIZE = 65536
MAX_LBFGS_HISTORY = 1000
INITS = ("noise", "content", "style", "fast")  # or the path of an image
# The default schedule of a fast start (init "fast", artistyle.fast), for the schedule settings a user did not
# give (StyleConfig.resolved): two scales (317 and 448 px at 448), 40 + 32 iterations, 2.5 times the
# content weight (from the feed-forward picture the style term pulls the photo's structure away at weight 1).
# Measured on five pairs at 448 px (benchmarks/bench_fast.py, docs/benchmarks.md, "Fast start"): both neutral
# distances no worse than the default run's on every pair, in about a quarter of its time. One scale of 80
# iterations (the first schedule) took 0.35x and left Monet's water lilies 1.6x behind on style; the colour
# match of the start (fast_start) and the coarse scale closed that. Outputs too small for a first scale of
# MIN_SIZE px run the same iterations on one scale.
FAST_SCHEDULE: dict[str, Any] = {"steps": 40, "scales": 2, "scale_steps": (40, 32), "content_weight": 2.5}
# The values of the settings whose default depends on others (None in the schema: "unset"), where nothing else
# decides them (StyleConfig.resolved): the paper's 300 iterations and content weight 1.
DEFAULT_STEPS = 300
DEFAULT_CONTENT_WEIGHT = 1.0
# Default long edge (px) whose coarse layout larger scales keep (StyleObjective.set_anchor).
# Not in the paper: without it a large print drifts from the look of the same run at 512 px;
# with it both neutral distances stay close (measured in docs/benchmarks.md). Outputs of
# 512 px or less are untouched.
STYLE_ANCHOR = 512
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
# Weight of a video's temporal term (StyleObjective.set_temporal), chosen on ../shared/bench/video_clip.py
# at 160 px, 300 + 100 iterations (benchmarks/bench_video.py, docs/benchmarks.md "Video"): against painting
# the frames one by one, 0 gave warping error 0.20x with style 1.01x; 1e8 0.165x with style 1.15x and
# content 0.99x; 1e9 0.147x with style 1.42x; 1e10 and 1e11 were steadier only by the warped start and
# cost more style and content (warp 0.17x / 0.21x, content 1.13x / 1.19x). The warped start does most of
# the steadying; the term mainly keeps trusted pixels from re-arranging in the refinement.
TEMPORAL_WEIGHT = 1e8


def unset_defaults(init: str, size: int | None, scale_factor: float, given: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the schedule settings left unset (None in ``given``: steps, scales, scale_steps,
    content_weight), for :meth:`StyleConfig.resolved`.

    ``steps`` :data:`DEFAULT_STEPS` and ``content_weight`` :data:`DEFAULT_CONTENT_WEIGHT`, except for a fast
    start given neither steps nor scale steps: :data:`FAST_SCHEDULE` where unset. Given scales spread the fast
    start's first-scale steps, halved at each finer scale, as any steps are; a size too small for two scales
    gets their iterations on one.
    """
    changes: dict[str, Any] = {}
    if init == "fast" and given["steps"] is None and given["scale_steps"] is None:
        changes = {name: value for name, value in FAST_SCHEDULE.items() if given[name] is None}
        too_small = size is not None and round(size / scale_factor) < MIN_SIZE
        if given["scales"] is not None or too_small:
            del changes["scale_steps"]
            if too_small and given["scales"] is None:
                changes.update(scales=1, steps=sum(FAST_SCHEDULE["scale_steps"]))
    if given["steps"] is None:
        changes.setdefault("steps", DEFAULT_STEPS)
    if given["content_weight"] is None:
        changes.setdefault("content_weight", DEFAULT_CONTENT_WEIGHT)
    return changes

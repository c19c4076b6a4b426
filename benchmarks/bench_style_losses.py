#!/usr/bin/env python3
"""Seconds per evaluation of each style loss (``--style-loss``), against Gram in the same run.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_style_losses.py                       # 512 px untiled, 2048 px tiled
    PYTHONPATH=src python benchmarks/bench_style_losses.py --sizes 512 --rounds 5 --losses gram w2
    PYTHONPATH=src python benchmarks/bench_style_losses.py --sizes 2048 --tile 1024 --rounds 2

One evaluation is what an L-BFGS iteration costs: :meth:`StyleObjective.evaluate` (VGG-19 forward to
conv5_1, the content and style terms, the gradient with respect to the image). Per size, one objective
per loss is built on the same synthetic S x S content and style images (the tile size the memory planner
would pick for a 2048 px run on a small machine is forced with ``--tile``; ``sw`` cannot be tiled and
is skipped there). Then ``--rounds`` rounds evaluate each loss once in turn (interleaved, so that a noisy
shared machine slows all of them alike) after one warm-up evaluation each; the table gives the median
seconds and the ratio of medians to Gram's. The square roots of ``w2`` run where the run would
(``eigh`` on a CPU). Figures go to docs/benchmarks.md with date, command and machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date

import torch

from artistyle.config import StyleConfig
from artistyle.objective import StyleObjective
from artistyle.style_terms import STYLE_LOSSES, tiling_refusal
from artistyle.weights import default_weights


def synthetic(size: int, seed: int) -> torch.Tensor:
    """A smooth image with detail: random low-frequency colour plus fine noise, in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 8, 8, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (smooth + 0.1 * torch.rand(1, 3, size, size, generator=generator)).clamp(0, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--losses", nargs="+", default=list(STYLE_LOSSES), choices=STYLE_LOSSES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tile", type=int, default=1024, help="owned tile size at sizes above it (default 1024)")
    args = parser.parse_args()

    print(f"# style losses, s/evaluation; {date.today()}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}", file=sys.stderr)
    rows = []
    weights = default_weights()
    for size in args.sizes:
        tile = args.tile if size > args.tile else None
        content, style, image = synthetic(size, 1), synthetic(size, 2), synthetic(size, 3)
        objectives = {}
        for kind in args.losses:
            if tile is not None and tiling_refusal(kind) is not None:
                continue
            objective = StyleObjective(weights, StyleConfig(style_loss=kind), tile=tile)
            objective.set_content(content)
            objective.set_style(style)
            objective.evaluate(image)  # warm-up
            objectives[kind] = objective
        times: dict[str, list[float]] = {kind: [] for kind in objectives}
        for _ in range(args.rounds):
            for kind, objective in objectives.items():
                start = time.perf_counter()
                objective.evaluate(image)
                times[kind].append(time.perf_counter() - start)
                print(f"{size} {kind} {times[kind][-1]:.3f} s", file=sys.stderr)
        gram = statistics.median(times["gram"]) if "gram" in times else float("nan")
        for kind, seconds in times.items():
            median = statistics.median(seconds)
            rows.append((size, "tiled" if tile else "whole", kind, median, median / gram))
    print("| size | evaluation | loss | s/evaluation (median) | / gram |")
    print("|---|---|---|---|---|")
    for size, how, kind, median, ratio in rows:
        print(f"| {size} | {how} | {kind} | {median:.3f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

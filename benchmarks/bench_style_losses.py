#!/usr/bin/env python3
"""Seconds per evaluation of each style loss (``--style-loss``), against Gram in the same run.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_style_losses.py                       # 512 px untiled, 2048 px tiled
    PYTHONPATH=src python benchmarks/bench_style_losses.py --sizes 512 --rounds 5 --losses gram w2
    PYTHONPATH=src python benchmarks/bench_style_losses.py --sizes 2048 --tile 1024 --rounds 2
    PYTHONPATH=src python benchmarks/bench_style_losses.py --agree 768 --agree-tile 128   # tiled = untiled?

One evaluation is what an L-BFGS iteration costs: :meth:`StyleObjective.evaluate` (VGG-19 forward to
conv5_1, the content and style terms, the gradient with respect to the image). Per size, one objective
per loss is built on the same synthetic S x S content and style images (the tile size the memory planner
would pick for a 2048 px run on a small machine is forced with ``--tile``; ``sw`` cannot be tiled and
is skipped there). Then ``--rounds`` rounds evaluate each loss once in turn (interleaved, so that a noisy
shared machine slows all of them alike) after one warm-up evaluation each; the table gives the median
seconds and the ratio of medians to Gram's. The square roots of ``w2`` run where the run would
(``eigh`` on a CPU). Figures go to docs/benchmarks.md with date, command and machine.

``--agree S`` instead paints 20 iterations of each tileable loss at S px (one scale, from the same
seeded noise, the bundled cat and Starry Night) whole and with ``--agree-tile`` px tiles, and prints the
largest pixel difference: the issue's check that the tiled evaluation is exact for every loss (<= 1e-4).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date

import torch

from artistyle import NST
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
    parser.add_argument("--paddings", nargs="+", default=["reflect"], choices=["zeros", "reflect", "replicate"],
                        help="also time other paddings (gram only past the first), against the default's gram")
    parser.add_argument("--tile", type=int, default=1024, help="owned tile size at sizes above it (default 1024)")
    parser.add_argument("--agree", type=int, metavar="S", help="paint whole and tiled at S px and compare")
    parser.add_argument("--agree-tile", type=int, default=128)
    args = parser.parse_args()
    if args.agree:
        return agree(args.agree, args.agree_tile, [k for k in args.losses if tiling_refusal(k) is None])

    print(f"# style losses, s/evaluation; {date.today()}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}", file=sys.stderr)
    rows = []
    weights = default_weights()
    for size in args.sizes:
        tile = args.tile if size > args.tile else None
        content, style, image = synthetic(size, 1), synthetic(size, 2), synthetic(size, 3)
        objectives = {}
        arms = [(kind, args.paddings[0]) for kind in args.losses] + [("gram", p) for p in args.paddings[1:]]
        for kind, padding in arms:
            if tile is not None and tiling_refusal(kind) is not None:
                continue
            config = StyleConfig(style_loss=kind, padding=padding)  # type: ignore[arg-type]
            objective = StyleObjective(weights, config, tile=tile)
            objective.set_content(content)
            objective.set_style(style)
            objective.evaluate(image)  # warm-up
            objectives[kind if padding == args.paddings[0] else f"{kind} ({padding})"] = objective
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


def agree(size: int, tile: int, losses: list[str]) -> int:
    """Max |pixel difference| of 20 iterations painted whole and in tiles, per loss."""
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "src" / "artistyle" / "samples"
    print("| loss | size | tile | max abs pixel difference (20 iterations) | whole s | tiled s |")
    print("|---|---|---|---|---|---|")
    for kind in losses:
        pictures, seconds = [], []
        for t in (None, tile):
            nst = NST(size=size, device="cpu", seed=1, steps=20, scales=1, tile=t, style_loss=kind)
            start = time.perf_counter()
            pictures.append(nst.paint(samples / "chelsea_cat.jpg", samples / "starry_night.jpg").run())
            seconds.append(time.perf_counter() - start)
        difference = (pictures[0] - pictures[1]).abs().max().item()
        print(f"| {kind} | {size} | {tile} | {difference:.2e} | {seconds[0]:.0f} | {seconds[1]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

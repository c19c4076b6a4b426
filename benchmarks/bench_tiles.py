#!/usr/bin/env python3
"""Tile workers: one picture's evaluation spread over N processes (issue 26), and a model for N machines.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_tiles.py                       # 1024 and 2048 px
    PYTHONPATH=src python benchmarks/bench_tiles.py --sizes 1024 --rounds 3

For each size, one objective (the paper's layers, Gram, the sample cat and Starry Night) is evaluated
(loss and gradient, both tiled passes) in these ways, in the same run, each a warm-up then ``--rounds``
timed evaluations (median):

- ``1 process x T threads, whole``: untiled, the whole machine's threads (the usual run);
- ``1 process x T threads, tiled``: the same tiles as the workers, in-process;
- ``1 process x 1 thread, tiled``;
- ``N workers x 1 thread``: ``LocalTileWorkers(N, threads=1)`` for N = 1 .. ``--workers``, the driver on
  one thread; per evaluation the busiest worker's compute, the rest of the workers' wall time
  (pickling, pipes, waiting: "transfer"), and the driver's own share (adding the tiles' sums, the
  kernels, placing the gradient blocks: "driver").

The tiles are ``worker_tile(S, S, N)`` of the largest N, the same for every tiled row. Then a model
for M machines like this one (2 cores each, one worker of 2 threads per machine), from the measured
single-thread compute per crop pixel and transfer per byte, plus a network of ``--gbits`` Gbit/s, and the
driver's L-BFGS step (measured on a vector of the picture's size): time per evaluation at 2048 px, and
the 10800x7200 print's default schedule on 8 and 32 machines.

``--storage SIZE ...`` times the driver's L-BFGS step alone with its history in fp32, bf16 and on disk
(``--lbfgs-storage``); ``--agree SIZE`` checks the paintings on 1 .. ``--workers`` workers against one process.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import SAMPLES, import_artistyle, log

import_artistyle()

import torch

from artistyle import StyleConfig
from artistyle.images import load_image, resize_long_edge
from artistyle.images.tensors import array_to_tensor
from artistyle.objective import StyleObjective
from artistyle.optim import LBFGS
from artistyle.tile_workers import LocalTileWorkers, TileTimes, worker_tile
from artistyle.tiling import halo_for, tiles
from artistyle.weights import default_weights


def picture(name: str, size: int) -> torch.Tensor:
    return array_to_tensor(resize_long_edge(load_image(SAMPLES / name).rgb, size), torch.device("cpu"))


def timed(evaluate: Callable[[], object], rounds: int) -> float:
    evaluate()  # warm-up: starts the workers, sends them the plan
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        evaluate()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def lbfgs_step_seconds(pixels: int, history: int = 20, storage: str = "fp32") -> float:
    """The driver's L-BFGS step alone (two-loop recursion and update) on a picture of ``pixels``, history full."""
    x = torch.rand(1, 3, pixels, 1)
    optimizer = LBFGS(x, history=history, storage=storage)  # type: ignore[arg-type]
    target = torch.rand_like(x)

    def closure() -> tuple[float, torch.Tensor]:
        grad = optimizer.image - target
        return float(grad.pow(2).sum()) / 2, grad

    for _ in range(history + 1):
        optimizer.step(closure)  # type: ignore[arg-type]
    started = time.perf_counter()
    for _ in range(3):
        optimizer.step(closure)  # type: ignore[arg-type]
    closure_started = time.perf_counter()
    for _ in range(3):
        closure()
    closure_seconds = time.perf_counter() - closure_started
    return max(0.0, (closure_started - started - closure_seconds) / 3)


def measure(size: int, weights: object, threads: int, most: int, rounds: int, model: dict[str, float]) -> str:
    """The table of one size (and, from one worker, the model's inputs into ``model``)."""
    content, style = picture("chelsea_cat.jpg", size), picture("starry_night.jpg", 512)
    image = content.clone()
    height, width = content.shape[2:]
    tile = worker_tile(width, height, most)
    layout = tiles(height, width, tile, halo_for("conv5_1"))
    crop_pixels = sum((t.cy1 - t.cy0) * (t.cx1 - t.cx0) for t in layout)
    rows: list[tuple[str, float, str]] = []

    def objective(tile_size: int | None, workers: LocalTileWorkers | None = None) -> StyleObjective:
        made = StyleObjective(weights, StyleConfig(), tile=tile_size, workers=workers)  # type: ignore[arg-type]
        made.set_content(content)
        made.set_style(style)
        return made

    def row(name: str, made: StyleObjective, split: str = "") -> None:
        rows.append((name, timed(lambda: made.evaluate(image), rounds), split))
        log(f"{size}: {rows[-1]}")

    torch.set_num_threads(threads)
    row(f"1 process x {threads} threads, whole", objective(None))
    tiled = objective(tile)
    row(f"1 process x {threads} threads, tiled", tiled)
    torch.set_num_threads(1)
    row("1 process x 1 thread, tiled", tiled)
    one_thread = rows[-1][1]
    for count in range(1, most + 1):
        with LocalTileWorkers(count, threads=1) as pool:
            spread = objective(tile, pool)
            spread.evaluate(image)
            pool.times = TileTimes()  # count the timed rounds only
            seconds = timed(lambda spread=spread: spread.evaluate(image), rounds)
            t = pool.times
            evaluations = t.passes / 2
            compute, transfer = t.compute / evaluations, t.transfer / evaluations
            driver = max(0.0, seconds - t.wall / evaluations)
            moved = (t.bytes_sent + t.bytes_received) / evaluations
            rows.append((f"{count} worker{'s' if count > 1 else ''} x 1 thread", seconds,
                         f"{compute:.2f} / {transfer:.2f} / {driver:.2f} s, {moved / 1e6:.0f} MB"))
            log(f"{size}: {rows[-1]}")
            if count == 1:
                model.update(compute_per_crop_pixel=compute / crop_pixels, transfer_per_byte=transfer / moved,
                             bytes_per_crop_pixel=moved / crop_pixels, driver_per_pixel=driver / (height * width))
    torch.set_num_threads(threads)
    lines = [f"### {width}x{height}: {len(layout)} tiles of {tile} px (halo {halo_for('conv5_1')} px; crops "
             f"{crop_pixels / (width * height):.2f}x the picture's pixels); s per evaluation, median of {rounds}\n",
             f"| run | s / evaluation | vs 1 process x 1 thread, tiled | vs 1 process x {threads} threads, whole "
             "| compute / transfer / driver, moved |", "|---|---:|---:|---:|---|"]
    for name, seconds, split in rows:
        ratios = f"{one_thread / seconds:.2f}x | {rows[0][1] / seconds:.2f}x"
        lines.append(f"| {name} | {seconds:.2f} | {ratios} | {split} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--workers", type=int, default=2, help="the most workers to try (default 2: this machine's cores)")
    p.add_argument("--rounds", type=int, default=1, help="timed evaluations per row after a warm-up (median)")
    p.add_argument("--gbits", type=float, default=10.0, help="the modelled network's speed between machines")
    p.add_argument("--agree", type=int, metavar="SIZE",
                   help="instead: paint SIZE px for 20 iterations with 256 px tiles in this process and on 1 .. "
                        "--workers workers (one thread each), and print max |dpixel| against the single process")
    p.add_argument("--storage", type=int, nargs="+", metavar="SIZE",
                   help="instead: the L-BFGS step alone (history 20) with its pairs in fp32, bf16 and on disk, at "
                        "SIZE x SIZE px")
    args = p.parse_args()
    if args.storage:
        print("| picture | fp32 s / step | bf16 | disk |\n|---|---:|---:|---:|")
        for size in args.storage:
            seconds = [lbfgs_step_seconds(size * size, storage=kept) for kept in ("fp32", "bf16", "disk")]
            print(f"| {size}x{size} | {seconds[0]:.3f} | {seconds[1]:.3f} ({seconds[1] / seconds[0]:.2f}x) | "
                  f"{seconds[2]:.3f} ({seconds[2] / seconds[0]:.2f}x) |")
        return 0
    if args.agree:
        return agree(args.agree, args.workers)
    threads = torch.get_num_threads()
    weights = default_weights()
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    model_inputs: dict[str, float] = {}
    for size in args.sizes:
        print(measure(size, weights, threads, args.workers, args.rounds, model_inputs))
    if "compute_per_crop_pixel" in model_inputs:
        print(model_table(model_inputs, args.gbits, threads))
    return 0


def agree(size: int, most: int, steps: int = 20, tile: int = 256) -> int:
    """The issue's check: the painting on N workers against the single process's, same tiles, one thread each."""
    from artistyle import NST

    torch.set_num_threads(1)
    settings = {"size": size, "steps": steps, "scales": 1, "seed": 1, "device": "cpu", "tile": tile}
    started = time.perf_counter()
    alone = NST(**settings).paint(SAMPLES / "chelsea_cat.jpg", SAMPLES / "starry_night.jpg")
    alone.run()
    print(f"{size} px, {steps} iterations, {tile} px tiles, one thread a process; single process "
          f"{time.perf_counter() - started:.0f} s\n")
    print("| workers | max abs dpixel | bit-identical | seconds |\n|---:|---:|---|---:|")
    for count in range(1, most + 1):
        started = time.perf_counter()
        with NST(**settings, tile_workers=count) as nst:
            spread = nst.paint(SAMPLES / "chelsea_cat.jpg", SAMPLES / "starry_night.jpg")
            spread.run()
        difference = (spread.raw_image - alone.raw_image).abs().max().item()
        print(f"| {count} | {difference:.2e} | {torch.equal(spread.raw_image, alone.raw_image)} | "
              f"{time.perf_counter() - started:.0f} |")
    return 0


def model_table(m: dict[str, float], gbits: float, threads: int) -> str:
    """Time per evaluation on M machines of this kind, from the measured one-worker figures."""
    lines = [f"### A model for M machines of this kind (one worker of {threads} threads each, {gbits:g} Gbit/s)\n",
             "Compute per crop pixel on one thread, scaled by the threads (assumed linear: an upper bound on "
             "the speed); transfer as measured through pipes, or the network's speed where slower; the driver's "
             "L-BFGS step measured on a vector of the picture's size (history 20).\n",
             "| picture | M | tile | crops / picture | s / evaluation: compute + transfer + driver "
             "| speed-up vs M = 1 |",
             "|---|---:|---:|---:|---|---:|"]
    network = gbits * 1e9 / 8
    totals: dict[tuple[int, int], float] = {}
    for width, height in ((2048, 2048), (10800, 7200)):
        step = lbfgs_step_seconds(width * height) if width <= 4096 else lbfgs_step_seconds(2048 * 2048) * (
            width * height / 2048**2)
        for machines in (1, 2, 4, 8, 32):
            tile = worker_tile(width, height, machines, smallest=256)
            layout = tiles(height, width, tile, halo_for("conv5_1"))
            load = [0] * machines
            for k, t in enumerate(layout):
                load[k % machines] += (t.cy1 - t.cy0) * (t.cx1 - t.cx0)
            crops = sum(load)
            compute = max(load) * m["compute_per_crop_pixel"] / threads
            moved = crops * m["bytes_per_crop_pixel"]
            transfer = moved * max(m["transfer_per_byte"], 1 / network) if machines > 1 else 0.0
            driver = width * height * m["driver_per_pixel"] + step
            total = compute + transfer + driver
            totals[(width, machines)] = total
            lines.append(f"| {width}x{height} | {machines} | {tile} | {crops / (width * height):.2f} | "
                         f"{total:.1f} = {compute:.1f} + {transfer:.1f} + {driver:.1f} | "
                         f"{totals[(width, 1)] / total:.2f}x |")
    config = StyleConfig()
    sizes = config.scale_sizes(10800)
    schedule = config.resolved().scale_schedule(len(sizes))
    lines.append(f"\nThe 10800x7200 print's default schedule: scales {sizes} px with {schedule} iterations (about "
                 "1.25 evaluations an iteration); each scale's time scaled from the full size's by its pixels:\n")
    for machines in (8, 32):
        per_evaluation = totals[(10800, machines)]
        seconds = sum(per_evaluation * (s / 10800) ** 2 * n * 1.25 for s, n in zip(sizes, schedule, strict=True))
        lines.append(f"- {machines} machines: about {seconds / 3600:.1f} hours")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

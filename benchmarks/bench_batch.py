#!/usr/bin/env python3
"""Batch benchmark: the same jobs one after another in one process, on ``--workers``, and on a local Ray.

Usage (from the repository root; the Ray rows need the ray extra)::

    PYTHONPATH=src python benchmarks/bench_batch.py                        # 24 jobs at 256 px, 100 steps
    PYTHONPATH=src python benchmarks/bench_batch.py --jobs 4 --size 64 --steps 5   # a smoke run

The jobs: crops of the bundled sample photos, each with one of the two sample paintings, CPU, seed 1.
Rows (each a fresh OUTDIR, through :class:`artistyle.batch.Batch`, so skipping and the journal are
counted too):

* ``local, 1 x T``: :class:`LocalExecutor`, one job after another in this process with T = every CPU;
* ``--workers W``: :class:`PoolExecutor`, W worker processes of CPUs/W threads;
* ``ray W x T``: :class:`RayExecutor` on a private local Ray with W*T CPUs, T CPUs per job
  (``--cpus-per-job T``): 2 workers of 1 thread, and 1 worker of 2 threads, by default.

Wall times include starting workers and loading VGG-19 in each; Ray's start (``connect``) is timed
apart. Ray's overhead per job is (Ray 1 x T - local 1 x T) / jobs, against the local job's time
(the target: under 10%). Prints a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SAMPLES, import_artistyle, log


def make_inputs(folder: Path, jobs: int, size: int) -> tuple[list[Path], list[Path]]:
    """``jobs`` distinct content crops and the two sample paintings."""
    from PIL import Image

    photos = [Image.open(SAMPLES / name).convert("RGB") for name in ("astronaut.jpg", "chelsea_cat.jpg")]
    contents = []
    for i in range(jobs):
        photo = photos[i % 2]
        w, h = photo.size
        side = min(w, h) * (0.6 + 0.4 * ((i * 7) % 10) / 10)
        left, top = (w - side) * ((i * 3) % 5) / 4, (h - side) * ((i * 5) % 3) / 2
        path = folder / f"photo{i:02d}.png"
        photo.crop((int(left), int(top), int(left + side), int(top + side))).resize((size, size)).save(path)
        contents.append(path)
    return contents, [SAMPLES / "great_wave.jpg", SAMPLES / "starry_night.jpg"]


def timed(batch: Any) -> float:
    started = time.perf_counter()
    outcome = batch.run()
    seconds = time.perf_counter() - started
    if outcome.failed:
        raise SystemExit(f"bench_batch: a job failed: {outcome.failed[0].error}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="W of the --workers and Ray rows (default 2)")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray rows")
    parser.add_argument("--no-workers", action="store_true", help="leave out the --workers row")
    args = parser.parse_args(argv)
    import_artistyle()
    import torch

    from artistyle import StyleConfig
    from artistyle.batch import Batch, JobSpec, LocalExecutor, make_jobs
    from artistyle.batch.paint import cpu_count
    from artistyle.batch.pool import PoolExecutor

    cpus = cpu_count()
    config = StyleConfig(size=args.size, steps=args.steps, seed=1, device="cpu")
    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        contents, styles = make_inputs(root, args.jobs, args.size)
        specs = [JobSpec(c, (styles[i % 2],)) for i, c in enumerate(contents)]

        def batch(name: str, executor: Any) -> Any:
            out = root / name
            return Batch(make_jobs(specs, out, config), out, executor=executor)

        torch.set_num_threads(cpus)
        from artistyle.memory import keep_freed_memory

        keep_freed_memory()  # as the command does, and as every worker process does
        log(f"local, 1 x {cpus} threads ...")
        local = timed(batch("local", LocalExecutor()))
        rows.append((f"local, 1 job x {cpus} threads", local, None))
        if not args.no_workers:
            log(f"--workers {args.workers} ...")
            rows.append((f"--workers {args.workers} ({max(1, cpus // args.workers)} threads each)",
                         timed(batch("pool", PoolExecutor(args.workers))), None))
        ray_same = None
        if not args.no_ray:
            from artistyle.batch.ray_executor import RayExecutor

            for workers, threads in ((args.workers, 1), (1, args.workers)):
                log(f"ray {workers} x {threads} ...")
                executor = RayExecutor(num_cpus=workers * threads, cpus_per_job=threads)
                started = time.perf_counter()
                executor.connect()
                start = time.perf_counter() - started
                try:
                    seconds = timed(batch(f"ray{workers}x{threads}", executor))
                finally:
                    executor.close()
                rows.append((f"--ray, {workers} job(s) x {threads} thread(s)", seconds, start))
                if threads == cpus:
                    ray_same = seconds
    print(f"\n{args.jobs} jobs at {args.size} px, {args.steps} steps, CPU ({cpus} CPUs, torch "
          f"{torch.__version__})\n")
    print("| executor | wall s | jobs/min | vs local | Ray start s |\n| --- | ---: | ---: | ---: | ---: |")
    for name, seconds, start in rows:
        print(f"| {name} | {seconds:.1f} | {60 * args.jobs / seconds:.1f} | {local / seconds:.2f}x | "
              f"{'' if start is None else f'{start:.1f}'} |")
    if ray_same is not None:
        per_job = (ray_same - local) / args.jobs
        print(f"\nRay's overhead per job (same threads as local): {per_job:+.2f} s, "
              f"{100 * per_job / (local / args.jobs):+.0f}% of a local job ({local / args.jobs:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

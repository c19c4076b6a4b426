#!/usr/bin/env python3
"""CPU speed and memory benchmark: ArtiStyle vs the FLOP floor and the PyTorch-tutorial baseline.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_speed.py                  # sizes 128 256 512, 8 evaluations
    PYTHONPATH=src python benchmarks/bench_speed.py --sizes 256 --evals 12 --json bench.json
    PYTHONPATH=src python benchmarks/bench_speed.py --skip-baseline  # ArtiStyle and the floor only
    PYTHONPATH=src python benchmarks/bench_speed.py --skip-baseline --reference-src /tmp/before/src --rounds 5
    PYTHONPATH=src python benchmarks/bench_speed.py --skip-baseline --keep-freed-memory --rounds 5

It prints a Markdown table (and the machine, date and measured conv throughput) on stdout; progress
and the stderr tail of any failed run go to stderr.

What one "evaluation" is: one forward pass of VGG-19 up to conv5_1 with the Gatys losses (content at
conv4_2, style Gram matrices at conv1_1, conv2_1, conv3_1, conv4_1, conv5_1) plus the backward pass that
gives the gradient of the loss with respect to the input image. Style transfer with L-BFGS costs one
evaluation per iteration, so seconds per evaluation is the speed that matters.

Method, for each square size S (everything is measured in the same run, so a noisy shared machine
affects all columns alike; never compare with numbers from another day):

1. FLOP floor. The forward FLOPs of the 13 convolutions conv1_1..conv5_1 are
   ``sum 2 * Cin * Cout * 9 * H * W`` (23.7 / 94.7 / 379 GFLOP forward+backward at 128 / 256 / 512 px,
   i.e. half that forward). The input-gradient backward of a conv costs as much as its forward, so an
   evaluation costs ``2 * forward FLOPs``. This machine's fp32 conv throughput is measured here, at S,
   as forward FLOPs / time of a no-grad forward of ``artistyle.vgg.VGGFeatures(default_weights(),
   ["conv5_1"])`` (channels-last, best of a few repeats; the time includes the ReLUs and poolings, so the
   throughput is slightly conservative). ``floor s = 2 * forward FLOPs / throughput``: what an evaluation
   would cost if the backward ran as fast as the forward and nothing else (losses, Gram matrices,
   optimiser) cost anything.
2. ArtiStyle. A subprocess (``--worker artistyle``) builds ``artistyle.NST(size=S, device="cpu",
   seed=0, steps=N)``, loads two synthetic S x S images made in memory (a smooth gradient with a disc as
   content, a stripe texture as style) and iterates ``nst.transfer(inputs)``. Seconds per evaluation is
   the median of the differences of ``Progress.elapsed`` excluding the first iteration; this includes the
   L-BFGS step and everything else an iteration does. Peak RSS is the worker's ``ru_maxrss`` at the end.
   Note: L-BFGS keeps up to ``lbfgs_history`` (the configured default, read from the run) pairs of
   image-sized fp32 vectors, but after N evaluations it holds at most N - 1, so the measured RSS misses
   ``(history - pairs) * 2 * 3 * S * S * 4`` bytes that a long run adds; the last column adds that estimate.
3. Baselines (skipped with ``--skip-baseline`` or when the script is absent):
   ``<repo>/../shared/bench/baseline_tutorial.py --size S --steps N --exact --print-every 0 --json TMP``,
   once as is (VGG weights require grad, as in the PyTorch tutorial) and once with ``--freeze-weights``.
   Seconds per evaluation is its ``closure_median_s`` (median closure time excluding the first; unlike the
   ArtiStyle number it excludes the optimiser step, which favours the baseline slightly). Each runs under a
   small ``python -c`` launcher that executes the script with :mod:`runpy` and then reports its own
   ``ru_maxrss``, so peak RSS is per run. The baseline's torch L-BFGS also holds fewer history pairs after
   N evaluations than in a long run.

The speed-ups are ``baseline s/eval / ArtiStyle s/eval``; "x floor" is ``ArtiStyle s/eval / floor s``.
MB are 10^6 bytes. A failed subprocess prints its stderr tail and its cells read "failed".
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BASELINE, REPO, emit, import_artistyle, parse_result

# VGG-19 convolutions through conv5_1: (name, Cin, Cout, downsampling factor of H and W).
CONVS = [
    ("conv1_1", 3, 64, 1), ("conv1_2", 64, 64, 1),
    ("conv2_1", 64, 128, 2), ("conv2_2", 128, 128, 2),
    ("conv3_1", 128, 256, 4), ("conv3_2", 256, 256, 4), ("conv3_3", 256, 256, 4), ("conv3_4", 256, 256, 4),
    ("conv4_1", 256, 512, 8), ("conv4_2", 512, 512, 8), ("conv4_3", 512, 512, 8), ("conv4_4", 512, 512, 8),
    ("conv5_1", 512, 512, 16),
]

# Runs a script with runpy, then prints this process's peak RSS as the last line.
LAUNCHER = r"""
import json, resource, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
sys.stdout.flush()
print("BENCH_RESULT " + json.dumps({"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
sys.exit(code)
"""


def forward_flops(size: int) -> float:
    """Forward FLOPs of VGG-19's convs conv1_1..conv5_1 on a size x size image (2 per multiply-add)."""
    total = 0.0
    for _, cin, cout, down in CONVS:
        side = size // down
        total += 2.0 * cin * cout * 9 * side * side
    return total


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- workers (subprocesses)
def synthetic_images(size: int):
    """Content: smooth gradient with a disc. Style: a diagonal stripe texture. Both PIL RGB, size x size."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    content = np.stack([0.2 + 0.6 * xx, 0.2 + 0.6 * yy, 0.8 - 0.5 * xx * yy], axis=-1)
    disc = (xx - 0.55) ** 2 + (yy - 0.45) ** 2 < 0.22**2
    content[disc] = (0.9, 0.75, 0.2)
    phase = (xx + 0.5 * yy) * 12 * np.pi
    stripes = 0.5 + 0.5 * np.sin(phase)
    style = np.stack([0.1 + 0.8 * stripes, 0.3 + 0.4 * (1 - stripes), 0.6 + 0.3 * np.cos(phase / 3)], axis=-1)

    def pil(a):
        return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")

    return pil(content), pil(style)


def worker_floor(size: int, repeats: int, threads: int | None) -> dict:
    import torch

    artistyle = import_artistyle()
    from artistyle.vgg import VGGFeatures
    from artistyle.weights import default_weights

    _set_threads(threads)
    net = VGGFeatures(default_weights(), ["conv5_1"])
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    times = []
    with torch.no_grad():
        net(x)  # warm-up: oneDNN primitive creation, allocator
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    best = min(times)
    flops = forward_flops(size)
    return {
        "size": size,
        "forward_s_best": best,
        "forward_s_all": times,
        "forward_gflop": flops / 1e9,
        "gflops_per_s": flops / best / 1e9,
        "floor_s": 2 * flops / (flops / best),
        "threads": torch.get_num_threads(),
        "artistyle": artistyle.__version__,
    }


def worker_artistyle(size: int, evals: int, threads: int | None) -> dict:
    import resource

    import torch

    artistyle = import_artistyle()
    _set_threads(threads)
    t0 = time.perf_counter()
    nst = artistyle.NST(size=size, device="cpu", seed=0, steps=evals)
    content, style = synthetic_images(size)
    inputs = nst.load_images(content, style)
    transfer = nst.transfer(inputs)
    setup = time.perf_counter() - t0
    elapsed = [0.0]
    losses = []
    for event in transfer:
        elapsed.append(event.elapsed)
        losses.append(event.loss)
    per_iter = [b - a for a, b in itertools.pairwise(elapsed)]
    steady = per_iter[1:] if len(per_iter) > 1 else per_iter
    # The L-BFGS object: ``transfer.optimizer`` since 0.5, ``transfer.lbfgs`` before (--reference-src runs old code).
    lbfgs = getattr(transfer, "optimizer", None) or getattr(transfer, "lbfgs", None)
    pairs = len(getattr(lbfgs, "steps_s", ()))
    return {
        "size": size,
        "evals": len(per_iter),
        "setup_s": setup,
        "first_s": per_iter[0] if per_iter else float("nan"),
        "s_per_eval_median": statistics.median(steady) if steady else float("nan"),
        "s_per_eval_min": min(steady) if steady else float("nan"),
        "s_per_eval_mean": statistics.mean(steady) if steady else float("nan"),
        "per_iteration_s": per_iter,
        "lbfgs_pairs": pairs,
        "lbfgs_history": nst.config.lbfgs_history,
        "final_loss": losses[-1] if losses else None,
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "threads": torch.get_num_threads(),
        "artistyle": artistyle.__version__,
    }


# --------------------------------------------------------------------------- driver
# glibc's environment equivalent of artistyle.memory.keep_freed_memory() (which the CLI and the studio call):
# large blocks are not mmapped and freed memory is not trimmed, so each pass reuses the last one's pages.
KEEP_FREED_MEMORY = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}


def run_subprocess(
    cmd: list[str], label: str, timeout: float, src: str | None = None, extra_env: dict[str, str] | None = None
) -> tuple[dict | None, str]:
    """Run ``cmd`` with ``src`` (default: this checkout's) first on the path; return (its result or None, error)."""
    env = {**os.environ, **(extra_env or {})}
    src = src or str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print(f"  running {label} ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    busy0, child0 = _system_busy_s(), _children_cpu_s()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))
    except subprocess.TimeoutExpired as exc:
        tail = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode(errors="replace")
        return None, f"timed out after {timeout:.0f} s\n" + tail(tail)
    except OSError as exc:
        return None, f"could not start: {exc}"
    result = parse_result(proc.stdout)
    if proc.returncode != 0 or result is None:
        why = f"exit code {proc.returncode}" if proc.returncode != 0 else "no result line"
        return None, f"{why}\n--- stderr tail ---\n{tail(proc.stderr)}\n--- stdout tail ---\n{tail(proc.stdout)}"
    wall = time.perf_counter() - t
    busy1, child1 = _system_busy_s(), _children_cpu_s()
    if busy0 is not None and busy1 is not None:
        # CPU time the whole machine spent busy minus what our subprocess used: other processes' load.
        others = max(busy1 - busy0 - (child1 - child0), 0.0)
        result["other_cpu_share"] = others / (wall * (os.cpu_count() or 1))
    result["wall_s"] = wall
    print(f"  {label} done in {wall:.1f} s", file=sys.stderr, flush=True)
    return result, ""


def _system_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot, from /proc/stat (None where unavailable)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_baseline(size: int, evals: int, freeze: bool, threads: int | None, timeout: float) -> tuple[dict | None, str]:
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        out = Path(tmp) / "baseline.json"
        cmd = [sys.executable, "-c", LAUNCHER, str(BASELINE), "--size", str(size), "--steps", str(evals),
               "--exact", "--print-every", "0", "--json", str(out)]
        if freeze:
            cmd.append("--freeze-weights")
        if threads:
            cmd += ["--threads", str(threads)]
        label = f"tutorial{' --freeze-weights' if freeze else ''} at {size} px"
        rss, err = run_subprocess(cmd, label, timeout)
        if rss is None:
            return None, err
        try:
            data = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return None, f"could not read the baseline's JSON: {exc}"
        for key in ("ru_maxrss_kib", "other_cpu_share", "wall_s"):
            data[key] = rss.get(key)
        return data, ""


def machine_info() -> dict:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    import torch

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _mb(kib: float | None) -> str:
    return "failed" if kib is None else f"{kib * 1024 / 1e6:.0f}"


def _f(x: float | None, fmt: str = "{:.3f}") -> str:
    return "failed" if x is None else fmt.format(x)


def format_report(info: dict, rows: list[dict], evals: int, skip_baseline: bool, baseline_present: bool) -> str:
    def cell(row: dict, key: str, field: str, fmt: str = "{:.3f}") -> str:
        entry = row.get(key)
        if entry == "skipped":
            return "skipped"
        return _f(None if entry is None else entry[field], fmt)

    def ratio(num: float | None, den: float | None, fmt: str = "{:.2f}x") -> str:
        if num is None or den is None or den <= 0:
            return "n/a"
        return fmt.format(num / den)

    def value(row: dict, key: str, field: str) -> float | None:
        entry = row.get(key)
        return entry[field] if isinstance(entry, dict) else None

    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), "
        f"torch {info['torch']}, {info['torch_threads']} torch threads, Python {info['python']}",
        f"Date: {info['date_utc']}; load average (1/5/15 min) at start {info.get('loadavg_start')}, "
        f"at end {info.get('loadavg_end')}",
        f"Evaluations per run: {evals} (medians exclude the first)",
        "Measured fp32 conv throughput (no-grad VGG-19 forward to conv5_1, best of repeats): "
        + ", ".join(
            f"{r['size']} px: {_f(value(r, 'floor', 'gflops_per_s'), '{:.1f} GFLOP/s')}" for r in rows
        ),
        "",
        "| size | floor s | ArtiStyle s/eval | x floor | tutorial s/eval | tutorial frozen s/eval "
        "| speed-up vs tutorial | speed-up vs frozen | peak RSS MB ArtiStyle / tutorial / frozen "
        "| ArtiStyle RSS + full L-BFGS history, est. MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        floor = value(r, "floor", "floor_s")
        ours = value(r, "artistyle", "s_per_eval_median")
        tut = value(r, "tutorial", "closure_median_s")
        frozen = value(r, "frozen", "closure_median_s")
        rss = [
            "skipped" if r.get(k) == "skipped" else _mb(value(r, k, "ru_maxrss_kib"))
            for k in ("artistyle", "tutorial", "frozen")
        ]
        a = r.get("artistyle")
        if isinstance(a, dict):
            missing = max(a["lbfgs_history"] - a["lbfgs_pairs"], 0)
            full = a["ru_maxrss_kib"] * 1024 / 1e6 + missing * 2 * 3 * r["size"] ** 2 * 4 / 1e6
            full_s = f"{full:.0f} (+{missing} pairs)"
        else:
            full_s = "failed"
        lines.append(
            f"| {r['size']} | {cell(r, 'floor', 'floor_s')} | {cell(r, 'artistyle', 's_per_eval_median')} "
            f"| {ratio(ours, floor)} | {cell(r, 'tutorial', 'closure_median_s')} "
            f"| {cell(r, 'frozen', 'closure_median_s')} | {ratio(tut, ours)} | {ratio(frozen, ours)} "
            f"| {' / '.join(rss)} | {full_s} |"
        )
    lines.append("")
    shares = []
    worst = 0.0
    for r in rows:
        parts = []
        for key in ("floor", "artistyle", "tutorial", "frozen"):
            share = value(r, key, "other_cpu_share") if isinstance(r.get(key), dict) else None
            if share is not None:
                parts.append(f"{key} {share:.0%}")
                worst = max(worst, share)
        shares.append(f"{r['size']} px: " + ", ".join(parts))
    lines.append("CPU used by other processes during each run (share of all cores): " + "; ".join(shares))
    if worst > 0.10:
        lines.append(
            f"WARNING: other processes used up to {worst:.0%} of the CPUs during a run; "
            "timings of the affected runs are inflated, rerun on a quiet machine."
        )
    lines.append(
        "FLOPs per evaluation (forward + input-gradient backward): "
        + ", ".join(f"{r['size']} px {2 * forward_flops(r['size']) / 1e9:.1f} GFLOP" for r in rows)
    )
    if skip_baseline:
        lines.append("Baselines skipped (--skip-baseline).")
    elif not baseline_present:
        lines.append(f"Baselines skipped: {BASELINE} not found.")
    return "\n".join(lines)


def compare_versions(cmd: list[str], size: int, variants: list[tuple[str, str | None, dict[str, str]]], rounds: int,
                     timeout: float, rows: list[dict], errors: list[str]) -> None:
    """Time two variants (``(key, src, extra env)``: "before" and "after") alternately (B A B A ...), so both
    see the same machine load."""
    row = next(r for r in rows if r["size"] == size)
    row["before"], row["after"] = [], []
    for i in range(rounds):
        for key, src, extra_env in variants:
            result, err = run_subprocess(cmd, f"{key} at {size} px, round {i + 1}", timeout, src=src,
                                         extra_env=extra_env)
            if result is None:
                errors.append(f"FAILED: {key} at {size} px: {err}")
            else:
                row[key].append(result["s_per_eval_median"])


def comparison_table(rows: list[dict], what: str) -> str:
    """After/before seconds per evaluation: the median of each version's alternated runs."""
    lines = [f"{what}; median s/eval of the alternated runs.", "",
             "| size | before s/eval | after s/eval | after / before | runs |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        before, after = r.get("before") or [], r.get("after") or []
        if not before or not after:
            lines.append(f"| {r['size']} | failed | failed | n/a | - |")
            continue
        b, a = statistics.median(before), statistics.median(after)
        lines.append(f"| {r['size']} | {b:.3f} | {a:.3f} | {a / b:.3f} | {len(before)} + {len(after)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Seconds per evaluation and peak RSS: ArtiStyle vs the FLOP floor and the tutorial baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512], help="square image sizes in px")
    p.add_argument("--evals", type=int, default=8, help="evaluations per run (>= 2; the first is not timed)")
    p.add_argument("--skip-baseline", action="store_true", help="do not run the tutorial baselines")
    p.add_argument("--json", metavar="PATH", help="also write all measurements as JSON here")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads in every run; torch's own default if omitted")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed forwards for the throughput; 5 (3 at >= 512 px) if omitted")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a subprocess is killed")
    p.add_argument("--reference-src", metavar="DIR",
                   help="also time another version's src folder (e.g. a checkout of the previous commit), "
                        "alternating with this one, and report after/before ratios")
    p.add_argument("--rounds", type=int, default=3, help="alternated runs per size with --reference-src")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="with --reference-src: run both versions with glibc keeping freed memory (no page faults "
                        "between passes); alone: compare glibc's default with keeping freed memory")
    p.add_argument("--worker", choices=["artistyle", "floor"], help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        if args.worker == "artistyle":
            emit(worker_artistyle(args.size, args.evals, args.threads))
        else:
            emit(worker_floor(args.size, args.repeats, args.threads))
        return 0

    if args.evals < 2:
        p.error("--evals must be at least 2 (the first evaluation is excluded from the median)")
    if any(s < 32 for s in args.sizes):
        p.error("sizes must be at least 32 px")

    info = machine_info()
    baseline_present = BASELINE.is_file()
    run_baselines = not args.skip_baseline and baseline_present
    if not args.skip_baseline and not baseline_present:
        print(f"note: {BASELINE} not found; baselines skipped", file=sys.stderr)

    me = [sys.executable, str(Path(__file__).resolve())]
    extra = ["--threads", str(args.threads)] if args.threads else []
    rows: list[dict] = []
    errors: list[str] = []
    for size in args.sizes:
        print(f"size {size} px:", file=sys.stderr, flush=True)
        row: dict = {"size": size}
        repeats = args.repeats or (3 if size >= 512 else 5)
        jobs = [
            ("floor", f"conv throughput at {size} px",
             lambda s=size, r=repeats: run_subprocess(
                 me + ["--worker", "floor", "--size", str(s), "--repeats", str(r)] + extra,
                 f"conv throughput at {s} px", args.timeout)),
            ("artistyle", f"ArtiStyle at {size} px",
             lambda s=size: run_subprocess(
                 me + ["--worker", "artistyle", "--size", str(s), "--evals", str(args.evals)] + extra,
                 f"ArtiStyle at {s} px", args.timeout)),
        ]
        if run_baselines:
            jobs += [
                ("tutorial", f"tutorial at {size} px",
                 lambda s=size: run_baseline(s, args.evals, False, args.threads, args.timeout)),
                ("frozen", f"tutorial --freeze-weights at {size} px",
                 lambda s=size: run_baseline(s, args.evals, True, args.threads, args.timeout)),
            ]
        else:
            row["tutorial"] = row["frozen"] = "skipped"
        for key, label, job in jobs:
            result, err = job()
            row[key] = result
            if result is None:
                msg = f"FAILED: {label}: {err}"
                errors.append(msg)
                print(msg, file=sys.stderr, flush=True)
        rows.append(row)

    variants: list[tuple[str, str | None, dict[str, str]]] = []
    if args.reference_src:
        keep = KEEP_FREED_MEMORY if args.keep_freed_memory else {}
        variants = [("before", str(Path(args.reference_src).resolve()), keep), ("after", None, keep)]
        what = f"Before = {args.reference_src}, after = this checkout" + (
            ", both keeping freed memory" if args.keep_freed_memory else "")
    elif args.keep_freed_memory:
        variants = [("before", None, {}), ("after", None, KEEP_FREED_MEMORY)]
        what = "This checkout: before = glibc's default allocator, after = keeping freed memory (as the CLI does)"
    for size in args.sizes if variants else []:
        compare_versions(me + ["--worker", "artistyle", "--size", str(size), "--evals", str(args.evals)] + extra,
                         size, variants, args.rounds, args.timeout, rows, errors)
    info["loadavg_end"] = _loadavg()
    report = format_report(info, rows, args.evals, args.skip_baseline, baseline_present)
    if variants:
        report += "\n\n" + comparison_table(rows, what)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": info, "evals": args.evals, "baseline": str(BASELINE) if run_baselines else None,
             "rows": rows, "errors": errors, "report": report}, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

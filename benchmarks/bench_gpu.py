#!/usr/bin/env python3
"""GPU speed and memory benchmark: the 512 px / 300-evaluation target, the tutorial baseline, the largest size.

One prepared script for one short session on a CUDA machine (written for an H200). From the repository
root, with the package installed (``pip install -e .``) or with ``PYTHONPATH=src``::

    python benchmarks/bench_gpu.py --json bench_gpu.json                  # everything, < 8 minutes
    python benchmarks/bench_gpu.py --compile --json bench_gpu.json        # also try torch.compile
    python benchmarks/bench_gpu.py --device cpu --size 64 --evals 5 --sizes 64 96   # CPU smoke test

On an H200 the default run should take about 3 to 5 minutes (most of it process and CUDA start-up, the two
baseline subprocesses and the large sizes); ``--budget-s`` bounds it.

It prints a header (date, command line, torch / CUDA / cuDNN versions, GPU) and Markdown tables on stdout;
progress goes to stderr. ``--json PATH`` also writes every measurement. ``--budget-s`` (default 420) is a
guard on the whole script's wall time: a part that would not finish in the time left is skipped and its
rows read "skipped (budget)"; the tables are always printed. Nothing here changes settings of the GPU.

What one "evaluation" is: one forward pass of VGG-19 up to conv5_1 with the Gatys losses (content at
conv4_2, style Gram matrices at conv1_1..conv5_1) plus the backward pass to the input image. ArtiStyle's
L-BFGS costs exactly one evaluation per iteration, so "300 evaluations" is a 300-iteration run.

Method (one part after the other on the same GPU, in one process except the baseline subprocesses; never
compare with another day's numbers). ``torch.backends.cudnn.benchmark`` is True for every run here, the
baselines included, except the one row that measures it off; TF32 stays at torch's defaults, which the
header reports.

1. Target: ``--size`` x ``--size`` (512), ``--evals`` (300) evaluations, for each of ``--precisions``
   (fp32, bf16, fp16; see ``StyleConfig.precision``: on CUDA the convolutions run under autocast, Gram
   matrices and losses in fp32). Per precision: ``artistyle.NST(size=S, device=D, seed=0, precision=P)``
   loads the bundled samples (astronaut.jpg as content, starry_night.jpg as style) with ``load_images``;
   a short warm-up run of ``--warmup`` iterations (cuDNN autotuning, allocator) comes first; then a fresh
   ``nst.transfer(inputs, steps=N)`` is built ("setup s": the model and its content and style targets)
   and iterated to the end between two ``torch.cuda.synchronize()``. "wall s" is that time for the N
   iterations, the number the target is about (at most 5 s for 300 at 512 px); "s/eval" is wall / N and
   includes the L-BFGS step and everything else an iteration does. "fwd+bwd s" is the median time of the
   objective's evaluation alone (synchronized before and after; the loop synchronizes there anyway), and
   "other s/iter" is the rest of an iteration: optimiser, finiteness checks, progress events. Peak memory
   is ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` after a reset before the setup (the run
   alone; cache emptied first). "final loss" is the last iteration's loss: compare across precisions to
   see that a half-precision run still optimises. On CUDA one more row repeats precision auto with
   ``cudnn.benchmark`` off, to show what the autotuning that ``resolve_device`` turns on for CUDA buys;
   ``--skip-benchmark-off``.
2. Baseline: ``../shared/bench/baseline_tutorial.py`` (the PyTorch-tutorial structure, torch L-BFGS) at
   the same size for ``--baseline-steps`` evaluations (``--exact --print-every 0 --json``), once as is
   (VGG weights require grad, as in the tutorial) and once with ``--freeze-weights``. The script has no
   device option, so a small launcher loads it as a module and moves its model, normalisation and
   images to the device (no other change; its closure timer is made to synchronize the GPU). Its s/eval
   is ``(optimise time - first closure) / (evals - 1)``: wall time per evaluation including torch's
   L-BFGS, without the first (warm-up) evaluation; its fwd+bwd s is its median closure time. The
   speed-up columns are ``baseline s/eval / ArtiStyle s/eval``. If it cannot run, its row says why.
3. Largest size, untiled: square images of each ``--sizes`` long edge (synthetic, made on the device),
   default precision (auto: mixed bf16, or fp16 without bf16, on CUDA), ``--ladder-evals`` iterations
   each, ``tile=None``. s/eval is the median excluding the first iteration (autotuning for the new
   shape). Peak memory as above, next to the planner's estimate (``artistyle.memory.estimate_peak``,
   which includes about 0.6 GB of CUDA context that torch's counters do not see) and the measured peak
   plus the L-BFGS pairs a long run adds (``history - pairs held`` times two fp32 image-sized vectors):
   a size "fits" a real 20-pair run only if that last column is under the GPU's memory. The ladder stops
   at the first failure: an out-of-memory error (caught, cache emptied) or any other error (e.g. a kernel
   without 64-bit indexing), reported in one line; later sizes are not tried. Should the device stop
   working altogether (a sticky CUDA error such as an illegal memory access), every later part is
   skipped and a line under the tables says so.
4. Largest size, tiled (unless ``--skip-tiled``): ``--tiled-sizes`` (default: the untiled size that
   failed and the larger ``--sizes``), exact tiled evaluation with owned tiles of ``--tile`` px and the
   L-BFGS history the memory planner (``artistyle.memory.plan_memory``) picks for that tile, else as 3.
5. ``--compile`` (optional): ``torch.compile`` on the feature network (``objective.features.compile()``),
   default precision, at ``--size``: once with the memory-saving hand-written backward (the default) and
   once with plain autograd (``memory_saving = False``, so the compiler sees the backward). The first
   ``--warmup`` iterations include the compilation ("setup s" then holds their time); the next
   ``--evals`` are timed as in 1 (so its final loss is after more iterations than the other rows'). The
   status cell counts the graphs dynamo compiled and its graph breaks. A failure reads "failed: <reason>";
   it never stops the script. Each variant only starts with at least 120 s of budget left.
6. Video, last (unless ``--video-frames 0``; needs the video extra): ``artistyle.video.painter.paint_video``
   on a pan over the content sample at ``--size``, ``--video-first-steps`` iterations for the first frame
   and ``--video-steps`` for each later one; frames per minute of the frames after the first.

MB are 10^6 bytes, GB 10^9, GiB 2^30. Exit status: 0, or 1 when a target run (1.) or a baseline failed
(a missing baseline script is only noted); an out-of-memory in 3. or 4. is a result, not a failure; 2 when
the device cannot be used (e.g. ``--device cuda`` without CUDA: a one-line error). The hidden
``--simulate-oom-from PX`` makes untiled runs of at least PX raise ``torch.cuda.OutOfMemoryError``, so the
ladder logic can be tested on a CPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib.util
import itertools
import json
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BASELINE, REPO, SAMPLES, import_artistyle, log, one_line, parse_result

CONTENT_SAMPLE, STYLE_SAMPLE = "astronaut.jpg", "starry_night.jpg"
TARGET_SIZE, TARGET_EVALS, TARGET_S = 512, 300, 5.0
DEFAULT_SIZES = [1024, 2048, 3072, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 16384]
FULL_HISTORY = 20  # StyleConfig.lbfgs_history's default, checked against the config at run time

# Runs baseline_tutorial.py on a device: loads it as a module, moves its model, normalisation and images
# there, makes its closure timer synchronize, then prints the peak memory as the last line.
LAUNCHER = r"""
import importlib.util, json, resource, sys, time as _time
import torch
script, device, argv = sys.argv[1], torch.device(sys.argv[2]), sys.argv[3:]
spec = importlib.util.spec_from_file_location("baseline_tutorial", script)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
cuda = device.type == "cuda"
if device.type != "cpu":
    torch.backends.cudnn.benchmark = True
    class SyncedTime:
        def __getattr__(self, name):
            return getattr(_time, name)
        @staticmethod
        def perf_counter():
            if cuda:
                torch.cuda.synchronize(device)
            return _time.perf_counter()
    mod.time = SyncedTime()
    build, load, make = mod.build_vgg19_features, mod.load_image, mod.synthetic_image
    norm_init = mod.Normalization.__init__
    mod.build_vgg19_features = lambda path: build(path).to(device)
    mod.load_image = lambda path, size: load(path, size).to(device)
    mod.synthetic_image = lambda size, seed: make(size, seed).to(device)
    def init(self):
        norm_init(self)
        self.mean = self.mean.to(device)
    mod.Normalization.__init__ = init
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
code = mod.main(argv) or 0
sys.stdout.flush()
result = {"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
if cuda:
    result["max_allocated"] = torch.cuda.max_memory_allocated(device)
    result["max_reserved"] = torch.cuda.max_memory_reserved(device)
print("BENCH_RESULT " + json.dumps(result), flush=True)
sys.exit(code)
"""


class Clock:
    """Wall time since the script started, against ``--budget-s``."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.broken: str | None = None  # set when the device stops working (a sticky CUDA error)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def allows(self, predicted_s: float) -> bool:
        return self.left() >= predicted_s

    def skip(self, predicted_s: float) -> str | None:
        """Why a part predicted to take ``predicted_s`` must not start, or None."""
        if self.broken:
            return "skipped (device unusable)"
        return None if self.allows(predicted_s) else "skipped (budget)"


# --------------------------------------------------------------------------- device helpers
def device_error(spec: str) -> str | None:
    """None if ``spec`` can be used, else a one-line reason."""
    import torch

    if spec == "cpu":
        return None
    if not spec.startswith("cuda"):
        return f"unknown device '{spec}'; use cuda, cuda:N or cpu"
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return f"CUDA is not available (torch {torch.__version__}, {build}); use --device cpu for a smoke test"
    index = spec.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        return f"no device '{spec}': {torch.cuda.device_count()} CUDA GPU(s) found"
    return None


def is_cuda(device: Any) -> bool:
    return str(device).startswith("cuda")


def sync(device: Any) -> None:
    import torch

    if is_cuda(device):
        torch.cuda.synchronize(device)


def fresh_memory(device: Any) -> None:
    """Free what Python and the caching allocator hold, then reset the peak counters."""
    import torch

    gc.collect()
    if is_cuda(device):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: Any) -> dict[str, int | None]:
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if not is_cuda(device):
        return {"max_allocated": None, "max_reserved": None, "process_peak_rss": rss}
    return {
        "max_allocated": torch.cuda.max_memory_allocated(device),
        "max_reserved": torch.cuda.max_memory_reserved(device),
        "process_peak_rss": rss,
    }


def environment(device: str) -> dict[str, Any]:
    import torch

    artistyle = import_artistyle()
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": shlex.join(["python", *sys.argv]),
        "torch": torch.__version__,
        "artistyle": artistyle.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "device": device,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_conv": torch.backends.cudnn.allow_tf32,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
    if is_cuda(device):
        props = torch.cuda.get_device_properties(torch.device(device))
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        info["device_memory"] = props.total_memory
        info["driver_free_memory"] = torch.cuda.mem_get_info(torch.device(device))[0]
        info["auto_precision"] = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    else:
        info["device_name"] = platform.processor() or platform.machine()
        info["device_memory"] = None
        info["auto_precision"] = "fp32"
        info["torch_threads"] = torch.get_num_threads()
    return info


# --------------------------------------------------------------------------- images
def sample_inputs(nst: Any, size: int) -> Any:
    """The bundled samples through the normal API: resized on the CPU, moved to the device."""
    return nst.load_images(SAMPLES / CONTENT_SAMPLE, SAMPLES / STYLE_SAMPLE, size=size)


def synthetic_inputs(size: int, device: Any) -> tuple[Any, Any]:
    """Square content (gradient with a disc) and style (stripes) made on the device, and a noise init."""
    import torch

    from artistyle.engine import NOISE_SD, Inputs

    line = torch.linspace(0, 1, size, device=device)
    yy, xx = line[:, None].expand(size, size), line[None, :].expand(size, size)
    content = torch.stack([0.2 + 0.6 * xx, 0.2 + 0.6 * yy, 0.8 - 0.5 * xx * yy])
    disc = (xx - 0.55) ** 2 + (yy - 0.45) ** 2 < 0.22**2
    content = torch.where(disc, torch.tensor([0.9, 0.75, 0.2], device=device)[:, None, None], content)
    phase = (xx + 0.5 * yy) * (12 * torch.pi)
    stripes = 0.5 + 0.5 * torch.sin(phase)
    style = torch.stack([0.1 + 0.8 * stripes, 0.3 + 0.4 * (1 - stripes), 0.6 + 0.3 * torch.cos(phase / 3)])
    del yy, xx, disc, phase, stripes
    generator = torch.Generator(device=device).manual_seed(0)
    init = 0.5 + NOISE_SD * torch.randn(1, 3, size, size, device=device, generator=generator)
    inputs = Inputs(content=content[None].clamp(0, 1).contiguous(), styles=[style[None].clamp(0, 1).contiguous()],
                    alpha=None)
    return inputs, init


# --------------------------------------------------------------------------- ArtiStyle runs
def timed_transfer(
    transfer: Any, device: Any, skip: int = 0, prepare: Callable[[Any], None] | None = None
) -> dict[str, Any]:
    """Iterate ``transfer`` to the end; time the iterations after the first ``skip`` between two syncs."""
    if prepare is not None:
        prepare(transfer)
    eval_s: list[float] = []
    inner = transfer._evaluate

    def timed_evaluate() -> Any:
        sync(device)
        t = time.perf_counter()
        out = inner()
        sync(device)
        eval_s.append(time.perf_counter() - t)
        return out

    transfer._evaluate = timed_evaluate  # instance attribute: Transfer._step calls self._evaluate()
    per_iter: list[float] = []
    losses: list[float] = []
    sync(device)
    t0 = time.perf_counter()
    last = t0
    warm_s = 0.0
    for event in transfer:
        now = time.perf_counter()
        per_iter.append(now - last)
        losses.append(event.loss)
        last = now
        if len(per_iter) == skip:
            sync(device)
            warm_s = time.perf_counter() - t0
            t0 = last = time.perf_counter()
    sync(device)
    wall = time.perf_counter() - t0
    timed_iters, timed_evals = per_iter[skip:], eval_s[skip:]
    n = len(timed_iters)
    pairs = len(getattr(transfer.optimizer, "steps_s", ()))  # L-BFGS curvature pairs; 0 for Adam
    return {
        "evals": n,
        "wall_s": wall,
        "s_per_eval": wall / n if n else None,
        "first_iter_s": timed_iters[0] if n else None,
        "iter_median_excl_first_s": statistics.median(timed_iters[1:]) if n > 1 else None,
        "fwd_bwd_median_s": statistics.median(timed_evals) if timed_evals else None,
        "other_s_per_iter": (wall - sum(timed_evals)) / n if n else None,
        "warm_s": warm_s if skip else None,
        "final_loss": losses[-1] if losses else None,
        "finite": all(map(_finite, losses)),
        "lbfgs_pairs": pairs,
    }


def video_run(device: str, size: int, frames: int, first_steps: int, steps: int) -> dict[str, Any]:
    """``artistyle video`` (the library's VideoPainting) on a pan over the bundled content sample: ``frames``
    frames at ``size`` px, the first with ``first_steps`` iterations, the others with ``steps``. Frames per minute
    are of the later frames (the steady state of a long clip); flows run in a thread beside the painting."""
    import numpy as np
    from PIL import Image

    from artistyle import NST, StyleConfig
    from artistyle.video.painter import VideoSettings, paint_video

    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip"
        clip.mkdir()
        photo = Image.open(SAMPLES / CONTENT_SAMPLE).convert("RGB")
        photo = np.asarray(photo.resize((size + 8 * frames, round(size * photo.height / photo.width))))
        for i in range(frames):  # the camera pans 8 px a frame
            Image.fromarray(photo[:, 8 * i : 8 * i + size]).save(clip / f"frame_{i + 1:03d}.png")
        nst = NST(StyleConfig(size=size, device=device, seed=0, scales=1))
        painting = paint_video(nst, clip, SAMPLES / STYLE_SAMPLE, Path(folder) / "work",
                               VideoSettings(first_steps=first_steps, steps=steps))
        done = [time.perf_counter()]
        for event in painting:
            if event.done:
                sync(device)
                done.append(time.perf_counter())
    later = [b - a for a, b in itertools.pairwise(done[1:])]
    per_frame = statistics.median(later) if later else float("nan")
    return {"status": "ok", "size": size, "frames": frames, "first_steps": first_steps, "steps": steps,
            "first_frame_s": done[1] - done[0],
            "later_s_per_frame": per_frame, "frames_per_minute": 60 / per_frame if later else float("nan")}


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def torch_backends_cudnn_benchmark() -> bool:
    import torch

    return bool(torch.backends.cudnn.benchmark)


def set_cudnn_benchmark(on: bool) -> None:
    import torch

    torch.backends.cudnn.benchmark = on


def target_run(
    artistyle: Any, device: str, size: int, evals: int, precision: str, warmup: int, cudnn_benchmark: bool = True
) -> dict[str, Any]:
    """Warm-up, then one timed run of ``evals`` iterations at ``size`` with ``precision`` (method step 1)."""
    import torch

    torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        return {**_target_run(artistyle, device, size, evals, precision, warmup), "cudnn_benchmark": cudnn_benchmark}
    finally:
        torch.backends.cudnn.benchmark = True


def _target_run(artistyle: Any, device: str, size: int, evals: int, precision: str, warmup: int) -> dict[str, Any]:
    benchmark = torch_backends_cudnn_benchmark()
    nst = artistyle.NST(size=size, device=device, seed=0, precision=precision)
    # NST resolves the device, which turns autotuning on for CUDA: keep the caller's choice.
    set_cudnn_benchmark(benchmark)
    inputs = sample_inputs(nst, size)
    if warmup:
        log(f"  warm-up: {warmup} iterations")
        for _ in nst.transfer(inputs, steps=warmup):
            pass
    fresh_memory(device)
    sync(device)
    t = time.perf_counter()
    transfer = nst.transfer(inputs, steps=evals)
    sync(device)
    setup = time.perf_counter() - t
    result = timed_transfer(transfer, device)
    result.update(peak_memory(device), setup_s=setup, size=size, precision=precision,
                  lbfgs_history=nst.config.lbfgs_history, status="ok")
    return result


def ladder_run(
    artistyle: Any, device: str, size: int, evals: int, *, tile: int | None, simulate_oom_from: int | None
) -> dict[str, Any]:
    """A few iterations on a square synthetic image of ``size`` px, default precision (steps 3 and 4)."""
    import torch

    from artistyle.memory import MIN_HISTORY, estimate_peak, plan_memory

    if tile is None and simulate_oom_from and size >= simulate_oom_from:
        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated at {size} px by --simulate-oom-from)")
    nst = artistyle.NST(size=size, device=device, seed=0)
    c = nst.config
    layers = tuple(c.content_layers) + tuple(c.style_layers)
    bpv = 2 if nst.half_dtype is not None else 4
    history = c.lbfgs_history
    planned = None
    if tile is not None:
        try:
            plan = plan_memory(size, size, layers, history=history, optimizer=c.optimizer, device=nst.device,
                               max_memory=None, tile=tile, content_layers=tuple(c.content_layers),
                               bytes_per_value=bpv)
            history, planned = plan.history, plan.estimate
        except Exception as exc:  # the planner says it does not fit: try anyway with the shortest history
            history, planned = MIN_HISTORY, None
            log(f"  planner: {one_line(exc)}; trying with history {history}")
    estimate = planned or estimate_peak(size, size, layers, history=history, optimizer=c.optimizer, device=nst.device,
                                        bytes_per_value=bpv, tile=tile, content_layers=tuple(c.content_layers))
    fresh_memory(device)
    t = time.perf_counter()
    inputs, init = synthetic_inputs(size, nst.device)
    transfer = nst.transfer(inputs, init=init, steps=evals, tile=tile, lbfgs_history=history)
    sync(device)
    setup = time.perf_counter() - t
    result = timed_transfer(transfer, device)
    del transfer, inputs, init
    mem = peak_memory(device)
    missing = max(history - result["lbfgs_pairs"], 0)
    with_history = None if mem["max_allocated"] is None else mem["max_allocated"] + missing * 2 * 3 * size * size * 4
    result.update(mem, size=size, tile=tile, setup_s=setup, precision=_precision_name(nst.half_dtype),
                  lbfgs_history=history, planner_estimate=estimate, with_full_history=with_history,
                  s_per_eval=result["iter_median_excl_first_s"] or result["s_per_eval"], status="ok")
    return result


def compile_run(
    artistyle: Any, device: str, size: int, evals: int, warmup: int, memory_saving: bool, backend: str
) -> dict[str, Any]:
    """torch.compile on the feature network, default precision (method step 5)."""
    nst = artistyle.NST(size=size, device=device, seed=0)
    inputs = sample_inputs(nst, size)
    fresh_memory(device)
    sync(device)
    t = time.perf_counter()
    transfer = nst.transfer(inputs, steps=max(warmup, 1) + evals)
    sync(device)
    build = time.perf_counter() - t

    def prepare(transfer: Any) -> None:
        features = transfer.objective.features
        features.memory_saving = memory_saving
        features.compile(backend=backend)

    import torch._dynamo

    torch._dynamo.reset()
    result = timed_transfer(transfer, device, skip=max(warmup, 1), prepare=prepare)
    result.update(peak_memory(device), size=size, precision=_precision_name(nst.half_dtype),
                  setup_s=build + result["warm_s"], compile_and_warmup_s=result["warm_s"],
                  memory_saving=memory_saving, backend=backend, status="ok", **dynamo_stats())
    return result


def dynamo_stats() -> dict[str, Any]:
    """Graphs compiled and graph breaks since the last ``torch._dynamo.reset()`` (empty if unknown)."""
    try:
        from torch._dynamo.utils import counters

        return {"compiled_graphs": int(counters["stats"].get("unique_graphs", 0)),
                "graph_breaks": int(sum(counters["graph_break"].values())),
                "graph_break_reasons": sorted(counters["graph_break"])[:5]}
    except Exception:  # private API: report nothing rather than fail
        return {}


def _precision_name(dtype: Any) -> str:
    import torch

    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


def guarded(label: str, job: Callable[[], dict[str, Any]], device: str, clock: Clock) -> dict[str, Any]:
    """Run ``job``; on any exception return a row saying so (OOM or error) and free the memory."""
    import torch

    log(f"{label} ...")
    t = time.perf_counter()
    try:
        row = job()
    except torch.cuda.OutOfMemoryError as exc:
        row = {"status": "OOM", "error": one_line(exc)}
    except Exception as exc:  # a benchmark reports failures, it does not stop on them
        oom = any(word in str(exc).lower() for word in ("out of memory", "alloc_failed"))
        row = {"status": "OOM" if oom else "failed", "error": one_line(exc)}
    row["total_s"] = time.perf_counter() - t
    try:
        fresh_memory(device)
    except Exception as exc:  # e.g. an illegal memory access: every later CUDA call fails too
        clock.broken = one_line(exc)
        row["error"] = f"{row.get('error', '')}; device unusable afterwards: {clock.broken}".lstrip("; ")
    log(f"  {row['status']} in {row['total_s']:.1f} s" + (f": {row['error']}" if "error" in row else ""))
    return row


# --------------------------------------------------------------------------- baseline (subprocess)
def run_baseline(device: str, size: int, steps: int, freeze: bool, timeout: float) -> dict[str, Any]:
    if not BASELINE.is_file():
        return {"status": "missing", "error": f"{BASELINE} not found"}
    label = f"tutorial baseline{' --freeze-weights' if freeze else ''} at {size} px, {steps} evaluations"
    log(f"{label} ...")
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        out = Path(tmp) / "baseline.json"
        cmd = [sys.executable, "-c", LAUNCHER, str(BASELINE), device, "--size", str(size), "--steps", str(steps),
               "--exact", "--print-every", "0", "--json", str(out)] + (["--freeze-weights"] if freeze else [])
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
        except subprocess.TimeoutExpired:
            return {"status": "failed", "error": f"timed out after {timeout:.0f} s", "freeze_weights": freeze}
        wall = time.perf_counter() - t
        extra: dict[str, Any] = parse_result(proc.stdout) or {}
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            log("\n".join(tail[-15:]))
            return {"status": "failed", "error": (tail[-1] if tail else f"exit code {proc.returncode}")[:200],
                    "freeze_weights": freeze}
        data = json.loads(out.read_text())
    n = data["evals"]
    steady = (data["opt_total_s"] - data["closure_first_s"]) / (n - 1) if n > 1 else data["opt_total_s"] / n
    data.update(extra, status="ok", s_per_eval=steady, fwd_bwd_median_s=data["closure_median_s"],
                other_s_per_iter=steady - data["closure_median_s"], wall_s=data["opt_total_s"],
                subprocess_s=wall, freeze_weights=freeze)
    log(f"  done in {wall:.1f} s")
    return data


# --------------------------------------------------------------------------- report
def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else fmt.format(x)


def _mb(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 1e6:.0f}"


def _gb(x: int | None) -> str:
    return "n/a" if x is None else f"{x / 1e9:.2f}"


def _cell(row: dict[str, Any]) -> str:
    """The status cell: ok, or why not."""
    if row["status"] == "ok":
        return "ok"
    return f"{row['status']}: {row['error']}" if row.get("error") else row["status"]


def _status(row: dict[str, Any]) -> str:
    text = "ok" if row["finite"] else "ok, non-finite loss"
    if "compiled_graphs" in row:
        text += f" ({row['compiled_graphs']} graph(s), {row['graph_breaks']} graph break(s))"
    return text


def speed_table(rows: list[dict[str, Any]], baselines: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| run | precision | size | evals | wall s | s/eval | fwd+bwd s (median) | other s/iter | setup s "
        "| peak alloc MB | peak reserved MB | final loss | speed-up vs tutorial / frozen | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    refs = [b.get("s_per_eval") if b.get("status") == "ok" else None for b in baselines.values()]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['label']} | {r.get('precision', '')} | {r.get('size', '')} | | | | | | | | | | | "
                         f"{_cell(r)} |")
            continue
        ours = r["s_per_eval"]
        ratios = " / ".join("n/a" if ref is None or not ours else f"{ref / ours:.2f}x" for ref in refs) or "n/a"
        lines.append(
            f"| {r['label']} | {r['precision']} | {r['size']} | {r['evals']} | {r['wall_s']:.3f} "
            f"| {_num(ours, '{:.5f}')} | {_num(r['fwd_bwd_median_s'], '{:.5f}')} "
            f"| {_num(r['other_s_per_iter'], '{:.5f}')} | {_num(r.get('setup_s'), '{:.2f}')} "
            f"| {_mb(r['max_allocated'])} | {_mb(r['max_reserved'])} | {_num(r['final_loss'], '{:.4g}')} "
            f"| {ratios} | {_status(r)} |"
        )
    for name, b in baselines.items():
        if b.get("status") != "ok":
            lines.append(f"| {name} | fp32 | | | | | | | | | | | | {_cell(b)} |")
            continue
        lines.append(
            f"| {name} | fp32 | {b['size']} | {b['evals']} | {b['wall_s']:.3f} | {b['s_per_eval']:.5f} "
            f"| {b['fwd_bwd_median_s']:.5f} | {b['other_s_per_iter']:.5f} | {b['setup_s']:.2f} "
            f"| {_mb(b.get('max_allocated'))} | {_mb(b.get('max_reserved'))} | n/a (other loss) "
            "| 1.00x (reference) | ok |"
        )
    return lines


def size_table(rows: list[dict[str, Any]], device_memory: int | None) -> list[str]:
    lines = [
        "| long edge px | megapixels | tile | L-BFGS history | evals | s/eval | first iter s | setup s "
        "| peak alloc GB | peak reserved GB | planner estimate GB | + full history est. GB | fits a long run "
        "| status |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        size = r["size"]
        head = f"| {size} | {size * size / 1e6:.2f} | {r.get('tile') or 'untiled'} "
        if r["status"] != "ok":
            lines.append(head + f"| {r.get('lbfgs_history', '')} | | | | | | | | | | {_cell(r)} |")
            continue
        full = r["with_full_history"]
        fits = "n/a" if full is None or device_memory is None else ("yes" if full <= device_memory else "no")
        lines.append(
            head + f"| {r['lbfgs_history']} | {r['evals']} | {_num(r['s_per_eval'], '{:.4f}')} "
            f"| {_num(r['first_iter_s'], '{:.3f}')} | {r['setup_s']:.2f} | {_gb(r['max_allocated'])} "
            f"| {_gb(r['max_reserved'])} | {_gb(r['planner_estimate'])} | {_gb(full)} | {fits} | ok |"
        )
    return lines


def largest(rows: list[dict[str, Any]]) -> str:
    ran = [r["size"] for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] in ("OOM", "failed")]
    text = f"largest that ran: {max(ran)} px" if ran else "none ran"
    if failed:
        text += f"; first failure at {failed[0]['size']} px ({failed[0]['status']})"
    elif rows and rows[-1]["status"].startswith("skipped"):
        text += f"; stopped before a failure: {rows[-1]['status']}"
    elif rows:
        text += "; no size failed (add larger --sizes)"
    return text


def format_report(info: dict[str, Any], args: argparse.Namespace, results: dict[str, Any], clock: Clock) -> str:
    cuda = is_cuda(args.device)
    mem = f", {info['device_memory'] / 2**30:.1f} GiB" if info.get("device_memory") else ""
    lines = [
        "# ArtiStyle GPU benchmark",
        "",
        f"- Date: {info['date_utc']}",
        f"- Command: `{info['command']}`",
        f"- Device: {info['device']} ({info['device_name']}{mem}); CUDA {info['cuda']}, cuDNN {info['cudnn']}",
        f"- torch {info['torch']}, artistyle {info['artistyle']}, Python {info['python']}, host {info['host']}",
        f"- cudnn.benchmark {info['cudnn_benchmark']}; TF32 convolutions {info['tf32_conv']}, "
        f"TF32 matmul {info['tf32_matmul']}; precision auto = {info['auto_precision']} here",
        f"- Budget {args.budget_s:.0f} s, used {clock.elapsed():.0f} s",
        "",
        f"## {args.size}x{args.size}, {args.evals} evaluations (target: {TARGET_EVALS} in at most {TARGET_S:g} s "
        f"at {TARGET_SIZE} px on an H200)",
        "",
        *speed_table(results["target"] + results["compile"], results["baseline"]),
        "",
    ]
    if cuda and args.size == TARGET_SIZE and args.evals == TARGET_EVALS:
        verdicts = [
            f"{r['precision']}{'' if r['cudnn_benchmark'] else ' (cudnn.benchmark off)'} {r['wall_s']:.2f} s "
            f"{'yes' if r['wall_s'] <= TARGET_S else 'NO'}"
            for r in results["target"] if r["status"] == "ok"
        ]
        lines.append("Target met (wall s <= 5): " + ("; ".join(verdicts) or "no run finished"))
    else:
        lines.append(
            f"Target check not applicable: it needs --device cuda --size {TARGET_SIZE} --evals {TARGET_EVALS}."
        )
    for name, b in results["baseline"].items():
        if b.get("status") != "ok":
            lines.append(f"Baseline '{name}' did not run on {args.device}: {b.get('error')}")
    if not results["baseline"]:
        lines.append("Baselines skipped (--skip-baseline).")
    lines += [
        "",
        f"## Largest size, untiled, precision auto ({args.ladder_evals} evaluations each)",
        "",
        *size_table(results["ladder"], info.get("device_memory")),
        "",
        "Untiled: " + (largest(results["ladder"]) if args.sizes else "not run (no --sizes)"),
    ]
    if results["tiled"]:
        lines += [
            "",
            f"## Larger sizes, tiled (owned tiles of {args.tile} px, history from the memory planner)",
            "",
            *size_table(results["tiled"], info.get("device_memory")),
            "",
            "Tiled: " + largest(results["tiled"]),
        ]
    elif results.get("tiled_note"):
        lines += ["", f"Tiled sizes: {results['tiled_note']}"]
    video = results.get("video") or {}
    if video.get("status") == "ok":
        lines += ["", f"## Video at {video['size']} px ({video['frames']} frames, {video['first_steps']} + "
                  f"{video['steps']} iterations)",
                  "", "| first frame s | later frames s/frame | frames per minute |", "|---:|---:|---:|",
                  f"| {video['first_frame_s']:.2f} | {video['later_s_per_frame']:.3f} | "
                  f"{video['frames_per_minute']:.1f} |"]
    elif video:
        lines += ["", f"Video: {video.get('status')} {video.get('error') or ''}".rstrip()]
    if results["skipped"]:
        lines += ["", "Not run (budget or device): " + "; ".join(results["skipped"])]
    if clock.broken:
        lines += ["", f"The device stopped working after: {clock.broken}; later parts were skipped."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- driver
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="ArtiStyle on a GPU: the 512 px / 300-evaluation target, the tutorial baseline, "
        "the largest size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (smoke test)")
    p.add_argument("--size", type=int, default=TARGET_SIZE, help="square size of the target runs, px")
    p.add_argument("--evals", type=int, default=TARGET_EVALS, help="timed evaluations per target run")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"],
                   choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--warmup", type=int, default=5, help="warm-up iterations before each target run")
    p.add_argument("--skip-benchmark-off", action="store_true",
                   help="on CUDA, skip the extra target run with cudnn.benchmark off (precision auto)")
    p.add_argument("--skip-baseline", action="store_true", help="do not run the tutorial baseline")
    p.add_argument("--baseline-steps", type=int, default=None, help="baseline evaluations; min(--evals, 50) if omitted")
    p.add_argument("--sizes", type=int, nargs="*", default=DEFAULT_SIZES,
                   help="long edges for the untiled largest-size ladder (ascending; stops at the first failure)")
    p.add_argument("--ladder-evals", type=int, default=4,
                   help="evaluations per ladder size (the first is not in s/eval)")
    p.add_argument("--skip-tiled", action="store_true", help="do not run the tiled sizes")
    p.add_argument("--video-frames", type=int, default=8, help="frames of the video row at --size (0: skip it)")
    p.add_argument("--video-first-steps", type=int, default=300, help="iterations of the video's first frame")
    p.add_argument("--video-steps", type=int, default=100, help="iterations of every frame after the first")
    p.add_argument("--tiled-sizes", type=int, nargs="*", default=None,
                   help="long edges to run tiled; if omitted, the untiled size that failed and the larger --sizes")
    p.add_argument("--tile", type=int, default=2048, help="owned tile size in px for the tiled sizes")
    p.add_argument("--compile", action="store_true", help="also try torch.compile on the feature network")
    p.add_argument("--compile-backend", default="inductor", help=argparse.SUPPRESS)
    p.add_argument("--budget-s", type=float, default=420, help="wall-time budget of the whole script, s")
    p.add_argument("--json", metavar="PATH", help="also write all measurements as JSON here")
    p.add_argument("--simulate-oom-from", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.evals < 1 or args.ladder_evals < 1 or args.warmup < 0:
        p.error("--evals and --ladder-evals must be at least 1, --warmup at least 0")
    if args.size < 32 or any(s < 32 for s in args.sizes + (args.tiled_sizes or [])):
        p.error("sizes must be at least 32 px")
    if args.tile < 16:
        p.error("--tile must be at least 16 px")
    args.sizes = sorted(args.sizes)
    if args.baseline_steps is None:
        args.baseline_steps = min(args.evals, 50)
    return args


def run_ladder(artistyle: Any, args: argparse.Namespace, sizes: list[int], tile: int | None, clock: Clock,
               skipped: list[str]) -> list[dict[str, Any]]:
    """Run ``sizes`` in order until the first failure or until the budget would run out."""
    rows: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for size in sizes:
        # Predict from the last size that ran: time grows with the pixels (at least 5 s: start-up costs).
        predicted = 5.0 if last is None else max(5.0, last["total_s"] * (size / last["size"]) ** 2)
        why = clock.skip(predicted)
        if why:
            rows.append({"size": size, "tile": tile, "status": why})
            skipped.append(f"{size} px {'tiled' if tile else 'untiled'} (predicted {predicted:.0f} s, "
                           f"{max(clock.left(), 0):.0f} s left)")
            continue
        label = f"{size} px {'tiled ' + str(tile) if tile else 'untiled'}, {args.ladder_evals} evaluations"
        row = guarded(label, lambda s=size: ladder_run(artistyle, args.device, s, args.ladder_evals, tile=tile,
                                                       simulate_oom_from=args.simulate_oom_from),
                      args.device, clock)
        row.setdefault("size", size)
        row.setdefault("tile", tile)
        rows.append(row)
        if row["status"] != "ok":
            break
        last = row
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clock = Clock(args.budget_s)
    error = device_error(args.device)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import torch

    torch.backends.cudnn.benchmark = True
    artistyle = import_artistyle()
    info = environment(args.device)
    log(f"{info['device_name']} ({args.device}), torch {info['torch']}, budget {args.budget_s:.0f} s")
    results: dict[str, Any] = {"target": [], "compile": [], "baseline": {}, "ladder": [], "tiled": [], "skipped": []}
    skipped: list[str] = results["skipped"]

    for precision in args.precisions:
        why = clock.skip(10)
        if why:
            skipped.append(f"target run {precision}")
            results["target"].append({"label": "ArtiStyle", "precision": precision, "size": args.size,
                                      "status": why})
            continue
        row = guarded(f"ArtiStyle {precision} at {args.size} px, {args.evals} evaluations",
                      lambda p=precision: target_run(artistyle, args.device, args.size, args.evals, p, args.warmup),
                      args.device, clock)
        row.setdefault("precision", precision)
        row.setdefault("size", args.size)
        row["label"] = "ArtiStyle"
        results["target"].append(row)
    if is_cuda(args.device) and not args.skip_benchmark_off:
        label = "ArtiStyle, cudnn.benchmark off"
        why = clock.skip(10)
        if why:
            skipped.append(label)
            row = {"status": why}
        else:
            row = guarded(label, lambda: target_run(artistyle, args.device, args.size, args.evals, "auto",
                                                    args.warmup, cudnn_benchmark=False), args.device, clock)
        row.update(label=label, precision="auto", size=args.size)
        results["target"].append(row)

    if not args.skip_baseline:
        for name, freeze in (("tutorial", False), ("tutorial --freeze-weights", True)):
            why = clock.skip(30)
            if why:
                skipped.append(name)
                results["baseline"][name] = {"status": why}
                continue
            results["baseline"][name] = run_baseline(args.device, args.size, args.baseline_steps, freeze,
                                                     timeout=max(clock.left(), 30))

    results["ladder"] = run_ladder(artistyle, args, args.sizes, None, clock, skipped)


    if not args.skip_tiled:
        tiled_sizes = args.tiled_sizes
        if tiled_sizes is None:
            failed = [r["size"] for r in results["ladder"] if r["status"] in ("OOM", "failed")]
            tiled_sizes = [s for s in args.sizes if failed and s >= failed[0]]
            if not failed:
                results["tiled_note"] = "none run (no untiled size failed; pass --tiled-sizes to choose some)"
        results["tiled"] = run_ladder(artistyle, args, sorted(tiled_sizes), args.tile, clock, skipped)

    if args.compile:
        for memory_saving in (True, False):
            label = f"ArtiStyle + torch.compile ({'memory-saving backward' if memory_saving else 'plain autograd'})"
            why = clock.skip(120)
            if why:
                skipped.append(label)
                results["compile"].append({"label": label, "size": args.size, "status": why})
                continue
            row = guarded(label, lambda m=memory_saving: compile_run(
                artistyle, args.device, args.size, args.evals, args.warmup, m, args.compile_backend),
                args.device, clock)
            row.setdefault("size", args.size)
            row.setdefault("precision", "auto")
            row["label"] = label
            results["compile"].append(row)

    results["video"] = {}
    if args.video_frames:
        if importlib.util.find_spec("av") is None or importlib.util.find_spec("cv2") is None:
            results["video"] = {"status": "skipped (no video extra: pip install -e '.[video]')"}
        elif clock.skip(60):
            skipped.append("video")
            results["video"] = {"status": "skipped (budget)"}
        else:
            results["video"] = guarded(f"video at {args.size} px", lambda: video_run(
                args.device, args.size, args.video_frames, args.video_first_steps, args.video_steps),
                args.device, clock)

    report = format_report(info, args, results, clock)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "args": vars(args), **results, "report": report},
                                              indent=1, default=str))
    failed = [r for r in results["target"] if r["status"] in ("OOM", "failed")]
    failed += [b for b in results["baseline"].values() if b.get("status") == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The fast start's two ONNX graphs under onnxruntime's graph-optimisation levels: time, fused ops, agreement.

Usage (from the repository root; needs the fast extra)::

    PYTHONPATH=src python benchmarks/bench_fast_kernels.py                 # 448 px, 5 rounds
    PYTHONPATH=src python benchmarks/bench_fast_kernels.py --size 256 --rounds 3

The Magenta graphs are int8 in QDQ form (QuantizeLinear -> DequantizeLinear -> float Conv). At the levels
that fuse (extended and all) onnxruntime turns each such Conv into an integer QLinearConv whose kernel
depends on the CPU: on x86-64 without VNNI it sums pairs of u8 x s8 products in saturating 16-bit
registers (VPMADDUBSW), so the picture depends on the CPU (issue 24). This script builds sessions for
each configuration below, counts the ops of the graph onnxruntime really runs (its optimised model),
times ``FastStyle.style_vector`` and ``FastStyle.stylize`` (interleaved round by round, median) and
gives each picture's max |difference| from the op-by-op float run (``disable``). Configurations:

* ``all``: ``ORT_ENABLE_ALL`` (onnxruntime's default, the code before issue 24);
* ``all+u8u8``: ``ORT_ENABLE_ALL`` with the session config entry ``session.x64quantprecision=1``
  (onnxruntime's documented switch to its slower U8U8 kernels on x86-64 without VNNI; onnxruntime 1.32
  refuses to load either graph with it: "Attempt to replace the existing tensor", reported and skipped);
* ``all-qdq``: ``ORT_ENABLE_ALL`` with ``session.disable_quant_qdq=1`` (no QDQ fusion; the float
  optimisations stay, and the weights' DequantizeLinear are folded into float constants at load);
* ``extended``, ``basic``: ``ORT_ENABLE_EXTENDED``, ``ORT_ENABLE_BASIC``;
* ``disable``: ``ORT_DISABLE_ALL``, every node run as written, in float (what the code does now).

The machine is shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SAMPLES, import_artistyle, log

#: name -> (graph optimisation level, session config entries)
CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "all": ("ORT_ENABLE_ALL", {}),
    "all+u8u8": ("ORT_ENABLE_ALL", {"session.x64quantprecision": "1"}),
    "all-qdq": ("ORT_ENABLE_ALL", {"session.disable_quant_qdq": "1"}),
    "extended": ("ORT_ENABLE_EXTENDED", {}),
    "basic": ("ORT_ENABLE_BASIC", {}),
    "disable": ("ORT_DISABLE_ALL", {}),
}


def session(ort: Any, path: Path, config: str, threads: int, saved: Path | None = None) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    level, entries = CONFIGS[config]
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    if saved is not None:
        options.optimized_model_filepath = str(saved)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    return dict(counts.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=448, help="the picture's long edge (default 448)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per configuration (default 5)")
    parser.add_argument("--content", default=str(SAMPLES / "chelsea_cat.jpg"))
    parser.add_argument("--style", default=str(SAMPLES / "starry_night.jpg"))
    args = parser.parse_args()

    import_artistyle()
    import onnxruntime as ort
    import torch

    from artistyle import fast
    from artistyle.images import load_image

    threads = torch.get_num_threads()
    log(f"onnxruntime {ort.__version__}, {threads} threads; load average at start {os.getloadavg()}")
    content, style = load_image(args.content).rgb, load_image(args.style).rgb
    predict_path, transform_path = fast.find_models()
    stylers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in CONFIGS:
            styler = fast.FastStyle()
            try:
                for attribute, path in (("predict", predict_path), ("transform", transform_path)):
                    saved = Path(tmp) / f"{config}-{attribute}.onnx"
                    setattr(styler, attribute, session(ort, path, config, threads, saved))
                    counts = op_counts(saved)
                    print(f"{config}: {path.name} as run: "
                          f"{ {k: v for k, v in counts.items() if k.startswith(('QLinear', 'Conv'))} }")
            except Exception as exc:  # onnxruntime's own error types
                print(f"{config}: onnxruntime cannot load {path.name}: {str(exc).strip().splitlines()[-1][-100:]}")
                continue
            stylers[config] = styler
    configs = list(stylers)
    vectors = {name: s.style_vector(style) for name, s in stylers.items()}
    pictures = {name: s.stylize(content, vectors[name], args.size) for name, s in stylers.items()}
    times: dict[str, list[float]] = {name: [] for name in configs}
    cpu_times: dict[str, list[float]] = {name: [] for name in configs}
    vector_times: dict[str, list[float]] = {name: [] for name in configs}
    for round_ in range(args.rounds):
        for name in configs:
            start = time.perf_counter()
            stylers[name].style_vector(style)
            vector_times[name].append(time.perf_counter() - start)
            start, cpu = time.perf_counter(), time.process_time()
            stylers[name].stylize(content, vectors[name], args.size)
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu)
        log(f"round {round_ + 1}/{args.rounds} done")
    log(f"load average at end {os.getloadavg()}")
    base, cpu_base = statistics.median(times["all"]), statistics.median(cpu_times["all"])
    vector_base = statistics.median(vector_times["all"])
    print(f"\nstylize at {args.size} px, median of {args.rounds} interleaved rounds (wall, and CPU time of this "
          "process); style_vector at 256 px (wall)")
    print("| configuration | stylize s | / all | stylize CPU s | / all | style_vector s | / all "
          "| vector max abs diff vs disable | picture max abs diff vs disable | picture mean abs diff vs disable |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in configs:
        t, c, v = (statistics.median(x[name]) for x in (times, cpu_times, vector_times))
        dv = float(np.abs(vectors[name] - vectors["disable"]).max())
        dp = np.abs(pictures[name] - pictures["disable"])
        print(f"| {name} | {t:.3f} | {t / base:.2f} | {c:.3f} | {c / cpu_base:.2f} | {v:.3f} | {v / vector_base:.2f} "
              f"| {dv:.4f} | {dp.max():.4f} | {dp.mean():.5f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Does the video mode's optical flow depend on the CPU's instruction set? (issue 24)

Usage (from the repository root; needs the video extra)::

    PYTHONPATH=src python benchmarks/bench_flow_simd.py

OpenCV picks SIMD code paths at run time from the CPU's features. This script computes the flows of
``artistyle.video.flow`` (``flow_pair``: DIS at each preset, and Farneback) on three pairs of frames under
four settings, each in its own subprocess, and compares every flow with the default's:

* ``default``: what OpenCV picks on this CPU;
* ``no-avx512``: ``OPENCV_CPU_DISABLE=AVX512-SKX,AVX512-CLX`` (as on an AVX2 CPU such as an EPYC before Zen 4);
* ``baseline``: every dispatched feature above SSE3 disabled the same way (OpenCV's x86-64 baseline);
* ``unoptimized``: ``cv2.setUseOptimized(False)`` in the process (OpenCV's switch for its optimised paths).

The pairs: the test's smooth texture shifted by (3, -2) px (tests/test_video_method.py), the pan of
tests/test_video.py (2 px a frame), and chelsea_cat at 448 px against itself turned 1 degree and zoomed 2%
(bilinear). For each it prints the max and mean |difference| of the flows (px), the share of pixels whose
consistency weight (Ruder's check) changes, and the mean |difference| of the previous frame warped by each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, SAMPLES, import_artistyle

SETTINGS = {
    "default": {},
    "no-avx512": {"OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX"},
    "baseline": {"OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX,AVX_VNNI,AVX2,FP16,AVX,SSE4.2,SSE4.1,POPCNT,SSSE3"},
    "unoptimized": {"ARTISTYLE_BENCH_UNOPTIMIZED": "1"},
}
METHODS = [("dis", "ultrafast"), ("dis", "fast"), ("dis", "medium"), ("farneback", "medium")]


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import cv2
    from PIL import Image

    sys.path.insert(0, str(REPO))
    from tests.test_video_method import shifted, texture

    previous = texture(96, 112)
    found = {"texture shift": (previous, shifted(previous, 3, -2))}
    rng = np.random.default_rng(3)  # tests/test_video.py's moving_frames, count 3, 64 x 48
    wide = (rng.random((48, 70, 3)) * 255).astype(np.uint8)
    wide = np.asarray(Image.fromarray(wide).resize((70, 48), Image.Resampling.BOX))
    found["pan 2 px"] = (wide[:, 6:70], wide[:, 4:68])
    import_artistyle()
    from artistyle.images import load_image

    photo = load_image(SAMPLES / "chelsea_cat.jpg").rgb
    scale = 448 / max(photo.shape[:2])
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    h, w = photo.shape[:2]
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((w / 2, h / 2), 1.0, 1.02), (w, h),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    found["photo turned 1 deg, zoom 2%"] = (photo, turned)
    return found


def worker(out: Path) -> None:
    import cv2

    if os.environ.get("ARTISTYLE_BENCH_UNOPTIMIZED"):
        cv2.setUseOptimized(False)
    import_artistyle()
    from artistyle.video.flow import flow_pair

    arrays = {"features": np.array(cv2.getCPUFeaturesLine() + (" (unoptimized)" if not cv2.useOptimized() else ""))}
    for name, (previous, current) in pairs().items():
        for method, preset in METHODS:
            forward, backward = flow_pair(previous, current, method, preset)  # type: ignore[arg-type]
            arrays[f"{name}|{method}-{preset}|forward"] = forward
            arrays[f"{name}|{method}-{preset}|backward"] = backward
    np.savez(out, **arrays)  # type: ignore[arg-type]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]))
        return
    import_artistyle()
    import torch

    from artistyle.video.flow import consistency_weights
    from artistyle.video.warp import warp

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting, env in SETTINGS.items():
            out = Path(tmp) / f"{setting}.npz"
            subprocess.run([sys.executable, __file__, "--worker", str(out)], check=True, env={**os.environ, **env})
            results[setting] = dict(np.load(out))
    frames = pairs()
    print("| pair | flow | setting | CPU features OpenCV uses | max abs diff px | mean abs diff px "
          "| weights changed | warped frame mean abs diff |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    base = results["default"]
    for name, (previous, _) in frames.items():
        image = torch.from_numpy(np.asarray(previous, np.float32) / (255 if previous.dtype == np.uint8 else 1))
        image = image.permute(2, 0, 1)[None]
        for method, preset in METHODS:
            key = f"{name}|{method}-{preset}"
            weights = consistency_weights(base[f"{key}|forward"], base[f"{key}|backward"])
            warped = warp(image, base[f"{key}|backward"])[0]
            for setting in list(SETTINGS)[1:]:
                other = results[setting]
                d = np.abs(np.concatenate([other[f"{key}|{k}"] - base[f"{key}|{k}"] for k in ("forward", "backward")]))
                changed = (consistency_weights(other[f"{key}|forward"], other[f"{key}|backward"]) != weights).mean()
                moved = (warp(image, other[f"{key}|backward"])[0] - warped).abs().mean().item()
                features = str(other["features"]).replace("*", "")
                print(f"| {name} | {method} {preset} | {setting} | {features} | {d.max():.2e} | {d.mean():.2e} "
                      f"| {changed:.2%} | {moved:.2e} |")
    print(json.dumps({"default features": str(base["features"])}))


if __name__ == "__main__":
    main()

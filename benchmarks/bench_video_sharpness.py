#!/usr/bin/env python3
"""Video sharpness benchmark: does a painted clip stay as sharp and as bright as its first frame?

Usage (from the repository root; needs ../shared/bench and the video extra)::

    PYTHONPATH=src python benchmarks/bench_video_sharpness.py                      # 30 frames at 256 px
    PYTHONPATH=src python benchmarks/bench_video_sharpness.py --frames 10 --size 128 --first-steps 150
    PYTHONPATH=src python benchmarks/bench_video_sharpness.py --reference-frames 4 --keep /tmp/sharp
    PYTHONPATH=src python benchmarks/bench_video_sharpness.py --warp lanczos --brightness hold free

Method:

1. ``../shared/bench/video_clip.py`` makes the clip at three times the painting size (default 768x528,
   the camera panning 1 px a frame, a disc moving 4 px a frame), so that at the working size (256 px)
   the motion is a third of that: sub-pixel and fractional, as in real footage. (Made at the working
   size, every motion would be whole pixels, and a warp is exact on those: the softening would not show.)
   ``video_eval.py`` scores the warping error with the clip's true motion after scaling the painted
   frames up to it (Lanczos), the same for every run.
2. ``artistyle video FRAMES STYLE -o OUT --size S --first-steps F --steps N --seed 1 --warp M
   --brightness B`` for each ``--warp`` method asked for (default both: ``lanczos``, the default now, and
   ``bilinear``, the former one) and each ``--brightness`` mode (default ``hold``, the default; ``free``:
   as the optimiser leaves the frames, the former behaviour).
3. The references: ``artistyle FRAME STYLE --size S --steps F --seed 1`` for each of the first
   ``--reference-frames`` frames (default all) and the last one, each painted alone like the video's
   first frame (so the reference's first frame is the video's); and the same with frame i's seed i + 1
   (``--reference-seeds each``), which is what painting the frames one by one with the CLI's default
   (a random seed each run) gives. One noise for every frame pins the strokes to the pixel grid, which
   is steadier than a user's frame-by-frame run when the motion is a fraction of a pixel.
4. Per frame: the variance of the Laplacian (4-neighbour, on the luminance ``Y = 0.299 R + 0.587 G +
   0.114 B`` of the 8-bit frame scaled to [0, 1], printed x 1000) and the mean luminance, for the photo,
   the reference and every method; their last / first ratios; and the warping error, over the whole
   clip and over the pairs the reference has, against the reference's.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import command, timed

SHARED = REPO.parent / "shared"
IMAGES = SHARED / "images"
STYLE = IMAGES / "style" / "starry_night.jpg"


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``Y = 0.299 R + 0.587 G + 0.114 B`` of an ``(H, W, 3)`` image in [0, 1]."""
    return np.asarray(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)


def sharpness(rgb: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of the luminance (inner pixels), x 1000."""
    y = luminance(rgb)
    laplacian = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    return float(laplacian.var() * 1000)


def read(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    if size is not None and image.size != size:
        image = image.resize(size, Image.LANCZOS)
    return np.asarray(image, np.float64) / 255


def measures(paths: list[Path], size: tuple[int, int] | None = None) -> tuple[list[float], list[float]]:
    images = [read(p, size) for p in paths]
    return [sharpness(i) for i in images], [float(luminance(i).mean()) for i in images]


def warp_error(paths: list[Path], truth: Any) -> float:
    """``video_eval.py``'s warping error of these consecutive frames (the first ``len(paths) - 1`` pairs)."""
    sys.path.insert(0, str(SHARED / "bench"))
    video_eval = importlib.import_module("video_eval")
    error, _ = video_eval.warp_error([np.asarray(Image.open(p).convert("RGB")) for p in paths], truth)
    return float(error)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="the painting's long edge")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--upscale", type=int, default=3, help="the clip is made this many times larger than --size")
    p.add_argument("--pan", type=int, default=1, help="camera pan, px per frame of the large clip")
    p.add_argument("--vx", type=int, default=4, help="the disc's motion, px per frame of the large clip")
    p.add_argument("--vy", type=int, default=0)
    p.add_argument("--background", type=Path, default=IMAGES / "content" / "tubingen.jpg")
    p.add_argument("--sprite", type=Path, default=IMAGES / "content" / "coffee.jpg")
    p.add_argument("--style", type=Path, default=STYLE)
    p.add_argument("--first-steps", type=int, default=300)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warp", nargs="+", default=["lanczos", "bilinear"], help="the methods to compare")
    p.add_argument("--brightness", nargs="+", default=["hold"],
                   help="the brightness modes to compare (each with every --warp; default hold)")
    p.add_argument("--reference-frames", type=int, default=0,
                   help="paint only the first N frames (and the last) one by one (default 0: all)")
    p.add_argument("--reference-seeds", nargs="+", choices=["same", "each"], default=["same", "each"],
                   help="same: every reference frame from seed 1 (the same noise, steadier than a user gets); "
                        "each: frame i from seed i + 1, as painting frames one by one with the CLI's default "
                        "random seed does (default both)")
    p.add_argument("--keep", type=Path, help="keep the clip and the painted frames here (and reuse them)")
    args = p.parse_args()
    if not (SHARED / "bench" / "video_clip.py").is_file():
        print(f"{SHARED / 'bench'} is missing", file=sys.stderr)
        return 2
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_video_sharpness_"))
    root.mkdir(parents=True, exist_ok=True)
    width = args.size * args.upscale
    height = round(width * 11 / 16 / 2) * 2  # video_clip.py's aspect, even
    clip_key = [width, height, args.frames, args.pan, args.vx, args.vy, str(args.background), str(args.sprite)]
    clip = root / f"clip_{'_'.join(map(str, clip_key[:6]))}"
    if not (clip / "truth.npz").is_file():
        subprocess.run([sys.executable, str(SHARED / "bench" / "video_clip.py"), str(clip), "--frames",
                        str(args.frames), "--width", str(width), "--height", str(height), "--pan", str(args.pan),
                        "--vx", str(args.vx), "--vy", str(args.vy), "--background", str(args.background),
                        "--sprite", str(args.sprite)], check=True, capture_output=True)
    inputs = sorted((clip / "frames").glob("*.png"))
    truth = dict(np.load(clip / "truth.npz"))
    common = ["--size", str(args.size), "-q"]
    paint_key = [*clip_key, args.size, args.first_steps, str(args.style)]

    def painted(folder: Path, key: list[Any], paint: Any) -> tuple[list[Path], float]:
        record = folder / "bench.json"
        if record.is_file() and json.loads(record.read_text())["key"] == key:
            seconds = json.loads(record.read_text())["seconds"]
        else:
            folder.mkdir(parents=True, exist_ok=True)
            seconds = paint()
            record.write_text(json.dumps({"key": key, "seconds": seconds}))
        return sorted(folder.glob("frame_*.png")), seconds

    reference_count = args.reference_frames or args.frames
    chosen = inputs[:reference_count] + ([inputs[-1]] if reference_count < args.frames else [])
    references: dict[str, tuple[list[Path], float]] = {}
    for seeds in args.reference_seeds:
        reference_dir = root / ("frame_by_frame" if seeds == "same" else "frame_by_frame_seeds")

        def paint_reference(reference_dir: Path = reference_dir, seeds: str = seeds) -> float:
            return sum(timed(command(str(f), str(args.style), "-o", str(reference_dir / f.name), "--steps",
                                     str(args.first_steps), *common, "--seed",
                                     "1" if seeds == "same" else str(inputs.index(f) + 1))) for f in chosen)

        references[seeds] = painted(reference_dir, [*paint_key, reference_count, seeds], paint_reference)
    runs: dict[str, tuple[list[Path], float]] = {}
    for method in args.warp:
        for mode in args.brightness:
            name = method if args.brightness == ["hold"] else f"{method}, {mode}"
            out = root / f"video_{method}" if mode == "hold" else root / f"video_{method}_{mode}"
            runs[name] = painted(out, [*paint_key, args.steps, method, mode], lambda out=out, method=method, mode=mode:
                                 timed(command("video", str(clip / "frames"), str(args.style), "-o", str(out),
                                               "--first-steps", str(args.first_steps), "--steps", str(args.steps),
                                               "--warp", method, "--brightness", mode, "--restart", *common,
                                               "--seed", "1")))
    size = Image.open(next(iter(references.values()))[0][0]).size
    columns: dict[str, tuple[list[float], list[float]]] = {"photo": measures(inputs, size)}
    indices = list(range(reference_count)) + ([args.frames - 1] if reference_count < args.frames else [])
    for seeds, (reference, _) in references.items():
        name = f"frame by frame, {'seed 1' if seeds == 'same' else 'seed per frame'}"
        columns[name] = ([float("nan")] * args.frames, [float("nan")] * args.frames)
        for i, s, lum in zip(indices, *measures(reference), strict=True):
            columns[name][0][i], columns[name][1][i] = s, lum
    for method, (frames, _) in runs.items():
        columns[f"video, {method}"] = measures(frames)

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"Clip: {args.frames} frames made at {width}x{height} (pan {args.pan}, disc {args.vx},{args.vy} px a frame),"
          f" painted at {args.size} px (motion / {args.upscale}); style {args.style.name}; first frame "
          f"{args.first_steps} it, later frames {args.steps} it; reference: {len(chosen)} frames one by one\n")
    shown = sorted({0, 1, 2, 4, *range(9, args.frames, 5), args.frames - 1} & set(range(args.frames)))
    names = list(columns)
    for title, which in (("Variance of the Laplacian of Y (x 1000)", 0), ("Mean luminance Y", 1)):
        print(f"{title}:\n\n| frame | " + " | ".join(names) + " |\n|---:|" + "---:|" * len(names))
        for i in shown:
            print(f"| {i + 1} | " + " | ".join(f"{columns[n][which][i]:.{2 if which == 0 else 4}f}" for n in names)
                  + " |")
        print("| last / first | " + " | ".join(f"{columns[n][which][-1] / columns[n][which][0]:.3f}" for n in names)
              + " |\n")
    pairs = reference_count - 1
    reference_errors = {seeds: warp_error(frames[:reference_count], truth) if pairs else float("nan")
                        for seeds, (frames, _) in references.items()}
    print(f"Warping error (video_eval.py), over all pairs and over the first {pairs} (those the references have):\n")
    print("| run | seconds | all pairs | first pairs | " + " | ".join(f"/ frame by frame, {s}" for s in references)
          + " |\n|---|---:|---:|---:|" + "---:|" * len(references))
    for seeds, (_, seconds) in references.items():
        first = reference_errors[seeds]
        print(f"| frame by frame, {seeds} ({len(chosen)} frames) | {seconds:.0f} | - | {first:.5f} | "
              + " | ".join(f"{first / reference_errors[s]:.3f}" for s in references) + " |")
    for method, (frames, seconds) in runs.items():
        whole, first = warp_error(frames, truth), warp_error(frames[:reference_count], truth)
        print(f"| video, {method} | {seconds:.0f} | {whole:.5f} | {first:.5f} | "
              + " | ".join(f"{first / reference_errors[s]:.3f}" for s in references) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

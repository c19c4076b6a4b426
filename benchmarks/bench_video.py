#!/usr/bin/env python3
"""Video benchmark: temporal consistency, quality and time of ``artistyle video`` against painting the
frames one by one, on a clip whose motion is known exactly.

Usage (from the repository root; needs ../shared/bench and the video extra)::

    PYTHONPATH=src python benchmarks/bench_video.py                       # the issue's clip at 160 px
    PYTHONPATH=src python benchmarks/bench_video.py --frames 48 --pan 4 --vx 6 --skip-baseline
    PYTHONPATH=src python benchmarks/bench_video.py --steps 50 100 --temporal-weight 1e9 1e10

Method:

1. ``../shared/bench/video_clip.py`` makes the clip (PNG frames, an mp4 and ``truth.npz``: every pixel's
   true source in the previous frame, and where it was hidden).
2. Frame by frame (the reference, unless ``--skip-baseline``): ``artistyle FRAME STYLE --scales 1
   --steps FIRST --seed 1`` for every frame, the same budget as the video's first frame.
3. ``artistyle video FRAMES/ STYLE -o OUT/ --first-steps FIRST --steps N --seed 1`` for every
   combination of ``--steps`` and ``--temporal-weight`` asked for.
4. Scores: ``video_eval.py`` (warping error with the true motion, lower is steadier) of the whole clip,
   and ``gatys_eval.py`` (content and style distance, lower is closer) of the middle frame.
   Wall times are of the whole command, so they include starting Python and loading the weights.
5. The flow's share: the time of the DIS flows and consistency weights of every frame pair at the
   working size, computed alone, against the video's wall time (the run computes them in a thread
   beside the painting).

Prints a Markdown table; ratios are against the frame-by-frame run of the same invocation.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import command, timed

SHARED = REPO.parent / "shared"
STYLE = SHARED / "images" / "style" / "starry_night.jpg"


def score(script: str, *args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, str(SHARED / "bench" / script), *args], check=True, capture_output=True,
                         text=True).stdout
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.eE+-]+)", out)}


def long_range_errors(out: Path, truth_path: Path, pan: int, vx: int, frames: int, gap: int) -> tuple[float, float]:
    """Warping error between frames ``gap`` apart, on the background only (its motion is the pan):
    ``(every background pixel seen at both ends, those of them the disc hid in between)``.

    The shared ``video_eval.py`` compares neighbours only; this looks at what long-term consistency is
    for: does a region look the same after the disc has passed over it? The disc's masks are read back
    from ``truth.npz`` (a disc pixel's source is not the pan's).
    """
    import numpy as np
    from PIL import Image

    truth = np.load(truth_path)
    height, width = truth["valid_1"].shape
    ys, xs = np.mgrid[0:height, 0:width]
    discs = [truth[f"src_{t}"][..., 0] != xs + pan for t in range(1, frames)]
    first = np.zeros_like(discs[0])  # frame 0's disc: frame 1's moved back by (vx, 1), video_clip's default vy
    y1, x1 = np.nonzero(discs[0])
    keep = (y1 >= 1) & (x1 >= vx)
    first[y1[keep] - 1, x1[keep] - vx] = True
    discs.insert(0, first)
    painted = [np.asarray(Image.open(f).convert("RGB").resize((width, height)), np.float32) / 255
               for f in sorted(out.glob("*.png"))]
    errors, hidden_errors = [], []
    for t in range(max(gap, 1), frames):
        source = xs + pan * gap  # the background point of frame t at frame t - gap
        seen = ~discs[t] & (source < width)
        seen[seen] &= ~discs[t - gap][ys[seen], source[seen]]
        between = np.zeros_like(seen)
        for k in range(1, gap):
            shifted = xs + pan * k
            inside = shifted < width
            between[inside] |= discs[t - k][ys[inside], shifted[inside]]
        diff = ((painted[t] - painted[t - gap][ys, np.clip(source, 0, width - 1)]) ** 2).mean(axis=2)
        errors.append(diff[seen].mean())
        if (seen & between).any():
            hidden_errors.append(diff[seen & between].mean())
    return float(np.mean(errors)), float(np.mean(hidden_errors)) if hidden_errors else float("nan")


def flow_seconds(frames: Path, size: int, preset: str) -> float:
    """Seconds for the flows and weights of every consecutive pair at the working size, alone."""
    import numpy as np

    from artistyle.images import load_image, resize_long_edge
    from artistyle.video.flow import flow_step

    images = [resize_long_edge(load_image(p).rgb, size) for p in sorted(frames.glob("*.png"))]
    started = time.perf_counter()
    for previous, current in itertools.pairwise(images):
        flow_step(np.asarray(previous), np.asarray(current), "dis", preset)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--pan", type=int, default=2)
    p.add_argument("--vx", type=int, default=3)
    p.add_argument("--clip-size", type=int, nargs=2, default=None, metavar=("W", "H"),
                   help="the clip's frame size (default video_clip.py's 160 112)")
    p.add_argument("--first-steps", type=int, default=300)
    p.add_argument("--steps", type=int, nargs="+", default=[100])
    p.add_argument("--temporal-weight", type=float, nargs="+", default=[None])
    p.add_argument("--flow-preset", default="medium")
    p.add_argument("--style", type=Path, default=STYLE)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=OPTIONS",
                   help="also run the video with these extra options, e.g. 'long-term=--long-term 1,10,20,40' "
                   "(repeatable; each is a row)")
    p.add_argument("--gap", type=int, default=0, help="also score the background's warping error between frames "
                   "this far apart, and where the disc hid it in between (long-term consistency)")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--keep", type=Path, help="keep the clip and the painted frames in this folder")
    args = p.parse_args()
    if not (SHARED / "bench" / "video_clip.py").is_file():
        print(f"{SHARED / 'bench'} is missing", file=sys.stderr)
        return 2
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_video_"))
    root.mkdir(parents=True, exist_ok=True)
    clip = root / "clip"
    if not (clip / "truth.npz").is_file():
        make = [sys.executable, str(SHARED / "bench" / "video_clip.py"), str(clip), "--frames", str(args.frames),
                "--pan", str(args.pan), "--vx", str(args.vx)]
        if args.clip_size:
            make += ["--width", str(args.clip_size[0]), "--height", str(args.clip_size[1])]
        subprocess.run(make, check=True, capture_output=True)
    frames, truth = clip / "frames", clip / "truth.npz"
    middle = sorted(frames.glob("*.png"))[args.frames // 2]
    size, first = str(args.size), str(args.first_steps)
    rows = []
    base = None
    if not args.skip_baseline:
        out = root / "frame_by_frame"
        out.mkdir(exist_ok=True)
        recorded = out / "seconds.json"  # with --keep, a later run with other video settings reuses the reference
        key = [args.size, args.first_steps, args.frames, args.pan, args.vx, str(args.style)]
        if recorded.is_file() and json.loads(recorded.read_text())["key"] == key:
            seconds = json.loads(recorded.read_text())["seconds"]
        else:
            seconds = sum(timed(command(str(f), str(args.style), "-o", str(out / f.name), "--size", size,
                                        "--scales", "1", "--steps", first, "--seed", "1", "-q"))
                          for f in sorted(frames.glob("*.png")))
            recorded.write_text(json.dumps({"key": key, "seconds": seconds}))
        base = {"label": f"frame by frame, {first} it each", "seconds": seconds,
                **score("video_eval.py", str(out), str(truth)),
                **score("gatys_eval.py", str(out / middle.name), str(middle), str(args.style), "--size", size)}
        rows.append(base)
    variants = [(name, options.split()) for name, _, options in (v.partition("=") for v in args.variant)]
    runs = [(steps, weight, "", []) for steps in args.steps for weight in args.temporal_weight]
    runs += [(args.steps[0], args.temporal_weight[0], name, options) for name, options in variants]
    for steps, weight, variant, options in runs:
        out = root / f"video_{steps}_{'default' if weight is None else f'{weight:.0e}'}"  # no dot: a folder
        out = out.with_name(out.name + (f"_{variant}" if variant else ""))
        extra = ([] if weight is None else ["--temporal-weight", str(weight)]) + options
        started = time.time()
        seconds = timed(command("video", str(frames), str(args.style), "-o", str(out), "--size", size,
                                "--first-steps", first, "--steps", str(steps), "--seed", "1", "-q",
                                "--restart", "--flow-preset", args.flow_preset, *extra))
        # Each frame's file is written when it is done: their times give the seconds per frame.
        done = sorted(p.stat().st_mtime for p in out.glob("*.png"))
        later = [b - a for a, b in itertools.pairwise(done)]
        gaps = long_range_errors(out, truth, args.pan, args.vx, args.frames, args.gap) if args.gap else None
        rows.append({"label": f"video, {first} + {steps} it, temporal weight {weight or 'default'}"
                              + (f", {variant} ({' '.join(options)})" if variant else ""), "gaps": gaps,
                     "seconds": seconds, "first_s": done[0] - started,
                     "later_s": statistics.median(later) if later else float("nan"),
                     **score("video_eval.py", str(out), str(truth)),
                     **score("gatys_eval.py", str(out / middle.name), str(middle), str(args.style),
                             "--size", size)})
    flow = flow_seconds(frames, args.size, args.flow_preset)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"Clip: {args.frames} frames, pan {args.pan}, disc {args.vx} px/frame; {args.size} px; "
          f"style {args.style.name}")
    print(f"DIS flow ({args.flow_preset}) and weights of all {args.frames - 1} pairs alone: {flow:.2f} s\n")
    print("| run | wall s | first frame s | later s/frame | warp error | content (middle) | style (middle) | "
          "warp / base | content / base | style / base | time / base |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    if base is not None and args.gap:
        base["gaps"] = long_range_errors(root / "frame_by_frame", truth, args.pan, args.vx, args.frames, args.gap)
    for r in rows:
        per_frame = f"{r['first_s']:.1f} | {r['later_s']:.2f}" if "first_s" in r else "- | -"
        ratios = ["-"] * 4
        if base is not None and r is not base:
            ratios = [f"{r['warp'] / base['warp']:.3f}", f"{r['content'] / base['content']:.2f}",
                      f"{r['style'] / base['style']:.2f}", f"{r['seconds'] / base['seconds']:.2f}"]
        print(f"| {r['label']} | {r['seconds']:.1f} | {per_frame} | {r['warp']:.5f} | {r['content']:.3f} | "
              f"{r['style']:.3f} | "
              + " | ".join(ratios) + " |")
    print(f"\nflow share of the video's wall time: {flow / rows[-1]['seconds']:.1%} (last row)")
    if args.gap:
        print(f"\nBackground warping error {args.gap} frames apart (all / where the disc hid it in between):\n")
        for r in rows:
            if r.get("gaps"):
                print(f"- {r['label']}: {r['gaps'][0]:.5f} / {r['gaps'][1]:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time to quality: how long ArtiStyle needs to match the tutorial baseline's final scores.

For each content/style pair, both programs get the same objective at the same
square size (the baseline squashes both images to a square, so both get the
same squashed PNGs):

* the baseline, ``../shared/bench/baseline_tutorial.py --freeze-weights --size S
  --steps 300`` (tutorial weights: style 0.0905, content 3.0e-4, Gram / (C H W),
  starting from the content), is run and its result scored with
  ``../shared/bench/gatys_eval.py`` (content and style distance);
* ArtiStyle runs with those weights in its own normalisation
  (``--content-weight 3.0e-4``, style layer weights ``1/C_l^2`` and
  ``--style-weight 0.0905 * sum_l 1/C_l^2``; ``--init content``), saving every
  ``--every`` iterations; each saved image is scored the same way, and the
  time is that of the first image whose content *and* style distance are at
  least as good as the baseline's final ones (from the run's manifest).

Usage::

    PYTHONPATH=src python benchmarks/bench_quality.py [--size 512] [--pairs tubingen:starry_night ...]

Prints a Markdown table: time, content and style distance of both, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BASELINE, SHARED_IMAGES
from common import GATYS_EVAL as EVAL

CHANNELS = (64, 128, 256, 512, 512)  # conv1_1 .. conv5_1
TUTORIAL_STYLE, TUTORIAL_CONTENT = 1e6 / (255.0 / (1.0 / 0.226)) ** 4, 1.0 / (255.0 / (1.0 / 0.226)) ** 2
DEFAULT_PAIRS = ("tubingen:starry_night", "chelsea_cat:great_wave", "astronaut:the_scream")


def find(name: str, kind: str) -> Path:
    for ext in (".jpg", ".png"):
        path = SHARED_IMAGES / kind / f"{name}{ext}"
        if path.exists():
            return path
    raise SystemExit(f"no {kind} image {name}")


def score(image: Path, content: Path, style: Path, size: int) -> tuple[float, float]:
    out = subprocess.run([sys.executable, str(EVAL), str(image), str(content), str(style), "--size", str(size),
                          "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["content"], data["style"]


def run_pair(content_name: str, style_name: str, size: int, every: int, work: Path,
             scale_steps: str | None = None, init: str = "content") -> dict:
    content, style = work / f"{content_name}.png", work / f"{style_name}.png"
    Image.open(find(content_name, "content")).convert("RGB").resize((size, size), Image.BILINEAR).save(content)
    Image.open(find(style_name, "style")).convert("RGB").resize((size, size), Image.BILINEAR).save(style)

    base_out, base_json = work / "baseline.png", work / "baseline.json"
    subprocess.run([sys.executable, str(BASELINE), "--freeze-weights", "--size", str(size), "--steps", "300",
                    "--content", str(content), "--style", str(style), "--out", str(base_out), "--json", str(base_json),
                    "--print-every", "0"], check=True, capture_output=True)
    base_time = json.loads(base_json.read_text())["opt_total_s"]
    base_c, base_s = score(base_out, content, style, size)

    inv = [1.0 / c**2 for c in CHANNELS]
    ours = work / "ours.png"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "artistyle", str(content), str(style), "-o", str(ours), "--size", str(size),
                    "--device", "cpu", "--seed", "0", "--init", init,
                    "--content-weight", f"{TUTORIAL_CONTENT:.6g}", "--style-weight", f"{TUTORIAL_STYLE * sum(inv):.6g}",
                    "--style-layer-weights", ",".join(f"{w:.6g}" for w in inv),
                    "--save-every", str(every), "--manifest", "-q",
                    *(["--scale-steps", scale_steps] if scale_steps else [])], check=True)
    wall = time.perf_counter() - started
    record = json.loads(ours.with_suffix(".json").read_text())
    seconds = {r["iteration"]: r["seconds"] for r in record["iterations"]}
    total_iterations = record["result"]["steps"]
    candidates = sorted(work.glob("ours_iter*.png")) + [ours]
    reached = None
    for image in candidates:
        it = int(image.stem.split("iter")[-1]) if "iter" in image.stem else total_iterations
        c, s = score(image, content, style, size)
        if c <= base_c and s <= base_s:
            reached = (it, seconds[it], c, s)
            break
    final_c, final_s = score(ours, content, style, size)
    return {
        "pair": f"{content_name} + {style_name}",
        "baseline": (base_time, base_c, base_s),
        "ours_final": (seconds[total_iterations], final_c, final_s, wall),
        "reached": reached,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--every", type=int, default=10, help="score ArtiStyle's image every N iterations")
    p.add_argument("--init", default="content", help="ArtiStyle's start (default content, as the baseline's; fast: "
                   "the feed-forward picture, with the tutorial's weights and the default schedule)")
    p.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), metavar="CONTENT:STYLE")
    p.add_argument("--scale-steps", metavar="N1,N2,..",
                   help="ArtiStyle's iterations per scale (default: its own default schedule); a long last "
                        "scale lets the run go on until it matches the baseline")
    args = p.parse_args()
    if not BASELINE.exists() or not EVAL.exists():
        print(f"needs {BASELINE} and {EVAL}", file=sys.stderr)
        return 1
    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, size {args.size}, every {args.every}, "
          f"ArtiStyle scale steps {args.scale_steps or 'default'}")
    print("| pair | baseline s | baseline content / style | ArtiStyle s to match | at iteration | "
          "content / style there | ratio | ArtiStyle final s, content / style |")
    print("|---|---:|---|---:|---:|---|---:|---|")
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            r = run_pair(content_name, style_name, args.size, args.every, Path(tmp), args.scale_steps, args.init)
        bt, bc, bs = r["baseline"]
        ft, fc, fs, _ = r["ours_final"]
        if r["reached"]:
            it, t, c, s = r["reached"]
            print(f"| {r['pair']} | {bt:.0f} | {bc:.3f} / {bs:.4f} | {t:.0f} | {it} | {c:.3f} / {s:.4f} | "
                  f"{t / bt:.0%} | {ft:.0f}, {fc:.3f} / {fs:.4f} |", flush=True)
        else:
            print(f"| {r['pair']} | {bt:.0f} | {bc:.3f} / {bs:.4f} | not reached | - | - | - | "
                  f"{ft:.0f}, {fc:.3f} / {fs:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

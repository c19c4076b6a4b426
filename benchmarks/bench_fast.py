#!/usr/bin/env python3
"""Time to quality of the fast start (issue 15): ``artistyle C S --init fast`` against ``artistyle C S``.

Usage (from the repository root; needs the fast extra and ``../shared``; takes long on a CPU, run it on
an idle machine)::

    PYTHONPATH=src python benchmarks/bench_fast.py                         # 5 pairs at 448 px, the fast default
    PYTHONPATH=src python benchmarks/bench_fast.py --pairs 1 --fast-steps 60 80 120 --fast-scales 1 2
    PYTHONPATH=src python benchmarks/bench_fast.py --fast-content-weight 1 2 4 --json fast.json
    PYTHONPATH=src python benchmarks/bench_fast.py --pairs 1 --size 64 --default-args="--steps 4" \
        --fast-steps 2                                                      # a smoke test of the script

For each pair (content x style of ``SHARED/images``; tubingen + starry_night first) it

1. paints the fast start's picture alone (``artistyle.fast`` in this process, at the output size: the
   feed-forward picture with the style's colour moments) and scores it: what the optimisation starts from;
2. runs, alternately and ``--rounds`` times, the default command (``artistyle C S --size SIZE --seed 0
   --device cpu`` plus ``--default-args``) and one fast command per point of the sweep
   (``--init fast`` plus ``--steps``/``--scales``/``--content-weight`` from the sweep's grid; a value
   ``default`` leaves that option out, so the fast schedule of the code decides), each a fresh
   subprocess timed by wall clock (imports and weight loading included, as a user waits for them);
3. scores every output with ``SHARED/bench/gatys_eval.py --size SIZE`` (content and style distance,
   lower is better).

It prints a Markdown table per pair: wall seconds (median over rounds), both distances and the ratios to
the default run (time ratio; distance ratios <= 1 mean no worse), and whether the issue's target holds
(both distances no worse, time <= 30%). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, SHARED, import_artistyle, log, tail

PAIRS = [
    ("tubingen.jpg", "starry_night.jpg"), ("astronaut.jpg", "great_wave.jpg"), ("chelsea_cat.jpg", "the_scream.jpg"),
    ("coffee.jpg", "composition_vii.jpg"), ("montserrat_landscape.jpg", "water_lilies.jpg"),
    ("cameraman_gray.png", "shipwreck.jpg"),
]
TARGET_TIME = 0.30


def shared_folder(given: str | None) -> Path:
    for candidate in ([Path(given)] if given else [SHARED, REPO.parent.parent / "shared", Path("/work/shared")]):
        if (candidate / "bench" / "gatys_eval.py").is_file() and (candidate / "images").is_dir():
            return candidate
    raise SystemExit("bench_fast: no shared folder with bench/gatys_eval.py and images/; give --shared PATH")


def score(shared: Path, out: Path, content: Path, style: Path, size: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, str(shared / "bench" / "gatys_eval.py"), str(out), str(content),
                           str(style), "--size", str(size), "--json"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        log(tail(done.stderr))
        return {"content": float("nan"), "style": float("nan")}
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def paint(content: Path, style: Path, out: Path, size: int, extra: list[str]) -> float:
    """Wall seconds of one ``artistyle`` run in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "artistyle", str(content), str(style), "-o", str(out), "--size", str(size),
               "--seed", "0", "--device", "cpu", "--quiet", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        log(f"failed ({done.returncode}): {' '.join(command)}\n{tail(done.stderr)}")
        return float("nan")
    return seconds


def feed_forward(content: Path, style: Path, out: Path, size: int) -> float:
    """The fast start's picture alone at the output size, as ``fast_start`` makes it (the feed-forward picture
    with the style's colour moments; the run makes it at its first scale's size); returns its seconds."""
    import_artistyle()
    from artistyle import NST
    from artistyle.images import save_image, tensor_to_array

    nst = NST(size=size, device="cpu", init="fast")
    inputs = nst.load_images(content, style)
    started = time.perf_counter()
    picture = nst.initial_image(inputs)  # the engine's own start (artistyle.fast.fast_start), at the output size
    seconds = time.perf_counter() - started
    save_image(tensor_to_array(picture), out)
    return seconds


def sweep(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(label, options) for every point of the fast schedule's grid."""
    points = []
    for steps, scales, weight in itertools.product(args.fast_steps, args.fast_scales, args.fast_content_weight):
        options: list[str] = ["--init", "fast"]
        label = []
        for flag, value in (("--steps", steps), ("--scales", scales), ("--content-weight", weight)):
            if value != "default":
                options += [flag, value]
                label.append(f"{flag[2:]}={value}")
        points.append((" ".join(label) or "fast default", options + args.fast_args.split()))
    return points


def row(label: str, seconds: float, dist: dict[str, float], base: dict[str, Any] | None) -> str:
    if base is None:
        return f"| {label} | {seconds:.1f} | {dist['content']:.3f} | {dist['style']:.4f} | 1.00 | 1.00 | 1.00 | |"
    t, c, s = seconds / base["seconds"], dist["content"] / base["content"], dist["style"] / base["style"]
    ok = "yes" if t <= TARGET_TIME and c <= 1 and s <= 1 else "no"
    cells = f"{seconds:.1f} | {dist['content']:.3f} | {dist['style']:.4f} | {t:.2f} | {c:.2f} | {s:.2f}"
    return f"| {label} | {cells} | {ok} |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=5, help="how many content x style pairs (default 5)")
    p.add_argument("--size", type=int, default=448, help="output long edge and gatys_eval --size (default 448)")
    p.add_argument("--rounds", type=int, default=1, help="runs of each command, alternated (default 1)")
    p.add_argument("--fast-steps", nargs="+", default=["default"], help="--steps values of the fast runs")
    p.add_argument("--fast-scales", nargs="+", default=["default"], help="--scales values of the fast runs")
    p.add_argument("--fast-content-weight", nargs="+", default=["default"], help="--content-weight values")
    p.add_argument("--fast-args", default="", help="more options for every fast run")
    p.add_argument("--default-args", default="", help="options for the default run (e.g. '--steps 4' to smoke-test)")
    p.add_argument("--shared", help="the shared folder (default: ../shared beside the repository)")
    p.add_argument("--keep", help="keep the pictures in this folder")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--reuse-default", metavar="JSON", help="take the default run's seconds and scores from an earlier "
                   "--json of the same size instead of painting it again (saves ~2.5 min a pair; not alternated)")
    args = p.parse_args()
    shared = shared_folder(args.shared)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_fast_"))
    folder.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    print(f"# bench_fast: {args.size} px, {args.rounds} round(s), default args '{args.default_args}'\n")
    for content_name, style_name in PAIRS[: args.pairs]:
        content, style = shared / "images" / "content" / content_name, shared / "images" / "style" / style_name
        stem = f"{content.stem}+{style.stem}"
        log(f"{stem}: feed-forward picture")
        ff_out = folder / f"{stem}_feedforward.png"
        ff_seconds = feed_forward(content, style, ff_out, args.size)
        runs: dict[str, dict[str, Any]] = {}
        commands = [("default", args.default_args.split()), *sweep(args)]
        if args.reuse_default:
            earlier = json.loads(Path(args.reuse_default).read_text())
            found = next(r["runs"]["default"] for r in earlier["pairs"]
                         if (r["content"], r["style"]) == (content.name, style.name))
            runs["default"] = {"times": found["seconds"], "content": found["content"], "style": found["style"]}
            commands = commands[1:]
        for round_ in range(args.rounds):
            for label, options in commands if round_ % 2 == 0 else list(reversed(commands)):
                out = folder / f"{stem}_{label.replace(' ', '_').replace('=', '')}.png"
                log(f"{stem}: {label} (round {round_ + 1})")
                seconds = paint(content, style, out, args.size, options)
                runs.setdefault(label, {"times": [], "out": out})["times"].append(seconds)
        for run in runs.values():
            if "out" in run:
                run.update(score(shared, run["out"], content, style, args.size))
            run["seconds"] = statistics.median(run["times"])
        base = runs["default"]
        ff = score(shared, ff_out, content, style, args.size)
        print(f"## {content.name} + {style.name}\n")
        print("| run | wall s | content | style | time ratio | content ratio | style ratio | target |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        print(row("default", base["seconds"], base, None))
        for label, run in runs.items():
            if label != "default":
                print(row(label, run["seconds"], run, base))
        print(f"| fast start's picture alone | {ff_seconds:.1f} | {ff['content']:.3f} | {ff['style']:.4f} | | | | |\n")
        results.append({"content": content.name, "style": style.name, "feed_forward": {**ff, "seconds": ff_seconds},
                        "runs": {k: {"seconds": v["times"], "content": v["content"], "style": v["style"]}
                                 for k, v in runs.items()}})
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "rounds": args.rounds, "pairs": results}, indent=1))
    log(f"pictures in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Style losses side by side (issue 25): the tutorial baseline, ArtiStyle with each ``--style-loss``,
``--init fast`` and the feed-forward network alone, scored by the quality panel on many content/style pairs.

Usage (from the repository root; needs ``../shared`` and the fast extra; a long run: an idle machine)::

    PYTHONPATH=src python benchmarks/bench_styles.py --out bench_styles --gallery docs/gallery_styles.md
    PYTHONPATH=src python benchmarks/bench_styles.py --out bench_styles --gallery docs/gallery_styles.md \\
        --arms tutorial gram meanstd w2 sw fast feedforward feedforward-colour pastiche     # pastiche too
    PYTHONPATH=src python benchmarks/bench_styles.py --pairs 1 --size 64 --steps 4 --fast-steps 2 \\
        --baseline-steps 3 --arms gram tutorial --out /tmp/bench_styles                    # a smoke test

Method:

* **Pairs.** ``--pairs N`` (default 18) of the 6 x 6 shared photos x paintings, always the same ones: pair
  ``k`` is photo ``k mod 6`` with painting ``(k + k div 6) mod 6`` (:func:`choose_pairs`), so 6 pairs use
  every painting once, 18 use every photo and every painting three times, and no pair repeats. The
  photos alternate square (astronaut, cameraman) and landscape (the other four; none is portrait).
* **Arms**, all at the same long edge ``--size`` (default 160 px, for a 2-core CPU) on the CPU, seed 0:

  - ``tutorial``: ``../shared/bench/baseline_tutorial.py --freeze-weights --steps 300`` (the PyTorch
    tutorial's Gatys, starting from the photo; frozen weights, as the current tutorial has them). It
    squashes both images to a ``size`` x ``size`` square; its output is resized back to the photo's aspect
    at the same long edge (Lanczos) before it is scored or shown. Its time is its optimisation alone
    (``opt_total_s``: neither its weight loading nor its targets; ArtiStyle's times include its targets).
  - ``gram``, ``meanstd``, ``w2``, ``sw``: ``NST(size=, style_loss=, seed=0).paint(photo, painting)``,
    the library's defaults otherwise (the paper's noise start, 300 iterations: one scale at 160 px; coarse
    to fine from about 300 px), in this process. Time: wall clock from ``paint()`` to the last iteration
    (VGG-19 is loaded once before, as in a studio or a batch).
  - ``gram-heavier`` (optional, a control): ``gram`` with 1.5 times the default style weight, about what
    ``meanstd``'s added terms add for a feature-scale error: whatever ``meanstd`` gains over ``gram`` that
    this arm gains too is the weight's doing, not the loss's.
  - ``fast``: the same with ``init="fast"`` (the fast schedule: 40 + 32 iterations over two scales at 2.5x
    the content weight; the Gram loss).
  - ``feedforward``: the Magenta network's picture alone (``fast_style().stylize``, no optimisation);
    ``feedforward-colour``: the fast start itself, that picture with the painting's colour mean and
    covariance (``fast_start``: what ``fast`` starts from). Time: wall clock, the ONNX sessions loaded before.
  - ``pastiche`` (optional, not in the default arms): ``python -m pastiche --size S --num-steps 300
    --seed 0`` (its Gatys, from the photo), timed by wall clock of the whole process (imports and its
    weight loading included: an upper bound).

* **Scores.** Every picture (8-bit PNG) is scored by ``artistyle.quality.score_images`` at its own size,
  VGG-19 loaded once. Per arm: the median of each metric over the pairs, and the *wins*: on how many pairs
  that arm is the best of the arms run on that metric (a tie counts for each). Beside each metric the
  table says which arms optimise it (the panel's ``optimised_by``, and for the tutorial, ``fast`` and
  pastiche their Gram loss): ``*`` marks such a cell, ``†`` a picture painted by the network conditioned
  on the Magenta style vector the Magenta metric compares, so that no number is read as independent
  evidence for the arm that was trained to lower it.
* **Equal wall time.** The budget on each pair is the ``gram`` arm's time there. While an in-process arm
  runs, the picture it had at that budget is kept (the last image before the clock passed it; the final one
  if it ended sooner). The tutorial, when slower than the budget, is run again with ``--exact --steps K``,
  ``K`` the evaluations its first run made within the budget. The gallery shows these pictures (pastiche
  and the feed-forward arms: their final ones, with their times), and a second table scores them.
* **Fast start against the default** (issue 25, item 8): per pair the ``fast`` arm's time, conv4_2 content
  distance and Gram style distance over the ``gram`` arm's, whether it is closer on both, and for every
  metric on how many pairs ``fast`` is better.

Resumable: ``--out DIR`` keeps every picture and ``results.json`` (every number, written after each arm);
a run over the same folder skips what is there (a changed ``--size``/``--steps`` needs another folder).
``--shard I/N`` runs only pairs ``k`` with ``k mod N = I - 1`` and keeps its numbers in
``results.shard-I-of-N.json``, so that N processes (each ``--threads 1`` on an N-core machine: small pictures
use a second thread poorly) can share one ``--out``; a later run without ``--shard`` merges those files and
finds every pair done. Every arm of a pair runs in the same process, so the equal-time budget stays fair.
The report (Markdown) goes to stdout and ``DIR/report.md``; progress to stderr. ``--gallery PATH`` writes
a Markdown page with small JPEGs in ``images/<its stem>/`` beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, import_artistyle, log, tail

CONTENTS = ("astronaut.jpg", "tubingen.jpg", "cameraman_gray.png", "chelsea_cat.jpg", "coffee.jpg",
            "montserrat_landscape.jpg")
STYLES = ("starry_night.jpg", "great_wave.jpg", "the_scream.jpg", "composition_vii.jpg", "water_lilies.jpg",
          "shipwreck.jpg")
RESULTS = "results.json"
HEAVIER = 1.5  # the control arm's style weight over the default: meanstd's two added terms weigh, for a feature
# scale error, half of what its Gram term does (style_terms), so about 1.5 times the Gram weight in all
SOURCES_NOTE = (  # the shared images' licences (../shared/images/SOURCES.md), for a page that shows them
    "The photos and paintings are ../shared/images (sources and licences in its SOURCES.md): the paintings are in "
    "the public domain; the photos are public domain or CC0 except *Neckarfront in Tübingen* by Andreas Praefcke, "
    "CC BY 3.0, via Wikimedia Commons, of which its thumbnail and the pictures painted from it here are "
    "adaptations (resized; painted).")
GALLERY_EDGE = 256  # gallery JPEGs: at most this long edge, a few KB each
NETWORK_MARK = "†"
OPTIMISED_MARK = "*"


@dataclass(frozen=True)
class Arm:
    """One way of making a picture: ``label`` for tables, ``loss``: the style loss it optimises (a panel ARMS
    name, or None), ``network``: painted by the Magenta network (conditioned on the Magenta style vector)."""

    name: str
    label: str
    loss: str | None
    network: bool = False
    in_process: bool = True  # an optimisation whose picture at the budget is kept while it runs


ARMS: dict[str, Arm] = {arm.name: arm for arm in (
    Arm("tutorial", "tutorial baseline", "gram", in_process=False),
    Arm("gram", "gram (default)", "gram"),
    Arm("gram-heavier", "gram, style weight x1.5", "gram"),
    Arm("meanstd", "meanstd", "meanstd"),
    Arm("w2", "w2", "w2"),
    Arm("sw", "sw", "sw"),
    Arm("fast", "--init fast", "gram", network=True),
    Arm("feedforward", "network alone", None, network=True, in_process=False),
    Arm("feedforward-colour", "network + colour", None, network=True, in_process=False),
    Arm("pastiche", "pastiche", "gram", in_process=False),
)}
DEFAULT_ARMS = ("tutorial", "gram", "meanstd", "w2", "sw", "fast", "feedforward", "feedforward-colour")


def choose_pairs(count: int) -> list[tuple[str, str]]:
    """The first ``count`` pairs (photo, painting) of the fixed order (module docstring): never a pair twice."""
    if not 1 <= count <= len(CONTENTS) * len(STYLES):
        raise SystemExit(f"bench_styles: --pairs must be 1..{len(CONTENTS) * len(STYLES)}")
    return [(CONTENTS[k % len(CONTENTS)], STYLES[(k + k // len(CONTENTS)) % len(STYLES)]) for k in range(count)]


def pair_key(content: str, style: str) -> str:
    return f"{Path(content).stem}__{Path(style).stem}"


# -- the arms ---------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The picture an arm had at the budget: ``seconds`` and ``iteration`` when it was taken."""

    image: Any  # (1, 3, H, W) tensor
    seconds: float
    iteration: int


def paint_library(settings: dict[str, Any], content: Path, style: Path, budget: float | None
                  ) -> tuple[Any, float, int, Snapshot | None]:
    """Paint with ``NST(**settings)``; returns (painting, seconds, iterations, the picture at ``budget``)."""
    from artistyle import NST

    nst = NST(**settings)
    started = time.perf_counter()
    painting = nst.paint(content, style)
    snapshot: Snapshot | None = None
    if budget is not None:
        # the start (made now rather than at the first iteration, the same work): what an arm whose targets take
        # longer than the budget shows at it
        snapshot = Snapshot(painting.start_image(), time.perf_counter() - started, 0)
    iteration = 0
    for event in painting:
        iteration = event.iteration
        now = time.perf_counter() - started
        if budget is not None and now <= budget:
            # the last image before the clock passes the budget; a copy, as the optimiser goes on in place
            snapshot = Snapshot(painting.image.clone(), now, iteration)
    seconds = time.perf_counter() - started
    return painting, seconds, iteration, snapshot


def save_tensor(image: Any, path: Path) -> None:
    from artistyle.images import save_image, tensor_to_array

    save_image(tensor_to_array(image), path)


def feed_forward(content: Path, style: Path, size: int, with_colour: bool, out: Path) -> float:
    """The Magenta network's picture at the output size (``with_colour``: given the painting's colour moments,
    as ``fast_start`` does); returns its wall seconds."""
    import torch

    from artistyle import NST
    from artistyle.fast import fast_start, fast_style

    started = time.perf_counter()
    nst = NST(size=size, device="cpu", seed=0)
    inputs = nst.load_images(content, style)
    if with_colour:
        picture = fast_start(inputs.styles, inputs.content, [1.0], torch.device("cpu"))
    else:
        styler = fast_style("cpu")
        _, _, h, w = inputs.content.shape
        painted = styler.stylize(inputs.content, styler.style_vector(inputs.styles[0]), (int(h), int(w)))
        picture = torch.from_numpy(painted).permute(2, 0, 1)[None]
    seconds = time.perf_counter() - started
    save_tensor(picture, out)
    return seconds


def content_shape(content: Path, size: int) -> tuple[int, int]:
    """(width, height) of the content at long edge ``size``, as the engine sizes it."""
    from artistyle.images import open_image, resized_shape

    with open_image(content) as image:
        return resized_shape(image.size[0], image.size[1], size)


def unsquash(square: Path, out: Path, shape: tuple[int, int]) -> None:
    """The tutorial's square picture at the photo's (width, height) again (Lanczos), as a PNG."""
    from PIL import Image

    with Image.open(square) as image:
        image.convert("RGB").resize(shape, Image.Resampling.LANCZOS).save(out)


def run_tutorial(args: argparse.Namespace, content: Path, style: Path, folder: Path, name: str,
                 steps: int, exact: bool) -> dict[str, Any]:
    """One baseline run in its own process; returns its JSON (``opt_total_s``, ``evals``, ...)."""
    square, record = folder / f"{name}_square.png", folder / f"{name}_baseline.json"
    command = [sys.executable, str(args.shared / "bench" / "baseline_tutorial.py"), "--freeze-weights",
               "--size", str(args.size), "--steps", str(steps), "--content", str(content), "--style", str(style),
               "--out", str(square), "--json", str(record), "--print-every", "0", "--seed", str(args.seed),
               *(["--exact"] if exact else []), *(["--threads", str(args.threads)] if args.threads else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"baseline failed ({done.returncode}): {shlex.join(command)}\n{tail(done.stderr)}")
    result: dict[str, Any] = json.loads(record.read_text())
    unsquash(square, folder / f"{name}.png", content_shape(content, args.size))
    square.unlink()
    record.unlink()
    return result


def run_pastiche(args: argparse.Namespace, content: Path, style: Path, out: Path) -> float:
    command = [sys.executable, "-m", "pastiche", "--device", "cpu", "--size", str(args.size), "--num-steps",
               str(args.baseline_steps), "--seed", str(args.seed), "--no-verbose", "--content", str(content),
               "--styles", str(style), "--output", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pastiche failed ({done.returncode}): {shlex.join(command)}\n{tail(done.stderr)}")
    return seconds


def library_settings(args: argparse.Namespace, arm: str) -> dict[str, Any]:
    """The ``NST`` settings of an in-process arm: only what the user of the CLI would give."""
    settings: dict[str, Any] = {"size": args.size, "device": "cpu", "seed": args.seed}
    if arm == "fast":
        settings["init"] = "fast"
        if args.fast_steps:
            settings["steps"] = args.fast_steps
    elif arm == "gram-heavier":  # a control: is meanstd more than Gram with more style weight?
        from artistyle.config import StyleConfig

        settings["style_weight"] = HEAVIER * StyleConfig().style_weight
        if args.steps:
            settings["steps"] = args.steps
    else:
        settings["style_loss"] = arm
        if args.steps:
            settings["steps"] = args.steps
    return settings


def run_arm(args: argparse.Namespace, arm: str, content: Path, style: Path, folder: Path,
            budget: float | None) -> dict[str, Any]:
    """Make ``arm``'s picture(s) in ``folder``; returns its entry (seconds, picture, the budget's picture)."""
    out = folder / f"{arm}.png"
    entry: dict[str, Any] = {"picture": out.name}
    if ARMS[arm].in_process:
        painting, seconds, iterations, snapshot = paint_library(library_settings(args, arm), content, style, budget)
        painting.save(out)
        entry.update(seconds=seconds, iterations=iterations)
        if snapshot is not None and snapshot.iteration < iterations:
            save_tensor(snapshot.image, folder / f"{arm}@budget.png")
            entry["budget"] = {"picture": f"{arm}@budget.png", "seconds": snapshot.seconds,
                               "iteration": snapshot.iteration}
    elif arm == "tutorial":
        result = run_tutorial(args, content, style, folder, arm, args.baseline_steps, exact=False)
        entry.update(seconds=result["opt_total_s"], iterations=result["evals"], setup_s=result["setup_s"])
    elif arm == "pastiche":
        entry.update(seconds=run_pastiche(args, content, style, out), iterations=args.baseline_steps)
    else:
        entry["seconds"] = feed_forward(content, style, args.size, arm == "feedforward-colour", out)
    return entry


def tutorial_at_budget(args: argparse.Namespace, entry: dict[str, Any], content: Path, style: Path,
                       folder: Path, budget: float) -> None:
    """Run the tutorial again for as many evaluations as its first run made within ``budget``."""
    if entry["seconds"] <= budget or "budget" in entry:
        return
    evaluations = max(1, math.floor(budget / (entry["seconds"] / entry["iterations"])))
    result = run_tutorial(args, content, style, folder, "tutorial@budget", evaluations, exact=True)
    entry["budget"] = {"picture": "tutorial@budget.png", "seconds": result["opt_total_s"],
                       "iteration": result["evals"]}


# -- scoring ----------------------------------------------------------------------------------------------


def scorer() -> Callable[[Path, Path, Path], dict[str, float]]:
    """``score(picture, content, style) -> {metric: value}`` with VGG-19 loaded once."""
    from artistyle.quality import score_images
    from artistyle.weights import load_weights

    weights = load_weights()

    def score(picture: Path, content: Path, style: Path) -> dict[str, float]:
        panel = score_images(picture, content, style, device="cpu", weights=weights)
        for line in panel.skipped:
            log(f"  panel: {line}")
        return panel.values()

    return score


# -- the run ----------------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants I/N, such as 1/2, not {text!r}") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {text}: I must be 1..N")
    return index, count


def results_name(shard: tuple[int, int] | None) -> str:
    return RESULTS if shard is None else f"results.shard-{shard[0]}-of-{shard[1]}.json"


def load_results(folder: Path, settings: dict[str, Any], shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """This run's results file; a run without ``--shard`` adds the arms of the shards' files that it lacks (an
    arm it has itself wins). A shard reads only its own file: the others are still being written."""
    keys = ("size", "steps", "fast_steps", "baseline_steps", "seed")
    own = folder / results_name(shard)
    others = [] if shard is not None else sorted(folder.glob("results.shard-*.json"))
    results: dict[str, Any] = {"settings": dict(settings), "pairs": {}}
    for path in [own, *others]:
        if not path.is_file():
            continue
        found: dict[str, Any] = json.loads(path.read_text())
        earlier = {k: found["settings"].get(k) for k in keys}
        now = {k: settings[k] for k in keys}
        if earlier != now:
            raise SystemExit(f"bench_styles: {path} was made with {earlier}, not {now}: use another --out")
        for key, record in found["pairs"].items():
            mine = results["pairs"].setdefault(key, {**record, "arms": {}})
            for arm, entry in record["arms"].items():
                mine["arms"].setdefault(arm, entry)
    return results


def save_results(folder: Path, results: dict[str, Any], shard: tuple[int, int] | None = None) -> None:
    """Atomically, so that a run killed mid-write leaves the previous file."""
    path = folder / results_name(shard)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as handle:
        json.dump(results, handle, indent=1)
    os.replace(handle.name, path)


def arm_order(arms: Sequence[str]) -> list[str]:
    """``gram`` first: its time is the pair's budget for the others' pictures at equal wall time."""
    return sorted(arms, key=lambda arm: arm != "gram")


def run_pair(args: argparse.Namespace, results: dict[str, Any], content: Path, style: Path,
             score: Callable[[Path, Path, Path], dict[str, float]]) -> None:
    key = pair_key(content.name, style.name)
    folder = args.out / key
    folder.mkdir(parents=True, exist_ok=True)
    record = results["pairs"].setdefault(key, {"content": content.name, "style": style.name, "arms": {}})
    arms = record["arms"]
    for arm in arm_order(args.arms):
        entry = arms.get(arm)
        if entry is not None and (folder / entry["picture"]).is_file() and "panel" in entry:
            continue  # made by an earlier run over this folder
        budget = arms["gram"]["seconds"] if "gram" in arms else None
        log(f"{key}: {arm}")
        try:
            entry = run_arm(args, arm, content, style, folder, budget)
        except (RuntimeError, OSError) as exc:
            log(f"{key}: {arm} failed: {exc}")
            continue
        entry["panel"] = score(folder / entry["picture"], content, style)
        arms[arm] = entry
        save_results(args.out, results, args.shard)
    if "gram" in arms:
        record["budget_s"] = arms["gram"]["seconds"]
        if "tutorial" in arms and "budget" not in arms["tutorial"]:
            tutorial_at_budget(args, arms["tutorial"], content, style, folder, record["budget_s"])
    for entry in arms.values():
        at_budget = entry.get("budget")
        if at_budget is not None and "panel" not in at_budget:
            at_budget["panel"] = score(folder / at_budget["picture"], content, style)
    save_results(args.out, results, args.shard)


# -- the report -------------------------------------------------------------------------------------------


def metric_names(results: dict[str, Any]) -> list[str]:
    from artistyle.quality import METRICS

    seen = {name for record in results["pairs"].values() for entry in record["arms"].values()
            for name in entry.get("panel", {})}
    return [name for name in METRICS if name in seen]


def pictures(record: dict[str, Any], at_budget: bool) -> dict[str, dict[str, Any]]:
    """Each arm's final entry, or (``at_budget``) its picture at the budget where it has one."""
    arms: dict[str, dict[str, Any]] = record["arms"]
    if not at_budget:
        return arms
    return {arm: entry.get("budget") or entry for arm, entry in arms.items()}


def wins_and_medians(results: dict[str, Any], arms: Sequence[str], metric: str, at_budget: bool
                     ) -> tuple[dict[str, float], dict[str, int]]:
    from artistyle.quality import METRICS

    lower = METRICS[metric].better == "lower"
    values: dict[str, list[float]] = {arm: [] for arm in arms}
    wins = dict.fromkeys(arms, 0)
    for record in results["pairs"].values():
        scored = {arm: entry["panel"][metric] for arm, entry in pictures(record, at_budget).items()
                  if arm in arms and metric in entry.get("panel", {})}
        for arm, value in scored.items():
            values[arm].append(value)
        if len(scored) > 1:
            best = (min if lower else max)(scored.values())
            for arm, value in scored.items():
                wins[arm] += value == best
    medians = {arm: statistics.median(v) if v else math.nan for arm, v in values.items()}
    return medians, wins


def optimised_by(arm: str, metric: str) -> str:
    """The mark of a cell whose number the arm was trained to lower (or painted from)."""
    from artistyle.quality import METRICS

    spec = ARMS[arm]
    if spec.loss is not None and spec.loss in METRICS[metric].optimised_by:
        return OPTIMISED_MARK
    if spec.network and metric == "style.magenta":
        return NETWORK_MARK
    return ""


def comparison_table(results: dict[str, Any], arms: Sequence[str], at_budget: bool) -> list[str]:
    from artistyle.quality import METRICS

    lines = ["| metric | better | optimised by | " + " | ".join(ARMS[a].label for a in arms) + " |",
             "| --- | --- | --- | " + " | ".join("---:" for _ in arms) + " |"]
    seconds: dict[str, list[float]] = {arm: [] for arm in arms}
    for record in results["pairs"].values():
        for arm, entry in pictures(record, at_budget).items():
            if arm in seconds:
                seconds[arm].append(entry["seconds"])
    lines.append("| wall s (median) | lower | | " + " | ".join(
        f"{statistics.median(seconds[a]):.1f}" if seconds[a] else "-" for a in arms) + " |")
    for metric in metric_names(results):
        medians, wins = wins_and_medians(results, arms, metric, at_budget)
        described = METRICS[metric]
        extra = [a for a in arms if ARMS[a].loss is not None and ARMS[a].loss in described.optimised_by
                 and a not in described.optimised_by]
        who = described.optimised_note + (f"; here also {', '.join(extra)}" if extra else "")
        cells = [f"{medians[a]:.4g} ({wins[a]}){optimised_by(a, metric)}" if not math.isnan(medians[a]) else "-"
                 for a in arms]
        lines.append(f"| {described.label} | {described.better} | {who} | " + " | ".join(cells) + " |")
    return lines


def fast_table(results: dict[str, Any]) -> list[str]:
    """Issue 25 item 8: the fast start against the default (gram, noise start), pair by pair."""
    from artistyle.quality import METRICS

    rows = [(key, r["arms"]["fast"], r["arms"]["gram"]) for key, r in results["pairs"].items()
            if "fast" in r["arms"] and "gram" in r["arms"]]
    if not rows:
        return []
    lines = ["| pair | time ratio | conv4_2 ratio | Gram ratio | closer to both |",
             "| --- | ---: | ---: | ---: | --- |"]
    both = 0
    for key, fast, gram in rows:
        t = fast["seconds"] / gram["seconds"]
        c = fast["panel"]["content.conv4_2"] / gram["panel"]["content.conv4_2"]
        s = fast["panel"]["style.gram"] / gram["panel"]["style.gram"]
        closer = c < 1 and s < 1
        both += closer
        lines.append(f"| {key.replace('__', ' + ')} | {t:.2f} | {c:.2f} | {s:.2f} | {'yes' if closer else 'no'} |")
    lines += ["", f"Closer to both the photo (conv4_2) and the painting (Gram) than the default on {both} of "
              f"{len(rows)} pairs.", "", "| metric | better | fast better on | median ratio fast / default |",
              "| --- | --- | ---: | ---: |"]
    for metric in metric_names(results):
        described = METRICS[metric]
        pairs = [(f["panel"][metric], g["panel"][metric]) for _, f, g in rows
                 if metric in f["panel"] and metric in g["panel"]]
        better = sum((f < g) if described.better == "lower" else (f > g) for f, g in pairs)
        ratio = statistics.median(f / g for f, g in pairs if g) if pairs else math.nan
        lines.append(f"| {described.label} | {described.better} | {better} of {len(pairs)} | {ratio:.2f} |")
    return lines


def report(args: argparse.Namespace, results: dict[str, Any], command: str) -> str:
    import torch

    from artistyle import __version__

    arms = [a for a in args.arms if any(a in r["arms"] for r in results["pairs"].values())]
    done = len(results["pairs"])
    settings = results["settings"]
    lines = [
        "# Style losses compared (issue 25)", "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Command: `{command}`",
        f"- {done} pairs at {settings['size']} px on the CPU ({os.cpu_count()} CPUs, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, artistyle {__version__}, {platform.processor() or platform.machine()}); "
        f"ArtiStyle steps {settings['steps'] or 'default'}, fast steps {settings['fast_steps'] or 'default'}, "
        f"tutorial steps {settings['baseline_steps']}",
        f"- Pairs: {', '.join(k.replace('__', ' + ') for k in results['pairs'])}", "",
        f"Each cell: the median over the pairs (in brackets: on how many pairs the arm is the best of these). "
        f"`{OPTIMISED_MARK}`: this arm's loss lowers this very number; `{NETWORK_MARK}`: painted by the network "
        "conditioned on the Magenta style vector. Neither is independent evidence for that arm.", "",
        "## Final pictures", "", *comparison_table(results, arms, at_budget=False), "",
        "## At equal wall time (each pair's gram time; an arm that ended sooner: its final picture)", "",
        *comparison_table(results, arms, at_budget=True), "",
    ]
    fast = fast_table(results)
    if fast:
        lines += ["## The fast start against the default (item 8)", "", *fast, ""]
    return "\n".join(lines)


# -- the gallery ------------------------------------------------------------------------------------------


def thumbnail(source: Path, target: Path, edge: int) -> None:
    """A small JPEG of ``source`` (long edge at most ``edge``)."""
    from PIL import Image

    with Image.open(source) as image:
        picture = image.convert("RGB")
        picture.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        picture.save(target, "JPEG", quality=85, optimize=True)


def write_gallery(args: argparse.Namespace, results: dict[str, Any], command: str) -> None:
    """A Markdown page with each pair's pictures at equal wall time, as small JPEGs beside it."""
    page: Path = args.gallery
    folder = f"images/{page.stem}"  # one folder per page, so that a second page (another size) keeps its own
    images = page.parent / folder
    edge = min(GALLERY_EDGE, args.size)
    arms = [a for a in args.arms if any(a in r["arms"] for r in results["pairs"].values())]
    lines = [
        "# Style losses side by side (issue 25)", "",
        f"Made by `{command}` ({len(results['pairs'])} pairs at {results['settings']['size']} px; the numbers "
        "are in docs/benchmarks.md, \"Style losses compared\"). Each picture is what the arm had at the `gram` "
        "arm's wall time on that pair (the last image before the clock passed it), or its final picture if it "
        "ended sooner; under it, the seconds it had run and, where it was cut, its iteration. The tutorial "
        "squashes the photo to a square; its picture is resized back to the photo's shape.", "",
        SOURCES_NOTE, "",
        "| photo | painting | " + " | ".join(ARMS[a].label for a in arms) + " |",
        "| --- | --- | " + " | ".join("---" for _ in arms) + " |",
    ]
    for key, record in results["pairs"].items():
        content = args.shared / "images" / "content" / record["content"]
        style = args.shared / "images" / "style" / record["style"]
        cells = []
        for name, source in ((Path(record["content"]).stem, content), (Path(record["style"]).stem, style)):
            thumbnail(source, images / f"{name}.jpg", edge)
            cells.append(f"![{name}]({folder}/{name}.jpg)")
        for arm in arms:
            entry = record["arms"].get(arm)
            if entry is None:
                cells.append("-")
                continue
            shown = entry.get("budget") or entry
            thumbnail(args.out / key / shown["picture"], images / f"{key}__{arm}.jpg", edge)
            caption = f"{shown['seconds']:.0f} s" + (f", it. {shown['iteration']}" if "budget" in entry else "")
            cells.append(f"![{arm}]({folder}/{key}__{arm}.jpg)<br>{caption}")
        lines.append("| " + " | ".join(cells) + " |")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(lines) + "\n")
    log(f"gallery: {page} ({sum(f.stat().st_size for f in images.iterdir()) / 1e6:.2f} MB of pictures)")


# -- main -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=160, help="long edge of every arm's picture (default 160)")
    p.add_argument("--pairs", type=int, default=18, help="how many photo x painting pairs (default 18)")
    p.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=list(ARMS),
                   help=f"which arms (default: {' '.join(DEFAULT_ARMS)})")
    p.add_argument("--out", type=Path, default=Path("bench_styles"), help="pictures and results.json (resumable)")
    p.add_argument("--gallery", type=Path, help="write a gallery page here (pictures: images/<its stem>/ beside it)")
    p.add_argument("--steps", type=int, help="iterations of the style-loss arms (default: ArtiStyle's, 300)")
    p.add_argument("--fast-steps", type=int, help="iterations of --init fast (default: its fast schedule)")
    p.add_argument("--baseline-steps", type=int, default=300, help="tutorial (and pastiche) steps (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads here and in the baseline (default: torch's)")
    p.add_argument("--shared", type=Path, default=SHARED, help="the shared folder (default: ../shared)")
    p.add_argument("--shard", type=parse_shard, metavar="I/N",
                   help="only pairs k with k mod N = I-1, in results.shard-I-of-N.json (parallel runs; no report)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.arms = list(dict.fromkeys(args.arms))
    command = "PYTHONPATH=src python benchmarks/bench_styles.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if "tutorial" in args.arms and not (args.shared / "bench" / "baseline_tutorial.py").is_file():
        raise SystemExit(f"bench_styles: no {args.shared}/bench/baseline_tutorial.py; give --shared or leave out "
                         "the tutorial arm")
    pairs = [(args.shared / "images" / "content" / c, args.shared / "images" / "style" / s)
             for c, s in choose_pairs(args.pairs)]
    if args.shard is not None:
        index, count = args.shard
        pairs = pairs[index - 1::count]
    for path in (p for pair in pairs for p in pair):
        if not path.is_file():
            raise SystemExit(f"bench_styles: no {path}")
    import_artistyle()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if any(ARMS[a].network for a in args.arms):
        from artistyle.fast import fast_style

        fast_style("cpu")  # the ONNX sessions once, before any clock starts
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {"size": args.size, "steps": args.steps, "fast_steps": args.fast_steps,
                "baseline_steps": args.baseline_steps, "seed": args.seed, "command": command}
    results = load_results(args.out, settings, args.shard)
    score = scorer()
    started = time.perf_counter()
    for k, (content, style) in enumerate(pairs):
        log(f"pair {k + 1}/{len(pairs)} ({time.perf_counter() - started:.0f} s so far)")
        run_pair(args, results, content, style, score)
    if args.shard is not None:
        log(f"shard {args.shard[0]}/{args.shard[1]} done in {time.perf_counter() - started:.0f} s; "
            "run again without --shard for the report")
        return 0
    # only the pairs asked for this time, in their order (an earlier, larger run's extra pairs stay in the JSON)
    keys = [pair_key(c.name, s.name) for c, s in pairs]
    shown = {**results, "pairs": {k: results["pairs"][k] for k in keys}}
    text = report(args, shown, command)
    print(text)
    (args.out / "report.md").write_text(text + "\n")
    if args.gallery:
        write_gallery(args, shown, command)
    log(f"done in {time.perf_counter() - started:.0f} s; pictures and {RESULTS} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

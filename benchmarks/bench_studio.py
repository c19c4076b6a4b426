#!/usr/bin/env python3
"""The studio's fast start (issue 15): time from Start to the first preview and to the result, noise vs fast.

Usage (from the repository root; needs the web and fast extras; run the measurement on an idle machine)::

    PYTHONPATH=src python benchmarks/bench_studio.py                    # tubingen + starry_night, 448 px, 3 rounds
    PYTHONPATH=src python benchmarks/bench_studio.py --cold             # a fresh studio for every run
    PYTHONPATH=src python benchmarks/bench_studio.py --size 96 --rounds 1   # a smoke test of the script

It starts a real studio (``python -m artistyle web --port 0 --device DEVICE``, a subprocess, as a user
does), uploads the content and style (``SHARED/images``: tubingen + starry_night; the bundled
chelsea_cat + starry_night without ``../shared``) and submits, alternately and ``--rounds`` times, the
page's two choices with Steps left empty, exactly what the page sends:

* ``noise``: ``{"size": SIZE, "seed": 0, "init": "noise"}``, the default schedule (300 + 150 + 75 at 448 px);
* ``fast``: ``{"size": SIZE, "seed": 0, "init": "fast"}``, the fast schedule (40 + 32 iterations over two scales).

Each job is followed through its event stream (``/api/jobs/ID/events``, which the server sends at most
every 0.1 s): the time from the POST to the first event with a preview (and at which iteration it came:
0 is the fast start's feed-forward picture, before any iteration), and to the result. Before the runs a
tiny fast job loads VGG-19 and the feed-forward models, so the table shows a warm studio (the first Start
after ``artistyle web`` pays that load once; ``--cold`` measures it, with a fresh studio per run).
Prints a Markdown table (medians over the rounds) on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, SAMPLES, SHARED_IMAGES, log, tail

STARTS = ("noise", "fast")
HEADERS = {"X-ArtiStyle": "1"}


def images(shared: str | None) -> tuple[Path, Path]:
    """(content, style): tubingen + starry_night from the shared images, else the bundled samples."""
    for folder in ([Path(shared)] if shared else [SHARED_IMAGES, REPO.parent.parent / "shared" / "images"]):
        content, style = folder / "content" / "tubingen.jpg", folder / "style" / "starry_night.jpg"
        if content.is_file() and style.is_file():
            return content, style
    if shared:
        raise SystemExit(f"bench_studio: no content/tubingen.jpg and style/starry_night.jpg under {shared}")
    log("bench_studio: ../shared/images not found; using the bundled chelsea_cat + starry_night")
    return SAMPLES / "chelsea_cat.jpg", SAMPLES / "starry_night.jpg"


@contextmanager
def studio(device: str) -> Iterator[str]:
    """A real ``artistyle web`` on a free port; yields its address."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-m", "artistyle", "web", "--port", "0", "--device", device],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None and process.stderr is not None
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not url:
            raise SystemExit(f"bench_studio: the studio did not start: {line}{tail(process.stderr.read())}")
        yield url.group(0)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    sent = urllib.request.Request(url, data=data, headers={**HEADERS, **(headers or {})})
    with urllib.request.urlopen(sent, timeout=60) as response:
        return json.loads(response.read())


def upload(base: str, path: Path) -> str:
    info = request(base + "api/images", path.read_bytes(), {"X-Filename": path.name})
    return str(info["id"])


def run_job(base: str, content: str, style: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Submit a job and follow its events: seconds to the first preview (and its iteration) and to the result."""
    body = json.dumps({"content": content, "styles": [style], "settings": settings}).encode()
    started = time.perf_counter()
    job = request(base + "api/jobs", body, {"Content-Type": "application/json"})
    preview_s = preview_at = None
    state: dict[str, Any] = job
    with urllib.request.urlopen(f"{base}api/jobs/{job['id']}/events", timeout=3600) as events:
        for raw in events:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            state = json.loads(line[6:])
            if preview_s is None and state["preview"]:
                preview_s, preview_at = time.perf_counter() - started, state["iteration"]
            if state["status"] not in ("queued", "running", "cancelling"):
                break
    result_s = time.perf_counter() - started
    if state["status"] != "done":
        raise SystemExit(f"bench_studio: the {settings.get('init')} job ended {state['status']}: {state['error']}")
    return {"preview": preview_s, "preview_iteration": preview_at, "result": result_s,
            "iterations": state["iteration"], "schedule": state["schedule"], "sizes": state["sizes"],
            "server_seconds": state["seconds"]}


def warm_up(base: str, content: str, style: str) -> None:
    """A tiny fast job: VGG-19 and the feed-forward models loaded before the timed runs."""
    run_job(base, content, style, {"size": 64, "steps": 2, "seed": 0, "init": "fast"})


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=448, help="output long edge (default 448)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each start, alternated (default 3)")
    p.add_argument("--device", default="cpu", help="the studio's --device (default cpu)")
    p.add_argument("--cold", action="store_true", help="a fresh studio for every run, no warm-up")
    p.add_argument("--shared", help="the shared images folder (default: ../shared/images beside the repository)")
    p.add_argument("--json", help="also write the runs here")
    args = p.parse_args(argv)
    content_path, style_path = images(args.shared)
    runs: dict[str, list[dict[str, Any]]] = {start: [] for start in STARTS}
    order = [start for r in range(args.rounds) for start in (STARTS if r % 2 == 0 else STARTS[::-1])]

    def one(base: str, start: str, ids: tuple[str, str]) -> None:
        log(f"{start} (run {len(runs[start]) + 1} of {args.rounds})")
        runs[start].append(run_job(base, *ids, {"size": args.size, "seed": 0, "init": start}))

    if args.cold:
        for start in order:
            with studio(args.device) as base:
                one(base, start, (upload(base, content_path), upload(base, style_path)))
    else:
        with studio(args.device) as base:
            ids = (upload(base, content_path), upload(base, style_path))
            log("warming up (VGG-19 and the feed-forward models)")
            warm_up(base, *ids)
            for start in order:
                one(base, start, ids)

    print(f"# bench_studio: {content_path.name} + {style_path.name}, {args.size} px, {args.device}, "
          f"{'cold (a fresh studio per run)' if args.cold else 'warm studio'}, {args.rounds} round(s), "
          f"{os.cpu_count()} CPUs\n")
    print("| start | schedule | first preview s | at iteration | result s | time ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    base_result = median([r["result"] for r in runs["noise"]])
    for start in STARTS:
        first = runs[start][0]
        plan = " + ".join(map(str, first["schedule"])) + f" at {', '.join(map(str, first['sizes']))} px"
        result = median([r["result"] for r in runs[start]])
        ratio = f"{result / base_result:.2f}" if result and base_result else "-"
        print(f"| {start} | {plan} | {seconds(median([r['preview'] for r in runs[start]]))} | "
              f"{first['preview_iteration']} | {seconds(result)} | {ratio} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "device": args.device, "cold": args.cold,
                                               "content": content_path.name, "style": style_path.name,
                                               "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

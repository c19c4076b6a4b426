"""What the benchmark scripts share: paths, importing the library, the worker protocol, logging.

Each benchmark runs its measurements in subprocesses (so peak RSS and import costs are per run)
that print one ``BENCH_RESULT {json}`` line; :func:`emit` writes it and :func:`parse_result`
finds it again. The scripts run from a checkout (``PYTHONPATH=src`` or an installed package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src" / "artistyle" / "samples"
# The shared reference scripts and images live beside the repository, when present.
SHARED = REPO.parent / "shared"
BASELINE = SHARED / "bench" / "baseline_tutorial.py"
GATYS_EVAL = SHARED / "bench" / "gatys_eval.py"
SHARED_IMAGES = SHARED / "images"
MARK = "BENCH_RESULT "


def import_artistyle() -> ModuleType:
    """The installed ``artistyle``, or the checkout's ``src`` when it is not installed."""
    try:
        import artistyle
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
    import artistyle

    return artistyle


def log(message: str) -> None:
    """Progress goes to stderr; stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def tail(text: str | None, lines: int = 20) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result as the one line the driver looks for."""
    sys.stdout.flush()
    print(MARK + json.dumps(result), flush=True)


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The last ``BENCH_RESULT`` line of a worker's stdout, or None."""
    result = None
    for line in stdout.splitlines():
        if line.startswith(MARK):
            try:
                result = json.loads(line[len(MARK):])
            except json.JSONDecodeError:
                result = None
    return result


def command(*args: str) -> list[str]:
    """``python -m artistyle ARGS`` with this interpreter."""
    return [sys.executable, "-m", "artistyle", *args]


def timed(cmd: list[str]) -> float:
    """Run ``cmd`` from the repository root with its ``src`` first on the path; its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    return time.perf_counter() - started

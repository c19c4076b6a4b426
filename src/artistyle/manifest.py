"""The run manifest: a JSON record of everything needed to understand and repeat a run."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch

from .engine import Engine
from .errors import UsageError
from .files import atomic_write, same_file
from .painting import Painting
from .version import __version__

__all__ = ["manifest", "write_manifest"]


def manifest(engine: Engine, painting: Painting, summary: dict[str, Any]) -> dict[str, Any]:
    """Settings (with the seed actually used), versions, weights, device, scales and per-iteration losses."""
    return {
        "artistyle": __version__,
        "settings": {**engine.config.to_dict(), "seed": engine.seed, "size": engine.size},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
        },
        "weights": {"name": engine.weights.name, "sha256": engine.weights.sha256},
        "device": str(engine.device),
        "scales": [{"long_edge": s, "steps": n} for s, n in zip(painting.sizes, painting.schedule)],
        "result": summary,
        "iterations": painting.history,
    }


def write_manifest(
    path: Path, engine: Engine, painting: Painting, summary: dict[str, Any], *, protect: Iterable[str | Path] = ()
) -> Path:
    """Write :func:`manifest` as JSON to ``path``, atomically, never over an input file."""
    for item in protect:
        if same_file(Path(path), Path(item)):
            raise UsageError(f"the manifest {path} would overwrite the input file {item}")
    data = json.dumps(manifest(engine, painting, summary), indent=1).encode()
    atomic_write(Path(path), lambda fh: fh.write(data), f"manifest {path}")
    return Path(path)

"""Checkpoints: save a run every N iterations, and resume it after a crash or ``kill -9``.

A checkpoint holds the full config (with the seed actually used), the output
size, the SHA-256 of the content and style files, the scale and iteration, the
image, the optimiser's state and the RNG state. It is written atomically (a
temporary file, then a rename), so a kill at any moment leaves either the old
checkpoint or the new one, never half of one. On a CPU with a fixed seed a
resumed run ends with exactly the image an uninterrupted run makes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import StyleConfig
from .errors import UsageError
from .files import atomic_write, file_sha256
from .nst import NST
from .painting import Painting

__all__ = ["FORMAT", "Checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "artistyle-checkpoint"
# Versions whose checkpoints this one resumes bit for bit: 0.5.0 reorganised the code, not the
# state it saves or the numbers it computes.
COMPATIBLE_VERSIONS = ("0.4.0", __version__)


class Checkpoint(dict):  # type: ignore[type-arg]
    """The loaded checkpoint: a dict with a few typed accessors."""

    @property
    def config(self) -> StyleConfig:
        """The run's settings (validated), with the seed and output size it used."""
        return StyleConfig.from_mapping(self["config"])

    @property
    def inputs(self) -> dict[str, Any]:
        return dict(self["inputs"])


def save_checkpoint(path: str | Path, nst: NST, painting: Painting, inputs: dict[str, Any]) -> None:
    """Write the run's state to ``path`` atomically. ``inputs``: content/style/output paths and hashes."""
    state = {
        "format": FORMAT,
        "version": __version__,
        "config": {**nst.config.to_dict(), "seed": nst.seed, "size": nst.size},
        "inputs": inputs,
        "painting": painting.state_dict(),
        "rng": torch.get_rng_state(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    atomic_write(Path(path), lambda fh: fh.write(data), f"checkpoint {path}")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; :class:`UsageError` for a missing, foreign or other-version file."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"checkpoint '{file}' does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"'{file}' is not an ArtiStyle checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"'{file}' is not an ArtiStyle checkpoint")
    if state.get("version") not in COMPATIBLE_VERSIONS:
        raise UsageError(
            f"checkpoint '{file}' was written by ArtiStyle {state.get('version')}, this is {__version__}; "
            "it cannot be resumed"
        )
    return Checkpoint(state)


def check_inputs(checkpoint: Checkpoint, content: str | Path, styles: Sequence[str | Path], where: str) -> None:
    """Refuse to resume with content or style files other than the checkpoint's own."""
    saved = checkpoint.inputs
    if file_sha256(content) != saved["content_sha256"]:
        raise UsageError(f"content image '{content}' is not the one checkpoint '{where}' was made from")
    if len(styles) != len(saved["styles_sha256"]):
        made = len(saved["styles_sha256"])
        raise UsageError(f"checkpoint '{where}' was made with {made} style images, not {len(styles)}")
    for path, digest in zip(styles, saved["styles_sha256"]):
        if file_sha256(path) != digest:
            raise UsageError(f"style image '{path}' is not the one checkpoint '{where}' was made from")

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
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .config import StyleConfig
from .engine import Engine
from .errors import UsageError
from .files import atomic_write, check_regular_file, file_sha256, load_torch_file
from .painting import Painting
from .version import __version__

__all__ = ["FORMAT", "Checkpoint", "check_resumable", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

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


def save_checkpoint(path: str | Path, engine: Engine, painting: Painting, inputs: dict[str, Any]) -> None:
    """Write the run's state to ``path`` atomically. ``inputs``: content/style/output paths and hashes."""
    state = {
        "format": FORMAT,
        "version": __version__,
        "config": {**engine.config.to_dict(), "seed": engine.seed, "size": engine.size},
        "inputs": inputs,
        "painting": painting.state_dict(),
        "rng": torch.get_rng_state(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    atomic_write(Path(path), lambda fh: fh.write(data), f"checkpoint {path}")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint; :class:`UsageError` for a missing, foreign, other-version or damaged file."""
    file = Path(path)
    check_regular_file(file, f"checkpoint '{file}'", error=UsageError)  # a FIFO would wait for a writer forever
    try:
        state = load_torch_file(file)
    except Exception as exc:
        raise UsageError(f"'{file}' is not an ArtiStyle checkpoint ({type(exc).__name__})") from None
    return read_checkpoint(state, str(file))


def read_checkpoint(state: Any, where: str) -> Checkpoint:
    """``state`` (a loaded checkpoint file) checked field by field; one :class:`UsageError` naming the bad field."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"'{where}' is not an ArtiStyle checkpoint")
    if state.get("version") not in COMPATIBLE_VERSIONS:
        raise UsageError(
            f"checkpoint '{where}' was written by ArtiStyle {short(state.get('version'))}, this is {__version__}; "
            "it cannot be resumed"
        )
    fields = _Fields(where)
    config = fields.get(state, "config", dict)
    try:
        fields.config = StyleConfig.from_mapping(config)
    except UsageError as exc:
        raise UsageError(f"checkpoint '{where}' is damaged: its config is not valid ({exc})") from None
    inputs = fields.get(state, "inputs", dict)
    for key in ("content", "output", "content_sha256"):
        fields.get(inputs, key, str, "inputs.")
    if "output_sha256" in inputs:  # since 0.5: the digest of the image last saved, None before the first
        fields.get(inputs, "output_sha256", (str, type(None)), "inputs.")
    styles = fields.strings(inputs, "styles", "inputs.")
    if len(fields.strings(inputs, "styles_sha256", "inputs.")) != len(styles):
        fields.bad("inputs.styles_sha256", "does not have one digest per style image")
    painting = fields.get(state, "painting", dict)
    fields.count(painting, "scale", "painting.")
    fields.count(painting, "iteration", "painting.")
    fields.seconds(painting, "elapsed", "painting.")
    fields.history(painting, "history", "painting.", dict)
    if painting.get("anchor_reference") is not None:
        fields.image(painting, "anchor_reference", "painting.")
    fields.transfer(fields.get(painting, "transfer", dict, "painting."))
    rng = fields.get(state, "rng", torch.Tensor)
    if rng.dtype != torch.uint8 or rng.dim() != 1:
        fields.bad("rng", f"is a {rng.dtype} tensor of shape {tuple(rng.shape)}, not torch's byte RNG state")
    return Checkpoint(state)


def short(value: Any) -> str:
    """``value`` for a one-line message: its repr, cut to 40 characters."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


class _Fields:
    """The field checks of :func:`read_checkpoint`; each failure is one UsageError naming the field."""

    def __init__(self, where: str):
        self.where = where
        self.config: StyleConfig | None = None

    def bad(self, name: str, problem: str) -> None:
        raise UsageError(f"checkpoint '{self.where}' is damaged: {name} {problem}")

    def get(self, mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
        if key not in mapping:
            self.bad(prefix + key, "is missing")
        value = mapping[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            self.bad(prefix + key, f"is a {type(value).__name__}, not a {expected}")
        return value

    def count(self, mapping: Mapping[str, Any], key: str, prefix: str) -> int:
        value: int = self.get(mapping, key, int, prefix)
        if value < 0:
            self.bad(prefix + key, f"is negative ({value})")
        return value

    def seconds(self, mapping: Mapping[str, Any], key: str, prefix: str) -> float:
        value = float(self.get(mapping, key, (int, float), prefix))
        if not math.isfinite(value) or value < 0:
            self.bad(prefix + key, f"is not a time in seconds ({value})")
        return value

    def strings(self, mapping: Mapping[str, Any], key: str, prefix: str) -> list[str]:
        value: list[Any] = self.get(mapping, key, (list, tuple), prefix)
        if not all(isinstance(v, str) for v in value):
            self.bad(prefix + key, "is not a list of strings")
        return list(value)

    def history(self, mapping: Mapping[str, Any], key: str, prefix: str, kind: type | tuple[type, ...]) -> None:
        value: list[Any] = self.get(mapping, key, (list, tuple), prefix)
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            self.bad(prefix + key, "is not a list of per-iteration records")

    def image(self, mapping: Mapping[str, Any], key: str, prefix: str) -> torch.Tensor:
        value: torch.Tensor = self.get(mapping, key, torch.Tensor, prefix)
        if value.dim() != 4 or value.shape[0] != 1 or value.shape[1] != 3 or not value.is_floating_point():
            self.bad(prefix + key, f"is not an image tensor (1, 3, H, W) but a {value.dtype} of {tuple(value.shape)}")
        return value

    def tensors(self, mapping: Mapping[str, Any], key: str, prefix: str) -> None:
        value: list[Any] = self.get(mapping, key, (list, tuple), prefix)
        if not all(isinstance(v, torch.Tensor) for v in value):
            self.bad(prefix + key, "is not a list of tensors")

    def transfer(self, transfer: Mapping[str, Any]) -> None:
        """The one-scale state: pixels, counters and the optimiser's state (L-BFGS or averaged Adam)."""
        prefix = "painting.transfer."
        pixels = self.image(transfer, "pixels", prefix)
        if tuple(self.image(transfer, "last_good", prefix).shape) != tuple(pixels.shape):
            self.bad(prefix + "last_good", "does not have the shape of the pixels")
        self.count(transfer, "iteration", prefix)
        self.seconds(transfer, "elapsed", prefix)
        self.history(transfer, "history", prefix, (int, float))
        self.count(transfer, "failures", prefix)
        rule = self.get(transfer, "optimizer", dict, prefix)
        prefix += "optimizer."
        if self.config is not None and self.config.optimizer == "lbfgs":
            self.tensors(rule, "steps_s", prefix)
            self.tensors(rule, "steps_y", prefix)
            self.history(rule, "rho", prefix, (int, float))
            for key in ("prev_x", "prev_g"):
                self.get(rule, key, (torch.Tensor, type(None)), prefix)
            self.seconds(rule, "max_step", prefix)  # a finite number >= 0, like a time
        else:
            self.get(rule, "state", dict, prefix)
            self.get(rule, "param_groups", list, prefix)
            average = self.get(transfer, "average", (dict, type(None)), "painting.transfer.")
            if average is not None:
                prefix = "painting.transfer.average."
                self.count(average, "steps", prefix)
                self.seconds(average, "decay", prefix)
                if tuple(self.get(average, "sum", torch.Tensor, prefix).shape) != tuple(pixels.shape):
                    self.bad(prefix + "sum", "does not have the shape of the pixels")


def check_resumable(checkpoint: Checkpoint, painting: Painting, where: str) -> None:
    """Refuse a checkpoint whose scale or image size does not fit ``painting`` (same config, same content)."""
    state = checkpoint["painting"]
    scale = state["scale"]
    if scale >= len(painting.sizes):
        raise UsageError(f"checkpoint '{where}' is damaged: painting.scale {scale} is not one of the run's "
                         f"{len(painting.sizes)} scales")
    width, height = painting.content_shape(painting.sizes[scale])
    shape = tuple(state["transfer"]["pixels"].shape[2:])
    if shape != (height, width):
        raise UsageError(f"checkpoint '{where}' is damaged: painting.transfer.pixels is {shape[1]}x{shape[0]} px, "
                         f"not the {width}x{height} px of scale {scale}")


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

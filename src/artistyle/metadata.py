"""The settings a picture was painted with, kept in its own file: a PNG text chunk written and read back.

The command line and the studio both store :func:`image_metadata` in every PNG they
write (``save_image(..., text=...)``, ``encode_image(..., text=...)``), so a picture
says how to paint it again: the version, the seed actually used and the settings
the studio's page can set (file paths, the device and the memory limit are left
out: they belong to one machine, and leaving them out keeps the studio's and the
command line's files byte for byte the same for the same run). The text changes
no pixel. ``artistyle --info FILE`` prints it back (:func:`read_image_metadata`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from PIL import Image

from .config import StyleConfig
from .errors import ImageError
from .files import check_regular_file
from .jsontext import JSONTextError, parse_json
from .version import __version__

__all__ = ["METADATA_KEY", "image_metadata", "read_image_metadata", "recorded_settings"]

METADATA_KEY = "artistyle"  # the PNG iTXt keyword


def recorded_settings(config: StyleConfig, seed: int | None) -> dict[str, Any]:
    """The settings a picture records: those the studio may set, with the seed actually used."""
    studio = {s.name for s in StyleConfig.settings() if s.studio}
    settings = {name: value for name, value in config.to_dict().items() if name in studio}
    settings["seed"] = seed
    return settings


def image_metadata(config: StyleConfig, seed: int | None) -> dict[str, str]:
    """``{METADATA_KEY: JSON}`` for ``save_image``/``encode_image``'s ``text``: version, seed and settings."""
    record = {"artistyle": __version__, "seed": seed, "settings": recorded_settings(config, seed)}
    return {METADATA_KEY: json.dumps(record, sort_keys=True, separators=(",", ":"))}


def read_image_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record :func:`image_metadata` stored in the image at ``path``, or None if it has none.

    Raises :class:`~artistyle.errors.ImageError` if the file cannot be read as an image, or if its record is
    damaged (not JSON, not an object, or nested too deeply: :func:`artistyle.jsontext.parse_json`).
    """
    check_regular_file(path, f"'{os.fspath(path)}'", error=ImageError)  # a FIFO would wait for a writer forever
    try:
        with Image.open(path) as img:
            img.load()  # text chunks after the image data are read with it
            text = getattr(img, "text", None) or {}
    except FileNotFoundError:
        raise ImageError(f"'{os.fspath(path)}' does not exist") from None
    except Exception as exc:
        raise ImageError(f"'{os.fspath(path)}' is not an image file ArtiStyle can read") from exc
    raw = text.get(METADATA_KEY)
    if raw is None:
        return None
    try:
        record = parse_json(raw)
    except JSONTextError as exc:
        raise ImageError(f"'{os.fspath(path)}' has an ArtiStyle record that is damaged ({exc})") from None
    if not isinstance(record, dict):
        raise ImageError(f"'{os.fspath(path)}' has an ArtiStyle record that is damaged (not a JSON object)")
    return record

"""Whether the ``video`` extra is installed, asked without importing it (standard library only).

A driver calls :func:`require_video` before it imports :mod:`artistyle.video.frames` or
:mod:`artistyle.video.encode`, so that a user without PyAV reads one line saying what to install.
:data:`OUTPUT_SUFFIXES` lives here too, so that a driver can check an output name (a batch's jobs
file) before any work, with or without PyAV.
"""

from __future__ import annotations

import importlib.util

from ..errors import UsageError

__all__ = ["DEPENDENCIES", "INSTALL_HINT", "OUTPUT_SUFFIXES", "missing_dependencies", "require_video"]

#: Top-level modules video needs beyond the core library: PyAV (FFmpeg in its wheel) and OpenCV.
DEPENDENCIES = ("av", "cv2")
INSTALL_HINT = 'artistyle video needs the video extra: pip install "artistyle[video]"'
#: Video file extensions :func:`artistyle.video.encode.encode_video` writes (a path without one is a folder).
OUTPUT_SUFFIXES = (".mp4", ".mov", ".webm", ".gif")


def missing_dependencies() -> list[str]:
    """The modules of :data:`DEPENDENCIES` that cannot be imported here."""
    return [name for name in DEPENDENCIES if importlib.util.find_spec(name) is None]


def require_video() -> None:
    """Raise :class:`UsageError` with :data:`INSTALL_HINT` when the video extra is missing."""
    missing = missing_dependencies()
    if missing:
        raise UsageError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")

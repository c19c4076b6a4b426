"""The work-folder hash that ArtiStyle 0.5 wrote, recognised so that its clips still resume (then re-keyed)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..config import DEFAULT_CONTENT_WEIGHT, DEFAULT_STEPS, StyleConfig
from ..picture import legacy_config_dict
from .frames import FrameSource
from .settings import VideoSettings

__all__ = ["legacy_hashes"]


def legacy_hashes(source: FrameSource, given: StyleConfig, first: StyleConfig, settings: VideoSettings,
                  style_digests: list[str], seed: int | None) -> list[str]:
    """The state file's hash as 0.5 wrote it for these frames: ``artistyle video``'s and a batch job's.

    0.5 hashed the later frames' config (the first frame's where it differed), with its own fields
    (:data:`~artistyle.picture.FIELDS_0_5`), the seed given, all the video settings, the styles' SHA-256
    and the input's absolute path, sizes and modification times (so only a folder at its original place
    matches). ``artistyle video`` 0.5 always gave ``first_steps`` (300, a fast start's 40, or the user's)
    and hashed as its config the given one with ``steps`` = the user's ``first_steps`` or 300 (also for a
    fast start, whose schedule was the first frame's config); a batch job's
    VideoSettings were the defaults (``first_steps`` None), its later frames' config the job's with its
    content weight where a fast start raised the first frame's. Not reproduced: a 0.5 state hashed from
    in-memory style images (no path) matches only when their pixels are the same.
    """
    try:
        identity = _legacy_input_identity(source)
    except OSError:
        return []
    content_weight = given.content_weight if given.content_weight is not None else DEFAULT_CONTENT_WEIGHT
    video = {"first_steps": first.steps, "steps": settings.steps, "flow": settings.flow,
             "flow_preset": settings.flow_preset, "long_term": list(settings.long_term),
             "color_tolerance": settings.color_tolerance}
    candidates = [  # (config, first frame's config, video settings)
        (dataclasses.replace(given, steps=settings.first_steps or DEFAULT_STEPS,
                             content_weight=content_weight), first, video),
        (dataclasses.replace(first, content_weight=content_weight), first, {**video, "first_steps": None}),
    ]
    hashes = []
    drop = ("device", "max_memory", "seed")
    for config, first_config, video_settings in candidates:
        later, first_dict = legacy_config_dict(config, drop), legacy_config_dict(first_config, drop)
        record = {"config": later, **({"first_config": first_dict} if first_dict != later else {}),
                  "seed": seed, "video": video_settings, "styles": style_digests, "input": identity}
        hashes.append(hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest())
    return hashes


def _legacy_input_identity(source: FrameSource) -> dict[str, Any]:
    """The input clip as 0.5 identified it: where it is, its files' sizes and times on disk, and the selection."""
    def stamp(path: Path) -> list[Any]:
        info = path.stat()
        return [path.name, info.st_size, info.st_mtime_ns]

    path = Path(source.path)
    files = [path / f for f in sorted(os.listdir(path))] if path.is_dir() else [path]
    return {"path": str(path.resolve()), "files": [stamp(f) for f in files if f.is_file()],
            "names": list(source.names), "fps": str(source.fps)}

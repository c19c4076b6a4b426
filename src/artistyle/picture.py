"""The picture key: one SHA-256 of what decides a picture, for every record of a finished run.

A run is done when its record's key equals the key of the run asked for. :func:`picture_key` hashes
the settings that change the picture (:func:`picture_settings`: those whose :class:`~artistyle.settings.Setting`
has ``picture`` set, resolved, and only where they differ from the default, so a new setting left at its
default changes no key), the seed the user gave, the inputs' CONTENT (SHA-256 of the files, never their
paths or modification times, so a folder moved or copied elsewhere keeps its key) and what else the
caller names (an output format). A file a setting names (an init image, masks, a fine style, weights) is
hashed by its content too. The batch journal (:mod:`artistyle.batch.journal`) and the video work folder
(:mod:`artistyle.video.painter`) both use it.

:func:`legacy_config_dict` is the settings as 0.5 hashed them (its fields only), for records written by 0.5.
Core module: it imports neither the drivers nor the video package.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from .settings import Setting, describe_fields

__all__ = [
    "FIELDS_0_5", "KEYED_DEFAULTS", "KEY_VERSION", "legacy_config_dict", "picture_key", "picture_settings",
    "schema_changes",
]

KEY_VERSION = 1
# Defaults that changed after keys were made, with the value the keys made before took as the default (and so
# left out). Compared with these, a run at the new default names it in its key, so a record painted at the old
# default is never taken for it, and a run that asks for the old value keeps the key it always had.
# padding: zeros until issue 25 (item 7: the frame zero padding leaves along the edges), reflect since.
KEYED_DEFAULTS: dict[str, Any] = {"padding": "zeros"}
# The SHA-256 of a file's content, or None when it cannot be read.
Digest = Callable[[str], "str | None"]
# StyleConfig's fields in 0.5, frozen: the records 0.5 wrote hashed these and no others.
FIELDS_0_5 = (
    "size", "style_size", "style_scale", "device", "max_memory", "precision", "tile", "weights", "content_weight",
    "style_weight", "tv_weight", "temporal_weight", "content_layers", "style_layers", "style_layer_weights",
    "pooling", "padding", "style_blend", "preserve_color", "color_match", "original_colors", "fine_style", "masks",
    "steps", "init", "seed", "optimizer", "lr", "lbfgs_history", "tol", "scales", "scale_factor", "style_anchor",
    "scale_steps",
)


@functools.cache
def _described(cls: type) -> tuple[Setting, ...]:
    return describe_fields(cls)


def json_ready(value: Any) -> Any:
    """Tuples (also nested) as lists, for JSON."""
    if isinstance(value, (tuple, list)):
        return [json_ready(v) for v in value]
    return value


def file_values(value: Any, setting: Setting, digest: Digest) -> Any:
    """A path setting's value with each file replaced by its content's digest (a name in ``choices`` kept)."""
    if value is None:
        return None
    names = list(value) if isinstance(value, (tuple, list)) else [value]
    files = [v if v in setting.choices else digest(v) for v in names]
    return files if isinstance(value, (tuple, list)) else files[0]


def schema_changes(obj: Any) -> dict[str, Any]:
    """The picture settings of a dataclass with :class:`Setting` metadata that differ from their field
    defaults, JSON-ready (e.g. :class:`~artistyle.video.settings.VideoSettings`)."""
    cls: type = type(obj)
    return {s.name: json_ready(getattr(obj, s.name)) for s in _described(cls)
            if s.picture and getattr(obj, s.name) != s.default}


def picture_settings(config: Any, digest: Digest) -> dict[str, Any]:
    """The settings of ``config`` (a :class:`~artistyle.config.StyleConfig`, or a subclass) that change the
    picture, resolved (:meth:`~artistyle.config.StyleConfig.resolved`), JSON-ready, only those that differ
    from ``type(config)()``'s resolved value (for a default that changed, from the old one: :data:`KEYED_DEFAULTS`);
    a file a setting names as its content's digest. The seed is left out: :func:`picture_key` takes it separately."""
    resolve: Callable[[], Any] | None = getattr(config, "resolved", None)
    resolved = resolve() if resolve is not None else config
    default = type(config)()
    default_resolve: Callable[[], Any] | None = getattr(default, "resolved", None)
    defaults = default_resolve() if default_resolve is not None else default
    settings: dict[str, Any] = {}
    cls: type = type(config)
    for s in _described(cls):
        if not s.picture or s.name == "seed":
            continue
        value = getattr(resolved, s.name)
        if value == KEYED_DEFAULTS.get(s.name, getattr(defaults, s.name)):
            continue
        settings[s.name] = json_ready(file_values(value, s, digest) if s.path else value)
    return settings


def picture_key(
    *, settings: Mapping[str, Any], seed: int | None, inputs: Mapping[str, str | list[str] | Any | None],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The SHA-256 (hex) of canonical JSON of the picture settings, the seed, the inputs' content digests
    and ``extra`` (e.g. the output's format), tagged with :data:`KEY_VERSION`."""
    record = {"key": KEY_VERSION, "settings": dict(settings), "seed": seed, "inputs": dict(inputs),
              "extra": dict(extra or {})}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def legacy_config_dict(config: Any, drop: tuple[str, ...] = ("device", "max_memory")) -> dict[str, Any]:
    """``config.to_dict()`` as 0.5 had it: 0.5's fields only (:data:`FIELDS_0_5`), less ``drop``."""
    data = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {k: json_ready(v) for k, v in data.items() if k in FIELDS_0_5 and k not in drop}

"""The studio's settings as the command line says them (the page's "Copy as command"), and a painted PNG's
settings record as the page's form takes them back (a picture dropped on the page).

Both from :class:`StyleConfig`'s own schema (each :class:`~artistyle.settings.Setting`'s option, kind, list
form and default), so a new setting is said and read the way ``artistyle --help`` shows it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from ..config import StyleConfig
from ..errors import UsageError
from ..settings import Setting
from .settings import SETTINGS, studio_settings

__all__ = ["command_line", "record_form", "sample_path"]


def sample_path(name: str) -> str:
    """Where a bundled sample is on this machine, for a command that uses it."""
    return str(resources.files("artistyle") / "samples" / name)


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _words(setting: Setting, value: Any) -> list[str]:
    """The option and its value(s) as the command line parses them (nothing where it says the default)."""
    default = list(setting.default) if isinstance(setting.default, tuple) else setting.default
    shown = list(value) if isinstance(value, tuple) else value
    if value is None or shown == default:
        return []
    if setting.kind is bool:
        return [setting.option] if value else []  # a switch; off is its default (no studio switch is on by default)
    if isinstance(value, tuple):
        if setting.variadic:
            return [setting.option, *map(_word, value)]
        return [setting.option, ",".join(map(_word, value))]
    return [setting.option, _word(value)]


def command_line(
    config: StyleConfig, given: Sequence[str], content: str, styles: Sequence[str], *,
    fine_style: str | None = None, masks: Sequence[str] = (), output: str | None = None,
) -> str:
    """``artistyle CONTENT STYLE... --option value ...``: the images by the names given (paths, where known),
    then the settings named in ``given`` that differ from their defaults, in ``--help``'s order, and ``-o``."""
    words = ["artistyle", content, *styles]
    wanted = set(given)
    for setting in studio_settings():
        if setting.name in wanted:
            words += _words(setting, getattr(config, setting.name))
    described = {s.name: s for s in StyleConfig.settings()}
    if fine_style is not None:
        words += [described["fine_style"].option, fine_style]
    if masks:
        words += [described["masks"].option, *masks]
    if output:
        words += ["-o", output]
    return shlex.join(words)


def _json(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value, sort_keys=True)


def record_form(record: Mapping[str, Any], size: int) -> dict[str, Any] | None:
    """A painted PNG's record (``{"artistyle", "seed", "settings"}``) as a page puts it back in its form:
    ``{"version", "seed", "settings", "given"}``, where ``given`` names the settings whose box is filled (those
    that differ from what an empty box gives for that start and size; the size and seed always); None if the
    record's settings are not valid here (another version's, or damaged).

    ``size``: the size an empty Size box gives on this studio's device.
    """
    settings = record.get("settings")
    if not isinstance(settings, Mapping):
        return None
    known = {name: value for name, value in settings.items() if name in SETTINGS}
    try:
        config = StyleConfig.from_mapping({n: v for n, v in known.items() if v is not None}, allowed=SETTINGS,
                                          files=False).validate()
    except (UsageError, TypeError, ValueError):
        return None
    empty = StyleConfig(init=config.init, size=config.size or size).resolved().to_dict()
    given = [name for name, value in known.items() if value is not None and _json(value) != _json(empty.get(name))]
    seed = record.get("seed")
    return {"version": str(record.get("artistyle", "")), "seed": seed if isinstance(seed, int) else None,
            "settings": {**known, "seed": seed if isinstance(seed, int) else None},
            "given": sorted({*given, "size", *(("seed",) if isinstance(seed, int) else ())})}

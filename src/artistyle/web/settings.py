"""The studio's run settings: which of :class:`StyleConfig`'s fields a page may send, and its limits.

A page sends its settings as JSON; :func:`parse_settings` turns them into a
validated :class:`StyleConfig` with the command line's messages, then applies
the studio's own ceilings on size and steps (a run larger than that already
takes hours on a CPU; bigger prints are for the command line).

A setting sent as null counts as not sent, like an empty field; the library resolves what was not
sent (:meth:`StyleConfig.resolved`: a fast start without ``steps`` or ``scale_steps`` gets the fast
schedule), as on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..config import Setting, StyleConfig
from ..devices import resolve_device
from ..errors import UsageError
from ..fast import NEEDS_EXTRA, missing_dependencies
from ..settings import short_repr

__all__ = ["FAST_HINT", "MAX_SIZE", "MAX_STEPS", "MAX_STYLES", "SETTINGS", "describe_settings", "fast_missing",
           "parse_settings", "studio_settings"]

MAX_SIZE = 4096
MAX_STEPS = 10_000
MAX_STYLES = 8  # style images per run, and masks per run


def studio_settings() -> tuple[Setting, ...]:
    """The settings a page may send: StyleConfig's fields marked for the studio, in field order.

    Paths (masks, a fine style, weights, an init image) are left out on purpose: the client never
    names a file on the server; masks and a fine style come as image ids, beside the settings
    (Studio.submit). The device and the memory limit are the server's.
    """
    return tuple(s for s in StyleConfig.settings() if s.studio)


SETTINGS = tuple(s.name for s in studio_settings())


def describe_settings(described: Sequence[Setting]) -> list[dict[str, Any]]:
    """The settings as the page builds its form from them: ``[{"group", "settings": [description, ...]}]``.

    Groups in the order of their first setting, settings in field order (as ``artistyle --help``);
    each description is :meth:`Setting.description`.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for setting in described:
        groups.setdefault(setting.group, []).append(setting.description())
    return [{"group": group, "settings": settings} for group, settings in groups.items()]

#: The line a page shows (and a fast job's 400 says) where the fast extra is missing: the command line's
#: install hint, with the studio's way to do without.
FAST_HINT = f"{NEEDS_EXTRA}; or choose another start (More settings, Start from)"


def fast_missing() -> str | None:
    """None where the fast start can run here, else the one line saying what to install.

    Asked at each call (importlib's look-up, no import): an extra installed while the studio runs counts.
    """
    missing = missing_dependencies()
    return f"{FAST_HINT} (missing: {', '.join(missing)})" if missing else None


def parse_settings(
    data: Any, styles: int, *, device: str = "auto", max_memory: int | None = None,
    max_size: int = MAX_SIZE, max_steps: int = MAX_STEPS,
) -> StyleConfig:
    """A validated, resolved :class:`StyleConfig` from a job's JSON settings, for ``styles`` style images on
    ``device``.

    Raises :class:`UsageError` naming the first bad setting, with the same
    messages as the command line where the check is the same; a fast start
    without the fast extra is refused here, before the job waits in the queue.
    """
    sent = {name: value for name, value in data.items() if value is not None} if isinstance(data, dict) else data
    size = sent.get("size") if isinstance(sent, dict) else None
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size > max_size:  # the studio's own limit
        raise UsageError(f"size must be at most {max_size} px in the studio, not {short_repr(size, 24)}")
    config = StyleConfig.from_mapping({} if sent is None else sent, allowed=SETTINGS, files=False)
    config = dataclasses.replace(config, device=device, max_memory=max_memory).validate().resolved()
    if config.init == "fast":
        missing = fast_missing()
        if missing:
            raise UsageError(missing)
    if config.steps is not None and config.steps > max_steps:
        raise UsageError(f"steps must be at most {max_steps} in the studio, not {config.steps}")
    if config.scale_steps is not None and sum(config.scale_steps) > max_steps:  # steps by another name
        raise UsageError(f"scale-steps must add up to at most {max_steps} in the studio, not "
                         f"{short_repr(sum(config.scale_steps), 24)}")
    # The checks that need the number of styles or the size, before the job waits in the queue.
    config.check(styles, resolve_device(device).type)
    return config

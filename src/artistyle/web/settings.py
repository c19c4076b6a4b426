"""The studio's run settings: which of :class:`StyleConfig`'s fields a page may send, and its limits.

A page sends its settings as JSON; :func:`parse_settings` turns them into a
validated :class:`StyleConfig` with the command line's messages, then applies
the studio's own ceilings on size and steps (a run larger than that already
takes hours on a CPU; bigger prints are for the command line).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import StyleConfig
from ..devices import resolve_device
from ..errors import UsageError

__all__ = ["MAX_SIZE", "MAX_STEPS", "MAX_STYLES", "SETTINGS", "parse_settings"]

MAX_SIZE = 4096
MAX_STEPS = 10_000
MAX_STYLES = 8  # style images per run, and masks per run

# Settings a page may send: StyleConfig's fields marked for the studio. Paths (masks, a fine style,
# weights, an init image) are left out on purpose: the client never names a file on the server;
# masks and a fine style come as image ids, beside the settings (Studio.submit). The device and the
# memory limit are the server's.
SETTINGS = tuple(s.name for s in StyleConfig.settings() if s.studio)


def parse_settings(
    data: Any, styles: int, *, device: str = "auto", max_memory: int | None = None,
    max_size: int = MAX_SIZE, max_steps: int = MAX_STEPS,
) -> StyleConfig:
    """A validated :class:`StyleConfig` from a job's JSON settings, for ``styles`` style images on ``device``.

    Raises :class:`UsageError` naming the first bad setting, with the same
    messages as the command line where the check is the same.
    """
    config = StyleConfig.from_mapping({} if data is None else data, allowed=SETTINGS, files=False)
    config = dataclasses.replace(config, device=device, max_memory=max_memory).validate()
    if config.size is not None and config.size > max_size:
        raise UsageError(f"size must be at most {max_size} px in the studio, not {config.size}")
    if config.steps > max_steps:
        raise UsageError(f"steps must be at most {max_steps} in the studio, not {config.steps}")
    # The checks that need the number of styles or the size, before the job waits in the queue.
    config.check(styles, resolve_device(device).type)
    return config

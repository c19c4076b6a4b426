"""How every command turns a failure into one line on stderr and an exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ..errors import ArtiStyleError, printable
from .options import PROG

__all__ = ["reported", "say"]


def say(line: str) -> None:
    """One line on stderr, :func:`printable`."""
    print(printable(line), file=sys.stderr)


def reported(run: Callable[[], int]) -> int:
    """``run()``'s exit status; a failure is one line on stderr: 2 for bad usage or input, 1 for a failed
    run (out of memory, a device failure, a bug: set ARTISTYLE_DEBUG=1 for the traceback)."""
    try:
        return run()
    except ArtiStyleError as exc:
        say(f"{PROG}: error: {exc}")
        return exc.exit_code
    except MemoryError:
        say(f"{PROG}: error: out of memory; try a smaller --size")
        return 1
    except Exception as exc:  # a bug or a device failure: still one line, unless debugging
        if os.environ.get("ARTISTYLE_DEBUG"):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "out of memory" in text.lower():
            say(f"{PROG}: error: the device ran out of memory; try a smaller --size")
        else:
            say(f"{PROG}: error: {type(exc).__name__}: {text} (set ARTISTYLE_DEBUG=1 for details)")
        return 1

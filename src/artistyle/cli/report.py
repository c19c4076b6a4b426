"""How every command turns a failure into one line on stderr and an exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ..errors import ArtiStyleError
from .options import PROG

__all__ = ["reported"]


def reported(run: Callable[[], int]) -> int:
    """``run()``'s exit status; a failure is one line on stderr: 2 for bad usage or input, 1 for a failed
    run (out of memory, a device failure, a bug: set ARTISTYLE_DEBUG=1 for the traceback)."""
    try:
        return run()
    except ArtiStyleError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MemoryError:
        print(f"{PROG}: error: out of memory; try a smaller --size", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug or a device failure: still one line, unless debugging
        if os.environ.get("ARTISTYLE_DEBUG"):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "out of memory" in text.lower():
            print(f"{PROG}: error: the device ran out of memory; try a smaller --size", file=sys.stderr)
        else:
            print(f"{PROG}: error: {type(exc).__name__}: {text} (set ARTISTYLE_DEBUG=1 for details)", file=sys.stderr)
        return 1

"""The ``artistyle`` command line: thin drivers over :class:`artistyle.NST`, one module per command.

``artistyle CONTENT STYLE`` paints (:mod:`.paint`), ``artistyle web`` serves the studio
(:mod:`.web`); the painting options are generated from :class:`~artistyle.config.StyleConfig`
(:mod:`.options`). Exit status: 0 done, 1 the run failed, 2 bad usage or input, 130
interrupted. Every error is one line on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import ArtiStyleError
from .options import PROG, build_parser, config_from_args
from .paint import default_output, expand_styles, list_layers, run_paint
from .web import build_web_parser, run_web

__all__ = ["PROG", "build_parser", "build_web_parser", "config_from_args", "default_output", "expand_styles", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["web"]:  # a content image called 'web' can still be given as ./web
        return run_web(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_layers:
        return list_layers()
    if (not args.content or not args.style) and not args.resume:
        parser.error("a CONTENT and a STYLE image are needed")
    try:
        return run_paint(args)
    except ArtiStyleError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
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



"""The ``artistyle`` command line: thin drivers over :class:`artistyle.NST`, one module per command.

``artistyle CONTENT STYLE`` paints (:mod:`.paint`), ``artistyle web`` serves the studio
(:mod:`.web`), ``artistyle batch`` paints many jobs (:mod:`.batch`), ``artistyle score`` scores a
painted picture with the offline quality panel (:mod:`.score`); the painting options are
generated from :class:`~artistyle.config.StyleConfig` (:mod:`.options`). Exit status: 0 done, 1
the run failed, 2 bad usage or input, 130 interrupted (Ctrl-C), 143 or 129 stopped by SIGTERM or
SIGHUP (the image so far is saved in all three; ``batch`` has its own rules, see :mod:`.batch`).
Every error is one line on stderr.

This module imports nothing heavy at import time: :func:`main` imports PyTorch with signals
held and the commands inside its error handling, so a Ctrl-C while torch loads ends with one
line, not a traceback or an abort.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .signals import (
    exit_status,
    forget_handled_interrupt,
    ignore_stop_signals,
    signals_held,
    stop_on_signals,
    stopped_by,
)

if TYPE_CHECKING:
    from .options import PROG, build_parser, config_from_args
    from .paint import default_output, expand_styles
    from .web import build_web_parser

__all__ = [
    "PROG", "build_parser", "build_web_parser", "config_from_args", "default_output", "entry", "expand_styles", "main",
]

_EXPORTS = {"PROG": "options", "build_parser": "options", "config_from_args": "options",
            "default_output": "paint", "expand_styles": "paint", "build_web_parser": "web"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'artistyle.cli' has no attribute '{name}'")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    stop_on_signals()
    try:
        # A KeyboardInterrupt raised inside torch's C++ initialisation aborts the process ("terminate
        # called after throwing an instance of 'python_error'"), so a signal waits for the import.
        with signals_held():
            import torch  # noqa: F401
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt as exc:  # before a run started (e.g. while torch was imported): nothing to save
        print(f"artistyle: {stopped_by(exc)}", file=sys.stderr)
        return exit_status(exc)


def entry() -> int:
    """The ``artistyle`` program (console script and ``python -m artistyle``): :func:`main`, then exit quietly.

    Once the work is done, a signal during the interpreter's shutdown (which takes a while after
    torch) would kill the process with no message and a misleading status: it is ignored instead.
    The process exits with the status :func:`main` chose, never by a signal.
    """
    late: KeyboardInterrupt | None = None
    try:
        status = main()
    except KeyboardInterrupt as exc:  # came as main returned, or while it reported an earlier one
        late, status = exc, exit_status(exc)
    ignore_stop_signals()
    if late is not None:
        print(f"artistyle: {stopped_by(late)}", file=sys.stderr)
    # A Ctrl-C that main handled may still be marked as unhandled inside Python, which would then end
    # `python -m artistyle` by SIGINT after the shutdown instead of with this status (see the function).
    forget_handled_interrupt()
    return status


def _main(argv: list[str]) -> int:
    from ..errors import ArtiStyleError

    if argv[:1] == ["web"]:  # a content image called 'web' can still be given as ./web
        from .web import run_web

        return run_web(argv[1:])
    if argv[:1] == ["video"]:  # likewise ./video
        from .video import run_video

        return run_video(argv[1:])
    if argv[:1] == ["batch"]:  # likewise ./batch
        from .batch import run_batch

        return run_batch(argv[1:])
    if argv[:1] == ["score"]:  # likewise ./score
        from .score import run_score

        return run_score(argv[1:])
    from .options import PROG, build_parser, ray_flag
    from .paint import list_layers, run_paint, show_info
    from .report import reported, say

    parser = build_parser()
    args = parser.parse_args(ray_flag(argv))
    if args.list_layers:
        return list_layers()
    if args.info:
        try:
            return show_info(args.info)
        except ArtiStyleError as exc:
            say(f"{PROG}: error: {exc}")
            return exc.exit_code
    if (not args.content or not args.style) and not args.resume:
        parser.error("a CONTENT and a STYLE image are needed")
    if args.ray is not None and not args.tile_workers:
        parser.error("--ray runs the tile workers on Ray: give --tile-workers N too")
    return reported(lambda: run_paint(args))

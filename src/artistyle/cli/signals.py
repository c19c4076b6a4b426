"""Signals for the command line: SIGTERM and SIGHUP stop a run the way Ctrl-C does.

Python turns SIGINT into :class:`KeyboardInterrupt`; SIGTERM (``kill``, a job
scheduler) and SIGHUP (a closed terminal) would otherwise end the process at once
and lose the image so far. :func:`stop_on_signals` makes them raise :class:`Stopped`,
a KeyboardInterrupt, so one ``except KeyboardInterrupt`` saves for all three.
:func:`signals_held` keeps a signal from cutting short the final save: it is
delivered when the save is done.

Python raises a signal's exception at whatever bytecode runs next, and when that is
a finaliser (``__del__``, a weakref callback, run by the garbage collector mid-run),
the exception is printed as "Exception ignored" and lost: a rare Ctrl-C that does
nothing. So the handlers also record the signal, and the drivers' loops call
:func:`raise_if_stopped` after each iteration to raise it again if it was lost.

Once the program has its exit status, :func:`ignore_stop_signals` and
:func:`forget_handled_interrupt` make sure that status is the one it exits with.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = [
    "STOP_SIGNALS", "Stopped", "exit_status", "forget_handled_interrupt", "handled_by", "ignore_stop_signals",
    "raise_if_stopped", "signals_held", "stop_exception", "stop_on_signals", "stopped_by",
]

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# The stop signals that arrived while stop_on_signals' handlers were installed (the first one matters).
_arrived: list[int] = []


def stop_exception(signum: int) -> KeyboardInterrupt:
    """The exception a stop signal raises: KeyboardInterrupt for SIGINT, :class:`Stopped` for the others."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def _record_and_raise(signum: int, frame: FrameType | None) -> None:
    _arrived.append(signum)
    raise stop_exception(signum)


def raise_if_stopped() -> None:
    """Raise the stop signal's exception again if one arrived and was lost in a finaliser (see above)."""
    if _arrived:
        raise stop_exception(_arrived[0])


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Stopped` and SIGINT KeyboardInterrupt in the main thread, recorded
    for :func:`raise_if_stopped` (a no-op elsewhere)."""
    if _in_main_thread():
        _arrived.clear()
        for signum in STOP_SIGNALS:
            signal.signal(signum, _record_and_raise)


def stopped_by(exc: KeyboardInterrupt) -> str:
    """How the run was stopped, for a message: "interrupted" or "stopped by SIGTERM"."""
    if isinstance(exc, Stopped):
        return f"stopped by {signal.Signals(exc.signum).name}"
    return "interrupted"


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number, the shell's convention: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Stopped) else int(signal.SIGINT))


@contextmanager
def handled_by(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handler`` for SIGINT, SIGTERM and SIGHUP inside the block (main thread only); the previous handlers after."""
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, former in previous.items():
            signal.signal(signum, former)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP inside the block; the first one that arrived is raised at its end."""
    if not _in_main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    with handled_by(hold):
        yield
    if arrived:
        raise stop_exception(arrived[0])


def ignore_stop_signals() -> None:
    """Ignore SIGINT, SIGTERM and SIGHUP from now on (call it in the main thread), dropping one that already arrived.

    ``signal.signal`` first runs the Python handlers of the signals that arrived since the last bytecode, so a
    stop signal that came as the work ended raises its exception here; it is dropped like those that come later.
    """
    while True:
        try:  # around the whole loop: a handler can also run between two calls
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            pass


def forget_handled_interrupt() -> None:
    """Keep Python from ending the process by SIGINT after the program handled the KeyboardInterrupt.

    CPython (3.10 to 3.13 checked) marks a KeyboardInterrupt that leaves code run by ``exec()`` or ``eval()`` of a
    *string* as unhandled, even when an ``except`` further out catches it; dataclasses and namedtuple make their
    methods that way, so a Ctrl-C while the commands' modules are imported can raise there. Under
    ``python -m artistyle`` the interpreter then kills itself with SIGINT once it has shut down, whatever status
    ``sys.exit`` gave: "artistyle: interrupted" and then a death by SIGINT instead of exit status 130. Each ``exec``
    of a string clears the mark before it runs, so an empty one clears it: call this after
    :func:`ignore_stop_signals`, when no KeyboardInterrupt can come any more.
    """
    exec("")

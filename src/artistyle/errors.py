"""Errors that end a run with one clear line for the user.

The CLI maps :class:`UsageError` to exit status 2 (the user asked for something
that cannot be done: a bad file, a bad value) and any other
:class:`ArtiStyleError` to exit status 1 (something failed while running).
"""

from __future__ import annotations

__all__ = ["ArtiStyleError", "FileError", "ImageError", "RunError", "UsageError", "WeightsError", "printable"]


class ArtiStyleError(Exception):
    """Base class: a failure whose message is fit to show a user as is."""

    exit_code = 1


class UsageError(ArtiStyleError):
    """The user's input (a file, a flag value, a layer name) is unusable."""

    exit_code = 2


class ImageError(UsageError):
    """An image file is missing, unreadable, too small, too large or not an image."""


class FileError(UsageError):
    """A file cannot be written or read for reasons that have nothing to do with its content.

    A missing or read-only folder, a full disk, a denied permission: the user can fix
    these, hence exit status 2, as for the other usage errors.
    """


class WeightsError(UsageError):
    """A VGG-19 weights file is missing, corrupt or of an unknown layout."""


class RunError(ArtiStyleError):
    """The optimisation itself failed (a NaN loss, a device error)."""


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as a Python escape (``\\x1b``, ``\\n``,
    ``\\u202e``, a lone surrogate of an undecodable name ``\\udcff``): a file name cannot send escape sequences
    to the terminal, ring its bell or split a one-line message."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in text)

"""ArtiStyle studio: a local web page over :class:`artistyle.NST` (``artistyle web``).

Needs the ``web`` extra (``pip install 'artistyle[web]'``: Starlette and uvicorn).
This package's own ``__init__`` imports nothing beyond the standard library, so the
CLI can tell a missing extra from a bug; the app lives in :mod:`artistyle.web.app`,
the settings a page may send in :mod:`artistyle.web.settings`, uploads and results in
:mod:`artistyle.web.images`, one run in :mod:`artistyle.web.job`, the job queue in
:mod:`artistyle.web.jobs`, the request guards in :mod:`artistyle.web.guard` and the server in
:mod:`artistyle.web.server`.
The core library never imports this package.
"""

from __future__ import annotations

__all__ = ["DEPENDENCIES", "INSTALL_HINT"]

#: Top-level modules the studio needs beyond the core library.
DEPENDENCIES = ("starlette", "uvicorn")
INSTALL_HINT = "the web studio needs: pip install 'artistyle[web]'"

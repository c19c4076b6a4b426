"""File utilities shared by images, checkpoints, manifests and weights.

:func:`atomic_write` writes through a temporary file in the target's folder and
renames it over the target (:func:`os.replace` is atomic on one file system), so
a crash or ``kill -9`` leaves either the old file or the new one, never half of
one. A killed write can leave its temporary behind; :func:`remove_stale_temporaries`
deletes those. Failures that have nothing to do with a file's content (a
missing folder, a full disk, a denied permission) raise
:class:`~artistyle.errors.FileError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .errors import FileError

__all__ = [
    "atomic_write",
    "file_sha256",
    "glob_escape",
    "load_torch_file",
    "remove_stale_temporaries",
    "same_file",
    "short_reason",
]


def atomic_write(target: str | os.PathLike[str], write: Callable[[BinaryIO], object], label: str) -> None:
    """Call ``write`` on a temporary file beside ``target``, then rename it to ``target``.

    The temporary is named ``.NAME.xxxxxxxx.SUFFIX`` (hidden, same extension). A new
    file gets the mode a plain ``open()`` would give it (0666 less the umask); an
    overwritten one keeps its mode. An :class:`OSError` from the file system or from
    ``write`` becomes :class:`FileError` ("LABEL cannot be written (REASON)"); any
    other exception propagates. Either way the temporary is removed.
    """
    target = Path(os.fspath(target))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
        # Writers such as tifffile want a file object with a path name, which os.fdopen's lacks.
        os.close(fd)
    except OSError as exc:
        raise FileError(f"{label} cannot be written ({short_reason(exc)})") from exc
    tmp = Path(tmp_name)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise FileError(f"{label} cannot be written ({short_reason(exc)})") from exc
        raise


def remove_stale_temporaries(path: str | os.PathLike[str]) -> None:
    """Delete the temporaries a killed :func:`atomic_write` of ``path`` left beside it."""
    file = Path(os.fspath(path))
    for stale in file.parent.glob(f".{glob_escape(file.name)}.*{glob_escape(file.suffix)}"):
        stale.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    """``text`` with the glob metacharacters ``*?[`` made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks; :class:`OSError` propagates for the caller to word."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one file (links and case folding included)."""
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    try:
        return os.path.normcase(Path(a).resolve()) == os.path.normcase(Path(b).resolve())
    except (OSError, RuntimeError):  # RuntimeError: symlink loop on older Pythons
        return False


def short_reason(exc: BaseException) -> str:
    """A short, single-line reason from an exception (an OSError's strerror when it has one)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _new_file_mode(target: Path) -> int:
    """Keep an overwritten file's permissions; otherwise 0666 less the umask."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    # /proc avoids the set-and-restore dance, which races with other threads.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_torch_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` of tensors only (no pickled code runs), on the CPU, without torch's warnings.

    torch warns (two lines) before refusing a plain pickle; the caller's one-line refusal is what
    a user should see. Raises whatever torch raises for a file it cannot read.
    """
    import torch  # here, not at the top: files.py serves callers that never touch torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)

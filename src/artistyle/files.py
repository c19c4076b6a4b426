"""File utilities shared by images, checkpoints, manifests and weights.

:func:`atomic_write` writes through a temporary file in the target's folder and
renames it over the target (:func:`os.replace` is atomic on one file system), so
a crash or ``kill -9`` leaves either the old file or the new one, never half of
one. A killed write (``kill -9``, a power cut) can leave its temporary behind; the
temporary's name carries the host and process id of its writer, so the next write
of the same file (:func:`remove_stale_temporaries`) deletes the ones whose writer
is provably dead, and never a temporary of a live writer or of another program.
Failures that have nothing to do with a file's content (a missing folder, a full
disk, a denied permission) raise :class:`~artistyle.errors.FileError`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import FileError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_free_space",
    "check_regular_file",
    "check_writable",
    "file_sha256",
    "load_torch_file",
    "remove_stale_temporaries",
    "same_file",
    "short_reason",
    "special_kind",
]


def atomic_write(target: str | os.PathLike[str], write: Callable[[BinaryIO], object], label: str) -> None:
    """Call ``write`` on a temporary file beside ``target``, then rename it to ``target``.

    The temporary is named ``.NAME.~HOST.PID.xxxxxxxx.SUFFIX`` (hidden, same extension,
    the writer's host and process id); stale ones of dead writers are removed first. A new
    file gets the mode a plain ``open()`` would give it (0666 less the umask); an
    overwritten one keeps its mode. An :class:`OSError` from the file system or from
    ``write`` becomes :class:`FileError` ("LABEL cannot be written (REASON)"); any
    other exception propagates. Either way the temporary is removed.
    """
    with atomic_path(target, label) as tmp, open(tmp, "wb") as fh:
        write(fh)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], label: str) -> Iterator[Path]:
    """A temporary path beside ``target`` for a writer that wants a path (an encoder); renamed on success.

    :func:`atomic_write`'s naming, modes and error wording: the body writes the file
    at the yielded path (which exists, empty, with ``target``'s extension), and when it
    ends without an exception the file is flushed to disk and renamed to ``target``.
    On any exception the temporary is removed and ``target`` is untouched.
    """
    target = Path(os.fspath(target))
    remove_stale_temporaries(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=target.suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise FileError(f"{label} cannot be written ({short_reason(exc)})") from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise FileError(f"{label} cannot be written ({short_reason(exc)})") from exc
        raise


def _fsync(path: Path) -> None:
    """Flush a closed file's data to disk, so that the rename never publishes a file still in the cache."""
    fd = os.open(path, os.O_RDWR)  # Windows refuses fsync on a read-only descriptor
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries that killed :func:`atomic_write` calls of ``path`` left; return them.

    Only temporaries written on this host by a process that no longer exists are
    deleted: one of a live process (another run writing the same file, another
    thread of this one) or one without our naming is left alone. Errors are ignored:
    cleaning is a courtesy, never a reason to fail a write.
    """
    file = Path(os.fspath(path))
    ours = re.escape(_temporary_prefix(file, pid=None)) + r"(\d+)\.[A-Za-z0-9_]{8}" + re.escape(file.suffix)
    pattern = re.compile(ours)
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(file.parent):
            match = pattern.fullmatch(entry.name)
            if match and not _process_exists(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def check_writable(
    target: Path,
    label: str,
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
    error: type[Exception] = FileError,
    probe: bool = True,
) -> None:
    """Refuse, before a long run, a path that cannot be written: ``error`` with one line naming the problem.

    The folder must exist and take a new file (with ``probe``, a small file is written
    there and removed, which also finds full disks and read-only or pseudo file systems
    such as /proc that pass :func:`os.access`), the path must not be a folder, a FIFO, a
    socket or a device, and must not be one of ``protect``.
    """
    parent = target.parent
    if not parent.exists():
        raise error(f"{label}: folder '{parent}' does not exist")
    if not parent.is_dir():
        raise error(f"{label}: '{parent}' is not a folder")
    if target.is_dir():
        raise error(f"{label} is a folder")
    with contextlib.suppress(OSError):  # a FIFO, socket or device in its place is not a file to replace
        kind = special_kind(os.lstat(target).st_mode)
        if kind is not None and not target.is_symlink():
            raise error(f"{label} is not a regular file (it is {kind}); refusing to replace it")
    for other in protect:
        if same_file(target, Path(os.fspath(other))):
            raise error(f"{label} is the input file '{os.fspath(other)}'; refusing to overwrite an input")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"{label}: folder '{parent}' is not writable")
    if not probe:
        return
    remove_stale_temporaries(target)
    probe_file: str | None = None
    try:  # named like atomic_write's temporaries, so that a kill -9 right here leaves nothing for good
        fd, probe_file = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=target.suffix, dir=parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(4096))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        # A pseudo file system such as /proc answers "No such file or directory" for a new file.
        reason = "the folder takes no new files" if isinstance(exc, FileNotFoundError) else short_reason(exc)
        raise error(f"{label} cannot be written ({reason})") from None
    finally:
        if probe_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe_file)


def check_free_space(target: Path, needed: int, label: str) -> None:
    """Refuse a folder with less than ``needed`` bytes free (so a long run does not end in a full disk)."""
    try:
        free = shutil.disk_usage(target.parent).free
    except OSError:
        return  # no figure to go by: the write itself will tell
    if free < needed:
        raise FileError(
            f"{label}: folder '{target.parent}' has {_megabytes(free)} free, the file needs up to {_megabytes(needed)}"
        )


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count < 10e6 else f"{count / 1e6:.0f} MB"


def _temporary_prefix(target: Path, pid: int | None = -1) -> str:
    """``.NAME.~HOST.PID.``: the start of a temporary's name (without the PID when ``pid`` is None)."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
    process = "" if pid is None else f"{os.getpid() if pid == -1 else pid}."
    return f".{target.name}.~{host}.{process}"


def _process_exists(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (ours included; another user's counts as running)."""
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def special_kind(mode: int) -> str | None:
    """What a file that is not a regular file is ("a FIFO", "a socket", "a device", ...), or None for a regular one."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def check_regular_file(
    path: str | os.PathLike[str], label: str, *, error: type[Exception] = FileError
) -> os.stat_result:
    """Refuse, without opening it, a path that is not a regular file to read: ``error`` with one line.

    Opening a FIFO waits for a writer and a device such as /dev/zero never ends, so a reader checks first.
    Returns the file's status (its size, for a reader that refuses empty files).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{label} does not exist") from None
    except PermissionError:
        raise error(f"{label} cannot be read (permission denied)") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise error(f"{label} cannot be accessed ({short_reason(exc)})") from None
    kind = special_kind(info.st_mode)
    if kind == "a folder":
        raise error(f"{label} is a folder")
    if kind is not None:
        raise error(f"{label} is not a regular file (it is {kind})")
    return info


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks; :class:`OSError` propagates for the caller to word.

    Only a regular file is read: a FIFO or a device (which would block, or never end) raises OSError at once.
    """
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:
        kind = special_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(errno.EINVAL, f"not a regular file (it is {kind})", os.fspath(path))
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

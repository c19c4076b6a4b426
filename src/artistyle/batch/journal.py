"""The batch journal, ``OUTDIR/batch.jsonl``: one JSON line per job attempt, appended as each ends.

Each line holds ``time`` (UTC, ISO 8601), ``content``, ``styles``, ``output`` (absolute paths, for people
to read), ``name`` (the output's name relative to OUTDIR), ``status`` (``ok``, ``failed`` or ``skipped``),
``error`` (one line, or null), ``seconds``, ``seed``, ``device``, ``settings`` (the job's settings that
differ from the defaults), ``settings_hash`` and ``worker`` (``local:<pid>``). A line is written, flushed
and fsynced before the next job starts, so a driver killed at any moment loses at most the jobs that
were running; a line cut short by such a kill is ignored when the journal is read, and the next line
starts on a line of its own.

:func:`settings_hash` is the job's picture key (:func:`artistyle.picture.picture_key`): its settings that
change the picture and differ from the defaults (not ``device`` nor ``max_memory``, which decide where and
how it runs), its seed, the SHA-256 of its content and style files and of every file a setting names (an
init image, masks, a fine style, weights), and the output's format; a video job's also names the later
frames' settings. No path and no modification time goes in, so it is the same for the same job wherever
its files are.

A job is skipped when its output exists and the journal's last ``ok`` line for that output's NAME in
OUTDIR (not its absolute path: a batch folder moved or copied elsewhere is continued) has the job's key,
or the key 0.5 wrote (:func:`legacy_settings_hash`; lines without ``name`` are matched by their output's
place in the journal's folder, else its file name) (:meth:`Journal.is_done`).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..config import DEFAULT_CONTENT_WEIGHT, StyleConfig
from ..errors import FileError
from ..files import file_sha256, short_reason, special_kind
from ..jsontext import JSONTextError, parse_json
from ..picture import file_values, legacy_config_dict, picture_key, picture_settings
from .jobs import Job

__all__ = ["JOURNAL_NAME", "Journal", "earlier_outputs", "legacy_settings_hash", "settings_hash"]

JOURNAL_NAME = "batch.jsonl"
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # the journal is opened without following a link (where the system can)
# Settings that change where or how a job runs, not the picture it paints.
UNHASHED = ("device", "max_memory")


class Digests:
    """SHA-256 of input files, each read once per (path, size, modification time)."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: str | os.PathLike[str]) -> str | None:
        """The file's SHA-256, or None when it cannot be read (the job then fails on it, with the reason)."""
        try:
            stat = os.stat(path)
            key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
            if key not in self.known:
                self.known[key] = file_sha256(path)
            return self.known[key]
        except OSError:
            return None


def settings_hash(job: Job, digests: Digests | None = None) -> str:
    """The job's picture key (see the module)."""
    digest = digests or Digests()
    extra: dict[str, Any] = {"format": job.output.suffix.lower()}
    if job.is_video:  # the later frames' settings: e.g. a given content weight is theirs too, a fast start's not
        from ..video.settings import VideoSettings, later_frames_config

        extra["later"] = picture_settings(later_frames_config(job.config, VideoSettings()), digest)
    return picture_key(
        settings=picture_settings(job.config, digest), seed=job.config.seed,
        inputs={"content": digest(job.content), "styles": [digest(s) for s in job.styles]}, extra=extra)


def legacy_settings_hash(job: Job, digests: Digests | None = None) -> str:
    """The settings hash 0.5 wrote for this job (its journal lines keep working where they were written).

    0.5 hashed its config after the fast start's schedule was applied (``resolved()`` now), its fields only
    (:data:`~artistyle.picture.FIELDS_0_5`) less ``device`` and ``max_memory``, with ``later_content_weight``
    for a fast start's job without a content weight, files named by settings as their SHA-256, the content's
    and styles' SHA-256 and the output's format.
    """
    digest = digests or Digests()
    resolved = job.config.resolved()
    settings = legacy_config_dict(resolved, UNHASHED)
    if job.config.content_weight is None and resolved.content_weight != DEFAULT_CONTENT_WEIGHT:
        # A fast start's raised weight: a clip's later frames keep the default (0.5 recorded it so).
        settings["later_content_weight"] = DEFAULT_CONTENT_WEIGHT
    for setting in StyleConfig.settings():
        if setting.path and setting.name in settings:
            settings[setting.name] = file_values(settings[setting.name], setting, digest)
    record = {
        "settings": settings,
        "content": digest(job.content),
        "styles": [digest(s) for s in job.styles],
        "format": job.output.suffix.lower(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def earlier_outputs(outdir: str | os.PathLike[str]) -> set[str]:
    """The outputs earlier batches wrote into ``outdir`` (:meth:`Journal.outputs`; none without a journal), for
    :func:`~.jobs.product_jobs` to leave out of a contents folder that is OUTDIR itself."""
    return Journal(Path(outdir)).outputs()


class Journal:
    """``OUTDIR/batch.jsonl``: read once when opened, then appended to, one line per job attempt."""

    def __init__(self, outdir: Path):
        self.outdir = Path(outdir).absolute()
        self.path = self.outdir / JOURNAL_NAME
        self.records: list[dict[str, Any]] = []
        self.damaged = 0  # lines that could not be read (a kill during a write leaves at most one)
        self._last_ok: dict[str, dict[str, Any]] = {}
        for record in self._read():
            self._note(record)

    def _read(self) -> Iterator[dict[str, Any]]:
        try:
            self._check(os.lstat(self.path).st_mode)
            fd = os.open(self.path, os.O_RDONLY | NOFOLLOW | getattr(os, "O_BINARY", 0))
            with open(fd, "rb") as fh:
                text = fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise FileError(f"journal '{self.path}' cannot be read ({short_reason(exc)})") from None
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                record = parse_json(line)
            except JSONTextError:  # cut short by a kill, or damaged otherwise (even nested 100,000 deep)
                self.damaged += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("output"), str):
                yield record
            else:
                self.damaged += 1

    def _note(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if record.get("status") == "ok":
            name = record.get("name")
            self._last_ok[os.path.normcase(name if isinstance(name, str) else self.name_of(record["output"]))] = record

    def name_of(self, output: str | os.PathLike[str]) -> str:
        """The output's name in OUTDIR (relative, with ``/``), or its file name where it is outside."""
        path = Path(os.path.abspath(output))
        try:
            return path.relative_to(self.outdir).as_posix()
        except ValueError:
            return path.name

    def outputs(self) -> set[str]:
        """The files this journal says were written (``ok``) or found done (``skipped``), as
        ``os.path.normcase(os.path.abspath(path))`` in OUTDIR."""
        return {os.path.normcase(os.path.abspath(self.outdir / (record["name"] if isinstance(record.get("name"), str)
                                                               else self.name_of(record["output"]))))
                for record in self.records if record.get("status") in ("ok", "skipped")}

    def last_ok(self, output: Path) -> dict[str, Any] | None:
        """The last ``ok`` line of this output (by its name in OUTDIR), if any."""
        return self._last_ok.get(os.path.normcase(self.name_of(output)))

    def is_done(self, job: Job, *settings_hashes: str | Callable[[], str]) -> bool:
        """Whether the job's output exists and its last ``ok`` line has one of these keys (a callable: a key
        computed only when the line's is no earlier one's, such as :func:`legacy_settings_hash`)."""
        record = self.last_ok(job.output)
        if record is None or not job.output.is_file():
            return False
        written = record.get("settings_hash")
        return any(written == (key() if callable(key) else key) for key in settings_hashes)

    def _check(self, mode: int) -> None:
        """Refuse a journal that is a link (never written through: it could name any file), a folder, a FIFO..."""
        if stat.S_ISLNK(mode):
            raise FileError(f"journal '{self.path}' is a link; remove it (the journal is never written through a "
                            "link, which could name any file)")
        kind = special_kind(mode)
        if kind == "a folder":
            raise FileError(f"journal '{self.path}' is a folder")
        if kind is not None:
            raise FileError(f"journal '{self.path}' is not a regular file (it is {kind})")

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one line: appended, flushed and fsynced. A line a kill cut short is ended first.

        Opened without following a link (O_NOFOLLOW), so a link put in the journal's place meanwhile is refused
        rather than written through."""
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "name": self.name_of(record["output"]), **record})
        data = line.encode() + b"\n"
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
        try:
            try:
                fd = os.open(self.path, flags | getattr(os, "O_BINARY", 0), 0o666)
            except OSError:
                self._check(os.lstat(self.path).st_mode)  # a link: ELOOP; say what it is
                raise
            try:
                info = os.fstat(fd)
                self._check(info.st_mode)
                if info.st_size > 0:
                    os.lseek(fd, -1, os.SEEK_END)
                    if os.read(fd, 1) != b"\n":  # a line a kill cut short: ended first
                        data = b"\n" + data
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise FileError(f"journal '{self.path}' cannot be written ({short_reason(exc)})") from None
        self._note(json.loads(line))

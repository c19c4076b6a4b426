"""The batch journal, ``OUTDIR/batch.jsonl``: one JSON line per job attempt, appended as each ends.

Each line holds ``time`` (UTC, ISO 8601), ``content``, ``styles``, ``output`` (absolute paths),
``status`` (``ok``, ``failed`` or ``skipped``), ``error`` (one line, or null), ``seconds``, ``seed``,
``device``, ``settings`` (the job's settings that differ from the defaults), ``settings_hash`` and
``worker`` (``local:<pid>``). A line is written, flushed and fsynced before the next job starts, so
a driver killed at any moment loses at most the jobs that were running; a line cut short by such a
kill is ignored when the journal is read, and the next line starts on a line of its own.

:func:`settings_hash` is the SHA-256 of everything that decides what a job paints: its settings
(all but ``device`` and ``max_memory``, which decide where and how it runs), the SHA-256 of its
content and style files and of every file a setting names (an init image, masks, a fine style,
weights), and the output's format. It is the same in every run for the same job. A video job is
hashed the same way: its content's SHA-256 is the clip's, and its format the video's extension.

A job is skipped when its output exists and the journal's last ``ok`` line for that output has the
job's settings hash (:meth:`Journal.is_done`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..config import DEFAULT_CONTENT_WEIGHT, StyleConfig
from ..errors import FileError
from ..files import file_sha256, short_reason
from .jobs import Job

__all__ = ["JOURNAL_NAME", "Journal", "settings_hash"]

JOURNAL_NAME = "batch.jsonl"
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
    """The SHA-256 (hex) of what decides the job's picture (see the module)."""
    digest = digests or Digests()
    resolved = job.config.resolved()
    settings = {k: v for k, v in resolved.to_dict().items() if k not in UNHASHED}
    if job.config.content_weight is None and resolved.content_weight != DEFAULT_CONTENT_WEIGHT:
        # A fast start's raised weight: a clip's later frames keep the default (0.5 recorded it so).
        settings["later_content_weight"] = DEFAULT_CONTENT_WEIGHT
    for setting in StyleConfig.settings():
        value = settings.get(setting.name)
        if setting.path and value is not None:
            names = value if isinstance(value, list) else [value]
            files = [v if v in setting.choices else digest(v) for v in names]
            settings[setting.name] = files if isinstance(value, list) else files[0]
    record = {
        "settings": settings,
        "content": digest(job.content),
        "styles": [digest(s) for s in job.styles],
        "format": job.output.suffix.lower(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


class Journal:
    """``OUTDIR/batch.jsonl``: read once when opened, then appended to, one line per job attempt."""

    def __init__(self, outdir: Path):
        self.path = outdir / JOURNAL_NAME
        self.records: list[dict[str, Any]] = []
        self.damaged = 0  # lines that could not be read (a kill during a write leaves at most one)
        self._last_ok: dict[str, dict[str, Any]] = {}
        for record in self._read():
            self._note(record)

    def _read(self) -> Iterator[dict[str, Any]]:
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise FileError(f"journal '{self.path}' cannot be read ({short_reason(exc)})") from None
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                self.damaged += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("output"), str):
                yield record
            else:
                self.damaged += 1

    def _note(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if record.get("status") == "ok":
            self._last_ok[os.path.normcase(record["output"])] = record

    def last_ok(self, output: Path) -> dict[str, Any] | None:
        """The last ``ok`` line of this output, if any."""
        return self._last_ok.get(os.path.normcase(str(output.absolute())))

    def is_done(self, job: Job, settings_hash: str) -> bool:
        """Whether the job's output exists and its last ``ok`` line has this settings hash."""
        record = self.last_ok(job.output)
        return record is not None and record.get("settings_hash") == settings_hash and job.output.is_file()

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one line: appended, flushed and fsynced. A line a kill cut short is ended first."""
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **record})
        try:
            with open(self.path, "ab") as fh:
                if fh.tell() > 0 and not self._ends_with_newline():
                    fh.write(b"\n")
                fh.write(line.encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise FileError(f"journal '{self.path}' cannot be written ({short_reason(exc)})") from None
        self._note(json.loads(line))

    def _ends_with_newline(self) -> bool:
        with contextlib.suppress(OSError), open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"
        return True

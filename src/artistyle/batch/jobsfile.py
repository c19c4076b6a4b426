"""Jobs files: one job per row of a CSV file or per line of a JSON-lines file.

CSV (``.csv``, or any file whose first character is not ``{``) has a header row naming its columns:

* ``content`` (required): the photo, or a clip (a video job, see :mod:`.clips`);
* ``style`` or ``styles`` (required): one style image, or several separated by ``;`` (blended);
* ``output`` (optional): the output's file name in OUTDIR (``.png`` added when it has no extension;
  for a video content a video extension, ``.mp4`` ``.mov`` ``.webm`` or ``.gif``, the clip's default
  added when it has none);
* any setting of :class:`~artistyle.StyleConfig` by name, with ``_`` or ``-`` (``size``,
  ``style_weight``, ``style-weight``); an empty cell leaves the batch's value. Lists are written as
  on the command line: ``conv1_1,conv2_1``, ``0.7 0.3``; booleans ``true``/``false``.

JSON lines (``.jsonl``, ``.ndjson``, ``.json``, or a file starting with ``{``): one object per line
with the same keys; ``style`` may be a string or a list, ``styles`` a list, and the settings may also
sit in a ``"settings"`` object. Values have their JSON types (numbers, lists, true/false).

Blank lines and CSV rows starting with ``#`` are skipped. Relative paths (images, and settings that
name files: ``init``, ``mask``, ``fine_style``, ``weights``) are relative to the jobs file's folder.
Every setting is checked as :meth:`StyleConfig.from_mapping` checks the studio's settings, so the
messages are the command line's; a bad row raises :class:`UsageError` naming the file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..config import Setting, StyleConfig
from ..errors import UsageError
from ..files import check_regular_file
from ..images.encode import SAVE_FORMATS
from ..jsontext import JSONTextError, parse_json
from .jobs import JobSpec, default_suffix, is_video

__all__ = ["STYLE_SEPARATOR", "read_jobs_file"]

STYLE_SEPARATOR = ";"
COLUMNS = ("content", "style", "styles", "output", "settings")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def read_jobs_file(path: str | Path) -> list[JobSpec]:
    """The jobs of a CSV or JSON-lines jobs file (see the module); UsageError with one line for a bad row."""
    path = Path(path)
    check_regular_file(path, f"jobs file '{path}'", error=UsageError)  # a FIFO or /dev/zero would never end
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"jobs file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"jobs file '{path}' cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    rows = json_rows(text, path) if is_json_lines(path, text) else csv_rows(text, path)
    specs = [spec_of(row, path, line) for line, row in rows]
    if not specs:
        raise UsageError(f"jobs file '{path}' has no jobs")
    return specs


def is_json_lines(path: Path, text: str) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    return path.suffix.lower() != ".csv" and text.lstrip().startswith("{")


def json_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = parse_json(line)
        except JSONTextError as exc:
            raise UsageError(f"{path.name} line {number}: {exc}") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path.name} line {number}: expected a JSON object, not {type(row).__name__}")
        settings = row.pop("settings", {})
        if not isinstance(settings, dict):
            raise UsageError(f"{path.name} line {number}: \"settings\" must be a JSON object")
        yield number, {**row, **settings}


def csv_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    by_name = {s.name: s for s in StyleConfig.settings()}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [setting_name(cell) for cell in row]
                for name in header:
                    if name not in COLUMNS and name not in by_name:
                        raise UsageError(f"{path.name} line {line}: unknown column '{name}'; use content, style or "
                                         "styles, output, and setting names such as size or style_weight")
                continue
            if len(row) > len(header):
                raise UsageError(f"{path.name} line {line}: {len(row)} cells for {len(header)} columns")
            values: dict[str, Any] = {}
            for name, cell in zip(header, row):
                if not cell.strip():
                    continue
                if name in ("style", "styles"):
                    values[name] = [s.strip() for s in cell.split(STYLE_SEPARATOR) if s.strip()]
                elif name in by_name:
                    values[name] = cell_value(by_name[name], cell.strip())
                else:
                    values[name] = cell.strip()
            yield line, values
    except csv.Error as exc:
        raise UsageError(f"{path.name} line {reader.line_num}: {exc}") from None


def setting_name(key: str) -> str:
    """A column or key as a StyleConfig field name: ``style-weight`` and ``--mask`` as ``style_weight``, ``masks``."""
    name = key.strip().lstrip("-").replace("-", "_")
    flags = {s.option.lstrip("-").replace("-", "_"): s.name for s in StyleConfig.settings()}
    return flags.get(name, name)


def cell_value(setting: Setting, text: str) -> Any:
    """A CSV cell as the JSON value :meth:`StyleConfig.from_mapping` reads (left as text where it is no number)."""
    if setting.kind is bool:
        lowered = text.lower()
        return True if lowered in TRUE else False if lowered in FALSE else text
    if setting.many or setting.one_or_many:
        parts = [p for p in text.replace(",", " ").split() if p]
        values = [one_value(setting, p) for p in parts]
        return values[0] if setting.one_or_many and len(values) == 1 else values
    return one_value(setting, text)


def one_value(setting: Setting, text: str) -> Any:
    if setting.kind in (int, float):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
    return text


def spec_of(row: Mapping[str, Any], path: Path, line: int) -> JobSpec:
    """One job of the file, its settings checked (UsageError "FILE line N: ...")."""
    where = f"{path.name} line {line}"
    folder = path.parent
    for key, value in row.items():
        check_text(value, where, key)
    content = row.get("content")
    if not isinstance(content, str) or not content.strip():
        raise UsageError(f"{where}: no content image")
    styles = styles_of(row, where)
    for style in styles:
        if is_video(Path(style)):
            raise UsageError(f"{where}: style '{style}' is a video; a style is a still image")
    output = row.get("output")
    if output is not None:
        output = output_name(output, where, within(folder, content))
    given = {setting_name(k): v for k, v in row.items() if k not in COLUMNS}
    try:
        read = StyleConfig.from_mapping(given)  # the command line's checks and messages
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    settings = {name: getattr(read, name) for name in given}
    described = {s.name: s for s in StyleConfig.settings()}
    for name, value in settings.items():
        setting = described[name]
        if setting.path and value is not None:
            settings[name] = relative_to(folder, value, setting.choices)
    return JobSpec(within(folder, content), tuple(within(folder, s) for s in styles), output, settings, where)


def check_text(value: Any, where: str, key: str) -> None:
    """Refuse a NUL character or an unpaired surrogate (JSON's ``\\ud800``) in a value: no file can be named so."""
    for text in value if isinstance(value, list) else [value]:
        if not isinstance(text, str):
            continue
        if "\0" in text:
            raise UsageError(f"{where}: {key} holds a NUL character, which no file name can")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(f"{where}: {key} holds an unpaired surrogate ({ascii(exc.object[exc.start])[1:-1]}); "
                             "a name must be valid Unicode") from None


def styles_of(row: Mapping[str, Any], where: str) -> list[str]:
    if "style" in row and "styles" in row:
        raise UsageError(f"{where}: give style or styles, not both")
    value = row.get("style", row.get("styles"))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
        raise UsageError(f"{where}: no style image (style: a file name; styles: a list of them)")
    return [s.strip() for s in value]


def output_name(value: Any, where: str, content: Path) -> str:
    """An output file name in OUTDIR: no folders, an image extension (``.png`` when it has none), or for a clip
    a video extension encode_video writes (the clip's default when it has none)."""
    from ..video.extra import OUTPUT_SUFFIXES  # standard library only: checked with or without PyAV

    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: output must be a file name")
    name = value.strip()
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise UsageError(f"{where}: output '{name}' must be a plain file name in OUTDIR (no folders, not hidden)")
    suffix = Path(name).suffix.lower()
    if not suffix:
        return name + default_suffix(content)
    if is_video(content):
        if suffix not in OUTPUT_SUFFIXES:
            raise UsageError(f"{where}: output '{name}': cannot write '{Path(name).suffix}' video (use "
                             f"{', '.join(OUTPUT_SUFFIXES)})")
    elif suffix not in SAVE_FORMATS:
        raise UsageError(f"{where}: output '{name}' has an unsupported extension; use one of "
                         f"{', '.join(SAVE_FORMATS)}")
    return name


def within(folder: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else folder / path


def relative_to(folder: Path, value: Any, choices: tuple[str, ...]) -> Any:
    """A path setting's value with relative file names made relative to ``folder`` (names in ``choices`` kept)."""
    if isinstance(value, tuple):
        return tuple(relative_to(folder, v, choices) for v in value)
    if isinstance(value, str) and value not in choices:
        return str(within(folder, value))
    return value

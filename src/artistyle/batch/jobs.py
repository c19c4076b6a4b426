"""The job list of a batch: which content is painted with which style(s), into which file.

CONTENTS and STYLES are each a file, a folder (its images, in natural name order: ``img2`` before
``img10``) or a glob (``'photos/*.jpg'``, quoted so the shell leaves it alone). Every content is
painted with every style (:func:`product_jobs`), or the two lists are paired in order
(``pairs=True``). A jobs file (:mod:`.jobsfile`) gives each job its own styles, output name and
settings.

Outputs are ``OUTDIR/<content stem>__<style stem>.png`` (several styles joined with ``+``). Names
are given in job order; a name already taken by an earlier job, or one that is an input file, gets
``__2``, ``__3``, ... before its extension, so the same job list always gets the same names.

A video file (:data:`VIDEO_SUFFIXES`) in a CONTENTS folder or glob, or given as the content, is a
video job (:attr:`Job.is_video`, painted by :mod:`.clips`): its output is
``<content stem>__<style stem>`` with the clip's own extension where the encoder writes it (.mp4,
.mov, .webm), else ``.mp4``. A video in a STYLES folder or glob is left out (a style is a still image); one
given as STYLES itself, or as a jobs file's style, is refused. An animated GIF stays an image: the first frame
is painted, as by the painting command.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import StyleConfig
from ..errors import UsageError
from ..files import same_file
from ..images.decode import IMAGE_SUFFIXES

__all__ = ["VIDEO_SUFFIXES", "Job", "JobSpec", "default_suffix", "expand_inputs", "is_video", "make_jobs",
           "natural_key", "product_jobs"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")
# The clip extensions a video job's output keeps (what encode_video writes but GIF, which is no content here).
KEPT_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Job:
    """One painting: a content, its style image(s), the output file and the job's own settings."""

    content: Path
    styles: tuple[Path, ...]
    output: Path
    config: StyleConfig
    source: str = ""  # where the job was given, for messages: "jobs.csv line 4"

    @property
    def is_video(self) -> bool:
        """Whether the content is a clip: painted frame by frame into a video (see :mod:`.clips`)."""
        return is_video(self.content)

    @property
    def name(self) -> str:
        """The output's file name: the job's name in messages, the journal and the contact sheet."""
        return self.output.name

    def settings(self) -> dict[str, Any]:
        """The job's settings that differ from the defaults, JSON-ready (its label on the contact sheet)."""
        defaults = StyleConfig().to_dict()
        return {k: v for k, v in self.config.to_dict().items() if v != defaults[k]}


@dataclass(frozen=True)
class JobSpec:
    """A job before it has a checked config and an output path (what the lists and the jobs file give)."""

    content: Path
    styles: tuple[Path, ...]
    output: str | None = None  # a file name in OUTDIR; default <content>__<styles>.png (or a video's suffix)
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # typed, as StyleConfig holds them
    source: str = ""


def natural_key(path: Path) -> tuple[Any, ...]:
    """Sort key: names compared with their digit runs as numbers (``img2`` before ``img10``)."""
    parts = re.split(r"(\d+)", path.name.casefold())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts), str(path)


def expand_inputs(spec: str, role: str, *, videos: bool, exclude: Collection[str] = ()) -> list[Path]:
    """The files ``spec`` names: a file as given, a folder's images, or a glob's image files.

    ``videos``: also keep video files (the contents; they become video jobs). ``role`` is
    "content" or "style", for messages. ``exclude``: files a folder or glob leaves out, as
    ``os.path.normcase(os.path.abspath(path))`` (the outputs an earlier batch wrote into the
    folder: :func:`~.journal.earlier_outputs`). Raises :class:`UsageError` with one line for a
    missing path, an empty folder, a folder or glob with no images.
    """
    suffixes = IMAGE_SUFFIXES + (VIDEO_SUFFIXES if videos else ())
    kinds = "images or videos" if videos else "images"
    path = Path(spec)

    def kept(candidates: Iterable[Path]) -> list[Path]:
        return [p for p in candidates if p.suffix.lower() in suffixes and p.is_file()
                and os.path.normcase(os.path.abspath(p)) not in exclude]

    outputs = " (besides the outputs of an earlier batch there)" if exclude else ""
    if path.is_dir():
        entries = list(path.iterdir())
        if not entries:
            raise UsageError(f"{role} folder '{spec}' is empty")
        found = kept(entries)
        if not found:
            raise UsageError(f"{role} folder '{spec}' has no {kinds} ({', '.join(suffixes)}){outputs}")
        return sorted(found, key=natural_key)
    if path.is_file():
        if not videos and is_video(path):  # a folder or glob leaves videos out; one named alone is a mistake
            raise UsageError(f"{role} '{spec}' is a video; a {role} is a still image (videos in a {role} folder or "
                             "glob are left out)")
        return [path]
    if GLOB_CHARACTERS.search(spec):
        matches = [Path(p) for p in glob.glob(spec, recursive=True)]
        found = kept(matches)
        if not found:
            what = "no file" if not matches else f"no {kinds}{outputs}"
            raise UsageError(f"{role} pattern '{spec}' matches {what}")
        return sorted(found, key=natural_key)
    if path.exists():
        raise UsageError(f"{role} '{spec}' is neither a file nor a folder")
    raise UsageError(f"{role} '{spec}' does not exist")


def product_jobs(contents: str, styles: str, *, pairs: bool = False, exclude: Collection[str] = ()) -> list[JobSpec]:
    """Every content with every style (contents outermost), or with ``pairs`` the two lists in order.

    ``exclude``: files that folders and globs leave out (:func:`expand_inputs`), such as the outputs an earlier
    batch wrote into OUTDIR when OUTDIR is also the contents folder: a rerun skips those jobs instead of
    painting the outputs as new contents and the old jobs again under ``__2`` names."""
    content_files = expand_inputs(contents, "content", videos=True, exclude=exclude)
    style_files = expand_inputs(styles, "style", videos=False, exclude=exclude)
    if pairs:
        if len(content_files) != len(style_files):
            raise UsageError(f"--zip pairs contents with styles in order, but there are {len(content_files)} "
                             f"contents and {len(style_files)} styles")
        return [JobSpec(c, (s,)) for c, s in zip(content_files, style_files)]
    return [JobSpec(c, (s,)) for c in content_files for s in style_files]


def is_video(path: Path) -> bool:
    """Whether ``path`` names a clip (by its extension, as the folders and globs are filtered)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def default_suffix(content: Path) -> str:
    """A job's output extension: ``.png``, or a clip's own where it can be written, else ``.mp4``."""
    if not is_video(content):
        return ".png"
    suffix = content.suffix.lower()
    return suffix if suffix in KEPT_VIDEO_SUFFIXES else ".mp4"


def make_jobs(specs: Sequence[JobSpec], outdir: Path, config: StyleConfig, device_type: str = "cpu") -> list[Job]:
    """The jobs of ``specs``: each with its checked config (``config`` with its own settings) and output path.

    Checks every job's settings for its number of styles on ``device_type`` (:meth:`StyleConfig.check`);
    a bad one raises :class:`UsageError` naming the job's source. Explicit output names must be unique
    and not inputs; the others are named as the module says. ``config`` holds the settings the user gave for
    all jobs, each job's own settings go over them, and the library resolves the rest when the job is painted
    (:meth:`StyleConfig.resolved`), so a jobs file's ``steps`` turns a fast start's schedule off for its row.
    """
    outdir = outdir.absolute()
    inputs = inputs_in(outdir, [p for spec in specs for p in (spec.content, *spec.styles)])
    reserved: set[str] = set()
    for spec in specs:
        if spec.output is not None:
            key = os.path.normcase(spec.output)
            if key in reserved:
                raise UsageError(f"{spec.source}: output '{spec.output}' is given to two jobs")
            reserved.add(key)
            if is_input(outdir / spec.output, inputs):
                raise UsageError(f"{spec.source}: output '{spec.output}' is an input file; refusing to overwrite it")
    jobs = []
    for spec in specs:
        job_config = checked_config(spec, config, device_type)
        name = spec.output if spec.output is not None else free_name(spec, outdir, reserved, inputs)
        reserved.add(os.path.normcase(name))
        jobs.append(Job(spec.content, spec.styles, outdir / name, job_config, spec.source))
    return jobs


def checked_config(spec: JobSpec, config: StyleConfig, device_type: str) -> StyleConfig:
    """``config`` with the job's settings, validated and checked for its styles (UsageError naming the job)."""
    try:
        job_config = dataclasses.replace(config, **spec.settings).validate() if spec.settings else config
        job_config.check(len(spec.styles), device_type)
    except UsageError as exc:
        raise UsageError(f"{spec.source}: {exc}" if spec.source else str(exc)) from None
    return job_config


def default_name(spec: JobSpec) -> str:
    return f"{spec.content.stem}__{'+'.join(s.stem for s in spec.styles)}"


def free_name(spec: JobSpec, outdir: Path, taken: set[str], inputs: Iterable[Path]) -> str:
    """``<content>__<styles>.png`` (a video's suffix for a clip), or with ``__2``, ``__3``, ... when taken or an
    input file."""
    stem, suffix = default_name(spec), default_suffix(spec.content)
    name, number = f"{stem}{suffix}", 1
    while os.path.normcase(name) in taken or is_input(outdir / name, inputs):
        number += 1
        name = f"{stem}__{number}{suffix}"
    return name


def inputs_in(outdir: Path, inputs: Iterable[Path]) -> list[Path]:
    """The inputs that lie in ``outdir`` (the only ones an output name can hit), each once."""
    folders: dict[Path, bool] = {}
    found: dict[str, Path] = {}
    for path in inputs:
        if path.parent not in folders:
            folders[path.parent] = same_file(path.parent, outdir)
        if folders[path.parent]:
            found.setdefault(os.path.normcase(os.path.abspath(path)), path)
    return list(found.values())


def is_input(path: Path, inputs: Iterable[Path]) -> bool:
    return any(same_file(path, other) for other in inputs)

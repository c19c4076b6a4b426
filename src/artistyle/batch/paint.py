"""One job painted where a worker runs it, its picture returned as bytes for the driver to write.

The pool and Ray executors (:mod:`.pool`, :mod:`.ray_executor`) run :func:`paint_job` in worker
processes: it paints the job through :class:`artistyle.NST` exactly as :class:`~.run.LocalExecutor`
does, and returns a :class:`Painted`, the job's :class:`~.run.JobResult` and its output encoded
(:func:`artistyle.images.encode_image`, the bytes :func:`~artistyle.images.save_image` would
write). The executor's driver side then writes those bytes atomically (:func:`write_output`), so

* an output appears only once its job has ended well, never from a worker that was stopped,
  killed or lost with its node (a retried job cannot leave a half-written or doubly written file);
* OUTDIR needs to be reachable from the driver only, not from every worker node.

Inputs may travel as bytes (:func:`read_inputs`, read by the driver): the worker writes them into
a private temporary folder under their own file names and paints from there, so decoding is the
very code a local run uses; messages name the driver's paths, not the temporary ones.

A video job (:mod:`.clips`) is painted the same way. From bytes (Ray) its frames go to the private
temporary folder and the encoded video comes back as bytes. From paths (``--workers``, this machine)
its frames go to the work folder in OUTDIR, so a stopped batch resumes the clip, and the video is
encoded there: the :class:`Painted` names that file, and the driver renames it into place (one
file system, so as atomic as writing bytes, without sending a video through a pipe).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import StyleConfig
from ..files import atomic_write, check_writable, short_reason
from .jobs import Job
from .run import JobResult, failure, release_memory

__all__ = ["KEPT_ON_NODES", "Painted", "cpu_count", "input_paths", "paint_job", "read_inputs", "shipped_files",
           "write_output"]

# Settings naming a file that travels with the job; ``weights`` (a large file) must exist on every node.
# Every setting naming a file travels with the job, but ``weights`` (a large file): it must exist on every node.
KEPT_ON_NODES = ("weights",)


def shipped_files(config: StyleConfig) -> dict[str, list[str]]:
    """The file names the config's path settings hold (a named choice such as ``init=noise`` is not a file)."""
    found: dict[str, list[str]] = {}
    for setting in StyleConfig.settings():
        value = getattr(config, setting.name)
        if not setting.path or setting.name in KEPT_ON_NODES or value is None:
            continue
        values = list(value) if isinstance(value, tuple) else [value]
        found[setting.name] = [str(v) for v in values if v not in setting.choices]
    return found


@dataclass(frozen=True)
class Painted:
    """A job painted by a worker: its result and, when ``ok``, the output file's bytes."""

    result: JobResult
    data: bytes | None = None
    stopped: bool = False  # ended by a stop request (the driver fills in its reason)
    file: Path | None = None  # or the encoded output in the job's work folder (a video painted on this machine)


def input_paths(job: Job) -> list[Path]:
    """Every file the job reads and that travels with it: content, styles, files named by shipped settings."""
    return [job.content, *job.styles, *(Path(v) for names in shipped_files(job.config).values() for v in names)]


def read_inputs(job: Job) -> dict[str, bytes]:
    """The bytes of every file the job reads, by path (an unreadable file is left out: the job fails on it)."""
    found: dict[str, bytes] = {}
    for path in input_paths(job):
        with contextlib.suppress(OSError):
            found[str(path)] = path.read_bytes()
    return found


def unpacked(job: Job, inputs: Mapping[str, bytes], folder: Path) -> tuple[Job, dict[str, str]]:
    """The job reading ``inputs`` written under ``folder``; with the map from temporary to original paths."""
    renamed: dict[str, str] = {}
    for index, (original, data) in enumerate(inputs.items()):
        place = folder / str(index) / Path(original).name
        place.parent.mkdir()
        place.write_bytes(data)
        renamed[original] = str(place)

    def moved(path: str | Path) -> str:
        return renamed.get(str(path), str(path))  # a file not sent stays as named: the job fails on it as locally

    changes: dict[str, object] = {}
    for name in shipped_files(job.config):
        value = getattr(job.config, name)
        changes[name] = tuple(moved(v) for v in value) if isinstance(value, tuple) else moved(value)
    config: StyleConfig = dataclasses.replace(job.config, **changes)  # type: ignore[arg-type]
    local = dataclasses.replace(job, content=Path(moved(job.content)), styles=tuple(Path(moved(s)) for s in job.styles),
                                config=config)
    return local, {new: old for old, new in renamed.items()}


def paint_job(
    job: Job, *, worker: str, inputs: Mapping[str, bytes] | None = None, device: str | None = None,
    on_progress: Callable[[float], object] | None = None, stopped: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
) -> Painted:
    """Paint ``job``; never raises for the job's own failures (they are its result).

    ``inputs``: the files' bytes (:func:`read_inputs`), else the job's paths are read here.
    ``device`` overrides the job's (a pool worker's own GPU). ``on_progress`` gets the fraction
    done after every iteration; ``stopped`` is asked after each and ends the job unwritten when true.
    """
    clock = clock or time.perf_counter
    started = clock()
    folder = Path(tempfile.mkdtemp(prefix="artistyle-job-")) if inputs is not None else None
    originals: dict[str, str] = {}
    seed: int | None = None
    used: str | None = None

    def ended(status: str, error: str | None = None, data: bytes | None = None, halted: bool = False,
              file: Path | None = None) -> Painted:
        if error is not None:
            for temporary, original in originals.items():
                error = error.replace(temporary, original)
        return Painted(JobResult(job, status, error, clock() - started, seed, used, worker), data, halted, file)

    try:
        local = job
        if folder is not None and inputs is not None:
            local, originals = unpacked(job, inputs, folder)
        if device is not None:
            local = dataclasses.replace(local, config=dataclasses.replace(local.config, device=device))
        if local.is_video:
            from .clips import ClipPainting, tidy, work_folder

            work = folder / "work" if folder is not None else work_folder(job.output)
            try:
                clip = ClipPainting(local, work, check_output=folder is None)
                seed, used = clip.seed, clip.device
                halted = False
                for fraction in clip:
                    if on_progress is not None:
                        on_progress(fraction)
                    if stopped is not None and not halted and stopped():
                        halted = True
                        clip.stop()
                if halted or (stopped is not None and stopped()):
                    tidy(work)  # the finished frames stay for the next run
                    return ended("failed", "interrupted", halted=True)
                encoded = clip.encode(work / job.output.name)
            except BaseException:
                tidy(work)
                raise
            if folder is not None:  # Ray: the bytes go back to the driver, the folder goes with the task
                return ended("ok", data=encoded.read_bytes())
            return ended("ok", file=encoded)
        from ..nst import NST

        nst = NST(local.config)  # the weights come from load_weights' per-process cache
        seed, used = nst.seed, str(nst.device)
        painting = nst.paint(str(local.content), [str(s) for s in local.styles])
        halted = False
        for event in painting:
            if on_progress is not None:
                on_progress(event.iteration / max(event.steps, 1))
            if stopped is not None and not halted and stopped():
                halted = True
                painting.stop()
        if halted or (stopped is not None and stopped()):
            return ended("failed", "interrupted", halted=True)
        data = painting.encode(job.output.suffix)  # with the settings record
        return ended("ok", data=data)
    except Exception as exc:  # the job's own failure: its result
        release_memory()
        return ended("failed", failure(exc))
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def write_output(painted: Painted) -> JobResult:
    """Write an ``ok`` job's bytes (or move its encoded video) to its output atomically, never over an input;
    a video job's work folder goes once its output is written. The result to record."""
    from ..images.encode import check_output_path
    from .clips import discard, work_folder

    result = painted.result
    if result.status != "ok" or (painted.data is None and painted.file is None):
        return result
    job = result.job
    data, file = painted.data, painted.file
    label, protect = f"output '{job.output}'", [job.content, *job.styles]
    try:
        if job.is_video:  # the extension was checked with the job; no PyAV needed here (a Ray driver)
            check_writable(job.output, label, protect=protect, probe=False)
        else:
            check_output_path(job.output, protect=protect, probe=False)
        if file is not None:
            os.replace(file, job.output)  # the work folder is in OUTDIR: one file system, an atomic rename
        elif data is not None:
            atomic_write(job.output, lambda fh: fh.write(data), label)
        if job.is_video:
            discard(work_folder(job.output))  # on Ray too: frames an earlier local run left are done with
    except Exception as exc:  # a full disk, a removed folder: this job fails, the batch goes on
        reason = short_reason(exc) if isinstance(exc, OSError) else failure(exc)
        return dataclasses.replace(result, status="failed", error=reason)
    return result


def cpu_count() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

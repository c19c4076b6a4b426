"""Running a batch: the executors that paint jobs, and :class:`Batch`, which skips, journals and reports.

An :class:`Executor` takes the jobs to paint and yields :class:`Update` s as they progress and end;
it writes each finished output itself (atomically, with :func:`artistyle.images.save_image`), so a
remote worker can write to a shared OUTDIR. :class:`LocalExecutor` paints the jobs one after
another in this process; the VGG-19 weights stay loaded between jobs (:func:`artistyle.load_weights`
caches them per process), so a job costs only its own images. A video job (:mod:`.clips`) is painted
frame by frame into its work folder in OUTDIR, then encoded; its fraction done is the clip's.

A failure stays with its job: an unreadable image, a NaN loss, running out of memory make that job
``failed`` with a one-line reason, and the batch goes on. :meth:`Batch.stop` (the driver's Ctrl-C)
ends the running job after its current iteration: its partial picture is not written and it is
recorded as ``failed`` with the reason given to ``stop`` ("interrupted"); finished outputs stay, and
the jobs not started are left for the next run (a clip's finished frames stay too, and the next run
continues it from there). The library never prints: progress goes to the ``on_event`` callback as
:class:`BatchProgress`.
"""

from __future__ import annotations

import functools
import gc
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ArtiStyleError
from ..files import check_writable
from .jobs import Job
from .journal import Digests, Journal, legacy_settings_hash, settings_hash

if TYPE_CHECKING:
    from ..painting import Painting
    from .clips import ClipPainting

__all__ = ["Batch", "BatchProgress", "BatchResult", "Executor", "JobResult", "LocalExecutor", "Update", "failure"]


@dataclass(frozen=True)
class JobResult:
    """How one job attempt ended: ``ok``, ``failed`` (with ``error``) or ``skipped``."""

    job: Job
    status: str
    error: str | None = None
    seconds: float = 0.0
    seed: int | None = None
    device: str | None = None
    worker: str = ""


@dataclass(frozen=True)
class Update:
    """An executor's news of a job: ``fraction`` of it done; ``result`` once it has ended."""

    job: Job
    fraction: float
    result: JobResult | None = None


class Executor(Protocol):
    """Paints jobs and reports them as they progress; :meth:`stop` ends the running ones without writing them."""

    def run(self, jobs: Sequence[Job]) -> Iterator[Update]: ...

    def stop(self, reason: str = "interrupted") -> None: ...


def failure(exc: BaseException) -> str:
    """A job's one-line failure reason for an exception."""
    if isinstance(exc, ArtiStyleError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory; try a smaller --size"
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "out of memory" in text.lower():
            text = "the device ran out of memory; try a smaller --size"
        else:
            text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return " ".join(text.split())


class LocalExecutor:
    """Jobs one after another in this process, on each job's configured device."""

    def __init__(self) -> None:
        self.worker = f"local:{os.getpid()}"
        self._stopped = threading.Event()
        self._reason = "interrupted"
        self._painting: Painting | ClipPainting | None = None

    def stop(self, reason: str = "interrupted") -> None:
        """End the running job after its current iteration (its picture is not written) and start no other."""
        self._reason = reason
        self._stopped.set()
        painting = self._painting
        if painting is not None:
            painting.stop()

    def run(self, jobs: Sequence[Job]) -> Iterator[Update]:
        for job in jobs:
            if self._stopped.is_set():
                return
            yield Update(job, 0.0)
            started = time.perf_counter()
            try:
                result = yield from self._paint(job, started)
            except KeyboardInterrupt:  # a caller that lets Ctrl-C raise: the job is recorded, then the stop goes on
                self._stopped.set()
                yield Update(job, 1.0, self._ended(job, "failed", "interrupted", started))
                raise
            except Exception as exc:  # the job's own failure: recorded, and the batch goes on
                result = self._ended(job, "failed", failure(exc), started)
                release_memory()
            finally:
                self._painting = None
            yield Update(job, 1.0, result)

    def _paint(self, job: Job, started: float) -> Generator[Update, None, JobResult]:
        if job.is_video:
            return (yield from self._paint_clip(job, started))
        from ..nst import NST

        nst = NST(job.config)  # the weights come from load_weights' per-process cache
        device = str(nst.device)
        painting = nst.paint(str(job.content), [str(s) for s in job.styles])
        self._painting = painting
        if self._stopped.is_set():
            painting.stop()
        for event in painting:
            yield Update(job, event.iteration / max(event.steps, 1))
        if self._stopped.is_set():  # stopped mid-run: the partial picture is not a finished output
            return self._ended(job, "failed", self._reason, started, nst.seed, device)
        painting.save(job.output, protect=[job.content, *job.styles])  # atomic, with the settings record
        return self._ended(job, "ok", None, started, nst.seed, device)

    def _paint_clip(self, job: Job, started: float) -> Generator[Update, None, JobResult]:
        """A video job: its frames into the work folder (resumed from), then the video encoded as its output."""
        from .clips import ClipPainting, discard, tidy, work_folder

        work = work_folder(job.output)
        clip = ClipPainting(job, work)
        self._painting = clip
        if self._stopped.is_set():
            clip.stop()
        try:
            for fraction in clip:
                yield Update(job, fraction)
        except BaseException:
            tidy(work)
            raise
        if self._stopped.is_set():  # the finished frames stay for the next run
            tidy(work)
            return self._ended(job, "failed", self._reason, started, clip.seed, clip.device)
        clip.encode(job.output)  # atomic, and never over an input
        discard(work)
        return self._ended(job, "ok", None, started, clip.seed, clip.device)

    def _ended(
        self, job: Job, status: str, error: str | None, started: float, seed: int | None = None,
        device: str | None = None,
    ) -> JobResult:
        return JobResult(job, status, error, time.perf_counter() - started, seed, device, self.worker)


def release_memory() -> None:
    """After a failed job: free what it held (its tensors, the GPU's cached blocks)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class BatchProgress:
    """The batch as the driver shows it: counts, the running jobs, the fraction done and an ETA."""

    total: int  # jobs in the batch
    to_run: int  # of those, the ones to paint in this run
    ok: int
    failed: int
    skipped: int
    running: tuple[str, ...]  # names of the running jobs
    done: float  # jobs painted in this run, the running ones in part
    elapsed: float
    eta: float | None  # seconds, from the pace so far
    result: JobResult | None = None  # the job that just ended


@dataclass
class BatchResult:
    """Every job's result in this run, in job order (None: not run, because the batch was stopped)."""

    jobs: list[Job]
    results: list[JobResult | None] = field(default_factory=list)
    stopped: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r is not None and r.status == status)

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r is not None and r.status == "failed"]

    @property
    def not_run(self) -> int:
        return sum(1 for r in self.results if r is None)


class Batch:
    """A list of jobs to paint into ``outdir``, skipping those already done (see :mod:`.journal`)."""

    def __init__(self, jobs: Sequence[Job], outdir: str | os.PathLike[str], *, executor: Executor | None = None,
                 force: bool = False):
        self.jobs = list(jobs)
        self.outdir = Path(outdir).absolute()
        self.executor: Executor = executor or LocalExecutor()
        self.force = force
        self._stopped = False

    def stop(self, reason: str = "interrupted") -> None:
        """Stop after the running job's current iteration; thread-safe, and safe from a signal handler."""
        self._stopped = True
        self.executor.stop(reason)

    def prepare(self) -> Journal:
        """Create OUTDIR if needed, check it takes files, open the journal (FileError / UsageError otherwise)."""
        from ..errors import UsageError

        if self.outdir.exists() and not self.outdir.is_dir():
            raise UsageError(f"output folder '{self.outdir}' is a file")
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"output folder '{self.outdir}' cannot be created ({exc.strerror or exc})") from None
        journal = Journal(self.outdir)
        check_writable(journal.path, f"journal '{journal.path}'")
        return journal

    def run(self, on_event: Callable[[BatchProgress], object] | None = None, journal: Journal | None = None,
            ) -> BatchResult:
        """Skip what is done, paint the rest, append a journal line as each job ends; never raises for a job."""
        journal = journal or self.prepare()
        digests = Digests()
        hashes = {id(job): settings_hash(job, digests) for job in self.jobs}
        outcome = BatchResult(self.jobs, [None] * len(self.jobs))
        index = {id(job): i for i, job in enumerate(self.jobs)}
        to_run = []
        for job in self.jobs:
            done = journal.last_ok(job.output) if not self.force else None
            if done is not None and journal.is_done(
                    job, hashes[id(job)], functools.partial(legacy_settings_hash, job, digests)):
                result = JobResult(job, "skipped", None, 0.0, done.get("seed"), done.get("device"))
            else:
                to_run.append(job)
                continue
            journal.append(record(result, hashes[id(job)]))
            outcome.results[index[id(job)]] = result
        started = time.perf_counter()
        running: dict[int, float] = {}
        finished = 0

        def report(result: JobResult | None) -> None:
            if on_event is None:
                return
            done = finished + sum(running.values())
            elapsed = time.perf_counter() - started
            eta = elapsed / done * (len(to_run) - done) if done > 0 else None
            names = tuple(j.name for j in self.jobs if id(j) in running)
            on_event(BatchProgress(len(self.jobs), len(to_run), outcome.count("ok"), outcome.count("failed"),
                                   outcome.count("skipped"), names, done, elapsed, eta, result))

        report(None)
        for update in self.executor.run(to_run):
            key = id(update.job)
            if update.result is None:
                running[key] = update.fraction
                report(None)
                continue
            running.pop(key, None)
            finished += 1
            journal.append(record(update.result, hashes[key]))
            outcome.results[index[key]] = update.result
            report(update.result)
        outcome.stopped = self._stopped
        return outcome


def record(result: JobResult, settings_hash: str | None) -> dict[str, Any]:
    """A job's journal line (see :mod:`.journal`)."""
    job = result.job
    return {
        "content": str(job.content.absolute()),
        "styles": [str(s.absolute()) for s in job.styles],
        "output": str(job.output.absolute()),
        "status": result.status,
        "error": result.error,
        "seconds": round(result.seconds, 3),
        "seed": result.seed,
        "device": result.device,
        "settings": job.settings(),
        "settings_hash": settings_hash,
        "worker": result.worker or f"local:{os.getpid()}",
    }

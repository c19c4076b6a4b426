"""``--workers N``: N jobs at once on this machine, each in a worker process of its own.

:class:`PoolExecutor` starts N worker processes ("spawn": a fresh interpreter, no state shared
with the driver but the job queue), each of which keeps VGG-19 loaded between its jobs
(:func:`artistyle.load_weights` caches it per process) and uses ``cpus // N`` torch threads, so
the workers share the CPUs instead of fighting over them. On a machine with several CUDA GPUs a
job meant for ``cuda`` runs on its worker's own GPU: worker ``i`` uses ``cuda:i`` (modulo the GPU
count), so ``--workers G`` on a box with G GPUs keeps every GPU busy.

Each worker has a pipe of its own: the driver sends it one job at a time, and it reports the job's
start, progress and end (:class:`~.paint.Painted`) on it. One pipe per worker, not shared queues,
because a worker killed in the middle of a message (``kill -9``, the out-of-memory killer) must only
break its own channel: on a shared queue it left a half message, or a held lock, that hung every
later read. The driver writes each ``ok`` job's bytes (:func:`~.paint.write_output`) and yields the
updates, so :class:`~.run.Batch` keeps the journal in the driver alone. :meth:`PoolExecutor.stop`
sets an event the workers check after every iteration: running jobs end unwritten, recorded with
the stop's reason, and no job starts after it. Workers ignore SIGINT (the terminal sends Ctrl-C to
the whole process group; the driver decides what it means), stop by themselves when the driver
process is gone (no orphans after ``kill -9``), and are terminated if they outlive the run. A worker
that dies (the kernel's out-of-memory killer, a crash) fails its job with the exit status, and a
new worker takes its place for the remaining jobs.

A video job (:mod:`.clips`) paints its frames into its work folder in OUTDIR (the workers share this
machine's disk), so a clip stopped or whose worker died goes on from its last finished frame in the
next run; the worker encodes the video there and the driver renames it into place.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any

from .jobs import Job
from .paint import Painted, cpu_count, paint_job, write_output
from .run import JobResult, Update

__all__ = ["PoolExecutor"]

POLL = 0.2  # seconds between looks at the workers' health while no news comes


class PoolExecutor:
    """Jobs ``workers`` at a time in worker processes on this machine (see the module)."""

    def __init__(self, workers: int, *, threads: int | None = None, gpus: int | None = None):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.threads = threads or max(1, cpu_count() // workers)
        self.gpus = gpus
        self._reason = "interrupted"
        self._stopped = threading.Event()
        self._event: Any = None

    def stop(self, reason: str = "interrupted") -> None:
        """End the running jobs after their current iteration, unwritten, and start no other (signal-safe)."""
        self._reason = reason
        self._stopped.set()
        event = self._event
        if event is not None:
            event.set()

    def gpu_count(self) -> int:
        if self.gpus is None:
            import torch

            self.gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return self.gpus

    def run(self, jobs: Sequence[Job]) -> Iterator[Update]:
        if not jobs or self._stopped.is_set():
            return
        context = multiprocessing.get_context("spawn")
        self._event = context.Event()
        if self._stopped.is_set():
            self._event.set()
        waiting = deque(range(len(jobs)))
        pending = set(range(len(jobs)))
        workers: dict[int, _Worker] = {}  # slot -> its process, its pipe and the job it paints

        def give(slot: int) -> None:
            """The worker's next job, or None (it then ends)."""
            worker = workers[slot]
            worker.index = waiting.popleft() if waiting and not self._stopped.is_set() else None
            with contextlib.suppress(OSError):
                worker.pipe.send(None if worker.index is None else (worker.index, jobs[worker.index]))

        def start(slot: int) -> None:
            gpus = self.gpu_count()
            device = f"cuda:{slot % gpus}" if gpus > 1 else None
            ours, theirs = context.Pipe()
            process = context.Process(target=work, args=(theirs, self._event, slot, self.threads, device, os.getpid()),
                                      daemon=True, name=f"artistyle-worker-{slot}")
            process.start()
            theirs.close()  # so that a dead worker reads as the end of its pipe
            workers[slot] = _Worker(process, ours)
            give(slot)

        try:
            for slot in range(min(self.workers, len(jobs))):
                start(slot)
            while pending and workers:
                by_pipe = {w.pipe: slot for slot, w in workers.items()}
                for pipe in connection.wait(list(by_pipe), timeout=POLL):
                    slot = by_pipe[pipe]
                    try:
                        kind, index, value = workers[slot].pipe.recv()
                    except (EOFError, OSError):  # it died, possibly in the middle of a message
                        yield from self._lost(jobs, workers, slot, pending, waiting, start)
                        continue
                    job = jobs[index]
                    if kind == "start":
                        yield Update(job, 0.0)
                    elif kind == "progress":
                        yield Update(job, value)
                    else:
                        pending.discard(index)
                        yield Update(job, 1.0, self._recorded(value))
                        give(slot)
                for slot, worker in list(workers.items()):
                    if not worker.process.is_alive() and not worker.pipe.poll():
                        yield from self._lost(jobs, workers, slot, pending, waiting, start)
        finally:
            self._event.set()
            for worker in workers.values():
                with contextlib.suppress(OSError):
                    worker.pipe.send(None)
            end([w.process for w in workers.values()])
            for worker in workers.values():
                worker.pipe.close()

    def _recorded(self, painted: Painted) -> JobResult:
        result = write_output(painted)
        if painted.stopped:
            import dataclasses

            result = dataclasses.replace(result, error=self._reason)
        return result

    def _lost(self, jobs: Sequence[Job], workers: dict[int, _Worker], slot: int, pending: set[int],
              waiting: deque[int], start: Any) -> Iterator[Update]:
        """A worker that died fails its job; a new one takes its place while jobs wait."""
        worker = workers.pop(slot)
        worker.process.join(timeout=5)
        worker.pipe.close()
        if worker.index is not None and worker.index in pending:
            pending.discard(worker.index)
            code = worker.process.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            result = JobResult(jobs[worker.index], "failed", f"its worker process died ({how}); try a smaller "
                               "--size if it ran out of memory", worker=f"local:{worker.process.pid}")
            yield Update(jobs[worker.index], 1.0, result)
        if waiting and not self._stopped.is_set():
            start(slot)


@dataclass
class _Worker:
    process: Any
    pipe: Any  # the driver's end of the worker's duplex pipe
    index: int | None = None  # the job it paints


def end(processes: Any) -> None:
    """Let the workers finish (they have been told to stop), then terminate and kill what is left."""
    alive = list(processes)
    for process in alive:
        process.join(timeout=5)
    for process in alive:
        if process.is_alive():
            process.terminate()
            process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join()


def work(pipe: Any, stop: Any, slot: int, threads: int, device: str | None, driver: int) -> None:
    """A worker process: paint the jobs the driver sends on ``pipe`` until it sends None, stops, or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    import torch

    from ..memory import keep_freed_memory

    keep_freed_memory()  # a worker's process, like the command's: freed activations are reused
    torch.set_num_threads(threads)
    worker = f"local:{os.getpid()}"

    def stopped() -> bool:
        return bool(stop.is_set()) or os.getppid() != driver

    while not stopped():
        try:
            item = pipe.recv()
        except (EOFError, OSError):  # the driver is gone
            break
        if item is None or stopped():
            break
        index, job = item
        pipe.send(("start", index, None))

        def progress(fraction: float, index: int = index, last: list[float] = [-1.0]) -> None:  # noqa: B006
            if fraction - last[0] >= 0.01 or fraction >= 1.0:  # at most a hundred messages a job
                last[0] = fraction
                pipe.send(("progress", index, fraction))

        painted = paint_job(job, worker=worker, device=device if job_on_cuda(job) else None, on_progress=progress,
                            stopped=stopped)
        pipe.send(("done", index, painted))
    pipe.close()


def job_on_cuda(job: Job) -> bool:
    """Whether the job asks for CUDA without a GPU number (then the worker's own GPU is used)."""
    device = job.config.device.strip().lower()
    if device == "cuda":
        return True
    if device == "auto":
        import torch

        return bool(torch.cuda.is_available())
    return False

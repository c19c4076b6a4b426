"""``--workers N``: N jobs at once on this machine, each in a worker process of its own.

:class:`PoolExecutor` starts N worker processes ("spawn": a fresh interpreter, no state shared
with the driver but the job queue), each of which keeps VGG-19 loaded between its jobs
(:func:`artistyle.load_weights` caches it per process) and uses ``cpus // N`` torch threads, so
the workers share the CPUs instead of fighting over them. On a machine with several CUDA GPUs a
job meant for ``cuda`` runs on its worker's own GPU: worker ``i`` uses ``cuda:i`` (modulo the GPU
count), so ``--workers G`` on a box with G GPUs keeps every GPU busy.

Workers report each job's start, its progress and its end (:class:`~.paint.Painted`) on a result
queue; the driver writes each ``ok`` job's bytes (:func:`~.paint.write_output`) and yields the
updates, so :class:`~.run.Batch` keeps the journal in the driver alone. :meth:`PoolExecutor.stop`
sets an event the workers check after every iteration: running jobs end unwritten, recorded with
the stop's reason, and no job starts after it. Workers ignore SIGINT (the terminal sends Ctrl-C to
the whole process group; the driver decides what it means), stop by themselves when the driver
process is gone (no orphans after ``kill -9``), and are terminated if they outlive the run. A worker
that dies (the kernel's out-of-memory killer, a crash) fails its job with the exit status, and a
new worker takes its place for the remaining jobs.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Iterator, Sequence
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
        tasks: Any = context.Queue()
        results: Any = context.Queue()
        self._event = context.Event()
        if self._stopped.is_set():
            self._event.set()
        for index, job in enumerate(jobs):
            tasks.put((index, job))
        count = min(self.workers, len(jobs))
        for _ in range(count + len(jobs)):  # enough ends for the workers and any replacements
            tasks.put(None)
        processes: dict[int, Any] = {}  # slot -> process
        running: dict[int, int] = {}  # slot -> job index
        pending = set(range(len(jobs)))

        def start(slot: int) -> None:
            gpus = self.gpu_count()
            device = f"cuda:{slot % gpus}" if gpus > 1 else None
            process = context.Process(target=work, args=(tasks, results, self._event, slot, self.threads, device,
                                                         os.getpid()), daemon=True, name=f"artistyle-worker-{slot}")
            process.start()
            processes[slot] = process

        try:
            for slot in range(count):
                start(slot)
            while pending:
                try:
                    message = results.get(timeout=POLL)
                except queue.Empty:
                    yield from self._check(jobs, processes, running, pending, start)
                    if not any(p.is_alive() for p in processes.values()):
                        break  # stopped: every worker has ended
                    continue
                kind, slot, index, value = message
                job = jobs[index]
                if kind == "start":
                    running[slot] = index
                    yield Update(job, 0.0)
                elif kind == "progress":
                    yield Update(job, value)
                else:
                    running.pop(slot, None)
                    pending.discard(index)
                    yield Update(job, 1.0, self._recorded(value))
        finally:
            self._event.set()
            end(processes.values())
            for channel in (tasks, results):
                channel.cancel_join_thread()
                channel.close()

    def _recorded(self, painted: Painted) -> JobResult:
        result = write_output(painted)
        if painted.stopped:
            import dataclasses

            result = dataclasses.replace(result, error=self._reason)
        return result

    def _check(self, jobs: Sequence[Job], processes: dict[int, Any], running: dict[int, int], pending: set[int],
               start: Any) -> Iterator[Update]:
        """A worker that died fails its job; a new one takes its place while jobs remain."""
        for slot, process in list(processes.items()):
            if process.is_alive() or process.exitcode == 0:
                continue
            index = running.pop(slot, None)
            del processes[slot]
            if index is not None:
                pending.discard(index)
                code = process.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                result = JobResult(jobs[index], "failed", f"its worker process died ({how}); try a smaller --size "
                                   "if it ran out of memory", worker=f"local:{process.pid}")
                yield Update(jobs[index], 1.0, result)
            if pending and not self._stopped.is_set():
                start(slot)


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


def work(tasks: Any, results: Any, stop: Any, slot: int, threads: int, device: str | None, driver: int) -> None:
    """A worker process: take jobs until told to stop or the queue ends; report each on ``results``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    import torch

    from ..memory import keep_freed_memory

    keep_freed_memory()  # a worker's process, like the command's: freed activations are reused
    torch.set_num_threads(threads)
    worker = f"local:{os.getpid()}"

    def orphaned() -> bool:
        return os.getppid() != driver

    def stopped() -> bool:
        return bool(stop.is_set()) or orphaned()

    while not stopped():
        item = tasks.get()
        if item is None or stopped():
            break
        index, job = item
        results.put(("start", slot, index, None))
        def progress(fraction: float, index: int = index, last: list[float] = [-1.0]) -> None:  # noqa: B006
            if fraction - last[0] >= 0.01 or fraction >= 1.0:  # at most a hundred messages a job
                last[0] = fraction
                results.put(("progress", slot, index, fraction))

        painted = paint_job(job, worker=worker, device=device if job_on_cuda(job) else None, on_progress=progress,
                            stopped=stopped)
        results.put(("done", slot, index, painted))
    with contextlib.suppress(Exception):
        results.close()
        results.join_thread()  # the last result reaches the driver before the process ends


def job_on_cuda(job: Job) -> bool:
    """Whether the job asks for CUDA without a GPU number (then the worker's own GPU is used)."""
    device = job.config.device.strip().lower()
    if device == "cuda":
        return True
    if device == "auto":
        import torch

        return bool(torch.cuda.is_available())
    return False

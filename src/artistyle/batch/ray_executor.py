"""``--ray [ADDRESS]``: the jobs as Ray tasks, on this machine or on a cluster.

:class:`RayExecutor` joins a Ray cluster (an address, ``auto``: the one started on this machine with
``ray start``, or ``RAY_ADDRESS``) or starts a private one on this machine (no address). Each job
is one Ray task asking for ``cpus_per_job`` CPUs (its torch threads) and ``gpus_per_job`` GPUs
(fractions share a GPU). Ray reuses its worker processes, and :func:`artistyle.load_weights`
caches VGG-19 per process, so a worker loads the weights once and keeps them between jobs.

Why tasks and not actors: a task whose worker process or node died is retried elsewhere by Ray
itself (``max_retries``), with no bookkeeping here; a job that fails on its own (a bad image, a
NaN, out of memory) does not raise: :func:`~.paint.paint_job` returns its failure as a normal
result, so it is recorded once and never retried.

Inputs are read by the driver and sent with the task (each file put in Ray's object store once),
so they need not be on a shared filesystem. Outputs come back to the driver as encoded bytes, and
the driver writes them atomically into OUTDIR (:func:`~.paint.write_output`) just before the
journal line. So "nothing lost" holds without a shared filesystem: an output exists only for a job
that ended well, a node lost mid-write cannot leave a partial file, and a retried job cannot race a
dead attempt writing the same file; OUTDIR needs only to be reachable by the driver. The cost is
one picture's bytes through the object store per job (a few MB at most), negligible next to a job.

A video job (:mod:`.clips`) is one task too: the clip goes to the worker as bytes, its frames are
painted in the worker's private temporary folder, and the encoded video comes back as bytes (a clip's
input and output through the object store: sized like the files). Nothing of it is kept on the node,
so a retry after a lost worker or node paints the clip again from its first frame; the work folder
that makes a stopped clip resumable is the local executors' (``--workers`` and the default).

Progress: a job is "running" from the moment it is handed to Ray (at most as many at once as the
cluster has room for), and its result comes back when it ends. :meth:`RayExecutor.stop` cancels the
running tasks (their pictures are never written) and submits no more. The worker id in the journal
is ``ray:<node ip>:<pid>``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .jobs import Job
from .paint import Painted, cpu_count, input_paths, paint_job, write_output
from .run import JobResult, Update

__all__ = ["INSTALL_HINT", "RayExecutor", "import_ray"]

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'artistyle[ray]' (or pip install 'ray>=2.9')"
POLL = 0.2  # seconds between looks for a stop request while waiting for results
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before calling it unreachable
# HOST:PORT after an optional scheme: a host name or IPv4 address, or an IPv6 address in brackets; ASCII digits.
ADDRESS = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})", re.ASCII)


def import_ray() -> Any:
    """The ``ray`` module, or UsageError with the line saying what to install."""
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def probe(address: str) -> None:
    """UsageError within :data:`CONNECT_TIMEOUT` when nothing listens at ``host:port`` (Ray itself waits minutes),
    or at once for an address that is not ``[SCHEME://]HOST:PORT`` (ASCII; a port from 1 to 65535)."""
    match = ADDRESS.fullmatch(address.split("://", 1)[-1])
    port = int(match["port"]) if match else 0
    if match is None or not 1 <= port <= 65535:
        raise UsageError(f"Ray address '{address}' is not HOST:PORT (e.g. 10.0.0.5:6379, a port from 1 to 65535), "
                         "auto or empty")
    host = match["ipv6"] or match["host"]
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except UnicodeError:  # a name the IDNA codec refuses: an empty or over-long label ('a..b', 300 letters)
        raise UsageError(f"Ray address '{address}': '{host}' is not a valid host name") from None
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise UsageError(f"the Ray cluster at '{address}' cannot be reached ({reason}); start it with "
                         "`ray start --head` or check the address") from None


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the block (what Python's sys.stderr cannot catch: C++ logs)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def remote_paint(job: Job, names: list[str], threads: int, device: str | None, *blobs: bytes) -> Painted:
    """The Ray task: paint ``job`` from the input bytes, with ``threads`` torch threads."""
    import ray
    import torch

    from ..memory import keep_freed_memory

    keep_freed_memory()  # the worker process runs only these tasks (their own runtime env): reuse freed blocks
    torch.set_num_threads(max(1, threads))
    worker = f"ray:{ray.util.get_node_ip_address()}:{os.getpid()}"  # type: ignore[no-untyped-call]
    return paint_job(job, worker=worker, inputs=dict(zip(names, blobs)), device=device)


class RayExecutor:
    """The jobs as Ray tasks (see the module). :meth:`connect` early to report a bad address before any work."""

    def __init__(self, address: str | None = None, *, cpus_per_job: float | None = None,
                 gpus_per_job: float | None = None, max_retries: int = 3, num_cpus: int | None = None):
        self.address = address
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self._ray: Any = None
        self._started = False  # this executor started (or joined) Ray and shuts it down in close()
        self._stopped = threading.Event()
        self._reason = "interrupted"

    def connect(self) -> None:
        """Join the cluster or start a local Ray (UsageError: Ray missing, address unreachable, Ray refused)."""
        if self._ray is not None:
            return
        ray = import_ray()
        if ray.is_initialized():  # the caller's own Ray (a test, a notebook): used as it is, left running
            self._ray = ray
            return
        address = self.address or ""
        if not address:
            address = os.environ.get("RAY_ADDRESS") or "local"
        elif address == "auto" and os.environ.get("RAY_ADDRESS"):
            address = os.environ["RAY_ADDRESS"]
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR}
        if address == "local":
            options["num_cpus"] = self.num_cpus or cpu_count()
        elif address != "auto":
            probe(address)
        try:
            with quiet_stderr():  # Ray's C++ client logs every retry of a failed join to fd 2, for many seconds
                ray.init(address=address, **options)
        except ConnectionError as exc:
            if address == "auto":
                raise UsageError("--ray auto found no Ray cluster started on this machine; start one with "
                                 "`ray start --head`, or give its address (or set RAY_ADDRESS)") from None
            raise UsageError(f"Ray could not join '{address}': {first_line(exc)}") from None
        except Exception as exc:  # Ray's own refusal (a version mismatch, a bad option): one line
            raise UsageError(f"Ray could not start: {first_line(exc)}") from None
        self._ray = ray
        self._started = True

    @property
    def ray(self) -> Any:
        """The ``ray`` module once :meth:`connect` has joined a cluster; None before."""
        return self._ray

    def close(self) -> None:
        """Leave the cluster (and end the local Ray this executor started)."""
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._started = False
        self._ray = None

    def stop(self, reason: str = "interrupted") -> None:
        """Cancel the running jobs (never written) and submit no more; safe from a signal handler."""
        self._reason = reason
        self._stopped.set()

    def resources(self) -> tuple[float, float]:
        """(CPUs, GPUs) each job asks for: by default 1 CPU, and 1 GPU when the cluster has GPUs."""
        gpus = self.gpus_per_job
        if gpus is None:
            gpus = 1.0 if self._ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        cpus = self.cpus_per_job if self.cpus_per_job is not None else 1.0
        return cpus, gpus

    def total(self, resource: str) -> float:
        """How much of ``resource`` ("CPU", "GPU") the cluster has now."""
        return float(self._ray.cluster_resources().get(resource, 0))

    def slots(self, cpus: float, gpus: float) -> int:
        """How many jobs the cluster can run at once now (at least one)."""
        total = self._ray.cluster_resources()
        room = [total.get("CPU", 0) / cpus] if cpus > 0 else []
        room += [total.get("GPU", 0) / gpus] if gpus > 0 else []
        return max(1, math.floor(min(room, default=1)))

    def run(self, jobs: Sequence[Job]) -> Iterator[Update]:
        if not jobs or self._stopped.is_set():
            return
        self.connect()
        ray = self._ray
        cpus, gpus = self.resources()
        source = str(Path(__file__).resolve().parents[2])  # this artistyle, for workers on this machine
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
        task = ray.remote(remote_paint).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=self.max_retries, retry_exceptions=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}})
        threads = max(1, math.ceil(cpus))
        device = "cuda" if gpus > 0 else "cpu"
        stored: dict[str, Any] = {}  # path -> object ref of its bytes, each file sent once
        waiting = deque(jobs)
        running: dict[Any, Job] = {}
        room = self.slots(cpus, gpus)
        try:
            while waiting or running:
                if self._stopped.is_set():
                    for ref, job in running.items():
                        ray.cancel(ref, force=True)
                        yield Update(job, 1.0, self._failed(job, self._reason))
                    running.clear()
                    return
                while waiting and len(running) < room:
                    job = waiting.popleft()
                    names, refs = self._inputs(job, stored)
                    own = None if job.config.device.strip().lower() == "mps" else device
                    running[task.remote(job, names, threads, own, *refs)] = job
                    yield Update(job, 0.0)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL)
                for ref in ready:
                    job = running.pop(ref)
                    yield Update(job, 1.0, self._collected(ref, job))
                if ready:
                    room = self.slots(cpus, gpus)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def _inputs(self, job: Job, stored: dict[str, Any]) -> tuple[list[str], list[Any]]:
        names: list[str] = []
        for path in input_paths(job):
            key = str(path)
            if key not in stored:
                try:
                    stored[key] = self._ray.put(path.read_bytes())
                except OSError:
                    continue  # not sent: the worker fails the job on the missing file, with the usual reason
            names.append(key)
        return names, [stored[name] for name in names]

    def _collected(self, ref: Any, job: Job) -> JobResult:
        ray = self._ray
        try:
            painted: Painted = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return self._failed(job, self._reason)
        except ray.exceptions.OutOfMemoryError:
            return self._failed(job, "the Ray node ran out of memory; try a smaller --size or more --cpus-per-job")
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
            return self._failed(job, f"its Ray worker was lost {self.max_retries + 1} times ({type(exc).__name__})")
        except ray.exceptions.RayError as exc:
            return self._failed(job, f"Ray: {first_line(exc)}")
        return write_output(painted)

    def _failed(self, job: Job, reason: str) -> JobResult:
        return JobResult(job, "failed", reason, worker="ray")


def first_line(exc: BaseException) -> str:
    """An exception's first non-empty line (Ray's messages run to pages)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__

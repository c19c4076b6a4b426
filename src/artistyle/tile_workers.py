"""One picture's tiles evaluated by several worker processes (``--tile-workers N``).

The exact tiled evaluation (:mod:`artistyle.tiling`) makes two passes over the tiles per
evaluation, and every tile's work in a pass is independent of the others'. So
:class:`LocalTileWorkers` hands the tiles to N "spawn" processes: each keeps, per scale, its
share of the :class:`~artistyle.tiling.TilePlan` (the network, its tiles' owned content targets
and masks, the style terms), receives the crops of the current image in pass 1 and keeps them
for pass 2, and returns per tile the sums (pass 1) or the gradient block (pass 2). The driver
keeps the image, the optimiser and the reduction, which :class:`~artistyle.tiling.TiledEvaluation`
does in the tiles' order: the painting is the single process's, bit for bit, when the workers
run the same kernels with the same number of threads.

Tile ``k`` goes to worker ``k mod N``. Messages are plain pickles over pipes (the bytes are
what a network transport would carry). A worker that dies mid-pass is started again, given the
plan, and the pass is redone on every worker (the results do not depend on who computes them).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

import torch
from torch import Tensor

from .errors import RunError, UsageError
from .style_terms import Kernel
from .tiling import Tile, TilePlan, TileSums, TileTargets, halo_for, tile_gradient, tile_sums, tiles

__all__ = [
    "MAX_RESTARTS", "LocalTileWorkers", "PoolWorker", "TileTimes", "TileWorkerPool", "TileWorkerState", "WorkerLost",
    "worker_tile",
]

# A pass is redone at most this many times after losing workers before the run fails.
MAX_RESTARTS = 3


def worker_tile(width: int, height: int, workers: int, deepest: str = "conv5_1", smallest: int = 64) -> int:
    """The owned tile size that spreads a ``width x height`` image most evenly over ``workers``.

    Each worker's work is about the area of its crops (owned block plus halo); tile ``k`` goes
    to worker ``k mod workers``. Tries every multiple of 16 from ``smallest`` to the long edge and
    keeps the one whose busiest worker has the least area (the larger tile on a tie: fewer halos).
    """
    halo = halo_for(deepest)
    best: tuple[float, int] | None = None
    for size in range(max(smallest, 16) // 16 * 16, max(width, height) + 16, 16):
        load = [0] * workers
        for k, t in enumerate(tiles(height, width, size, halo)):
            load[k % workers] += (t.cy1 - t.cy0) * (t.cx1 - t.cx0)
        score = (max(load), -size)
        if best is None or score < (best[0], -best[1]):
            best = (max(load), size)
    assert best is not None
    return best[1]


@dataclass
class TileTimes:
    """Seconds spent per pass, summed over the evaluations so far: ``wall`` (the driver's wait for every
    worker's results, transfers included) and ``compute`` (the busiest worker's own compute time)."""

    passes: int = 0
    wall: float = 0.0
    compute: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def transfer(self) -> float:
        """What the wall time holds besides the busiest worker's compute: pickling, pipes, waiting."""
        return max(0.0, self.wall - self.compute)


@dataclass
class _Share:
    """What one worker keeps of a plan: its tiles (global indices) and the plan cut down to them."""

    indices: tuple[int, ...]
    plan: TilePlan


class TileWorkerState:
    """What one tile worker holds and does, wherever it runs (a local process, a Ray actor): its share of
    the current plan and the crops of the last pass 1. :meth:`handle` answers one message."""

    def __init__(self, threads: int):
        torch.set_num_threads(threads)
        self.share: _Share | None = None
        self.crops: dict[int, Tensor] = {}

    def handle(self, kind: str, payload: Any) -> tuple[Any, float]:
        """``plan`` (a share), ``gather`` (crops) or ``gradient`` (kernels, crops or None): the tiles'
        results by tile index, and the seconds computing them took."""
        started = time.perf_counter()
        if kind == "ping":  # started and ready: torch and the library imported
            return None, 0.0
        if kind == "plan":
            self.share, self.crops = payload, {}
            return None, 0.0
        if self.share is None:
            raise RuntimeError(f"a {kind} pass before any plan")
        p, indices = self.share.plan, self.share.indices
        result: dict[int, Any]
        if kind == "gather":
            self.crops = payload
            result = {k: tile_sums(p.net, self.crops[k], p.tiles[i], p.height, p.width, p.needs_first, p.targets[i])
                      for i, k in enumerate(indices)}
        else:
            kernels, crops = payload
            if crops is not None:
                self.crops = crops
            result = {k: tile_gradient(p.net, self.crops[k], p.tiles[i], p.height, p.width, p.style, kernels,
                                       p.targets[i], p.content_numel, p.content_scale)
                      for i, k in enumerate(indices)}
        return result, time.perf_counter() - started


def _crops(image: Tensor, plan_tiles: Sequence[Tile], indices: Sequence[int]) -> dict[int, Tensor]:
    return {k: plan_tiles[k].crop(image).contiguous() for k in indices}


def _serve(connection: Connection, threads: int) -> None:
    """A local worker's loop: answer each message (pickled bytes) until the driver closes the pipe or goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    state = TileWorkerState(threads)
    while True:
        try:
            kind, payload = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):  # the driver is gone
            return
        if kind == "close":
            return
        try:
            reply = pickle.dumps(("ok", state.handle(kind, payload)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # reported to the driver, which fails the run with it
            reply = pickle.dumps(("error", f"{type(error).__name__}: {error}"))
        connection.send_bytes(reply)


class WorkerLost(Exception):
    """A worker's process, actor or node ended (or its connection broke) during a pass."""


@dataclass(eq=False)
class PoolWorker:
    """One worker as the driver sees it: its handle (transport-specific), the plan it holds (the driver's
    object, compared by identity), its tiles, and whether it kept this image's crops."""

    handle: Any
    plan: TilePlan | None = None
    indices: tuple[int, ...] = ()
    has_crops: bool = False


class TileWorkerPool:
    """The driver's side of N tile workers (:class:`~artistyle.tiling.TileWorkers`), whatever carries the
    messages: subclasses start a worker, submit a message to it, collect its reply and end it.

    Tile ``k`` goes to worker ``k mod N``. A pass is submitted to every worker before any reply is
    collected, so the workers compute at once; every reply is collected, in the workers' order. A lost
    worker is replaced and the pass redone on every worker (at most :data:`MAX_RESTARTS` times).
    """

    def __init__(self, count: int):
        if count < 1:
            raise ValueError(f"tile workers must be at least 1, not {count}")
        self.count = count
        self.times = TileTimes()
        self.restarts = 0
        self._workers: list[PoolWorker | None] = [None] * count
        self._image: Tensor | None = None

    # -- what a transport provides --
    def _start(self, index: int) -> PoolWorker:
        raise NotImplementedError

    def _submit(self, worker: PoolWorker, message: tuple[str, Any]) -> None:
        """Send ``message``; raise :class:`WorkerLost` where the worker is gone."""
        raise NotImplementedError

    def _collect(self, worker: PoolWorker) -> tuple[Any, float]:
        """The reply to the last message: (result, seconds); :class:`WorkerLost`, or RunError for its failure."""
        raise NotImplementedError

    def _end(self, worker: PoolWorker) -> None:
        raise NotImplementedError

    # -- the pool --
    kind = "tile workers"

    def describe(self) -> str:
        """One line for a progress bar: how many workers, and an evaluation's split so far (both passes)."""
        t = self.times
        evaluations = max(1, t.passes // 2)
        return (f"{self.count} {self.kind}: {t.compute / evaluations:.2f} s compute + "
                f"{t.transfer / evaluations:.2f} s transfer an evaluation")

    def start(self) -> None:
        """Start every worker now and wait until each answers, so that one that cannot start fails the run
        in one line before any work (otherwise they start at the first pass)."""
        for index in range(self.count):
            if self._workers[index] is None:
                try:
                    worker = self._workers[index] = self._start(index)
                    self._submit(worker, ("ping", None))
                    self._collect(worker)
                except WorkerLost as lost:
                    raise RunError(f"tile worker {index + 1} of {self.count} could not start: "
                                   f"{lost.__cause__ or 'it ended at once'}") from None

    def close(self) -> None:
        """End the workers (a later pass starts them again)."""
        for index, worker in enumerate(self._workers):
            if worker is not None:
                self._end(worker)
                self._workers[index] = None

    def __enter__(self) -> TileWorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ready(self, plan: TilePlan, index: int) -> PoolWorker:
        """Worker ``index`` started and holding its share of ``plan``."""
        worker = self._workers[index]
        if worker is None:
            worker = self._workers[index] = self._start(index)
        if worker.plan is not plan:
            indices = tuple(range(index, len(plan.tiles), self.count))
            share = _Share(indices, replace(plan, tiles=tuple(plan.tiles[k] for k in indices),
                                            targets=tuple(_copied(plan.targets[k]) for k in indices)))
            self._submit(worker, ("plan", share))
            self._collect(worker)
            worker.plan, worker.indices, worker.has_crops = plan, indices, False
        return worker

    def _run(self, plan: TilePlan, message: Callable[[PoolWorker], tuple[str, Any]]) -> list[Any]:
        """Submit each worker its part of a pass, collect every tile's result in the tiles' order;
        after a lost worker, start another in its place and redo the pass everywhere."""
        for _ in range(MAX_RESTARTS + 1):
            started = time.perf_counter()
            lost: list[PoolWorker] = []
            results: dict[int, Any] = {}
            busiest = 0.0
            submitted = []
            for index in range(self.count):
                try:
                    worker = self._ready(plan, index)
                    self._submit(worker, message(worker))
                    submitted.append(worker)
                except WorkerLost:
                    failed = self._workers[index]
                    assert failed is not None  # _ready started it
                    lost.append(failed)
            for worker in submitted:  # every reply is collected, so no worker is left out of step
                try:
                    part, seconds = self._collect(worker)
                    results.update(part)
                    busiest = max(busiest, seconds)
                except WorkerLost:
                    lost.append(worker)
            if not lost:
                self.times.passes += 1
                self.times.wall += time.perf_counter() - started
                self.times.compute += busiest
                return [results[k] for k in range(len(plan.tiles))]
            self.restarts += 1
            for worker in lost:
                if worker in self._workers:
                    self._end(worker)
                    self._workers[self._workers.index(worker)] = None
            for other in self._workers:  # a redone pass sends every worker its crops again
                if other is not None:
                    other.has_crops = False
        raise RunError(f"tile workers kept failing: {MAX_RESTARTS + 1} tries of one pass lost a worker")

    def gather(self, plan: TilePlan, image: Tensor) -> list[TileSums]:
        """Pass 1 on ``image``: every tile's sums, in the tiles' order."""
        self._image = image

        def message(worker: PoolWorker) -> tuple[str, Any]:
            worker.has_crops = True
            return "gather", _crops(image, plan.tiles, worker.indices)

        return self._run(plan, message)

    def gradients(self, plan: TilePlan, image: Tensor | None, kernels: Mapping[str, Kernel]) -> list[Tensor | None]:
        """Pass 2: every tile's gradient block, in the tiles' order (``image`` None: the last gathered one)."""
        if image is not None:
            self._image = image
            for worker in self._workers:
                if worker is not None:
                    worker.has_crops = False
        source = self._image
        if source is None:
            raise RuntimeError("gradients(image=None) before any gather()")

        def message(worker: PoolWorker) -> tuple[str, Any]:
            crops = None if worker.has_crops else _crops(source, plan.tiles, worker.indices)
            worker.has_crops = True
            return "gradient", (dict(kernels), crops)

        return self._run(plan, message)


def _end_process(worker: PoolWorker) -> None:
    process, connection = worker.handle
    with contextlib.suppress(OSError):
        connection.send_bytes(pickle.dumps(("close", None)))
    connection.close()
    process.join(timeout=2)
    if process.is_alive():
        process.kill()
        process.join(timeout=2)


def _end_all(workers: list[PoolWorker | None]) -> None:
    for worker in workers:
        if worker is not None:
            _end_process(worker)


class LocalTileWorkers(TileWorkerPool):
    """``count`` "spawn" worker processes on this machine, messages pickled over pipes.

    ``threads``: torch threads per worker (default: this process's threads divided among them, at
    least 1). Processes start on first use and end with :meth:`close` (or when this object or the
    driver goes away: a worker ends when its pipe closes). ``times`` holds the passes' seconds and bytes.
    """

    kind = "local workers"

    def __init__(self, count: int, threads: int | None = None):
        super().__init__(count)
        self.threads = threads or max(1, torch.get_num_threads() // count)
        self._finalizer = weakref.finalize(self, _end_all, self._workers)

    def _start(self, index: int) -> PoolWorker:
        if multiprocessing.current_process().daemon:  # a batch --workers process, say: it may not have children
            raise UsageError("tile workers cannot be started inside a worker process of --workers; paint several "
                             "pictures at once (--workers) or one picture on several processes (--tile-workers)")
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, self.threads), daemon=True,
                                  name=f"artistyle-tile-worker-{index}")
        process.start()
        theirs.close()  # so that our end sees EOF when the worker dies
        return PoolWorker((process, ours))

    def _submit(self, worker: PoolWorker, message: tuple[str, Any]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.times.bytes_sent += len(data)
        try:
            worker.handle[1].send_bytes(data)
        except OSError as error:
            raise WorkerLost from error

    def _collect(self, worker: PoolWorker) -> tuple[Any, float]:
        try:
            data = worker.handle[1].recv_bytes()
        except (EOFError, OSError) as error:
            raise WorkerLost from error
        self.times.bytes_received += len(data)
        status, payload = pickle.loads(data)
        if status == "error":
            raise RunError(f"a tile worker failed: {payload}")
        result, seconds = payload
        return result, seconds

    def _end(self, worker: PoolWorker) -> None:
        _end_process(worker)

    def __enter__(self) -> LocalTileWorkers:
        return self


def _copied(targets: TileTargets) -> TileTargets:
    """A tile's targets as compact copies (views of the whole maps would pickle the whole maps)."""
    return replace(targets, content={n: t.clone() for n, t in targets.content.items()},
                   regions={n: t.clone() for n, t in targets.regions.items()})

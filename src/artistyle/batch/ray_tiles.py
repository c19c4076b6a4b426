"""One picture's tiles on Ray actors: ``artistyle PHOTO PAINTING --ray [ADDRESS] --tile-workers N``.

:class:`RayTileWorkers` is a :class:`~artistyle.tile_workers.TileWorkerPool` whose workers are Ray
actors, one per tile worker, each asking for ``cpus_per_worker`` CPUs (its torch threads) and
``gpus_per_worker`` GPUs; Ray places them on the cluster's nodes. An actor holds a
:class:`~artistyle.tile_workers.TileWorkerState` (its share of the scale's plan, the crops of the last
pass 1), exactly as a local worker process does, so the driver's reduction, and with it the picture, is
the same. Messages go through Ray's object store (tensors pickled by Ray). An actor whose process or
node died raises ``RayActorError`` at the next collect: the pool starts a new actor in its place and
redoes the pass. Joining the cluster is :class:`~.ray_executor.RayExecutor`'s (``connect``), so a bad
address, a missing Ray or a refused join is the same one line as for ``artistyle batch --ray``.

Ray lives in the batch package, beside the executor for many pictures: the core never imports it.
"""

from __future__ import annotations

from typing import Any

from ..errors import RunError, UsageError
from ..tile_workers import PoolWorker, TileWorkerPool, TileWorkerState, WorkerLost
from .ray_executor import RayExecutor

__all__ = ["RayTileWorkers"]


class _TileActor:
    """The actor's class (made remote when the pool starts): a :class:`TileWorkerState` behind one method."""

    def __init__(self, threads: int):
        self.state = TileWorkerState(threads)

    def handle(self, kind: str, payload: Any) -> tuple[Any, float]:
        return self.state.handle(kind, payload)

    def node_id(self) -> str:
        """The Ray node it runs on (for reports, and for the tests that take that node away)."""
        import ray

        return str(ray.get_runtime_context().get_node_id())


class RayTileWorkers(TileWorkerPool):
    """``count`` tile workers as Ray actors (see the module). ``address``: as ``--ray`` takes it (None: a
    local Ray, or ``RAY_ADDRESS``; ``auto``: the cluster started on this machine); ``num_cpus``: the CPUs of
    a local Ray this pool starts (default: the machine's)."""

    kind = "Ray workers"

    def __init__(self, count: int, address: str | None = None, *, cpus_per_worker: float = 1.0,
                 gpus_per_worker: float = 0.0, num_cpus: int | None = None):
        super().__init__(count)
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self._executor = RayExecutor(address, num_cpus=num_cpus)
        self._actor_class: Any = None

    def connect(self) -> None:
        """Join the cluster (or start a local Ray) before any work: UsageError in one line where it cannot, or
        where the cluster cannot hold every worker at once (a pass needs them all: Ray would wait forever)."""
        self._executor.connect()
        for resource, each in (("CPU", self.cpus_per_worker), ("GPU", self.gpus_per_worker)):
            total = self._executor.total(resource)
            if each > 0 and self.count * each > total:
                raise UsageError(f"{self.count} tile workers of {each:g} {resource}s each need {self.count * each:g} "
                                 f"{resource}s at once; the Ray cluster has {total:g}")
        if self._actor_class is None:
            ray = self._executor.ray
            self._actor_class = ray.remote(_TileActor)

    @property
    def threads(self) -> int:
        return max(1, round(self.cpus_per_worker))

    def _start(self, index: int) -> PoolWorker:
        self.connect()
        actor = self._actor_class.options(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, name=None, max_restarts=0,
        ).remote(self.threads)
        return PoolWorker([actor, None])

    def _submit(self, worker: PoolWorker, message: tuple[str, Any]) -> None:
        worker.handle[1] = worker.handle[0].handle.remote(*message)

    def _collect(self, worker: PoolWorker) -> tuple[Any, float]:
        ray = self._executor.ray
        reference, worker.handle[1] = worker.handle[1], None
        try:
            result, seconds = ray.get(reference)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as error:  # its process or node
            raise WorkerLost from error
        except ray.exceptions.RayTaskError as error:  # the worker's own failure: one line
            cause = error.cause if getattr(error, "cause", None) is not None else error
            raise RunError(f"a tile worker failed: {type(cause).__name__}: {str(cause).splitlines()[0]}") from None
        return result, float(seconds)

    def nodes(self) -> list[str | None]:
        """The node each started worker runs on (None: not started)."""
        ray = self._executor.ray
        return [None if w is None else ray.get(w.handle[0].node_id.remote()) for w in self._workers]

    def _end(self, worker: PoolWorker) -> None:
        ray = self._executor.ray
        if ray is not None:
            ray.kill(worker.handle[0], no_restart=True)

    def close(self) -> None:
        """End the actors and leave the cluster (ending the local Ray this pool started)."""
        super().close()
        self._executor.close()
        self._actor_class = None

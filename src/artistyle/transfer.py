"""One scale of a run: :class:`Transfer` minimises the objective over the pixels, one :class:`Progress` per iteration.

A CLI, a notebook or a web page iterates over it to watch the run, show
previews and stop it; :attr:`Transfer.image` always holds the image the run
reports (the last good one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .errors import RunError
from .objective import StyleObjective
from .optim import HistoryStorage, OptimizerFactory, PixelOptimizer, make_optimizer

__all__ = ["MAX_FAILURES", "Progress", "Transfer"]

# Consecutive non-finite losses after which a run that can recover (L-BFGS) gives up.
MAX_FAILURES = 3


@dataclass(frozen=True)
class Progress:
    """One finished iteration.

    ``losses`` holds each weighted term (``content:conv4_2``, ``style:conv1_1``,
    ``tv``) at the image the iteration evaluated; ``loss`` is their sum.
    ``image`` is a ``(1, 3, H, W)`` CPU copy in [0, 1] when a preview was asked
    for this iteration, else ``None``. ``iteration`` and ``steps`` count over all
    scales of a coarse-to-fine run.
    """

    iteration: int
    steps: int
    loss: float
    losses: dict[str, float]
    elapsed: float
    image: Tensor | None = None
    scale: int = 0  # index of the scale, coarse to fine
    scales: int = 1
    size: tuple[int, int] = (0, 0)  # (width, height) of this scale

    @property
    def seconds_per_iteration(self) -> float:
        return self.elapsed / max(self.iteration, 1)


class Transfer:
    """Minimise a :class:`StyleObjective` over the pixels of an image.

    One iteration is one optimiser step with exactly one evaluation of the
    objective (forward + backward): for L-BFGS that is no line search, as in
    Gatys' and Johnson's implementations, so ``steps`` is the number of network
    evaluations. The pixels are not clamped during the optimisation (a clamp
    would corrupt L-BFGS's curvature pairs); the output is clipped to [0, 1].

    ``optimizer`` is a name (``lbfgs`` or ``adam``, made with ``lr`` and
    ``lbfgs_history``) or a factory that makes a :class:`~artistyle.optim.PixelOptimizer`
    for the pixel tensor. A non-finite loss ends the run at once unless the
    optimiser recovers from it (L-BFGS: a step back with a shorter step), and
    then after ``max_failures`` in a row.

    Iterate over it to run; break out of the loop (or call :meth:`stop`) to stop
    early. :attr:`image` is always the last good image.
    """

    def __init__(
        self,
        objective: StyleObjective,
        init: Tensor,
        *,
        steps: int,
        optimizer: str | OptimizerFactory = "lbfgs",
        lr: float = 1.0,
        lbfgs_history: int = 20,
        preview_every: int = 0,
        max_failures: int = MAX_FAILURES,
        lbfgs_storage: HistoryStorage = "fp32",
    ):
        self.objective = objective
        self.steps = steps
        self.preview_every = preview_every
        self.max_failures = max_failures
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[float] = []
        self.pixels = init.detach().clone().contiguous().requires_grad_(True)
        if isinstance(optimizer, str):
            self.optimizer: PixelOptimizer = make_optimizer(
                optimizer, self.pixels, lr=lr, lbfgs_history=lbfgs_history, lbfgs_storage=lbfgs_storage
            )
        else:
            self.optimizer = optimizer(self.pixels)
        self._stop = False
        self._failures = 0

    @property
    def image(self) -> Tensor:
        """The image the run reports, ``(1, 3, H, W)``, clipped to [0, 1] (with Adam: the average of the iterates)."""
        return self.optimizer.image.clamp(0, 1)

    def state_dict(self) -> dict[str, Any]:
        """The optimisation state after the last iteration, enough to continue bit for bit."""
        own = self.optimizer.state_dict()
        return {
            "pixels": self.pixels.detach().cpu().clone(),
            "last_good": own["last_good"],
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "history": list(self.history),
            "failures": self._failures,
            "optimizer": own["optimizer"],
            "average": own["average"],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["pixels"].shape) != tuple(self.pixels.shape):
            shape = tuple(state["pixels"].shape)
            raise ValueError(f"state for an image of shape {shape}, not {tuple(self.pixels.shape)}")
        with torch.no_grad():
            self.pixels.copy_(state["pixels"])
        self.iteration = int(state["iteration"])
        self.elapsed = float(state["elapsed"])
        self.history = list(state["history"])
        self._failures = int(state["failures"])
        self.optimizer.load_state_dict(state)

    def stop(self) -> None:
        """Ask the loop to end after the current iteration."""
        self._stop = True

    def evaluate(self) -> dict[str, float]:
        """The loss terms of the current image, without a gradient."""
        return {k: float(v) for k, v in self.objective.terms(self.pixels).items()}

    def _evaluate(self) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Loss terms, total loss and its gradient at the current pixels (benchmarks wrap this to time it)."""
        return self.objective.evaluate(self.pixels)

    def _step(self) -> tuple[float, dict[str, Tensor]]:
        """One iteration: one evaluation, one move of the pixels."""
        record: dict[str, Tensor] = {}

        def closure() -> tuple[Tensor, Tensor]:
            terms, loss, grad = self._evaluate()
            record.update(terms)
            return loss, grad

        return self.optimizer.step(closure), record

    def __iter__(self) -> Iterator[Progress]:
        start = time.perf_counter() - self.elapsed
        while self.iteration < self.steps and not self._stop:
            loss, record = self._step()
            if math.isfinite(loss):
                self._failures = 0
            else:
                # L-BFGS has stepped back and retries with a shorter step; give up if that keeps failing.
                self._failures += 1
                if self._failures >= self.max_failures or not self.optimizer.recovers_from_nonfinite:
                    raise RunError(
                        f"the loss became {loss} at iteration {self.iteration + 1}; "
                        "try lower weights, another --init or --optimizer adam"
                    )
            self.iteration += 1
            self.history.append(loss)
            self.elapsed = time.perf_counter() - start
            want_preview = self.preview_every > 0 and (
                self.iteration % self.preview_every == 0 or self.iteration == self.steps
            )
            yield Progress(
                iteration=self.iteration,
                steps=self.steps,
                loss=loss,
                losses={k: float(v) for k, v in record.items()},
                elapsed=self.elapsed,
                image=self.image.cpu() if want_preview else None,
            )

    def run(self, callback: Callable[[Progress], object] | None = None) -> Tensor:
        """Run to the end (or until :meth:`stop`), calling ``callback`` each iteration."""
        for event in self:
            if callback is not None:
                callback(event)
        return self.image

"""The pixel optimisers: one protocol, :class:`PixelOptimizer`, and its two implementations.

A run moves the pixels of one image. Each optimiser takes exactly one function
evaluation per :meth:`~PixelOptimizer.step` (``closure()`` returns the loss and
its gradient), so an iteration costs one forward + backward pass of the network.

:class:`LBFGS` is L-BFGS without a line search, as in Gatys' and Johnson's
implementations. ``torch.optim.LBFGS`` with ``max_iter=1`` does the same, but
with nothing to stop a bad curvature estimate from throwing the pixels to
infinity (seen here from a flat start). This one adds two guards, both
departures from textbook L-BFGS:

* a step is scaled down so that no pixel moves by more than ``max_step``
  (in units of the [0, 1] image range) in one iteration;
* a non-finite loss (or gradient) sends the image back to the last finite
  point, clears the memory and halves ``max_step``.

Memory: ``history`` pairs of image-sized vectors (s_k, y_k), stored in the
image's dtype (``storage="fp32"``), in bfloat16 (``"bf16"``: half the memory; each pair is
rounded once when stored, and ``rho = 1 / s.y`` is taken from the rounded pair, so the
two-loop recursion sees one consistent set of pairs), or in memory-mapped files in a private
temporary folder (``"disk"``: exact, the operating system pages them in and out); that is
the optimiser's whole state besides three vectors.

:class:`AveragedAdam` is ``torch.optim.Adam`` whose reported image is the
bias-corrected running average of its iterates (:class:`IterateAverage`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
from collections.abc import Callable
from typing import Any, Literal, Protocol, get_args

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ADAM_AVERAGE_DECAY",
    "HISTORY_STORAGES",
    "LBFGS",
    "AveragedAdam",
    "Closure",
    "HistoryStorage",
    "IterateAverage",
    "OptimizerFactory",
    "PixelOptimizer",
    "make_optimizer",
]

HistoryStorage = Literal["auto", "fp32", "bf16", "disk"]
HISTORY_STORAGES: tuple[HistoryStorage, ...] = get_args(HistoryStorage)

# One evaluation of the objective: (loss, gradient with respect to the pixels).
Closure = Callable[[], tuple[Tensor, Tensor]]


class PixelOptimizer(Protocol):
    """What a :class:`~artistyle.transfer.Transfer` needs from an optimiser of one image tensor.

    ``state_dict()`` returns the three entries a run's checkpoint stores for it:
    ``last_good`` (the last finite pixels), ``optimizer`` (the step rule's own
    state) and ``average`` (the iterate average's state, or None).
    """

    @property
    def image(self) -> Tensor:
        """The image the run reports now (not clipped): the last good pixels, or an average of the iterates."""
        ...

    @property
    def recovers_from_nonfinite(self) -> bool:
        """True when a non-finite loss is survivable: the step rolls back and the run may try again."""
        ...

    def step(self, closure: Closure) -> float:
        """Evaluate ``closure`` once at the current pixels, then move them; returns that loss."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# Makes the optimiser of a leaf tensor (the pixels).
OptimizerFactory = Callable[[Tensor], PixelOptimizer]


class LBFGS:
    """Guarded L-BFGS over one tensor ``param``, one evaluation per step (see the module docstring)."""

    def __init__(
        self, param: Tensor, *, lr: float = 1.0, history: int = 20, max_step: float = 0.5,
        storage: HistoryStorage = "fp32",
    ):
        self.param = param
        self.lr = lr
        self.history = history
        self.max_step = max_step
        self.storage = "fp32" if storage == "auto" else storage
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._files = 0
        self.steps_s: list[Tensor] = []
        self.steps_y: list[Tensor] = []
        self.rho: list[float] = []
        self._prev_x: Tensor | None = None
        self._prev_g: Tensor | None = None
        # The last pixels that were finite after a step: what the run reports and falls back to.
        self.last_good = param.detach().clone()

    @property
    def image(self) -> Tensor:
        return self.last_good

    @property
    def recovers_from_nonfinite(self) -> bool:
        return True

    def _store(self, vector: Tensor) -> Tensor:
        """``vector`` as the history keeps it (see the module docstring)."""
        if self.storage == "bf16":
            return vector.to(torch.bfloat16)
        if self.storage == "disk":
            if self._folder is None:
                self._folder = tempfile.TemporaryDirectory(prefix="artistyle-lbfgs-")
            self._files += 1
            path = os.path.join(self._folder.name, f"{self._files}.f32")
            kept = torch.from_numpy(np.memmap(path, dtype=np.float32, mode="w+", shape=tuple(vector.shape)))
            # The mapping keeps the file's pages; without its name, a pair dropped from the history frees its
            # space as soon as the tensor goes (otherwise a long run would leave one file per iteration).
            with contextlib.suppress(OSError):  # Windows cannot remove a mapped file: the folder's cleanup does
                os.unlink(path)
            kept.copy_(vector.detach().cpu())
            return kept
        return vector

    def _load(self, kept: Tensor) -> Tensor:
        """A stored vector in the image's dtype and on its device (a GPU's pairs on disk travel back each use)."""
        if kept.dtype == torch.bfloat16:
            return kept.float()
        return kept if kept.device == self.param.device else kept.to(self.param.device)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (tensors on the CPU; the history as float32, whatever
        its storage: a bf16 pair is exact in float32)."""
        return {
            "last_good": self.last_good.cpu().clone(),
            "optimizer": {
                "steps_s": [self._load(t).cpu().clone() for t in self.steps_s],
                "steps_y": [self._load(t).cpu().clone() for t in self.steps_y],
                "rho": list(self.rho),
                "prev_x": None if self._prev_x is None else self._prev_x.cpu(),
                "prev_g": None if self._prev_g is None else self._prev_g.cpu(),
                "max_step": self.max_step,
            },
            "average": None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.param.device
        rule = state["optimizer"]
        self.last_good.copy_(state["last_good"])
        self.steps_s = [self._store(t.to(device)) for t in rule["steps_s"]]
        self.steps_y = [self._store(t.to(device)) for t in rule["steps_y"]]
        self.rho = list(rule["rho"])
        self._prev_x = None if rule["prev_x"] is None else rule["prev_x"].to(device)
        self._prev_g = None if rule["prev_g"] is None else rule["prev_g"].to(device)
        self.max_step = float(rule["max_step"])

    def reset(self) -> None:
        """Forget the curvature pairs (the last point is kept: a failed step returns to it)."""
        self.steps_s.clear()
        self.steps_y.clear()
        self.rho.clear()
        self._prev_g = None

    def _direction(self, g: Tensor) -> Tensor:
        """Two-loop recursion: ``-H g`` with ``H0 = (s.y / y.y) I``."""
        q = g.clone()
        alphas = []
        load = self._load
        for s, y, rho in zip(reversed(self.steps_s), reversed(self.steps_y), reversed(self.rho)):
            a = rho * float(load(s).flatten() @ q.flatten())
            q.add_(load(y), alpha=-a)
            alphas.append(a)
        if self.steps_s:
            s, y = load(self.steps_s[-1]), load(self.steps_y[-1])
            q.mul_(float(s.flatten() @ y.flatten()) / float(y.flatten() @ y.flatten()))
        else:
            # First step: move the largest pixel by lr * max_step / 10.
            q.mul_(self.max_step * 0.1 / max(float(g.abs().max()), 1e-30))
        for (s, y, rho), a in zip(zip(self.steps_s, self.steps_y, self.rho), reversed(alphas)):
            b = rho * float(load(y).flatten() @ q.flatten())
            q.add_(load(s), alpha=a - b)
        return q.neg_()

    @torch.no_grad()
    def step(self, closure: Closure) -> float:
        """Evaluate once at the current point, then move; returns that loss."""
        loss_t, grad = closure()
        loss = float(loss_t)
        x = self.param
        if not math.isfinite(loss) or not bool(torch.isfinite(grad).all()):
            if self._prev_x is not None:
                x.copy_(self._prev_x)
            self.reset()
            self.max_step *= 0.5
        else:
            self._move(x, grad.detach())
        if bool(torch.isfinite(x).all()):
            self.last_good.copy_(x)
        return loss

    def _move(self, x: Tensor, grad: Tensor) -> None:
        """Store the new curvature pair, then step along ``-H g``, capped at ``max_step`` per pixel."""
        if self._prev_g is not None and self._prev_x is not None:
            s = self._store(x - self._prev_x)
            y = self._store(grad - self._prev_g)
            sy = float(self._load(s).flatten() @ self._load(y).flatten())
            # Keep only pairs of positive curvature, so H stays positive definite.
            if sy > 1e-10 * float(self._load(y).flatten() @ self._load(y).flatten()):
                if len(self.steps_s) == self.history:
                    self.steps_s.pop(0)
                    self.steps_y.pop(0)
                    self.rho.pop(0)
                self.steps_s.append(s)
                self.steps_y.append(y)
                self.rho.append(1.0 / sy)
        d = self._direction(grad).mul_(self.lr)
        biggest = float(d.abs().max())
        if biggest > self.max_step:
            d.mul_(self.max_step / biggest)
        self._prev_x = x.detach().clone()
        self._prev_g = grad.clone()
        x.add_(d)


class IterateAverage:
    """Exponential moving average of an optimiser's iterates, bias-corrected.

    ``v_t = d v_(t-1) + (1 - d) x_t`` and the average is ``v_t / (1 - d^t)``, so
    the first iterates are not pulled towards zero. With ``d = 0.95`` it spans
    about the last 20 iterations.
    """

    def __init__(self, like: Tensor, decay: float):
        self.decay = decay
        self.steps = 0
        self.sum = torch.zeros_like(like.detach())

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        self.steps += 1
        self.sum.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)

    @property
    def value(self) -> Tensor:
        return self.sum / (1 - self.decay**self.steps) if self.steps else self.sum

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "sum": self.sum.cpu().clone(), "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.decay = int(state["steps"]), float(state["decay"])
        self.sum.copy_(state["sum"])


ADAM_AVERAGE_DECAY = 0.95


class AveragedAdam:
    """``torch.optim.Adam`` on one tensor; the image it reports is the average of its iterates.

    Adam's iterates jitter around the optimum at a fixed step size; their running
    average is the image (Polyak averaging, as in crowsonkb/style-transfer-pytorch).
    A non-finite loss is not survivable: the step is skipped and the run should stop.
    """

    def __init__(self, param: Tensor, *, lr: float, decay: float = ADAM_AVERAGE_DECAY):
        self.param = param
        self.adam = torch.optim.Adam([param], lr=lr)
        self.average = IterateAverage(param, decay)

    @property
    def image(self) -> Tensor:
        """The bias-corrected average of the iterates; the pixels themselves before the first step."""
        return self.average.value if self.average.steps else self.param.detach()

    @property
    def recovers_from_nonfinite(self) -> bool:
        return False

    def step(self, closure: Closure) -> float:
        loss_t, grad = closure()
        loss = float(loss_t)
        if math.isfinite(loss):
            self.param.grad = grad
            self.adam.step()
            self.average.update(self.param)
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_good": self.param.detach().cpu().clone(),
            "optimizer": copy.deepcopy(self.adam.state_dict()),  # a snapshot: Adam updates its moments in place
            "average": self.average.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.adam.load_state_dict(state["optimizer"])
        if state.get("average") is not None:
            self.average.load_state_dict(state["average"])


def make_optimizer(
    name: str, param: Tensor, *, lr: float = 1.0, lbfgs_history: int = 20, lbfgs_storage: HistoryStorage = "fp32"
) -> PixelOptimizer:
    """The optimiser called ``name`` (lbfgs or adam) over ``param``."""
    if name == "lbfgs":
        return LBFGS(param, lr=lr, history=lbfgs_history, storage=lbfgs_storage)
    if name == "adam":
        return AveragedAdam(param, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")

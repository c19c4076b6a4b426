"""L-BFGS with exactly one function evaluation per iteration.

Gatys et al. and Johnson's neural-style run L-BFGS without a line search so
that one iteration costs one forward + backward pass. ``torch.optim.LBFGS``
with ``max_iter=1`` does the same, but with nothing to stop a bad curvature
estimate from throwing the pixels to infinity (seen here from a flat start).
This one adds two guards, both departures from textbook L-BFGS:

* a step is scaled down so that no pixel moves by more than ``max_step``
  (in units of the [0, 1] image range) in one iteration;
* a non-finite loss sends the image back to the last finite point, clears the
  memory and halves ``max_step``.

Memory: ``history`` pairs of image-sized vectors (s_k, y_k), stored in the
image's dtype; that is the optimiser's whole state besides two vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["LBFGS"]


class LBFGS:
    """Minimise ``closure()`` over one tensor; ``closure`` returns (loss, gradient)."""

    def __init__(self, param: Tensor, *, lr: float = 1.0, history: int = 20, max_step: float = 0.5):
        self.param = param
        self.lr = lr
        self.history = history
        self.max_step = max_step
        self.steps_s: list[Tensor] = []
        self.steps_y: list[Tensor] = []
        self.rho: list[float] = []
        self._prev_x: Tensor | None = None
        self._prev_g: Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (tensors on the CPU)."""
        return {
            "steps_s": [t.cpu() for t in self.steps_s],
            "steps_y": [t.cpu() for t in self.steps_y],
            "rho": list(self.rho),
            "prev_x": None if self._prev_x is None else self._prev_x.cpu(),
            "prev_g": None if self._prev_g is None else self._prev_g.cpu(),
            "max_step": self.max_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.param.device
        self.steps_s = [t.to(device) for t in state["steps_s"]]
        self.steps_y = [t.to(device) for t in state["steps_y"]]
        self.rho = list(state["rho"])
        self._prev_x = None if state["prev_x"] is None else state["prev_x"].to(device)
        self._prev_g = None if state["prev_g"] is None else state["prev_g"].to(device)
        self.max_step = float(state["max_step"])

    def reset(self) -> None:
        self.steps_s.clear()
        self.steps_y.clear()
        self.rho.clear()
        self._prev_g = None

    def _direction(self, g: Tensor) -> Tensor:
        """Two-loop recursion: ``-H g`` with ``H0 = (s.y / y.y) I``."""
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(self.steps_s), reversed(self.steps_y), reversed(self.rho)):
            a = rho * float(s.flatten() @ q.flatten())
            q.add_(y, alpha=-a)
            alphas.append(a)
        if self.steps_s:
            s, y = self.steps_s[-1], self.steps_y[-1]
            q.mul_(float(s.flatten() @ y.flatten()) / float(y.flatten() @ y.flatten()))
        else:
            # First step: move the largest pixel by lr * max_step / 10.
            q.mul_(self.max_step * 0.1 / max(float(g.abs().max()), 1e-30))
        for (s, y, rho), a in zip(zip(self.steps_s, self.steps_y, self.rho), reversed(alphas)):
            b = rho * float(y.flatten() @ q.flatten())
            q.add_(s, alpha=a - b)
        return q.neg_()

    @torch.no_grad()
    def step(self, closure: Callable[[], tuple[Tensor, Tensor]]) -> float:
        """Evaluate once at the current point, then move; returns that loss."""
        loss_t, grad = closure()
        loss = float(loss_t)
        x = self.param
        if not math.isfinite(loss) or not bool(torch.isfinite(grad).all()):
            if self._prev_x is not None:
                x.copy_(self._prev_x)
            self.reset()
            self.max_step *= 0.5
            return loss
        grad = grad.detach()
        if self._prev_g is not None and self._prev_x is not None:
            s = x - self._prev_x
            y = grad - self._prev_g
            sy = float(s.flatten() @ y.flatten())
            # Keep only pairs of positive curvature, so H stays positive definite.
            if sy > 1e-10 * float(y.flatten() @ y.flatten()):
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
        return loss

"""The pixel optimisers on their own: the guarded L-BFGS and Adam with iterate averaging."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from artistyle.optim import LBFGS, AveragedAdam, PixelOptimizer, make_optimizer


def quadratic(x: Tensor, scales: Tensor, centre: Tensor) -> tuple[Tensor, Tensor]:
    """``f = 0.5 sum(c (x - b)^2)`` and its gradient ``c (x - b)``."""
    diff = x - centre
    return 0.5 * (scales * diff * diff).sum(), scales * diff


def problem(n: int = 12, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """A start, curvatures spread over two decades, and the minimum (float64)."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, generator=g, dtype=torch.float64)
    scales = 10 ** (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1)
    centre = torch.rand(n, generator=g, dtype=torch.float64)
    return x0, scales, centre


def closure_for(param: Tensor, scales: Tensor, centre: Tensor, seen: list[Tensor] | None = None):  # type: ignore[no-untyped-def]
    def closure() -> tuple[Tensor, Tensor]:
        if seen is not None:
            seen.append(param.detach().clone())
        return quadratic(param, scales, centre)

    return closure


def test_both_optimizers_follow_the_protocol() -> None:
    x = torch.zeros(3)
    optimizers: list[PixelOptimizer] = [make_optimizer("lbfgs", x.clone()), make_optimizer("adam", x.clone(), lr=0.1)]
    assert isinstance(optimizers[0], LBFGS) and isinstance(optimizers[1], AveragedAdam)
    assert [o.recovers_from_nonfinite for o in optimizers] == [True, False]
    for optimizer in optimizers:
        assert set(optimizer.state_dict()) == {"last_good", "optimizer", "average"}
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("sgd", x)


def test_lbfgs_converges_on_a_small_quadratic() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    optimizer = LBFGS(x, history=5)
    closure = closure_for(x, scales, centre)
    losses = [optimizer.step(closure) for _ in range(60)]
    assert losses[-1] < 1e-12 * losses[0]
    assert torch.allclose(x, centre, atol=1e-6)
    assert torch.equal(optimizer.image, x)  # every point was finite: the last good image is the last point


def test_no_pixel_moves_more_than_max_step() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    # lr 1000 makes every L-BFGS step huge: the cap has to hold it.
    optimizer = LBFGS(x, lr=1000.0, max_step=0.05)
    closure = closure_for(x, scales, centre)
    moves = []
    for _ in range(20):
        before = x.clone()
        optimizer.step(closure)
        moves.append(float((x - before).abs().max()))
    assert max(moves) <= 0.05 * (1 + 1e-12)
    assert sum(math.isclose(m, 0.05, rel_tol=1e-9) for m in moves) >= 10  # the cap binds, not just holds


def test_first_step_moves_the_largest_pixel_by_a_tenth_of_max_step() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    LBFGS(x, max_step=0.4).step(closure_for(x, scales, centre))
    assert math.isclose(float((x - x0).abs().max()), 0.04, rel_tol=1e-9)


@pytest.mark.parametrize("poison", ["loss", "gradient"])
def test_a_non_finite_evaluation_rolls_back_and_halves_max_step(poison: str) -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    optimizer = LBFGS(x, max_step=0.5)
    seen: list[Tensor] = []
    calls = {"n": 0}

    def closure() -> tuple[Tensor, Tensor]:
        calls["n"] += 1
        seen.append(x.clone())
        loss, grad = quadratic(x, scales, centre)
        if calls["n"] == 4:
            if poison == "loss":
                loss = loss * float("nan")
            else:
                grad = grad.clone()
                grad[3] = float("inf")
        return loss, grad

    for _ in range(3):
        optimizer.step(closure)
    assert len(optimizer.steps_s) == 2
    loss = optimizer.step(closure)  # the 4th evaluation fails
    assert math.isnan(loss) if poison == "loss" else math.isfinite(loss)
    # Back at the last point whose evaluation was finite (the 3rd), memory cleared, step halved.
    assert torch.equal(x, seen[2])
    assert optimizer.steps_s == [] and optimizer.rho == [] and optimizer.max_step == 0.25
    assert torch.equal(optimizer.image, seen[2])
    # It goes on from there: the next step is a first step again, at most a tenth of the halved cap.
    optimizer.step(closure)
    assert torch.equal(seen[4], seen[2])
    assert float((x - seen[2]).abs().max()) <= 0.025 * (1 + 1e-12)


def test_a_failure_on_the_first_step_keeps_the_start() -> None:
    x = torch.ones(4)
    optimizer = LBFGS(x)
    loss = optimizer.step(lambda: (torch.tensor(float("inf")), torch.ones(4)))
    assert loss == float("inf") and torch.equal(x, torch.ones(4)) and optimizer.max_step == 0.25


def test_pairs_of_non_positive_curvature_are_not_stored() -> None:
    # A concave function: y = -s, so s.y = -|s|^2 < 0 for every pair.
    x = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    optimizer = LBFGS(x, max_step=0.1)

    def concave() -> tuple[Tensor, Tensor]:
        return -0.5 * (x * x).sum(), -x.clone()

    for _ in range(5):
        optimizer.step(concave)
    assert optimizer.steps_s == [] and optimizer.steps_y == [] and optimizer.rho == []
    # The same steps on the convex twin store a pair each time after the first.
    y = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    convex = LBFGS(y, max_step=0.1)
    for _ in range(5):
        convex.step(lambda: (0.5 * (y * y).sum(), y.clone()))
    assert len(convex.steps_s) == 4 and all(r > 0 for r in convex.rho)


def test_history_drops_the_oldest_pair() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    optimizer = LBFGS(x, history=2)
    seen: list[Tensor] = []
    closure = closure_for(x, scales, centre, seen)
    for k in range(1, 7):
        optimizer.step(closure)
        assert len(optimizer.steps_s) == min(k - 1, 2)
    # After six evaluations the two pairs are those of evaluations 5 and 6 (s_k = x_k - x_(k-1)).
    assert torch.equal(optimizer.steps_s[0], seen[4] - seen[3])
    assert torch.equal(optimizer.steps_s[1], seen[5] - seen[4])
    grads = [quadratic(p, scales, centre)[1] for p in seen]
    assert torch.equal(optimizer.steps_y[1], grads[5] - grads[4])
    assert optimizer.rho[1] == 1.0 / float((seen[5] - seen[4]) @ (grads[5] - grads[4]))


def test_lbfgs_state_dict_continues_bit_for_bit() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    optimizer = LBFGS(x, history=3)
    closure = closure_for(x, scales, centre)
    for _ in range(7):
        optimizer.step(closure)
    state, saved_x = optimizer.state_dict(), x.clone()
    expected = [optimizer.step(closure) for _ in range(8)]

    y = saved_x.clone()
    resumed = LBFGS(y, history=3)
    resumed.load_state_dict(state)
    got = [resumed.step(closure_for(y, scales, centre)) for _ in range(8)]
    assert got == expected
    assert torch.equal(y, x) and torch.equal(resumed.image, optimizer.image)
    assert resumed.max_step == optimizer.max_step


def test_adam_reports_the_bias_corrected_average_of_its_iterates() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    decay = 0.9
    optimizer = AveragedAdam(x, lr=0.05, decay=decay)
    assert torch.equal(optimizer.image, x0)  # before the first step: the start
    iterates = []
    closure = closure_for(x, scales, centre)
    for _ in range(15):
        optimizer.step(closure)
        iterates.append(x.detach().clone())
    steps = len(iterates)
    weighted = sum((1 - decay) * decay ** (steps - 1 - t) * it for t, it in enumerate(iterates))
    expected = weighted / (1 - decay**steps)
    assert torch.allclose(optimizer.image, expected, rtol=1e-12, atol=1e-12)
    assert not torch.equal(optimizer.image, x)


def test_adam_skips_a_non_finite_step_and_does_not_recover() -> None:
    x = torch.ones(3)
    optimizer = AveragedAdam(x, lr=0.1)
    loss = optimizer.step(lambda: (torch.tensor(float("nan")), torch.ones(3)))
    assert math.isnan(loss) and torch.equal(x, torch.ones(3)) and optimizer.average.steps == 0
    assert not optimizer.recovers_from_nonfinite


def test_adam_state_dict_continues_bit_for_bit() -> None:
    x0, scales, centre = problem()
    x = x0.clone()
    optimizer = AveragedAdam(x, lr=0.05)
    for _ in range(5):
        optimizer.step(closure_for(x, scales, centre))
    state, saved = optimizer.state_dict(), x.clone()
    expected = [optimizer.step(closure_for(x, scales, centre)) for _ in range(5)]
    y = saved.clone()
    resumed = AveragedAdam(y, lr=0.05)
    resumed.load_state_dict(state)
    got = [resumed.step(closure_for(y, scales, centre)) for _ in range(5)]
    assert got == expected and torch.equal(y, x) and torch.equal(resumed.image, optimizer.image)

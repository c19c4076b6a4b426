"""Square roots of symmetric positive semi-definite matrices, for the 2-Wasserstein style term.

The W2 distance between Gaussians needs ``tr((S^1/2 X S^1/2)^1/2)`` (:mod:`artistyle.style_terms`),
differentiated with respect to ``X`` at every evaluation. Two ways:

* ``eigh`` (CPUs): ``M = V diag(l) V^T``, ``tr(M^1/2) = sum_i sqrt(l_i)``, in float64. Its gradient
  ``d tr(M^1/2) / dM = 1/2 M^-1/2 = V diag(1 / (2 sqrt(l_i))) V^T`` is unbounded where ``M`` is
  singular (feature covariances often are: dead ReLU channels, fewer positions than channels), so
  the backward takes ``sqrt(max(l_i, floor))`` with a floor relative to the largest eigenvalue:
  finite, and exact wherever ``M`` is well conditioned.
* ``newton_schulz`` (GPUs, where an eigendecomposition is slow and matrix products are cheap): the
  coupled iteration ``T = (3I - Z Y) / 2``, ``Y <- Y T``, ``Z <- T Z`` from ``Y = M / |M|_F``,
  ``Z = I`` converges to ``(M / |M|_F)^1/2``; autograd differentiates the products, which stay
  bounded for a singular ``M`` (no inverse anywhere).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

__all__ = ["EIGEN_FLOOR", "NEWTON_SCHULZ_STEPS", "SqrtMethod", "psd_sqrt", "sqrt_method_for", "trace_sqrt"]

SqrtMethod = Literal["eigh", "newton_schulz"]

# Eigenvalues below this fraction of the largest count as this much in the backward (see the module docstring).
EIGEN_FLOOR = 1e-8
NEWTON_SCHULZ_STEPS = 20


def sqrt_method_for(device: torch.device) -> SqrtMethod:
    """``eigh`` on a CPU (fast LAPACK, exact), ``newton_schulz`` elsewhere (matrix products only)."""
    return "eigh" if device.type == "cpu" else "newton_schulz"


def _symmetric(matrix: Tensor) -> Tensor:
    return (matrix + matrix.transpose(-1, -2)) / 2


def psd_sqrt(matrix: Tensor) -> Tensor:
    """The symmetric square root ``M^1/2`` of a symmetric PSD matrix (eigenvalues below 0 clamped), no gradient."""
    work = torch.device("cpu") if matrix.device.type == "mps" else matrix.device  # MPS has no float64
    with torch.no_grad():
        values, vectors = torch.linalg.eigh(_symmetric(matrix.detach().to(work, torch.float64)))
        root = torch.matmul(vectors * values.clamp_min(0).sqrt().unsqueeze(-2), vectors.transpose(-1, -2))
    return root.to(matrix.device, matrix.dtype)


class _TraceSqrtEigh(torch.autograd.Function):
    """``tr(M^1/2)`` by an eigendecomposition in float64, with the floored backward of the module docstring."""

    @staticmethod
    def forward(ctx: Any, matrix: Tensor) -> Tensor:
        values, vectors = torch.linalg.eigh(_symmetric(matrix.double()))
        ctx.save_for_backward(values, vectors)
        ctx.dtype = matrix.dtype
        trace: Tensor = values.clamp_min(0).sqrt().sum(-1)
        return trace.to(matrix.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> Tensor:
        values, vectors = ctx.saved_tensors
        floor = values.amax(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny) * EIGEN_FLOOR
        half_inverse_root = 0.5 / values.clamp_min(0).maximum(floor).sqrt()
        grad = torch.matmul(vectors * half_inverse_root.unsqueeze(-2), vectors.transpose(-1, -2))
        return (grad * grad_output.double().view(*grad_output.shape, 1, 1)).to(ctx.dtype)


def _trace_sqrt_newton_schulz(matrix: Tensor, steps: int) -> Tensor:
    matrix = _symmetric(matrix)
    norm = torch.linalg.matrix_norm(matrix).clamp_min(torch.finfo(matrix.dtype).tiny)
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
    y, z = matrix / norm.view(*norm.shape, 1, 1), eye
    for _ in range(steps):
        t = (3 * eye - torch.matmul(z, y)) / 2
        y, z = torch.matmul(y, t), torch.matmul(t, z)
    trace: Tensor = y.diagonal(dim1=-2, dim2=-1).sum(-1) * norm.sqrt()
    return trace


def trace_sqrt(matrix: Tensor, method: SqrtMethod = "eigh", steps: int = NEWTON_SCHULZ_STEPS) -> Tensor:
    """``tr(M^1/2)`` of symmetric PSD matrices ``(..., C, C)``, differentiable (see the module docstring)."""
    if method == "eigh":
        value: Tensor = _TraceSqrtEigh.apply(matrix)  # type: ignore[no-untyped-call]
        return value
    return _trace_sqrt_newton_schulz(matrix, steps)

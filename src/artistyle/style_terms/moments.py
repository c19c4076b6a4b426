"""Moment terms: functions ``phi(mu, S)`` of a layer's feature mean and second moment (``meanstd``, ``w2``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..losses import style_surrogate
from ..sqrtm import psd_sqrt, sqrt_method_for, trace_sqrt
from .protocol import Kernel, PositionSums, fp32, position_sums

__all__ = ["MeanStdTerm", "MomentTerm", "W2Term", "kernel_gradient"]


def kernel_gradient(features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor:
    """``w_p (K f_p + a)`` at every position of ``features`` ``(1, C, H, W)``, in its shape and dtype."""
    _, c, h, w = features.shape
    flat = fp32(features).reshape(c, h * w)
    if masks is None:
        grad = torch.matmul(kernel.quadratic[0], flat)
        if kernel.linear is not None:
            grad = grad + kernel.linear[0].unsqueeze(1)
    else:
        weights = masks.float().pow(2).flatten(1).unsqueeze(1)  # (R, 1, HW)
        per_region = torch.bmm(kernel.quadratic, flat.expand(masks.shape[0], -1, -1))
        if kernel.linear is not None:
            per_region = per_region + kernel.linear.unsqueeze(2)
        grad = (weights * per_region).sum(0)
    return grad.to(features.dtype).view(1, c, h, w)


class _ThroughSums(torch.autograd.Function):
    """A moment term's value from the whole map's sums; backward ``w_p (K f_p + a)`` (one matrix product)."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, term: MomentTerm) -> Tensor:
        value, kernel = term.from_sums(position_sums(features, term.masks, first=True), 1.0)
        ctx.save_for_backward(features)
        ctx.kernel, ctx.masks = kernel, term.masks
        return value

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (features,) = ctx.saved_tensors
        return kernel_gradient(features, ctx.kernel, ctx.masks) * grad_output.to(features.dtype), None


class MomentTerm(nn.Module):
    """A term ``sum_r s_r phi(mu_r, S_r)`` of each region's feature mean and second moment.

    ``mean`` ``(R, C)`` and ``second`` ``(R, C, C)``: each region's target moments; ``share``
    ``(R,)``: the regions' shares (summing to 1); ``masks`` ``(R, 1, h, w)`` at the layer's size,
    or None for one region covering the image. Subclasses give ``phi``.
    """

    needs_first: ClassVar[bool] = True
    tiling_refusal: ClassVar[str | None] = None
    target_mean: Tensor
    target_second: Tensor
    share: Tensor
    masks: Tensor | None

    def __init__(self, mean: Tensor, second: Tensor, share: Tensor | None = None, masks: Tensor | None = None):
        super().__init__()
        # Kept in float64 (but on MPS, which has none): the square roots of nearly singular covariances
        # magnify float32 rounding of the targets (sqrt(eps) ~ 3e-4 relative).
        dtype = torch.float32 if mean.device.type == "mps" else torch.float64
        self.register_buffer("target_mean", mean.detach().to(dtype).reshape(-1, mean.shape[-1]))
        self.register_buffer("target_second", second.detach().to(dtype).reshape(-1, *second.shape[-2:]))
        regions = self.target_mean.shape[0]
        self.register_buffer(
            "share", torch.ones(regions, device=mean.device) / regions if share is None else share.detach().float()
        )
        self.register_buffer("masks", None if masks is None else masks.detach())

    @property
    def target(self) -> Tensor:
        """The target second moments (Gram matrices), as a :class:`StyleLoss`'s ``target``."""
        return self.target_second if self.masks is not None else self.target_second[0]

    def phi(self, mean: Tensor, second: Tensor) -> Tensor:
        """Per region ``(R,)``: the unweighted term at moments ``mean`` ``(R, C)``, ``second`` ``(R, C, C)``."""
        raise NotImplementedError

    def from_sums(self, sums: PositionSums, scale: float) -> tuple[Tensor, Kernel]:
        """The value ``scale sum_r s_r phi`` and its kernel (module docstring), by autograd on the moments."""
        assert sums.first is not None, "a moment term needs the first sums"
        # In float64: the covariance S - mu mu^T and W^2 = tr(..) + tr(..) - 2 tr(..) cancel large numbers.
        # (MPS has no float64: there the small matrices go to the CPU.)
        device = sums.second.device
        work = torch.device("cpu") if device.type == "mps" else device
        mass = sums.mass.to(work, torch.float64).clamp_min(1e-12)
        with torch.enable_grad():
            mean = (sums.first.to(work, torch.float64) / mass.view(-1, 1)).detach().requires_grad_(True)
            second = (sums.second.to(work, torch.float64) / mass.view(-1, 1, 1)).detach().requires_grad_(True)
            value = scale * (self.share.to(mean) * self.phi(mean, second)).sum()
            grad_mean, grad_second = torch.autograd.grad(value, (mean, second))
        quadratic = (grad_second + grad_second.transpose(1, 2)) / mass.view(-1, 1, 1)
        dtype = sums.second.dtype
        linear = grad_mean / mass.view(-1, 1)
        return value.detach().to(device, dtype), Kernel(quadratic.to(device, dtype), linear.to(device, dtype))

    def surrogate(self, features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor:
        """``sum_p w_p (a . f_p + 1/2 f_p^T K f_p)``: with the kernel fixed, its gradient is the term's."""
        quadratic = style_surrogate(features, kernel.quadratic, masks)
        flat = fp32(features)
        weighted = (flat if masks is None else flat * masks.pow(2)).flatten(2).sum(-1)  # (R, C)
        assert kernel.linear is not None
        return quadratic + (kernel.linear * weighted).sum()

    def forward(self, features: Tensor) -> Tensor:
        if features.shape[0] != 1:
            raise ValueError("a moment style term takes one image at a time")
        value: Tensor = _ThroughSums.apply(features, self)  # type: ignore[no-untyped-call]
        return value


class MeanStdTerm(MomentTerm):
    """``meanstd``: Gram plus relative mean and standard-deviation errors (module docstring)."""

    def phi(self, mean: Tensor, second: Tensor) -> Tensor:
        target_mean, target_second = self.target_mean.to(mean), self.target_second.to(second)
        target_sd = _deviation(target_mean, target_second)
        scale = target_second.pow(2).mean(dim=(1, 2))
        gram = (second - target_second).pow(2).mean(dim=(1, 2))
        mean_error = (mean - target_mean).pow(2).mean(1) / target_mean.pow(2).mean(1).clamp_min(1e-12)
        sd_error = (_deviation(mean, second) - target_sd).pow(2).mean(1) / target_sd.pow(2).mean(1).clamp_min(1e-12)
        return gram + scale * (mean_error + sd_error)


def _deviation(mean: Tensor, second: Tensor) -> Tensor:
    """Per-channel standard deviations ``sqrt(S_cc - mu_c^2)``, kept off 0 (its gradient is unbounded there)."""
    variance = second.diagonal(dim1=1, dim2=2) - mean.pow(2)
    return (variance.clamp_min(0) + 1e-5).sqrt()


class W2Term(MomentTerm):
    """``w2``: the 2-Wasserstein distance between the Gaussians of the features (module docstring)."""

    target_root: Tensor

    def __init__(self, mean: Tensor, second: Tensor, share: Tensor | None = None, masks: Tensor | None = None):
        super().__init__(mean, second, share, masks)
        self.register_buffer("target_root", psd_sqrt(_covariance(self.target_mean, self.target_second)))

    def phi(self, mean: Tensor, second: Tensor) -> Tensor:
        target_mean, target_second = self.target_mean.to(mean), self.target_second.to(second)
        root = self.target_root.to(second)
        covariance = _covariance(mean, second)
        inner = torch.matmul(torch.matmul(root, covariance), root)
        distance = (
            (mean - target_mean).pow(2).sum(1)
            + covariance.diagonal(dim1=1, dim2=2).sum(1)
            + _covariance(target_mean, target_second).diagonal(dim1=1, dim2=2).sum(1)
            - 2 * trace_sqrt(inner, sqrt_method_for(inner.device))
        )
        trace = target_second.diagonal(dim1=1, dim2=2).sum(1).clamp_min(1e-12)
        return 4 * target_second.pow(2).mean(dim=(1, 2)) / trace * distance


def _covariance(mean: Tensor, second: Tensor) -> Tensor:
    """``S - mu mu^T`` per region."""
    return second - mean.unsqueeze(2) * mean.unsqueeze(1)

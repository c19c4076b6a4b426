"""The sliced Wasserstein term (``sw``): sorted projections on fixed directions against the style's quantiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..vgg import LAYERS
from .protocol import Kernel, PositionSums, fp32

__all__ = ["SLICED_SEED", "SlicedTerm", "mixture_quantiles", "sliced_directions"]

# The sliced term's directions: a seed of their own, so that no run's seed (nor the panel's) moves them.
SLICED_SEED = 20211


def sliced_directions(layer: str, channels: int, device: torch.device) -> Tensor:
    """The ``sw`` term's ``C x K`` unit directions (``K = C``) at ``layer``: the same in every run."""
    generator = torch.Generator().manual_seed(SLICED_SEED + [spec.name for spec in LAYERS].index(layer))
    directions = torch.randn(channels, channels, generator=generator, dtype=torch.float64)
    unit: Tensor = directions / directions.norm(dim=0, keepdim=True)
    return unit.float().to(device)


class SlicedTerm(nn.Module):
    """``sw``: sliced Wasserstein against the style's quantiles on fixed directions (module docstring).

    ``directions`` ``(C, K)``; ``values`` ``(K, M)`` the styles' projections sorted per direction and
    ``levels`` ``(K, M)`` their quantile levels (the mixture's with blend weights); ``second``: the
    (blended) Gram target, for the weight.
    """

    needs_first: ClassVar[bool] = False
    tiling_refusal: ClassVar[str | None] = "sorts every position's projection at once"
    masks = None
    directions: Tensor
    values: Tensor
    levels: Tensor

    def __init__(self, directions: Tensor, values: Tensor, levels: Tensor, second: Tensor):
        super().__init__()
        self.register_buffer("directions", directions.detach().float())
        self.register_buffer("values", values.detach().float())
        self.register_buffer("levels", levels.detach().float())
        channels = directions.shape[0]
        self.weight = float(4 * second.pow(2).mean() * channels / second.diagonal().sum().clamp_min(1e-12))
        self._quantiles: tuple[int, Tensor] | None = None

    def quantiles(self, positions: int) -> Tensor:
        """The target ``(K, N)``: the style's quantiles at levels ``(i + 1/2) / N`` (kept for the last ``N``)."""
        kept = self._quantiles
        if kept is None or kept[0] != positions or kept[1].device != self.values.device:
            at = (torch.arange(positions, device=self.values.device, dtype=torch.float32) + 0.5) / positions
            kept = self._quantiles = (positions, _interpolate_rows(self.levels, self.values, at))
        return kept[1]

    def forward(self, features: Tensor) -> Tensor:
        if features.shape[0] != 1:
            raise ValueError("the sliced style term takes one image at a time")
        flat = fp32(features).flatten(2)[0]
        projected = torch.matmul(self.directions.T, flat).sort(dim=1).values
        return self.weight * (projected - self.quantiles(flat.shape[1])).pow(2).mean()

    def from_sums(self, sums: PositionSums, scale: float) -> tuple[Tensor, Kernel]:
        raise ValueError(f"the sliced Wasserstein term cannot be tiled: it {self.tiling_refusal}")

    def surrogate(self, features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor:
        raise ValueError(f"the sliced Wasserstein term cannot be tiled: it {self.tiling_refusal}")


def _interpolate_rows(xp: Tensor, fp: Tensor, x: Tensor) -> Tensor:
    """Piecewise-linear ``f(x)`` per row through ``(xp, fp)`` ``(K, M)`` (``xp`` increasing), ends held."""
    rows = xp.shape[0]
    index = torch.searchsorted(xp.contiguous(), x.expand(rows, -1).contiguous()).clamp(1, xp.shape[1] - 1)
    x0, x1 = xp.gather(1, index - 1), xp.gather(1, index)
    f0, f1 = fp.gather(1, index - 1), fp.gather(1, index)
    t = ((x - x0) / (x1 - x0).clamp_min(1e-20)).clamp(0, 1)
    return f0 + t * (f1 - f0)


def mixture_quantiles(projections: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor]:
    """Sorted values and quantile levels ``(K, M)`` of the mixture of the styles' projections."""
    values = torch.cat(list(projections), dim=1)
    per_sample = torch.cat([
        torch.full((p.shape[1],), w / p.shape[1], device=values.device, dtype=torch.float64)
        for p, w in zip(projections, weights)
    ])
    values, order = values.sort(dim=1)
    mass = per_sample[order]  # (K, M): each direction sorts the samples its own way
    levels = (mass.cumsum(1) - mass / 2) / mass.sum(1, keepdim=True)
    if values.shape[1] == 1:  # one sample: hold it at every level
        values, levels = values.repeat(1, 2), torch.cat([levels * 0, levels * 0 + 1], dim=1)
    return values, levels.float()

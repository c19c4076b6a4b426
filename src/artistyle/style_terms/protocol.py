"""The style-term protocol (:class:`StyleTerm`), the sums it is fed, and Gram as one implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, get_args

import torch
from torch import Tensor

from ..losses import GuidedStyleLoss, StyleLoss, gram_sum, style_surrogate, style_term_from_gram_sums

__all__ = [
    "STYLE_LOSSES", "GramTerm", "GuidedGramTerm", "Kernel", "PositionSums", "StyleLossName", "StyleStatistics",
    "StyleTerm", "fp32", "position_sums",
]

StyleLossName = Literal["gram", "meanstd", "w2", "sw"]
STYLE_LOSSES: tuple[StyleLossName, ...] = get_args(StyleLossName)


def fp32(x: Tensor) -> Tensor:
    """Upcast half precision (sums of squares overflow fp16); keep float32/float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@dataclass(frozen=True)
class PositionSums:
    """Sums over some positions of one layer's features, per region ``r`` (one without masks).

    ``second`` ``(R, C, C)``: ``sum_p w_p f_p f_p^T``; ``mass`` ``(R,)``: ``sum_p w_p``; ``first``
    ``(R, C)``: ``sum_p w_p f_p`` where the term needs it. Sums of disjoint tiles add up.
    """

    second: Tensor
    mass: Tensor
    first: Tensor | None = None

    def __add__(self, other: PositionSums) -> PositionSums:
        first = None if self.first is None or other.first is None else self.first + other.first
        return PositionSums(self.second + other.second, self.mass + other.mass, first)


def position_sums(features: Tensor, masks: Tensor | None = None, first: bool = False) -> PositionSums:
    """:class:`PositionSums` of ``features`` ``(1, C, h, w)`` (weights ``m^2`` of ``masks`` ``(R, 1, h, w)``)."""
    second, mass = gram_sum(features, masks)  # exactly the Gram route's sums
    if not first:
        return PositionSums(second, mass)
    flat = fp32(features)
    weighted = flat if masks is None else flat * masks.pow(2)
    return PositionSums(second, mass, weighted.flatten(2).sum(-1))


@dataclass(frozen=True)
class Kernel:
    """The fixed parts of a term's surrogate: its gradient at a position is ``w_p (K f_p + a)``."""

    quadratic: Tensor  # K (R, C, C), symmetric
    linear: Tensor | None = None  # a (R, C)


class StyleTerm(Protocol):
    """One layer's style term (the module docstring): what the objective and the tiling ask of it."""

    needs_first: bool
    tiling_refusal: str | None
    masks: Tensor | None

    def __call__(self, features: Tensor) -> Tensor: ...

    def from_sums(self, sums: PositionSums, scale: float) -> tuple[Tensor, Kernel]: ...

    def surrogate(self, features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor: ...


@dataclass(frozen=True)
class StyleStatistics:
    """What the style terms need of one style image at one layer: ``mu`` ``(C,)``, ``S`` = ``A`` ``(C, C)``,
    and for ``sw`` the sorted projections ``(K, N)`` on the layer's directions."""

    mean: Tensor
    second: Tensor
    projections: Tensor | None = None


class GramTerm(StyleLoss):
    """``gram``: :class:`~artistyle.losses.StyleLoss` with the protocol's tiling methods (its own formulas)."""

    needs_first: ClassVar[bool] = False
    tiling_refusal: ClassVar[str | None] = None
    masks = None

    def from_sums(self, sums: PositionSums, scale: float) -> tuple[Tensor, Kernel]:
        value, kernel = style_term_from_gram_sums(sums.second, sums.mass, self.target, scale)
        return value, Kernel(kernel)

    def surrogate(self, features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor:
        return style_surrogate(features, kernel.quadratic, masks)


class GuidedGramTerm(GuidedStyleLoss):
    """``gram`` with region masks: :class:`~artistyle.losses.GuidedStyleLoss` with the tiling methods."""

    needs_first: ClassVar[bool] = False
    tiling_refusal: ClassVar[str | None] = None

    def from_sums(self, sums: PositionSums, scale: float) -> tuple[Tensor, Kernel]:
        value, kernel = style_term_from_gram_sums(sums.second, sums.mass, self.target, scale, self.weights)
        return value, Kernel(kernel)

    def surrogate(self, features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor:
        return style_surrogate(features, kernel.quadratic, masks)

"""Style terms beyond Gram, one protocol for all (``--style-loss gram|meanstd|w2|sw``).

A *style term* is one layer's comparison of the image's features ``F`` (``C x N`` positions)
with a target taken from the style image's features, in the spirit of pystiche's
``ComparisonLoss``. What the objective and the tiled evaluation ask of it
(:class:`StyleTerm`): its value on whole feature maps (``term(features)``, differentiable), and,
for the exact tiled evaluation (:mod:`artistyle.tiling`), which sums over positions it needs
(``needs_first``), its value and gradient kernel from those sums (``from_sums``) and the
surrogate whose gradient at a tile's positions is the true one (``surrogate``); or why it cannot
be tiled (``tiling_refusal``). Nothing outside asks which class a term is.

With weights ``w_p`` (``m(p)^2`` of a region mask, 1 without) and ``M = sum_p w_p`` the sums give
the moments ``mu = sum_p w_p f_p / M`` and ``S = sum_p w_p f_p f_p^T / M`` (the Gram matrix). Every
term here but ``sw`` is a function ``phi(mu, S)``, so ``dphi/df_p = w_p (K f_p + a)`` with
``a = (dphi/dmu) / M`` and ``K = (dphi/dS + dphi/dS^T) / M`` held fixed: exact at any size.

* ``gram`` (Gatys et al.): ``mean((S - A)^2)``; :class:`GramTerm`, the results of
  :class:`~artistyle.losses.StyleLoss` bit for bit.
* ``meanstd`` (Gram plus per-layer mean and standard deviation, after Galerne et al.'s SPST):
  ``mean((S - A)^2) + mean(A^2) [mean((mu - mu_s)^2) / mean(mu_s^2) + mean((sd - sd_s)^2) / mean(sd_s^2)]``:
  each added term is a relative error weighed like the Gram term's (a feature scale ``1 + r`` costs
  ``4 r^2 mean(A^2)`` in the Gram term and ``r^2 mean(A^2)`` in each added one).
* ``w2`` (the 2-Wasserstein distance between Gaussians, after crowsonkb's ``StyleLossW2``):
  ``W^2 = |mu - mu_s|^2 + tr(Sig + Sig_s - 2 (Sig_s^1/2 Sig Sig_s^1/2)^1/2)`` with ``Sig = S - mu mu^T``,
  weighed by ``4 mean(A^2) / tr(A)`` so that a feature scale ``1 + r`` costs what it costs the Gram term
  (``W^2 = r^2 tr(A)`` then). Blends are exact mixtures: ``mu`` and ``S`` blend linearly.
* ``sw`` (sliced Wasserstein, Heitz et al. CVPR 2021): project on ``K = C`` unit directions fixed
  for the run (a fixed seed per layer: L-BFGS sees one objective, resume is exact), sort, compare
  with the style's quantiles at the same levels (``(i + 1/2) / N``: style and output of different
  sizes, and blends as weighted mixtures); ``mean((sort(D^T F) - Q)^2)`` weighed by
  ``4 mean(A^2) C / tr(A)`` (same scaling argument: ``E[(d^T f)^2] = tr(A) / C``). It needs every
  position's projection sorted at once: no tiling, no region masks (refused before any work).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import UsageError
from ..losses import gram_matrix
from .moments import MeanStdTerm, MomentTerm, W2Term, kernel_gradient
from .protocol import (
    STYLE_LOSSES,
    GramTerm,
    GuidedGramTerm,
    Kernel,
    PositionSums,
    StyleLossName,
    StyleStatistics,
    StyleTerm,
    fp32,
    position_sums,
)
from .sliced import SlicedTerm, mixture_quantiles, sliced_directions

__all__ = [
    "STYLE_LOSSES", "GramTerm", "GuidedGramTerm", "Kernel", "MeanStdTerm", "MomentTerm", "PositionSums",
    "SlicedTerm", "StyleLossName", "StyleStatistics", "StyleTerm", "W2Term", "check_style_loss", "kernel_gradient",
    "make_style_term", "position_sums", "sliced_directions", "style_statistics", "tiling_refusal", "untileable",
]


def style_statistics(kind: StyleLossName, features: Tensor, layer: str) -> StyleStatistics:
    """The :class:`StyleStatistics` of one style image's ``features`` ``(1, C, H, W)`` at ``layer``."""
    flat = fp32(features).flatten(2)[0]  # (C, N)
    mean = flat.mean(1)
    second = gram_matrix(features)[0]
    if kind != "sw":
        return StyleStatistics(mean, second)
    directions = sliced_directions(layer, flat.shape[0], flat.device)
    return StyleStatistics(mean, second, torch.matmul(directions.T, flat).sort(dim=1).values)


def tiling_refusal(kind: StyleLossName) -> str | None:
    """Why ``kind`` cannot be evaluated in tiles, or None (the one word for the planner and the checks)."""
    return SlicedTerm.tiling_refusal if kind == "sw" else None


def untileable(kind: StyleLossName) -> str | None:
    """The user's one line for a ``kind`` that cannot be tiled (``--style-loss sw cannot be tiled: ...``), or None."""
    reason = tiling_refusal(kind)
    return None if reason is None else f"--style-loss {kind} cannot be tiled: it {reason}"


def check_style_loss(kind: StyleLossName, tiled: bool, masked: bool, workers: bool = False) -> None:
    """Refuse, before any work, a style loss that cannot follow ``--tile``, ``--tile-workers`` or ``--mask``."""
    if kind == "sw" and workers:
        raise UsageError("--style-loss sw cannot be used with --tile-workers: the workers evaluate tiles, and sw "
                         "needs every position at once; use w2 or meanstd")
    if kind == "sw" and (tiled or masked):
        raise UsageError(f"--style-loss sw cannot be used with --{'mask' if masked else 'tile'}: it "
                         f"{'cannot follow region masks' if masked else tiling_refusal(kind)}; use w2 or meanstd")


def make_style_term(
    kind: StyleLossName, layer: str, stats: Sequence[StyleStatistics], blend: Sequence[float],
    masks: Tensor | None = None,
) -> nn.Module:
    """The ``kind`` term of ``layer`` for the styles' ``stats`` at ``blend`` weights (summing to 1).

    Without ``masks`` the styles blend in target space (Gram: ``A = sum_k b_k A_k``; moments: ``mu``
    and ``S`` likewise, an exact mixture; ``sw``: the mixture's quantiles); with ``masks``
    ``(R, 1, h, w)`` region ``k`` gets style ``k`` alone and ``blend`` weighs the regions' terms.
    """
    share = torch.tensor([float(b) for b in blend], device=stats[0].second.device)
    if masks is not None:
        if kind == "sw":
            raise ValueError("the sliced Wasserstein term cannot follow region masks")
        means, seconds = torch.stack([s.mean for s in stats]), torch.stack([s.second for s in stats])
        if kind == "gram":
            return GuidedGramTerm(seconds, masks, share)
        return (W2Term if kind == "w2" else MeanStdTerm)(means, seconds, share, masks)
    second: Tensor | float = 0
    mean: Tensor | float = 0
    for s, b in zip(stats, blend):  # the Gram route's blend, operation for operation
        second, mean = second + s.second * b, mean + s.mean * b
    assert isinstance(second, Tensor) and isinstance(mean, Tensor)
    if kind == "gram":
        return GramTerm(second)
    if kind == "sw":
        projections = [s.projections for s in stats]
        assert all(p is not None for p in projections)
        values, levels = mixture_quantiles([p for p in projections if p is not None], blend)
        return SlicedTerm(sliced_directions(layer, mean.shape[0], mean.device), values, levels, second)
    return (W2Term if kind == "w2" else MeanStdTerm)(mean, second)

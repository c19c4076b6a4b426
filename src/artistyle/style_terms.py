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
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, get_args

import torch
from torch import Tensor, nn

from .errors import UsageError
from .losses import GuidedStyleLoss, StyleLoss, gram_matrix, gram_sum, style_surrogate, style_term_from_gram_sums
from .sqrtm import psd_sqrt, sqrt_method_for, trace_sqrt
from .vgg import LAYERS

__all__ = [
    "STYLE_LOSSES", "GramTerm", "GuidedGramTerm", "Kernel", "MeanStdTerm", "PositionSums", "SlicedTerm",
    "StyleLossName", "StyleStatistics", "StyleTerm", "W2Term", "check_style_loss", "make_style_term", "position_sums",
    "sliced_directions", "style_statistics", "tiling_refusal",
]

StyleLossName = Literal["gram", "meanstd", "w2", "sw"]
STYLE_LOSSES: tuple[StyleLossName, ...] = get_args(StyleLossName)
# The sliced term's directions: a seed of their own, so that no run's seed (nor the panel's) moves them.
SLICED_SEED = 20211


def _fp32(x: Tensor) -> Tensor:
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
    flat = _fp32(features)
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


def sliced_directions(layer: str, channels: int, device: torch.device) -> Tensor:
    """The ``sw`` term's ``C x K`` unit directions (``K = C``) at ``layer``: the same in every run."""
    generator = torch.Generator().manual_seed(SLICED_SEED + [spec.name for spec in LAYERS].index(layer))
    directions = torch.randn(channels, channels, generator=generator, dtype=torch.float64)
    unit: Tensor = directions / directions.norm(dim=0, keepdim=True)
    return unit.float().to(device)


def style_statistics(kind: StyleLossName, features: Tensor, layer: str) -> StyleStatistics:
    """The :class:`StyleStatistics` of one style image's ``features`` ``(1, C, H, W)`` at ``layer``."""
    flat = _fp32(features).flatten(2)[0]  # (C, N)
    mean = flat.mean(1)
    second = gram_matrix(features)[0]
    if kind != "sw":
        return StyleStatistics(mean, second)
    directions = sliced_directions(layer, flat.shape[0], flat.device)
    return StyleStatistics(mean, second, torch.matmul(directions.T, flat).sort(dim=1).values)


def tiling_refusal(kind: StyleLossName) -> str | None:
    """Why ``kind`` cannot be evaluated in tiles, or None (the one word for the planner and the checks)."""
    return SlicedTerm.tiling_refusal if kind == "sw" else None


def check_style_loss(kind: StyleLossName, *, tiled: bool, masked: bool) -> None:
    """Refuse, before any work, a style loss that cannot follow ``--tile`` or ``--mask``."""
    if kind == "sw" and (tiled or masked):
        raise UsageError(f"--style-loss sw cannot be used with --{'mask' if masked else 'tile'}: it "
                         f"{'cannot follow region masks' if masked else tiling_refusal(kind)}; use w2 or meanstd")


def kernel_gradient(features: Tensor, kernel: Kernel, masks: Tensor | None) -> Tensor:
    """``w_p (K f_p + a)`` at every position of ``features`` ``(1, C, H, W)``, in its shape and dtype."""
    _, c, h, w = features.shape
    flat = _fp32(features).reshape(c, h * w)
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
        flat = _fp32(features)
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
        flat = _fp32(features).flatten(2)[0]
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


def _mixture(projections: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor]:
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
        values, levels = _mixture([p for p in projections if p is not None], blend)
        return SlicedTerm(sliced_directions(layer, mean.shape[0], mean.device), values, levels, second)
    return (W2Term if kind == "w2" else MeanStdTerm)(mean, second)

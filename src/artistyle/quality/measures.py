"""The panel's formulas, each once, on float64 tensors: no network, no files, no global random state.

* Gram distance:  G = F F^T / N (F: C x N features), d = mean((G_a - G_b)^2) over the C x C entries
  (the normalisation of :func:`artistyle.losses.style_loss`, written again here on purpose: the panel
  must not share code with the losses it judges).
* Fréchet (2-Wasserstein between Gaussians, as FID):
  d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2),
  the cross term as the nuclear norm of R_a R_b^T for factors R^T R = S (Cholesky's, or the centred
  positions where there are fewer than channels; an eigendecomposition only for a singular covariance).
* Sliced Wasserstein: SW_2^2 = mean over unit directions u of W_2^2(<a, u>, <b, u>), with the exact
  one-dimensional W_2^2 of two uniform empirical distributions of any sizes (quantile functions matched
  on the union of their breakpoints), so unequal sample counts need no resampling.
* SSIM (Wang et al. 2004) on one plane: an 11-tap Gaussian window (sigma 1.5), C1 = (0.01 L)^2,
  C2 = (0.03 L)^2 with L = 1, the mean of the map over the valid positions.
* Self-similarity (Kolkin et al. 2019, STROTSS's content term): D_ij = 1 - cos(f_i, f_j) over sampled
  positions; each column divided by its mean (STROTSS divides by the sum; the mean makes the number
  independent of how many positions are sampled); the mean |D^a - D^b|.
* sRGB -> CIE Lab (D65): the IEC 61966-2-1 transfer curve and matrix, the white point taken as the
  matrix's image of (1, 1, 1) so that sRGB white is exactly L = 100, a = b = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "SSIM_SIGMA", "SSIM_WINDOW", "Gaussian", "evenly_spaced", "fixed_directions", "frechet_distance", "gaussian",
    "gaussian_of", "gram", "gram_distance", "gram_from_moments", "luma", "moments", "positions", "psd_sqrt",
    "self_similarity", "self_similarity_distance", "sliced_wasserstein", "srgb_to_lab", "ssim", "wasserstein_1d",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_SSIM_C1 = 0.01**2
_SSIM_C2 = 0.03**2
# sRGB (linear) -> XYZ, D65 (IEC 61966-2-1).
_SRGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
                (0.2126729, 0.7151522, 0.0721750),
                (0.0193339, 0.1191920, 0.9503041))
_LAB_EPSILON = (6 / 29) ** 3


def positions(features: Tensor, limit: int | None = None) -> Tensor:
    """``(C, H, W)`` or ``(1, C, H, W)`` features as an ``N x C`` float64 matrix of positions.

    ``limit``: at most that many positions, evenly spaced through the image in reading order (a fixed
    lattice, the same for every call), so that the sorts of sliced Wasserstein stay cheap at conv1_1.
    """
    f = features[0] if features.dim() == 4 else features
    return evenly_spaced(f.reshape(f.shape[0], -1).t().to(torch.float64), limit)


def evenly_spaced(rows: Tensor, limit: int | None) -> Tensor:
    """At most ``limit`` of the rows of ``rows``, evenly spaced (all of them when there are no more)."""
    if limit is None or rows.shape[0] <= limit:
        return rows
    index = torch.linspace(0, rows.shape[0] - 1, limit, dtype=torch.float64).round().long()
    return rows[index.to(rows.device)]


def gram(features: Tensor) -> Tensor:
    """``G = F F^T / N``: the C x C Gram matrix of ``(C, H, W)`` features over their N = H W positions."""
    rows = positions(features)
    return rows.t() @ rows / rows.shape[0]


def gram_from_moments(mean: Tensor, covariance: Tensor) -> Tensor:
    """The same Gram matrix from the features' moments: ``G = S + mu mu^T`` (population covariance), so one
    pass over the positions serves the Gram and the Fréchet distances."""
    return covariance + torch.outer(mean, mean)


def gram_distance(a: Tensor, b: Tensor) -> float:
    """``mean((G_a - G_b)^2)`` over the C x C entries, for features or for Gram matrices given directly."""
    gram_a = a if a.dim() == 2 else gram(a)
    gram_b = b if b.dim() == 2 else gram(b)
    return float(((gram_a - gram_b) ** 2).mean())


@dataclass(frozen=True)
class Gaussian:
    """The mean ``(C,)`` and covariance ``(C, C)`` of features, and a factor ``R`` with ``R^T R = S`` (any rows)."""

    mean: Tensor
    covariance: Tensor
    factor: Tensor


def moments(features: Tensor) -> tuple[Tensor, Tensor]:
    """The mean ``(C,)`` and covariance ``(C, C)`` (population: divided by N) of features over positions."""
    found = gaussian(features)
    return found.mean, found.covariance


def gaussian(features: Tensor) -> Gaussian:
    """The features' :class:`Gaussian`. The factor is the centred positions / sqrt(N) themselves when there are
    no more positions than channels (conv5_1 of a small picture: rank N, and N x C is the smaller matrix),
    else the covariance's factor (:func:`gaussian_of`)."""
    rows = positions(features)
    mean = rows.mean(0)
    centred = (rows - mean) / rows.shape[0] ** 0.5
    covariance = centred.t() @ centred
    if rows.shape[0] <= rows.shape[1]:
        return Gaussian(mean, covariance, centred)
    return gaussian_of(mean, covariance)


def gaussian_of(mean: Tensor, covariance: Tensor) -> Gaussian:
    """A :class:`Gaussian` from its moments, in float64: the factor is ``L^T`` of the Cholesky factorisation
    ``S = L L^T`` (cheap) where S is positive definite, else the symmetric square root (an eigendecomposition:
    a flat picture's features have a singular covariance)."""
    mean, covariance = mean.to(torch.float64), covariance.to(torch.float64)
    lower, info = torch.linalg.cholesky_ex(covariance)
    return Gaussian(mean, covariance, lower.t() if int(info) == 0 else psd_sqrt(covariance))


def psd_sqrt(matrix: Tensor) -> Tensor:
    """The symmetric square root of a symmetric PSD matrix (eigenvalues below zero, round-off, taken as 0)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.t()) / 2)
    root: Tensor = (vectors * values.clamp(min=0).sqrt()) @ vectors.t()
    return root


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``: the squared 2-Wasserstein distance
    between the Gaussians N(mu_a, S_a) and N(mu_b, S_b), in float64.

    The cross term is the sum of the singular values of ``R_a R_b^T``: the eigenvalues of ``S_a S_b =
    R_a^T R_a R_b^T R_b``, the same as those of ``S_a^1/2 S_b S_a^1/2``, are the nonzero ones of
    ``(R_a R_b^T)(R_a R_b^T)^T``. No matrix square root is needed where the factors are Cholesky's.
    """
    cross = torch.linalg.svdvals(a.factor @ b.factor.t()).sum()
    value = ((a.mean - b.mean) ** 2).sum() + torch.trace(a.covariance) + torch.trace(b.covariance) - 2 * cross
    return max(float(value), 0.0)  # round-off can leave -1e-12 for equal Gaussians


def fixed_directions(dimension: int, count: int, seed: int) -> Tensor:
    """``count`` unit vectors in R^dimension as the columns of a ``dimension x count`` float64 matrix, drawn
    from their own generator seeded with ``seed`` (never torch's global one), on the CPU: the same
    directions on every machine, whatever a run or a test did to the global seed."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    directions = torch.randn(dimension, count, generator=generator, dtype=torch.float64)
    unit: Tensor = directions / directions.norm(dim=0, keepdim=True)
    return unit


def wasserstein_1d(a: Tensor, b: Tensor) -> Tensor:
    """The exact squared 2-Wasserstein distance, row by row, between the uniform empirical distributions of
    the rows of ``a`` (K x N) and ``b`` (K x M): ``integral over t in (0, 1] of (F_a^-1(t) - F_b^-1(t))^2``;
    a one-dimensional ``a`` and ``b`` are one row each (the result is then a scalar tensor).

    Both quantile functions are steps, constant between the breakpoints i/N and j/M; on the union of those
    breakpoints (counted in units of 1/(N M), in integers, so no breakpoint is lost to rounding) each interval
    pairs one sorted value of ``a`` with one of ``b``. With N = M it is the mean squared difference of the
    sorted rows.
    """
    if a.dim() == 1:
        return wasserstein_1d(a[None], b[None])[0]
    # Rows, sorted along the contiguous axis: several times faster than sorting the columns of an N x K matrix.
    sorted_a = a.to(torch.float64).contiguous().sort(dim=1).values
    sorted_b = b.to(torch.float64).contiguous().sort(dim=1).values
    n, m = sorted_a.shape[1], sorted_b.shape[1]
    if n == m:
        return ((sorted_a - sorted_b) ** 2).mean(1)
    ends = torch.unique(torch.cat([torch.arange(1, n + 1) * m, torch.arange(1, m + 1) * n]))  # sorted
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])
    widths = (ends - starts).to(torch.float64) / (n * m)
    # On the interval (start, end], a's quantile is its value number ceil(end / M) - 1 (0-based).
    index_a = torch.div(ends + m - 1, m, rounding_mode="floor") - 1
    index_b = torch.div(ends + n - 1, n, rounding_mode="floor") - 1
    device = sorted_a.device
    gaps = sorted_a[:, index_a.to(device)] - sorted_b[:, index_b.to(device)]
    squared: Tensor = gaps**2 @ widths.to(device)
    return squared


def sliced_wasserstein(a: Tensor, b: Tensor, directions: Tensor) -> float:
    """``SW_2^2``: the mean over the columns u of ``directions`` of ``W_2^2(a u, b u)``, for samples ``a``
    (N x D) and ``b`` (M x D)."""
    directions = directions.to(device=a.device, dtype=torch.float64)
    return float(wasserstein_1d(directions.t() @ a.to(torch.float64).t(), directions.t() @ b.to(torch.float64).t())
                 .mean())


def luma(rgb: Tensor) -> Tensor:
    """``Y' = 0.299 R' + 0.587 G' + 0.114 B'`` (Rec. 601, on the sRGB-encoded values, as SSIM is usually
    measured) of an image ``(3, H, W)`` or ``(1, 3, H, W)``: an ``H x W`` float64 plane."""
    image = (rgb[0] if rgb.dim() == 4 else rgb).to(torch.float64)
    return 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]


def ssim(a: Tensor, b: Tensor) -> float:
    """The mean SSIM of two ``H x W`` planes in [0, 1] (1 for equal planes).

    ``SSIM = (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))`` with local
    moments under a Gaussian window (11 taps, sigma 1.5; fewer taps, to an odd count, on a plane smaller
    than that), over the positions where the window fits (no padding, as Wang et al.'s reference code).
    """
    a, b = a.to(torch.float64), b.to(torch.float64)
    taps = min(SSIM_WINDOW, a.shape[0], a.shape[1])
    taps -= 1 - taps % 2
    offsets = torch.arange(taps, dtype=torch.float64, device=a.device) - (taps - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    line = line / line.sum()
    # The Gaussian window is separable: a column pass then a row pass, on the five planes at once.
    planes = torch.stack([a, b, a * a, b * b, a * b])[:, None]
    local = F.conv2d(F.conv2d(planes, line.view(1, 1, -1, 1)), line.view(1, 1, 1, -1))[:, 0]
    mean_a, mean_b = local[0], local[1]
    var_a = local[2] - mean_a**2
    var_b = local[3] - mean_b**2
    cov = local[4] - mean_a * mean_b
    index = ((2 * mean_a * mean_b + _SSIM_C1) * (2 * cov + _SSIM_C2)
             / ((mean_a**2 + mean_b**2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2)))
    return float(index.mean())


def self_similarity(layers: Sequence[Tensor], grid: int) -> Tensor:
    """The cosine-distance matrix ``D_ij = 1 - cos(f_i, f_j)`` over a ``grid x grid`` lattice of positions (the
    centres of equal cells, features bilinearly sampled there), each layer's cosine weighted equally
    (each layer's vector is scaled to unit length before they are put together); ``n x n``, n = grid^2."""
    centres = (torch.arange(grid, dtype=torch.float64) + 0.5) * 2 / grid - 1
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    cosines: Tensor | None = None
    for features in layers:
        f = features if features.dim() == 4 else features[None]
        where = torch.stack([xx, yy], dim=-1)[None].to(device=f.device, dtype=f.dtype)
        # Sampled in the features' own precision (a bilinear mean of four values).
        sampled = F.grid_sample(f, where, mode="bilinear", align_corners=False)[0]  # C x grid x grid
        vectors = sampled.reshape(sampled.shape[0], -1).t().to(torch.float64)
        vectors = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)
        # Cosines of unit vectors lie in [-1, 1]: float32's 1e-7 is far below what the measure resolves, and
        # the n x n x C product is the self-similarity's whole cost.
        unit = vectors.float()
        term = (unit @ unit.t()).to(torch.float64)
        cosines = term if cosines is None else cosines + term
    if cosines is None:
        raise ValueError("no layers to compare")
    return 1 - cosines / len(layers)


def self_similarity_distance(a: Sequence[Tensor], b: Sequence[Tensor], grid: int) -> float:
    """STROTSS's content distance: ``mean |D^a_ij / mean_i D^a_ij - D^b_ij / mean_i D^b_ij|`` (0 for equal
    features; a column of zeros, all positions alike, stays zero)."""

    def normalised(d: Tensor) -> Tensor:
        return d / d.mean(0, keepdim=True).clamp(min=1e-12)

    return float((normalised(self_similarity(a, grid)) - normalised(self_similarity(b, grid))).abs().mean())


def srgb_to_lab(rgb: Tensor) -> Tensor:
    """CIE L*a*b* (D65) of sRGB-encoded values in [0, 1], the channels on the last axis (``... x 3``), float64.

    ``linear = c / 12.92`` up to 0.04045, else ``((c + 0.055) / 1.055)^2.4``; XYZ = M linear;
    ``L = 116 f(Y / Yn) - 16``, ``a = 500 (f(X / Xn) - f(Y / Yn))``, ``b = 200 (f(Y / Yn) - f(Z / Zn))`` with
    ``f(t) = t^1/3`` above (6/29)^3, else ``t / (3 (6/29)^2) + 4/29``.
    """
    c = rgb.to(torch.float64).clamp(0, 1)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_SRGB_TO_XYZ, dtype=torch.float64, device=c.device)
    white = matrix.sum(1)  # XYZ of sRGB white (1, 1, 1): D65 as the sRGB matrix writes it
    xyz = (linear @ matrix.t()) / white
    f = torch.where(xyz > _LAB_EPSILON, xyz.clamp(min=_LAB_EPSILON) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-1)

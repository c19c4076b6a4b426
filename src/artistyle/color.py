"""Colour control after Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017, §5).

Images are ``(B, 3, H, W)`` RGB tensors in [0, 1]. Three tools:

* **Luminance-only transfer**: the run sees only luminance ``Y`` (YIQ). The
  style's luminance is first matched to the content's mean and spread,
  ``Y_s' = (sigma_c / sigma_s) (Y_s - mu_s) + mu_c``, and the output's ``Y`` is
  recombined with the content's ``I`` and ``Q`` (:func:`keep_content_chroma`).
* **Colour histogram matching**: an affine map ``x' = A x + b`` of the style's
  pixels with ``A Sigma_s A^T = Sigma_c`` and ``b = mu_c - A mu_s``, so the
  style's colour mean and covariance become the content's
  (:func:`match_color`). ``A`` is not unique; :data:`COLOR_MATCHES` lists the
  choices.
* **Original colours** after a run: the result's luminance with the content's
  chroma, again :func:`keep_content_chroma`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor

__all__ = [
    "COLOR_MATCHES",
    "DEFAULT_COLOR_MATCH",
    "PRESERVE_COLORS",
    "ColorMatch",
    "PreserveColor",
    "as_luminance_image",
    "keep_content_chroma",
    "luminance",
    "match_color",
    "match_color_stats",
    "match_luminance",
    "mixture_stats",
    "rgb_to_yiq",
    "yiq_to_rgb",
]

PreserveColor = Literal["luminance", "histogram"]
PRESERVE_COLORS: tuple[PreserveColor, ...] = get_args(PreserveColor)
# Choices of A in x' = A x + b (see match_color). "pca" is the symmetric square-root form
# Sigma_c^(1/2) Sigma_s^(-1/2) of Image Analogies (Hertzmann et al. 2001), the one Gatys et al. use.
ColorMatch = Literal["chol", "pca", "sym"]
COLOR_MATCHES: tuple[ColorMatch, ...] = get_args(ColorMatch)
DEFAULT_COLOR_MATCH: ColorMatch = "pca"

# NTSC YIQ. Y is the luminance the paper recombines with the content's I and Q.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
# Eigenvalues below this (in units of the [0, 1] range squared) count as zero: a flat-coloured style
# image has a singular covariance, and dividing by it would blow up.
_EPS = 1e-8


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image.dtype).to(image.device), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """RGB -> YIQ, channel-wise linear."""
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: Tensor) -> Tensor:
    """YIQ -> RGB (the exact inverse of :func:`rgb_to_yiq`)."""
    return _apply(_YIQ_TO_RGB, image)


def luminance(image: Tensor) -> Tensor:
    """The Y channel, ``(B, 1, H, W)``."""
    return rgb_to_yiq(image)[:, :1]


def as_luminance_image(image: Tensor) -> Tensor:
    """A grey RGB image with the luminance of ``image`` in every channel (what VGG sees in luminance mode)."""
    return luminance(image).expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: Tensor, content: Tensor) -> Tensor:
    """The style's luminance as a grey RGB image, shifted and scaled to the content's luminance mean and SD.

    ``Y_s' = (sigma_c / sigma_s) (Y_s - mu_s) + mu_c`` (paper §5.1), so that the
    style's tonal range is applied to the content's, not the other way round.
    """
    ys, yc = luminance(style), luminance(content)
    mu_s, sd_s = ys.mean(), ys.std(unbiased=False)
    mu_c, sd_c = yc.mean(), yc.std(unbiased=False)
    matched = (ys - mu_s) * (sd_c / sd_s.clamp_min(1e-6)) + mu_c
    return matched.expand(-1, 3, -1, -1).contiguous()


def keep_content_chroma(result: Tensor, content: Tensor) -> Tensor:
    """The result's luminance with the content's chroma (YIQ's I and Q), clipped to [0, 1].

    ``content`` is resized to the result's size if needed.
    """
    if content.shape[2:] != result.shape[2:]:
        content = torch.nn.functional.interpolate(
            content, size=tuple(result.shape[2:]), mode="bilinear", antialias=True, align_corners=False
        )
    yiq = torch.cat([luminance(result), rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _sqrtm(cov: Tensor, inverse: bool = False) -> Tensor:
    """Symmetric (inverse) square root of a covariance by eigendecomposition."""
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(_EPS)
    roots = values.rsqrt() if inverse else values.sqrt()
    root: Tensor = vectors @ torch.diag(roots) @ vectors.T
    return root


def _stats(image: Tensor) -> tuple[Tensor, Tensor]:
    pixels = image.double().permute(1, 0, 2, 3).reshape(3, -1)
    mean = pixels.mean(dim=1, keepdim=True)
    centred = pixels - mean
    cov = centred @ centred.T / pixels.shape[1]
    return mean, cov + _EPS * torch.eye(3, dtype=cov.dtype, device=cov.device)


def mixture_stats(images: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor]:
    """Colour mean ``(3, 1)`` and covariance ``(3, 3)`` of the pixels of ``images`` pooled with ``weights``
    (each image counts by its weight, whatever its size): ``mu = sum w_i mu_i``,
    ``Sigma = sum w_i (Sigma_i + mu_i mu_i^T) - mu mu^T``, weights normalised to sum 1."""
    total = float(sum(weights))
    if not images or len(weights) != len(images) or total <= 0:
        raise ValueError(f"need one positive-sum weight per image, got {len(weights)} for {len(images)}")
    stats = [_stats(image) for image in images]
    means = torch.stack([m for m, _ in stats])  # (k, 3, 1)
    covs = torch.stack([c for _, c in stats])  # (k, 3, 3)
    w = torch.tensor([float(x) / total for x in weights], dtype=means.dtype, device=means.device).view(-1, 1, 1)
    mean = (w * means).sum(0)
    second = (w * (covs + means @ means.transpose(1, 2))).sum(0)
    return mean, second - mean @ mean.T


def match_color_stats(
    image: Tensor, mean: Tensor, cov: Tensor, mode: str = DEFAULT_COLOR_MATCH, clip: bool = True
) -> Tensor:
    """``image`` with colour mean ``mean`` and covariance ``cov``: the affine map of :func:`color_transform`
    (``clip`` as in :func:`match_color`)."""
    a, b = _transform(*_stats(image), mean.to(torch.float64), cov.to(torch.float64), mode)
    matched = (_apply(a, image.double()) + b.view(1, 3, 1, 1).to(image.device)).to(image.dtype)
    return matched.clamp(0, 1) if clip else matched


def color_transform(style: Tensor, content: Tensor, mode: str = DEFAULT_COLOR_MATCH) -> tuple[Tensor, Tensor]:
    """``(A, b)`` such that ``A x + b`` gives the style's pixels the content's colour mean and covariance.

    All three choices satisfy ``A Sigma_s A^T = Sigma_c``:

    * ``chol``: ``A = L_c L_s^-1`` with Cholesky factors ``Sigma = L L^T``;
    * ``pca``: ``A = Sigma_c^(1/2) Sigma_s^(-1/2)`` (Image Analogies' colour transfer);
    * ``sym``: the symmetric ``A = Sigma_s^(-1/2) (Sigma_s^(1/2) Sigma_c Sigma_s^(1/2))^(1/2) Sigma_s^(-1/2)``,
      the map that moves colours least (Monge-Kantorovich for Gaussians).
    """
    return _transform(*_stats(style), *_stats(content), mode)


def _transform(mu_s: Tensor, cov_s: Tensor, mu_c: Tensor, cov_c: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """:func:`color_transform` from the two images' colour moments."""
    if mode not in COLOR_MATCHES:
        raise ValueError(f"unknown colour match '{mode}'; choose {', '.join(COLOR_MATCHES)}")
    mu_c, cov_c = mu_c.to(mu_s.device), cov_c.to(cov_s.device)
    if mode == "chol":
        a = torch.linalg.cholesky(cov_c) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
    elif mode == "pca":
        a = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    else:
        root_s, inv_root_s = _sqrtm(cov_s), _sqrtm(cov_s, inverse=True)
        a = inv_root_s @ _sqrtm(root_s @ cov_c @ root_s) @ inv_root_s
    return a, mu_c - a @ mu_s


def match_color(style: Tensor, content: Tensor, mode: str = DEFAULT_COLOR_MATCH, clip: bool = True) -> Tensor:
    """The style image with the content's colour mean and covariance (paper §5.2).

    ``clip`` keeps the result a valid image in [0, 1]; the moments then match up
    to the clipped pixels (few for photos; ``clip=False`` matches them exactly).
    """
    return match_color_stats(style, *_stats(content), mode=mode, clip=clip)

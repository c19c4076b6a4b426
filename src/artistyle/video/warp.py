"""Backward warping of an image by an optical flow: Lanczos-3 (sharp) or bilinear, both exact on integer flows.

Convention (the one :mod:`artistyle.video.flow` uses throughout): a flow ``w`` of shape
``(H, W, 2)`` lives on the grid of the image being *made*; ``w[y, x] = (dx, dy)`` says where that
pixel is found in the source image, so ``warp(source, w)(x, y) = source(x + dx, y + dy)``.
Coordinates are pixel centres ``0 .. W-1`` and ``0 .. H-1``.

Why two kernels: a video's later frames each start from the previous result warped, so the
resampling is applied again every frame. Bilinear interpolation at a fraction ``f`` of a pixel has
the response ``|H(omega)|^2 = 1 - 2 f (1 - f) (1 - cos omega)`` per axis: at ``f = 1/2`` it halves the
power of detail 4 px across, and compounded over frames it takes a clip's strokes soft within a
second (measured: one warp along DIS flows of sub-pixel motion keeps 52% of the variance of the
Laplacian, nine keep 9%). The Lanczos-3 kernel ``L(x) = sinc(x) sinc(x / 3)`` (``|x| < 3``) passes
almost all of that band (89% after one warp, 75% after nine), and what it still loses near the
Nyquist frequency the style loss repaints (docs/benchmarks.md, "Video that stays sharp").

``torch.nn.functional.grid_sample`` is not used: its unnormalisation ``(g + 1) / 2 * (W - 1)`` of a
normalised coordinate does not give back whole numbers exactly (not even in float64), so an integer
shift would leak a little of the neighbouring pixels into most of the image. Sampling the
neighbours by hand is exact: at a whole-number source the weights are exactly 1 and 0.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

__all__ = ["INTERPOLATIONS", "Interpolation", "as_flow_tensor", "warp"]

Interpolation = Literal["lanczos", "bilinear"]
INTERPOLATIONS: tuple[Interpolation, ...] = get_args(Interpolation)
LANCZOS_LOBES = 3


def as_flow_tensor(flow: Tensor | np.ndarray, like: Tensor) -> Tensor:
    """``flow`` ``(H, W, 2)`` as a tensor on ``like``'s device, in ``like``'s float dtype."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    out = torch.as_tensor(flow).to(device=like.device, dtype=dtype)
    if out.dim() != 3 or out.shape[2] != 2:
        raise ValueError(f"a flow has shape (H, W, 2), not {tuple(out.shape)}")
    return out


def warp(
    image: Tensor, flow: Tensor | np.ndarray, interpolation: Interpolation = "bilinear"
) -> tuple[Tensor, Tensor]:
    """``image`` ``(N, C, H, W)`` warped by ``flow`` ``(H, W, 2)``: ``out(x) = image(x + flow(x))``.

    ``interpolation``: ``"bilinear"`` (4 neighbours; softens detail at fractional sources) or ``"lanczos"``
    (Lanczos-3, 6 x 6 neighbours, normalised to sum 1; keeps detail, may overshoot the image's range a
    little at sharp edges, so a caller that needs the range clamps). Returns ``(warped, inside)``:
    ``inside`` ``(H, W)`` bool is False where the source point lies outside the pixel centres
    ``[0, W-1] x [0, H-1]`` (those pixels take the nearest border value, so ``warped`` stays finite;
    neighbours beyond the border repeat it). For whole-number flows the inside values are bit-equal
    to the source pixels, with either kernel.
    """
    if image.dim() != 4:
        raise ValueError(f"warp takes an (N, C, H, W) image, not {tuple(image.shape)}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose {' or '.join(INTERPOLATIONS)}")
    n, c, h, w = image.shape
    offsets = as_flow_tensor(flow, image)
    if offsets.shape[:2] != (h, w):
        raise ValueError(f"the flow is {offsets.shape[1]}x{offsets.shape[0]}, the image {w}x{h}")
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=offsets.dtype),
        torch.arange(w, device=image.device, dtype=offsets.dtype), indexing="ij",
    )
    sx, sy = xs + offsets[..., 0], ys + offsets[..., 1]
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    sx, sy = sx.clamp(0, w - 1), sy.clamp(0, h - 1)
    x0, y0 = sx.floor(), sy.floor()
    fx, fy = (sx - x0).to(image.dtype), (sy - y0).to(image.dtype)
    x0i, y0i = x0.long(), y0.long()
    flat = image.reshape(n, c, h * w)

    def at(yi: Tensor, xi: Tensor) -> Tensor:
        return flat.index_select(2, (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).flatten()).view(n, c, h, w)

    if interpolation == "bilinear":
        # Nested so that a zero fraction multiplies the far neighbours by exactly 0 and adds them last.
        top = at(y0i, x0i) * (1 - fx) + at(y0i, x0i + 1) * fx
        bottom = at(y0i + 1, x0i) * (1 - fx) + at(y0i + 1, x0i + 1) * fx
        return top * (1 - fy) + bottom * fy, inside
    taps = range(1 - LANCZOS_LOBES, LANCZOS_LOBES + 1)  # the neighbours x0 - 2 .. x0 + 3
    weights_x, weights_y = _lanczos_weights(fx), _lanczos_weights(fy)
    out = torch.zeros_like(image)
    for ty, weight_y in zip(taps, weights_y, strict=True):
        row = torch.zeros_like(image)
        for tx, weight_x in zip(taps, weights_x, strict=True):
            row = row + at(y0i + ty, x0i + tx) * weight_x
        out = out + row * weight_y
    return out, inside


def _lanczos_weights(fraction: Tensor) -> list[Tensor]:
    """The Lanczos-3 weights of the neighbours ``-2 .. 3`` of a source ``fraction`` of a pixel past the
    first, normalised to sum 1: ``L(x) = a sin(pi x) sin(pi x / a) / (pi x)^2`` at ``x = fraction - tap``.

    ``sin(pi (f - t)) = (-1)^t sin(pi f)``, taken so, is exactly 0 for every tap when ``f = 0``: the
    weights are then exactly 1 (tap 0) and 0, and a whole-number flow copies pixels bit for bit.
    """
    a = LANCZOS_LOBES
    sine = torch.sin(math.pi * fraction)
    weights = []
    for tap in range(1 - a, a + 1):
        x = fraction - tap
        sign = -1.0 if tap % 2 else 1.0
        value = a * sign * sine * torch.sin(math.pi * x / a) / (math.pi * x).square().clamp(min=1e-12)
        # Near x = 0 (tap 0, f tiny or 0) the quotient loses its digits; the limit there is 1 (to 2e-8).
        weights.append(torch.where(x.abs() < 1e-4, torch.ones_like(x), value))
    total = torch.stack(weights).sum(0)
    return [weight / total for weight in weights]

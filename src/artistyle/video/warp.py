"""Backward warping of an image by an optical flow, bilinear and exact on integer flows.

Convention (the one :mod:`artistyle.video.flow` uses throughout): a flow ``w`` of shape
``(H, W, 2)`` lives on the grid of the image being *made*; ``w[y, x] = (dx, dy)`` says where that
pixel is found in the source image, so ``warp(source, w)(x, y) = source(x + dx, y + dy)``.
Coordinates are pixel centres ``0 .. W-1`` and ``0 .. H-1``.

``torch.nn.functional.grid_sample`` is not used: its unnormalisation ``(g + 1) / 2 * (W - 1)`` of a
normalised coordinate does not give back whole numbers exactly (not even in float64), so an integer
shift would leak a little of the neighbouring pixels into most of the image. Sampling the four
neighbours by hand is exact: at a whole-number source the weights are exactly 1 and 0.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_flow_tensor", "warp"]


def as_flow_tensor(flow: Tensor | np.ndarray, like: Tensor) -> Tensor:
    """``flow`` ``(H, W, 2)`` as a tensor on ``like``'s device, in ``like``'s float dtype."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    out = torch.as_tensor(flow).to(device=like.device, dtype=dtype)
    if out.dim() != 3 or out.shape[2] != 2:
        raise ValueError(f"a flow has shape (H, W, 2), not {tuple(out.shape)}")
    return out


def warp(image: Tensor, flow: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """``image`` ``(N, C, H, W)`` warped by ``flow`` ``(H, W, 2)``: ``out(x) = image(x + flow(x))``, bilinear.

    Returns ``(warped, inside)``: ``inside`` ``(H, W)`` bool is False where the source point lies
    outside the pixel centres ``[0, W-1] x [0, H-1]`` (those pixels take the nearest border value,
    so ``warped`` stays finite and in the image's range). For whole-number flows the inside
    values are bit-equal to the source pixels.
    """
    if image.dim() != 4:
        raise ValueError(f"warp takes an (N, C, H, W) image, not {tuple(image.shape)}")
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
    x1i, y1i = (x0i + 1).clamp(max=w - 1), (y0i + 1).clamp(max=h - 1)
    flat = image.reshape(n, c, h * w)

    def at(yi: Tensor, xi: Tensor) -> Tensor:
        return flat.index_select(2, (yi * w + xi).flatten()).view(n, c, h, w)

    # Nested so that a zero fraction multiplies the far neighbours by exactly 0 and adds them last.
    top = at(y0i, x0i) * (1 - fx) + at(y0i, x1i) * fx
    bottom = at(y1i, x0i) * (1 - fx) + at(y1i, x1i) * fx
    return top * (1 - fy) + bottom * fy, inside

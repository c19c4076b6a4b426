"""Exact tiled evaluation: the loss and its gradient of an image too large for one pass.

Gram matrices are sums over positions, ``G = sum_p f_p f_p^T / M``, and the
content loss is a sum over positions too, so both can be gathered tile by
tile. Each tile *owns* a block of the image whose edges lie on multiples of
the network's total stride (16 px down to conv5_1), and is run on a crop that
adds a halo at least as wide as the reach of the deepest layer's receptive
field (70 px for conv5_1). The owned features are then exactly the full
image's: same pooling grid, same values, zero padding only where the image
itself ends.

One evaluation takes two passes over the tiles:

1. without gradient: gather every style layer's Gram sum and the content loss,
   and from them the loss and ``dL/dG = 2 b (G - A) / C^2``;
2. with gradient: per tile, the surrogate ``1/2 tr(F^T K F)`` with the fixed
   ``K = 4 b (G - A) / (C^2 M)`` has the true style gradient ``K F`` at the
   owned positions; with the content term it is backpropagated to the crop
   and added into the full image's gradient.

So the loss and gradient equal the untiled ones up to float rounding, while
memory holds one crop's activations at a time. It costs one more forward pass
per evaluation plus the halos' area.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .vgg import _LAYER_INDEX, _PLAN, VGGFeatures

__all__ = ["Tile", "halo_for", "stride_for", "tiled_features", "tiles"]


def stride_for(deepest: str) -> int:
    """Total pooling stride of the network up to and including ``deepest``."""
    stride = 1
    for name, kind, _ in _PLAN[: _LAYER_INDEX[deepest] + 1]:
        if kind == "pool":
            stride *= 2
    return stride


def _reach(deepest: str) -> int:
    """How far (in input pixels) a feature's receptive field reaches past its own stride cell."""
    reach, jump = 0, 1
    for name, kind, _ in _PLAN[: _LAYER_INDEX[deepest] + 1]:
        if kind == "conv":
            reach += jump
        elif kind == "pool":
            jump *= 2
    return reach


def halo_for(deepest: str) -> int:
    """The halo: the reach rounded up to a multiple of the stride (crops must start on the pooling grid)."""
    stride = max(stride_for(deepest), 16)
    return -(-_reach(deepest) // stride) * stride


@dataclass(frozen=True)
class Tile:
    """An owned block ``[y0, y1) x [x0, x1)`` and the crop ``[cy0, cy1) x [cx0, cx1)`` it is run on."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def tiles(height: int, width: int, tile: int, halo: int, align: int = 16) -> list[Tile]:
    """Owned blocks of ``tile`` px (rounded down to ``align``) covering the image, with their crops."""
    size = max(align, tile // align * align)
    out = []
    for y0 in range(0, height, size):
        for x0 in range(0, width, size):
            y1, x1 = min(y0 + size, height), min(x0 + size, width)
            out.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                            max(0, x0 - halo), min(width, x1 + halo)))
    return out


def owned(features: Tensor, tile: Tile, stride: int, full_height: int, full_width: int) -> Tensor:
    """The part of a crop's feature map at ``stride`` that belongs to the tile's owned block."""
    rows = (tile.y0 // stride, (tile.y1 // stride) if tile.y1 < full_height else full_height // stride)
    cols = (tile.x0 // stride, (tile.x1 // stride) if tile.x1 < full_width else full_width // stride)
    oy, ox = tile.cy0 // stride, tile.cx0 // stride
    return features[:, :, rows[0] - oy : rows[1] - oy, cols[0] - ox : cols[1] - ox]


def layer_strides(layers: tuple[str, ...]) -> dict[str, int]:
    return {name: stride_for(name) for name in layers}


def tiled_features(net: VGGFeatures, image: Tensor, tile: int) -> Iterator[tuple[Tile, dict[str, Tensor]]]:
    """For each tile: its owned features at every layer of ``net`` (no gradient)."""
    _, _, height, width = image.shape
    strides = layer_strides(net.layers)
    for t in tiles(height, width, tile, halo_for(net.deepest)):
        with torch.no_grad():
            feats = net(image[:, :, t.cy0 : t.cy1, t.cx0 : t.cx1])
        yield t, {n: owned(f, t, strides[n], height, width) for n, f in feats.items()}

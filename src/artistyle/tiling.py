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

Every tileable style term works the same way (:mod:`artistyle.style_terms`): the moment
terms (``meanstd``, ``w2``) gather the sums of the features too, and their kernel adds a
linear part ``a``, so the surrogate is ``a . f + 1/2 f^T K f``; the sliced term needs a sort
over every position and is refused before any work.

So the loss and gradient equal the untiled ones up to float rounding, while
memory holds one crop's activations at a time. It costs one more forward pass
per evaluation plus the halos' area. The formulas (value, kernel, surrogate) are
the terms' own (:class:`artistyle.style_terms.StyleTerm`); this module only
gathers the sums and walks the tiles. The
geometry (strides, receptive-field reach) is :mod:`artistyle.vgg`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
from torch import Tensor

from .losses import content_squared_error, content_term
from .style_terms import Kernel, PositionSums, StyleTerm, position_sums
from .vgg import VGGFeatures, layer_reach, layer_stride

__all__ = [
    "TARGET_TILE",
    "Tile",
    "TilePlan",
    "TileSums",
    "TileTargets",
    "TileWorkers",
    "TiledEvaluation",
    "add_sums",
    "halo_for",
    "owned",
    "owned_of_full",
    "tile_gradient",
    "tile_sums",
    "tile_targets",
    "tiled_content_targets",
    "tiled_features",
    "tiled_position_sums",
    "tiles",
]


# The owned tile of the one-off passes that make the targets when tiled (StyleObjective.target_tile): a 288 px
# crop with conv5_1's 80 px halo, once per scale, about two evaluations' forward work at any size.
TARGET_TILE = 128


def halo_for(deepest: str) -> int:
    """The halo: the reach rounded up to a multiple of the stride (crops must start on the pooling grid)."""
    stride = max(layer_stride(deepest), 16)
    return -(-layer_reach(deepest) // stride) * stride


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

    def crop(self, image: Tensor) -> Tensor:
        """The crop of an ``(N, C, H, W)`` image the tile is run on (a view)."""
        return image[:, :, self.cy0 : self.cy1, self.cx0 : self.cx1]


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


def owned_of_full(full: Tensor, tile: Tile, stride: int, full_height: int, full_width: int) -> Tensor:
    """The tile's owned block of a map that covers the whole image at ``stride`` (content targets, masks)."""
    return owned(full, replace(tile, cy0=0, cx0=0), stride, full_height, full_width)


def tiled_features(net: VGGFeatures, image: Tensor, tile: int) -> Iterator[tuple[Tile, dict[str, Tensor]]]:
    """For each tile: its owned features at every layer of ``net`` (no gradient)."""
    _, _, height, width = image.shape
    strides = {name: layer_stride(name) for name in net.layers}
    for t in tiles(height, width, tile, halo_for(net.deepest)):
        with torch.no_grad():
            feats = net(t.crop(image))
        yield t, {n: owned(f, t, strides[n], height, width) for n, f in feats.items()}


@torch.no_grad()
def tiled_content_targets(net: VGGFeatures, image: Tensor, tile: int, layers: tuple[str, ...]) -> dict[str, Tensor]:
    """The whole image's features at ``layers``, assembled from the tiles' owned blocks."""
    _, _, height, width = image.shape
    targets: dict[str, Tensor] = {}
    for t, feats in tiled_features(net, image, tile):
        for name in layers:
            stride = layer_stride(name)
            if name not in targets:
                f = feats[name]
                targets[name] = f.new_zeros(f.shape[0], f.shape[1], height // stride, width // stride)
            owned_of_full(targets[name], t, stride, height, width).copy_(feats[name])
    return targets


# One tile's pass-1 result: per style layer its PositionSums, per content layer its squared error.
TileSums = tuple[dict[str, PositionSums], dict[str, Tensor]]


@dataclass(frozen=True)
class TileTargets:
    """What one tile's passes need besides the image: its owned blocks of the content targets
    ``P_l`` and of the guided layers' region masks (small: a worker keeps only its tiles')."""

    content: Mapping[str, Tensor]
    regions: Mapping[str, Tensor]


def tile_targets(
    t: Tile, height: int, width: int, content: Mapping[str, Tensor], masks: Mapping[str, Tensor]
) -> TileTargets:
    """``t``'s :class:`TileTargets` from maps over the whole image (views, not copies)."""
    return TileTargets(
        {name: owned_of_full(target, t, layer_stride(name), height, width) for name, target in content.items()},
        {name: owned_of_full(full, t, layer_stride(name), height, width) for name, full in masks.items()},
    )


@torch.no_grad()
def tile_sums(
    net: VGGFeatures, crop: Tensor, t: Tile, height: int, width: int, needs_first: Mapping[str, bool],
    targets: TileTargets,
) -> TileSums:
    """Pass 1 on one tile's ``crop``: per style layer its :class:`PositionSums` over the owned block
    (with the first sums where ``needs_first`` says so), and the squared content errors there."""
    feats = net(crop)
    owned_feats = {name: owned(feats[name], t, layer_stride(name), height, width) for name in net.layers}
    sums = {
        name: position_sums(owned_feats[name], targets.regions.get(name), first) for name, first in needs_first.items()
    }
    squared = {name: content_squared_error(owned_feats[name], target) for name, target in targets.content.items()}
    return sums, squared


@torch.no_grad()
def tile_gradient(
    net: VGGFeatures, crop: Tensor, t: Tile, height: int, width: int, style: Mapping[str, StyleTerm],
    kernels: Mapping[str, Kernel], targets: TileTargets, content_numel: Mapping[str, int], content_scale: float,
) -> Tensor | None:
    """Pass 2 on one tile's ``crop``: the gradient of its surrogate (None when nothing depends on it)."""
    with torch.enable_grad():
        crop = crop.detach().requires_grad_(True)
        feats = net(crop)
        surrogate = crop.new_zeros(())
        for name, kernel in kernels.items():
            surrogate = surrogate + style[name].surrogate(
                owned(feats[name], t, layer_stride(name), height, width), kernel, targets.regions.get(name)
            )
        for name, target in targets.content.items():
            error = content_squared_error(owned(feats[name], t, layer_stride(name), height, width), target)
            surrogate = surrogate + content_term(error, content_numel[name], content_scale)
        if not surrogate.requires_grad:
            return None
        (part,) = torch.autograd.grad(surrogate, crop)
    return part


def add_sums(parts: Iterable[TileSums], zero: Tensor) -> TileSums:
    """The tiles' pass-1 results added in the order given (always the tiles' order: float sums depend on it)."""
    sums: dict[str, PositionSums] = {}
    squared: dict[str, Tensor] = {}
    for tile_sums_, tile_squared in parts:
        for name, part in tile_sums_.items():
            sums[name] = sums[name] + part if name in sums else part
        for name, error in tile_squared.items():
            squared[name] = squared.get(name, zero) + error
    return sums, squared


def _gather(
    net: VGGFeatures, image: Tensor, tile: int, layers: Mapping[str, bool], masks: Mapping[str, Tensor],
    content: Mapping[str, Tensor],
) -> TileSums:
    """One pass over the tiles in this process: per style layer its :class:`PositionSums` (with the
    first sums where ``layers`` says so), and the squared content errors against ``content``."""
    _, _, height, width = image.shape
    parts = (
        tile_sums(net, t.crop(image), t, height, width, layers, tile_targets(t, height, width, content, masks))
        for t in tiles(height, width, tile, halo_for(net.deepest))
    )
    sums, squared = add_sums(parts, image.new_zeros(()))
    return sums, {name: squared.get(name, image.new_zeros(())) for name in content}


@torch.no_grad()
def tiled_position_sums(
    net: VGGFeatures, image: Tensor, tile: int, layers: tuple[str, ...], *, first: bool = False,
    masks: Mapping[str, Tensor] | None = None,
) -> dict[str, PositionSums]:
    """Per layer, the whole image's :class:`~artistyle.style_terms.PositionSums`, tile by tile.

    ``first``: also the sums of the features (for the moment terms). ``masks``: for guided
    layers, the region masks ``(R, 1, h, w)`` over the whole image at the layer's resolution.
    """
    sums, _ = _gather(net, image, tile, dict.fromkeys(layers, first), masks or {}, {})
    return sums


@dataclass(frozen=True)
class TilePlan:
    """The fixed work of one tiled objective, which tile workers keep between evaluations.

    ``targets[k]`` belongs to ``tiles[k]``; ``content_numel``: each content target's size, the
    content term's normaliser. A plan is made once per objective (per scale of a painting).
    """

    net: VGGFeatures
    height: int
    width: int
    tiles: tuple[Tile, ...]
    targets: tuple[TileTargets, ...]
    needs_first: Mapping[str, bool]
    style: Mapping[str, StyleTerm]
    content_numel: Mapping[str, int]
    content_scale: float


class TileWorkers(Protocol):
    """Workers that run a :class:`TilePlan`'s tiles elsewhere (other processes, other machines).

    Both passes return one result per tile **in the tiles' order**, whichever worker finished
    first: the driver adds them in that order, so the sums and the gradient are the ones one
    process makes (bit for bit where the workers compute as it does: same kernels, same threads).
    """

    def gather(self, plan: TilePlan, image: Tensor) -> list[TileSums]: ...

    def gradients(self, plan: TilePlan, image: Tensor | None, kernels: Mapping[str, Kernel]) -> list[Tensor | None]:
        """Pass 2; ``image`` None: the image of the last :meth:`gather` (the workers kept its crops)."""
        ...


@dataclass(frozen=True, eq=False)
class TiledEvaluation:
    """The content and style terms of an image and their gradient, tile by tile (the module's two passes).

    ``content``: the full-size content targets ``P_l`` with their common weight
    ``content_scale``; ``style``: the style terms (:class:`~artistyle.style_terms.StyleTerm`,
    each tileable) with each layer's weight in ``style_scale``. The total-variation term is the
    objective's: it needs no tiling. ``workers``: run the tiles there (:class:`TileWorkers`);
    None: one after another in this process.
    """

    net: VGGFeatures
    tile: int
    content: Mapping[str, Tensor]
    content_scale: float
    style: Mapping[str, StyleTerm]
    style_scale: Mapping[str, float]
    workers: TileWorkers | None = None
    _plans: dict[tuple[int, int], TilePlan] = field(default_factory=dict, compare=False, repr=False)

    def _masks(self) -> dict[str, Tensor]:
        return {name: term.masks for name, term in self.style.items() if term.masks is not None}

    def plan(self, height: int, width: int) -> TilePlan:
        """The :class:`TilePlan` of an image of this size (made once per size and kept)."""
        if (height, width) not in self._plans:
            content = self._content()
            masks = self._masks()
            layout = tuple(tiles(height, width, self.tile, halo_for(self.net.deepest)))
            self._plans[(height, width)] = TilePlan(
                self.net, height, width, layout, tuple(tile_targets(t, height, width, content, masks) for t in layout),
                {name: term.needs_first for name, term in self.style.items()}, self.style,
                {name: target.numel() for name, target in content.items()}, self.content_scale,
            )
        return self._plans[(height, width)]

    @torch.no_grad()
    def terms(self, image: Tensor) -> tuple[dict[str, Tensor], dict[str, Kernel]]:
        """Pass 1: the terms ``content:<layer>``, ``style:<layer>``, and per style layer its :class:`Kernel`."""
        _, _, height, width = image.shape
        plan = self.plan(height, width)
        zero = image.new_zeros(())
        sums: dict[str, PositionSums]
        squared: dict[str, Tensor]
        if not (plan.needs_first or plan.content_numel):
            sums, squared = {}, {}
        elif self.workers is None:  # one forward pass over the tiles gathers every sum
            sums, squared = add_sums((tile_sums(plan.net, t.crop(image), t, height, width, plan.needs_first, targets)
                                      for t, targets in zip(plan.tiles, plan.targets, strict=True)), zero)
        else:
            sums, squared = add_sums(self.workers.gather(plan, image), zero)
        terms: dict[str, Tensor] = {}
        kernels: dict[str, Kernel] = {}
        for name, numel in plan.content_numel.items():
            terms[f"content:{name}"] = content_term(squared.get(name, zero), numel, self.content_scale)
        for name, term in self.style.items():
            scale = self.style_scale[name]
            if not scale:
                continue
            terms[f"style:{name}"], kernels[name] = term.from_sums(sums[name], scale)
        return terms, kernels

    def _content(self) -> Mapping[str, Tensor]:
        return self.content if self.content_scale else {}

    @torch.no_grad()
    def gradient(self, image: Tensor, kernels: Mapping[str, Kernel], *, gathered: bool = False) -> Tensor:
        """Pass 2: per tile, backpropagate the surrogates whose gradient is the true one at the owned positions.

        ``gathered``: ``image`` is the one :meth:`terms` was just given (workers reuse its crops).
        """
        _, _, height, width = image.shape
        plan = self.plan(height, width)
        if self.workers is None:
            parts: list[Tensor | None] = [
                tile_gradient(plan.net, t.crop(image), t, height, width, plan.style, kernels, targets,
                              plan.content_numel, self.content_scale)
                for t, targets in zip(plan.tiles, plan.targets, strict=True)
            ]
        else:
            parts = self.workers.gradients(plan, None if gathered else image, kernels)
        grad = torch.zeros_like(image)
        for t, part in zip(plan.tiles, parts, strict=True):
            if part is not None:
                t.crop(grad).add_(part)
        return grad

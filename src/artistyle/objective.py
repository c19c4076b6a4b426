"""The style transfer objective: VGG features plus the weighted loss terms.

:class:`StyleObjective` runs the frozen network once per call and returns a
dict of named, already weighted terms (``content:conv4_2``, ``style:conv1_1``,
``tv``), so that progress reports and charts get every term for free; the
total is their sum. Targets are set once, under ``no_grad``, by
:meth:`~StyleObjective.set_content` and :meth:`~StyleObjective.set_style`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from .config import StyleConfig
from .losses import ContentLoss, GuidedStyleLoss, StyleLoss, TVLoss, gram_matrix
from .masks import layer_masks
from .tiling import Tile, halo_for, owned, stride_for, tiled_features, tiles
from .vgg import VGGFeatures, VGGWeights

__all__ = ["ANCHOR_LAYERS", "StyleObjective", "total"]

# Layers whose features hold the coarse layout at the anchor size (StyleObjective.set_anchor).
ANCHOR_LAYERS = ("conv4_1", "conv5_1")


def total(terms: dict[str, Tensor]) -> Tensor:
    """Sum of the loss terms."""
    return torch.stack([t.float() for t in terms.values()]).sum()


class StyleObjective(nn.Module):
    """Weighted Gatys loss of an image, built from a :class:`StyleConfig`.

    ``L = a/|C| sum_{l in C} L_c(l) + b/sum(w) sum_{l in S} w_l L_s(l) + t L_tv``
    """

    def __init__(
        self, weights: VGGWeights, config: StyleConfig, *, tile: int | None = None, half_dtype: torch.dtype | None = None
    ):
        super().__init__()
        config.validate()
        self.config = config
        self.content_layers = tuple(config.content_layers)
        self.style_layers = tuple(config.style_layers)
        layer_weights = config.layer_weights
        self.style_scale = {
            name: config.style_weight * w / sum(layer_weights) for name, w in zip(self.style_layers, layer_weights)
        }
        self.content_scale = config.content_weight / len(self.content_layers)
        self.features = VGGFeatures(
            weights, self.content_layers + self.style_layers, pooling=config.pooling, padding=config.padding
        )
        self.content_losses = nn.ModuleDict()
        self.style_losses = nn.ModuleDict()
        self.features.half_dtype = half_dtype
        self.tv = TVLoss()
        # Owned tile size in px for exact tiled evaluation (see artistyle.tiling); None: whole image.
        self.tile: int | None = tile
        self._weights = weights
        # The coarse layout held on the image shrunk to the anchor size (see set_anchor); None: off.
        self.anchor: StyleObjective | None = None
        self.anchor_shape: tuple[int, int] | None = None

    @property
    def ready(self) -> bool:
        return len(self.content_losses) == len(self.content_layers) and len(self.style_losses) == len(self.style_layers)

    @torch.no_grad()
    def set_content(self, content: Tensor) -> None:
        """Compute the content targets ``P_l`` from a ``(1, 3, H, W)`` image."""
        if self.tile is None:
            feats = self.features(content)
            targets = {n: feats[n].clone() for n in self.content_layers}
        else:
            targets = self._tiled_content(content)
        self.content_losses = nn.ModuleDict({n: ContentLoss(targets[n]) for n in self.content_layers})

    def _tiled_content(self, content: Tensor) -> dict[str, Tensor]:
        _, _, height, width = content.shape
        targets: dict[str, Tensor] = {}
        for tile, feats in tiled_features(self.features, content, self.tile or 0):
            for name in self.content_layers:
                stride = stride_for(name)
                if name not in targets:
                    f = feats[name]
                    targets[name] = f.new_zeros(f.shape[0], f.shape[1], height // stride, width // stride)
                owned(targets[name], replace(tile, cy0=0, cx0=0), stride, height, width).copy_(feats[name])
        return targets

    @torch.no_grad()
    def style_grams(self, style: Tensor) -> dict[str, Tensor]:
        """Gram matrices ``A_l`` of one style image at the style layers."""
        if self.tile is None:
            feats = self.features(style)
            return {n: gram_matrix(feats[n])[0] for n in self.style_layers}
        sums, counts = self._gram_sums(style)
        return {n: sums[n][0] / counts[n][0] for n in self.style_layers}

    def _gram_sums(self, image: Tensor, guided: bool = False) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Per style layer, ``sum_p f_p f_p^T`` over the whole image and the number of positions, tile by tile.

        ``guided``: per region, ``sum_p m(p)^2 f_p f_p^T`` and the mask mass ``sum_p m(p)^2``
        (shapes ``(R, C, C)`` and ``(R,)``) for the layers whose loss is guided.
        """
        _, _, height, width = image.shape
        sums: dict[str, Tensor] = {}
        counts: dict[str, Tensor] = {}
        for tile, feats in tiled_features(self.features, image, self.tile or 0):
            for name in self.style_layers:
                flat = feats[name].float()
                masks = self._owned_masks(name, tile, height, width) if guided else None
                if masks is not None:
                    flat = flat * masks
                    count = masks.pow(2).flatten(1).sum(1)
                else:
                    count = flat.new_full((1,), float(flat.shape[2] * flat.shape[3]))
                flat = flat.flatten(2)
                part = torch.bmm(flat, flat.transpose(1, 2))
                sums[name] = sums[name] + part if name in sums else part
                counts[name] = counts[name] + count if name in counts else count
        return sums, counts

    def _owned_masks(self, name: str, tile: Tile, height: int, width: int) -> Tensor | None:
        """The region masks of a guided layer over the tile's owned positions; None for a plain layer."""
        loss = self.style_losses[name] if name in self.style_losses else None
        if not isinstance(loss, GuidedStyleLoss):
            return None
        return owned(loss.masks, replace(tile, cy0=0, cx0=0), stride_for(name), height, width)

    @torch.no_grad()
    def set_style(
        self, styles: Sequence[Tensor] | Tensor, blend: Sequence[float] | None = None, masks: Tensor | None = None
    ) -> None:
        """Compute the Gram targets from one style image, or a weighted blend of several.

        With several styles the target is ``A_l = sum_k b_k A_l^k / sum_k b_k``:
        the blend happens in target space, so each style keeps its own size.

        With ``masks`` ``(R, 1, H, W)`` at the image's size (one region per style),
        region ``k`` is matched to style ``k`` alone through guided Gram matrices
        (:mod:`artistyle.masks`), and ``blend`` weights the regions' terms.
        """
        images = [styles] if isinstance(styles, Tensor) else list(styles)
        weights = [1.0] * len(images) if blend is None else [float(b) for b in blend]
        if len(weights) != len(images) or sum(weights) <= 0:
            raise ValueError("need one non-negative blend weight per style image, not all zero")
        grams = [self.style_grams(image) for image in images]
        if masks is not None:
            if masks.shape[0] != len(images):
                raise ValueError(f"{masks.shape[0]} region masks for {len(images)} style images")
            share = torch.tensor([w / sum(weights) for w in weights])
            self.style_losses = nn.ModuleDict({
                n: GuidedStyleLoss(torch.stack([g[n] for g in grams]), layer_masks(masks, n), share)
                for n in self.style_layers
            })
            return
        targets: dict[str, Tensor] = {}
        for per_layer, b in zip(grams, weights):
            for name, gram in per_layer.items():
                targets[name] = targets.get(name, 0) + gram * (b / sum(weights))
        self.style_losses = nn.ModuleDict({n: StyleLoss(targets[n]) for n in self.style_layers})

    @torch.no_grad()
    def set_anchor(self, reference: Tensor, layers: Sequence[str] = ANCHOR_LAYERS) -> None:
        """Also hold the picture's coarse layout: match ``reference``'s features on the image shrunk to its size.

        VGG's receptive fields are fixed in pixels, so at 2048 px no layer sees the
        100-400 px structures that the coarser scales laid out, and the fine scales
        let them drift (docs/benchmarks.md). The anchor term
        ``content_weight * mean_l mean((F_l(shrink(x)) - F_l(reference))^2)`` over
        ``layers`` (conv4_1 and conv5_1) holds *where* those structures are, while
        everything finer stays free; ``reference`` is the run's own result at the
        anchor scale. A Gram-matrix anchor, tried first, pulled the layout around
        instead. (Not in the paper; on by default above 512 px, see StyleConfig.style_anchor.)
        """
        # Style weight 0: only the feature (content-type) terms of this objective count.
        config = replace(self.config, content_layers=tuple(layers), style_layers=("conv1_1",),
                         style_layer_weights=None, style_weight=0.0, tv_weight=0.0)
        anchor = StyleObjective(self._weights, config).to(reference.device)
        anchor.features.half_dtype = self.features.half_dtype
        anchor.set_content(reference)
        anchor.set_style(reference)
        self.anchor, self.anchor_shape = anchor, (int(reference.shape[2]), int(reference.shape[3]))

    def _shrink(self, image: Tensor) -> Tensor:
        assert self.anchor_shape is not None
        return torch.nn.functional.interpolate(
            image, size=self.anchor_shape, mode="bilinear", antialias=True, align_corners=False
        )

    def _anchor_terms(self, image: Tensor) -> dict[str, Tensor]:
        assert self.anchor is not None
        terms = self.anchor(self._shrink(image))
        return {k.replace("content:", "anchor:"): v for k, v in terms.items() if k.startswith("content:")}

    def evaluate(self, image: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Loss terms (detached), total loss and its gradient with respect to ``image``."""
        if self.tile is not None:
            terms, loss, grad = self._evaluate_tiled(image)
        else:
            with torch.enable_grad():
                pixels = image.detach().requires_grad_(True)
                live = self(pixels)
                loss = total(live)
                (grad,) = torch.autograd.grad(loss, pixels)
            terms, loss = {k: v.detach() for k, v in live.items()}, loss.detach()
        if self.anchor is not None:
            # A separate, small pass: its activations are allocated after the main ones are freed.
            with torch.enable_grad():
                pixels = image.detach().requires_grad_(True)
                anchor_terms = self._anchor_terms(pixels)
                anchor_loss = total(anchor_terms)
                (anchor_grad,) = torch.autograd.grad(anchor_loss, pixels)
            terms.update({k: v.detach() for k, v in anchor_terms.items()})
            loss, grad = loss + anchor_loss.detach(), grad + anchor_grad
        return terms, loss, grad

    @torch.no_grad()
    def terms(self, image: Tensor) -> dict[str, Tensor]:
        """The loss terms of ``image`` without a gradient (tile by tile when tiled)."""
        terms = {k: v.detach() for k, v in self(image).items()} if self.tile is None else self._tiled_terms(image)[0]
        if self.anchor is not None:
            terms.update(self._anchor_terms(image))
        return terms

    @torch.no_grad()
    def _tiled_terms(self, image: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Pass 1 of a tiled evaluation: the loss terms, and per style layer the kernel ``K``."""
        if not self.ready:
            raise RuntimeError("set_content() and set_style() must be called before the objective is evaluated")
        _, _, height, width = image.shape
        net, tile_size = self.features, self.tile or 0
        # Pass 1: Gram sums and content loss over all tiles, without gradient.
        sums, counts = self._gram_sums(image, guided=True) if self.style_losses else ({}, {})
        content_sq = {n: image.new_zeros(()) for n in self.content_layers}
        if self.content_scale:
            for tile, feats in tiled_features(net, image, tile_size):
                for name in self.content_layers:
                    target = self._owned_target(name, tile, height, width)
                    content_sq[name] += (feats[name].float() - target.float()).pow(2).sum()
        terms: dict[str, Tensor] = {}
        kernels: dict[str, Tensor] = {}
        for name in self.content_layers:
            if self.content_scale:
                terms[f"content:{name}"] = self.content_scale * content_sq[name] / self.content_losses[name].target.numel()
        for name in self.style_layers:
            scale = self.style_scale[name]
            if not scale:
                continue
            loss = self.style_losses[name]
            target = loss.target.float()
            channels, positions = target.shape[-1], counts[name].view(-1, 1, 1)
            diff = sums[name] / positions - target  # (R, C, C); R = 1 without masks
            share = loss.weights.view(-1, 1, 1) if isinstance(loss, GuidedStyleLoss) else torch.ones_like(positions)
            terms[f"style:{name}"] = scale * (share * diff.pow(2).mean(dim=(1, 2), keepdim=True)).sum()
            kernels[name] = diff * (4.0 * scale * share / (channels * channels * positions))
        if self.config.tv_weight:
            terms["tv"] = self.config.tv_weight * self.tv(image)
        return terms, kernels

    @torch.no_grad()
    def _evaluate_tiled(self, image: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        terms, kernels = self._tiled_terms(image)
        _, _, height, width = image.shape
        net, tile_size = self.features, self.tile or 0
        # Pass 2: per tile, backpropagate the surrogate whose gradient is the true one at the owned positions.
        grad = torch.zeros_like(image)
        for tile in tiles(height, width, tile_size, halo_for(net.deepest)):
            with torch.enable_grad():
                crop = image[:, :, tile.cy0 : tile.cy1, tile.cx0 : tile.cx1].detach().requires_grad_(True)
                feats = net(crop)
                surrogate = crop.new_zeros(())
                for name, kernel in kernels.items():
                    flat = owned(feats[name], tile, stride_for(name), height, width).float()
                    masks = self._owned_masks(name, tile, height, width)
                    if masks is not None:
                        flat = flat * masks  # (R, C, h, w): one weighted copy per region
                    flat = flat.flatten(2)
                    surrogate = surrogate + 0.5 * (flat * torch.bmm(kernel.expand(flat.shape[0], -1, -1), flat)).sum()
                if self.content_scale:
                    for name in self.content_layers:
                        target = self._owned_target(name, tile, height, width)
                        fo = owned(feats[name], tile, stride_for(name), height, width).float()
                        n = self.content_losses[name].target.numel()
                        surrogate = surrogate + self.content_scale * (fo - target.float()).pow(2).sum() / n
                if surrogate.requires_grad:
                    (part,) = torch.autograd.grad(surrogate, crop)
                    grad[:, :, tile.cy0 : tile.cy1, tile.cx0 : tile.cx1] += part
        if self.config.tv_weight:
            with torch.enable_grad():
                pixels = image.detach().requires_grad_(True)
                (part,) = torch.autograd.grad(self.config.tv_weight * self.tv(pixels), pixels)
            grad += part
        return terms, total(terms), grad

    def _owned_target(self, name: str, tile: Tile, height: int, width: int) -> Tensor:
        target = self.content_losses[name].target
        return owned(target, replace(tile, cy0=0, cx0=0), stride_for(name), height, width)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        if not self.ready:
            raise RuntimeError("set_content() and set_style() must be called before the objective is evaluated")
        feats = self.features(image)
        terms: dict[str, Tensor] = {}
        if self.content_scale:
            for name, loss in self.content_losses.items():
                terms[f"content:{name}"] = self.content_scale * loss(feats[name])
        for name, loss in self.style_losses.items():
            if self.style_scale[name]:
                terms[f"style:{name}"] = self.style_scale[name] * loss(feats[name])
        if self.config.tv_weight:
            terms["tv"] = self.config.tv_weight * self.tv(image)
        return terms

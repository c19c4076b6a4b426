"""The style transfer objective: VGG features plus the weighted loss terms.

:class:`StyleObjective` runs the frozen network once per call and returns a
dict of named, already weighted terms (``content:conv4_2``, ``style:conv1_1``,
``tv``, ``anchor:conv4_1``, ``temporal``), so that progress reports and charts get every term
for free; the total is their sum. Targets are set once, under ``no_grad``, by
:meth:`~StyleObjective.set_content` and :meth:`~StyleObjective.set_style`.
With ``tile`` the terms and their gradient are gathered tile by tile
(:class:`artistyle.tiling.TiledEvaluation`), exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .config import StyleConfig
from .errors import UsageError
from .losses import ANCHOR_LAYERS, AnchorLoss, ContentLoss, TemporalLoss, TVLoss
from .masks import layer_masks
from .style_terms import Kernel, StyleStatistics, StyleTerm, make_style_term, style_statistics, untileable
from .tiling import TARGET_TILE, TiledEvaluation, TileWorkers, tiled_content_targets, tiled_position_sums
from .vgg import VGGFeatures, VGGWeights

__all__ = ["ANCHOR_LAYERS", "StyleObjective", "total"]


def total(terms: dict[str, Tensor]) -> Tensor:
    """Sum of the loss terms."""
    return torch.stack([t.float() for t in terms.values()]).sum()


class StyleObjective(nn.Module):
    """Weighted Gatys loss of an image, built from a :class:`StyleConfig`.

    ``L = a/|C| sum_{l in C} L_c(l) + b/sum(w) sum_{l in S} w_l L_s(l) + t L_tv``
    ``    + g sum_j L_t(x, w_j, c_j)`` (video only: see :meth:`set_temporal`)

    ``tile``: owned tile size in px for the exact tiled evaluation
    (:mod:`artistyle.tiling`); None: the whole image at once. ``half_dtype``:
    bfloat16 or float16 for the network's convolutions (mixed precision); None: float32.
    ``workers``: with ``tile``, run the tiles on these :class:`~artistyle.tiling.TileWorkers`
    (other processes or machines; the same loss and gradient); None: in this process.
    """

    def __init__(
        self, weights: VGGWeights, config: StyleConfig, *, tile: int | None = None,
        half_dtype: torch.dtype | None = None, workers: TileWorkers | None = None,
    ):
        super().__init__()
        config = config.validate().resolved()
        self.config = config
        self.content_layers = tuple(config.content_layers)
        self.style_layers = tuple(config.style_layers)
        layer_weights = config.layer_weights
        self.style_scale = {
            name: config.style_weight * w / sum(layer_weights) for name, w in zip(self.style_layers, layer_weights)
        }
        assert config.content_weight is not None  # resolved() gave it its value
        self.content_scale = config.content_weight / len(self.content_layers)
        self.features = VGGFeatures(
            weights, self.content_layers + self.style_layers, pooling=config.pooling, padding=config.padding,
            half_dtype=half_dtype,
        )
        self.content_losses = nn.ModuleDict()
        self.style_losses = nn.ModuleDict()
        self.tv = TVLoss()
        self.tile = tile
        self.workers = workers
        self._tiled_evaluation: TiledEvaluation | None = None  # made once the targets are set
        self.vgg_weights = weights
        # The coarse layout held on the image shrunk to the anchor size (see set_anchor); None: off.
        self.anchor: AnchorLoss | None = None
        self.anchor_features: VGGFeatures | None = None
        # The previous results warped to this frame of a video (see set_temporal); empty: off.
        self.temporal = nn.ModuleList()
        self.temporal_weight = config.temporal_weight

    @property
    def target_tile(self) -> int:
        """The tile of the one-off passes that make the targets (content features, style statistics): at most
        :data:`TARGET_TILE`, so a driver whose tile workers run the large crops never runs one itself (exact
        at any tile size; a fixed rule keeps every process count on the same numbers)."""
        return min(self.tile or TARGET_TILE, TARGET_TILE)

    @property
    def ready(self) -> bool:
        return len(self.content_losses) == len(self.content_layers) and len(self.style_losses) == len(self.style_layers)

    def set_targets(
        self, content: Tensor, styles: Sequence[Tensor], blend: Sequence[float] | None = None, *,
        masks: Tensor | None = None, anchor: Tensor | None = None, temporal: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> None:
        """Every target in one call: :meth:`set_content`, :meth:`set_style`, and where given
        :meth:`set_anchor` and :meth:`set_temporal`."""
        self.set_content(content)
        self.set_style(styles, blend, masks=masks)
        if anchor is not None:
            self.set_anchor(anchor)
        if temporal:
            self.set_temporal(temporal)

    @torch.no_grad()
    def set_content(self, content: Tensor) -> None:
        """Compute the content targets ``P_l`` from a ``(1, 3, H, W)`` image."""
        if self.tile is None:
            feats = self.features(content)
            targets = {n: feats[n].clone() for n in self.content_layers}
        else:
            targets = tiled_content_targets(self.features, content, self.target_tile, self.content_layers)
        self._tiled_evaluation = None
        self.content_losses = nn.ModuleDict({n: ContentLoss(targets[n]) for n in self.content_layers})

    @torch.no_grad()
    def style_statistics(self, style: Tensor) -> dict[str, StyleStatistics]:
        """What the style terms need of one style image, per style layer (:mod:`artistyle.style_terms`)."""
        kind = self.config.style_loss
        if self.tile is None:
            feats = self.features(style)
            return {n: style_statistics(kind, feats[n], n) for n in self.style_layers}
        if refusal := self.terms_refuse_tiles():  # before any work; the checks and the planner refuse it first
            raise UsageError(refusal)
        sums = tiled_position_sums(self.features, style, self.target_tile, self.style_layers, first=True)
        return {
            n: StyleStatistics(s.first[0] / s.mass[0], s.second[0] / s.mass[0])  # type: ignore[index]
            for n, s in sums.items()
        }

    @torch.no_grad()
    def style_grams(self, style: Tensor) -> dict[str, Tensor]:
        """Gram matrices ``A_l`` of one style image at the style layers."""
        return {n: s.second for n, s in self.style_statistics(style).items()}

    def terms_refuse_tiles(self) -> str | None:
        """Why this objective's style terms cannot be evaluated in tiles, or None."""
        return untileable(self.config.style_loss)

    @torch.no_grad()
    def set_style(
        self, styles: Sequence[Tensor] | Tensor, blend: Sequence[float] | None = None, masks: Tensor | None = None
    ) -> None:
        """Compute the style targets from one style image, or a weighted blend of several.

        With several styles the targets blend in target space (Gram: ``A_l = sum_k b_k A_l^k / sum_k b_k``;
        the other terms: :func:`~artistyle.style_terms.make_style_term`), so each style keeps its own size.

        With ``masks`` ``(R, 1, H, W)`` at the image's size (one region per style),
        region ``k`` is matched to style ``k`` alone through guided statistics
        (:mod:`artistyle.masks`), and ``blend`` weights the regions' terms.
        """
        images = [styles] if isinstance(styles, Tensor) else list(styles)
        weights = [1.0] * len(images) if blend is None else [float(b) for b in blend]
        if len(weights) != len(images) or sum(weights) <= 0:
            raise ValueError("need one non-negative blend weight per style image, not all zero")
        if masks is not None and masks.shape[0] != len(images):
            raise ValueError(f"{masks.shape[0]} region masks for {len(images)} style images")
        stats = [self.style_statistics(image) for image in images]
        shares = [w / sum(weights) for w in weights]
        self._tiled_evaluation = None
        self.style_losses = nn.ModuleDict({
            n: make_style_term(
                self.config.style_loss, n, [s[n] for s in stats], shares,
                None if masks is None else layer_masks(masks, n),
            )
            for n in self.style_layers
        })

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
        With a content weight of 0 there is no anchor term.
        """
        if not self.config.content_weight:
            self.anchor = self.anchor_features = None
            return
        net = VGGFeatures(
            self.vgg_weights, layers, pooling=self.config.pooling, padding=self.config.padding,
            half_dtype=self.features.half_dtype,
        ).to(reference.device)
        feats = net(reference)
        shape = (int(reference.shape[2]), int(reference.shape[3]))
        self.anchor = AnchorLoss({n: feats[n].clone() for n in net.layers}, shape, self.config.content_weight)
        self.anchor_features = net

    @torch.no_grad()
    def set_temporal(self, terms: Sequence[tuple[Tensor, Tensor]], weight: float | None = None) -> None:
        """Hold the image near earlier results warped to it (Ruder et al. 2016): the term ``temporal``.

        ``g sum_j L_t(x, w_j, c_j)`` (:func:`artistyle.losses.temporal_loss`) over ``terms``, pairs of a
        target ``w_j`` ``(1, C, H, W)`` and its weights ``c_j`` ``(H, W)`` or ``(1, 1, H, W)``, on the
        image's device and at its size; ``g`` is ``weight`` (default: the config's ``temporal_weight``).
        Several pairs give long-term consistency (weights as
        :func:`artistyle.video.flow.long_term_weights` makes them). An empty list or a weight of 0
        turns the term off. It lives in pixel space, like ``tv``: the tiled evaluation adds it whole.
        """
        self.temporal = nn.ModuleList([TemporalLoss(target, weights) for target, weights in terms])
        self.temporal_weight = self.config.temporal_weight if weight is None else float(weight)

    def _temporal_term(self, image: Tensor) -> Tensor | None:
        if not len(self.temporal) or not self.temporal_weight:
            return None
        return self.temporal_weight * torch.stack([loss(image) for loss in self.temporal]).sum()

    def _temporal_gradient(self, image: Tensor) -> Tensor:
        grads = [loss.gradient(image) for loss in self.temporal if isinstance(loss, TemporalLoss)]
        return self.temporal_weight * torch.stack(grads).sum(0)

    def _anchor_terms(self, image: Tensor) -> dict[str, Tensor]:
        assert self.anchor is not None and self.anchor_features is not None
        terms: dict[str, Tensor] = self.anchor(self.anchor_features(self.anchor.shrink(image)))
        return terms

    def _tiled(self) -> TiledEvaluation:
        if not self.ready:
            raise RuntimeError("set_content() and set_style() must be called before the objective is evaluated")
        if refusal := self.terms_refuse_tiles():
            raise UsageError(refusal)
        if self._tiled_evaluation is None:  # once per targets: it keeps its tile plans (and the workers theirs)
            terms: dict[str, StyleTerm] = dict(self.style_losses.items())  # type: ignore[arg-type]
            self._tiled_evaluation = TiledEvaluation(
                self.features, self.tile or 0,
                {n: loss.target for n, loss in self.content_losses.items() if isinstance(loss, ContentLoss)},
                self.content_scale, terms, self.style_scale, self.workers,
            )
        return self._tiled_evaluation

    @torch.no_grad()
    def _tiled_terms(self, image: Tensor, tiled: TiledEvaluation) -> tuple[dict[str, Tensor], dict[str, Kernel]]:
        terms, kernels = tiled.terms(image)
        if self.config.tv_weight:
            terms["tv"] = self.config.tv_weight * self.tv(image)
        temporal = self._temporal_term(image)
        if temporal is not None:
            terms["temporal"] = temporal
        return terms, kernels

    def evaluate(self, image: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Loss terms (detached), total loss and its gradient with respect to ``image``."""
        if self.tile is not None:
            tiled = self._tiled()
            terms, kernels = self._tiled_terms(image, tiled)
            grad = tiled.gradient(image, kernels, gathered=True)
            if self.config.tv_weight:
                with torch.enable_grad():
                    pixels = image.detach().requires_grad_(True)
                    (part,) = torch.autograd.grad(self.config.tv_weight * self.tv(pixels), pixels)
                grad += part
            if "temporal" in terms:
                grad += self._temporal_gradient(image).to(grad.dtype)
            loss = total(terms)
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
        if self.tile is None:
            terms = {k: v.detach() for k, v in self(image).items()}
        else:
            terms = self._tiled_terms(image, self._tiled())[0]
        if self.anchor is not None:
            terms.update(self._anchor_terms(image))
        return terms

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
        temporal = self._temporal_term(image)
        if temporal is not None:
            terms["temporal"] = temporal
        return terms

"""The style transfer objective: VGG features plus the weighted loss terms.

:class:`StyleObjective` runs the frozen network once per call and returns a
dict of named, already weighted terms (``content:conv4_2``, ``style:conv1_1``,
``tv``), so that progress reports and charts get every term for free; the
total is their sum. Targets are set once, under ``no_grad``, by
:meth:`~StyleObjective.set_content` and :meth:`~StyleObjective.set_style`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .config import StyleConfig
from .losses import ContentLoss, StyleLoss, TVLoss, gram_matrix
from .vgg import VGGFeatures, VGGWeights

__all__ = ["StyleObjective", "total"]


def total(terms: dict[str, Tensor]) -> Tensor:
    """Sum of the loss terms."""
    return torch.stack([t.float() for t in terms.values()]).sum()


class StyleObjective(nn.Module):
    """Weighted Gatys loss of an image, built from a :class:`StyleConfig`.

    ``L = a/|C| sum_{l in C} L_c(l) + b/sum(w) sum_{l in S} w_l L_s(l) + t L_tv``
    """

    def __init__(self, weights: VGGWeights, config: StyleConfig):
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
        self.features = VGGFeatures(weights, self.content_layers + self.style_layers, pooling=config.pooling)
        self.content_losses = nn.ModuleDict()
        self.style_losses = nn.ModuleDict()
        self.tv = TVLoss()

    @property
    def ready(self) -> bool:
        return len(self.content_losses) == len(self.content_layers) and len(self.style_losses) == len(self.style_layers)

    @torch.no_grad()
    def set_content(self, content: Tensor) -> None:
        """Compute the content targets ``P_l`` from a ``(1, 3, H, W)`` image."""
        feats = self.features(content)
        self.content_losses = nn.ModuleDict({n: ContentLoss(feats[n].clone()) for n in self.content_layers})

    @torch.no_grad()
    def style_grams(self, style: Tensor) -> dict[str, Tensor]:
        """Gram matrices ``A_l`` of one style image at the style layers."""
        feats = self.features(style)
        return {n: gram_matrix(feats[n])[0] for n in self.style_layers}

    @torch.no_grad()
    def set_style(self, styles: Sequence[Tensor] | Tensor, blend: Sequence[float] | None = None) -> None:
        """Compute the Gram targets from one style image, or a weighted blend of several.

        With several styles the target is ``A_l = sum_k b_k A_l^k / sum_k b_k``:
        the blend happens in target space, so each style keeps its own size.
        """
        images = [styles] if isinstance(styles, Tensor) else list(styles)
        weights = [1.0] * len(images) if blend is None else [float(b) for b in blend]
        if len(weights) != len(images) or sum(weights) <= 0:
            raise ValueError("need one non-negative blend weight per style image, not all zero")
        targets: dict[str, Tensor] = {}
        for image, b in zip(images, weights):
            for name, gram in self.style_grams(image).items():
                targets[name] = targets.get(name, 0) + gram * (b / sum(weights))
        self.style_losses = nn.ModuleDict({n: StyleLoss(targets[n]) for n in self.style_layers})

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

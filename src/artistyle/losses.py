"""Loss terms of Gatys et al. and the input normalisation of the VGG-19.

Every term is a pure function on feature tensors plus a thin ``nn.Module`` twin
that holds its target as a buffer (computed once, without gradient) and only
forwards to the function. Shapes follow PyTorch: features are ``(B, C, H, W)``.

Normalisation (a deliberate departure from the paper's raw sums, so that the
same weights give the same look at any image size):

* content:  L_c = mean((F - P)^2)                      over all C*H*W elements
  (paper: 1/2 * sum((F - P)^2))
* Gram:     G = F F^T / (H W)                          a C x C matrix
* style:    L_s = mean((G - A)^2)                      over all C*C entries
  (paper: E_l = sum((G - A)^2) / (4 C^2 (HW)^2), i.e. L_s = 4 E_l)
* total variation: L_tv = mean(|dx|^2) + mean(|dy|^2) on the image in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ContentLoss",
    "GuidedStyleLoss",
    "Normalization",
    "StyleLoss",
    "TVLoss",
    "content_loss",
    "gram_matrix",
    "guided_gram_matrices",
    "normalize",
    "style_loss",
    "tv_loss",
]


def _at_least_fp32(x: Tensor) -> Tensor:
    """Upcast half precision (sums of squares overflow fp16); keep float32/float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix of feature maps, normalised by the number of positions.

    ``G[b, i, j] = sum_k F[b, i, k] F[b, j, k] / (H W)`` for ``features`` of
    shape ``(B, C, H, W)``; returns ``(B, C, C)``. Computed in float32 even for
    half-precision features, since the sums overflow fp16.
    """
    b, c, h, w = features.shape
    flat = _at_least_fp32(features).flatten(2)  # a view also for channels-last maps
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """``mean((F - P)^2)``: squared feature distance per element."""
    return F.mse_loss(_at_least_fp32(features), _at_least_fp32(target))


class _StyleLossFunction(torch.autograd.Function):
    """``mean((G(F) - A)^2)`` with a hand-written backward.

    ``dL/dF = 4 (G - A) F / (C^2 H W B)`` (G is symmetric), one matrix product
    instead of the two that autograd would run through ``F F^T`` plus their
    sum. It is computed on the ``(B, HW, C)`` view so a channels-last feature
    map needs no copy, and the gradient comes back in the same layout.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor, target_gram: Tensor) -> Tensor:  # type: ignore[override]
        diff = gram_matrix(features) - target_gram.to(_at_least_fp32(features).dtype)
        ctx.save_for_backward(features, diff)
        return diff.pow(2).mean()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        features, diff = ctx.saved_tensors
        b, c, h, w = features.shape
        scale = grad_output * (4.0 / (b * c * c * h * w))
        positions = _at_least_fp32(features).permute(0, 2, 3, 1).reshape(b, h * w, c)
        grad = torch.bmm(positions, diff * scale)  # (B, HW, C); scaling the C x C factor is free
        return grad.to(features.dtype).view(b, h, w, c).permute(0, 3, 1, 2), None


def style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """``mean((G(F) - A)^2)`` between the Gram matrix of ``features`` and ``target_gram``.

    ``target_gram`` is ``(C, C)`` or ``(B, C, C)``.
    """
    target = target_gram.expand(features.shape[0], -1, -1)
    return _StyleLossFunction.apply(features, target)


def tv_loss(image: Tensor) -> Tensor:
    """Squared total variation: ``mean(dx^2) + mean(dy^2)`` of neighbouring pixels."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def normalize(image: Tensor, mean: Tensor, std: Tensor, channel_order: Sequence[int]) -> Tensor:
    """Map an RGB image in [0, 1] to a network's input: ``(x[:, order] - mean) / std``."""
    if list(channel_order) != [0, 1, 2]:
        image = image[:, list(channel_order)]
    return (image - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


class Normalization(nn.Module):
    """The input transform a set of VGG weights expects, as a module.

    ``mean`` and ``std`` are per channel *after* reordering, in units of the
    [0, 1] image. The original Caffe VGG-19 wants BGR in 0..255 minus the
    ImageNet mean: ``order=(2, 1, 0)``, ``mean=[103.939, 116.779, 123.68]/255``,
    ``std=1/255``. torchvision's weights want RGB with ImageNet mean and std.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float], channel_order: Sequence[int] = (0, 1, 2)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32))
        self.channel_order = tuple(int(i) for i in channel_order)

    @classmethod
    def caffe(cls) -> Normalization:
        """BGR, 0..255, minus the mean pixel [103.939, 116.779, 123.68] (Simonyan & Zisserman)."""
        return cls([103.939 / 255, 116.779 / 255, 123.68 / 255], [1 / 255] * 3, (2, 1, 0))

    @classmethod
    def imagenet(cls) -> Normalization:
        """RGB with ImageNet mean and standard deviation (torchvision's convention)."""
        return cls([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

    def forward(self, image: Tensor) -> Tensor:
        return normalize(image, self.mean, self.std, self.channel_order)

    def extra_repr(self) -> str:
        return f"order={self.channel_order}, mean={self.mean.tolist()}, std={self.std.tolist()}"


class ContentLoss(nn.Module):
    """:func:`content_loss` against fixed target features ``P``."""

    target: Tensor

    def __init__(self, target: Tensor):
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, features: Tensor) -> Tensor:
        return content_loss(features, self.target)


class StyleLoss(nn.Module):
    """:func:`style_loss` against a fixed target Gram matrix ``A``.

    Build it from style features with :meth:`from_features`, or from a ready
    Gram matrix (e.g. a weighted blend of several styles' Gram matrices).
    """

    target: Tensor

    def __init__(self, target_gram: Tensor):
        super().__init__()
        self.register_buffer("target", target_gram.detach())

    @classmethod
    def from_features(cls, features: Tensor) -> StyleLoss:
        with torch.no_grad():
            return cls(gram_matrix(features))

    def forward(self, features: Tensor) -> Tensor:
        return style_loss(features, self.target)


def guided_gram_matrices(features: Tensor, masks: Tensor) -> Tensor:
    """Guided Gram matrices (Gatys et al. 2017): one per region mask.

    ``G_r = sum_p m_r(p)^2 f_p f_p^T / sum_p m_r(p)^2`` for ``features`` of shape
    ``(1, C, H, W)`` and ``masks`` of shape ``(R, 1, H, W)``; returns ``(R, C, C)``.
    With one all-ones mask it is :func:`gram_matrix`.
    """
    if features.shape[0] != 1:
        raise ValueError("guided Gram matrices take one image at a time")
    weighted = (_at_least_fp32(features) * masks).flatten(2)  # (R, C, HW)
    mass = masks.float().pow(2).flatten(1).sum(1).clamp_min(1e-12)
    return torch.bmm(weighted, weighted.transpose(1, 2)) / mass.view(-1, 1, 1)


class GuidedStyleLoss(nn.Module):
    """Style loss of regions: ``sum_r w_r mean((G_r - A_r)^2)`` with guided Grams ``G_r``.

    ``targets`` ``(R, C, C)``: the Gram matrix of the style assigned to each
    region; ``masks`` ``(R, 1, H, W)`` at this layer's resolution; ``weights``
    ``(R,)``, summing to 1, so one region covering everything is :class:`StyleLoss`.
    """

    target: Tensor
    masks: Tensor
    weights: Tensor

    def __init__(self, targets: Tensor, masks: Tensor, weights: Tensor):
        super().__init__()
        self.register_buffer("target", targets.detach())
        self.register_buffer("masks", masks.detach())
        self.register_buffer("weights", weights.detach().float())

    def forward(self, features: Tensor) -> Tensor:
        grams = guided_gram_matrices(features, self.masks)
        return (self.weights * (grams - self.target).pow(2).mean(dim=(1, 2))).sum()


class TVLoss(nn.Module):
    """:func:`tv_loss` as a module (no target)."""

    def forward(self, image: Tensor) -> Tensor:
        return tv_loss(image)

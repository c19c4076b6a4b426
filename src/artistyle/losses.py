"""Loss terms of Gatys et al., each formula in one place.

Every term is a pure function on feature tensors plus a thin ``nn.Module`` twin
that holds its target as a buffer (computed once, without gradient) and only
forwards to the function. Shapes follow PyTorch: features are ``(B, C, H, W)``.
The input :class:`Normalization` of the VGG-19 lives with the network
(:mod:`artistyle.vgg`) and is re-exported here.

Normalisation (a deliberate departure from the paper's raw sums, so that the
same weights give the same look at any image size):

* content:  L_c = mean((F - P)^2)                      over all C*H*W elements
  (paper: 1/2 * sum((F - P)^2))
* Gram:     G = F F^T / (H W)                          a C x C matrix
* style:    L_s = mean((G - A)^2)                      over all C*C entries
  (paper: E_l = sum((G - A)^2) / (4 C^2 (HW)^2), i.e. L_s = 4 E_l)
* total variation: L_tv = mean(|dx|^2) + mean(|dy|^2) on the image in [0, 1].
* temporal (video): L_t = sum_k c_k (x_k - w_k)^2 / (C H W) on the image in [0, 1]
  (Ruder et al. 2016: the same 1/D with D = W H C, on pixels scaled to 0..256)

The tiled evaluation (:mod:`artistyle.tiling`) gathers the same terms from sums
over tiles: :func:`gram_sum` and :func:`content_squared_error` per tile, then
:func:`style_term_from_gram_sums` (the value and the gradient kernel ``K``) and
:func:`content_term`; :func:`style_surrogate` turns ``K`` back into the exact
style gradient ``K F`` at a tile's positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Normalization belongs to the network; the README documents it here too.
from .vgg import Normalization, normalize

__all__ = [
    "ANCHOR_LAYERS",
    "AnchorLoss",
    "ContentLoss",
    "GuidedStyleLoss",
    "Normalization",
    "StyleLoss",
    "TVLoss",
    "TemporalLoss",
    "content_loss",
    "content_squared_error",
    "content_term",
    "gram_matrix",
    "gram_sum",
    "guided_gram_matrices",
    "normalize",
    "style_loss",
    "style_surrogate",
    "style_term_from_gram_sums",
    "temporal_gradient",
    "temporal_loss",
    "tv_loss",
]

# Layers whose features hold the coarse layout at the anchor size (AnchorLoss).
ANCHOR_LAYERS = ("conv4_1", "conv5_1")


def _at_least_fp32(x: Tensor) -> Tensor:
    """Upcast half precision (sums of squares overflow fp16); keep float32/float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix of feature maps, normalised by the number of positions.

    ``G[b, i, j] = sum_k F[b, i, k] F[b, j, k] / (H W)`` for ``features`` of
    shape ``(B, C, H, W)``; returns ``(B, C, C)``. Computed in float32 even for
    half-precision features, since the sums overflow fp16.
    """
    h, w = features.shape[-2:]
    flat = _at_least_fp32(features).flatten(2)  # a view also for channels-last maps
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """``mean((F - P)^2)``: squared feature distance per element."""
    return F.mse_loss(_at_least_fp32(features), _at_least_fp32(target))


class _StyleLossFunction(torch.autograd.Function):
    """``mean((G(F) - A)^2)`` with a hand-written backward.

    ``dL/dF = 4 (G - A) F / (C^2 H W B)`` (G is symmetric; the kernel ``K`` of
    :func:`style_term_from_gram_sums` with ``b = 1/B``), one matrix product
    instead of the two that autograd would run through ``F F^T`` plus their
    sum. It is computed on the ``(B, HW, C)`` view so a channels-last feature
    map needs no copy, and the gradient comes back in the same layout.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor, target_gram: Tensor) -> Tensor:
        diff = gram_matrix(features) - target_gram.to(_at_least_fp32(features).dtype)
        ctx.save_for_backward(features, diff)
        return diff.pow(2).mean()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
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
    loss: Tensor = _StyleLossFunction.apply(features, target)  # type: ignore[no-untyped-call]
    return loss


def tv_loss(image: Tensor) -> Tensor:
    """Squared total variation: ``mean(dx^2) + mean(dy^2)`` of neighbouring pixels."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def temporal_loss(image: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Ruder et al.'s temporal loss: ``L_t = sum_k c_k (x_k - w_k)^2 / N``.

    ``image`` ``x`` and ``target`` ``w`` (the previous result warped to this frame) are
    ``(B, C, H, W)``; ``weights`` ``c`` (the consistency weights, 0 where the warp is not to be
    trusted) broadcast to them, e.g. ``(1, 1, H, W)``. ``N`` is the number of pixel values
    ``B C H W``, not ``sum(c)``: the paper's ``1/D`` with ``D = W H C``, so a frame with many
    occluded pixels is not held harder where it is trusted, and the same weight means the same
    at any size. Departure: the paper's code scales pixels by 256 (Caffe's range), ours are in
    [0, 1], so the paper's weight ``g`` is ``256^2 g`` here (against the same feature terms).
    """
    diff = _at_least_fp32(image) - _at_least_fp32(target)
    return (weights * diff.square()).sum() / diff.numel()


def temporal_gradient(image: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """``dL_t/dx = 2 c (x - w) / N``: the gradient of :func:`temporal_loss`, in ``image``'s shape."""
    diff = _at_least_fp32(image) - _at_least_fp32(target)
    return (2.0 / diff.numel()) * (weights * diff).expand_as(diff)


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


class TemporalLoss(nn.Module):
    """:func:`temporal_loss` against a fixed target ``w`` ``(1, C, H, W)`` with weights ``c`` ``(1, 1, H, W)``.

    ``weights`` may also be ``(H, W)``; they are stored as ``(1, 1, H, W)`` float.
    """

    target: Tensor
    weights: Tensor

    def __init__(self, target: Tensor, weights: Tensor):
        super().__init__()
        weights = weights.detach().float()
        weights = weights.reshape(1, 1, *weights.shape[-2:]) if weights.dim() < 4 else weights
        if tuple(weights.shape[-2:]) != tuple(target.shape[-2:]):
            raise ValueError(f"temporal weights of shape {tuple(weights.shape)} for a target {tuple(target.shape)}")
        self.register_buffer("target", target.detach())
        self.register_buffer("weights", weights)

    def forward(self, image: Tensor) -> Tensor:
        return temporal_loss(image, self.target, self.weights)

    def gradient(self, image: Tensor) -> Tensor:
        """:func:`temporal_gradient` at ``image``."""
        return temporal_gradient(image, self.target, self.weights)


# -- the same terms from sums over tiles (artistyle.tiling) ---------------------------------------
def gram_sum(features: Tensor, masks: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Unnormalised Gram matrix of some positions and their count: ``(sum_p f_p f_p^T, M)``.

    For ``features`` ``(1, C, h, w)`` it returns ``(1, C, C)`` and ``M = h w``
    ``(1,)``; with region ``masks`` ``(R, 1, h, w)``, per region
    ``sum_p m(p)^2 f_p f_p^T`` ``(R, C, C)`` and the mask mass ``sum_p m(p)^2``
    ``(R,)``. Sums of disjoint parts add up to the whole image's; dividing gives
    :func:`gram_matrix` or :func:`guided_gram_matrices`.
    """
    flat = _at_least_fp32(features)
    if masks is not None:
        flat = flat * masks
        count = masks.pow(2).flatten(1).sum(1)
    else:
        count = flat.new_full((1,), float(flat.shape[2] * flat.shape[3]))
    flat = flat.flatten(2)
    return torch.bmm(flat, flat.transpose(1, 2)), count


def style_term_from_gram_sums(
    sums: Tensor, counts: Tensor, target: Tensor, scale: float, share: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """A style term's value and gradient kernel from the whole image's :func:`gram_sum`.

    With ``G = sums / M`` (per region) and ``D = G - A``:
    value ``b sum_r s_r mean(D_r^2)`` (``b`` = ``scale``, ``s_r`` = ``share``, one
    region of share 1 without masks), and kernel ``K_r = 4 b s_r D_r / (C^2 M_r)``,
    so that the gradient of the value with respect to the features is ``K F``
    (``K m^2 F`` for a region): see :func:`style_surrogate`.
    """
    target = _at_least_fp32(target)
    channels, positions = target.shape[-1], counts.view(-1, 1, 1)
    diff = sums / positions - target  # (R, C, C); R = 1 without masks
    weight = share.view(-1, 1, 1) if share is not None else torch.ones_like(positions)
    value = scale * (weight * diff.pow(2).mean(dim=(1, 2), keepdim=True)).sum()
    kernel = diff * (4.0 * scale * weight / (channels * channels * positions))
    return value, kernel


def style_surrogate(features: Tensor, kernel: Tensor, masks: Tensor | None = None) -> Tensor:
    """``1/2 tr(F^T K F)`` over some positions: with ``K`` held fixed its gradient is ``K F``.

    So backpropagating it from a tile gives the true style gradient at the tile's
    positions (``K`` from :func:`style_term_from_gram_sums`); with region ``masks``
    each region's weighted copy ``m F`` gets its own ``K_r``.
    """
    flat = _at_least_fp32(features)
    if masks is not None:
        flat = flat * masks  # (R, C, h, w): one weighted copy per region
    flat = flat.flatten(2)
    return 0.5 * (flat * torch.bmm(kernel.expand(flat.shape[0], -1, -1), flat)).sum()


def content_squared_error(features: Tensor, target: Tensor) -> Tensor:
    """``sum((F - P)^2)`` over some positions; the parts of disjoint tiles add up."""
    return (_at_least_fp32(features) - _at_least_fp32(target)).pow(2).sum()


def content_term(squared_error: Tensor, count: int, scale: float) -> Tensor:
    """A content term ``a sum((F - P)^2) / N`` from :func:`content_squared_error` (``N``: elements of ``P``).

    It is a plain sum over positions, so the term of a tile's part is its own
    surrogate: its gradient ``2 a (F - P) / N`` is the true one at those positions.
    """
    return scale * squared_error / count


class AnchorLoss(nn.Module):
    """The layout anchor: ``w mean_l mean((F_l(shrink(x)) - F_l(R))^2)`` over the anchor layers.

    ``targets``: the features ``F_l(R)`` of the reference ``R`` (the run's result
    at the anchor scale) at :data:`ANCHOR_LAYERS`; ``shape``: ``R``'s ``(H, W)``,
    the size :meth:`shrink` brings an image to; ``weight``: ``w`` (the content
    weight). Not in the paper: VGG's receptive fields are fixed in pixels, so at
    large sizes no layer sees the structures the coarse scales laid out; matching
    deep features of the shrunk image holds where they are (see
    :meth:`artistyle.objective.StyleObjective.set_anchor`).
    """

    def __init__(self, targets: Mapping[str, Tensor], shape: tuple[int, int], weight: float):
        super().__init__()
        self.losses = nn.ModuleDict({name: ContentLoss(target) for name, target in targets.items()})
        self.shape = (int(shape[0]), int(shape[1]))
        self.scale = weight / len(self.losses)

    def shrink(self, image: Tensor) -> Tensor:
        """``image`` resized to the anchor shape (antialiased bilinear)."""
        return F.interpolate(image, size=self.shape, mode="bilinear", antialias=True, align_corners=False)

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The weighted terms ``anchor:<layer>`` from the features of the shrunk image."""
        return {f"anchor:{name}": self.scale * loss(features[name]) for name, loss in self.losses.items()}

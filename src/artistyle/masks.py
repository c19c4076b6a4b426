"""Spatial control after Gatys et al. (CVPR 2017, section 4): region masks and guided Gram matrices.

A region ``r`` with mask ``m_r`` (in [0, 1], at a layer's resolution) has the
guided Gram matrix

    G_r = sum_p m_r(p)^2 f_p f_p^T / sum_p m_r(p)^2

(the features weighted by the mask, normalised by the mask's mass, as in the
authors' code), and its style term matches ``G_r`` to the Gram matrix of the
style image assigned to ``r``. Pixels outside every region get no style term:
the content term alone keeps them.

Masks reach each layer by averaging over its pooling cells and are then eroded
by about half the layer's receptive field, so that the positions that count
for a region mostly see pixels inside it (``inside`` masks that erode by the
whole receptive field would erase regions narrower than about 140 px at
conv5_1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from .errors import UsageError
from .images.sources import ImageLike, as_picture, describe, image_list
from .vgg import layer_reach, layer_stride

__all__ = ["erosion_radius", "layer_masks", "load_masks", "resize_masks"]


def load_masks(masks: Sequence[ImageLike] | ImageLike, styles: int, content_size: tuple[int, int]) -> Tensor:
    """Region masks ``(R, 1, H, W)`` in [0, 1] at the content's own size, region ``r`` painted with style ``r``.

    Either one label image (greyscale or palette: 0 = no style, ``k`` = the
    ``k``-th style) or one mask per style (greyscale, white = that style's
    region, grey = partly). With one style, a mask whose only values are 0 and 1
    is read as a label image. Each is a path, a PIL image, an array or a tensor
    (:mod:`artistyle.images.sources`: 8-bit values, or floats in [0, 1] for white = 1).
    """
    width, height = content_size
    sources = image_list(masks)
    names = [describe(source, k) for k, source in enumerate(sources, start=1)]
    pictures = []
    for source, name in zip(sources, names):
        picture = ImageOps.exif_transpose(as_picture(source, role="mask"))
        if picture.size != (width, height):
            raise UsageError(
                f"mask {name} is {picture.size[0]}x{picture.size[1]} px; it must be the content image's "
                f"{width}x{height} px"
            )
        pictures.append(picture)
    if len(pictures) == 1:
        values = _label_values(pictures[0], names[0])
        if styles > 1 or set(np.unique(values).tolist()) <= {0, 1}:
            return _from_labels(values, styles, names[0])
    if len(pictures) != styles:
        raise UsageError(
            f"{len(pictures)} masks given for {styles} style images: give one label image or one mask per style"
        )
    stacked = np.stack([np.asarray(p.convert("L"), np.float32) / 255.0 for p in pictures])
    for k, (mask, name) in enumerate(zip(stacked, names), start=1):
        if not mask.any():
            raise UsageError(f"mask {name} for style {k} is empty (all black)")
    return torch.from_numpy(stacked[:, None])


def _label_values(picture: Image.Image, name: str) -> np.ndarray:
    """Integer labels of a greyscale or palette image (a colour image is refused: its labels are ambiguous)."""
    if picture.mode == "P":
        return np.asarray(picture, np.int64)
    if picture.mode in ("L", "I", "I;16", "1", "LA"):
        return np.asarray(picture.convert("I"), np.int64)
    rgb = np.asarray(picture.convert("RGB"), np.int64)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return rgb[..., 0]
    raise UsageError(f"label mask {name} is in colour; use a greyscale or palette image (0 = no style, k = style k)")


def _from_labels(labels: np.ndarray, styles: int, name: str) -> Tensor:
    found = sorted(set(np.unique(labels).tolist()))
    unknown = [v for v in found if not 0 <= v <= styles]
    if unknown:
        raise UsageError(
            f"label mask {name} has label {unknown[0]}, but there are {styles} style images "
            f"(labels: 0 = no style, 1..{styles} = the styles)"
        )
    missing = [k for k in range(1, styles + 1) if k not in found]
    if missing:
        raise UsageError(f"label mask {name} gives style {missing[0]} no pixels")
    masks = np.stack([(labels == k).astype(np.float32) for k in range(1, styles + 1)])
    return torch.from_numpy(masks[:, None])


def resize_masks(masks: Tensor, shape: tuple[int, int]) -> Tensor:
    """Masks at another image size (area average when shrinking, bilinear when enlarging)."""
    if tuple(masks.shape[2:]) == tuple(shape):
        return masks
    mode = "area" if shape[0] <= masks.shape[2] and shape[1] <= masks.shape[3] else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(masks, size=tuple(shape), mode=mode, **kwargs).clamp(0, 1)


def erosion_radius(layer: str) -> int:
    """Positions to erode a mask by at ``layer``: half the receptive field's reach, in the layer's units."""
    return max(1, math.ceil(layer_reach(layer) / (2 * layer_stride(layer))))


def layer_masks(masks: Tensor, layer: str) -> Tensor:
    """Image-size masks ``(R, 1, H, W)`` at ``layer``'s resolution ``(H // s, W // s)``, eroded.

    A region that erosion would wipe out at this layer keeps its un-eroded mask,
    so small regions still get a (slightly bleeding) style term.
    """
    stride = layer_stride(layer)
    cells = F.avg_pool2d(masks, stride) if stride > 1 else masks
    radius = erosion_radius(layer)
    # Erosion = a min filter; the image border does not erode (replicate padding).
    padded = F.pad(cells, (radius,) * 4, mode="replicate")
    eroded = -F.max_pool2d(-padded, 2 * radius + 1, stride=1)
    empty = eroded.flatten(1).sum(1) <= 1e-6
    if empty.any():
        eroded[empty] = cells[empty]
    return eroded

"""The size check: every image a run resizes must keep, at every scale, a short side its deepest layer can see.

A layer of pooling stride ``s`` has no feature at all for an input side under ``s`` px, so a
very wide or tall image resized to a modest long edge cannot be painted. This module knows
only the images' sizes, not their pixels, so the studio can refuse such a job when it is
submitted, before it waits in the queue, with the command line's message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from .config import StyleConfig
from .errors import UsageError
from .images import resized_shape
from .vgg import deepest_layer, layer_stride

__all__ = ["FINE_STYLE_LAYERS", "FINE_STYLE_MAX_SIZE", "LARGEST_SUGGESTED_SIZE", "Sized", "check_image_sizes"]

# The largest long edge the fine-style build (NST.combine_scales) runs at.
FINE_STYLE_MAX_SIZE = 512
# Scale control (Gatys et al. 2017, section 6): the layers whose Gram matrices carry the fine
# texture (NST.combine_scales matches only these).
FINE_STYLE_LAYERS = ("conv1_1", "conv2_1")
# The largest --size the size check suggests; beyond it the image is too elongated to paint.
LARGEST_SUGGESTED_SIZE = 65536


class Sized(Protocol):
    """What the check needs of an image: (width, height) and a path or name for the message."""

    @property
    def size(self) -> tuple[int, int]: ...

    @property
    def path(self) -> str | os.PathLike[str] | None: ...


class _Resized(NamedTuple):
    role: str
    image: Sized
    long_edges: list[int]
    deepest: str


def image_long_edges(
    config: StyleConfig, output_size: int, content: Sized, styles: Sequence[Sized], fine_style: Sized | None
) -> list[_Resized]:
    """(role, image, its long edge at each scale, deepest layer it meets) for every image a run resizes.

    Masks and an init image take the content's size at every scale, so the content covers them.
    """
    scales = config.scale_sizes(output_size)
    deepest = deepest_layer(tuple(config.content_layers) + tuple(config.style_layers))
    style_edges = config.style_sizes(output_size, len(styles))
    edges = [_Resized("content image", content, scales, deepest)]
    for style, long_edge in zip(styles, style_edges):
        edges.append(_Resized("style image", style, [max(1, round(long_edge * s / output_size)) for s in scales],
                              deepest))
    if fine_style is not None:  # the fine-style build runs once per style, at most FINE_STYLE_MAX_SIZE px
        built = [min(long_edge, FINE_STYLE_MAX_SIZE) for long_edge in style_edges]
        edges.append(_Resized("fine style image", fine_style, built, deepest_layer(FINE_STYLE_LAYERS)))
        edges.extend(_Resized("style image", style, [edge], deepest_layer(FINE_STYLE_LAYERS))
                     for style, edge in zip(styles, built))
    return edges


def check_image_sizes(
    config: StyleConfig,
    output_size: int,
    content: Sized,
    styles: Sequence[Sized],
    fine_style: Sized | None = None,
    *,
    options: tuple[str, str] = ("--size", "--scales 1"),
) -> None:
    """Refuse, before any work, an image whose short side at some scale is under what its deepest layer needs.

    The message names the image, its size, the scale and a size that works; ``options`` are
    how the driver names the size setting and a one-scale run (the studio: "Size", "Scales 1").
    """
    for index, item in enumerate(image_long_edges(config, output_size, content, styles, fine_style)):
        need = layer_stride(item.deepest)
        width, height = item.image.size
        for long_edge in item.long_edges:
            short = min(resized_shape(width, height, long_edge))
            if short >= need:
                continue
            label = f"'{item.image.path}'" if item.image.path is not None else "(not a file)"
            hint = _working_size(config, index, output_size, content, styles, fine_style, options)
            raise UsageError(
                f"{item.role} {label} is {width}x{height} px: at {long_edge} px its short side is {short} px, "
                f"under the {need} px {item.deepest} needs; {hint}"
            )


def _working_size(
    config: StyleConfig,
    index: int,
    output: int,
    content: Sized,
    styles: Sequence[Sized],
    fine_style: Sized | None,
    options: tuple[str, str],
) -> str:
    """What to do about image ``index`` of :func:`image_long_edges`: the smallest size above
    ``output`` at which it fits (with the run's scales, else with one scale), or a less elongated image."""
    size_option, one_scale = options
    single = dataclasses.replace(config, scales=1, scale_steps=None)
    for extra, candidate in (("", config), (f" with {one_scale}", single)):
        for size in range(output + 1, LARGEST_SUGGESTED_SIZE + 1):
            try:
                item = image_long_edges(candidate, size, content, styles, fine_style)[index]
            except UsageError:  # e.g. too many --scales for this size
                continue
            need = layer_stride(item.deepest)
            if all(min(resized_shape(item.image.size[0], item.image.size[1], e)) >= need for e in item.long_edges):
                return f"use {size_option} {size} or more{extra}, or a less elongated image"
    return "use a less elongated image"

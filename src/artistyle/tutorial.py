"""The seed's tutorial-style API, after PyTorch's "Neural Transfer Using PyTorch" tutorial.

:func:`image_loader` gives the content, the style (resized to the content's
size, as the tutorial does) and the starting image as three ``(1, 3, H, W)``
tensors of one size. :func:`style_model_and_losses` builds the tutorial's
model: an ``nn.Sequential`` of the input normalisation and the VGG-19 layers
(``conv1_1, relu1_1, ...`` as in the paper), with a loss layer inserted right
after each convolution it watches (content: conv4_2; style: conv1_1 ..
conv5_1), cut after the last loss layer. Calling ``model(x)`` leaves each loss
layer's ``.loss`` set for ``x``; their sum is exactly what the engine's
:class:`~artistyle.objective.StyleObjective` computes for ``x`` (the same loss
functions of :mod:`artistyle.losses`, the config's weights applied; a TV layer
comes first when ``tv_weight`` is set).

A compatibility route only: the engine never uses it. It runs in float32 with
autograd's backward, which keeps every intermediate tensor; the engine computes
the same loss and gradient with a hand-written backward in about half the
memory. It takes one style image and no region masks.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .engine import Engine
from .errors import UsageError
from .images.sources import ImageSource, image_list
from .losses import Normalization, content_loss, gram_matrix, style_loss, tv_loss
from .style_terms import make_style_term, style_statistics
from .vgg import LAYER_NAMES

__all__ = ["ContentLossLayer", "StyleLossLayer", "TVLossLayer", "image_loader", "style_model_and_losses"]

class ContentLossLayer(nn.Module):
    """Passes its input through and sets ``loss = weight * content_loss(input, target)``."""

    target: Tensor

    def __init__(self, target: Tensor, weight: float):
        super().__init__()
        self.register_buffer("target", target.detach())
        self.weight = weight
        self.loss = torch.zeros(())

    def forward(self, features: Tensor) -> Tensor:
        self.loss = self.weight * content_loss(features, self.target)
        return features


class StyleLossLayer(nn.Module):
    """Passes its input through and sets ``loss = weight * style_loss(input, target Gram matrix)``, or, given a
    style term (:func:`artistyle.style_terms.make_style_term`: ``--style-loss meanstd|w2|sw``), ``weight *
    term(input)``; ``target`` is the style's Gram matrix either way."""

    target: Tensor

    def __init__(self, target_gram: Tensor, weight: float, term: nn.Module | None = None):
        super().__init__()
        self.register_buffer("target", target_gram.detach())
        self.weight = weight
        self.term = term
        self.loss = torch.zeros(())

    def forward(self, features: Tensor) -> Tensor:
        value = style_loss(features, self.target) if self.term is None else self.term(features)
        self.loss = self.weight * value
        return features


class TVLossLayer(nn.Module):
    """Passes the image through and sets ``loss = weight * tv_loss(image)``."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight
        self.loss = torch.zeros(())

    def forward(self, image: Tensor) -> Tensor:
        self.loss = self.weight * tv_loss(image)
        return image


def image_loader(engine: Engine, content: ImageSource, style: ImageSource) -> tuple[Tensor, Tensor, Tensor]:
    """``(content, style, input)``, three ``(1, 3, H, W)`` tensors on the device at the content's size.

    The content and style are prepared as for a run (:meth:`Engine.load_images`: orientation,
    sRGB, the output size, the colour controls); the style is then resized to the content's
    exact size, as in the tutorial. ``input`` is the start the engine would use
    (:meth:`Engine.initial_image`; seeded white noise by default).
    """
    styles = image_list(style)
    if len(styles) != 1:
        raise UsageError(f"image_loader takes one style image, not {len(styles)}")
    inputs = engine.load_images(content, styles[0])
    height, width = inputs.content.shape[2:]
    style_tensor = F.interpolate(
        inputs.styles[0], size=(int(height), int(width)), mode="bilinear", antialias=True, align_corners=False
    )
    start = engine.initial_image(dataclasses.replace(inputs, styles=[style_tensor]))
    return inputs.content, style_tensor, start


def style_model_and_losses(
    engine: Engine, content: Tensor, style: Tensor
) -> tuple[nn.Sequential, list[StyleLossLayer], list[ContentLossLayer]]:
    """The tutorial's ``(model, style_losses, content_losses)`` for ``content`` and ``style`` images.

    The targets are computed as the model is built, as in the tutorial: the content's
    features and the style's Gram matrices at the watched layers (and with ``--style-loss meanstd|w2|sw`` the
    config's style term from the style's features there, as the engine builds it).
    """
    config = engine.config
    if config.masks:
        raise UsageError("the tutorial-style model has no region masks; use NST.run_nst or NST.paint")
    device = engine.device
    content, style = content.to(device, torch.float32), style.to(device, torch.float32)
    # The weights of the terms, as StyleObjective applies them.
    assert config.content_weight is not None  # the engine's config is resolved
    content_weight = config.content_weight / len(config.content_layers)
    layer_weights = config.layer_weights
    style_weights = {
        name: config.style_weight * w / sum(layer_weights) for name, w in zip(config.style_layers, layer_weights)
    }
    normalization = engine.weights.normalization
    model = nn.Sequential()
    if config.tv_weight:
        model.add_module("tv_loss", TVLossLayer(config.tv_weight))  # it watches the image itself
    normalize = Normalization(
        normalization.mean.tolist(), normalization.std.tolist(), normalization.channel_order
    ).to(device)
    model.add_module("normalization", normalize)
    content_losses: list[ContentLossLayer] = []
    style_losses: list[StyleLossLayer] = []
    watched = set(config.content_layers) | set(config.style_layers)
    last = max(LAYER_NAMES.index(name) for name in watched)
    with torch.no_grad():
        c_features, s_features = normalize(content), normalize(style)
        for name in LAYER_NAMES[: last + 1]:
            layer = _layer(engine, name).to(device)
            model.add_module(name, layer)
            c_features, s_features = layer(c_features), layer(s_features)
            if name in config.content_layers:
                content_module = ContentLossLayer(c_features, content_weight)
                model.add_module(f"content_loss_{name}", content_module)
                content_losses.append(content_module)
            if name in config.style_layers:
                kind = config.style_loss
                term = (None if kind == "gram" else
                        make_style_term(kind, name, [style_statistics(kind, s_features, name)], [1.0]))
                style_module = StyleLossLayer(gram_matrix(s_features)[0], style_weights[name], term)
                model.add_module(f"style_loss_{name}", style_module)
                style_losses.append(style_module)
    model.eval().requires_grad_(False)
    return model, style_losses, content_losses


def _layer(engine: Engine, name: str) -> nn.Module:
    """VGG-19's layer ``name``: a frozen 3x3 convolution with the run's padding, a ReLU or a 2x2 pooling."""
    if name.startswith("conv"):
        weight, bias = engine.weights.convs[name]
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=1,
                         padding_mode=engine.config.padding, device="meta")
        conv.weight = nn.Parameter(weight, requires_grad=False)
        conv.bias = nn.Parameter(bias, requires_grad=False)
        return conv
    if name.startswith("relu"):
        # Not in place: the loss layer after the convolution keeps its input for the backward.
        return nn.ReLU(inplace=False)
    return nn.MaxPool2d(2, 2) if engine.config.pooling == "max" else nn.AvgPool2d(2, 2)

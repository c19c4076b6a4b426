"""The style transfer engine's facade, :class:`NST`, and the preprocessing of its inputs.

``NST`` is the object most users want::

    from artistyle import NST
    picture = NST(size=256).run_nst("photo.jpg", "painting.jpg")   # a PIL.Image

Under it, :class:`~artistyle.painting.Painting` runs a whole coarse-to-fine run
and :class:`~artistyle.transfer.Transfer` one scale, one iteration at a time,
yielding a :class:`~artistyle.transfer.Progress` event after each, so a CLI, a
notebook or a web page can watch it, show previews and stop it. The seed's
tutorial-style API (:meth:`NST.image_loader`, :meth:`NST.style_model_and_losses`)
lives in :mod:`artistyle.tutorial`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from . import tutorial
from .color import as_luminance_image, keep_content_chroma, match_color, match_luminance
from .config import StyleConfig
from .devices import resolve_device
from .fast import fast_start
from .images import resize_long_edge
from .images.sources import ImageLike, ImageSource, as_loaded, image_list
from .images.tensors import array_to_tensor, tensor_to_array, to_pil
from .masks import load_masks, resize_masks
from .objective import StyleObjective
from .painting import FINE_STYLE_LAYERS, Painting, TemporalTarget
from .transfer import Progress, Transfer
from .vgg import VGGWeights
from .weights import load_weights

# Painting, Progress, Transfer and the conversions live in their own modules; they are
# re-exported here because they were importable from artistyle.nst before.
__all__ = ["NST", "Inputs", "Painting", "Progress", "Transfer", "array_to_tensor", "tensor_to_array", "to_pil"]

NOISE_SD = 0.01
# Scale control (Gatys et al. 2017, section 6): the iterations spent on the new style image
# (painting.FINE_STYLE_LAYERS: the layers whose Gram matrices carry the fine texture).
FINE_STYLE_STEPS = 200

@dataclass
class Inputs:
    """Preprocessed images on the device, ready for :meth:`NST.build_model`."""

    content: Tensor  # (1, 3, H, W) at the output size
    styles: list[Tensor]  # (1, 3, h, w) each, at the style size
    alpha: np.ndarray | None  # the content's alpha at the output size, put back on save
    color_content: Tensor | None = None  # the content in colour (``content`` is grey in luminance mode)
    masks: Tensor | None = None  # (R, 1, H, W) region masks at the output size, one region per style


class NST:
    """Neural style transfer after Gatys, Ecker and Bethge (2016).

    ``NST(config)`` or ``NST(size=256, style_weight=1e4, ...)`` with any field
    of :class:`StyleConfig`. :meth:`run_nst` paints in one call, :meth:`paint`
    returns the iterable :class:`Painting`; the steps of one scale are public so
    they can be used one by one: :meth:`load_images`, :meth:`build_model`,
    :meth:`transfer`. :meth:`image_loader` and :meth:`style_model_and_losses` are
    the seed's tutorial-style API (:mod:`artistyle.tutorial`).
    """

    def __init__(self, config: StyleConfig | None = None, **settings: Any):
        base = config or StyleConfig()
        self.config = dataclasses.replace(base, **settings).validate() if settings else base.validate()
        self.device = resolve_device(self.config.device)
        self.weights: VGGWeights = load_weights(self.config.weights)
        self.seed = self.config.seed if self.config.seed is not None else random.randrange(2**31)

    @property
    def half_dtype(self) -> torch.dtype | None:
        """The convolutions' precision: mixed bf16 (or fp16 where bf16 is missing) on CUDA, fp32 on CPUs.

        CPUs stay in float32: bf16 convolutions are 10-1000x slower on the CPUs measured here.
        """
        precision = self.config.precision
        if precision == "auto":
            if self.device.type != "cuda":
                return None
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    @property
    def size(self) -> int:
        """The output's long edge: the configured size or the device's default."""
        return self.config.output_size(self.device.type)

    # -- step 1 ---------------------------------------------------------------
    def load_images(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        size: int | None = None,
        masks: Tensor | None = None,
    ) -> Inputs:
        """Load, orient, convert to sRGB and resize the images.

        The content is scaled to ``size`` (default: the output size; long edge,
        aspect kept); each style image by its own long edge to ``style_size``
        (default: the output size), never squashed to the content's shape. At a
        coarser scale the style shrinks in proportion, so brush strokes keep
        their size relative to the picture. Region masks (``masks``, or the
        config's mask files) are resized with the content.
        """
        size = size or self.size
        c = self.config
        loaded = as_loaded(content, "content image")
        content_tensor = array_to_tensor(resize_long_edge(loaded.rgb, size), self.device)
        alpha = resize_long_edge(loaded.alpha, size) if loaded.alpha is not None else None
        styles = [as_loaded(s, "style image") for s in image_list(style)]
        style_tensors = [
            array_to_tensor(resize_long_edge(s.rgb, max(1, round(long_edge * size / self.size))), self.device)
            for s, long_edge in zip(styles, c.style_sizes(self.size, len(styles)))
        ]
        if masks is None and c.masks:
            masks = self.region_masks(loaded, len(styles))
        if masks is not None:
            height, width = content_tensor.shape[2:]
            masks = resize_masks(masks, (int(height), int(width))).to(self.device)
        # Colour control (Gatys et al. 2017, section 5) acts on the inputs; the output is recombined in finish().
        if c.preserve_color == "histogram":
            style_tensors = [match_color(s, content_tensor, c.color_match) for s in style_tensors]
        elif c.preserve_color == "luminance":
            style_tensors = [match_luminance(s, content_tensor) for s in style_tensors]
            return Inputs(as_luminance_image(content_tensor), style_tensors, alpha, content_tensor, masks)
        return Inputs(content_tensor, style_tensors, alpha, content_tensor, masks)

    def region_masks(
        self, content: ImageSource, styles: int, masks: Sequence[ImageLike] | ImageLike | None = None
    ) -> Tensor | None:
        """Region masks ``(R, 1, H, W)`` at the content's own size (None without masks).

        ``masks`` (paths, PIL images, arrays or tensors; see :func:`artistyle.masks.load_masks`)
        replace the config's mask files.
        """
        if masks is None:
            if not self.config.masks:
                return None
            masks = list(self.config.masks)
        return load_masks(masks, styles, as_loaded(content, "content image").size)

    def finish(self, image: Tensor, content: Tensor) -> Tensor:
        """The optimised image as the user sees it: with the content's chroma in luminance or original-colours mode.

        ``content`` is the colour content photo (any size; resized to ``image``).
        """
        if self.config.preserve_color == "luminance" or self.config.original_colors:
            return keep_content_chroma(image, content)
        return image

    def combine_scales(self, coarse: Tensor, fine: Tensor, steps: int = FINE_STYLE_STEPS) -> Tensor:
        """A new style image: ``coarse``'s large-scale structure with ``fine``'s brush texture.

        Gatys et al. (2017, section 6): start from the coarse style image and
        match only the Gram matrices of the fine one at the shallow layers
        (:data:`FINE_STYLE_LAYERS`); the optimisation repaints the small-scale
        texture and leaves the large-scale structure, which those layers do not
        see. The result is then used as the style image.
        """
        return self.combine_scales_transfer(coarse, fine, steps).run()

    def combine_scales_transfer(self, coarse: Tensor, fine: Tensor, steps: int = FINE_STYLE_STEPS) -> Transfer:
        """The :class:`Transfer` behind :meth:`combine_scales`, to run (or stop) yourself."""
        config = StyleConfig(
            content_layers=("conv1_1",), content_weight=0.0, style_layers=FINE_STYLE_LAYERS, style_weight=1.0,
            pooling=self.config.pooling, padding=self.config.padding,
        )
        # Float32 and default L-BFGS whatever the run's settings: a short build at <= 512 px.
        objective = StyleObjective(self.weights, config).to(self.device)
        objective.set_content(coarse)
        objective.set_style(fine)
        return Transfer(objective, coarse, steps=steps, optimizer="lbfgs")

    # -- step 2 ---------------------------------------------------------------
    def build_model(
        self, inputs: Inputs, tile: int | None = None, anchor: Tensor | None = None,
        temporal: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> StyleObjective:
        """The frozen feature network with its content and style targets set (tiled with ``tile``).

        ``anchor``: the run's result at the anchor scale, whose coarse layout the image
        shrunk to its size must keep (:meth:`StyleObjective.set_anchor`). ``temporal``: a video
        frame's (target, weights) pairs at the content's size (:meth:`StyleObjective.set_temporal`).
        """
        objective = StyleObjective(self.weights, self.config, tile=tile, half_dtype=self.half_dtype).to(self.device)
        objective.set_content(inputs.content)
        objective.set_style(inputs.styles, self.config.blend_weights(len(inputs.styles)), masks=inputs.masks)
        if anchor is not None:
            objective.set_anchor(anchor)
        if temporal:
            objective.set_temporal([(t.to(self.device), c.to(self.device)) for t, c in temporal])
        return objective

    def initial_image(self, inputs: Inputs, init: str | ImageSource | None = None) -> Tensor:
        """The starting image: seeded white noise, the content, the style, the fast start, or an image.

        ``init`` replaces the config's: ``noise``, ``content``, ``style``, ``fast`` or any image
        (a file, array, ...: :mod:`artistyle.images.sources`), resized to the content's size.
        ``fast``: the feed-forward network's picture (:mod:`artistyle.fast`) of the colour photo
        with the blend of the (colour-controlled) styles' vectors at the blend weights; in luminance
        mode its luminance, like every start there.
        """
        init = self.config.init if init is None else init
        _, _, h, w = inputs.content.shape
        if isinstance(init, str) and init == "noise":
            # Gaussian white noise around mid-grey. The paper does not give an amplitude; a faint
            # one (sd 0.01) lets the optimiser build the picture without leaving speckle, which
            # full-range uniform noise does after 300 iterations. Drawn on the CPU so a seed
            # gives the same start on every device.
            generator = torch.Generator().manual_seed(self.seed)
            noise = torch.randn(1, 3, h, w, generator=generator)
            return (0.5 + NOISE_SD * noise).to(self.device)
        if isinstance(init, str) and init == "content":
            return inputs.content.clone()
        if isinstance(init, str) and init == "fast":
            photo = inputs.color_content if inputs.color_content is not None else inputs.content
            start = fast_start(inputs.styles, photo, self.config.blend_weights(len(inputs.styles)), self.device)
            return as_luminance_image(start) if self.config.preserve_color == "luminance" else start
        if isinstance(init, str) and init == "style":
            source = inputs.styles[0]
        else:
            source = array_to_tensor(as_loaded(init, "init image").rgb, self.device)
        return torch.nn.functional.interpolate(
            source, size=(h, w), mode="bilinear", antialias=True, align_corners=False
        )

    def transfer(
        self, inputs: Inputs, preview_every: int = 0, *, init: Tensor | None = None, steps: int | None = None,
        lbfgs_history: int | None = None, tile: int | None = None, anchor: Tensor | None = None,
        temporal: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> Transfer:
        """A ready single-scale :class:`Transfer` for ``inputs``; iterate over it to run.

        ``init`` defaults to :meth:`initial_image`; ``steps``, ``lbfgs_history``
        and ``tile`` (exact tiled evaluation, see :mod:`artistyle.tiling`) to the config's.
        ``anchor`` and ``temporal``: as in :meth:`build_model`.
        """
        torch.manual_seed(self.seed)
        c = self.config
        return Transfer(
            self.build_model(inputs, tile=c.tile if tile is None else tile, anchor=anchor, temporal=temporal),
            self.initial_image(inputs) if init is None else init,
            steps=c.steps if steps is None else steps,
            optimizer=c.optimizer,
            lr=c.learning_rate,
            lbfgs_history=c.lbfgs_history if lbfgs_history is None else lbfgs_history,
            preview_every=preview_every,
        )

    def paint(
        self, content: ImageSource, style: ImageSource | Sequence[ImageSource], preview_every: int = 0, *,
        masks: Sequence[ImageLike] | ImageLike | None = None, fine_style: ImageSource | None = None,
        init: str | ImageSource | None = None, temporal: Sequence[TemporalTarget] = (),
    ) -> Painting:
        """A whole run, coarse to fine (see :class:`Painting`); iterate over it to run.

        ``masks``, ``fine_style`` and ``init`` replace the config's fields of the same
        name; each may be a path, a PIL image, an array or a tensor (:mod:`artistyle.images.sources`).
        ``temporal``: a video frame's earlier results warped to it, each with its consistency
        weights ``(H, W)`` (Ruder et al. 2016; see :class:`Painting`), weighted by ``temporal_weight``.
        """
        styles = [as_loaded(s, "style image") for s in image_list(style)]
        return Painting(self, as_loaded(content, "content image"), styles, preview_every,
                        masks=masks, fine_style=fine_style, init=init, temporal=temporal)

    # -- step 3 ---------------------------------------------------------------
    def run_nst(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        callback: Callable[[Progress], object] | None = None,
        *,
        masks: Sequence[ImageLike] | ImageLike | None = None,
        fine_style: ImageSource | None = None,
        init: str | ImageSource | None = None,
    ) -> Image.Image:
        """Paint ``content`` in the style of ``style``; returns an 8-bit RGB(A) image.

        ``masks``, ``fine_style`` and ``init``: as in :meth:`paint`.
        """
        painting = self.paint(content, style, masks=masks, fine_style=fine_style, init=init)
        result = painting.run(callback)
        return to_pil(tensor_to_array(result), painting.alpha)

    # -- the seed's tutorial-style API (artistyle.tutorial; the engine does not use it) ---------
    def image_loader(self, content: ImageSource, style: ImageSource) -> tuple[Tensor, Tensor, Tensor]:
        """``(content, style, input)``: three ``(1, 3, H, W)`` tensors of the content's size.

        The style is resized to the content's size, as in PyTorch's tutorial; ``input``
        is the start the engine would use (seeded white noise by default).
        """
        return tutorial.image_loader(self, content, style)

    def style_model_and_losses(
        self, content: Tensor, style: Tensor
    ) -> tuple[nn.Sequential, list[tutorial.StyleLossLayer], list[tutorial.ContentLossLayer]]:
        """``(model, style_losses, content_losses)`` as in PyTorch's tutorial (see :mod:`artistyle.tutorial`)."""
        return tutorial.style_model_and_losses(self, content, style)


# Names that moved out of this module, still importable from here with a warning.
_MOVED = {
    "IterateAverage": "artistyle.optim",
    "ADAM_AVERAGE_DECAY": "artistyle.optim",
    "PLATEAU_WINDOW": "artistyle.painting",
    "FINE_STYLE_MAX_SIZE": "artistyle.painting",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(f"artistyle.nst.{name} moved to {_MOVED[name]}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

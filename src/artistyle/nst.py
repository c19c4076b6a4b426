"""The style transfer engine's facade, :class:`NST`: settings in, device and weights chosen once.

``NST`` is the object most users want::

    from artistyle import NST
    picture = NST(size=256).run_nst("photo.jpg", "painting.jpg")   # a PIL.Image

Under it, :class:`~artistyle.engine.Engine` holds one run's services (loading the images,
the start, the objective), :class:`~artistyle.painting.Painting` runs a whole coarse-to-fine run
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
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from . import tutorial
from .config import StyleConfig
from .devices import resolve_device
from .engine import FINE_STYLE_STEPS, Engine, Inputs
from .images.sources import ImageLike, ImageSource, as_loaded, image_list
from .images.tensors import tensor_to_array, to_pil
from .objective import StyleObjective
from .painting import Painting, TemporalTarget
from .tile_workers import TileWorkerPool
from .transfer import Progress, Transfer
from .vgg import VGGWeights
from .weights import load_weights

__all__ = ["NST"]


class NST:
    """Neural style transfer after Gatys, Ecker and Bethge (2016).

    ``NST(config)`` or ``NST(size=256, style_weight=1e4, ...)`` with any field
    of :class:`StyleConfig`. :meth:`run_nst` paints in one call, :meth:`paint`
    returns the iterable :class:`Painting`; the steps of one scale are public so
    they can be used one by one: :meth:`load_images`, :meth:`build_model`,
    :meth:`transfer` (the :class:`~artistyle.engine.Engine`'s, :attr:`engine`).
    :meth:`image_loader` and :meth:`style_model_and_losses` are the seed's
    tutorial-style API (:mod:`artistyle.tutorial`).

    :attr:`given` is the config as given; :attr:`config` is it resolved
    (:meth:`StyleConfig.resolved`: the defaults that depend on other settings filled in).
    """

    def __init__(self, config: StyleConfig | None = None, *, workers: TileWorkerPool | None = None, **settings: Any):
        base = config or StyleConfig()
        self.given = dataclasses.replace(base, **settings).validate() if settings else base.validate()
        self.config = self.given.resolved()
        self.device = resolve_device(self.config.device)
        self.weights: VGGWeights = load_weights(self.config.weights)
        self.seed = self.config.seed if self.config.seed is not None else random.randrange(2**31)
        self.engine = Engine(self.config, self.device, self.weights, self.seed, workers=workers)

    @property
    def half_dtype(self) -> torch.dtype | None:
        """The convolutions' precision (:attr:`Engine.half_dtype`)."""
        return self.engine.half_dtype

    @property
    def size(self) -> int:
        """The output's long edge: the configured size or the device's default."""
        return self.engine.size

    # -- step 1 ---------------------------------------------------------------
    def close(self) -> None:
        """End the tile workers (``tile_workers``, or the ``workers`` given), if any; the NST stays usable."""
        self.engine.close()

    def __enter__(self) -> NST:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_images(
        self, content: ImageSource, style: ImageSource | Sequence[ImageSource], size: int | None = None,
        masks: Tensor | None = None,
    ) -> Inputs:
        """The images loaded and resized for a scale (:meth:`Engine.load_images`)."""
        return self.engine.load_images(content, style, size, masks)

    def region_masks(
        self, content: ImageSource, styles: int, masks: Sequence[ImageLike] | ImageLike | None = None
    ) -> Tensor | None:
        """Region masks at the content's own size (:meth:`Engine.region_masks`)."""
        return self.engine.region_masks(content, styles, masks)

    def finish(self, image: Tensor, content: Tensor) -> Tensor:
        """The optimised image as the user sees it (:meth:`Engine.finish`)."""
        return self.engine.finish(image, content)

    def combine_scales(self, coarse: Tensor, fine: Tensor, steps: int = FINE_STYLE_STEPS) -> Tensor:
        """A new style image: ``coarse``'s large-scale structure with ``fine``'s brush texture
        (:meth:`Engine.combine_scales_transfer`, run)."""
        return self.engine.combine_scales_transfer(coarse, fine, steps).run()

    def combine_scales_transfer(self, coarse: Tensor, fine: Tensor, steps: int = FINE_STYLE_STEPS) -> Transfer:
        """The :class:`Transfer` behind :meth:`combine_scales`, to run (or stop) yourself."""
        return self.engine.combine_scales_transfer(coarse, fine, steps)

    # -- step 2 ---------------------------------------------------------------
    def build_model(
        self, inputs: Inputs, tile: int | None = None, anchor: Tensor | None = None,
        temporal: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> StyleObjective:
        """The objective with its targets set (:meth:`Engine.build_model`)."""
        return self.engine.build_model(inputs, tile, anchor, temporal)

    def initial_image(self, inputs: Inputs, init: str | ImageSource | None = None) -> Tensor:
        """The starting image (:meth:`Engine.initial_image`)."""
        return self.engine.initial_image(inputs, init)

    def transfer(
        self, inputs: Inputs, preview_every: int = 0, *, init: Tensor | None = None, steps: int | None = None,
        lbfgs_history: int | None = None, tile: int | None = None, anchor: Tensor | None = None,
        temporal: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> Transfer:
        """A ready single-scale :class:`Transfer` (:meth:`Engine.transfer`); iterate over it to run."""
        return self.engine.transfer(inputs, preview_every, init=init, steps=steps, lbfgs_history=lbfgs_history,
                                    tile=tile, anchor=anchor, temporal=temporal)

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
        return Painting(self.engine, as_loaded(content, "content image"), styles, preview_every,
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
        return tutorial.image_loader(self.engine, content, style)

    def style_model_and_losses(
        self, content: Tensor, style: Tensor
    ) -> tuple[nn.Sequential, list[tutorial.StyleLossLayer], list[tutorial.ContentLossLayer]]:
        """``(model, style_losses, content_losses)`` as in PyTorch's tutorial (see :mod:`artistyle.tutorial`)."""
        return tutorial.style_model_and_losses(self.engine, content, style)

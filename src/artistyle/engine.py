"""The per-run services under the :class:`~artistyle.nst.NST` facade: :class:`Engine`.

An :class:`Engine` is one run's settings (resolved: :meth:`StyleConfig.resolved`), device,
network weights and seed, and what a run does with them at one scale: load the images
(:meth:`Engine.load_images`, into :class:`Inputs`), read the region masks, make the start
image, build the objective with its targets, make a one-scale :class:`Transfer`, combine two
styles' scales (Gatys et al. 2017, section 6) and finish the result (colour control).
:class:`~artistyle.painting.Painting` (coarse to fine) and the tutorial route
(:mod:`artistyle.tutorial`) work on an Engine; ``NST`` makes one and delegates to it. Nothing
here imports the facade, so the import graph runs one way: nst -> painting -> engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .color import as_luminance_image, keep_content_chroma, match_color, match_luminance
from .config import StyleConfig
from .fast import fast_start
from .images import resize_long_edge
from .images.alpha import content_colors
from .images.sources import ImageLike, ImageSource, as_loaded, image_list
from .images.tensors import array_to_tensor
from .masks import load_masks, resize_masks
from .objective import StyleObjective
from .optim import HistoryStorage
from .sizes import FINE_STYLE_LAYERS
from .tile_workers import LocalTileWorkers, TileWorkerPool
from .transfer import Transfer
from .vgg import VGGWeights

__all__ = ["FINE_STYLE_STEPS", "NOISE_SD", "Engine", "Inputs"]

NOISE_SD = 0.01
# Scale control (Gatys et al. 2017, section 6): the iterations spent on the new style image
# (sizes.FINE_STYLE_LAYERS: the layers whose Gram matrices carry the fine texture).
FINE_STYLE_STEPS = 200


@dataclass
class Inputs:
    """Preprocessed images on the device, ready for :meth:`Engine.build_model`."""

    content: Tensor  # (1, 3, H, W) at the output size
    styles: list[Tensor]  # (1, 3, h, w) each, at the style size
    alpha: np.ndarray | None  # the content's alpha at the output size, put back on save
    color_content: Tensor | None = None  # the content in colour (``content`` is grey in luminance mode)
    masks: Tensor | None = None  # (R, 1, H, W) region masks at the output size, one region per style
    # The styles' blend weights, summing to 1 (StyleConfig.blend_weights), computed once with the images.
    blend: list[float] = field(default_factory=list)


class Engine:
    """One run's resolved settings, device, VGG-19 weights and seed, and the steps of one scale."""

    def __init__(
        self, config: StyleConfig, device: torch.device, weights: VGGWeights, seed: int, *,
        workers: TileWorkerPool | None = None,
    ):
        self.config = config.resolved()
        self.device = device
        self.weights = weights
        self.seed = seed
        self._tile_workers = workers

    @property
    def worker_count(self) -> int | None:
        """How many tile workers evaluate the tiles (None: tiles run in this process)."""
        return self._tile_workers.count if self._tile_workers is not None else self.config.tile_workers

    def tile_workers(self) -> TileWorkerPool | None:
        """The workers that evaluate the tiles: the ones given (Ray actors, ...) or ``tile_workers`` local
        processes, started once and kept for every scale and painting of this engine; None: in this process."""
        if self._tile_workers is None and self.config.tile_workers is not None:
            self._tile_workers = LocalTileWorkers(self.config.tile_workers)
        return self._tile_workers

    def close(self) -> None:
        """End the tile workers, if any (a later tiled scale starts them again)."""
        if self._tile_workers is not None:
            self._tile_workers.close()

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

    def load_images(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        size: int | None = None,
        masks: Tensor | None = None,
    ) -> Inputs:
        """Load, orient, convert to sRGB and resize the images.

        The content's colours are its straight ones (:func:`~artistyle.images.alpha.content_colors`:
        a semi-transparent pixel's own colour, not its composite on white); its alpha is kept for the
        save. The content is scaled to ``size`` (default: the output size; long edge,
        aspect kept); each style image by its own long edge to ``style_size``
        (default: the output size), never squashed to the content's shape. At a
        coarser scale the style shrinks in proportion, so brush strokes keep
        their size relative to the picture. Region masks (``masks``, or the
        config's mask files) are resized with the content.
        """
        size = size or self.size
        c = self.config
        loaded = as_loaded(content, "content image")
        # Straight colours: a photo fading out is painted as it is, not as the white it fades into.
        content_tensor = array_to_tensor(content_colors(loaded, size), self.device)
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
        blend = c.blend_weights(len(styles))
        # Colour control (Gatys et al. 2017, section 5) acts on the inputs; the output is recombined in finish().
        if c.preserve_color == "histogram":
            style_tensors = [match_color(s, content_tensor, c.color_match) for s in style_tensors]
        elif c.preserve_color == "luminance":
            style_tensors = [match_luminance(s, content_tensor) for s in style_tensors]
            return Inputs(as_luminance_image(content_tensor), style_tensors, alpha, content_tensor, masks, blend)
        return Inputs(content_tensor, style_tensors, alpha, content_tensor, masks, blend)

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

    def combine_scales_transfer(self, coarse: Tensor, fine: Tensor, steps: int = FINE_STYLE_STEPS) -> Transfer:
        """A new style image as a :class:`Transfer` to run: ``coarse``'s large-scale structure with ``fine``'s
        brush texture.

        Gatys et al. (2017, section 6): start from the coarse style image and
        match only the Gram matrices of the fine one at the shallow layers
        (:data:`~artistyle.sizes.FINE_STYLE_LAYERS`); the optimisation repaints the small-scale
        texture and leaves the large-scale structure, which those layers do not
        see. The result is then used as the style image.
        """
        config = StyleConfig(
            content_layers=("conv1_1",), content_weight=0.0, style_layers=FINE_STYLE_LAYERS, style_weight=1.0,
            pooling=self.config.pooling, padding=self.config.padding,
        )
        # Float32 and default L-BFGS whatever the run's settings: a short build at <= 512 px.
        objective = StyleObjective(self.weights, config).to(self.device)
        objective.set_content(coarse)
        objective.set_style(fine)
        return Transfer(objective, coarse, steps=steps, optimizer="lbfgs")

    def build_model(
        self, inputs: Inputs, tile: int | None = None, anchor: Tensor | None = None,
        temporal: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> StyleObjective:
        """The frozen feature network with its content and style targets set (tiled with ``tile``).

        ``anchor``: the run's result at the anchor scale, whose coarse layout the image
        shrunk to its size must keep (:meth:`StyleObjective.set_anchor`). ``temporal``: a video
        frame's (target, weights) pairs at the content's size (:meth:`StyleObjective.set_temporal`).
        """
        objective = StyleObjective(
            self.weights, self.config, tile=tile, half_dtype=self.half_dtype,
            workers=None if tile is None else self.tile_workers(),
        ).to(self.device)
        blend = inputs.blend or self.config.blend_weights(len(inputs.styles))
        objective.set_targets(inputs.content, inputs.styles, blend, masks=inputs.masks, anchor=anchor,
                              temporal=[(t.to(self.device), c.to(self.device)) for t, c in temporal])
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
            blend = inputs.blend or self.config.blend_weights(len(inputs.styles))
            start = fast_start(inputs.styles, photo, blend, self.device)
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
        temporal: Sequence[tuple[Tensor, Tensor]] = (), lbfgs_storage: HistoryStorage | None = None,
    ) -> Transfer:
        """A ready single-scale :class:`Transfer` for ``inputs``; iterate over it to run.

        ``init`` defaults to :meth:`initial_image`; ``steps``, ``lbfgs_history``, ``lbfgs_storage``
        and ``tile`` (exact tiled evaluation, see :mod:`artistyle.tiling`) to the config's.
        ``anchor`` and ``temporal``: as in :meth:`build_model`.
        """
        torch.manual_seed(self.seed)
        c = self.config
        return Transfer(
            self.build_model(inputs, tile=c.tile if tile is None else tile, anchor=anchor, temporal=temporal),
            self.initial_image(inputs) if init is None else init,
            steps=(c.steps or 0) if steps is None else steps,
            optimizer=c.optimizer,
            lr=c.learning_rate,
            lbfgs_history=c.lbfgs_history if lbfgs_history is None else lbfgs_history,
            preview_every=preview_every,
            lbfgs_storage=c.lbfgs_storage if lbfgs_storage is None else lbfgs_storage,
        )

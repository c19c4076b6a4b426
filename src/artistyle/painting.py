"""A whole run, coarse to fine: :class:`Painting` runs one :class:`~artistyle.transfer.Transfer` per scale.

It also holds what spans the scales: the layout anchor (the result at the
anchor scale, which the finer scales keep), the fine-style build before the
first scale, the early stop on a loss plateau, and resuming from a checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .color import as_luminance_image
from .config import INITS
from .engine import Engine, Inputs
from .fast import fast_style
from .images import LoadedImage, encode_image, resize_long_edge, resized_shape, save_image
from .images.alpha import content_colors
from .images.sources import ImageLike, as_loaded, describe
from .images.tensors import array_to_tensor, tensor_to_array
from .memory import Plan, plan_memory
from .metadata import image_metadata
from .sizes import FINE_STYLE_MAX_SIZE, check_image_sizes
from .style_terms import untileable
from .tile_workers import worker_tile
from .transfer import Progress, Transfer

__all__ = ["PLATEAU_WINDOW", "Painting", "TemporalTarget", "plateau"]

# The plateau test looks this many iterations back.
PLATEAU_WINDOW = 10
# A video's temporal target: an earlier result warped to this frame, and its weights c (H, W) in [0, 1].
TemporalTarget = tuple[ImageLike, np.ndarray | Tensor]


class Painting:
    """A whole run: one :class:`Transfer` per scale, coarse to fine.

    Scale ``k`` starts from scale ``k-1``'s result, upsampled (bicubic); only the
    first starts from the configured init. Large structures settle cheaply at
    the small scales and the full-size iterations only refine: the same look
    for far fewer full-size evaluations (Gatys et al. 2017 use the same idea
    for high resolutions). With one scale it is exactly a single
    :class:`Transfer` of ``steps`` iterations.

    ``masks``, ``fine_style`` and ``init`` replace the config's files of the same
    name; each may be a path, a PIL image, an array or a tensor
    (:mod:`artistyle.images.sources`; ``init`` also ``noise``, ``content``, ``style`` or ``fast``).
    Only the first scale starts from ``init`` (``fast``: the feed-forward picture at that scale's size).

    ``temporal``: for a video frame, pairs of an earlier result warped to this frame (any image
    form) and its consistency weights ``(H, W)`` in [0, 1], an array or tensor; each scale holds its
    image near them with the config's ``temporal_weight`` (:meth:`StyleObjective.set_temporal`),
    both resized to the scale. In luminance mode the targets' luminance is used.

    Iterate over it for :class:`Progress` events; :meth:`stop` ends it after the
    current iteration; :attr:`image` is the last good image, at the output size.
    """

    def __init__(
        self,
        engine: Engine,
        content: LoadedImage,
        styles: list[LoadedImage],
        preview_every: int = 0,
        *,
        masks: Sequence[ImageLike] | ImageLike | None = None,
        fine_style: ImageLike | LoadedImage | None = None,
        init: ImageLike | LoadedImage | None = None,
        temporal: Sequence[TemporalTarget] = (),
    ):
        self.engine = engine
        self.content = content
        self.styles = styles
        self.preview_every = preview_every
        # The checks that need the number of styles (style sizes, blend weights, scales): before any work.
        engine.config.check(len(styles), engine.device.type)
        self.sizes = engine.config.scale_sizes(engine.size)
        self.schedule = engine.config.scale_schedule(len(self.sizes))
        self.steps = sum(self.schedule)
        width, height = resized_shape(content.size[0], content.size[1], engine.size)
        self.output_shape = (height, width)
        c = engine.config
        # The anchor scale: the last one no larger than style_anchor (None: the run has none).
        self.anchor_size = max((s for s in self.sizes if c.style_anchor and s <= c.style_anchor), default=None)
        # Every scale is planned now, so that a run that cannot fit fails before any work.
        self.plans = self._plan_memory()
        self.memory = self.plans[-1]
        # Masks, the fine style and an init image are read (and checked) now, before any work.
        self.masks = engine.region_masks(content, len(styles), masks)
        fine = fine_style if fine_style is not None else (c.fine_style or None)
        self.fine_style = None if fine is None else as_loaded(fine, "fine style image")
        # The start of the first scale: None (the config's init), a kind of start, or an image.
        self.init: str | LoadedImage | None = None
        if isinstance(init, str) and init in INITS:
            self.init = init
        elif init is not None:
            self.init = as_loaded(init, "init image")
        if (c.init if self.init is None else self.init) == "fast":  # the models found and loaded before any work
            fast_style(engine.device)
        self.temporal = [self._temporal_pair(target, weights, k) for k, (target, weights) in enumerate(temporal)]
        self.check_sizes()
        self.alpha = resize_long_edge(content.alpha, engine.size) if content.alpha is not None else None
        self.iteration = 0
        self.scale = 0
        self.elapsed = 0.0
        self.history: list[dict[str, float]] = []
        self.transfer: Transfer | None = None
        # An Event, not a bool: stop() is called from other threads (a Ctrl-C handler, the studio's Cancel).
        self._stopped = threading.Event()
        self._resume: dict[str, Any] | None = None
        self._color_content: Tensor | None = None
        self._offset: Tensor | None = None  # add_offset's, per channel
        # The result of the anchor scale, whose layout the finer scales keep.
        self._anchor_reference: Tensor | None = None
        self._preparing: Transfer | None = None  # the fine style's build, before the first scale
        # The first scale's inputs and start, when start_image() made them before the run: used, not remade.
        self._first: tuple[Inputs, Tensor] | None = None

    @staticmethod
    def _temporal_pair(target: ImageLike, weights: np.ndarray | Tensor, index: int) -> tuple[Tensor, Tensor]:
        """A temporal target as a ``(1, 3, H, W)`` tensor and its weights as ``(1, 1, H, W)``, on the CPU, checked."""
        image = array_to_tensor(as_loaded(target, f"temporal target {index + 1}").rgb)
        c = torch.as_tensor(weights).detach().cpu().float()
        if c.dim() != 2 or tuple(c.shape) != tuple(image.shape[2:]):
            raise ValueError(f"temporal weights {index + 1} {describe(weights)} have shape {tuple(c.shape)}; "
                             f"expected (H, W) = {tuple(image.shape[2:])}, the target's size")
        if not bool(torch.isfinite(c).all()) or float(c.min()) < 0 or float(c.max()) > 1:
            raise ValueError(f"temporal weights {index + 1} must lie in [0, 1]")
        return image, c[None, None]

    def temporal_at(self, shape: tuple[int, int]) -> list[tuple[Tensor, Tensor]]:
        """The temporal targets and weights resized to a scale's ``(H, W)`` (antialiased bilinear), on the device."""
        device, luminance = self.engine.device, self.engine.config.preserve_color == "luminance"
        pairs = []
        for target, weights in self.temporal:
            target, weights = scaled(target, shape).to(device), scaled(weights, shape).clamp(0, 1).to(device)
            pairs.append((as_luminance_image(target) if luminance else target, weights))
        return pairs

    def content_shape(self, scale_size: int) -> tuple[int, int]:
        """(w, h) of the content at a scale of long edge ``scale_size``."""
        return resized_shape(self.content.size[0], self.content.size[1], scale_size)

    def check_sizes(self) -> None:
        """Refuse, before any work, an image too elongated for its deepest layer at some scale
        (:func:`artistyle.sizes.check_image_sizes`)."""
        check_image_sizes(self.engine.config, self.engine.size, self.content, self.styles, self.fine_style)

    def _plan_memory(self) -> list[Plan]:
        """One memory plan per scale, coarse to fine."""
        engine, c, content = self.engine, self.engine.config, self.content
        layers = tuple(c.content_layers) + tuple(c.style_layers)
        plans = []
        # Finest first, so that a run that cannot fit is refused for the size the user asked for.
        workers = engine.worker_count
        for size in reversed(self.sizes):
            w, h = resized_shape(content.size[0], content.size[1], size)
            anchor = None
            if self.anchor_size is not None and c.anchored(size):
                anchor = resized_shape(content.size[0], content.size[1], self.anchor_size)
            plans.append(plan_memory(
                w, h, layers, history=c.lbfgs_history, optimizer=c.optimizer, device=engine.device,
                max_memory=c.max_memory, content_layers=tuple(c.content_layers),
                tile=c.tile if c.tile is not None or not workers else worker_tile(w, h, workers),
                bytes_per_value=2 if engine.half_dtype is not None else 4, anchor=anchor,
                sliced_layers=tuple(c.style_layers) if c.style_loss == "sw" else (),
                untileable=untileable(c.style_loss), storage=c.lbfgs_storage, workers=workers,
            ))
        plans.reverse()
        return plans

    @property
    def image(self) -> Tensor:
        """The last good image, upsampled to the output size if the run stopped at a coarser scale."""
        return self._finish(self.raw_image)

    @property
    def raw_image(self) -> Tensor:
        """:attr:`image` before the colour control puts the photo's colours back: what the optimiser
        works on (plus :meth:`add_offset`'s), so what a video's next frame is warped from and held near."""
        if self.transfer is None:
            raise RuntimeError("the painting has not started")
        image = resize(self.transfer.image, self.output_shape)
        if self._offset is not None:
            image = image + self._offset.to(image)
        return image.clamp(0, 1)

    def add_offset(self, offset: Tensor) -> None:
        """Add ``offset`` (``(1, C, 1, 1)``, one value per channel) to the finished picture, clamped to [0, 1]:
        how a clip holds its brightness (:mod:`artistyle.video.brightness`). Replaces an earlier offset."""
        self._offset = offset.detach().reshape(1, -1, 1, 1)

    def _finish(self, image: Tensor) -> Tensor:
        """:meth:`Engine.finish` with the content at the output size (made once, when first needed)."""
        engine = self.engine
        if engine.config.preserve_color != "luminance" and not engine.config.original_colors:
            return image
        if self._color_content is None:
            self._color_content = array_to_tensor(content_colors(self.content, engine.size), engine.device)
        return engine.finish(image.to(engine.device), self._color_content).to(image.device)

    def record(self) -> dict[str, str]:
        """The settings record a picture of this run carries (:func:`artistyle.metadata.image_metadata`):
        the version, the seed used and the resolved settings, read back by ``artistyle --info``."""
        return image_metadata(self.engine.config, self.engine.seed)

    def encode(self, suffix: str = ".png", *, bit_depth: int = 8) -> bytes:
        """:attr:`image` encoded as a file of type ``suffix`` (PNG, JPEG, WebP, TIFF), with the content's alpha
        and the settings record: exactly the bytes :meth:`save` writes."""
        return encode_image(tensor_to_array(self.image), suffix, alpha=self.alpha, bit_depth=bit_depth,
                            text=self.record(), straight=True)

    def save(self, path: str | os.PathLike[str], *, protect: Iterable[str | os.PathLike[str]] = (),
             bit_depth: int = 8) -> Path:
        """Write :attr:`image` to ``path`` atomically, with the content's alpha and the settings record, never
        over a ``protect`` ed input (:func:`artistyle.images.save_image`). Every driver saves through here (or
        :meth:`encode`), so no picture ArtiStyle paints lacks its record."""
        return save_image(tensor_to_array(self.image), path, alpha=self.alpha, bit_depth=bit_depth, protect=protect,
                          text=self.record(), straight=True)

    def start_image(self) -> Tensor:
        """The first scale's starting image as :attr:`image` would show it (output size, colour control applied).

        Made now, before the first iteration, and kept: the run then starts from this very tensor, so nothing is
        computed twice and the result is the same as without the call. For a driver's first preview: the studio
        shows a fast start's feed-forward picture this way within about a second of Start. The fine style's
        build (if any) runs first, as the start is made from its styles. Only before the run starts.
        """
        if self.transfer is not None or self._resume is not None:
            raise RuntimeError("the start image is only known before the run starts")
        if self._first is None:
            self._combine_fine_style()
            inputs = self.engine.load_images(self.content, self.styles, size=self.sizes[0], masks=self.masks)
            start = self.engine.initial_image(inputs, self.init)
            self._first = (inputs, start)
        return self._finish(resize(self._first[1], self.output_shape).clamp(0, 1))

    def _combine_fine_style(self) -> None:
        """The styles with the fine style's brush texture, once (before the first scale)."""
        if self.fine_style is not None:
            self.styles, self.fine_style = self._combined_styles(self.fine_style), None

    def stop(self) -> None:
        """End the run after the current iteration."""
        self._stopped.set()
        preparing = self._preparing
        if preparing is not None:
            preparing.stop()
        if self.transfer is not None:
            self.transfer.stop()

    def state_dict(self) -> dict[str, Any]:
        """Where the run is: scale, counters, per-iteration record and the current scale's optimiser state."""
        if self.transfer is None:
            raise RuntimeError("the painting has not started")
        return {
            "scale": self.scale,
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "history": list(self.history),
            "transfer": self.transfer.state_dict(),
            "anchor_reference": None if self._anchor_reference is None else self._anchor_reference.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` when iterated (before the first iteration only)."""
        if self.transfer is not None:
            raise RuntimeError("a painting can only be resumed before it starts")
        if not 0 <= int(state["scale"]) < len(self.sizes):
            raise ValueError(f"scale {state['scale']} is not one of this run's {len(self.sizes)} scales")
        self._resume = state

    def __iter__(self) -> Iterator[Progress]:
        engine = self.engine
        tol = engine.config.tol
        previous: Tensor | None = None
        resume, self._resume = self._resume, None
        first = 0
        if resume is not None:
            first = int(resume["scale"])
            self.iteration, self.elapsed = int(resume["iteration"]), float(resume["elapsed"])
            self.history = list(resume["history"])
            reference = resume.get("anchor_reference")
            self._anchor_reference = None if reference is None else reference.to(engine.device)
        workers = engine.tile_workers()
        if workers is not None:
            workers.start()  # one that cannot start fails the run now, before any work
        self._combine_fine_style()
        for scale, (size, steps) in enumerate(zip(self.sizes, self.schedule)):
            if scale < first:
                continue
            if self._stopped.is_set():
                return
            self.scale = scale
            init: Tensor | None
            if scale == 0 and self._first is not None:  # made by start_image(): the same inputs and start
                (inputs, init), self._first = self._first, None
            else:
                inputs = engine.load_images(self.content, self.styles, size=size, masks=self.masks)
                init = None if previous is None else resize(previous, tuple(inputs.content.shape[2:]))
                if init is None and self.init is not None:
                    init = engine.initial_image(inputs, self.init)
            plan = self.plans[scale]
            anchor = self._anchor_reference if engine.config.anchored(size) else None
            self.transfer = transfer = engine.transfer(
                inputs, self.preview_every, init=init, steps=steps, lbfgs_history=plan.history, tile=plan.tile,
                lbfgs_storage=plan.storage,
                anchor=anchor, temporal=self.temporal_at((int(inputs.content.shape[2]), int(inputs.content.shape[3]))),
            )
            if self._stopped.is_set():  # stop() came from another thread while this scale was being built
                transfer.stop()
            if resume is not None and scale == first:
                transfer.load_state_dict(resume["transfer"])
                # The scale's own clock goes on from its saved value; keep the run's total consistent.
                self.elapsed -= transfer.elapsed
            before = self.elapsed
            height, width = inputs.content.shape[2:]
            for event in transfer:
                self.iteration += 1
                self.elapsed = before + event.elapsed
                self.history.append({"scale": scale, "iteration": self.iteration, "loss": event.loss,
                                     "seconds": self.elapsed, **event.losses})
                yield dataclasses.replace(
                    event, image=None if event.image is None else self._finish(event.image),
                    iteration=self.iteration, steps=self.steps, elapsed=self.elapsed,
                    scale=scale, scales=len(self.sizes), size=(int(width), int(height)),
                )
                if tol and plateau(transfer.history, tol):
                    transfer.stop()
            previous = transfer.image
            if size == self.anchor_size:
                self._anchor_reference = previous  # transfer.image is a fresh, detached tensor
            del inputs

    def run(self, callback: Callable[[Progress], object] | None = None) -> Tensor:
        """Run to the end (or until :meth:`stop`), calling ``callback`` each iteration."""
        for event in self:
            if callback is not None:
                callback(event)
        return self.image

    def _combined_styles(self, fine: LoadedImage) -> list[LoadedImage]:
        """Each style image with the fine style's brush texture (:meth:`Engine.combine_scales_transfer`), made once."""
        engine = self.engine
        combined = []
        for style, long_edge in zip(self.styles, engine.config.style_sizes(engine.size, len(self.styles))):
            size = min(long_edge, FINE_STYLE_MAX_SIZE)
            coarse = array_to_tensor(resize_long_edge(style.rgb, size), engine.device)
            texture = array_to_tensor(resize_long_edge(fine.rgb, size), engine.device)
            self._preparing = transfer = engine.combine_scales_transfer(coarse, texture)
            if self._stopped.is_set():  # stop() came from another thread before this build was visible to it
                transfer.stop()
            image = tensor_to_array(transfer.run())
            self._preparing = None
            combined.append(LoadedImage(rgb=image, alpha=None, bit_depth=8, path=None))
        return combined


def plateau(history: Sequence[float], tol: float) -> bool:
    """True when the loss fell by less than ``tol`` (relative) per iteration over :data:`PLATEAU_WINDOW`."""
    if len(history) <= PLATEAU_WINDOW:
        return False
    old, new = history[-1 - PLATEAU_WINDOW], history[-1]
    return (old - new) < tol * PLATEAU_WINDOW * abs(new)


def scaled(image: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``image`` at ``shape`` (antialiased bilinear: no overshoot, no aliasing), or itself at that size."""
    if tuple(image.shape[2:]) == tuple(shape):
        return image
    return torch.nn.functional.interpolate(image, size=tuple(shape), mode="bilinear", antialias=True,
                                           align_corners=False)


def resize(image: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``image`` at ``shape`` (bicubic), or itself when it already has that size."""
    if tuple(image.shape[2:]) == tuple(shape):
        return image
    return torch.nn.functional.interpolate(image, size=tuple(shape), mode="bicubic", align_corners=False)

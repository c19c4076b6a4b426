"""The style transfer engine: :class:`NST` and the iteration-level :class:`Transfer`.

``NST`` is the object most users want::

    from artistyle import NST
    picture = NST(size=256).run_nst("photo.jpg", "painting.jpg")   # a PIL.Image

Under it, :class:`Transfer` runs the optimisation one iteration at a time and
yields a :class:`Progress` event after each, so a CLI, a notebook or a web page
can watch it, show previews and stop it; :attr:`Transfer.image` always holds
the last good image.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .color import as_luminance_image, keep_content_chroma, match_color, match_luminance
from .config import CPU_DEFAULT_SIZE, GPU_DEFAULT_SIZE, StyleConfig
from .devices import resolve_device
from .errors import RunError
from .imageio import LoadedImage, load_image, resize_long_edge, resized_shape
from .masks import load_masks, resize_masks
from .memory import plan_memory
from .objective import StyleObjective, total
from .optim import LBFGS
from .vgg import VGGWeights
from .weights import load_weights

__all__ = ["NST", "Inputs", "Painting", "Progress", "Transfer", "array_to_tensor", "tensor_to_array", "to_pil"]

NOISE_SD = 0.01

ImageSource = Union[str, "os.PathLike[str]", Image.Image, LoadedImage]


@dataclass(frozen=True)
class Progress:
    """One finished iteration.

    ``losses`` holds each weighted term (``content:conv4_2``, ``style:conv1_1``,
    ``tv``) at the image the iteration evaluated; ``loss`` is their sum.
    ``image`` is a ``(1, 3, H, W)`` CPU copy in [0, 1] when a preview was asked
    for this iteration, else ``None``. ``iteration`` and ``steps`` count over all
    scales of a coarse-to-fine run.
    """

    iteration: int
    steps: int
    loss: float
    losses: dict[str, float]
    elapsed: float
    image: Tensor | None = None
    scale: int = 0  # index of the scale, coarse to fine
    scales: int = 1
    size: tuple[int, int] = (0, 0)  # (width, height) of this scale

    @property
    def seconds_per_iteration(self) -> float:
        return self.elapsed / max(self.iteration, 1)


def array_to_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """``H x W x 3`` float array in [0, 1] -> ``(1, 3, H, W)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None].contiguous().to(device)


def tensor_to_array(image: Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` tensor -> ``H x W x 3`` float32 array clipped to [0, 1]."""
    return image.detach()[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


ADAM_AVERAGE_DECAY = 0.95
# Scale control (Gatys et al. 2017, section 6): the layers whose Gram matrices carry the fine
# texture, the iterations spent on the new style image and the largest size it is made at.
FINE_STYLE_LAYERS = ("conv1_1", "conv2_1")
FINE_STYLE_STEPS = 200
FINE_STYLE_MAX_SIZE = 512


class IterateAverage:
    """Exponential moving average of an optimiser's iterates, bias-corrected.

    ``v_t = d v_(t-1) + (1 - d) x_t`` and the average is ``v_t / (1 - d^t)``, so
    the first iterates are not pulled towards zero. With ``d = 0.95`` it spans
    about the last 20 iterations.
    """

    def __init__(self, like: Tensor, decay: float):
        self.decay = decay
        self.steps = 0
        self.sum = torch.zeros_like(like.detach())

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        self.steps += 1
        self.sum.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)

    @property
    def value(self) -> Tensor:
        return self.sum / (1 - self.decay**self.steps) if self.steps else self.sum

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "sum": self.sum.cpu().clone(), "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.decay = int(state["steps"]), float(state["decay"])
        self.sum.copy_(state["sum"])


class Transfer:
    """Minimise a :class:`StyleObjective` over the pixels of an image.

    One iteration is one optimiser step with exactly one evaluation of the
    objective (forward + backward): for L-BFGS that is ``max_iter=1`` with no
    line search, as in Gatys' and Johnson's implementations, so ``steps`` is
    the number of network evaluations. The pixels are not clamped during the
    optimisation (a clamp would corrupt L-BFGS's curvature pairs); the output
    is clipped to [0, 1].

    Iterate over it to run; break out of the loop (or call :meth:`stop`) to stop
    early. :attr:`image` is always the last image whose loss was finite.
    """

    def __init__(
        self,
        objective: StyleObjective,
        init: Tensor,
        *,
        steps: int,
        optimizer: str = "lbfgs",
        lr: float = 1.0,
        lbfgs_history: int = 20,
        preview_every: int = 0,
    ):
        self.objective = objective
        self.steps = steps
        self.preview_every = preview_every
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[float] = []
        self._pixels = init.detach().clone().contiguous().requires_grad_(True)
        self._last_good = self._pixels.detach().clone()
        self._stop = False
        self._failures = 0
        self.max_failures = 3
        self.optimizer_name = optimizer
        if optimizer == "lbfgs":
            self.lbfgs: LBFGS | None = LBFGS(self._pixels, lr=lr, history=lbfgs_history)
            self.average = None
        elif optimizer == "adam":
            self.lbfgs = None
            self.adam = torch.optim.Adam([self._pixels], lr=lr)
            # Adam's iterates jitter around the optimum at a fixed step size; their running
            # average is the image (Polyak averaging, as in crowsonkb/style-transfer-pytorch).
            self.average: IterateAverage | None = IterateAverage(self._pixels, ADAM_AVERAGE_DECAY)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r}")

    @property
    def image(self) -> Tensor:
        """The last good image, ``(1, 3, H, W)``, clipped to [0, 1] (with Adam: the average of the iterates)."""
        if self.lbfgs is None and self.average is not None and self.iteration > 0:
            return self.average.value.clamp(0, 1)
        return self._last_good.clamp(0, 1)

    def state_dict(self) -> dict[str, Any]:
        """The optimisation state after the last iteration, enough to continue bit for bit."""
        return {
            "pixels": self._pixels.detach().cpu().clone(),
            "last_good": self._last_good.cpu().clone(),
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "history": list(self.history),
            "failures": self._failures,
            "optimizer": self.lbfgs.state_dict() if self.lbfgs is not None else self.adam.state_dict(),
            "average": None if self.lbfgs is not None or self.average is None else self.average.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["pixels"].shape) != tuple(self._pixels.shape):
            raise ValueError(f"state for an image of shape {tuple(state['pixels'].shape)}, not {tuple(self._pixels.shape)}")
        with torch.no_grad():
            self._pixels.copy_(state["pixels"])
            self._last_good.copy_(state["last_good"])
        self.iteration = int(state["iteration"])
        self.elapsed = float(state["elapsed"])
        self.history = list(state["history"])
        self._failures = int(state["failures"])
        if self.lbfgs is not None:
            self.lbfgs.load_state_dict(state["optimizer"])
        else:
            self.adam.load_state_dict(state["optimizer"])
            if self.average is not None and state.get("average") is not None:
                self.average.load_state_dict(state["average"])

    def stop(self) -> None:
        """Ask the loop to end after the current iteration."""
        self._stop = True

    def evaluate(self) -> dict[str, float]:
        """The loss terms of the current image, without a gradient."""
        return {k: float(v) for k, v in self.objective.terms(self._pixels).items()}

    def _evaluate(self) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Loss terms, total loss and its gradient at the current pixels."""
        return self.objective.evaluate(self._pixels)

    def _step(self) -> tuple[float, dict[str, Tensor]]:
        """One iteration: one evaluation, one move of the pixels."""
        record: dict[str, Tensor] = {}

        def closure() -> tuple[Tensor, Tensor]:
            terms, loss, grad = self._evaluate()
            record.update(terms)
            return loss, grad

        if self.lbfgs is not None:
            loss = self.lbfgs.step(closure)
        else:
            loss_t, grad = closure()
            loss = float(loss_t)
            if math.isfinite(loss):
                self._pixels.grad = grad
                self.adam.step()
                if self.average is not None:
                    self.average.update(self._pixels)
        return loss, record

    def __iter__(self) -> Iterator[Progress]:
        start = time.perf_counter() - self.elapsed
        while self.iteration < self.steps and not self._stop:
            loss, record = self._step()
            if math.isfinite(loss):
                self._failures = 0
            else:
                # L-BFGS steps back and retries with a shorter step; give up if that keeps failing.
                self._failures += 1
                if self._failures >= self.max_failures or self.lbfgs is None:
                    raise RunError(
                        f"the loss became {loss} at iteration {self.iteration + 1}; "
                        "try lower weights, another --init or --optimizer adam"
                    )
            with torch.no_grad():
                if bool(torch.isfinite(self._pixels).all()):
                    self._last_good.copy_(self._pixels)
            self.iteration += 1
            self.history.append(loss)
            self.elapsed = time.perf_counter() - start
            want_preview = self.preview_every > 0 and (
                self.iteration % self.preview_every == 0 or self.iteration == self.steps
            )
            yield Progress(
                iteration=self.iteration,
                steps=self.steps,
                loss=loss,
                losses={k: float(v) for k, v in record.items()},
                elapsed=self.elapsed,
                image=self.image.cpu() if want_preview else None,
            )

    def run(self, callback: Callable[[Progress], object] | None = None) -> Tensor:
        """Run to the end (or until :meth:`stop`), calling ``callback`` each iteration."""
        for event in self:
            if callback is not None:
                callback(event)
        return self.image


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
    of :class:`StyleConfig`. The three steps are public so they can be used
    one by one: :meth:`load_images`, :meth:`build_model`, :meth:`run_nst`.
    """

    def __init__(self, config: StyleConfig | None = None, **settings: object):
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
        if self.config.size is not None:
            return self.config.size
        return CPU_DEFAULT_SIZE if self.device.type == "cpu" else GPU_DEFAULT_SIZE

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
        loaded = _as_loaded(content, "content image")
        content_tensor = array_to_tensor(resize_long_edge(loaded.rgb, size), self.device)
        alpha = resize_long_edge(loaded.alpha, size) if loaded.alpha is not None else None
        styles = _style_list(style)
        style_tensors = [
            array_to_tensor(resize_long_edge(s.rgb, max(1, round(long_edge * size / self.size))), self.device)
            for s, long_edge in zip(styles, c.style_sizes(self.size, len(styles)))
        ]
        if masks is None and c.masks:
            masks = self.region_masks(loaded, len(styles))
        if masks is not None:
            masks = resize_masks(masks, tuple(content_tensor.shape[2:])).to(self.device)
        # Colour control (Gatys et al. 2017, section 5) acts on the inputs; the output is recombined in finish().
        if c.preserve_color == "histogram":
            style_tensors = [match_color(s, content_tensor, c.color_match) for s in style_tensors]
        elif c.preserve_color == "luminance":
            style_tensors = [match_luminance(s, content_tensor) for s in style_tensors]
            return Inputs(as_luminance_image(content_tensor), style_tensors, alpha, content_tensor, masks)
        return Inputs(content_tensor, style_tensors, alpha, content_tensor, masks)

    def region_masks(self, content: ImageSource, styles: int) -> Tensor | None:
        """The config's mask files as ``(R, 1, H, W)`` masks at the content's own size (None without masks)."""
        if not self.config.masks:
            return None
        loaded = _as_loaded(content, "content image")
        return load_masks(list(self.config.masks), styles, loaded.size)

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
        objective = StyleObjective(self.weights, config).to(self.device)
        objective.set_content(coarse)
        objective.set_style(fine)
        return Transfer(objective, coarse, steps=steps)

    # -- step 2 ---------------------------------------------------------------
    def build_model(self, inputs: Inputs, tile: int | None = None, anchor: Tensor | None = None) -> StyleObjective:
        """The frozen feature network with its content and style targets set (tiled with ``tile``).

        ``anchor``: the run's result at the anchor scale, whose coarse layout the image
        shrunk to its size must keep (:meth:`StyleObjective.set_anchor`).
        """
        objective = StyleObjective(self.weights, self.config, tile=tile, half_dtype=self.half_dtype).to(self.device)
        objective.set_content(inputs.content)
        objective.set_style(inputs.styles, self.config.blend_weights(len(inputs.styles)), masks=inputs.masks)
        if anchor is not None:
            objective.set_anchor(anchor)
        return objective

    def initial_image(self, inputs: Inputs) -> Tensor:
        """The starting image: seeded white noise, the content, the style, or a file."""
        init = self.config.init
        _, _, h, w = inputs.content.shape
        if init == "noise":
            # Gaussian white noise around mid-grey. The paper does not give an amplitude; a faint
            # one (sd 0.01) lets the optimiser build the picture without leaving speckle, which
            # full-range uniform noise does after 300 iterations. Drawn on the CPU so a seed
            # gives the same start on every device.
            generator = torch.Generator().manual_seed(self.seed)
            noise = torch.randn(1, 3, h, w, generator=generator)
            return (0.5 + NOISE_SD * noise).to(self.device)
        if init == "content":
            return inputs.content.clone()
        if init == "style":
            source = inputs.styles[0]
        else:
            source = array_to_tensor(load_image(init, role="init image").rgb, self.device)
        return torch.nn.functional.interpolate(source, size=(h, w), mode="bilinear", antialias=True, align_corners=False)

    def transfer(
        self, inputs: Inputs, preview_every: int = 0, *, init: Tensor | None = None, steps: int | None = None,
        lbfgs_history: int | None = None, tile: int | None = None, anchor: Tensor | None = None,
    ) -> Transfer:
        """A ready single-scale :class:`Transfer` for ``inputs``; iterate over it to run.

        ``init`` defaults to :meth:`initial_image`; ``steps``, ``lbfgs_history``
        and ``tile`` (exact tiled evaluation, see :mod:`artistyle.tiling`) to the config's.
        """
        torch.manual_seed(self.seed)
        c = self.config
        return Transfer(
            self.build_model(inputs, tile=c.tile if tile is None else tile, anchor=anchor),
            self.initial_image(inputs) if init is None else init,
            steps=c.steps if steps is None else steps,
            optimizer=c.optimizer,
            lr=c.learning_rate,
            lbfgs_history=c.lbfgs_history if lbfgs_history is None else lbfgs_history,
            preview_every=preview_every,
        )

    def paint(
        self, content: ImageSource, style: ImageSource | Sequence[ImageSource], preview_every: int = 0
    ) -> Painting:
        """A whole run, coarse to fine (see :class:`Painting`); iterate over it to run."""
        return Painting(self, _as_loaded(content, "content image"), _style_list(style), preview_every)

    # -- step 3 ---------------------------------------------------------------
    def run_nst(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        callback: Callable[[Progress], object] | None = None,
    ) -> Image.Image:
        """Paint ``content`` in the style of ``style``; returns an 8-bit RGB(A) image."""
        painting = self.paint(content, style)
        result = painting.run(callback)
        return to_pil(tensor_to_array(result), painting.alpha)


class Painting:
    """A whole run: one :class:`Transfer` per scale, coarse to fine.

    Scale ``k`` starts from scale ``k-1``'s result, upsampled (bicubic); only the
    first starts from the configured init. Large structures settle cheaply at
    the small scales and the full-size iterations only refine: the same look
    for far fewer full-size evaluations (Gatys et al. 2017 use the same idea
    for high resolutions). With one scale it is exactly a single
    :class:`Transfer` of ``steps`` iterations.

    Iterate over it for :class:`Progress` events; :meth:`stop` ends it after the
    current iteration; :attr:`image` is the last good image, at the output size.
    """

    def __init__(self, nst: NST, content: LoadedImage, styles: list[LoadedImage], preview_every: int = 0):
        self.nst = nst
        self.content = content
        self.styles = styles
        self.preview_every = preview_every
        self.sizes = nst.config.scale_sizes(nst.size)
        self.schedule = nst.config.scale_schedule(len(self.sizes))
        self.steps = sum(self.schedule)
        width, height = resized_shape(content.size[0], content.size[1], nst.size)
        self.output_shape = (height, width)
        c = nst.config
        # Every scale is planned now, so that a run that cannot fit fails before any work.
        layers = tuple(c.content_layers) + tuple(c.style_layers)
        # The anchor scale: the last one no larger than style_anchor (None: the run has none).
        self._anchor_size = max((s for s in self.sizes if c.style_anchor and s <= c.style_anchor), default=None)
        self.plans = []
        # Finest first, so that a run that cannot fit is refused for the size the user asked for.
        for size in reversed(self.sizes):
            w, h = resized_shape(content.size[0], content.size[1], size)
            anchor = None
            if self._anchor_size is not None and c.anchored(size):
                anchor = resized_shape(content.size[0], content.size[1], self._anchor_size)
            self.plans.append(plan_memory(
                w, h, layers, history=c.lbfgs_history, optimizer=c.optimizer, device=nst.device,
                max_memory=c.max_memory, tile=c.tile, content_layers=tuple(c.content_layers),
                bytes_per_value=2 if nst.half_dtype is not None else 4, anchor=anchor,
            ))
        self.plans.reverse()
        self.memory = self.plans[-1]
        # Masks are read (and checked) now, before any work, and resized per scale.
        self.masks = nst.region_masks(content, len(styles))
        self.fine_style = load_image(c.fine_style, role="fine style image") if c.fine_style else None
        self.alpha = resize_long_edge(content.alpha, nst.size) if content.alpha is not None else None
        self.iteration = 0
        self.scale = 0
        self.elapsed = 0.0
        self.history: list[dict[str, float]] = []
        self.transfer: Transfer | None = None
        self._stopped = False
        self._resume: dict[str, Any] | None = None
        self._color_content: Tensor | None = None
        # The result of the anchor scale, whose layout the finer scales keep.
        self._anchor_reference: Tensor | None = None
        self._preparing: Transfer | None = None  # the fine style's build, before the first scale

    @property
    def image(self) -> Tensor:
        """The last good image, upsampled to the output size if the run stopped at a coarser scale."""
        if self.transfer is None:
            raise RuntimeError("the painting has not started")
        return self._finish(_resize(self.transfer.image, self.output_shape).clamp(0, 1))

    def _finish(self, image: Tensor) -> Tensor:
        """:meth:`NST.finish` with the content at the output size (made once, when first needed)."""
        nst = self.nst
        if nst.config.preserve_color != "luminance" and not nst.config.original_colors:
            return image
        if self._color_content is None:
            self._color_content = array_to_tensor(resize_long_edge(self.content.rgb, nst.size), nst.device)
        return nst.finish(image.to(nst.device), self._color_content).to(image.device)

    def stop(self) -> None:
        """End the run after the current iteration."""
        self._stopped = True
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
        tol = self.nst.config.tol
        previous: Tensor | None = None
        resume, self._resume = self._resume, None
        first = 0
        if resume is not None:
            first = int(resume["scale"])
            self.iteration, self.elapsed = int(resume["iteration"]), float(resume["elapsed"])
            self.history = list(resume["history"])
            reference = resume.get("anchor_reference")
            self._anchor_reference = None if reference is None else reference.to(self.nst.device)
        if self.fine_style is not None:
            self.styles, self.fine_style = self._combined_styles(self.fine_style), None
        for scale, (size, steps) in enumerate(zip(self.sizes, self.schedule)):
            if scale < first:
                continue
            if self._stopped:
                return
            self.scale = scale
            inputs = self.nst.load_images(self.content, self.styles, size=size, masks=self.masks)
            init = None if previous is None else _resize(previous, tuple(inputs.content.shape[2:]))
            plan = self.plans[scale]
            anchor = self._anchor_reference if self.nst.config.anchored(size) else None
            self.transfer = transfer = self.nst.transfer(
                inputs, self.preview_every, init=init, steps=steps, lbfgs_history=plan.history, tile=plan.tile,
                anchor=anchor,
            )
            if self._stopped:  # stop() came from another thread while this scale was being built
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
                if tol and _plateau(transfer.history, tol):
                    transfer.stop()
            previous = transfer.image
            if size == self._anchor_size:
                self._anchor_reference = previous  # transfer.image is a fresh, detached tensor
            del inputs

    def run(self, callback: Callable[[Progress], object] | None = None) -> Tensor:
        """Run to the end (or until :meth:`stop`), calling ``callback`` each iteration."""
        for event in self:
            if callback is not None:
                callback(event)
        return self.image

    def _combined_styles(self, fine: LoadedImage) -> list[LoadedImage]:
        """Each style image with the fine style's brush texture (:meth:`NST.combine_scales`), made once."""
        nst = self.nst
        combined = []
        for style, long_edge in zip(self.styles, nst.config.style_sizes(nst.size, len(self.styles))):
            size = min(long_edge, FINE_STYLE_MAX_SIZE)
            coarse = array_to_tensor(resize_long_edge(style.rgb, size), nst.device)
            texture = array_to_tensor(resize_long_edge(fine.rgb, size), nst.device)
            self._preparing = transfer = nst.combine_scales_transfer(coarse, texture)
            if self._stopped:  # stop() came from another thread before this build was visible to it
                transfer.stop()
            image = tensor_to_array(transfer.run())
            self._preparing = None
            combined.append(LoadedImage(rgb=image, alpha=None, bit_depth=8, path=None))
        return combined


# The plateau test looks this many iterations back.
PLATEAU_WINDOW = 10


def _plateau(history: Sequence[float], tol: float) -> bool:
    """True when the loss fell by less than ``tol`` (relative) per iteration over the window."""
    if len(history) <= PLATEAU_WINDOW:
        return False
    old, new = history[-1 - PLATEAU_WINDOW], history[-1]
    return (old - new) < tol * PLATEAU_WINDOW * abs(new)


def _resize(image: Tensor, shape: tuple[int, ...]) -> Tensor:
    if tuple(image.shape[2:]) == tuple(shape):
        return image
    return torch.nn.functional.interpolate(image, size=tuple(shape), mode="bicubic", align_corners=False)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """Float ``H x W x 3`` in [0, 1] (and optional alpha) -> 8-bit PIL image."""
    channels = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    data = (np.clip(channels, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(data, "RGB" if alpha is None else "RGBA")


def _as_loaded(source: ImageSource, role: str) -> LoadedImage:
    return source if isinstance(source, LoadedImage) else load_image(source, role=role)


def _style_list(style: ImageSource | Sequence[ImageSource]) -> list[LoadedImage]:
    items = [style] if isinstance(style, (str, os.PathLike, Image.Image, LoadedImage)) else list(style)
    return [_as_loaded(s, "style image") for s in items]


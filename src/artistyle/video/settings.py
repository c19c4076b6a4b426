"""How a clip is painted beyond the per-frame :class:`~artistyle.config.StyleConfig`: :class:`VideoSettings`.

Described like StyleConfig's fields (:func:`artistyle.settings.setting`), so ``artistyle video``'s
options are generated from it (:func:`artistyle.cli.options.add_settings`) and every default lives
here once. Importing it needs neither PyAV nor OpenCV (the batch driver names the later frames' steps
from it).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Literal, get_args

from ..config import StyleConfig
from ..errors import UsageError
from ..settings import Setting, describe_fields, setting, short_repr

__all__ = ["BRIGHTNESS_MODES", "COLOUR_TOLERANCE", "DIS_PRESETS", "FLOW_METHODS", "LATER_STEPS", "MAX_LONG_TERM",
           "WARP_METHODS",
           "Brightness", "FlowMethod", "VideoSettings", "WarpMethod",
           "first_frame_config", "later_frames_config"]

FlowMethod = Literal["dis", "farneback"]
FLOW_METHODS: tuple[FlowMethod, ...] = get_args(FlowMethod)
DisPreset = Literal["ultrafast", "fast", "medium"]
DIS_PRESETS: tuple[DisPreset, ...] = get_args(DisPreset)
# How the previous result is resampled along the flow (video/warp.py): bilinear softened the strokes a little
# every frame, compounding (docs/benchmarks.md, "Video that stays sharp").
Brightness = Literal["hold", "free"]
BRIGHTNESS_MODES: tuple[Brightness, ...] = get_args(Brightness)
WarpMethod = Literal["lanczos", "bilinear"]
WARP_METHODS: tuple[WarpMethod, ...] = get_args(WarpMethod)
# The largest change of a pixel's colour along the flow (0-1, any channel) that is still trusted: see
# flow.colour_consistency. Measured on video_clip.py's clips against their true motion (docs/benchmarks.md).
COLOUR_TOLERANCE = 0.1
# Iterations of every frame after the first, chosen by measurement on ../shared/bench/video_clip.py
# (docs/benchmarks.md, "Video"): from the warped previous result, 100 reach the still's look.
LATER_STEPS = 100
# The farthest --long-term offset (frames back): the flow keeps that many frames in memory, and Ruder et al. use
# up to 40 (a huge one overflowed the frame history's length).
MAX_LONG_TERM = 1000

VIDEO = "video"


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is painted, beyond the per-frame :class:`StyleConfig`.

    ``first_steps``: iterations of the first frame (None: the config's ``steps``, resolved as for an image:
    300 over its scales, or a fast start's schedule); ``steps``: iterations of every later frame (one
    scale, from the warped previous result); ``warp``: the kernel that resamples the previous result along the
    flow (:func:`artistyle.video.warp.warp`); ``long_term``: the earlier frames the temporal loss looks
    at, as offsets rising from 1 (the previous frame; Ruder et al.'s long-term consistency uses e.g. 1,
    10, 20, 40); ``color_tolerance``: the colour check of :func:`artistyle.video.flow.colour_consistency`
    (None: the paper's flow check alone); ``brightness``: :mod:`artistyle.video.brightness`.
    """

    first_steps: int | None = setting(
        None, VIDEO, "iterations of the first frame, painted like an image (default 300 over the scales the size "
        "asks for, or the fast start's schedule with --init fast)", metavar="N", positive=True)
    steps: int = setting(LATER_STEPS, VIDEO, "iterations of every frame after the first (default {default})",
                         metavar="N", positive=True)
    flow: FlowMethod = setting("dis", VIDEO, "optical flow method (default {default})")
    flow_preset: DisPreset = setting("medium", VIDEO, "DIS preset: faster or more accurate flow (default {default})")
    long_term: tuple[int, ...] = setting(
        (1,), VIDEO, "long-term consistency: also hold each frame to these earlier frames' results where only they "
        "saw a region (Ruder et al. use 1,10,20,40; default 1, the previous frame)", metavar="1,J,K,...")
    warp: WarpMethod = setting(
        "lanczos", VIDEO, "how the previous result is resampled along the flow: lanczos keeps the strokes sharp; "
        "bilinear (the former default) softens them a little more every frame (default {default})")
    color_tolerance: float | None = setting(
        COLOUR_TOLERANCE, VIDEO, "repaint pixels whose colour changes along the flow by more than T (0-1; default "
        "{default}); off: the paper's flow check alone", metavar="T|off", off=True)
    brightness: Brightness = setting(
        "hold", VIDEO, "hold: each later frame's mean colour follows the footage's, so the clip does not darken as "
        "it goes on optimising; free: as the optimiser leaves it (the former behaviour) (default {default})")

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        """Every field's :class:`Setting`, in field order (the order of ``artistyle video --help``)."""
        return _described()

    def __post_init__(self) -> None:
        for name, value in (("first_steps", self.first_steps), ("steps", self.steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{name.replace('_', '-')} must be a whole number of at least 1, not {value!r}")
        if self.flow not in FLOW_METHODS:
            raise UsageError(f"unknown flow {self.flow!r}; choose {' or '.join(FLOW_METHODS)}")
        if self.flow_preset not in DIS_PRESETS:
            raise UsageError(f"unknown flow-preset {self.flow_preset!r}; choose {', '.join(DIS_PRESETS)}")
        if self.brightness not in BRIGHTNESS_MODES:
            raise UsageError(f"unknown brightness {self.brightness!r}; choose {' or '.join(BRIGHTNESS_MODES)}")
        if self.warp not in WARP_METHODS:
            raise UsageError(f"unknown warp {self.warp!r}; choose {' or '.join(WARP_METHODS)}")
        offsets = self.long_term
        if (not offsets or any(isinstance(k, bool) or not isinstance(k, int) for k in offsets)
                or offsets[0] != 1 or list(offsets) != sorted(set(offsets))):
            raise UsageError(f"long-term offsets must be whole numbers rising from 1, such as 1,10,20,40, "
                             f"not {','.join(map(str, offsets)) or 'nothing'}")
        if offsets[-1] > MAX_LONG_TERM:
            raise UsageError(f"long-term offsets must be at most {MAX_LONG_TERM} frames back, not "
                             f"{short_repr(offsets[-1], 24)}")
        if self.color_tolerance is not None and not 0 < self.color_tolerance <= 1:
            raise UsageError(f"color-tolerance must be above 0 and at most 1, or off, not {self.color_tolerance}")


@functools.cache
def _described() -> tuple[Setting, ...]:
    return describe_fields(VideoSettings)


def first_frame_config(given: StyleConfig, settings: VideoSettings) -> StyleConfig:
    """The first frame's settings, resolved: painted like an image, ``settings.first_steps`` or the given
    config's steps (or a fast start's schedule)."""
    return (dataclasses.replace(given, steps=settings.first_steps) if settings.first_steps else given).resolved()


def later_frames_config(given: StyleConfig, settings: VideoSettings) -> StyleConfig:
    """The later frames' settings, resolved: ``settings.steps`` on one scale from the warped previous result,
    with the content weight the user gave or the default (a fast start's raised weight is the first frame's)."""
    return dataclasses.replace(given, steps=settings.steps, scales=1, scale_steps=None, init="content",
                               style_anchor=0).resolved()

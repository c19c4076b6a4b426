"""Optical flow between video frames and Ruder's consistency weights, computed ahead in a thread.

Convention (Ruder, Dosovitskiy & Brox 2016, section 3.1, and :mod:`artistyle.video.warp`): a flow
``(H, W, 2)`` float32 lives on the grid of one frame and holds, per pixel, ``(dx, dy)`` to where
that pixel is in the other frame. For consecutive frames ``previous`` (i-1) and ``current`` (i):

* the *backward* flow ``ŵ`` = ``estimate_flow(previous, current)`` lives on ``current``'s grid and
  points into ``previous``: ``current(x) ≈ previous(x + ŵ(x))``. It is the one that warps the
  previous stylised frame into the current one (``warp(previous_result, ŵ)``), and the one whose
  consistency :func:`consistency_weights` judges;
* the *forward* flow ``w`` = ``estimate_flow(current, previous)`` lives on ``previous``'s grid and
  points into ``current``: ``previous(x) ≈ current(x + w(x))``. It only serves the check.

OpenCV is imported inside the functions, so importing this module needs no OpenCV.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .settings import COLOUR_TOLERANCE, DIS_PRESETS, FLOW_METHODS, FlowMethod
from .warp import warp

__all__ = [
    "COLOUR_TOLERANCE", "DIS_PRESETS", "FLOW_METHODS", "FLOW_THREAD_PREFIX", "EarlierFrame", "FlowPrefetcher",
    "FlowStep", "colour_consistency", "consistency_weights", "estimate_flow", "flow_pair", "flow_step",
    "long_term_weights",
]

# The prefetcher's worker thread is named with this prefix (tests look for leftovers by it).
FLOW_THREAD_PREFIX = "artistyle-flow"


def grey8(frame: np.ndarray) -> np.ndarray:
    """A frame ``(H, W)`` or ``(H, W, 3)`` RGB, uint8 or float in [0, 1], as an 8-bit grey ``(H, W)`` array."""
    import cv2

    array = np.asarray(frame)
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    if array.ndim != 2:
        raise ValueError(f"a frame is (H, W) or (H, W, 3), not {np.asarray(frame).shape}")
    return np.ascontiguousarray(array)


def estimate_flow(
    previous: np.ndarray, current: np.ndarray, method: FlowMethod = "dis", preset: str = "medium"
) -> np.ndarray:
    """The flow on ``current``'s grid pointing into ``previous``: ``current(x) ≈ previous(x + flow(x))``.

    ``(H, W, 2)`` float32, ``flow[..., 0]`` along x (columns), ``flow[..., 1]`` along y. ``method``:
    ``dis`` (Kroeger et al. 2016, OpenCV's ``DISOpticalFlow`` with ``preset`` ultrafast, fast or
    medium) or ``farneback``. Swap the arguments for the flow the other way.
    """
    import cv2

    if np.shape(previous)[:2] != np.shape(current)[:2]:
        raise ValueError(f"frames of different sizes: {np.shape(previous)[:2]} and {np.shape(current)[:2]}")
    # OpenCV's flow lives on its first image and points into its second.
    first, second = grey8(current), grey8(previous)
    flow = np.zeros((*first.shape, 2), np.float32)  # OpenCV's output, filled in place
    if method == "dis":
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose {', '.join(DIS_PRESETS)}")
        code = int(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
        flow = np.asarray(cv2.DISOpticalFlow.create(code).calc(first, second, flow))
    elif method == "farneback":
        flow = np.asarray(cv2.calcOpticalFlowFarneback(
            first, second, flow, pyr_scale=0.5, levels=4, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2,
            flags=0,
        ))
    else:
        raise ValueError(f"unknown flow method {method!r}; choose {' or '.join(FLOW_METHODS)}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def flow_pair(
    previous: np.ndarray, current: np.ndarray, method: FlowMethod = "dis", preset: str = "medium"
) -> tuple[np.ndarray, np.ndarray]:
    """``(forward, backward)`` between consecutive frames (see the module's convention).

    ``forward`` on ``previous``'s grid points into ``current``; ``backward`` on ``current``'s grid
    points into ``previous`` and warps the previous result into this frame.
    """
    return (estimate_flow(current, previous, method, preset), estimate_flow(previous, current, method, preset))


def consistency_weights(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s weights ``c`` ``(H, W)`` float32 in {0, 1} on the current frame's grid.

    With ``ŵ = (û, v̂)`` the backward flow and ``w̃(x) = w(x + ŵ(x))`` the forward flow warped to
    the current frame, ``c(x) = 0`` where

    * the flows disagree (a disocclusion): ``|w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5``;
    * ``x`` is on a motion boundary: ``|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002`` (central differences,
      one-sided at the frame's edge, as the paper's 3-tap derivative);
    * the source ``x + ŵ(x)`` lies outside the frame's pixel centres;

    and 1 elsewhere. As in the paper; the authors' released checker differs in two ways not taken
    here: it adds a structure term that spares flat regions from the disocclusion test, and it
    keeps motion boundaries at full weight.
    """
    if forward.shape != backward.shape or backward.ndim != 3 or backward.shape[2] != 2:
        raise ValueError(f"flows of shape (H, W, 2) expected, not {forward.shape} and {backward.shape}")
    w_hat = np.asarray(backward, dtype=np.float32)
    warped, inside = warp(torch.from_numpy(np.ascontiguousarray(forward, np.float32)).permute(2, 0, 1)[None], w_hat)
    w_tilde = warped[0].permute(1, 2, 0).numpy()
    hat_sq = (w_hat**2).sum(axis=2)
    disoccluded = ((w_tilde + w_hat) ** 2).sum(axis=2) > 0.01 * ((w_tilde**2).sum(axis=2) + hat_sq) + 0.5
    du_dy, du_dx = np.gradient(w_hat[..., 0])
    dv_dy, dv_dx = np.gradient(w_hat[..., 1])
    boundary = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2 > 0.01 * hat_sq + 0.002
    reliable: np.ndarray = inside.numpy() & ~disoccluded & ~boundary
    return reliable.astype(np.float32)


def colour_consistency(
    previous: np.ndarray, current: np.ndarray, backward: np.ndarray, tolerance: float = COLOUR_TOLERANCE
) -> np.ndarray:
    """1 where the input frame keeps its colour along the flow, 0 where it does not, ``(H, W)`` float32.

    ``c_colour(x) = 0`` where ``max_channel |current(x) - previous(x + ŵ(x))| > tolerance`` (frames in
    [0, 1]). Not in the paper: its check looks at the flows only, and where an object leaves the
    frame, or over flat sky, DIS can return flows that agree with each other and are both wrong;
    the old strokes are then carried as trusted pixels and leave a ghost. A pixel whose photo colour
    changed along the flow cannot be the same brush stroke either, so it is repainted instead.
    """
    warped, _ = warp(_as_image_tensor(previous), backward)
    change = np.abs(warped[0].permute(1, 2, 0).numpy() - _as_float_rgb(current)).max(axis=2)
    kept: np.ndarray = (change <= tolerance).astype(np.float32)
    return kept


def _as_float_rgb(frame: np.ndarray) -> np.ndarray:
    array = np.asarray(frame)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    return array[..., None] if array.ndim == 2 else array


def _as_uint8(frame: np.ndarray) -> np.ndarray:
    """An 8-bit copy of a frame for the history (a float frame is 4 times larger; DIS reads 8-bit anyway)."""
    array: np.ndarray = np.array(frame, copy=True)
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    return array


def _as_image_tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(_as_float_rgb(frame))).permute(2, 0, 1)[None]


def long_term_weights(weights: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Ruder's long-term weights, closest frame first: ``c_j ← max(c_j - sum_{k<j} c_k, 0)``.

    ``weights``: the consistency weights of the earlier frames warped to this one, the closest
    first. Each pixel then draws on the closest frame where it is visible, and on no other.
    """
    taken: np.ndarray | None = None
    out = []
    for c in weights:
        c = np.asarray(c, dtype=np.float32)
        out.append(c if taken is None else np.maximum(c - taken, 0).astype(np.float32))
        taken = c.copy() if taken is None else taken + c
    return out


@dataclass(frozen=True)
class EarlierFrame:
    """Frame ``index - offset`` seen from frame ``index``: the flow that warps it here and its long-term weights."""

    offset: int
    backward: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class FlowStep:
    """One frame and, after the first, its flows from and to the previous frame and the weights ``c``.

    ``backward`` (this frame's grid, into the previous one) warps the previous result here;
    ``weights`` are :func:`consistency_weights` of ``(forward, backward)``, times
    :func:`colour_consistency` unless that check is off. ``earlier``: with long-term consistency,
    every earlier frame the temporal loss looks at, the previous one first, with the long-term
    weights of :func:`long_term_weights` (the previous frame's are ``weights`` less nothing).
    """

    index: int
    frame: np.ndarray
    forward: np.ndarray | None = None
    backward: np.ndarray | None = None
    weights: np.ndarray | None = None
    earlier: tuple[EarlierFrame, ...] = ()


def flow_step(
    previous: np.ndarray,
    current: np.ndarray,
    method: FlowMethod = "dis",
    preset: str = "medium",
    colour_tolerance: float | None = COLOUR_TOLERANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(forward, backward, weights)`` of a frame pair: the work the prefetcher does ahead.

    ``colour_tolerance``: also distrust pixels whose colour changes along the flow by more than it
    (:func:`colour_consistency`); None: the paper's check alone.
    """
    forward, backward = flow_pair(previous, current, method, preset)
    weights = consistency_weights(forward, backward)
    if colour_tolerance is not None:
        weights = weights * colour_consistency(previous, current, backward, colour_tolerance)
    return forward, backward, weights


def flow_steps(
    earlier: Sequence[tuple[int, np.ndarray]],
    current: np.ndarray,
    method: FlowMethod = "dis",
    preset: str = "medium",
    colour_tolerance: float | None = COLOUR_TOLERANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[EarlierFrame, ...]]:
    """:func:`flow_step` from every ``(offset, frame)`` of ``earlier`` (offset 1, the previous frame,
    first) to ``current``, the weights made long-term: ``(forward, backward, weights, earlier frames)``
    of the previous frame, then every offset (the previous frame's included) with its long-term weights."""
    pairs = [(offset, *flow_step(frame, current, method, preset, colour_tolerance)) for offset, frame in earlier]
    long_term = long_term_weights(weights for _, _, _, weights in pairs)
    _, forward, backward, weights = pairs[0]
    frames = tuple(EarlierFrame(offset, back, c) for (offset, _, back, _), c in zip(pairs, long_term, strict=True))
    return forward, backward, weights, frames


class FlowPrefetcher:
    """Iterate :class:`FlowStep` s in order while the flows of the next ``ahead`` frames are computed.

    ``frames``: any iterable of frames at the working size (read lazily, at most ``ahead + 1``
    beyond the one being used). One worker thread computes :func:`flow_steps` for the coming frames
    while the caller paints (OpenCV releases the GIL). ``offsets``: the earlier frames each frame is
    compared with (1: the previous one; long-term consistency adds more, e.g. 1, 10, 20, 40); the
    last ``max(offsets)`` frames are kept, as 8-bit copies. Frames before ``first_needed`` are
    yielded without flows (a resumed clip reads them only as the earlier frames of the next ones).
    Iterate once; leaving the loop early and then calling :meth:`close` (or using it as a context
    manager) cancels what is queued and joins the thread. An error of a frame is raised when it is
    reached.
    """

    def __init__(
        self,
        frames: Iterable[np.ndarray],
        *,
        ahead: int = 2,
        method: FlowMethod = "dis",
        preset: str = "medium",
        offsets: Sequence[int] = (1,),
        colour_tolerance: float | None = COLOUR_TOLERANCE,
        first_needed: int = 0,
    ):
        if ahead < 1:
            raise ValueError(f"ahead must be at least 1, not {ahead}")
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {method!r}; choose {' or '.join(FLOW_METHODS)}")
        if not offsets or sorted(set(offsets)) != list(offsets) or offsets[0] != 1:
            raise ValueError(f"offsets must rise from 1 without repeats, not {tuple(offsets)}")
        self.frames = iter(frames)
        self.ahead = ahead
        self.method: FlowMethod = method
        self.preset = preset
        self.offsets = tuple(offsets)
        self.colour_tolerance = colour_tolerance
        self.first_needed = first_needed
        self.executor: ThreadPoolExecutor | None = None
        self.pending: deque[tuple[int, np.ndarray, Future[Any] | None]] = deque()

    def __iter__(self) -> Iterator[FlowStep]:
        if self.executor is not None:
            raise RuntimeError("a FlowPrefetcher can be iterated once")
        self.executor = executor = ThreadPoolExecutor(1, thread_name_prefix=FLOW_THREAD_PREFIX)
        history: deque[np.ndarray] = deque(maxlen=self.offsets[-1])  # the last frames, the newest last, 8-bit
        index, done, end = 0, False, object()
        try:
            while True:
                while not done and len(self.pending) <= self.ahead:
                    frame: Any = next(self.frames, end)
                    if frame is end:
                        done = True
                        break
                    earlier = [(k, history[-k]) for k in self.offsets if k <= len(history)]
                    future = None
                    if earlier and index >= self.first_needed:
                        future = executor.submit(flow_steps, earlier, frame, self.method, self.preset,
                                                 self.colour_tolerance)
                    self.pending.append((index, frame, future))
                    history.append(_as_uint8(frame))
                    index += 1
                if not self.pending:
                    return
                number, frame, future = self.pending.popleft()
                if future is None:
                    yield FlowStep(number, frame)
                else:
                    forward, backward, weights, earlier_frames = future.result()
                    yield FlowStep(number, frame, forward, backward, weights, earlier_frames)
        finally:
            self.close()

    def close(self) -> None:
        """Cancel the queued pairs and wait for the one running (if any); the thread is gone after it."""
        for _, _, future in self.pending:
            if future is not None:
                future.cancel()
        self.pending.clear()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> FlowPrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

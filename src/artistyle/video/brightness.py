"""Holding a clip's brightness: the mean colour of each later frame follows the footage, not the optimiser.

Every later frame goes on optimising the warped previous result for ``steps`` more iterations, so a clip
is, in effect, one long optimisation of its first frame: with a first frame short of convergence (and at
300 iterations it is), the picture keeps moving toward the loss's optimum, and for many styles that
optimum is darker. Measured on a 96 px frame of the cat with Starry Night, one image painted alone:
mean luminance 0.492 after 60 iterations, 0.477 after 150, 0.455 after 300, 0.430 after 600 (the photo:
0.469; docs/benchmarks.md, "Video that stays sharp"). A clip drifts the same way: 30 frames of a pan
lost 8.3% of their mean luminance while the footage's changed by 0.5%.

The hold: after a later frame is painted, one offset per channel is added to it so that its mean differs
from its photo's mean by what the first frame's did:

    offset = (m(first result) - m(first frame)) - (m(result) - m(frame)),    m: the mean over the frame

so a fade or a light switched on reaches the painting one for one, while the optimiser's drift does not.
Holding each frame to the previous one instead (over the pixels the flow carries) was tried first and
left 2.4% of the drift on that clip: each step's small biases (the warp's clamp, the carried set
changing as the camera pans) add up over a clip, where an anchor in the first frame cannot drift. A
uniform offset moves no stroke and changes no edge (the variance of the Laplacian is unchanged). The
result is clamped to [0, 1], and the offset is corrected for what the clamp takes.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["anchor", "held_offset"]

CLAMP_ROUNDS = 6  # Newton's corrections for the clamp (held_offset)


def _mean(x: Tensor) -> Tensor:
    return x.mean(dim=(2, 3), keepdim=True)


def anchor(first_result: Tensor, first_frame: Tensor) -> Tensor:
    """``m(first result) - m(first frame)``, ``(1, C, 1, 1)``: what every later frame is held to."""
    return _mean(first_result) - _mean(first_frame)


def held_offset(result: Tensor, frame: Tensor, anchor_value: Tensor) -> Tensor:
    """The per-channel offset ``(1, C, 1, 1)`` that makes ``m(clamp(result + offset)) - m(frame)`` equal
    ``anchor_value`` (the module docstring's, with the clamp's losses made up).

    ``m(clamp(result + t))`` is piecewise linear and rising in ``t``, with the share of unclamped pixels as its
    slope, so Newton's steps reach the target in a few rounds (exactly, once the clamped set stops changing).
    """
    target = anchor_value + _mean(frame)
    offset = target - _mean(result)
    for _ in range(CLAMP_ROUNDS):
        moved = result + offset
        slope = _mean(((moved > 0) & (moved < 1)).to(result.dtype)).clamp_min(1e-3)
        offset = offset + (target - _mean(moved.clamp(0, 1))) / slope
    return offset

"""Holding a clip's brightness: the mean colour of each later frame follows the footage, not the optimiser.

Every later frame goes on optimising the warped previous result for ``steps`` more iterations, so a clip
is, in effect, one long optimisation of its first frame: with a first frame short of convergence (and at
300 iterations it is), the picture keeps moving toward the loss's optimum, and for many styles that
optimum is darker. Measured on a 96 px frame of the cat with Starry Night, one image painted alone:
mean luminance 0.492 after 60 iterations, 0.477 after 150, 0.455 after 300, 0.430 after 600 (the photo:
0.469; docs/benchmarks.md, "Video that stays sharp"). A clip drifts the same way, 2-3% over 10 frames,
while frames painted one by one, each with the same iterations, stay level. The temporal loss slows the drift but cannot stop it: it holds each
pixel softly, and the style loss gains a little from darkening all of them together.

The hold: after a later frame is painted, one offset per channel is added to it so that its mean over
the pixels carried from the previous frame (weighted by the consistency weights ``c``) equals the
previous result's mean there, warped, plus the footage's own change there:

    offset = m(warped previous result) + (m(frame) - m(warped previous frame)) - m(result),
    m(x) = sum_p c(p) x(p) / sum_p c(p)          (per channel)

so a fade or a light switched on still reaches the painting, while the optimiser's drift does not. A
uniform offset moves no stroke and changes no edge (the variance of the Laplacian is unchanged); the result
is clamped to [0, 1]. Where almost nothing is carried over (a cut: ``c`` sums to under 1% of the frame),
the frame is left as painted.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["MIN_CARRIED", "held_offset"]

MIN_CARRIED = 0.01  # below this share of the frame carried over, there is nothing to hold to (a cut)


def held_offset(result: Tensor, warped_result: Tensor, frame: Tensor, warped_frame: Tensor,
                weights: np.ndarray) -> Tensor:
    """The per-channel offset ``(1, C, 1, 1)`` of the module docstring (zeros after a cut).

    ``result``: the frame as painted; ``warped_result``: the previous result warped to this frame (its
    start and temporal target); ``frame``, ``warped_frame``: this frame's photo and the previous one's,
    warped the same way; all ``(1, C, H, W)`` in [0, 1]; ``weights``: ``c``, ``(H, W)``.
    """
    c = torch.from_numpy(np.ascontiguousarray(weights)).to(result)[None, None]
    total = c.sum()
    if float(total) < MIN_CARRIED * c.numel():
        return torch.zeros_like(result[:, :, :1, :1])

    def mean(x: Tensor) -> Tensor:
        return (x * c).sum(dim=(2, 3), keepdim=True) / total

    return mean(warped_result) + (mean(frame) - mean(warped_frame)) - mean(result)

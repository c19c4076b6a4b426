"""The backward of a 3x3 convolution whose input was padded by copying border pixels (reflect, replicate).

Used by :mod:`artistyle.vgg`'s hand-written backward; apart so that file stays small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["padded_conv_input_grad"]


def padded_conv_input_grad(g: Tensor, weight: Tensor, mode: str) -> Tensor:
    """The gradient of a 3x3 convolution's input when the input was padded by one pixel (``mode``:
    reflect or replicate), from the output's gradient ``g``.

    The padded input's gradient is the full transposed convolution; its inside is what zero padding gives
    (``conv_transpose2d(g, w, padding=1)``), and its one-pixel ring, which the padding copied from border
    pixels, is folded back onto them. The ring is computed on its own (padded row 0 gets only output row 0
    through kernel row 0, and so on): this is as fast as the zero-padded backward plus four one-line
    convolutions, where the full transposed convolution and torch's pad backward cost 2.7x at 512 px.
    """
    grad = F.conv_transpose2d(g, weight, padding=1)
    height, width = grad.shape[-2:]
    top = _ring(g[:, :, 0], weight[:, :, 0])  # padded row 0, corners included: (B, C_in, W + 2)
    bottom = _ring(g[:, :, -1], weight[:, :, 2])  # padded row H + 1
    left = _ring(g[:, :, :, 0], weight[:, :, :, 0])[:, :, 1:-1]  # padded column 0, without the corners
    right = _ring(g[:, :, :, -1], weight[:, :, :, 2])[:, :, 1:-1]  # padded column W + 1
    # Where each padded pixel came from: reflect copies index 1 (and n - 2), replicate index 0 (and n - 1).
    near_row, far_row = (1, height - 2) if mode == "reflect" else (0, height - 1)
    near_col, far_col = (1, width - 2) if mode == "reflect" else (0, width - 1)
    for row, ring in ((near_row, top), (far_row, bottom)):
        grad[:, :, row] += ring[:, :, 1:-1]
        grad[:, :, row, near_col] += ring[:, :, 0]
        grad[:, :, row, far_col] += ring[:, :, -1]
    grad[:, :, :, near_col] += left
    grad[:, :, :, far_col] += right
    return grad


def _ring(line: Tensor, taps: Tensor) -> Tensor:
    """One border line of the padded input's gradient: ``line`` ``(B, C_out, n)``, the output's gradient along
    the border, through the kernel's three ``taps`` ``(C_out, C_in, 3)`` on that side, gives ``(B, C_in, n + 2)``.
    Matrix products, not thin convolutions: those gave results that depend on the thread count."""
    batch, _, n = line.shape
    ring = line.new_zeros(batch, taps.shape[1], n + 2)
    for k in range(3):
        ring[:, :, k : k + n] += torch.einsum("bon,oi->bin", line, taps[:, :, k])
    return ring

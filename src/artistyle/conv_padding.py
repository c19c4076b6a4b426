"""The backward of a 3x3 convolution whose input was padded by copying border pixels (reflect, replicate).

Used by :mod:`artistyle.vgg`'s hand-written backward; apart so that file stays small.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SMALL_MAP", "padded_conv_input_grad"]

# Maps of up to 32 x 32 positions take the full transposed convolution (both ways are exact; measured on a
# 2-core CPU, each is the faster on its side of this).
SMALL_MAP = 32 * 32


def padded_conv_input_grad(g: Tensor, weight: Tensor, mode: str) -> Tensor:
    """The gradient of a 3x3 convolution's input when the input was padded by one pixel (``mode``:
    reflect or replicate), from the output's gradient ``g``.

    The padded input's gradient is the full transposed convolution; its inside is what zero padding gives
    (``conv_transpose2d(g, w, padding=1)``), and its one-pixel ring, which the padding copied from border
    pixels, is folded back onto them. The ring is computed on its own (padded row 0 gets only output row 0
    through kernel row 0, and so on): each border line of ``g`` through its side's three taps, about 2/W
    of the zero-padded backward's work, where the full transposed convolution and torch's pad backward cost
    2.7x at 512 px. Small maps take the full transposed convolution (:data:`SMALL_MAP`).
    """
    height, width = g.shape[-2:]  # the input's size too (stride 1, padded by one pixel)
    if height * width <= SMALL_MAP:
        # Small maps (deep layers, small pictures, thin tiles): the full transposed convolution at once, where
        # twelve small matrix products would cost several times the convolution itself.
        padded = F.conv_transpose2d(g, weight)  # (H + 2, W + 2): the padded input's gradient
        grad = padded[:, :, 1:-1, 1:-1].clone()
        top, bottom = padded[:, :, 0], padded[:, :, -1]  # with the corners
        left, right = padded[:, :, 1:-1, 0], padded[:, :, 1:-1, -1]  # without them
    else:
        grad = F.conv_transpose2d(g, weight, padding=1)
        # taps[o, r, c, i]: a view of the weights; each tap taps[:, r, c] is a (C_out, C_in) matrix a matrix
        # product reads in place (no copy), whatever the weights' memory format.
        taps = weight.permute(0, 2, 3, 1)
        top = _ring(g[:, :, 0], taps[:, 0])  # padded row 0, corners included: (B, C_in, W + 2)
        bottom = _ring(g[:, :, -1], taps[:, 2])  # padded row H + 1
        left = _ring(g[:, :, :, 0], taps[:, :, 0])[:, :, 1:-1]  # padded column 0, without the corners
        right = _ring(g[:, :, :, -1], taps[:, :, 2])[:, :, 1:-1]  # padded column W + 1
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
    the border, through the kernel's three ``taps`` ``(C_out, 3, C_in)`` on that side (tap ``k`` of position
    ``j`` lands on padded position ``j + k``), gives ``(B, C_in, n + 2)``.

    Matrix products, not thin convolutions (those gave results that depend on the thread count); plain
    ``matmul`` on views of the weights, not ``einsum`` (its overhead and its copies of the weights were most
    of a small picture's backward)."""
    batch, n = line.shape[0], line.shape[-1]
    c_in = taps.shape[-1]
    ring = line.new_zeros(batch, c_in, n + 2)
    for k in range(3):
        # (C_in, C_out) @ (C_out, n), a tap at a time: in this shape the sums do not depend on the thread count
        # (three taps in one (3 C_in, C_out) product did at C_in = 3, the first layer; (n, C_out) @ (C_out,
        # 3 C_in) at n = 6), which keeps a picture painted on 1 thread equal to one painted on 2.
        ring[:, :, k : k + n] += torch.matmul(taps[:, k].t(), line)
    return ring

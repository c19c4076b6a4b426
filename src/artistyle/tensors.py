"""Conversions between the library's image forms: float arrays, ``(1, 3, H, W)`` tensors and PIL images.

(Headed for ``artistyle.images.tensors``; ``artistyle.nst`` re-exports them.)
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["array_to_tensor", "tensor_to_array", "to_pil"]


def array_to_tensor(array: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """``H x W x 3`` float array in [0, 1] -> ``(1, 3, H, W)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None].contiguous().to(device)


def tensor_to_array(image: Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` tensor -> ``H x W x 3`` float32 array clipped to [0, 1]."""
    return image.detach()[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """Float ``H x W x 3`` in [0, 1] (and optional alpha) -> 8-bit PIL image."""
    channels = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    data = (np.clip(channels, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(data, "RGB" if alpha is None else "RGBA")

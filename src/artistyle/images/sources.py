"""Images given in memory: PIL images, numpy arrays and tensors are read like image files.

Every image the library takes (content, styles, region masks, the fine style,
the init image) may be

* a path to an image file,
* a PIL image,
* a numpy array, ``H x W`` (grey) or ``H x W x 3`` (RGB): an integer one holds
  8-bit values (0..255), a float (or bool) one values in [0, 1],
* a tensor of the same kinds, shaped ``(H, W)``, ``(1, H, W)``, ``(3, H, W)``,
  ``(1, 1, H, W)`` or ``(1, 3, H, W)``: the library's own ``(1, 3, H, W)`` images
  go straight back in.

An 8-bit array reads exactly as the 8-bit PNG holding the same values. A float
picture keeps its precision; a float mask is rounded to 8 bits, so that it too
reads exactly as its PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import ImageError
from .decode import MIN_SIDE, LoadedImage, load_image, open_image

__all__ = [
    "ImageLike", "ImageSource", "as_loaded", "as_picture", "describe", "image_list", "is_image_like", "pixel_array",
]

# One image given in memory or as a file.
ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray | Tensor
# ... or one the library has already loaded.
ImageSource = ImageLike | LoadedImage
_SINGLE = (str, os.PathLike, Image.Image, np.ndarray, Tensor, LoadedImage)


def is_image_like(obj: object) -> bool:
    """True for one image (a path, PIL image, array, tensor or loaded image), False for a sequence of them."""
    return isinstance(obj, _SINGLE)


def image_list(source: object) -> list[Any]:
    """One image as a one-item list; a sequence of images as a list."""
    if is_image_like(source):
        return [source]
    if isinstance(source, Sequence):
        return list(source)
    kind = type(source).__name__
    raise TypeError(f"expected an image (path, PIL image, array or tensor) or a sequence of them, not {kind}")


def describe(source: object, index: int | None = None) -> str:
    """How an error message names an image: the quoted path, else its number and kind."""
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    name = getattr(source, "filename", "") or ""
    if name:
        return f"'{name}'"
    kind = {Image.Image: "a PIL image", np.ndarray: "an array", Tensor: "a tensor"}
    what = next((v for k, v in kind.items() if isinstance(source, k)), type(source).__name__)
    return f"{index} ({what})" if index is not None else f"({what})"


def pixel_array(source: np.ndarray | Tensor, role: str = "image") -> np.ndarray:
    """An array or tensor as a numpy ``H x W`` or ``H x W x 3`` array, its kind (integer or float) kept."""
    if isinstance(source, Tensor):
        t = source.detach().cpu()
        if t.is_floating_point() and t.dtype != torch.float64:
            t = t.float()  # numpy has no bfloat16
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ImageError(f"{role} is a batch of {t.shape[0]} images; give one")
            t = t[0]
        if t.dim() == 3:
            if t.shape[0] not in (1, 3):
                raise ImageError(f"{role} is a tensor of shape {tuple(source.shape)}; expected (H, W), (C, H, W) "
                                 "or (1, C, H, W) with C = 1 or 3")
            t = t[0] if t.shape[0] == 1 else t.permute(1, 2, 0)
        array = t.numpy()
    else:
        array = np.asarray(source)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ImageError(f"{role} is an array of shape {array.shape}; expected H x W or H x W x 3")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{role} is empty ({array.shape[1]}x{array.shape[0]} px)")
    return array


def _unit_float(array: np.ndarray, role: str) -> np.ndarray:
    """A float or bool array checked to lie in [0, 1], as float32."""
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise ImageError(f"{role} has values that are not finite")
    if float(values.min()) < 0 or float(values.max()) > 1:
        raise ImageError(
            f"{role} has values outside [0, 1] (a float image is in [0, 1]; 8-bit values need an integer dtype)"
        )
    return values


def _eight_bit(array: np.ndarray, role: str) -> np.ndarray:
    """An array as 8-bit values: integers as they are (0..255), floats in [0, 1] rounded to 0..255."""
    if np.issubdtype(array.dtype, np.integer):
        if int(array.min()) < 0 or int(array.max()) > 255:
            raise ImageError(f"{role} has values outside 0..255")
        return array.astype(np.uint8)
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.floating):
        return (_unit_float(array, role) * 255 + 0.5).astype(np.uint8)
    raise ImageError(f"{role} has values of type {array.dtype}; use uint8 or float")


def as_picture(source: ImageLike, role: str = "image") -> Image.Image:
    """A PIL image in its own mode (e.g. a palette mask): a path opened, an array or tensor as 8-bit."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (np.ndarray, Tensor)):
        label = f"{role} {describe(source)}"
        return Image.fromarray(_eight_bit(pixel_array(source, label), label))
    return open_image(source, role=role)


def as_loaded(source: ImageSource, role: str = "image") -> LoadedImage:
    """Any image as a :class:`LoadedImage` (sRGB float pixels in [0, 1])."""
    if isinstance(source, LoadedImage):
        return source
    if isinstance(source, (np.ndarray, Tensor)):
        label = f"{role} {describe(source)}"
        array = pixel_array(source, label)
        if np.issubdtype(array.dtype, np.integer):
            # Through Pillow, exactly as the 8-bit file with these values would load.
            return load_image(Image.fromarray(_eight_bit(array, label)), role=role)
        if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.floating)):
            raise ImageError(f"{label} has values of type {array.dtype}; use uint8 or float")
        height, width = array.shape[:2]
        if width < MIN_SIDE or height < MIN_SIDE:  # as load_image checks files
            raise ImageError(f"{label} is {width}x{height} px; at least {MIN_SIDE} px per side are needed")
        rgb = _unit_float(array, label)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        return LoadedImage(rgb=np.ascontiguousarray(rgb), alpha=None, bit_depth=8, path=None)
    return load_image(source, role=role)

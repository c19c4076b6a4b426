"""Edge and transparency measures of a painted picture against its photo (issue 25, item 7).

Two defects no loss sees, measured in grey levels (0..255 of the Rec. 601 luminance
``Y = 0.299 R + 0.587 G + 0.114 B``, the weights of :mod:`artistyle.color`):

* :func:`border_steps`: the step ``|mean(row_0) - mean(row_1)|`` between each border row or
  column and the one next to it. A frame along the edges (a light top row, a dark left
  column) shows as a border step larger than the photo's own at the same size.
* :func:`alpha_fidelity`: a painting of a photo with an alpha channel, both composited over
  white and over black (as users show them), compared where the photo is semi-transparent
  (``0 < alpha < 1/2``): the mean luminance of the painting there over the photo's. A dark
  ring or a grey fog shows as a ratio far from 1.

Images are ``H x W x C`` arrays (``uint8``, ``uint16`` or floats in [0, 1]) or ``(1, C, H, W)``
tensors; RGBA images carry straight (not premultiplied) alpha, as PNG files do.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..images import resize_long_edge

__all__ = ["LUMA_WEIGHTS", "SIDES", "alpha_fidelity", "as_unit_array", "border_steps", "grey_levels"]

#: Rec. 601 luminance weights of R, G, B (those of :mod:`artistyle.color`'s YIQ).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: The four borders, each as (the border line, the line next to it) of an ``H x W`` plane.
SIDES = ("top", "bottom", "left", "right")

ImageArray = np.ndarray | Tensor


def as_unit_array(image: ImageArray) -> np.ndarray:
    """``image`` as a float64 ``H x W x C`` array in [0, 1] (``uint8``/``uint16`` scaled, a tensor's batch dropped)."""
    if isinstance(image, Tensor):
        data = image.detach().to("cpu", torch.float64)
        data = data[0] if data.dim() == 4 else data
        array = data.permute(1, 2, 0).numpy()
    else:
        array = np.asarray(image)
        if array.dtype == np.uint8:
            array = array / 255.0
        elif array.dtype == np.uint16:
            array = array / 65535.0
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 2:
        raise ValueError(f"expected an H x W x 1|3|4 image of at least 2 x 2 pixels, got shape {array.shape}")
    return array


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """The luminance ``Y`` of an ``H x W x 1|3`` array in [0, 1], in grey levels 0..255 (``H x W``)."""
    if rgb.shape[2] == 1:
        return 255.0 * rgb[..., 0]
    y: np.ndarray = 255.0 * (rgb[..., :3] @ np.asarray(LUMA_WEIGHTS))
    return y


def _at_size(photo: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``photo`` resized (long edge, as the engine resizes a content) to ``shape`` = (H, W) of the painting."""
    if photo.shape[:2] == shape:
        return photo
    resized = resize_long_edge(photo.astype(np.float32), max(shape)).astype(np.float64)
    if resized.shape[:2] != shape:
        raise ValueError(f"{what} of shape {photo.shape[:2]} does not have the painting's aspect {shape}")
    return resized


def _steps(grey: np.ndarray, per_pixel: bool) -> dict[str, float]:
    """The step between each border line of ``grey`` (H x W) and the next line in, in grey levels."""
    pairs = {
        "top": (grey[0], grey[1]), "bottom": (grey[-1], grey[-2]),
        "left": (grey[:, 0], grey[:, 1]), "right": (grey[:, -1], grey[:, -2]),
    }
    if per_pixel:
        return {side: float(np.mean(np.abs(edge - inner))) for side, (edge, inner) in pairs.items()}
    return {side: float(abs(np.mean(edge) - np.mean(inner))) for side, (edge, inner) in pairs.items()}


def border_steps(
    image: ImageArray, reference: ImageArray | None = None, *, per_pixel: bool = False
) -> dict[str, float]:
    """Border steps of ``image`` in grey levels: ``{side: |mean(line_0) - mean(line_1)|}`` for the four sides.

    ``line_0`` is the border row or column, ``line_1`` the one next to it: a frame (a light top
    row, a dark left column) is a step of the line's mean. ``per_pixel=True`` measures
    ``mean |line_0 - line_1|`` instead, which in a painting is mostly its brush texture (15-20
    levels at 192 px on every row, against a photo's 1-10), so it cannot tell a frame from a
    texture. With a ``reference`` (the photo), which is resized to ``image``'s size first (long
    edge, as the engine resizes it; colour only, alpha ignored), also ``reference_<side>`` (the
    photo's own steps) and ``excess``: ``max over sides of (step - reference step)``.
    """
    array = as_unit_array(image)
    steps = _steps(grey_levels(array[..., :3]), per_pixel)
    if reference is None:
        return steps
    photo = _at_size(as_unit_array(reference)[..., :3], array.shape[:2], "reference")
    reference_steps = _steps(grey_levels(photo), per_pixel)
    result = dict(steps)
    result.update({f"reference_{side}": value for side, value in reference_steps.items()})
    result["excess"] = max(steps[side] - reference_steps[side] for side in SIDES)
    return result


def _composite(rgba: np.ndarray, background: float) -> np.ndarray:
    """Straight-alpha ``rgba`` shown over a flat ``background`` (0 black, 1 white): ``c a + b (1 - a)``."""
    alpha = rgba[..., 3:4]
    composite: np.ndarray = rgba[..., :3] * alpha + background * (1.0 - alpha)
    return composite


def alpha_fidelity(output_rgba: ImageArray, photo_rgba: ImageArray, *, below: float = 0.5) -> dict[str, float]:
    """How a painting's semi-transparent pixels look against the photo's, over white and over black.

    Both images are straight-alpha RGBA (the photo is resized to the painting's size). Over
    the pixels where the photo's alpha ``a`` satisfies ``0 < a < below`` (8 bits: 1..127), with
    ``Y`` the mean luminance of the composite ``c a + b (1 - a)`` on a background ``b``:

    * ``white`` / ``black``: ``Y(painting) / Y(photo)`` over white / over black; 1 is the photo's
      brightness, a dark ring is well under 1 (``Y`` near 0 over black for a ring of near-black).
    * ``white_painting``, ``white_photo``, ``black_painting``, ``black_photo``: the two ``Y``.
    * ``alpha_error``: the largest difference between the two alphas, in [0, 1].
    * ``pixels``: the share of the picture in the semi-transparent band (0: nothing measured,
      the ratios are then 1).
    """
    painting = as_unit_array(output_rgba)
    photo = as_unit_array(photo_rgba)
    if painting.shape[2] != 4 or photo.shape[2] != 4:
        raise ValueError("alpha_fidelity compares two RGBA images (H x W x 4)")
    photo = _at_size(photo, painting.shape[:2], "photo")
    alpha = photo[..., 3]
    band = (alpha > 0.5 / 255.0) & (alpha < below)
    result = {"pixels": float(band.mean()), "alpha_error": float(np.max(np.abs(painting[..., 3] - alpha)))}
    for name, background in (("white", 1.0), ("black", 0.0)):
        y_painting = grey_levels(_composite(painting, background))[band]
        y_photo = grey_levels(_composite(photo, background))[band]
        mean_painting = float(y_painting.mean()) if band.any() else 0.0
        mean_photo = float(y_photo.mean()) if band.any() else 0.0
        result[f"{name}_painting"] = mean_painting
        result[f"{name}_photo"] = mean_photo
        result[name] = mean_painting / mean_photo if mean_photo > 0 else 1.0
    return result

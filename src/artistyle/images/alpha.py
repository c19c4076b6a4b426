"""Alpha: colours shown on white, and the straight colours a painting is made of.

A decoded image's ``rgb`` is its colour ``c`` composited on white with its alpha ``a``:
``rgb = c a + (1 - a)`` (:func:`composite_on_white`), what a viewer shows on a white page.
A painting is made of straight colours: it paints ``c`` (:func:`content_colors`), not the
composite, and its file carries ``c`` with the photo's alpha beside it, so that it looks
like the photo over any background. Painting the composite instead paints the white the
photo fades into, which no longer matches ``c`` once the alpha is put back: a semi-transparent
pixel has no colour ``c`` in [0, 1] with ``c a + (1 - a)`` equal to a painted mid-grey, and
:func:`straight_colors` (clipped) then gives near-black: a dark ring and a grey fog where
the photo fades out (issue 25, item 7).
"""

from __future__ import annotations

import numpy as np

from .decode import LoadedImage, resize_long_edge

__all__ = ["composite_on_white", "content_colors", "straight_colors"]


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight colours ``c`` (H x W x 3) with alpha ``a`` (H x W) shown on white: ``c a + (1 - a)``."""
    a = alpha[..., None]
    composite: np.ndarray = rgb * a + (1.0 - a)
    return composite


def straight_colors(composite: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The inverse of :func:`composite_on_white`: ``c = (rgb - (1 - a)) / a``, clipped to [0, 1].

    Fully transparent pixels (``a = 0``) have no colour; they keep the one given.
    """
    a = alpha[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        color = (composite - (1.0 - a)) / a
    straight: np.ndarray = np.clip(np.where(a > 0, color, composite), 0.0, 1.0)
    return straight


def content_colors(image: LoadedImage, long_edge: int) -> np.ndarray:
    """The colours a painting of ``image`` is made of, resized to ``long_edge``: float32 H x W x 3.

    Opaque: :func:`resize_long_edge` of ``rgb``, exactly. With alpha, the straight colours at the new
    size: the composite and the alpha are resized (a resize of the composite is one of the colours
    weighted by alpha, as it should be, so no colour of a transparent pixel bleeds in) and the
    composite is taken off white (:func:`straight_colors`); fully transparent pixels stay white.
    """
    composite = resize_long_edge(image.rgb, long_edge)
    if image.alpha is None:
        return composite
    alpha = resize_long_edge(image.alpha, long_edge)
    return straight_colors(composite, alpha).astype(np.float32)

"""Images in and out: decoding to sRGB floats, encoding to files or bytes, and the engine's tensors.

* :mod:`.decode` -- :func:`load_image` (any Pillow format, EXIF orientation, ICC
  profiles, CMYK, alpha, 16-bit) into a :class:`LoadedImage`; :func:`open_image`;
  :func:`resize_long_edge` and :func:`resized_shape`.
* :mod:`.encode` -- :func:`save_image` (atomic, sRGB-tagged, never over an input),
  :func:`encode_image` (the same bytes, in memory), :func:`check_output_path`,
  :data:`SAVE_FORMATS`.
* :mod:`.tensors` -- :func:`array_to_tensor`, :func:`tensor_to_array`, :func:`to_pil`.
* :mod:`.srgb` (colour management) and :mod:`.tiff` (16-bit TIFF through tifffile)
  serve the two above.
"""

from __future__ import annotations

from .decode import IMAGE_SUFFIXES, MIN_SIDE, LoadedImage, load_image, open_image, resize_long_edge, resized_shape
from .encode import SAVE_FORMATS, check_output_path, encode_image, save_image
from .tensors import array_to_tensor, tensor_to_array, to_pil

__all__ = [
    "IMAGE_SUFFIXES",
    "MIN_SIDE",
    "SAVE_FORMATS",
    "LoadedImage",
    "array_to_tensor",
    "check_output_path",
    "encode_image",
    "load_image",
    "open_image",
    "resize_long_edge",
    "resized_shape",
    "save_image",
    "tensor_to_array",
    "to_pil",
]

"""Encoding: every image written goes through :func:`encode_image` (in memory) or :func:`save_image` (to a file).

Both pick the format from a file extension (:data:`SAVE_FORMATS`), embed an
sRGB ICC profile and produce the same bytes for the same image and format:
:func:`save_image` streams :func:`encode_image`'s encoder into the file. A file
is written atomically (:func:`~artistyle.files.atomic_write`: a temporary file
in the same folder, then :func:`os.replace`) and never over a file listed in
``protect``.

JPEG is written at quality 95 with 4:4:4 chroma; WebP losslessly, since WebP's
lossy mode always halves chroma resolution and smears the fine colour texture
of stylised images (choose .jpg for small lossy files); PNG at zlib level 6;
TIFF uncompressed, the form every reader accepts. 16-bit output is for TIFF
only: Pillow cannot write 16-bit RGB at all, so those files are written with
tifffile (:mod:`.tiff`), and 16-bit PNG, JPEG and WebP are refused with an
:class:`~artistyle.errors.ImageError`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin

from ..errors import ImageError
from ..files import atomic_write, check_writable
from .alpha import straight_colors
from .srgb import srgb_profile_bytes
from .tiff import write_rgb16

__all__ = ["SAVE_FORMATS", "check_output_path", "encode_image", "save_image"]

#: Lower-case file extension (with the dot, as :attr:`Path.suffix` gives it) ->
#: Pillow format name, for every format :func:`save_image` writes.
SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_SUPPORTED = ", ".join(sorted(SAVE_FORMATS))
_JPEG_QUALITY = 95
# Largest side each encoder accepts; checked up front for a clear message.
_MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}

ImageData = np.ndarray | Image.Image


def encode_image(
    image: ImageData, format: str, *, alpha: np.ndarray | None = None, bit_depth: int = 8,
    text: Mapping[str, str] | None = None, straight: bool = False,
) -> bytes:
    """The bytes of ``image`` encoded as ``format``: exactly what :func:`save_image` writes to a file of that type.

    ``format`` is an extension of :data:`SAVE_FORMATS`, with or without the dot,
    in any case ("png", ".JPG"), or a Pillow format name ("JPEG", "TIFF").
    ``image``, ``alpha`` and ``straight`` are as for :func:`save_image`. ``bit_depth=16`` is
    supported for TIFF only. ``text``: key -> value pairs stored as PNG iTXt chunks
    (ignored for the other formats; the pixels are the same either way). Raises
    ImageError for an unknown format or one that cannot hold the image.
    """
    fmt = _format_named(format)
    label = f"{fmt} image"
    _check_format(fmt, bit_depth, label)
    samples = _samples(image, alpha, fmt, bit_depth, label, straight)
    buffer = io.BytesIO()
    _encode(buffer, samples, fmt, text)
    return buffer.getvalue()


def save_image(
    rgb: ImageData,
    path: str | os.PathLike[str],
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    protect: Iterable[str | os.PathLike[str]] = (),
    text: Mapping[str, str] | None = None,
    straight: bool = False,
) -> Path:
    """Write ``rgb`` (H x W x 3, sRGB in [0, 1]) to ``path`` atomically; return the path.

    The format follows the extension (see :data:`SAVE_FORMATS`). ``alpha`` (H x W)
    is stored for PNG, TIFF and WebP and dropped for JPEG. ``rgb`` is taken as
    composited on white, as :func:`~artistyle.images.load_image` returns it, and
    un-composited where 0 < alpha < 1, so the file shown on white looks like
    ``rgb``. With ``straight=True``, ``rgb`` holds the pixels' own colours (straight
    alpha, as a painting has them: :mod:`.alpha`) and is stored as it is (shown on
    white for JPEG). A PIL image instead of the array is written as its pixels are (its
    own alpha, if any, straight; shown on white for JPEG) at 8 bits per channel.
    ``bit_depth=16`` is supported for TIFF only. Float values are clipped and
    rounded; ``uint8`` and ``uint16`` arrays are taken as 8- and 16-bit pixels.
    ``text`` is stored in a PNG's text chunks, as for :func:`encode_image`.
    Path problems raise ImageError (see :func:`check_output_path`); a failed write
    raises :class:`~artistyle.errors.FileError` and leaves any old file as it was.
    """
    target = check_output_path(path, protect=protect, bit_depth=bit_depth, probe=False)  # the write will tell
    fmt = SAVE_FORMATS[target.suffix.lower()]
    label = f"output '{os.fspath(path)}'"
    samples = _samples(rgb, alpha, fmt, bit_depth, label, straight)
    atomic_write(target, lambda fh: _encode(fh, samples, fmt, text), label)
    return target


def check_output_path(
    path: str | os.PathLike[str],
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
    bit_depth: int = 8,
    probe: bool = True,
) -> Path:
    """Validate an output path before a long run; return it as a Path.

    Checks the extension (and that ``bit_depth`` suits it), then
    :func:`~artistyle.files.check_writable`: the folder exists and takes a
    file, the path is not a folder and not the same file as any path in
    ``protect``. Raises ImageError otherwise.
    """
    target = Path(os.fspath(path))
    label = f"output '{os.fspath(path)}'"
    ext = target.suffix.lower()
    if ext not in SAVE_FORMATS:
        what = f"unsupported extension '{target.suffix}'" if ext else "no file extension"
        raise ImageError(f"{label} has {what}; use one of {_SUPPORTED}")
    _check_format(SAVE_FORMATS[ext], bit_depth, label)

    check_writable(target, label, protect=protect, error=ImageError, probe=probe)
    return target


def _format_named(name: str) -> str:
    """The Pillow format name for an extension ("jpg", ".PNG") or a format name ("JPEG")."""
    key = name.lower() if name.startswith(".") else f".{name.lower()}"
    if key not in SAVE_FORMATS:
        raise ImageError(f"unsupported image format '{name}'; use one of {_SUPPORTED}")
    return SAVE_FORMATS[key]


def _check_format(fmt: str, bit_depth: int, label: str) -> None:
    """Refuse a bit depth the format cannot hold, or a format this Pillow cannot write."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and fmt != "TIFF":
        raise ImageError(f"{label}: 16-bit output is only supported for .tif/.tiff files")
    Image.init()
    if fmt not in Image.SAVE:
        raise ImageError(f"{label}: this Pillow build cannot write {fmt} files")


def _as_unit_float(array: np.ndarray) -> np.ndarray:
    """Floats as they are (in [0, 1]); 8- and 16-bit integers scaled to [0, 1], not clipped to white."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if not (np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_):
        raise ValueError(f"rgb must be float in [0, 1], uint8 or uint16, not {array.dtype}")
    return array.astype(np.float32)


def _samples(
    image: ImageData, alpha: np.ndarray | None, fmt: str, bit_depth: int, label: str, straight: bool = False
) -> np.ndarray:
    """H x W x 3|4 samples, uint8 or uint16 as ``bit_depth`` says, ready for the encoder."""
    composited = not isinstance(image, Image.Image) and not straight
    if isinstance(image, Image.Image):
        if alpha is not None:
            raise ValueError("alpha goes with an array; a PIL image carries its own")
        rgb, alpha = _pil_planes(image)
    else:
        rgb = _as_unit_float(np.asarray(image))
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be H x W x 3, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    if fmt in _MAX_SIDE and max(width, height) > _MAX_SIDE[fmt]:
        raise ImageError(f"{label} is {width}x{height} px; {fmt} allows at most {_MAX_SIDE[fmt]} px per side")
    rgb = _unit(rgb)
    if alpha is not None and fmt == "JPEG" and composited:
        alpha = None  # JPEG has no alpha; the composited colours are what it shows
    if alpha is not None:
        alpha = _unit(np.asarray(alpha, dtype=np.float32))
        if alpha.shape != (height, width):
            raise ValueError(f"alpha must be {height} x {width}, got shape {alpha.shape}")
        if fmt == "JPEG":  # straight colours, shown on white
            rgb = rgb * alpha[..., None] + (1.0 - alpha[..., None])
            alpha = None
        elif composited:
            rgb = straight_colors(rgb, alpha)
    planes = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    if bit_depth == 16:
        return np.rint(planes * 65535.0).astype(np.uint16)
    return np.rint(planes * 255.0).astype(np.uint8)


def _pil_planes(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """A PIL image as float RGB in [0, 1] and its straight alpha (None without one), at 8 bits per channel."""
    has_alpha = any(band in ("A", "a") for band in image.getbands()) or "transparency" in image.info
    planes = np.asarray(image.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    return planes[..., :3], (planes[..., 3] if has_alpha else None)


def _encode(fh: BinaryIO, samples: np.ndarray, fmt: str, text: Mapping[str, str] | None = None) -> None:
    """Write ``samples`` (from :func:`_samples`) to ``fh`` in ``fmt``, tagged sRGB (PNG: with ``text`` chunks)."""
    if samples.dtype == np.uint16:
        write_rgb16(fh, samples, srgb_profile_bytes())
        return
    img = Image.fromarray(samples)  # RGB / RGBA
    options = _save_options(fmt)
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value)  # iTXt: UTF-8, for any setting's text
        options["pnginfo"] = info
    img.save(fh, format=fmt, icc_profile=srgb_profile_bytes(), **options)


def _unit(array: np.ndarray) -> np.ndarray:
    # NaN cannot be rounded to a pixel value; black is the least surprising.
    unit: np.ndarray = np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0)
    return unit


def _save_options(fmt: str) -> dict[str, object]:
    if fmt == "JPEG":
        return {"quality": _JPEG_QUALITY, "subsampling": 0, "optimize": True}
    if fmt == "WEBP":
        return {"lossless": True, "quality": 80}  # for lossless, quality = effort
    if fmt == "PNG":
        return {"compress_level": 6}
    return {}  # TIFF: uncompressed, the form every reader accepts

"""Decoding: every image read goes through :func:`load_image` (or :func:`open_image` for masks).

Contract
--------
:func:`load_image` returns a :class:`LoadedImage` whose ``rgb`` is a C-contiguous
float32 array, H x W x 3, holding sRGB-encoded values in [0, 1]:

* EXIF orientation is applied, so the array is upright as viewers show it.
* An embedded ICC profile is converted to sRGB (profiles that name themselves
  sRGB are taken as is). Unreadable profiles, or ones that do not match the
  pixel data's colour space, are ignored and the pixels are taken as sRGB.
* CMYK goes through its ICC profile if it has one, otherwise through Pillow's
  plain conversion; Adobe-inverted CMYK JPEGs are un-inverted by Pillow.
* Alpha is composited on white for ``rgb`` and also returned as ``alpha``
  (None when the file has none or it is fully opaque).
* Grayscale becomes three equal channels. Mode 'I' is read on a 16-bit scale
  (0..65535) and mode 'F' on Pillow's 0..255 scale; both are clipped.
* Only the first frame of a multi-frame file is read.

Precision: 16-bit grayscale (PNG, TIFF) and 16-bit RGB/RGBA TIFF files keep
their full precision; the latter are read with tifffile (:mod:`.tiff`), whether
uncompressed or compressed (Deflate/zlib, LZMA, PackBits, LZW). Pillow itself
reduces 16-bit RGB(A) PNG to 8 bits per channel and ICC conversion runs at 8
bits, so such files (and any 16-bit file with a non-sRGB profile, and a 16-bit
TIFF passed in as an already opened PIL image) arrive with 8-bit precision.
``bit_depth`` still reports the source file's depth: 16 for any source with more
than 8 bits per channel.

Every unusable input (missing, a folder, unreadable, empty, truncated, not an
image, under :data:`MIN_SIDE` px, over Pillow's decompression-bomb limit) raises
:class:`~artistyle.errors.ImageError` with a one-line message naming the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError
from ..files import short_reason
from .srgb import HIGH_BIT_GRAY, profile_is_srgb, to_srgb
from .tiff import read_rgb16

__all__ = ["IMAGE_SUFFIXES", "MIN_SIDE", "LoadedImage", "load_image", "open_image", "resize_long_edge", "resized_shape"]

MIN_SIDE = 32  # px; smaller images are rejected
#: Extensions (lower case, with the dot) taken as images when a folder is read: style folders, frame folders.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")

_ORIENTATION_TAG = 0x0112
# Pillow raw modes that carry 16 bits per channel (PNG, TIFF); 'BGR;16' (5-6-5
# packed BMP pixels) must not match, hence the byte-order letter.
_RAWMODE_16 = re.compile(r";16[BLN]?$")


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: sRGB float pixels plus what the caller needs to save it."""

    rgb: np.ndarray  # float32, H x W x 3, sRGB in [0, 1], alpha composited on white
    alpha: np.ndarray | None  # float32, H x W in [0, 1]; None when fully opaque
    bit_depth: int  # 8 or 16 per channel, of the source file
    path: Path | None  # None for an in-memory PIL image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# --------------------------------------------------------------------------- load


def load_image(source: str | os.PathLike[str] | Image.Image, *, role: str = "image") -> LoadedImage:
    """Decode ``source`` (a path or a PIL image) into a :class:`LoadedImage`.

    ``role`` names the image in error messages ("content image 'x.jpg' ...").
    Raises ImageError for any input that cannot be used.
    """
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or ""
        label = f"{role} '{name}'" if name else f"{role} (in-memory image)"
        img, bit_depth = _decode(lambda: source, label)
        return _to_loaded(img, label, bit_depth, fh=None, path=None)

    path, label = Path(os.fspath(source)), f"{role} '{os.fspath(source)}'"
    with _open_checked(path, label) as fh:
        img, bit_depth = _decode(lambda: Image.open(fh), label)
        return _to_loaded(img, label, bit_depth, fh=fh, path=path)


def _open_checked(path: Path, label: str) -> BinaryIO:
    """The checked input file, open for reading; ImageError with a specific message otherwise."""
    _check_input_file(path, label)
    try:
        return open(path, "rb")  # the caller closes it
    except PermissionError as exc:
        raise ImageError(f"{label} cannot be read (permission denied)") from exc
    except OSError as exc:
        raise ImageError(f"{label} cannot be opened ({short_reason(exc)})") from exc


def open_image(source: str | os.PathLike[str] | Image.Image, *, role: str = "image") -> Image.Image:
    """Decode ``source`` into a PIL image in its own mode (e.g. a palette mask), with :func:`load_image`'s checks."""
    if isinstance(source, Image.Image):
        return source
    path, label = Path(os.fspath(source)), f"{role} '{os.fspath(source)}'"
    with _open_checked(path, label) as fh:
        img, _ = _decode(lambda: Image.open(fh), label)
    return img


def _check_input_file(path: Path, label: str) -> None:
    """Fail early, with a specific message, on the common non-image cases."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ImageError(f"{label} does not exist") from exc
    except PermissionError as exc:
        raise ImageError(f"{label} cannot be read (permission denied)") from exc
    except OSError as exc:
        raise ImageError(f"{label} cannot be accessed ({short_reason(exc)})") from exc
    if path.is_dir():
        raise ImageError(f"{label} is a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{label} is not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{label} is empty (0 bytes)")


def _decode(opener: Callable[[], Image.Image], label: str) -> tuple[Image.Image, int]:
    """Open and fully decode an image, turning every failure into ImageError; return it and its source bit depth."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a file
        # that large is refused just the same.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = opener()
            _check_dimensions(img, label)
            bit_depth = _source_bit_depth(img)  # before load(), which clears the tiles
            # Full decode here, so truncated data fails now and not later.
            # LOAD_TRUNCATED_IMAGES is left alone: a half-grey image is no input.
            img.load()
        except ImageError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageError(_bomb_message(label, exc)) from exc
        except UnidentifiedImageError as exc:
            raise ImageError(
                f"{label} is not an image file ArtiStyle can read; use PNG, JPEG, WebP, TIFF, BMP or GIF"
            ) from exc
        except MemoryError as exc:
            raise ImageError(f"{label} is too large to decode in memory") from exc
        except Exception as exc:
            # Pillow's decoders raise many exception types (OSError, SyntaxError,
            # ValueError, EOFError, struct.error, ...) for damaged files.
            raise ImageError(
                f"{label} could not be decoded; it is truncated or corrupt ({short_reason(exc)})"
            ) from exc
    return img, bit_depth


def _check_dimensions(img: Image.Image, label: str) -> None:
    """Refuse images too small to style or over the decompression-bomb limit."""
    width, height = img.size
    limit = Image.MAX_IMAGE_PIXELS
    # Image.open already checks files; this covers in-memory PIL sources too.
    if limit and width * height > limit:
        raise ImageError(
            f"{label} has {width * height:,} pixels, over the limit of {limit:,} "
            "(a guard against decompression bombs; use a smaller image)"
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(
            f"{label} is {width}x{height} px; at least {MIN_SIDE} px per side are needed"
        )


def _bomb_message(label: str, exc: BaseException) -> str:
    """Describe a decompression-bomb refusal; Pillow only gives the numbers in text."""
    limit = Image.MAX_IMAGE_PIXELS
    match = re.search(r"\((\d+) pixels\)", str(exc))
    if match is None:
        return f"{label} is too large: over the limit of {limit:,} pixels"
    pixels = int(match.group(1))
    return (
        f"{label} has {pixels:,} pixels, over the limit of {limit:,} "
        "(a guard against decompression bombs; use a smaller image)"
    )


def _source_bit_depth(img: Image.Image) -> int:
    """16 when the file stores more than 8 bits per channel, else 8.

    Pillow decodes 16-bit colour to 8 bits; a TIFF's tags still tell the source's
    depth, and for other formats the raw mode Pillow's decoder is given (in the
    tiles of a file not yet loaded) does.
    """
    if img.mode in HIGH_BIT_GRAY:
        return 16
    tags = getattr(img, "tag_v2", None)  # a TIFF says it outright (BitsPerSample)
    if tags is not None and tags.get(258) is not None:
        bits = tags[258]
        return 16 if max(bits if isinstance(bits, tuple) else (bits,)) > 8 else 8
    for tile in getattr(img, "tile", None) or []:
        rawmode = _tile_rawmode(tile)
        if rawmode and _RAWMODE_16.search(rawmode) and not rawmode.startswith("BGR"):
            return 16
    return 8


def _tile_rawmode(tile: tuple[object, ...]) -> str | None:
    """The raw mode in a Pillow tile's args, whose shape differs per codec."""
    args = tile[3] if len(tile) > 3 else None
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _to_loaded(
    img: Image.Image,
    label: str,
    bit_depth: int,
    *,
    fh: BinaryIO | None,
    path: Path | None,
) -> LoadedImage:
    """Convert a decoded image to the module's float, sRGB, upright form."""
    orientation = _orientation(img)
    icc = img.info.get("icc_profile")

    rgb: np.ndarray | None = None
    alpha: np.ndarray | None = None
    if fh is not None and img.format == "TIFF" and bit_depth == 16 and img.mode in ("RGB", "RGBA"):
        # Pillow decoded a 16-bit RGB(A) TIFF to 8 bits; tifffile reads all 16.
        # A non-sRGB profile is converted at 8 bits anyway, so Pillow's pixels serve.
        try:
            found = read_rgb16(fh, len(img.mode)) if profile_is_srgb(icc) else None
        except MemoryError as exc:
            raise ImageError(f"{label} is too large to decode in memory") from exc
        if found is not None and img.size in _sizes(found[0], found[1]):
            # These samples come as stored, whatever Pillow did with the Orientation tag.
            samples, orientation = found
            rgb = samples[..., :3].astype(np.float32) / 65535.0
            if samples.shape[2] == 4:
                alpha = samples[..., 3].astype(np.float32) / 65535.0

    if rgb is None:
        color, alpha = _split_alpha(img, label)
        rgb = to_srgb(color, icc)

    if alpha is not None:
        if float(alpha.min()) >= 1.0:
            alpha = None
        else:
            a = alpha[..., None]
            rgb = rgb * a + (1.0 - a)  # composite on white

    rgb = _apply_orientation(rgb, orientation)
    if alpha is not None:
        alpha = np.ascontiguousarray(_apply_orientation(alpha, orientation), dtype=np.float32)
    # Contiguous, positive strides: torch.from_numpy rejects flipped views.
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    return LoadedImage(rgb=rgb, alpha=alpha, bit_depth=bit_depth, path=path)


def _sizes(samples: np.ndarray, orientation: int) -> set[tuple[int, int]]:
    """(width, height) of stored ``samples``, as stored and once turned upright: Pillow reports either."""
    rows, columns = samples.shape[:2]
    return {(columns, rows), (rows, columns) if orientation >= 5 else (columns, rows)}


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8), 1 when absent or unreadable."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block, whatever Pillow raises, must not make the image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Make ``array`` (H x W [x C]) upright; same mapping as ImageOps.exif_transpose."""
    if orientation == 2:  # mirrored
        return array[:, ::-1]
    if orientation == 3:  # upside down
        return array[::-1, ::-1]
    if orientation == 4:  # flipped vertically
        return array[::-1]
    if orientation == 5:  # transpose
        return np.swapaxes(array, 0, 1)
    if orientation == 6:  # needs a quarter turn clockwise
        return np.rot90(array, k=-1)
    if orientation == 7:  # transverse
        return np.swapaxes(array[::-1, ::-1], 0, 1)
    if orientation == 8:  # needs a quarter turn counter-clockwise
        return np.rot90(array, k=1)
    return array


def _split_alpha(img: Image.Image, label: str) -> tuple[Image.Image, np.ndarray | None]:
    """Separate colour from alpha, so ICC conversion never touches alpha.

    The colour image comes back in one of: L, RGB, CMYK, LAB, I;16*, I, F.
    """
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("RGBa", "La"):  # premultiplied alpha: Pillow un-premultiplies
        img = img.convert({"RGBa": "RGBA", "La": "LA"}[mode])
    elif mode in ("RGBX", "YCbCr", "HSV"):
        img = img.convert("RGB")
    elif mode == "L" and "transparency" in img.info:  # grey with a tRNS colour key
        img = img.convert("LA")
    elif mode == "RGB" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode not in {"L", "LA", "RGB", "RGBA", "CMYK", "LAB"} | HIGH_BIT_GRAY:
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageError(f"{label} has an unsupported pixel mode '{mode}'") from exc

    if img.mode in ("LA", "RGBA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        return img.convert(img.mode[:-1]), alpha
    return img, None


# ------------------------------------------------------------------------ resize


def resized_shape(width: int, height: int, long_edge: int) -> tuple[int, int]:
    """(w, h) with the longer side equal to ``long_edge``, aspect kept, each side >= 1."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if long_edge < 1:
        raise ValueError(f"long_edge must be at least 1, got {long_edge}")
    long_side = max(width, height)

    def scale(side: int) -> int:
        # Integer round-half-up avoids float error on the exact cases.
        return max(1, (2 * side * long_edge + long_side) // (2 * long_side))

    if width >= height:
        return long_edge, scale(height)
    return scale(width), long_edge


def resize_long_edge(array: np.ndarray, long_edge: int) -> np.ndarray:
    """Resize an H x W [x C] float array so max(H, W) == ``long_edge``.

    Shrinking uses Lanczos (antialiased), enlarging bicubic, one float plane at
    a time; the filters' ringing is clipped to the input's value range.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim not in (2, 3) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"expected an H x W or H x W x C array, got shape {array.shape}")
    height, width = array.shape[:2]
    new_w, new_h = resized_shape(width, height, long_edge)
    if (new_w, new_h) == (width, height):
        return np.array(array, copy=True)
    resample = (
        Image.Resampling.LANCZOS if long_edge < max(width, height) else Image.Resampling.BICUBIC
    )
    planes = array[..., None] if array.ndim == 2 else array
    out = np.empty((new_h, new_w, planes.shape[2]), dtype=np.float32)
    for c in range(planes.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(planes[..., c]))  # mode 'F'
        out[..., c] = np.asarray(plane.resize((new_w, new_h), resample), dtype=np.float32)
    if array.size:
        np.clip(out, float(array.min()), float(array.max()), out=out)
    return out[..., 0] if array.ndim == 2 else out


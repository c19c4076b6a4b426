"""Image I/O for artistyle: every image read or written goes through here.

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

Precision: 16-bit grayscale (PNG, TIFF) and uncompressed 16-bit RGB/RGBA TIFF
(as :func:`save_image` writes them) keep their full precision. Pillow itself
reduces 16-bit RGB(A) PNG and compressed 16-bit RGB TIFF to 8 bits per channel
and ICC conversion runs at 8 bits, so such files (and any 16-bit file with a
non-sRGB profile) arrive with 8-bit precision. ``bit_depth`` still reports the
source file's depth: 16 for any source with more than 8 bits per channel.

Every unusable input (missing, a folder, unreadable, empty, truncated, not an
image, under :data:`MIN_SIDE` px, over Pillow's decompression-bomb limit) raises
:class:`~artistyle.errors.ImageError` with a one-line message naming the file.

:func:`save_image` picks the format from the extension (:data:`SAVE_FORMATS`),
embeds an sRGB ICC profile, writes atomically (temporary file in the same
folder, then :func:`os.replace`) and never overwrites a file listed in
``protect``. 16-bit output is written for TIFF only: Pillow cannot write 16-bit
RGB at all, so this module writes that baseline TIFF itself, and 16-bit RGB
PNG, JPEG and WebP are refused with an ImageError.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .errors import ImageError

__all__ = [
    "MIN_SIDE",
    "SAVE_FORMATS",
    "LoadedImage",
    "check_output_path",
    "load_image",
    "open_image",
    "resize_long_edge",
    "resized_shape",
    "save_image",
]

MIN_SIDE = 32  # px; smaller images are rejected

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
_ORIENTATION_TAG = 0x0112
# Pillow raw modes that carry 16 bits per channel (PNG, TIFF); 'BGR;16' (5-6-5
# packed BMP pixels) must not match, hence the byte-order letter.
_RAWMODE_16 = re.compile(r";16[BLN]?$")
_RAW_RGB16 = {"RGB;16L", "RGB;16B", "RGB;16N", "RGBA;16L", "RGBA;16B", "RGBA;16N"}
_BYTE_ORDER = {"L": "<", "B": ">", "N": "="}
_HIGH_BIT_GRAY = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


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


def load_image(
    source: str | os.PathLike[str] | Image.Image, *, role: str = "image"
) -> LoadedImage:
    """Decode ``source`` (a path or a PIL image) into a :class:`LoadedImage`.

    ``role`` names the image in error messages ("content image 'x.jpg' ...").
    Raises ImageError for any input that cannot be used.
    """
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", "") or ""
        label = f"{role} '{name}'" if name else f"{role} (in-memory image)"
        img, bit_depth, tiles = _decode(lambda: source, label)
        return _to_loaded(img, label, bit_depth, tiles, fh=None, path=None)

    path, label = Path(os.fspath(source)), f"{role} '{os.fspath(source)}'"
    with _open_checked(path, label) as fh:
        img, bit_depth, tiles = _decode(lambda: Image.open(fh), label)
        return _to_loaded(img, label, bit_depth, tiles, fh=fh, path=path)


def _open_checked(path: Path, label: str) -> BinaryIO:
    """The checked input file, open for reading; ImageError with a specific message otherwise."""
    _check_input_file(path, label)
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except PermissionError as exc:
        raise ImageError(f"{label} cannot be read (permission denied)") from exc
    except OSError as exc:
        raise ImageError(f"{label} cannot be opened ({_reason(exc)})") from exc


def open_image(source: str | os.PathLike[str] | Image.Image, *, role: str = "image") -> Image.Image:
    """Decode ``source`` into a PIL image in its own mode (e.g. a palette mask), with :func:`load_image`'s checks."""
    if isinstance(source, Image.Image):
        return source
    path, label = Path(os.fspath(source)), f"{role} '{os.fspath(source)}'"
    with _open_checked(path, label) as fh:
        img, _, _ = _decode(lambda: Image.open(fh), label)
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
        raise ImageError(f"{label} cannot be accessed ({_reason(exc)})") from exc
    if path.is_dir():
        raise ImageError(f"{label} is a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{label} is not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{label} is empty (0 bytes)")


def _decode(
    opener: Callable[[], Image.Image], label: str
) -> tuple[Image.Image, int, list[tuple]]:
    """Open and fully decode an image, turning every failure into ImageError.

    Returns the image, the source bit depth and its tiles (captured before
    decoding, as Pillow clears them; the 16-bit TIFF reader needs them).
    """
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a file
        # that large is refused just the same.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = opener()
            _check_dimensions(img, label)
            tiles = [tuple(t) for t in (getattr(img, "tile", None) or [])]
            bit_depth = _source_bit_depth(img, tiles)
            # Full decode here, so truncated data fails now and not later.
            # LOAD_TRUNCATED_IMAGES is left alone: a half-grey image is no input.
            img.load()
        except ImageError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageError(_bomb_message(label, exc)) from exc
        except UnidentifiedImageError as exc:
            raise ImageError(f"{label} is not an image file Pillow can read") from exc
        except MemoryError as exc:
            raise ImageError(f"{label} is too large to decode in memory") from exc
        except Exception as exc:
            # Pillow's decoders raise many exception types (OSError, SyntaxError,
            # ValueError, EOFError, struct.error, ...) for damaged files.
            raise ImageError(
                f"{label} could not be decoded; it is truncated or corrupt ({_reason(exc)})"
            ) from exc
    return img, bit_depth, tiles


def _check_dimensions(img: Image.Image, label: str) -> None:
    """Refuse images too small to style or over the decompression-bomb limit."""
    width, height = img.size
    limit = Image.MAX_IMAGE_PIXELS
    # Image.open already checks files; this covers in-memory PIL sources too.
    if limit and width * height > limit:
        raise ImageError(
            f"{label} has {width * height:,} pixels, over the limit of {limit:,} "
            "(Pillow's decompression-bomb guard)"
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
        "(Pillow's decompression-bomb guard)"
    )


def _source_bit_depth(img: Image.Image, tiles: list[tuple]) -> int:
    """16 when the file stores more than 8 bits per channel, else 8."""
    if img.mode in _HIGH_BIT_GRAY:
        return 16
    for tile in tiles:
        rawmode = _tile_rawmode(tile)
        if rawmode and _RAWMODE_16.search(rawmode) and not rawmode.startswith("BGR"):
            return 16
    return 8


def _tile_rawmode(tile: tuple) -> str | None:
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
    tiles: list[tuple],
    *,
    fh: BinaryIO | None,
    path: Path | None,
) -> LoadedImage:
    """Convert a decoded image to the module's float, sRGB, upright form."""
    orientation = _orientation(img)
    icc = img.info.get("icc_profile")

    rgb: np.ndarray | None = None
    alpha: np.ndarray | None = None
    if (
        fh is not None
        and bit_depth == 16
        and img.mode in ("RGB", "RGBA")
        and _profile_is_srgb(icc)
    ):
        # Pillow decoded a 16-bit RGB(A) TIFF to 8 bits; re-read the samples.
        raw = _read_raw_rgb16(fh, tiles, img.size, label)
        if raw is not None:
            rgb = raw[..., :3].astype(np.float32) / 65535.0
            if raw.shape[2] == 4:
                alpha = raw[..., 3].astype(np.float32) / 65535.0

    if rgb is None:
        color, alpha = _split_alpha(img, label)
        rgb = _color_to_srgb(color, icc)

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


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8), 1 when absent or unreadable."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block should not make the image unusable
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
        return array.swapaxes(0, 1)
    if orientation == 6:  # needs a quarter turn clockwise
        return np.rot90(array, k=-1)
    if orientation == 7:  # transverse
        return array[::-1, ::-1].swapaxes(0, 1)
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
    elif mode not in {"L", "LA", "RGB", "RGBA", "CMYK", "LAB"} | _HIGH_BIT_GRAY:
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageError(f"{label} has an unsupported pixel mode '{mode}'") from exc

    if img.mode in ("LA", "RGBA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        return img.convert(img.mode[:-1]), alpha
    return img, None


def _color_to_srgb(color: Image.Image, icc: bytes | None) -> np.ndarray:
    """H x W x 3 float32 sRGB in [0, 1] from a colour image of _split_alpha's modes."""
    mode = color.mode
    space = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}.get(mode)
    if mode in _HIGH_BIT_GRAY:
        space = "GRAY"
    profile = _foreign_profile(icc, space) if space else None

    if profile is not None:
        source = color
        if mode in _HIGH_BIT_GRAY:
            # LittleCMS in Pillow transforms 8-bit data only; precision is lost.
            source = Image.fromarray(np.rint(_gray_to_unit(color) * 255).astype(np.uint8))
        try:
            converted = ImageCms.profileToProfile(
                source, profile, _srgb_profile(), outputMode="RGB",
                renderingIntent=ImageCms.Intent.PERCEPTUAL,
            )
        except ImageCms.PyCMSError:
            # A profile LittleCMS parses but cannot transform with (device link,
            # abstract, no perceptual table...) is treated like an unreadable one.
            converted = None
        if converted is not None:
            return np.asarray(converted, dtype=np.float32) / 255.0

    if mode in _HIGH_BIT_GRAY:
        gray = _gray_to_unit(color)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "L":
        gray = np.asarray(color, dtype=np.float32) / 255.0
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "LAB":
        color = ImageCms.profileToProfile(
            color, ImageCms.createProfile("LAB"), _srgb_profile(), outputMode="RGB"
        )
    elif mode == "CMYK":
        color = color.convert("RGB")
    return np.asarray(color, dtype=np.float32) / 255.0


def _gray_to_unit(img: Image.Image) -> np.ndarray:
    """A high-bit grey image as float32 in [0, 1] (see the module docstring for scales)."""
    values = np.asarray(img).astype(np.float32)
    if img.mode == "F":
        values = np.nan_to_num(values, nan=0.0) / 255.0  # Pillow's own F scale
    else:
        values = values / 65535.0
    return np.clip(values, 0.0, 1.0)


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _parse_profile(icc: bytes | None) -> ImageCms.ImageCmsProfile | None:
    if not icc:
        return None
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return None


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    # sRGB variants all name themselves so ("sRGB IEC61966-2.1", "sRGB built-in");
    # skipping the transform keeps 8-bit values exact and 16-bit precision intact.
    try:
        description = ImageCms.getProfileDescription(profile)
    except ImageCms.PyCMSError:
        return False
    return "srgb" in description.lower()


def _profile_is_srgb(icc: bytes | None) -> bool:
    """True when pixels tagged with ``icc`` need no conversion (none, bad, or sRGB)."""
    profile = _parse_profile(icc)
    return profile is None or _is_srgb(profile)


def _foreign_profile(icc: bytes | None, space: str) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile when it needs converting to sRGB, else None."""
    profile = _parse_profile(icc)
    if profile is None or _is_srgb(profile):
        return None
    # A profile for another colour space than the pixels cannot be applied.
    if profile.profile.xcolor_space.strip() != space:
        return None
    return profile


def _read_raw_rgb16(
    fh: BinaryIO, tiles: list[tuple], size: tuple[int, int], label: str
) -> np.ndarray | None:
    """The 16-bit samples of an uncompressed, interleaved RGB(A) TIFF, or None.

    Pillow keeps only the high byte of each sample; its tiles still say where
    the raw samples are, so they are read here directly.
    """
    if not tiles or any(t[0] != "raw" for t in tiles):
        return None
    rawmodes = {_tile_rawmode(t) for t in tiles}
    if len(rawmodes) != 1 or next(iter(rawmodes)) not in _RAW_RGB16:
        return None
    rawmode = next(iter(rawmodes))
    channels = 4 if rawmode.startswith("RGBA") else 3
    dtype = np.dtype(_BYTE_ORDER[rawmode[-1]] + "u2")
    width, height = size
    out = np.empty((height, width, channels), dtype=np.uint16)
    for _codec, (x0, y0, x1, y1), offset, args in tiles:
        stride, ystep = args[1], args[2]
        tw, th = x1 - x0, y1 - y0
        row_bytes = tw * channels * 2
        stride = stride or row_bytes
        fh.seek(offset)
        need = stride * (th - 1) + row_bytes
        buf = fh.read(need)
        if len(buf) < need:
            raise ImageError(f"{label} is truncated")
        rows = np.frombuffer(buf.ljust(stride * th, b"\0"), np.uint8).reshape(th, stride)
        block = rows[:, :row_bytes].copy().view(dtype).reshape(th, tw, channels)
        out[y0:y1, x0:x1] = block[::-1] if ystep == -1 else block
    return out


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
        return array.copy()
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


# -------------------------------------------------------------------------- save


def check_output_path(
    path: str | os.PathLike[str],
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
    bit_depth: int = 8,
) -> Path:
    """Validate an output path before a long run; return it as a Path.

    Checks the extension (and that ``bit_depth`` suits it), that the folder
    exists and is writable, that the path is not a folder and that it is not
    the same file as any path in ``protect``. Raises ImageError otherwise.
    """
    target = Path(os.fspath(path))
    label = f"output '{os.fspath(path)}'"
    ext = target.suffix.lower()
    if ext not in SAVE_FORMATS:
        what = f"unsupported extension '{target.suffix}'" if ext else "no file extension"
        raise ImageError(f"{label} has {what}; use one of {_SUPPORTED}")
    fmt = SAVE_FORMATS[ext]
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and fmt != "TIFF":
        raise ImageError(f"{label}: 16-bit output is only supported for .tif/.tiff files")
    Image.init()
    if fmt not in Image.SAVE:
        raise ImageError(f"{label}: this Pillow build cannot write {fmt} files")

    parent = target.parent
    if not parent.exists():
        raise ImageError(f"{label}: folder '{parent}' does not exist")
    if not parent.is_dir():
        raise ImageError(f"{label}: '{parent}' is not a folder")
    if target.is_dir():
        raise ImageError(f"{label} is a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImageError(f"{label}: folder '{parent}' is not writable")
    for other in protect:
        if same_file(target, Path(os.fspath(other))):
            raise ImageError(
                f"{label} is the input file '{os.fspath(other)}'; refusing to overwrite an input"
            )
    return target


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (links and case folding included)."""
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    try:
        return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())
    except (OSError, RuntimeError):  # RuntimeError: symlink loop on older Pythons
        return False


def save_image(
    rgb: np.ndarray,
    path: str | os.PathLike[str],
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``rgb`` (H x W x 3, sRGB in [0, 1]) to ``path`` atomically; return the path.

    The format follows the extension (see :data:`SAVE_FORMATS`). JPEG is written
    at quality 95 with 4:4:4 chroma; WebP losslessly, since WebP's lossy mode
    always halves chroma resolution and smears the fine colour texture of
    stylised images (choose .jpg for small lossy files). ``alpha`` (H x W) is
    stored for PNG, TIFF and WebP and dropped for JPEG. ``rgb`` is taken as
    composited on white, as :func:`load_image` returns it, and un-composited
    where 0 < alpha < 1, so the file shown on white looks like ``rgb``.
    ``bit_depth=16`` is supported for TIFF only. Values are clipped and rounded.
    """
    target = check_output_path(path, protect=protect, bit_depth=bit_depth)
    fmt = SAVE_FORMATS[target.suffix.lower()]
    label = f"output '{os.fspath(path)}'"

    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be H x W x 3, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    if fmt in _MAX_SIDE and max(width, height) > _MAX_SIDE[fmt]:
        raise ImageError(
            f"{label} is {width}x{height} px; {fmt} allows at most {_MAX_SIDE[fmt]} px per side"
        )
    rgb = _unit(rgb)
    if alpha is not None and fmt != "JPEG":
        alpha = _unit(np.asarray(alpha, dtype=np.float32))
        if alpha.shape != (height, width):
            raise ValueError(f"alpha must be {height} x {width}, got shape {alpha.shape}")
        rgb = _uncomposite(rgb, alpha)
    else:
        alpha = None

    srgb_icc = _srgb_profile().tobytes()
    planes = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)

    def write(fh: BinaryIO) -> None:
        if bit_depth == 16:
            _write_tiff16(fh, np.rint(planes * 65535.0).astype(np.uint16), srgb_icc)
            return
        img = Image.fromarray(np.rint(planes * 255.0).astype(np.uint8))  # RGB / RGBA
        img.save(fh, format=fmt, icc_profile=srgb_icc, **_save_options(fmt))

    atomic_write(target, write, label)
    return target


def _unit(array: np.ndarray) -> np.ndarray:
    # NaN cannot be rounded to a pixel value; black is the least surprising.
    return np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0)


def _uncomposite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Invert compositing on white: colour c with rgb = c * a + (1 - a)."""
    a = alpha[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        color = (rgb - (1.0 - a)) / a
    # Fully transparent pixels have no defined colour; keep what was given.
    return np.clip(np.where(a > 0, color, rgb), 0.0, 1.0)


def _save_options(fmt: str) -> dict[str, object]:
    if fmt == "JPEG":
        return {"quality": _JPEG_QUALITY, "subsampling": 0, "optimize": True}
    if fmt == "WEBP":
        return {"lossless": True, "quality": 80}  # for lossless, quality = effort
    if fmt == "PNG":
        return {"compress_level": 6}
    return {}  # TIFF: uncompressed, the form every reader accepts


def atomic_write(target: Path, write: Callable[[BinaryIO], None], label: str) -> None:
    """Write through a temporary file in the target's folder, then os.replace it."""
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent
        )
    except OSError as exc:
        raise ImageError(f"{label} cannot be written ({_reason(exc)})") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ImageError(f"{label} cannot be written ({_reason(exc)})") from exc
        raise


def _new_file_mode(target: Path) -> int:
    """Keep an overwritten file's permissions; otherwise 0666 less the umask."""
    with contextlib.suppress(OSError):
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask() -> int:
    # /proc avoids the set-and-restore dance, which races with other threads.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_tiff16(fh: BinaryIO, samples: np.ndarray, icc: bytes) -> None:
    """Write H x W x 3|4 uint16 samples as an uncompressed little-endian baseline TIFF.

    Pillow has no 16-bit RGB mode, so it cannot write this itself. Alpha, if
    present, is tagged as unassociated (ExtraSamples = 2).
    """
    height, width, channels = samples.shape
    data = np.ascontiguousarray(samples, dtype="<u2")
    row_bytes = width * channels * 2
    # Strips of about 256 KiB keep readers' buffers small, as TIFF advises.
    rows_per_strip = max(1, min(height, (256 * 1024) // row_bytes))
    strips = [(y, min(height, y + rows_per_strip)) for y in range(0, height, rows_per_strip)]
    if data.nbytes + len(icc) + 4096 + 8 * len(strips) >= 2**32:
        raise ImageError("image is too large for a 16-bit TIFF (over 4 GiB)")

    n_entries = 15 + (1 if channels == 4 else 0)  # the tags listed below
    ifd_size = 2 + 12 * n_entries + 4
    # Out-of-line values follow the IFD, each at an even offset.
    pos = 8 + ifd_size
    extra = bytearray()

    def put(blob: bytes) -> int:
        nonlocal extra
        offset = pos + len(extra)
        extra += blob
        if len(extra) % 2:
            extra += b"\0"
        return offset

    bits_off = put(struct.pack(f"<{channels}H", *([16] * channels)))
    res_off = put(struct.pack("<II", 72, 1))
    icc_off = put(icc)
    n = len(strips)
    counts = [(y1 - y0) * row_bytes for y0, y1 in strips]
    # One strip's offset and count fit in the IFD entry; several go out of line,
    # and the offsets are only known once everything before the pixels is laid out.
    offsets_off = put(b"\0" * 4 * n) if n > 1 else 0
    counts_off = put(struct.pack(f"<{n}I", *counts)) if n > 1 else 0
    data_start = pos + len(extra)
    strip_offsets = [data_start + y0 * row_bytes for y0, _ in strips]
    if n > 1:
        start = offsets_off - pos
        extra[start : start + 4 * n] = struct.pack(f"<{n}I", *strip_offsets)

    SHORT, LONG, RATIONAL, UNDEFINED = 3, 4, 5, 7
    entries = [
        (256, LONG, 1, width),  # ImageWidth
        (257, LONG, 1, height),  # ImageLength
        (258, SHORT, channels, bits_off),  # BitsPerSample
        (259, SHORT, 1, 1),  # Compression: none
        (262, SHORT, 1, 2),  # PhotometricInterpretation: RGB
        (273, LONG, n, strip_offsets[0] if n == 1 else offsets_off),  # StripOffsets
        (274, SHORT, 1, 1),  # Orientation: top-left
        (277, SHORT, 1, channels),  # SamplesPerPixel
        (278, LONG, 1, rows_per_strip),  # RowsPerStrip
        (279, LONG, n, counts[0] if n == 1 else counts_off),  # StripByteCounts
        (282, RATIONAL, 1, res_off),  # XResolution
        (283, RATIONAL, 1, res_off),  # YResolution
        (284, SHORT, 1, 1),  # PlanarConfiguration: interleaved
        (296, SHORT, 1, 2),  # ResolutionUnit: inch
    ]
    if channels == 4:
        entries.append((338, SHORT, 1, 2))  # ExtraSamples: unassociated alpha
    entries.append((34675, UNDEFINED, len(icc), icc_off))  # ICC profile
    entries.sort()  # TIFF requires ascending tag order
    assert len(entries) == n_entries
    ifd = bytearray(struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if typ == SHORT and count == 1:
            ifd += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, typ, count, value)
    ifd += struct.pack("<I", 0)  # no next IFD

    fh.write(b"II*\0" + struct.pack("<I", 8))
    fh.write(ifd)
    fh.write(extra)
    fh.write(memoryview(data).cast("B"))


def _reason(exc: BaseException) -> str:
    """A short, single-line reason from an exception."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())

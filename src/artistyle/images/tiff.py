"""16-bit RGB(A) TIFF, read and written with tifffile.

Pillow has no 16-bit RGB mode: it decodes such files to 8 bits per channel and
cannot write them at all. tifffile reads any layout (strips or tiles,
interleaved or planar, either byte order) and any compression it has a codec
for: none, Deflate/zlib and LZMA (with or without the horizontal predictor) and
PackBits on its own, and more with the ``imagecodecs`` package (the ``tiff``
extra: ``pip install 'artistyle[tiff]'``). LZW, the usual compression of 16-bit
TIFF from photo editors, is one that needs ``imagecodecs``; without it such a
file is read by Pillow, at 8 bits per channel, as any 16-bit file was before
tifffile came in.
"""

from __future__ import annotations

import math
from typing import BinaryIO

import numpy as np
import tifffile

from ..errors import ImageError

__all__ = ["read_rgb16", "write_rgb16"]

# Strips of about 256 KiB keep readers' buffers small, as the TIFF specification advises.
STRIP_BYTES = 256 * 1024


def write_rgb16(fh: BinaryIO, samples: np.ndarray, icc: bytes) -> None:
    """Write H x W x 3|4 uint16 ``samples`` as an uncompressed little-endian baseline TIFF tagged with ``icc``.

    Uncompressed, because every TIFF reader accepts it. A fourth channel is
    tagged as unassociated (straight) alpha.
    """
    height, width, channels = samples.shape
    data = np.ascontiguousarray(samples, dtype="<u2")
    rows_per_strip = max(1, min(height, STRIP_BYTES // (width * channels * 2)))
    # A classic TIFF addresses 4 GiB; BigTIFF would lift that, but few programs read it.
    if data.nbytes + len(icc) + 4096 + 8 * math.ceil(height / rows_per_strip) >= 2**32:
        raise ImageError("image is too large for a 16-bit TIFF (over 4 GiB)")
    tifffile.imwrite(
        fh,
        data,
        byteorder="<",
        photometric="rgb",
        planarconfig="contig",
        extrasamples=["unassalpha"] if channels == 4 else None,
        rowsperstrip=rows_per_strip,
        resolution=(72, 72),
        resolutionunit="INCH",
        iccprofile=icc,
        metadata=None,  # no JSON ImageDescription
        software=False,
    )


def read_rgb16(fh: BinaryIO, channels: int) -> tuple[np.ndarray, int] | None:
    """The first image of a 16-bit RGB(A) TIFF as stored: H x W x ``channels`` uint16 samples, and its orientation.

    ``channels`` is 3, or 4 to include the alpha. The orientation is the TIFF
    Orientation tag (1..8, as in EXIF; 1 when absent): the samples come in stored
    order, whatever Pillow does with that tag. None when the file is not 16-bit
    RGB(A) or uses a codec neither tifffile nor this module has.
    """
    fh.seek(0)  # tifffile takes a file object's position as the start of the TIFF
    try:
        with tifffile.TiffFile(fh) as tif:
            page = tif.pages[0]
            if not isinstance(page, tifffile.TiffPage) or not _is_rgb16(page, channels):
                return None
            samples = _decode_page(fh, page, tif.byteorder)
            tag = page.tags.get(274)  # Orientation
            orientation = tag.value if tag is not None and tag.value in range(1, 9) else 1
    except MemoryError:
        raise
    except Exception:  # whatever tifffile rejects in a file Pillow read, Pillow's decode stands
        return None
    if samples is None:
        return None
    return np.ascontiguousarray(samples[..., :channels], dtype=np.uint16), int(orientation)


def _decode_page(fh: BinaryIO, page: tifffile.TiffPage, byteorder: str) -> np.ndarray | None:
    """H x W x S samples of ``page``; None for a codec or layout that cannot be decoded here."""
    if page.compression in tifffile.TIFF.DECOMPRESSORS and page.predictor in tifffile.TIFF.PREDICTORS:
        samples = page.asarray()
        if page.axes == "SYX":  # planar: one plane per sample
            return np.moveaxis(samples, 0, -1)
        return samples if page.axes == "YXS" else None
    return None  # e.g. LZW without imagecodecs: the caller falls back to Pillow's 8-bit decode


def _is_rgb16(page: tifffile.TiffPage, channels: int) -> bool:
    """True when ``page`` holds one plane of unsigned 16-bit RGB with at least ``channels`` samples."""
    if page.imagedepth != 1:
        return False
    if page.photometric != tifffile.PHOTOMETRIC.RGB or page.bitspersample != 16:
        return False
    if page.sampleformat != tifffile.SAMPLEFORMAT.UINT or page.samplesperpixel < channels:
        return False
    # Premultiplied alpha would need un-premultiplying; Pillow does not report it as RGBA anyway.
    return channels == 3 or page.extrasamples[:1] != (tifffile.EXTRASAMPLE.ASSOCALPHA,)

"""16-bit RGB(A) TIFF in every layout a user may bring: compressed, planar, tiled, big-endian, LZW.

Pillow decodes all of these to 8 bits per channel; load_image must keep the 16.
The files are made with tifffile (and, for LZW, with the libtiff inside Pillow,
since tifffile cannot write LZW without imagecodecs).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from artistyle.images import load_image

from .conftest import linear_icc

HEIGHT, WIDTH = 50, 40
# One 16-bit step: an 8-bit path cannot tell these samples apart.
STEP = 1 / 65535


def _samples(channels: int = 3, seed: int = 0) -> np.ndarray:
    samples = np.random.default_rng(seed).integers(0, 65536, (HEIGHT, WIDTH, channels), dtype=np.uint16)
    samples[0, :3, 0] = [30000, 30001, 30002]
    if channels == 4:
        samples[..., 3] = np.random.default_rng(seed + 1).integers(20000, 65536, (HEIGHT, WIDTH), dtype=np.uint16)
        samples[:2, :2, 3] = 65535
    return samples


def _write(path: Path, samples: np.ndarray, **options: object) -> Path:
    extrasamples = ["unassalpha"] if samples.shape[2] == 4 else None
    data = np.moveaxis(samples, -1, 0) if options.get("planarconfig") == "separate" else samples
    tifffile.imwrite(path, data, photometric="rgb", extrasamples=extrasamples, metadata=None, **options)
    return path


def _assert_exact(path: Path, samples: np.ndarray) -> None:
    loaded = load_image(path)
    assert loaded.bit_depth == 16
    expected = samples[..., :3] / 65535
    if samples.shape[2] == 4:
        alpha = samples[..., 3] / 65535
        assert loaded.alpha is not None
        np.testing.assert_allclose(loaded.alpha, alpha, atol=1e-7)
        expected = expected * alpha[..., None] + (1 - alpha[..., None])
    np.testing.assert_allclose(loaded.rgb, expected, atol=2e-7)
    first = loaded.rgb[0, :3, 0] if samples.shape[2] == 3 else None
    if first is not None:
        np.testing.assert_allclose(np.diff(first), STEP, rtol=1e-3)  # neighbours one 16-bit step apart


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "zlib"},
        {"compression": "zlib", "predictor": True},
        {"compression": "adobe_deflate"},
        {"compression": "lzma"},
        {"compression": "zlib", "tile": (16, 16)},
        {"compression": "zlib", "planarconfig": "separate"},
        {"planarconfig": "separate"},  # Pillow misreads this one even at 8 bits
        {"byteorder": ">"},
        {"compression": "zlib", "predictor": True, "byteorder": ">"},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_tiff_layouts_keep_precision(tmp_path: Path, options: dict[str, object], channels: int) -> None:
    samples = _samples(channels)
    _assert_exact(_write(tmp_path / "a.tif", samples, **options), samples)


def test_pillow_alone_keeps_8_bits(tmp_path: Path) -> None:
    # What the test above guards against: Pillow's own decode of a compressed 16-bit RGB TIFF.
    samples = _samples()
    path = _write(tmp_path / "a.tif", samples, compression="zlib")
    with Image.open(path) as img:
        img.load()
        assert img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img), samples >> 8)


def _libtiff_tiff16(path: Path, samples: np.ndarray, *, predictor: bool, compression: str = "tiff_lzw") -> Path:
    """A 16-bit RGB TIFF whose strips libtiff (inside Pillow) compressed with LZW or PackBits.

    Pillow writes 16-bit grey so; W x 3 grey samples per row are the bytes of W
    interleaved RGB pixels, so its strips are re-tagged as RGB. With the
    horizontal predictor the stored samples are differences to the same channel
    one pixel left, modulo 2**16.
    """
    stored = samples.copy()
    if predictor:
        stored[:, 1:] = np.diff(samples, axis=1)  # uint16 arithmetic wraps, as the predictor does
    height, width, channels = samples.shape
    gray = Image.fromarray(stored.reshape(height, width * channels).astype("<u2"))
    assert gray.mode == "I;16"
    buffer = io.BytesIO()
    gray.save(buffer, "TIFF", compression=compression)
    raw = buffer.getvalue()
    with tifffile.TiffFile(io.BytesIO(raw)) as tif:
        page = tif.pages[0]
        code = page.compression
        assert code in (tifffile.COMPRESSION.LZW, tifffile.COMPRESSION.PACKBITS)
        strips = [raw[offset : offset + count] for offset, count in zip(page.dataoffsets, page.databytecounts)]
        rows_per_strip = page.rowsperstrip
    # tifffile writes already-compressed strips only under a codec it has: tag them as
    # Deflate, then correct the Compression tag in place.
    tifffile.imwrite(
        path, iter(strips), shape=samples.shape, dtype="<u2", photometric="rgb", compression="zlib",
        predictor=predictor, rowsperstrip=rows_per_strip, byteorder="<", metadata=None,
        extrasamples=["unassalpha"] if channels == 4 else None,
    )
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["Compression"].overwrite(code)
        assert (tif.pages[0].predictor == tifffile.PREDICTOR.HORIZONTAL) == predictor
    return path


@pytest.mark.parametrize("predictor", [False, True])
@pytest.mark.parametrize("channels", [3, 4])
def test_lzw_16bit_tiff_keeps_precision(tmp_path: Path, predictor: bool, channels: int) -> None:
    pytest.importorskip("imagecodecs", reason="LZW needs the tiff extra (imagecodecs)")
    samples = _samples(channels)
    path = _libtiff_tiff16(tmp_path / "a.tif", samples, predictor=predictor)
    with Image.open(path) as img:  # libtiff agrees on the high bytes: the test file is sound
        img.load()
        np.testing.assert_array_equal(np.asarray(img)[..., :3], samples[..., :3] >> 8)
    _assert_exact(path, samples)


def test_lzw_16bit_tiff_many_strips_and_table_resets(tmp_path: Path) -> None:
    pytest.importorskip("imagecodecs", reason="LZW needs the tiff extra (imagecodecs)")
    # 300 x 200 random samples: 360 kB, many LZW code-table resets and several strips.
    rng = np.random.default_rng(7)
    samples = rng.integers(0, 65536, (200, 300, 3), dtype=np.uint16)
    path = _libtiff_tiff16(tmp_path / "a.tif", samples, predictor=True)
    loaded = load_image(path)
    np.testing.assert_allclose(loaded.rgb, samples / 65535, atol=2e-7)


@pytest.mark.parametrize("predictor", [False, True])
def test_packbits_16bit_tiff_keeps_precision(tmp_path: Path, predictor: bool) -> None:
    samples = _samples()
    _assert_exact(_libtiff_tiff16(tmp_path / "a.tif", samples, predictor=predictor, compression="packbits"), samples)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_16bit_tiff_orientation_matches_pillow(tmp_path: Path, orientation: int, compression: str | None) -> None:
    samples = _samples()
    path = _write(tmp_path / "a.tif", samples, compression=compression, extratags=[(274, "H", 1, orientation, True)])
    with Image.open(path) as img:
        upright = np.asarray(ImageOps.exif_transpose(img))  # Pillow's own 8-bit reading, turned upright
    loaded = load_image(path)
    assert loaded.size == (upright.shape[1], upright.shape[0])
    np.testing.assert_array_equal(np.rint(loaded.rgb * 65535).astype(np.uint16) >> 8, upright)
    if orientation == 6:  # a quarter turn clockwise, at full precision
        np.testing.assert_allclose(loaded.rgb, np.rot90(samples, k=-1) / 65535, atol=2e-7)


def test_16bit_tiff_with_foreign_profile_is_converted(tmp_path: Path) -> None:
    # Linear 50 % grey is sRGB 188; the conversion runs at 8 bits, as for any profile.
    samples = np.full((HEIGHT, WIDTH, 3), 128 * 257, np.uint16)
    path = _write(tmp_path / "a.tif", samples, compression="zlib", iccprofile=linear_icc())
    loaded = load_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb, 188 / 255, atol=1.01 / 255)


def test_lzw_16bit_tiff_without_imagecodecs_reads_at_8_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the tiff extra tifffile has no LZW codec: Pillow reads the file, 8 bits per channel.
    samples = _samples()
    path = _libtiff_tiff16(tmp_path / "a.tif", samples, predictor=True)
    decompressors = dict(tifffile.TIFF.DECOMPRESSORS.items()) if hasattr(tifffile.TIFF.DECOMPRESSORS, "items") else {}
    decompressors.pop(tifffile.COMPRESSION.LZW, None)
    monkeypatch.setattr(tifffile.TIFF, "DECOMPRESSORS", decompressors)
    loaded = load_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb, (samples >> 8) / 255, atol=1e-6)

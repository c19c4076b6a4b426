"""Tests for artistyle.images (decode and encode); every image is generated in tmp_path.

16-bit TIFF has its own file, tests/test_tiff16.py; atomic writes are in tests/test_files.py.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageFile, ImageOps, JpegImagePlugin

from artistyle.errors import FileError, ImageError, UsageError
from artistyle.images import (
    MIN_SIDE,
    SAVE_FORMATS,
    LoadedImage,
    check_output_path,
    decode,
    encode_image,
    load_image,
    resize_long_edge,
    resized_shape,
    save_image,
)

from .conftest import linear_icc

# ------------------------------------------------------------------ helpers


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png16(samples: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG built by hand (Pillow cannot write 16-bit RGB)."""
    height, width = samples.shape[:2]
    big = samples.astype(">u2").reshape(height, -1)
    raw = b"".join(b"\0" + big[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _gradient(width: int = 48, height: int = 40) -> np.ndarray:
    """An RGB uint8 test pattern with distinct values per pixel."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5 % 256, y * 6 % 256, (x + y) * 3 % 256], axis=2).astype(np.uint8)


def _save(img: Image.Image, path: Path, **params: object) -> Path:
    img.save(path, **params)
    return path


def _assert_valid(loaded: LoadedImage, size: tuple[int, int]) -> None:
    assert loaded.size == size
    assert loaded.rgb.dtype == np.float32
    assert loaded.rgb.shape == (size[1], size[0], 3)
    assert loaded.rgb.flags.c_contiguous
    assert loaded.rgb.min() >= 0.0 and loaded.rgb.max() <= 1.0
    if loaded.alpha is not None:
        assert loaded.alpha.dtype == np.float32
        assert loaded.alpha.shape == (size[1], size[0])
        assert loaded.alpha.flags.c_contiguous


# ------------------------------------------------------------ load: modes


def test_rgb_png_exact(tmp_path: Path) -> None:
    pixels = _gradient()
    loaded = load_image(_save(Image.fromarray(pixels), tmp_path / "a.png"))
    _assert_valid(loaded, (48, 40))
    np.testing.assert_allclose(loaded.rgb, pixels / 255.0, atol=1e-6)
    assert loaded.alpha is None
    assert loaded.bit_depth == 8
    assert loaded.path == tmp_path / "a.png"


def test_rgb_jpeg_within_tolerance(tmp_path: Path) -> None:
    img = Image.new("RGB", (64, 64), (200, 40, 90))
    loaded = load_image(_save(img, tmp_path / "a.jpg", quality=95))
    np.testing.assert_allclose(loaded.rgb, np.full((64, 64, 3), [200, 40, 90]) / 255.0, atol=4 / 255)
    assert loaded.bit_depth == 8


def test_accepts_str_path_and_pil_image(tmp_path: Path) -> None:
    img = Image.fromarray(_gradient())
    from_str = load_image(str(_save(img, tmp_path / "a.png")))
    from_pil = load_image(img)
    np.testing.assert_array_equal(from_str.rgb, from_pil.rgb)
    assert from_pil.path is None


def test_mode_1(tmp_path: Path) -> None:
    img = Image.new("1", (40, 40), 0)
    img.paste(1, (0, 0, 20, 40))
    loaded = load_image(_save(img, tmp_path / "a.png"))
    assert np.all(loaded.rgb[:, :20] == 1.0) and np.all(loaded.rgb[:, 20:] == 0.0)


def test_mode_l(tmp_path: Path) -> None:
    loaded = load_image(_save(Image.new("L", (40, 40), 100), tmp_path / "a.png"))
    np.testing.assert_allclose(loaded.rgb, np.full((40, 40, 3), 100 / 255.0), atol=1e-6)


def _palette_image() -> Image.Image:
    img = Image.new("P", (40, 40), 0)
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.paste(1, (0, 0, 20, 20))
    img.paste(2, (20, 20, 40, 40))
    return img


def test_mode_p(tmp_path: Path) -> None:
    loaded = load_image(_save(_palette_image(), tmp_path / "a.png"))
    np.testing.assert_array_equal(loaded.rgb[0, 0], [0, 1, 0])
    np.testing.assert_array_equal(loaded.rgb[30, 30], [0, 0, 1])
    np.testing.assert_array_equal(loaded.rgb[0, 30], [1, 0, 0])
    assert loaded.alpha is None


@pytest.mark.parametrize("ext", ["png", "gif"])
def test_mode_p_with_transparency(tmp_path: Path, ext: str) -> None:
    # Index 0 (red) is transparent: it becomes white in rgb and 0 in alpha.
    loaded = load_image(_save(_palette_image(), tmp_path / f"a.{ext}", transparency=0))
    assert loaded.alpha is not None
    assert loaded.alpha[0, 30] == 0.0 and loaded.alpha[0, 0] == 1.0
    np.testing.assert_array_equal(loaded.rgb[0, 30], [1, 1, 1])
    np.testing.assert_array_equal(loaded.rgb[0, 0], [0, 1, 0])


def test_mode_la_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("LA", (40, 40), (0, 255))
    img.paste((0, 0), (0, 0, 20, 40))  # transparent black
    img.paste((0, 128), (20, 0, 30, 40))  # half-transparent black
    loaded = load_image(_save(img, tmp_path / "a.png"))
    assert loaded.alpha is not None
    np.testing.assert_array_equal(loaded.rgb[0, 0], [1, 1, 1])
    np.testing.assert_allclose(loaded.rgb[0, 25], 1 - 128 / 255, atol=1e-6)
    np.testing.assert_array_equal(loaded.rgb[0, 35], [0, 0, 0])
    np.testing.assert_allclose(loaded.alpha[0, [0, 25, 35]], [0, 128 / 255, 1], atol=1e-6)


def test_mode_rgba_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (40, 40), (255, 0, 0, 255))
    img.paste((0, 0, 255, 51), (0, 0, 20, 40))  # blue at alpha 0.2
    loaded = load_image(_save(img, tmp_path / "a.png"))
    _assert_valid(loaded, (40, 40))
    assert loaded.alpha is not None
    np.testing.assert_allclose(loaded.alpha[0, 0], 0.2, atol=1e-6)
    np.testing.assert_allclose(loaded.rgb[0, 0], [0.8, 0.8, 1.0], atol=1e-6)
    np.testing.assert_array_equal(loaded.rgb[0, 30], [1, 0, 0])


def test_opaque_alpha_is_none(tmp_path: Path) -> None:
    loaded = load_image(_save(Image.new("RGBA", (40, 40), (1, 2, 3, 255)), tmp_path / "a.png"))
    assert loaded.alpha is None


@pytest.mark.parametrize(("mode", "key"), [("L", 10), ("RGB", (10, 20, 30))])
def test_colour_key_transparency(tmp_path: Path, mode: str, key: int | tuple[int, ...]) -> None:
    img = Image.new(mode, (40, 40), key)
    img.paste(200 if mode == "L" else (200, 0, 0), (20, 0, 40, 40))
    loaded = load_image(_save(img, tmp_path / "a.png", transparency=key))
    assert loaded.alpha is not None
    assert loaded.alpha[0, 0] == 0.0 and loaded.alpha[0, 30] == 1.0
    np.testing.assert_array_equal(loaded.rgb[0, 0], [1, 1, 1])


def test_mode_pa_in_memory() -> None:
    img = _palette_image().convert("PA")
    img.putpixel((0, 0), (1, 0))  # green, fully transparent
    loaded = load_image(img)
    assert loaded.alpha is not None and loaded.alpha[0, 0] == 0.0
    np.testing.assert_array_equal(loaded.rgb[0, 0], [1, 1, 1])
    np.testing.assert_array_equal(loaded.rgb[30, 30], [0, 0, 1])


@pytest.mark.parametrize("mode", ["RGBX", "YCbCr", "RGBa", "La", "HSV"])
def test_other_pillow_modes_in_memory(mode: str) -> None:
    img = Image.new("RGB", (40, 40), (120, 120, 120)).convert(mode)
    loaded = load_image(img)
    np.testing.assert_allclose(loaded.rgb, 120 / 255.0, atol=2 / 255)


def test_mode_lab_in_memory() -> None:
    loaded = load_image(Image.new("LAB", (40, 40), (128, 128, 128)))  # L* 50, neutral
    np.testing.assert_allclose(loaded.rgb[0, 0], 119 / 255.0, atol=2 / 255)


@pytest.mark.parametrize("ext", ["jpg", "tif"])
def test_mode_cmyk(tmp_path: Path, ext: str) -> None:
    img = Image.new("CMYK", (40, 40), (0, 0, 0, 0))  # white
    img.paste((255, 0, 0, 0), (0, 0, 20, 40))  # cyan
    img.paste((0, 0, 0, 255), (20, 0, 40, 20))  # black
    loaded = load_image(_save(img, tmp_path / f"a.{ext}"))
    tol = 6 / 255 if ext == "jpg" else 1e-6
    np.testing.assert_allclose(loaded.rgb[30, 5], [0, 1, 1], atol=tol)
    np.testing.assert_allclose(loaded.rgb[5, 35], [0, 0, 0], atol=tol)
    np.testing.assert_allclose(loaded.rgb[35, 35], [1, 1, 1], atol=tol)


def test_adobe_inverted_cmyk_jpeg_matches_pillow(tmp_path: Path) -> None:
    # libjpeg writes CMYK with an Adobe marker (inverted data); Pillow undoes it.
    img = Image.new("CMYK", (40, 40), (30, 60, 90, 20))
    path = _save(img, tmp_path / "a.jpg", quality=100)
    with Image.open(path) as reopened:
        assert reopened.mode == "CMYK"
        expected = np.asarray(reopened.convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(load_image(path).rgb, expected, atol=1e-6)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_gray_keeps_precision(tmp_path: Path, ext: str) -> None:
    values = (np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) * 37 + 1000).astype(np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    loaded = load_image(_save(img, tmp_path / f"a.{ext}"))
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb[..., 0], values / 65535.0, atol=1e-7)
    np.testing.assert_array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])
    # Neighbouring 16-bit values stay distinct: more than 8 bits survive.
    assert loaded.rgb[0, 1, 0] - loaded.rgb[0, 0, 0] == pytest.approx(37 / 65535, abs=1e-7)


def test_16bit_gray_big_endian_in_memory() -> None:
    values = np.full((40, 40), 40_000, dtype=">u2")
    img = Image.fromarray(values)
    assert img.mode == "I;16B"
    loaded = load_image(img)
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb, 40_000 / 65535.0, atol=1e-7)


def test_mode_i_uses_16bit_scale(tmp_path: Path) -> None:
    values = np.full((40, 40), 30_000, dtype=np.int32)
    values[0, 0] = 70_000  # over 16 bits: clipped
    path = _save(Image.fromarray(values), tmp_path / "a.tif")
    with Image.open(path) as reopened:
        assert reopened.mode == "I"
    loaded = load_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb[1, 1], 30_000 / 65535.0, atol=1e-7)
    assert loaded.rgb[0, 0, 0] == 1.0


def test_mode_f_uses_pillow_scale(tmp_path: Path) -> None:
    values = np.full((40, 40), 63.75, dtype=np.float32)
    path = _save(Image.fromarray(values), tmp_path / "a.tif")
    loaded = load_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb, 0.25, atol=1e-7)


@pytest.mark.parametrize(("color_type", "channels"), [(2, 3), (6, 4), (4, 2)])
def test_16bit_color_png_is_read_at_8_bits(tmp_path: Path, color_type: int, channels: int) -> None:
    samples = np.full((40, 40, channels), 0x8040, dtype=np.uint16)
    if channels in (2, 4):
        samples[..., -1] = 0xFFFF
    path = tmp_path / "a.png"
    path.write_bytes(_png16(samples, color_type))
    loaded = load_image(path)
    assert loaded.bit_depth == 16  # the source's depth, though Pillow keeps 8 bits
    np.testing.assert_allclose(loaded.rgb, 0x8040 / 65535.0, atol=1 / 255)
    assert loaded.alpha is None


# ------------------------------------------------------------ load: colour


def test_srgb_tagged_image_loads_unchanged(tmp_path: Path) -> None:
    pixels = _gradient()
    path = _save(Image.fromarray(pixels), tmp_path / "a.png", icc_profile=_srgb_icc())
    np.testing.assert_array_equal(load_image(path).rgb, pixels.astype(np.float32) / 255.0)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_foreign_icc_profile_converted_to_srgb(tmp_path: Path, ext: str) -> None:
    # Linear 50 % grey is sRGB 188; 0 and 255 stay put.
    img = Image.new("RGB", (40, 40), (128, 0, 255))
    path = _save(img, tmp_path / f"a.{ext}", icc_profile=linear_icc())
    rgb = load_image(path).rgb
    tol = 3 / 255 if ext == "jpg" else 1.01 / 255
    np.testing.assert_allclose(rgb[20, 20], [188 / 255, 0, 1], atol=tol)


def test_icc_profile_keeps_alpha(tmp_path: Path) -> None:
    img = Image.new("RGBA", (40, 40), (128, 128, 128, 255))
    img.paste((128, 128, 128, 0), (0, 0, 10, 10))
    loaded = load_image(_save(img, tmp_path / "a.png", icc_profile=linear_icc()))
    assert loaded.alpha is not None and loaded.alpha[0, 0] == 0 and loaded.alpha[20, 20] == 1
    np.testing.assert_allclose(loaded.rgb[20, 20], 188 / 255, atol=1.01 / 255)
    np.testing.assert_array_equal(loaded.rgb[0, 0], [1, 1, 1])


def test_gray_icc_profile_converted_to_srgb(tmp_path: Path) -> None:
    path = _save(Image.new("L", (40, 40), 128), tmp_path / "a.png", icc_profile=linear_icc("GRAY"))
    np.testing.assert_allclose(load_image(path).rgb, 188 / 255, atol=1.01 / 255)


def test_16bit_gray_with_foreign_profile_is_converted(tmp_path: Path) -> None:
    img = Image.fromarray(np.full((40, 40), 128 * 257, dtype=np.uint16))
    loaded = load_image(_save(img, tmp_path / "a.png", icc_profile=linear_icc("GRAY")))
    assert loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.rgb, 188 / 255, atol=1.01 / 255)


def test_untransformable_profile_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise ImageCms.PyCMSError("cannot build transform")

    monkeypatch.setattr(ImageCms, "profileToProfile", fail)
    path = _save(Image.new("RGB", (40, 40), (128, 0, 0)), tmp_path / "a.png", icc_profile=linear_icc())
    np.testing.assert_allclose(load_image(path).rgb[0, 0], [128 / 255, 0, 0], atol=1e-6)


def test_mismatched_or_corrupt_profile_is_ignored(tmp_path: Path) -> None:
    gray = _save(Image.new("L", (40, 40), 77), tmp_path / "g.png", icc_profile=linear_icc())
    np.testing.assert_allclose(load_image(gray).rgb, 77 / 255, atol=1e-6)
    bad = _save(Image.new("RGB", (40, 40), (77, 0, 0)), tmp_path / "b.png", icc_profile=b"junk" * 40)
    np.testing.assert_allclose(load_image(bad).rgb[0, 0], [77 / 255, 0, 0], atol=1e-6)


def test_exif_orientation_6_rotates_jpeg(tmp_path: Path) -> None:
    img = Image.new("RGB", (64, 48), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 12, 12))  # mark the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = load_image(_save(img, tmp_path / "a.jpg", exif=exif, quality=95))
    assert loaded.size == (48, 64)
    # Turning clockwise carries the top-left corner to the top-right.
    np.testing.assert_allclose(loaded.rgb[2:10, -10:-2].mean(axis=(0, 1)), [1, 0, 0], atol=0.05)
    np.testing.assert_allclose(loaded.rgb[2:10, 2:10].mean(axis=(0, 1)), [1, 1, 1], atol=0.05)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = _gradient(50, 36)
    alpha = np.tile(np.linspace(10, 250, 50, dtype=np.uint8), (36, 1))
    img = Image.fromarray(np.dstack([pixels, alpha]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(img, tmp_path / "a.png", exif=exif)
    with Image.open(path) as reopened:
        expected = ImageOps.exif_transpose(reopened)
    loaded = load_image(path)
    assert loaded.size == expected.size
    assert loaded.alpha is not None
    np.testing.assert_allclose(
        loaded.alpha, np.asarray(expected.getchannel("A"), dtype=np.float32) / 255, atol=1e-6
    )
    white = Image.new("RGBA", expected.size, (255, 255, 255, 255))
    composited = np.asarray(Image.alpha_composite(white, expected).convert("RGB")) / 255.0
    np.testing.assert_allclose(loaded.rgb, composited, atol=1.01 / 255)


# ------------------------------------------------------------ load: bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"content image '.*nope\.jpg' does not exist"):
        load_image(tmp_path / "nope.jpg", role="content image")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"'.*e\.png' is empty"):
        load_image(tmp_path / "e.png")


def test_text_file(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_text("not an image\n" * 20)
    with pytest.raises(ImageError, match=r"style image '.*x\.jpg' is not an image file"):
        load_image(tmp_path / "x.jpg", role="style image")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path: Path, fmt: str) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, fmt)
    data = buf.getvalue()
    path = tmp_path / f"t.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


def test_too_small(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (20, 20)), tmp_path / "s.png")
    with pytest.raises(ImageError, match=r"is 20x20 px; at least 32 px per side are needed"):
        load_image(path)
    with pytest.raises(ImageError, match=r"is 100x31 px"):
        load_image(Image.new("RGB", (100, MIN_SIDE - 1)))
    assert load_image(Image.new("RGB", (MIN_SIDE, MIN_SIDE))).size == (MIN_SIDE, MIN_SIDE)


@pytest.mark.parametrize(("side", "pixels"), [(40, "1,600"), (50, "2,500")])
def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int, pixels: str) -> None:
    # 40x40 only warns in Pillow (under twice the limit), 50x50 raises: both refused.
    path = _save(Image.new("RGB", (side, side)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=rf"has {pixels} pixels, over the limit of 1,000"):
        load_image(path)
    with pytest.raises(ImageError, match="over the limit of 1,000"):
        load_image(Image.new("RGB", (side, side)))


def test_bomb_limit_is_not_changed_globally(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    load_image(_save(Image.new("RGB", (40, 40)), tmp_path / "a.png"))
    assert before == Image.MAX_IMAGE_PIXELS and before


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (40, 40)), tmp_path / "a.png")

    def deny(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode, "open", deny, raising=False)
    with pytest.raises(ImageError, match="cannot be read \\(permission denied\\)"):
        load_image(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied_real(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (40, 40)), tmp_path / "a.png")
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match="permission denied"):
            load_image(path)
    finally:
        path.chmod(0o644)


def test_image_error_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        load_image(tmp_path / "missing.png")


# --------------------------------------------------------------------- save


def _read_back(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".webp", ".PNG"])
def test_save_lossless_formats_round_trip(tmp_path: Path, ext: str) -> None:
    rgb = _gradient().astype(np.float32) / 255.0
    out = save_image(rgb, tmp_path / f"out{ext}")
    assert out == tmp_path / f"out{ext}"
    np.testing.assert_array_equal(_read_back(out), rgb)
    np.testing.assert_array_equal(load_image(out).rgb, rgb)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".JPG"])
def test_save_jpeg(tmp_path: Path, ext: str) -> None:
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    rgb = np.stack([x / 47, y / 39, (x + y) / 86], axis=2)  # smooth, as JPEG likes
    out = save_image(rgb, tmp_path / f"out{ext}")
    back = _read_back(out)
    assert np.abs(back - rgb).max() <= 4 / 255
    assert np.abs(back - rgb).mean() <= 1 / 255
    with Image.open(out) as img:
        assert img.format == "JPEG"
        assert JpegImagePlugin.get_sampling(img) == 0  # 4:4:4
        # libjpeg's quality 95 scales the base tables by 0.1: the first entry is 2.
        assert img.quantization[0][0] == 2


@pytest.mark.parametrize("ext", sorted(SAVE_FORMATS))
def test_save_embeds_srgb_profile(tmp_path: Path, ext: str) -> None:
    out = save_image(np.full((40, 40, 3), 0.5, np.float32), tmp_path / f"out{ext}")
    with Image.open(out) as img:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
    assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_save_rounds_and_clips(tmp_path: Path) -> None:
    rgb = np.zeros((40, 40, 3), np.float32)
    rgb[0, 0] = [100.6 / 255, -0.5, 1.5]
    rgb[0, 1] = [np.nan, 100.4 / 255, 1.0]
    out = save_image(rgb, tmp_path / "out.png")
    with Image.open(out) as img:
        assert img.getpixel((0, 0)) == (101, 0, 255)
        assert img.getpixel((1, 0)) == (0, 100, 255)


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_save_restores_alpha(tmp_path: Path, ext: str) -> None:
    rgba = np.dstack([_gradient(), np.tile(np.arange(40, 240, 5, dtype=np.uint8)[:, None], (1, 48))])
    src = _save(Image.fromarray(rgba), tmp_path / "in.png")
    loaded = load_image(src)
    assert loaded.alpha is not None
    out = save_image(loaded.rgb, tmp_path / f"out{ext}", alpha=loaded.alpha)
    with Image.open(out) as img:
        assert img.mode == "RGBA"
        back = np.asarray(img).astype(int)
    # Un-compositing from white gives back the stored colours.
    np.testing.assert_allclose(back, rgba.astype(int), atol=1)
    again = load_image(out)
    np.testing.assert_allclose(again.rgb, loaded.rgb, atol=1.5 / 255)


def test_save_alpha_zero_keeps_given_colour(tmp_path: Path) -> None:
    rgb = np.full((40, 40, 3), 0.25, np.float32)
    alpha = np.zeros((40, 40), np.float32)
    out = save_image(rgb, tmp_path / "out.png", alpha=alpha)
    with Image.open(out) as img:
        assert img.getpixel((0, 0)) == (64, 64, 64, 0)


def test_save_jpeg_drops_alpha(tmp_path: Path) -> None:
    out = save_image(
        np.full((40, 40, 3), 0.5, np.float32), tmp_path / "out.jpg", alpha=np.zeros((40, 40), np.float32)
    )
    with Image.open(out) as img:
        assert img.mode == "RGB"


def test_save_16bit_tiff_keeps_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.random((70, 50, 3)).astype(np.float32)
    rgb[0, 0] = np.array([32768, 32769, 32770]) / 65535  # closer than one 8-bit step
    expected = np.rint(rgb * 65535).astype(np.uint16)
    out = save_image(rgb, tmp_path / "out.tif", bit_depth=16)
    loaded = load_image(out)
    assert loaded.bit_depth == 16
    assert np.abs(loaded.rgb - rgb).max() <= 0.5 / 65535 + 1e-7
    assert len(set(loaded.rgb[0, 0].tolist())) == 3
    # tifffile reads every sample back exactly, as an RGB image tagged sRGB.
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.RGB and page.bitspersample == 16
        np.testing.assert_array_equal(page.asarray(), expected)
        assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(page.iccprofile)))
    # Pillow, an independent reader, sees the same image (keeping the high byte of each sample).
    with Image.open(out) as img:
        assert img.mode == "RGB" and img.size == (50, 70)
        img.load()
        np.testing.assert_array_equal(np.asarray(img), (expected >> 8).astype(np.uint8))
        assert "sRGB" in ImageCms.getProfileDescription(
            ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        )


def test_save_16bit_tiff_with_alpha_many_strips(tmp_path: Path) -> None:
    # 600 x 400 RGBA is 1.9 MB of samples: several 256 KiB strips.
    rng = np.random.default_rng(4)
    color = rng.random((400, 600, 3)).astype(np.float32)
    alpha = rng.uniform(0.2, 1.0, (400, 600)).astype(np.float32)
    alpha[:, :10] = 1.0
    composited = color * alpha[..., None] + (1 - alpha[..., None])
    out = save_image(composited, tmp_path / "out.tiff", alpha=alpha, bit_depth=16)
    with Image.open(out) as img:
        assert img.mode == "RGBA" and len(img.tile) > 1
        img.load()
        pillow_alpha = np.asarray(img.getchannel("A"))
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,) and len(page.dataoffsets) > 1
        samples = page.asarray()
    assert samples.shape == (400, 600, 4)
    np.testing.assert_array_equal(samples[..., 3], np.rint(alpha * 65535).astype(np.uint16))
    np.testing.assert_array_equal(pillow_alpha, samples[..., 3] >> 8)
    # Straight colour in the file: composited on white it gives back what was saved.
    a = samples[..., 3:] / 65535
    np.testing.assert_allclose(samples[..., :3] / 65535 * a + (1 - a), composited, atol=4 / 65535)
    loaded = load_image(out)
    assert loaded.alpha is not None and loaded.bit_depth == 16
    np.testing.assert_allclose(loaded.alpha, alpha, atol=0.5 / 65535 + 1e-7)
    np.testing.assert_allclose(loaded.rgb, composited, atol=4 / 65535)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_save_16bit_refused_outside_tiff(tmp_path: Path, ext: str) -> None:
    with pytest.raises(ImageError, match=r"16-bit output is only supported for \.tif/\.tiff"):
        save_image(np.zeros((40, 40, 3), np.float32), tmp_path / f"out{ext}", bit_depth=16)
    assert list(tmp_path.iterdir()) == []


def test_save_new_file_mode_follows_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        out = save_image(np.zeros((40, 40, 3), np.float32), tmp_path / "out.png")
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o640  # 0666 less the umask, as a plain open() makes it


def test_save_overwrite_keeps_the_file_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    out.chmod(0o604)
    save_image(np.zeros((40, 40, 3), np.float32), out)
    assert out.stat().st_mode & 0o777 == 0o604


def test_save_failure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")

    def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(FileError, match=r"output '.*out\.png' cannot be written \(No space left"):
        save_image(np.zeros((40, 40, 3), np.float32), out)
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_temp_file_not_creatable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", deny)
    with pytest.raises(FileError, match=r"cannot be written \(Permission denied\)"):
        save_image(np.zeros((40, 40, 3), np.float32), tmp_path / "out.png")


def test_save_non_os_error_cleans_up_and_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_save(self: Image.Image, *args: object, **kwargs: object) -> None:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(RuntimeError, match="encoder bug"):
        save_image(np.zeros((40, 40, 3), np.float32), tmp_path / "out.webp")
    assert list(tmp_path.iterdir()) == []


def test_save_overwrites_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    save_image(np.ones((40, 40, 3), np.float32), out)
    np.testing.assert_array_equal(_read_back(out), 1.0)


def test_save_refuses_to_overwrite_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _save(Image.new("RGB", (40, 40), (9, 9, 9)), tmp_path / "content.png")
    before = src.read_bytes()
    rgb = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(ImageError, match="refusing to overwrite an input"):
        save_image(rgb, src, protect=[tmp_path / "style.jpg", src])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ImageError, match="refusing to overwrite an input"):
        save_image(rgb, "./sub/../content.png", protect=[str(src)])
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(ImageError, match="refusing to overwrite an input"):
        save_image(rgb, link, protect=["content.png"])
    assert src.read_bytes() == before


def test_save_rejects_bad_array_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="H x W x 3"):
        save_image(np.zeros((40, 40), np.float32), tmp_path / "out.png")
    with pytest.raises(ValueError, match="alpha must be"):
        save_image(np.zeros((40, 40, 3), np.float32), tmp_path / "out.png", alpha=np.zeros((4, 4)))


def test_save_webp_side_limit(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="WEBP allows at most 16383 px"):
        save_image(np.zeros((1, 16_384, 3), np.float32), tmp_path / "out.webp")


# ---------------------------------------------------------------- encode_image


def _rgba_test_image() -> tuple[np.ndarray, np.ndarray]:
    """Composited rgb with a partly transparent alpha, as load_image returns them."""
    color = _gradient().astype(np.float32) / 255.0
    alpha = np.tile(np.linspace(0.0, 1.0, 48, dtype=np.float32), (40, 1))
    return color * alpha[..., None] + (1 - alpha[..., None]), alpha


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif"])
def test_encode_image_gives_the_bytes_save_image_writes(tmp_path: Path, ext: str) -> None:
    rgb, alpha = _rgba_test_image()
    saved = save_image(rgb, tmp_path / f"out{ext}", alpha=alpha).read_bytes()
    assert encode_image(rgb, ext[1:], alpha=alpha) == saved
    assert encode_image(rgb, ext.upper(), alpha=alpha) == saved
    opaque = save_image(rgb, tmp_path / f"opaque{ext}").read_bytes()
    assert encode_image(rgb, ext) == opaque
    assert (opaque == saved) == (ext == ".jpg")  # only JPEG drops the alpha


def test_encode_image_16bit_tiff_and_format_names(tmp_path: Path) -> None:
    rgb, alpha = _rgba_test_image()
    saved = save_image(rgb, tmp_path / "out.tiff", alpha=alpha, bit_depth=16).read_bytes()
    assert encode_image(rgb, "TIFF", alpha=alpha, bit_depth=16) == saved
    assert encode_image(rgb, "JPEG") == save_image(rgb, tmp_path / "out.jpeg").read_bytes()
    with Image.open(io.BytesIO(encode_image(rgb, "webp"))) as img:
        assert img.format == "WEBP"


def test_encode_image_refuses_what_save_image_refuses() -> None:
    rgb = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(ImageError, match=r"unsupported image format 'gif'; use one of \.jpeg, \.jpg"):
        encode_image(rgb, "gif")
    with pytest.raises(ImageError, match=r"16-bit output is only supported for \.tif/\.tiff"):
        encode_image(rgb, "png", bit_depth=16)
    with pytest.raises(ImageError, match="WEBP allows at most 16383 px"):
        encode_image(np.zeros((1, 16_384, 3), np.float32), "webp")
    with pytest.raises(ValueError, match="H x W x 3"):
        encode_image(np.zeros((40, 40), np.float32), "png")


def test_encode_image_of_a_pil_image_keeps_its_pixels(tmp_path: Path) -> None:
    levels = np.tile(np.arange(256, dtype=np.uint8), (40, 1))
    pixels = np.dstack([levels, levels[:, ::-1], np.roll(levels, 7, axis=1)])
    for data in (encode_image(Image.fromarray(pixels), "png"), encode_image(Image.fromarray(pixels), "tif")):
        with Image.open(io.BytesIO(data)) as img:
            assert img.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(img), pixels)  # all 256 levels survive exactly
    assert encode_image(Image.fromarray(pixels), "png") == save_image(
        Image.fromarray(pixels), tmp_path / "pil.png"
    ).read_bytes()


def test_encode_image_of_a_pil_rgba_image() -> None:
    rgba = np.dstack([_gradient(), np.tile(np.arange(0, 240, 5, dtype=np.uint8), (40, 1))])
    image = Image.fromarray(rgba)
    with Image.open(io.BytesIO(encode_image(image, "png"))) as img:
        assert img.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(img), rgba)  # straight colours, as the image holds them
    with Image.open(io.BytesIO(encode_image(image, "jpg"))) as img:
        assert img.mode == "RGB"
        a = rgba[..., 3:] / 255
        on_white = rgba[..., :3] * a + 255 * (1 - a)
        assert np.abs(np.asarray(img).astype(float) - on_white).mean() < 2  # JPEG shows it on white
    with pytest.raises(ValueError, match="carries its own"):
        encode_image(image, "png", alpha=np.ones((40, 48), np.float32))


# -------------------------------------------------------- check_output_path


@pytest.mark.parametrize("name", ["out.gif", "out.bmp", "out"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(ImageError, match=r"(unsupported extension|no file extension).*\.jpg.*\.png.*\.webp"):
        check_output_path(tmp_path / name)
    with pytest.raises(ImageError, match="use one of"):
        save_image(np.zeros((40, 40, 3), np.float32), tmp_path / name)


def test_missing_output_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"folder '.*nowhere' does not exist"):
        check_output_path(tmp_path / "nowhere" / "out.png")
    with pytest.raises(ImageError, match="does not exist"):
        save_image(np.zeros((40, 40, 3), np.float32), tmp_path / "nowhere" / "out.png")


def test_output_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "x.png").mkdir()
    with pytest.raises(ImageError, match="is a folder"):
        check_output_path(tmp_path / "x.png")


def test_output_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="is not a folder"):
        check_output_path(tmp_path / "file" / "out.png")


def test_output_folder_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    with pytest.raises(ImageError, match="is not writable"):
        check_output_path(tmp_path / "out.png")


def test_check_output_path_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _save(Image.new("RGB", (40, 40)), tmp_path / "in.png")
    assert check_output_path(tmp_path / "out.TIFF", protect=[src], bit_depth=16) == tmp_path / "out.TIFF"
    monkeypatch.chdir(tmp_path)
    assert check_output_path("out.jpg") == Path("out.jpg")
    assert list(tmp_path.iterdir()) == [src]  # validation writes nothing


@pytest.mark.parametrize("ext", sorted(SAVE_FORMATS))
def test_each_extension_is_written_in_the_format_pillow_detects(tmp_path: Path, ext: str) -> None:
    out = save_image(np.full((40, 40, 3), 0.5, np.float32), tmp_path / f"out{ext.upper()}")
    with Image.open(out) as img:  # Pillow detects the format from the bytes, not the name
        assert img.format == {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, ext[1:].upper())
        assert img.size == (40, 40)
    assert set(SAVE_FORMATS) == {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


# -------------------------------------------------------------------- resize


@pytest.mark.parametrize(
    ("shape", "long_edge", "expected"),
    [
        ((100, 200, 3), 50, (25, 50, 3)),  # landscape
        ((200, 100, 3), 50, (50, 25, 3)),  # portrait
        ((100, 100), 64, (64, 64)),  # square, 2-D
        ((300, 400, 3), 800, (600, 800, 3)),  # enlarging
        ((1, 1000), 10, (1, 10)),  # short side stays at least 1
    ],
)
def test_resize_long_edge_shapes(shape: tuple[int, ...], long_edge: int, expected: tuple[int, ...]) -> None:
    out = resize_long_edge(np.random.default_rng(0).random(shape, dtype=np.float32), long_edge)
    assert out.shape == expected
    assert out.dtype == np.float32


@pytest.mark.parametrize("size", [(333, 517), (517, 333), (1001, 999), (37, 2000), (640, 480)])
@pytest.mark.parametrize("long_edge", [1, 7, 255, 512, 1023])
def test_resized_shape_exact_long_edge(size: tuple[int, int], long_edge: int) -> None:
    width, height = size
    new_w, new_h = resized_shape(width, height, long_edge)
    assert max(new_w, new_h) == long_edge
    assert (new_w >= new_h) == (width >= height) or new_w == new_h
    assert min(new_w, new_h) >= 1
    ideal = min(width, height) * long_edge / max(width, height)
    assert abs(min(new_w, new_h) - max(1.0, ideal)) <= 0.5  # short side rounded
    out = resize_long_edge(np.zeros((height, width), np.float32), long_edge)
    assert out.shape == (new_h, new_w)


def test_resized_shape_rounds() -> None:
    assert resized_shape(640, 480, 100) == (100, 75)
    assert resized_shape(3, 2, 4) == (4, 3)  # 2.67 -> 3
    assert resized_shape(200, 101, 100) == (100, 51)  # 50.5 rounds up


def test_resize_keeps_values_and_range() -> None:
    flat = np.full((90, 120, 3), 0.3, np.float32)
    np.testing.assert_allclose(resize_long_edge(flat, 40), 0.3, atol=1e-6)
    np.testing.assert_allclose(resize_long_edge(flat, 400), 0.3, atol=1e-6)
    # Hard edges ring under Lanczos/bicubic; the result stays inside [0, 1].
    edges = np.zeros((64, 64, 3), np.float32)
    edges[:, ::2] = 1.0
    for target in (17, 200):
        out = resize_long_edge(edges, target)
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_resize_antialiases_when_shrinking() -> None:
    stripes = np.zeros((64, 64), np.float32)
    stripes[:, ::2] = 1.0
    out = resize_long_edge(stripes, 16)
    np.testing.assert_allclose(out, 0.5, atol=0.05)  # averaged, not aliased to 0 or 1


def test_resize_same_size_is_a_copy() -> None:
    array = np.random.default_rng(0).random((30, 40, 3), dtype=np.float32)
    out = resize_long_edge(array, 40)
    np.testing.assert_array_equal(out, array)
    assert out is not array


def test_resize_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        resize_long_edge(np.zeros((10, 10), np.float32), 0)
    with pytest.raises(ValueError):
        resize_long_edge(np.zeros((10,), np.float32), 5)


def test_save_image_takes_8_and_16_bit_arrays_as_pixels(tmp_path: Path) -> None:
    """A uint8 array is 8-bit pixels, not floats to clip (which wrote an all-white picture)."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    save_image(pixels, tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels)
    deep = rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    save_image(deep, tmp_path / "b.tif", bit_depth=16)
    assert np.array_equal(load_image(tmp_path / "b.tif").rgb, deep.astype(np.float32) / 65535)
    with pytest.raises(ValueError, match="int32"):
        save_image(pixels.astype(np.int32), tmp_path / "c.png")

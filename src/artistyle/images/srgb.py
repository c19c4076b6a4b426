"""Colour management: decoded pixels to sRGB floats, and the sRGB profile every written image carries.

An embedded ICC profile is converted to sRGB with LittleCMS (perceptual intent).
Profiles that name themselves sRGB are taken as is, which keeps 8-bit values
exact and 16-bit precision intact; unreadable profiles, ones for another colour
space than the pixels and ones LittleCMS cannot transform with are ignored (the
pixels are then taken as sRGB). LittleCMS in Pillow transforms 8-bit data only.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageCms

__all__ = ["HIGH_BIT_GRAY", "profile_is_srgb", "srgb_profile", "srgb_profile_bytes", "to_srgb"]

#: Pillow modes of grey with more than 8 bits.
HIGH_BIT_GRAY = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def srgb_profile() -> ImageCms.ImageCmsProfile:
    """LittleCMS's built-in sRGB profile."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_profile_bytes() -> bytes:
    """The sRGB profile embedded in every written image, made once per process.

    LittleCMS stamps the creation time into the profile header, so a fresh copy per
    file would make two encodings of one image differ in those bytes.
    """
    return srgb_profile().tobytes()


def profile_is_srgb(icc: bytes | None) -> bool:
    """True when pixels tagged with ``icc`` need no conversion (no profile, an unreadable one, or sRGB)."""
    profile = _parse_profile(icc)
    return profile is None or _is_srgb(profile)


def to_srgb(color: Image.Image, icc: bytes | None) -> np.ndarray:
    """H x W x 3 float32 sRGB in [0, 1] from a colour image without alpha, converted through ``icc`` if it needs it.

    ``color`` is in mode L, RGB, CMYK, LAB or one of :data:`HIGH_BIT_GRAY`. Mode 'I'
    is read on a 16-bit scale (0..65535), mode 'F' on Pillow's 0..255 scale.
    """
    mode = color.mode
    space = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}.get(mode)
    if mode in HIGH_BIT_GRAY:
        space = "GRAY"
    profile = _foreign_profile(icc, space) if space else None

    if profile is not None:
        source = color
        if mode in HIGH_BIT_GRAY:
            # LittleCMS in Pillow transforms 8-bit data only; precision is lost.
            source = Image.fromarray(np.rint(_gray_to_unit(color) * 255).astype(np.uint8))
        try:
            converted = ImageCms.profileToProfile(
                source, profile, srgb_profile(), outputMode="RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL
            )
        except ImageCms.PyCMSError:
            # A profile LittleCMS parses but cannot transform with (device link,
            # abstract, no perceptual table...) is treated like an unreadable one.
            converted = None
        if converted is not None:
            return np.asarray(converted, dtype=np.float32) / 255.0

    if mode in HIGH_BIT_GRAY:
        gray = _gray_to_unit(color)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "L":
        gray = np.asarray(color, dtype=np.float32) / 255.0
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "LAB":
        rgb = ImageCms.profileToProfile(color, ImageCms.createProfile("LAB"), srgb_profile(), outputMode="RGB")
    elif mode == "CMYK":
        rgb = color.convert("RGB")
    else:
        rgb = color
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _gray_to_unit(img: Image.Image) -> np.ndarray:
    """A high-bit grey image as float32 in [0, 1] (see the module docstring for scales)."""
    values = np.asarray(img).astype(np.float32)
    if img.mode == "F":
        values = np.nan_to_num(values, nan=0.0) / 255.0  # Pillow's own F scale
    else:
        values = values / 65535.0
    return np.clip(values, 0.0, 1.0)


def _foreign_profile(icc: bytes | None, space: str) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile when pixels in colour space ``space`` ("RGB", "GRAY", "CMYK") need converting, else None."""
    profile = _parse_profile(icc)
    if profile is None or _is_srgb(profile):
        return None
    # A profile for another colour space than the pixels cannot be applied.
    if profile.profile.xcolor_space.strip() != space:
        return None
    return profile


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

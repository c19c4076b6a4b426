"""Shared fixtures: small images made on the fly, and the bundled samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src" / "artistyle" / "samples"
SHARED_IMAGES = REPO.parent / "shared" / "images"


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def make_content(size: tuple[int, int] = (80, 64)) -> Image.Image:
    """A photo-like test picture: a bright disc on a two-tone background."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 0.2 + 0.6 * (xx / w)
    img[..., 1] = 0.3 + 0.4 * (yy / h)
    img[..., 2] = 0.5
    disc = (xx - w * 0.4) ** 2 + (yy - h * 0.5) ** 2 < (min(w, h) * 0.3) ** 2
    img[disc] = [0.95, 0.9, 0.2]
    return Image.fromarray((img * 255).astype(np.uint8))


def make_style(size: tuple[int, int] = (72, 72)) -> Image.Image:
    """A texture: blue and white diagonal stripes with red dots."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = ((xx + yy) // 6) % 2 == 0
    img = np.where(stripes[..., None], [30, 60, 200], [240, 240, 230]).astype(np.uint8)
    dots = ((xx % 12) - 6) ** 2 + ((yy % 12) - 6) ** 2 < 6
    img[dots] = [220, 30, 30]
    return Image.fromarray(img)


@pytest.fixture
def content_path(tmp_path: Path) -> Path:
    path = tmp_path / "content.png"
    make_content().save(path)
    return path


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_style().save(path)
    return path


@pytest.fixture
def shared_images() -> Path:
    if not SHARED_IMAGES.is_dir():
        pytest.skip("../shared/images is not present")
    return SHARED_IMAGES

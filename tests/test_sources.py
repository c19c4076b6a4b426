"""Images, not paths: masks, the fine style, the init image (and content and style) as PIL images, arrays, tensors.

Each in-memory form must give exactly what the path to the same 8-bit image gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST, ImageError, UsageError
from artistyle.images.sources import as_loaded
from artistyle.masks import load_masks

from .conftest import make_content, make_style


def _forms(array: np.ndarray, path: Path) -> dict[str, object]:
    """The same 8-bit image as a path, a PIL image, uint8 and float arrays and tensors."""
    Image.fromarray(array).save(path)
    array = np.array(array)  # writable, for torch.from_numpy
    chw = torch.from_numpy(array).permute(2, 0, 1) if array.ndim == 3 else torch.from_numpy(array)
    return {
        "path": path,
        "str": str(path),
        "pil": Image.fromarray(array),
        "uint8 array": array,
        "float array": array.astype(np.float32) / 255,
        "float64 array": array / 255.0,
        "uint8 tensor": chw,
        "float tensor": chw.float() / 255,
        "batched tensor": (chw.float() / 255)[None] if array.ndim == 3 else (chw.float() / 255)[None, None],
    }


def _labels(width: int = 80, height: int = 64) -> np.ndarray:
    labels = np.ones((height, width), np.uint8)
    labels[:, width // 2 :] = 2
    labels[:8] = 0
    return labels


def test_a_label_mask_in_every_form_reads_as_its_file(tmp_path: Path) -> None:
    forms = _forms(_labels(), tmp_path / "labels.png")
    expected = load_masks([forms["path"]], 2, (80, 64))
    for name, form in forms.items():
        if name.startswith("float"):
            continue  # a float label image would hold 1/255 and 2/255: labels are 8-bit values
        assert torch.equal(load_masks([form], 2, (80, 64)), expected), name
        assert torch.equal(load_masks(form, 2, (80, 64)), expected), name  # one mask needs no list


def test_soft_masks_in_every_form_read_as_their_files(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 255, 80).round().astype(np.uint8), (64, 1))
    left, right = _forms(ramp, tmp_path / "a.png"), _forms(255 - ramp, tmp_path / "b.png")
    expected = load_masks([left["path"], right["path"]], 2, (80, 64))
    assert len(torch.unique(expected)) > 50  # really soft
    for name in left:
        assert torch.equal(load_masks([left[name], right[name]], 2, (80, 64)), expected), name
    # Mixed forms are fine too.
    assert torch.equal(load_masks([left["pil"], right["float tensor"]], 2, (80, 64)), expected)


def test_a_binary_float_mask_for_one_style(tmp_path: Path) -> None:
    inside = np.zeros((64, 80), bool)
    inside[10:50, 20:60] = True
    from_bool = load_masks(inside, 1, (80, 64))
    assert torch.equal(from_bool, load_masks(inside.astype(np.float32), 1, (80, 64)))
    assert torch.equal(from_bool[0, 0], torch.from_numpy(inside.astype(np.float32)))


def test_in_memory_masks_are_checked_like_files() -> None:
    with pytest.raises(UsageError, match=r"mask 1 \(an array\) is 40x30 px; it must be the content image's 80x64 px"):
        load_masks(np.zeros((30, 40), np.uint8), 1, (80, 64))
    with pytest.raises(UsageError, match=r"label mask 1 \(a tensor\) has label 3"):
        load_masks(torch.full((64, 80), 3, dtype=torch.uint8), 2, (80, 64))
    with pytest.raises(ImageError, match=r"outside \[0, 1\]"):
        load_masks(np.full((64, 80), 2.0), 2, (80, 64))
    with pytest.raises(ImageError, match="shape"):
        load_masks(np.zeros((64, 80, 2)), 1, (80, 64))
    with pytest.raises(UsageError, match=r"mask 2 \(an array\) for style 2 is empty"):
        load_masks([np.full((64, 80), 255, np.uint8), np.zeros((64, 80), np.uint8)], 2, (80, 64))


def test_pictures_in_every_form_load_as_their_file(tmp_path: Path) -> None:
    picture = np.asarray(make_style((40, 33)))
    forms = _forms(picture, tmp_path / "style.png")
    expected = as_loaded(forms["path"], "style image").rgb
    for name, form in forms.items():
        assert np.array_equal(as_loaded(form, "style image").rgb, expected), name  # type: ignore[arg-type]
    grey = np.asarray(make_style((40, 33)).convert("L"))
    grey_forms = _forms(grey, tmp_path / "grey.png")
    expected = as_loaded(grey_forms["path"]).rgb
    for name, form in grey_forms.items():
        assert np.array_equal(as_loaded(form).rgb, expected), name  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="batch of 2"):
        as_loaded(torch.rand(2, 3, 40, 40))
    with pytest.raises(ImageError, match="not finite"):
        as_loaded(np.full((40, 40, 3), np.nan, np.float32))
    with pytest.raises(ImageError, match="at least 32 px"):
        as_loaded(torch.rand(1, 3, 20, 40))  # the same size check as for a file


def test_content_and_style_as_arrays_and_tensors() -> None:
    nst = NST(size=48, device="cpu", seed=1)
    content, style = make_content(), make_style()
    expected = nst.load_images(content, style)
    got = nst.load_images(np.asarray(content), torch.from_numpy(np.array(style)).permute(2, 0, 1))
    assert torch.equal(got.content, expected.content) and torch.equal(got.styles[0], expected.styles[0])


SMALL = {"size": 48, "device": "cpu", "seed": 5, "steps": 2, "scales": 1}


def test_paint_masks_override_the_config_and_match_the_file(tmp_path: Path) -> None:
    forms = _forms(_labels(), tmp_path / "labels.png")
    styles = [make_style(), make_style().rotate(90)]
    from_file = np.asarray(NST(**SMALL, masks=(str(forms["path"]),)).run_nst(make_content(), styles))
    for name in ("pil", "uint8 array", "uint8 tensor"):
        got = np.asarray(NST(**SMALL).run_nst(make_content(), styles, masks=forms[name]))
        assert np.array_equal(got, from_file), name
    # The argument takes precedence over the config's masks.
    swapped = np.where(_labels() == 0, 0, 3 - _labels()).astype(np.uint8)
    Image.fromarray(swapped).save(tmp_path / "swapped.png")
    overridden = NST(**SMALL, masks=(str(tmp_path / "swapped.png"),)).run_nst(make_content(), styles, masks=_labels())
    assert np.array_equal(np.asarray(overridden), from_file)


def test_paint_init_image_in_every_form_matches_the_file(tmp_path: Path) -> None:
    start = np.asarray(make_content((60, 50)).transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    forms = _forms(start, tmp_path / "start.png")
    from_file = np.asarray(NST(**SMALL, init=str(forms["path"])).run_nst(make_content(), make_style()))
    for name, form in forms.items():
        got = np.asarray(NST(**SMALL).run_nst(make_content(), make_style(), init=form))
        assert np.array_equal(got, from_file), name
    # A kind of start by name, overriding the config's.
    by_name = NST(**SMALL, init=str(forms["path"])).run_nst(make_content(), make_style(), init="content")
    assert np.array_equal(np.asarray(by_name), np.asarray(NST(**SMALL, init="content").run_nst(make_content(), make_style())))


def test_paint_fine_style_in_every_form_loads_as_the_file(tmp_path: Path) -> None:
    fine = np.asarray(make_style((50, 50)).rotate(45))
    forms = _forms(fine, tmp_path / "fine.png")
    nst = NST(**SMALL)
    expected = NST(**SMALL, fine_style=str(forms["path"])).paint(make_content(), make_style()).fine_style
    assert expected is not None
    for name, form in forms.items():
        painting = nst.paint(make_content(), make_style(), fine_style=form)
        assert painting.fine_style is not None and np.array_equal(painting.fine_style.rgb, expected.rgb), name
    assert nst.paint(make_content(), make_style()).fine_style is None

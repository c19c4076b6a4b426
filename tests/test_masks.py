"""Spatial control: region masks, guided Gram matrices, and styles that stay in their regions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST, StyleConfig, UsageError
from artistyle.cli import main
from artistyle.losses import GuidedStyleLoss, gram_matrix, guided_gram_matrices
from artistyle.masks import erosion_radius, layer_masks, load_masks
from artistyle.objective import StyleObjective
from artistyle.vgg import VGGFeatures
from artistyle.weights import default_weights

from .conftest import SAMPLES, make_content, make_style, other_style


def _save(array: np.ndarray, path: Path, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _halves(width: int = 80, height: int = 64) -> np.ndarray:
    """A label image: 1 on the left half, 2 on the right half."""
    labels = np.ones((height, width), np.uint8)
    labels[:, width // 2 :] = 2
    return labels


# -- guided Gram matrices ---------------------------------------------------------------------------
def test_guided_gram_with_a_full_mask_is_the_gram_matrix() -> None:
    features = torch.rand(1, 8, 9, 11)
    ones = torch.ones(1, 1, 9, 11)
    assert torch.allclose(guided_gram_matrices(features, ones)[0], gram_matrix(features)[0], atol=1e-6)


def test_guided_gram_of_a_binary_mask_is_the_gram_of_the_region() -> None:
    features = torch.rand(1, 4, 6, 10)
    mask = torch.zeros(1, 1, 6, 10)
    mask[..., :4] = 1
    region = features[..., :4].reshape(1, 4, -1)
    expected = region @ region.transpose(1, 2) / region.shape[2]
    assert torch.allclose(guided_gram_matrices(features, mask), expected, atol=1e-6)


def test_guided_style_loss_gradcheck() -> None:
    features = torch.rand(1, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    masks = torch.rand(2, 1, 5, 4, dtype=torch.float64)
    loss = GuidedStyleLoss(torch.rand(2, 3, 3, dtype=torch.float64), masks, torch.tensor([0.3, 0.7]))
    loss.weights = loss.weights.double()
    assert torch.autograd.gradcheck(loss, (features,))


# -- masks at each layer ---------------------------------------------------------------------------
def test_layer_masks_match_the_feature_maps_and_erode() -> None:
    height, width = 166, 230  # odd sizes; conv5_1 is 10x14, so each half survives its erosion
    net = VGGFeatures(default_weights(), ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"])
    with torch.no_grad():
        feats = net(torch.rand(1, 3, height, width))
    masks = torch.from_numpy(np.stack([(_halves(width, height) == k) for k in (1, 2)]).astype(np.float32))[:, None]
    for name, f in feats.items():
        m = layer_masks(masks, name)
        assert m.shape == (2, 1, f.shape[2], f.shape[3]), name
        # Eroded: a band along the border between the halves belongs to neither region.
        middle = m.shape[3] // 2
        assert float(m[:, 0, :, middle - 1 : middle + 1].max()) < 1.0, name
        assert float(m[0, 0, :, 0].min()) == 1.0  # the image border does not erode
    assert [erosion_radius(n) for n in feats] == [1, 1, 2, 2, 3]


def test_a_region_too_small_to_survive_erosion_keeps_its_mask() -> None:
    masks = torch.zeros(1, 1, 64, 64)
    masks[..., 30:34, 30:34] = 1
    deep = layer_masks(masks, "conv5_1")
    assert float(deep.sum()) > 0


# -- loading ----------------------------------------------------------------------------------------
def test_load_label_image_and_per_style_masks(tmp_path: Path) -> None:
    labels = _save(_halves(), tmp_path / "labels.png")
    masks = load_masks([labels], 2, (80, 64))
    assert masks.shape == (2, 1, 64, 80)
    assert float(masks[0, 0, :, :40].min()) == 1 and float(masks[0, 0, :, 40:].max()) == 0
    assert torch.equal(masks[0] + masks[1], torch.ones(1, 64, 80))
    left = _save((_halves() == 1).astype(np.uint8) * 255, tmp_path / "left.png")
    right = _save((_halves() == 2).astype(np.uint8) * 255, tmp_path / "right.png")
    assert torch.equal(load_masks([left, right], 2, (80, 64)), masks)
    # A palette image: its indices are the labels.
    palette = Image.fromarray(_halves(), "L").convert("P")
    palette.save(tmp_path / "palette.png")
    assert load_masks([tmp_path / "palette.png"], 2, (80, 64)).shape == (2, 1, 64, 80)
    # One style: a 0/1 image is a label image, a 0/255 image a mask; the same region either way.
    one = load_masks([_save((_halves() == 1).astype(np.uint8), tmp_path / "one.png")], 1, (80, 64))
    assert torch.equal(one, load_masks([left], 1, (80, 64)))


@pytest.mark.parametrize(
    "make, styles, message",
    [
        (lambda d: [_save(_halves(40, 32), d / "small.png")], 2, "is 40x32 px; it must be the content image's 80x64"),
        (lambda d: [_save(_halves() + 1, d / "three.png")], 2, "has label 3, but there are 2 style images"),
        (lambda d: [_save(np.ones((64, 80), np.uint8), d / "only1.png")], 2, "gives style 2 no pixels"),
        (lambda d: [_save((np.zeros((64, 80, 3)) + [255, 0, 0]).astype(np.uint8), d / "red.png")], 2, "is in colour"),
        (lambda d: [_save(np.zeros((64, 80), np.uint8), d / "a.png"), _save(np.zeros((64, 80), np.uint8), d / "b.png")],
         2, "for style 1 is empty"),
        (lambda d: [_save(_halves(), d / f"{k}.png") for k in "abc"], 2, "3 masks given for 2 style images"),
        (lambda d: [d / "missing.png"], 2, "does not exist"),
    ],
)
def test_bad_masks(tmp_path: Path, make, styles: int, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load_masks(make(tmp_path), styles, (80, 64))


# -- the objective: tiled equals untiled ------------------------------------------------------------
@pytest.mark.slow
def test_guided_tiled_loss_and_gradient_equal_untiled() -> None:
    config = StyleConfig()
    content, image = torch.rand(1, 3, 150, 170), torch.rand(1, 3, 150, 170)
    styles = [torch.rand(1, 3, 120, 100), torch.rand(1, 3, 90, 130)]
    masks = torch.zeros(2, 1, 150, 170)
    masks[0, :, :, :90] = 1
    masks[1, :, 60:, 70:] = 0.7  # overlapping and soft
    whole, tiled = StyleObjective(default_weights(), config), StyleObjective(default_weights(), config, tile=48)
    for objective in (whole, tiled):
        objective.set_content(content)
        objective.set_style(styles, blend=(0.4, 0.6), masks=masks)
    terms, loss, grad = whole.evaluate(image)
    tiled_terms, tiled_loss, tiled_grad = tiled.evaluate(image)
    assert abs(loss.item() - tiled_loss.item()) / loss.item() < 1e-5
    for name in terms:
        assert abs(terms[name].item() - tiled_terms[name].item()) <= 1e-5 * abs(terms[name].item()) + 1e-12, name
    assert ((grad - tiled_grad).norm() / grad.norm()).item() < 1e-3


def test_one_full_mask_is_the_unmasked_objective() -> None:
    config = StyleConfig()
    content, style, image = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 80)
    plain, guided = StyleObjective(default_weights(), config), StyleObjective(default_weights(), config)
    for objective, masks in ((plain, None), (guided, torch.ones(1, 1, 64, 80))):
        objective.set_content(content)
        objective.set_style([style], masks=masks)
    _, loss, grad = plain.evaluate(image)
    _, guided_loss, guided_grad = guided.evaluate(image)
    assert abs(loss.item() - guided_loss.item()) / loss.item() < 1e-5
    assert ((grad - guided_grad).norm() / grad.norm()).item() < 1e-4


# -- end to end: each style stays in its region --------------------------------------------------
LAYERS = ("conv1_1", "conv2_1", "conv3_1")


def _distance(model: StyleObjective, crop: torch.Tensor, style: torch.Tensor) -> float:
    """Relative Gram distance over the style layers, as ``gatys_eval.py`` scores style."""
    with torch.no_grad():
        f, fs = model.features(crop), model.features(style)
    return sum(
        float((gram_matrix(f[n]) - gram_matrix(fs[n])).pow(2).sum() / gram_matrix(fs[n]).pow(2).sum()) for n in LAYERS
    )


@pytest.mark.slow
@pytest.mark.parametrize("swap", [False, True])
def test_masked_styles_stay_in_their_regions(tmp_path: Path, swap: bool) -> None:
    # The shallow style layers only: with conv4_1 and conv5_1 a 96 px run needs far more than
    # 60 iterations, and the test is about where each style goes, not about the full look.
    labels = _halves(96, 64)
    mask = _save(3 - labels if swap else labels, tmp_path / "labels.png")
    settings = dict(size=96, device="cpu", seed=2, steps=60, scales=1, style_layers=LAYERS, style_weight=1e-2)
    styles = [Image.open(SAMPLES / "starry_night.jpg"), Image.open(SAMPLES / "great_wave.jpg")]
    nst = NST(**settings, masks=(str(mask),))
    result = nst.paint(make_content((96, 64)), styles).run()
    inputs = nst.load_images(make_content((96, 64)), styles)
    model = nst.build_model(inputs)
    left, right = result[..., :, 8:40], result[..., :, 56:88]  # away from the border
    a, b = inputs.styles
    if swap:
        left, right = right, left
    # Region 1 (left, or right when swapped) is much nearer style 1 than style 2, and region 2 the other way.
    assert _distance(model, left, a) < 0.5 * _distance(model, left, b)
    assert _distance(model, right, b) < 0.5 * _distance(model, right, a)


def test_masks_work_coarse_to_fine_and_tiled(tmp_path: Path) -> None:
    labels = _save(_halves(96, 80), tmp_path / "labels.png")
    nst = NST(size=96, device="cpu", seed=1, scales=2, scale_steps=(3, 2), tile=48, masks=(str(labels),))
    painting = nst.paint(make_content((96, 80)), [make_style(), other_style()])
    assert len(list(painting)) == 5 and torch.isfinite(painting.image).all()


# -- command line -----------------------------------------------------------------------------------
CLI_TINY = ["--size", "48", "--steps", "3", "--scales", "1", "--device", "cpu", "--seed", "1", "-q"]


def test_cli_mask(capsys: pytest.CaptureFixture[str], tmp_path: Path, content_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    make_style().save(a)
    other_style().save(b)
    labels = _save(_halves(), tmp_path / "labels.png")  # the content fixture is 80x64
    out = tmp_path / "out.png"
    assert main([str(content_path), str(a), str(b), "--mask", str(labels), "-o", str(out), *CLI_TINY]) == 0
    assert Image.open(out).size == (48, 38)
    # A mask is an input: never overwritten.
    code = main([str(content_path), str(a), str(b), "--mask", str(labels), "-o", str(labels), *CLI_TINY])
    assert code == 2 and "input" in capsys.readouterr().err
    wrong = _save(_halves(40, 32), tmp_path / "wrong.png")
    code = main([str(content_path), str(a), str(b), "--mask", str(wrong), "-o", str(out), *CLI_TINY])
    err = capsys.readouterr().err
    assert code == 2 and "must be the content image's 80x64" in err and len(err.strip().splitlines()) == 1

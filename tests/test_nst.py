"""The engine end to end on tiny images (CPU), and the NST / Transfer API."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST, Progress, RunError, StyleConfig, UsageError
from artistyle.images.tensors import array_to_tensor
from artistyle.losses import content_loss, gram_matrix
from artistyle.transfer import Transfer

from .conftest import SAMPLES, make_content, make_style

TINY = dict(size=64, device="cpu", seed=1)


def _luma(image: np.ndarray) -> np.ndarray:
    return image[..., :3] @ np.array([0.299, 0.587, 0.114])


def _raw_distances(nst: NST, image: torch.Tensor, inputs) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Unweighted content distance at conv4_2 and mean relative Gram distance (as gatys_eval scores)."""
    model = nst.build_model(inputs)
    with torch.no_grad():
        f = model.features(image)
        fc = model.features(inputs.content)
        fs = model.features(inputs.styles[0])
    c = content_loss(f["conv4_2"], fc["conv4_2"]).item() / fc["conv4_2"].pow(2).mean().item()
    s = [
        ((gram_matrix(f[n]) - gram_matrix(fs[n])).pow(2).sum() / gram_matrix(fs[n]).pow(2).sum()).item()
        for n in nst.config.style_layers
    ]
    return c, sum(s) / len(s)


@pytest.mark.slow
def test_end_to_end_paints_the_content_in_the_style() -> None:
    # Started from the photo, so that 64 px and 100 steps are enough to judge both terms.
    nst = NST(**TINY, steps=100, init="content", style_weight=1e-4)
    inputs = nst.load_images(SAMPLES / "chelsea_cat.jpg", SAMPLES / "starry_night.jpg")
    transfer = nst.transfer(inputs)
    start = transfer.image.clone()
    events = list(transfer)
    result = transfer.image
    noise = torch.rand(start.shape, generator=torch.Generator().manual_seed(0))
    _, s0 = _raw_distances(nst, start, inputs)
    c_noise, _ = _raw_distances(nst, noise, inputs)
    c1, s1 = _raw_distances(nst, result, inputs)
    # The content is recognisable: the result's brightness follows the photo's at 8x8 blocks.
    content = inputs.content[0].permute(1, 2, 0).numpy()
    painted = result[0].permute(1, 2, 0).numpy()
    corr = np.corrcoef(_luma(_blocks(content)).ravel(), _luma(_blocks(painted)).ravel())[0, 1]
    print(f"style distance {s0:.3f} -> {s1:.3f}, content distance {c1:.3f} (noise {c_noise:.3f}), corr {corr:.3f}")
    assert len(events) == 100 and events[-1].iteration == 100
    assert events[-1].loss < events[0].loss / 10
    assert s1 < s0 / 5, (s0, s1)  # the Gram statistics moved most of the way to the painting's
    assert c1 < c_noise / 2, (c1, c_noise)
    assert corr > 0.6, corr


def _blocks(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((8, 8), Image.BOX), np.float32)


def test_run_nst_returns_a_pil_image_of_the_output_size(content_path: Path, style_path: Path) -> None:
    seen: list[Progress] = []
    picture = NST(**TINY, steps=5).run_nst(content_path, style_path, callback=seen.append)
    assert isinstance(picture, Image.Image) and picture.mode == "RGB"
    assert picture.size == (64, 51)  # 80x64 content, long edge 64, aspect kept
    assert [e.iteration for e in seen] == [1, 2, 3, 4, 5]
    assert all(set(e.losses) == {"content:conv4_2"} | {f"style:{n}" for n in StyleConfig().style_layers} for e in seen)
    assert all(math.isclose(e.loss, sum(e.losses.values()), rel_tol=1e-5) for e in seen)


def test_style_is_scaled_by_its_own_long_edge() -> None:
    nst = NST(**TINY, style_size=48)
    inputs = nst.load_images(make_content((80, 64)), make_style((100, 50)))
    assert tuple(inputs.content.shape) == (1, 3, 51, 64)
    assert tuple(inputs.styles[0].shape) == (1, 3, 24, 48)


def test_same_seed_same_image_other_seed_other_image() -> None:
    def run(seed: int) -> torch.Tensor:
        nst = NST(**{**TINY, "seed": seed}, steps=4)
        return nst.transfer(nst.load_images(make_content(), make_style())).run()

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_random_seed_is_drawn_and_reported() -> None:
    a, b = NST(size=64, device="cpu"), NST(size=64, device="cpu")
    assert isinstance(a.seed, int) and a.seed != b.seed


@pytest.mark.parametrize("init", ["content", "style"])
def test_init_choices(init: str) -> None:
    nst = NST(**TINY, init=init)
    inputs = nst.load_images(make_content(), make_style())
    start = nst.initial_image(inputs)
    assert start.shape == inputs.content.shape
    if init == "content":
        assert torch.equal(start, inputs.content)
    else:
        assert not torch.equal(start, inputs.content)


def test_init_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "start.png"
    Image.new("RGB", (40, 40), (255, 0, 0)).save(path)
    nst = NST(**TINY, init=str(path))
    start = nst.initial_image(nst.load_images(make_content(), make_style()))
    assert torch.allclose(start[0, :, 5, 5], torch.tensor([1.0, 0.0, 0.0]), atol=1e-3)


def test_previews_and_stop() -> None:
    nst = NST(**TINY, steps=50)
    transfer = nst.transfer(nst.load_images(make_content(), make_style()), preview_every=2)
    seen = []
    for event in transfer:
        seen.append(event)
        if event.iteration == 4:
            transfer.stop()
    assert [e.iteration for e in seen] == [1, 2, 3, 4]
    assert seen[0].image is None and seen[1].image is not None and seen[1].image.shape == (1, 3, 51, 64)
    assert transfer.iteration == 4 and len(transfer.history) == 4


def test_adam_lowers_the_loss() -> None:
    nst = NST(**TINY, steps=30, optimizer="adam", lr=0.05)
    events = list(nst.transfer(nst.load_images(make_content(), make_style())))
    assert events[-1].loss < events[0].loss / 2


def test_tv_weight_adds_a_term() -> None:
    nst = NST(**TINY, steps=1, tv_weight=10.0)
    (event,) = list(nst.transfer(nst.load_images(make_content(), make_style())))
    assert event.losses["tv"] > 0


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_image() -> None:
    nst = NST(**TINY, steps=10)
    inputs = nst.load_images(make_content(), make_style())
    objective = nst.build_model(inputs)
    calls = {"n": 0}
    original = objective.forward

    def poisoned(image: torch.Tensor) -> dict[str, torch.Tensor]:
        calls["n"] += 1
        terms = original(image)
        if calls["n"] >= 3:
            terms["content:conv4_2"] = terms["content:conv4_2"] * float("nan")
        return terms

    objective.forward = poisoned  # type: ignore[method-assign]
    transfer = Transfer(objective, inputs.content.clone(), steps=10)
    with pytest.raises(RunError, match="loss became nan at iteration 5"):
        list(transfer)  # L-BFGS steps back twice before it gives up
    assert transfer.iteration == 4 and torch.isfinite(transfer.image).all()


def test_alpha_of_the_content_is_put_back() -> None:
    rgba = make_content().convert("RGBA")
    alpha = np.zeros((64, 80), np.uint8)
    alpha[:, 40:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    picture = NST(**TINY, steps=2).run_nst(rgba, make_style())
    assert picture.mode == "RGBA"
    a = np.asarray(picture)[..., 3]
    assert a[:, :28].max() < 10 and a[:, 36:].min() > 245


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"size": 8}, "size must be at least 32"),
        ({"style_layers": ("conv9_9",)}, "unknown style layer"),
        ({"content_weight": -1.0}, "content-weight must be"),
        ({"style_layer_weights": (1.0, 2.0)}, "2 style layer weights given for 5"),
        ({"device": "tpu"}, "unknown device"),
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"content_weight": 0.0, "style_weight": 0.0}, "nothing to optimise"),
    ],
)
def test_bad_settings(settings: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        NST(**settings)


def test_array_round_trip() -> None:
    a = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    t = array_to_tensor(a)
    assert t.shape == (1, 3, 5, 7)
    assert np.allclose(t[0].permute(1, 2, 0).numpy(), a)

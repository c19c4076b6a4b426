"""Coarse-to-fine runs, early stopping and the run manifest."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from artistyle import NST, StyleConfig, UsageError
from artistyle.painting import PLATEAU_WINDOW

from .conftest import FAST, make_content, make_style, run


@pytest.mark.parametrize(
    "size, expected",
    [
        (64, [64]),
        (256, [256]),
        (448, [224, 317, 448]),
        (512, [256, 362, 512]),
        (2048, [256, 362, 512, 724, 1024, 1448, 2048]),
    ],
)
def test_automatic_scales_start_near_256(size: int, expected: list[int]) -> None:
    assert StyleConfig().scale_sizes(size) == expected


def test_explicit_scales_and_factor() -> None:
    assert StyleConfig(scales=1).scale_sizes(2048) == [2048]
    assert StyleConfig(scales=3, scale_factor=2.0).scale_sizes(400) == [100, 200, 400]
    assert StyleConfig(scale_steps=(5, 4)).scale_sizes(300) == [212, 300]
    with pytest.raises(UsageError, match="first scale 12 px"):
        StyleConfig(scales=4, scale_factor=2.0).scale_sizes(100)


def test_schedule_gives_fewer_iterations_to_finer_scales() -> None:
    assert StyleConfig().scale_schedule(1) == [300]
    assert StyleConfig().scale_schedule(3) == [300, 150, 75]
    assert StyleConfig().scale_schedule(7) == [300, 150, 75, 37, 30, 30, 30]
    assert StyleConfig(steps=10).scale_schedule(3) == [10, 5, 2]
    assert StyleConfig(scale_steps=(7, 3)).scale_schedule(2) == [7, 3]
    with pytest.raises(UsageError, match="2 scale steps given for 3 scales"):
        StyleConfig(scale_steps=(7, 3)).scale_schedule(3)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"scales": 0}, "scales must be at least 1"),
        ({"scale_factor": 1.0}, "scale-factor must be above 1"),
        ({"scale_steps": (3, 0)}, "at least 1 step"),
        ({"scales": 3, "scale_steps": (3, 2)}, "2 scale steps given for 3 scales"),
        ({"tol": -0.1}, "tol must be"),
    ],
)
def test_bad_scale_settings(settings: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        StyleConfig(**settings).validate()


def test_single_scale_painting_is_exactly_a_transfer() -> None:
    nst = NST(size=64, device="cpu", seed=5, steps=6)
    content, style = make_content(), make_style()
    painted = nst.paint(content, style).run()
    direct = nst.transfer(nst.load_images(content, style)).run()
    assert torch.equal(painted, direct)


def test_coarse_to_fine_runs_every_scale_and_ends_at_the_output_size() -> None:
    nst = NST(size=96, device="cpu", seed=5, scales=2, scale_steps=(6, 3))
    painting = nst.paint(make_content((80, 64)), make_style())
    events = list(painting)
    assert [e.iteration for e in events] == list(range(1, 10)) and all(e.steps == 9 for e in events)
    assert [e.scale for e in events] == [0] * 6 + [1] * 3
    assert events[0].size == (68, 54) and events[-1].size == (96, 77)
    assert painting.image.shape == (1, 3, 77, 96)
    assert all(e.scales == 2 for e in events) and events[-1].elapsed >= events[0].elapsed


def test_finer_scale_starts_from_the_coarser_result() -> None:
    nst = NST(size=96, device="cpu", seed=5, scales=2, scale_steps=(8, 1))
    painting = nst.paint(make_content((80, 64)), make_style())
    first_scale = None
    for event in painting:
        if event.scale == 0 and event.iteration == 8:
            first_scale = painting.transfer.image.clone()  # type: ignore[union-attr]
    assert first_scale is not None
    # One L-BFGS step is small: the final image is close to the upsampled coarse result, not to noise.
    upsampled = torch.nn.functional.interpolate(first_scale, size=(77, 96), mode="bicubic", align_corners=False)
    assert (painting.image - upsampled.clamp(0, 1)).abs().mean() < 0.05


def test_style_is_scaled_with_the_scale() -> None:
    nst = NST(size=96, device="cpu", style_size=80)
    inputs = nst.load_images(make_content((80, 64)), make_style((100, 50)), size=48)
    assert inputs.content.shape[-1] == 48 and inputs.styles[0].shape[-1] == 40


def test_stop_during_a_coarse_scale_still_gives_an_output_size_image() -> None:
    nst = NST(size=96, device="cpu", seed=5, scales=2, scale_steps=(6, 3))
    painting = nst.paint(make_content((80, 64)), make_style())
    for event in painting:
        if event.iteration == 2:
            painting.stop()
    assert painting.iteration == 2 and painting.image.shape == (1, 3, 77, 96)


def test_stop_while_the_next_scale_is_being_built_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    # stop() from another thread (the studio's Cancel) can land after the first scale
    # ended and before the second scale's Transfer exists: the run must still end there.
    nst = NST(size=96, device="cpu", seed=5, scales=2, scale_steps=(3, 3))
    painting = nst.paint(make_content((80, 64)), make_style())
    build = nst.engine.transfer  # what the painting calls at each scale

    def build_then_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        transfer = build(*args, **kwargs)
        if painting.iteration == 3:
            painting.stop()
        return transfer

    monkeypatch.setattr(nst.engine, "transfer", build_then_stop)
    events = list(painting)
    assert len(events) == 3 and painting.image.shape == (1, 3, 77, 96)


def test_tol_stops_each_scale_on_a_plateau() -> None:
    nst = NST(size=96, device="cpu", seed=5, scales=2, scale_steps=(40, 40), tol=1e6)
    events = list(nst.paint(make_content((80, 64)), make_style()))
    per_scale = [sum(1 for e in events if e.scale == k) for k in (0, 1)]
    assert per_scale == [PLATEAU_WINDOW + 1] * 2


def test_tol_off_runs_every_step() -> None:
    nst = NST(size=64, device="cpu", seed=5, steps=15, tol=0.0)
    assert len(list(nst.paint(make_content(), make_style()))) == 15


def test_cli_scales_and_manifest(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    out_path = tmp_path / "o.png"
    argv = [str(content_path), str(style_path), "-o", str(out_path), "--device", "cpu", "--size", "96", "--seed", "2"]
    code, out, err = run(capsys, *argv, "--scales", "2", "--scale-steps", "3,2", "--manifest", "--json", "-q")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 5 and summary["scales"] == [68, 96] and (summary["width"], summary["height"]) == (96, 77)
    record = json.loads((tmp_path / "o.json").read_text())
    assert record["settings"]["seed"] == 2 and record["settings"]["scale_steps"] == [3, 2]
    assert record["weights"]["sha256"] == summary["weights_sha256"] and record["device"] == "cpu"
    assert [r["scale"] for r in record["iterations"]] == [0, 0, 0, 1, 1]
    assert all(math.isfinite(r["loss"]) and r["seconds"] > 0 for r in record["iterations"])
    assert set(record["versions"]) == {"python", "torch", "numpy", "pillow"}
    assert {p.name for p in tmp_path.iterdir()} == {"content.png", "style.png", "o.png", "o.json"}


def test_cli_tol_flag(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    argv = [str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), "--device", "cpu", "--size", "48"]
    code, out, err = run(capsys, *argv, "--steps", "40", "--tol", "1e6", "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["steps"] == PLATEAU_WINDOW + 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--scales", "0"], "must be at least 1"),
        (["--scale-factor", "1"], "scale-factor must be above 1"),
        (["--scale-factor", "x"], "invalid number"),
        (["--scales", "3", "--scale-steps", "2,2"], "2 scale steps given for 3 scales"),
        (["--scale-steps", "2,0"], "must be at least 1"),
        (["--tol", "-1"], "tol must be"),
        (["--scales", "9", "--scale-factor", "2"], "first scale 0 px"),
    ],
)
def test_cli_bad_scale_flags(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, flags: list[str],
    message: str,
) -> None:
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST, *flags)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.png").exists()


def test_manifest_never_overwrites_an_input(
    capsys: pytest.CaptureFixture[str], style_path: Path, tmp_path: Path
) -> None:
    content = tmp_path / "o.json"  # an image file with an unusual name
    make_content().save(content, format="PNG")
    before = content.read_bytes()
    code, _, err = run(capsys, str(content), str(style_path), "-o", str(tmp_path / "o.png"), *FAST, "--manifest")
    assert code == 2 and "overwrite an input" in err
    assert content.read_bytes() == before and not (tmp_path / "o.png").exists()


# -- the style anchor of large outputs ---------------------------------------------------------------
def test_anchor_loss_and_gradient_match_autograd_through_the_shrink() -> None:
    import torch.nn.functional as F

    from artistyle.objective import ANCHOR_LAYERS, StyleObjective, total
    from artistyle.weights import default_weights

    config = StyleConfig()
    content, image = torch.rand(1, 3, 96, 128), torch.rand(1, 3, 96, 128)
    layout = torch.rand(1, 3, 48, 64)  # the run's result at the anchor scale
    objective = StyleObjective(default_weights(), config)
    objective.set_content(content)
    objective.set_style(torch.rand(1, 3, 80, 96))
    _plain_terms, plain_loss, plain_grad = objective.evaluate(image)
    objective.set_anchor(layout)
    terms, loss, grad = objective.evaluate(image)
    assert {k for k in terms if k.startswith("anchor:")} == {f"anchor:{n}" for n in ANCHOR_LAYERS}
    # Reference: a content loss at conv4_1 and conv5_1 against the layout, by plain autograd through the shrink.
    reference = StyleObjective(default_weights(), replace(config, content_layers=ANCHOR_LAYERS))
    reference.set_content(layout)
    reference.set_style(layout)
    pixels = image.clone().requires_grad_(True)
    small = F.interpolate(pixels, size=(48, 64), mode="bilinear", antialias=True, align_corners=False)
    feature_terms = {k: v for k, v in reference(small).items() if k.startswith("content:")}
    (ref_grad,) = torch.autograd.grad(total(feature_terms), pixels)
    assert abs(loss.item() - plain_loss.item() - total(feature_terms).item()) <= 1e-5 * loss.item()
    assert ((grad - plain_grad - ref_grad).norm() / ref_grad.norm()).item() < 1e-4
    # Tiled evaluation keeps the anchor exact too.
    objective.tile = 48
    _tiled_terms, tiled_loss, tiled_grad = objective.evaluate(image)
    assert abs(tiled_loss.item() - loss.item()) <= 1e-5 * loss.item()
    assert ((tiled_grad - grad).norm() / grad.norm()).item() < 1e-3


def test_anchor_keeps_the_layout_of_the_anchor_scale() -> None:
    # On by default above 512 px, so outputs of the default sizes are the paper's plain runs.
    assert [StyleConfig().anchored(s) for s in (362, 448, 512, 724, 2048)] == [False, False, False, True, True]
    assert not StyleConfig(style_anchor=0).anchored(4096)
    nst = NST(size=96, device="cpu", seed=1, scales=2, scale_steps=(2, 2), style_anchor=68)
    painting = nst.paint(make_content((96, 80)), make_style())
    events = list(painting)
    assert painting.sizes == [68, 96]
    assert not any(k.startswith("anchor:") for k in events[0].losses)  # 68 px: the anchor scale itself
    assert {k for k in events[-1].losses if k.startswith("anchor:")} == {"anchor:conv4_1", "anchor:conv5_1"}
    assert painting._anchor_reference is not None and painting._anchor_reference.shape[-1] == 68
    with pytest.raises(UsageError, match="style-anchor must be 0"):
        StyleConfig(style_anchor=8).validate()


def test_anchored_run_resumes_bit_for_bit() -> None:
    def painting():  # type: ignore[no-untyped-def]
        nst = NST(size=96, device="cpu", seed=3, scales=2, scale_steps=(3, 3), style_anchor=68)
        return nst.paint(make_content((96, 80)), make_style())

    whole = painting()
    whole.run()
    first = painting()
    for event in first:
        if event.iteration == 4:  # one iteration into the anchored scale
            state = first.state_dict()
            break
    second = painting()
    second.load_state_dict(state)
    second.run()
    assert torch.equal(second.image, whole.image)


def test_cli_style_anchor(capsys: pytest.CaptureFixture[str], tmp_path: Path, content_path: Path, style_path: Path) -> None:
    out = tmp_path / "out.png"
    assert run(capsys, str(content_path), str(style_path), "-o", str(out), *FAST, "--style-anchor", "32")[0] == 0
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(out), *FAST, "--style-anchor", "10")
    assert code == 2 and "style-anchor must be 0 (off) or at least 32 px" in err

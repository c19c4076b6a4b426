"""Artistic control end to end: several styles, colour preservation and padding, in the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST, UsageError
from artistyle.cli import main
from artistyle.color import rgb_to_yiq
from artistyle.config import PADDINGS
from artistyle.images import resize_long_edge
from artistyle.images.tensors import array_to_tensor
from artistyle.optim import AveragedAdam

from .conftest import make_content, make_style, other_style, run

TINY = dict(size=64, device="cpu", seed=3, steps=12, scales=1)


def _chroma(image: torch.Tensor) -> torch.Tensor:
    return rgb_to_yiq(image)[:, 1:]


def _content_at(picture: Image.Image, like: torch.Tensor) -> torch.Tensor:
    """The content as the run resizes it, at the size of ``like``."""
    rgb = np.asarray(picture.convert("RGB"), np.float32) / 255.0
    return array_to_tensor(resize_long_edge(rgb, max(like.shape[2:])))


# -- several styles -------------------------------------------------------------------------------
def test_blend_one_zero_equals_the_single_style_run() -> None:
    content, a, b = make_content(), make_style(), other_style()
    single = NST(**TINY).paint(content, a).run()
    blended = NST(**TINY, style_blend=(1.0, 0.0)).paint(content, [a, b]).run()
    assert torch.equal(single, blended)


def test_half_half_blend_targets_are_the_mean_of_the_grams() -> None:
    nst = NST(**TINY, style_blend=(0.5, 0.5))
    inputs = nst.load_images(make_content(), [make_style(), other_style()])
    model = nst.build_model(inputs)
    grams = [model.style_grams(s) for s in inputs.styles]
    for name, loss in model.style_losses.items():
        assert torch.allclose(loss.target, 0.5 * grams[0][name] + 0.5 * grams[1][name], rtol=1e-5, atol=1e-7)


def test_blend_weights_are_normalised_and_checked() -> None:
    nst = NST(**TINY, style_blend=(3.0, 1.0))
    model = nst.build_model(nst.load_images(make_content(), [make_style(), other_style()]))
    grams = [model.style_grams(s) for s in nst.load_images(make_content(), [make_style(), other_style()]).styles]
    name = "conv1_1"
    assert torch.allclose(model.style_losses[name].target, 0.75 * grams[0][name] + 0.25 * grams[1][name], rtol=1e-5)
    with pytest.raises(UsageError, match="2 style-blend weights given for 3 style images"):
        NST(**TINY, style_blend=(1.0, 1.0)).paint(make_content(), [make_style(), other_style(), make_style()]).run()
    with pytest.raises(UsageError, match="style-blend weights must be non-negative"):
        NST(**TINY, style_blend=(1.0, -1.0))


def test_style_size_and_scale_per_style() -> None:
    content, styles = make_content((80, 64)), [make_style((72, 72)), other_style((64, 32))]
    inputs = NST(**TINY, style_size=(48, 40)).load_images(content, styles)
    assert [max(s.shape[2:]) for s in inputs.styles] == [48, 40]
    inputs = NST(**TINY, style_scale=0.5).load_images(content, styles)
    assert [max(s.shape[2:]) for s in inputs.styles] == [32, 32]
    # Halfway down the coarse-to-fine pyramid the styles shrink in proportion.
    inputs = NST(**TINY, style_scale=(1.0, 0.5)).load_images(content, styles, size=32)
    assert [max(s.shape[2:]) for s in inputs.styles] == [32, 16]
    with pytest.raises(UsageError, match="3 style-size values given for 2 style images"):
        NST(**TINY, style_size=(40, 40, 40)).load_images(content, styles)
    with pytest.raises(UsageError, match="not both"):
        NST(**TINY, style_size=40, style_scale=0.5)
    with pytest.raises(UsageError, match="style-scale must be above 0"):
        NST(**TINY, style_scale=0.0)


# -- colour -----------------------------------------------------------------------------------------
def test_luminance_mode_keeps_the_contents_chroma() -> None:
    content = make_content()
    nst = NST(**TINY, preserve_color="luminance")
    inputs = nst.load_images(content, make_style())
    assert torch.allclose(inputs.content[:, 0], inputs.content[:, 1])  # the network sees luminance only
    result = nst.paint(content, make_style()).run()
    reference = _content_at(content, result)
    inside = ((result > 0.01) & (result < 0.99)).all(1)  # chroma cannot survive clipping
    assert inside.float().mean() > 0.8
    diff = (_chroma(result) - _chroma(reference)).abs().permute(1, 0, 2, 3)[:, inside]
    assert float(diff.max()) < 0.01
    # ... while the luminance is the painting's, not the photo's.
    assert float((rgb_to_yiq(result)[:, 0] - rgb_to_yiq(reference)[:, 0]).abs().mean()) > 0.02


def test_luminance_mode_matches_the_styles_luminance_to_the_content() -> None:
    nst = NST(**TINY, preserve_color="luminance")
    inputs = nst.load_images(make_content(), make_style())
    y_style, y_content = inputs.styles[0][:, 0], inputs.content[:, 0]
    assert abs(float(y_style.mean() - y_content.mean())) < 1e-4
    assert abs(float(y_style.std() - y_content.std())) < 1e-3


def test_histogram_mode_gives_the_style_the_contents_colour_statistics() -> None:
    content = make_content()
    nst = NST(**TINY, preserve_color="histogram")
    inputs = nst.load_images(content, make_style())
    style = inputs.styles[0].double().permute(1, 0, 2, 3).reshape(3, -1)
    photo = inputs.content.double().permute(1, 0, 2, 3).reshape(3, -1)
    assert torch.allclose(style.mean(1), photo.mean(1), atol=0.02)  # up to the clipped pixels
    assert torch.allclose(torch.cov(style), torch.cov(photo), atol=0.01)
    plain = NST(**TINY).load_images(content, make_style()).styles[0]
    assert not torch.allclose(plain, inputs.styles[0], atol=0.05)


def test_original_colors_after_the_run() -> None:
    content = make_content()
    result = NST(**TINY, original_colors=True).paint(content, make_style()).run()
    plain = NST(**TINY).paint(content, make_style()).run()
    reference = _content_at(content, result)
    inside = ((result > 0.01) & (result < 0.99)).all(1)
    diff = (_chroma(result) - _chroma(reference)).abs().permute(1, 0, 2, 3)[:, inside]
    assert float(diff.max()) < 0.01
    # Same optimisation, only recoloured: the luminance is the plain run's.
    assert torch.allclose(rgb_to_yiq(result)[:, 0][inside], rgb_to_yiq(plain)[:, 0][inside], atol=1e-4)


@pytest.mark.slow
def test_colour_modes_work_coarse_to_fine_and_tiled() -> None:
    content = make_content((96, 80))
    for settings in ({"preserve_color": "luminance"}, {"preserve_color": "histogram"}, {"original_colors": True}):
        nst = NST(size=96, device="cpu", seed=1, scales=2, scale_steps=(4, 3), tile=48, **settings)
        painting = nst.paint(content, make_style())
        events = list(painting)
        assert len(events) == 7 and torch.isfinite(painting.image).all()
        assert painting.image.shape == (1, 3, 80, 96)


def test_previews_are_recoloured_too() -> None:
    content = make_content()
    painting = NST(**TINY, preserve_color="luminance").paint(content, make_style(), preview_every=6)
    previews = [e.image for e in painting if e.image is not None]
    assert previews and not torch.allclose(previews[-1][:, 0], previews[-1][:, 1])  # not grey


# -- padding ----------------------------------------------------------------------------------------
def test_padding_changes_the_result_only_through_the_borders() -> None:
    content = make_content()
    painted = {mode: NST(**TINY, padding=mode).paint(content, make_style()).run() for mode in PADDINGS}
    for mode in ("reflect", "replicate"):
        assert torch.isfinite(painted[mode]).all() and not torch.equal(painted["zeros"], painted[mode])
    assert torch.equal(NST(**TINY).paint(content, make_style()).run(), painted["reflect"])  # the default
    with pytest.raises(UsageError, match="unknown padding"):
        NST(**TINY, padding="circular")


# -- the command line ------------------------------------------------------------------------------
CLI_TINY = ["--size", "48", "--steps", "3", "--scales", "1", "--device", "cpu", "--seed", "1", "-q"]


@pytest.fixture
def two_styles(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    make_style().save(a)
    other_style().save(b)
    return a, b


@pytest.fixture(scope="module")
def default_two_style_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], np.ndarray]:
    """A content and two styles, and CLI_TINY's result with every setting at its default."""
    folder = tmp_path_factory.mktemp("two_styles")
    content, a, b, out = (folder / name for name in ("content.png", "a.png", "b.png", "out.png"))
    make_content().save(content)
    make_style().save(a)
    other_style().save(b)
    inputs = [str(content), str(a), str(b)]
    assert main([*inputs, "-o", str(out), *CLI_TINY]) == 0
    return inputs, np.asarray(Image.open(out))


@pytest.mark.parametrize(
    ("flags", "settings"),
    [
        (["--style-blend", "0.7", "0.3"], {"style_blend": [0.7, 0.3]}),
        (["--style-size", "40", "56"], {"style_size": [40, 56]}),
        (["--style-scale", "0.75"], {"style_scale": 0.75}),
        (["--preserve-color", "luminance"], {"preserve_color": "luminance"}),
        (["--preserve-color", "histogram", "--color-match", "chol"],
         {"preserve_color": "histogram", "color_match": "chol"}),
        (["--preserve-color", "histogram", "--color-match", "sym"],
         {"preserve_color": "histogram", "color_match": "sym"}),
        (["--original-colors"], {"original_colors": True}),
        (["--padding", "zeros"], {"padding": "zeros"}),
        (["--padding", "replicate"], {"padding": "replicate"}),
    ],
)
def test_cli_control_flags(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, default_two_style_run: tuple[list[str], np.ndarray],
    flags: list[str], settings: dict[str, object],
) -> None:
    inputs, default = default_two_style_run
    out = tmp_path / "out.png"
    code, _, err = run(capsys, *inputs, "-o", str(out), *CLI_TINY, *flags, "--manifest")
    assert code == 0, err
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert {name: manifest["settings"][name] for name in settings} == settings  # the run's own config
    result = np.asarray(Image.open(out))
    assert result.shape == default.shape == (38, 48, 3)
    assert not np.array_equal(result, default)  # and it painted something else


def test_cli_style_folder_and_default_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content_path: Path, two_styles: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    folder = tmp_path / "styles"
    folder.mkdir()
    for s in two_styles:
        s.rename(folder / s.name)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, str(content_path), str(folder), *CLI_TINY, "--json")
    assert code == 0, err
    assert (tmp_path / "content_a+b.png").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, str(content_path), str(empty), *CLI_TINY)
    assert code == 2 and "has no images" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--style-blend", "1"], "1 style-blend weights given for 2 style images"),
        (["--style-blend", "1", "-1"], "style-blend weights must be non-negative"),
        (["--style-blend", "x", "1"], "invalid number 'x'"),
        (["--style-size", "40", "40", "40"], "3 style-size values given for 2 style images"),
        (["--style-size", "10"], "style-size must be at least 32"),
        (["--style-scale", "0"], "style-scale must be above 0"),
        (["--style-scale", "0.5", "--style-size", "40"], "not both"),
        (["--preserve-color", "lab"], "invalid choice: 'lab'"),
        (["--color-match", "svd"], "invalid choice: 'svd'"),
        (["--padding", "circular"], "invalid choice: 'circular'"),
    ],
)
def test_cli_control_bad_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content_path: Path, two_styles: tuple[Path, Path],
    flags: list[str], message: str,
) -> None:
    out = tmp_path / "out.png"
    code, _, err = run(capsys, str(content_path), *map(str, two_styles), "-o", str(out), *CLI_TINY, *flags)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# -- Adam with iterate averaging -------------------------------------------------------------------
def test_iterate_average_is_a_bias_corrected_ema() -> None:
    from artistyle.optim import IterateAverage

    avg = IterateAverage(torch.zeros(3), 0.5)
    avg.update(torch.full((3,), 2.0))
    assert torch.allclose(avg.value, torch.full((3,), 2.0))  # no pull towards the zero start
    avg.update(torch.full((3,), 4.0))
    # (0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.25) = 3.333...
    assert torch.allclose(avg.value, torch.full((3,), 2.5 / 0.75))


def test_adam_image_is_the_average_of_its_iterates_and_resumes() -> None:
    nst = NST(**{**TINY, "steps": 20}, optimizer="adam", lr=0.05)
    inputs = nst.load_images(make_content(), make_style())
    transfer = nst.transfer(inputs)
    events = list(transfer)
    assert events[-1].loss < events[0].loss / 2
    last_iterate = transfer.pixels.detach().clamp(0, 1)
    assert not torch.equal(transfer.image, last_iterate)
    assert isinstance(transfer.optimizer, AveragedAdam)
    assert torch.allclose(transfer.image, transfer.optimizer.average.value.clamp(0, 1))
    # Stopped after 10 and resumed, it ends where the uninterrupted run does.
    first = nst.transfer(inputs, steps=20)
    for event in first:
        if event.iteration == 10:
            break
    state = first.state_dict()
    resumed = nst.transfer(inputs, steps=20)
    resumed.load_state_dict(state)
    list(resumed)
    assert torch.allclose(resumed.image, transfer.image, atol=1e-6)


# -- scale control ---------------------------------------------------------------------------------
def test_combine_scales_takes_fine_texture_from_one_style_and_structure_from_the_other() -> None:
    from artistyle.losses import gram_matrix
    from artistyle.vgg import VGGFeatures

    from .conftest import SAMPLES

    nst = NST(**TINY)
    size = 96
    coarse = array_to_tensor(resize_long_edge(np.asarray(Image.open(SAMPLES / "great_wave.jpg"), np.float32) / 255, size))
    fine = array_to_tensor(resize_long_edge(np.asarray(Image.open(SAMPLES / "starry_night.jpg"), np.float32) / 255, size))
    combined = nst.combine_scales(coarse, fine, steps=60)
    net = VGGFeatures(nst.weights, ["conv1_1", "conv2_1", "conv4_1", "conv5_1"])
    with torch.no_grad():
        f = {k: net(v) for k, v in {"coarse": coarse, "fine": fine, "combined": combined}.items()}

    def distance(a: str, b: str, layer: str) -> float:
        ga, gb = gram_matrix(f[a][layer]), gram_matrix(f[b][layer])
        return float((ga - gb).pow(2).sum() / gb.pow(2).sum())

    for layer in ("conv1_1", "conv2_1"):  # the fine texture moved to the fine style's
        assert distance("combined", "fine", layer) < 0.25 * distance("coarse", "fine", layer), layer
    # The large structure is still the coarse style's (conv5_1 sees most of a 96 px image) ...
    assert distance("combined", "coarse", "conv5_1") < distance("combined", "fine", "conv5_1")

    # ... and so is the layout: the combined image correlates with the coarse one, not the fine one.
    def corr(a: torch.Tensor, b: torch.Tensor) -> float:
        b = torch.nn.functional.interpolate(b, size=tuple(a.shape[2:]), mode="bilinear", align_corners=False)
        return float(torch.corrcoef(torch.stack([a.mean(1).flatten(), b.mean(1).flatten()]))[0, 1])

    assert corr(combined, coarse) > 0.6 and corr(combined, fine) < 0.3


@pytest.mark.slow
def test_fine_style_in_a_run_and_the_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content_path: Path, two_styles: tuple[Path, Path]
) -> None:
    painting = NST(**TINY, fine_style=str(two_styles[1])).paint(make_content(), make_style())
    assert len(list(painting)) == 12 and torch.isfinite(painting.image).all()
    out = tmp_path / "out.png"
    code, _, err = run(capsys, str(content_path), str(two_styles[0]), "--fine-style", str(two_styles[1]),
                        "-o", str(out), *CLI_TINY)
    assert code == 0, err
    code, _, err = run(capsys, str(content_path), str(two_styles[0]), "--fine-style", str(tmp_path / "nope.jpg"),
                        "-o", str(out), *CLI_TINY)
    assert code == 2 and "fine style image" in err and "does not exist" in err


def test_stop_ends_the_fine_style_build(monkeypatch: pytest.MonkeyPatch, two_styles: tuple[Path, Path]) -> None:
    from artistyle import nst as nst_module
    from artistyle.engine import Engine

    painting = NST(**TINY, fine_style=str(two_styles[1])).paint(make_content(), make_style())
    builds: list[nst_module.Transfer] = []
    original = Engine.combine_scales_transfer  # what the painting calls
    step = nst_module.Transfer._step

    def build(self: Engine, *args: object, **kwargs: object) -> nst_module.Transfer:
        builds.append(original(self, *args, **kwargs))  # type: ignore[arg-type]
        return builds[-1]

    def stop_at_2(self: nst_module.Transfer):  # type: ignore[no-untyped-def]
        if builds and self is builds[0] and self.iteration == 2:
            painting.stop()  # as the studio's Cancel does, from its own thread
        return step(self)

    monkeypatch.setattr(Engine, "combine_scales_transfer", build)
    monkeypatch.setattr(nst_module.Transfer, "_step", stop_at_2)
    assert list(painting) == [] and painting.transfer is None
    assert builds[0].iteration == 3  # not the build's 200 iterations


def test_blend_and_style_scale_work_coarse_to_fine_and_tiled() -> None:
    settings = dict(size=96, device="cpu", seed=1, scales=2, scale_steps=(3, 2), style_blend=(0.6, 0.4), style_scale=0.8)
    tiled = NST(**settings, tile=48).paint(make_content((96, 80)), [make_style(), other_style()])
    whole = NST(**settings).paint(make_content((96, 80)), [make_style(), other_style()])
    a, b = tiled.run(), whole.run()
    assert a.shape == b.shape == (1, 3, 80, 96)
    # Exact tiling: the same run up to float rounding, amplified a little by 5 L-BFGS steps.
    assert float((a - b).abs().max()) < 1e-2

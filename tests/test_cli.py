"""The command line, in process: every flag, every bad input, exit codes, no stray files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artistyle import __version__
from artistyle.cli import main
from artistyle.vgg import LAYER_NAMES

from .conftest import FAST, make_content, make_style, run


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_version_and_list_layers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out
    code, out, _ = run(capsys, "--list-layers")
    assert code == 0 and out.split() == list(LAYER_NAMES)


def test_help_explains_iterations(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "one evaluation" in out and "--style-weight" in out and "--save-every" in out


def test_default_run_writes_only_its_output(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = run(capsys, str(content_path), str(style_path), *FAST)
    assert code == 0, err
    assert files(work) == {"content_style.png"}
    assert Image.open(work / "content_style.png").size == (48, 38)
    assert out == "" and err == ""  # --quiet


def test_json_summary(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "o.jpg"
    code, out, _ = run(capsys, str(content_path), str(style_path), "-o", str(out_path), *FAST, "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["output"] == str(out_path) and summary["steps"] == 2 and summary["seed"] == 3
    assert (summary["width"], summary["height"]) == (48, 38) and summary["device"] == "cpu"
    assert set(summary["losses"]) >= {"content:conv4_2", "style:conv1_1"} and summary["seconds"] > 0
    assert summary["weights"].startswith("vgg19-caffe") and len(summary["weights_sha256"]) == 64
    assert Image.open(out_path).format == "JPEG"


def test_progress_bar_and_summary_on_stderr(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # rich sizes the bar to this; on a pipe it draws the final state once
    argv = [a for a in FAST if a != "--quiet"]
    code, out, err = run(capsys, str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *argv)
    assert code == 0 and out == ""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err)  # without colours, should a terminal be forced
    assert re.search(r"painting 48x38 \u2501+ 2/2 loss [0-9.e+]+ [0-9.]+ s/it [0-9:]+ ETA [0-9:]+\n", text), text
    assert re.search(r"\nsaved .*o\.png \(48x38, 2 iterations, [0-9.]+ s, seed 3\)\n$", text), text


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """A content, a style and the FAST run's result with every setting at its default."""
    folder = tmp_path_factory.mktemp("default")
    content, style, out = folder / "content.png", folder / "style.png", folder / "o.png"
    make_content().save(content)
    make_style().save(style)
    assert main([str(content), str(style), "-o", str(out), *FAST]) == 0
    return content, style, np.asarray(Image.open(out))


@pytest.mark.parametrize(
    ("flags", "settings"),
    [
        (["--content-weight", "2", "--style-weight", "1e-2", "--tv-weight", "1"],
         {"content_weight": 2.0, "style_weight": 1e-2, "tv_weight": 1.0}),
        (["--init", "content"], {"init": "content"}),
        (["--init", "style"], {"init": "style"}),
        (["--optimizer", "adam", "--lr", "0.05"], {"optimizer": "adam", "lr": 0.05}),
        (["--optimizer", "lbfgs", "--lr", "0.5", "--lbfgs-history", "3"],
         {"optimizer": "lbfgs", "lr": 0.5, "lbfgs_history": 3}),
        (["--content-layers", "conv3_1,relu4_2", "--style-layers", "relu1_1,conv2_1"],
         {"content_layers": ["conv3_1", "relu4_2"], "style_layers": ["relu1_1", "conv2_1"]}),
        (["--style-layer-weights", "1,2,3,4,5"], {"style_layer_weights": [1.0, 2.0, 3.0, 4.0, 5.0]}),
        (["--pooling", "avg"], {"pooling": "avg"}),
        (["--style-size", "40"], {"style_size": 40}),
        (["--device", "auto"], {"device": "auto"}),
    ],
)
def test_flags_reach_the_run(
    capsys: pytest.CaptureFixture[str], default_run: tuple[Path, Path, np.ndarray], tmp_path: Path,
    flags: list[str], settings: dict[str, object],
) -> None:
    from artistyle.devices import resolve_device

    content, style, default = default_run
    out_path = tmp_path / "o.png"
    code, out, err = run(capsys, str(content), str(style), "-o", str(out_path), *FAST, *flags, "--manifest", "--json")
    assert code == 0, err
    manifest = json.loads(out_path.with_suffix(".json").read_text())
    assert {name: manifest["settings"][name] for name in settings} == settings  # the run's own config
    result = np.asarray(Image.open(out_path))
    assert result.shape == default.shape
    if flags[0] == "--device":
        assert json.loads(out)["device"] == manifest["device"] == str(resolve_device("auto"))
    else:
        assert not np.array_equal(result, default)  # and it painted something else


def test_init_from_file_and_weights_flag(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    import torch

    from artistyle.vgg import CONV_NAMES
    from artistyle.weights import default_weights

    index = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    state = {}
    for name, i in zip(CONV_NAMES, index):
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = default_weights().convs[name]
    weights = tmp_path / "vgg19.pth"
    torch.save(state, weights)
    out_path = tmp_path / "o.png"
    argv = [str(content_path), str(style_path), "-o", str(out_path), *FAST, "--json"]
    code, out, err = run(capsys, *argv, "--init", str(style_path), "--weights", str(weights))
    assert code == 0, err
    assert json.loads(out)["weights"] == "torchvision:vgg19.pth"


def test_save_every(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [str(content_path), str(style_path), "-o", str(out_dir / "r.png"), "--device", "cpu", "--size", "48"]
    code, _, err = run(capsys, *argv, "--steps", "5", "--save-every", "2", "-q")
    assert code == 0, err
    assert files(out_dir) == {"r.png", "r_iter0002.png", "r_iter0004.png"}


def test_16_bit_tiff(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "o.tif"
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(out_path), *FAST, "--bit-depth", "16")
    assert code == 0, err
    from artistyle.images import load_image

    assert load_image(out_path).bit_depth == 16


def test_alpha_survives_to_png(capsys: pytest.CaptureFixture[str], style_path: Path, tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (64, 64), (200, 100, 50, 255))
    alpha = np.full((64, 64), 255, np.uint8)
    alpha[:, :32] = 0
    rgba.putalpha(Image.fromarray(alpha))
    src = tmp_path / "rgba.png"
    rgba.save(src)
    out_path = tmp_path / "o.png"
    code, _, err = run(capsys, str(src), str(style_path), "-o", str(out_path), *FAST)
    assert code == 0, err
    result = Image.open(out_path)
    assert result.mode == "RGBA" and np.asarray(result)[:, :20, 3].max() == 0


def test_ctrl_c_saves_the_image_so_far(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artistyle import nst as nst_module

    original = nst_module.Transfer._step

    def interrupt_at_3(self: nst_module.Transfer):  # type: ignore[no-untyped-def]
        if self.iteration == 3:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(nst_module.Transfer, "_step", interrupt_at_3)
    out_path = tmp_path / "o.png"
    code, out, err = run(capsys, str(content_path), str(style_path), "-o", str(out_path), *FAST[:4], "--steps", "10",
                         "--json", "-q")
    assert code == 130
    assert "interrupted at iteration 3" in err and out_path.exists()
    assert json.loads(out)["interrupted"] is True and json.loads(out)["steps"] == 3


def test_ctrl_c_before_the_first_iteration_saves_nothing(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artistyle import nst as nst_module

    def interrupt(self: nst_module.Transfer):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # the first step of the fine style's build: the painting has no image yet

    monkeypatch.setattr(nst_module.Transfer, "_step", interrupt)
    out_path = tmp_path / "o.png"
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(out_path), *FAST,
                       "--fine-style", str(style_path))
    assert code == 130 and err == "artistyle: interrupted before the first iteration; nothing saved\n"
    assert not out_path.exists()


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20)).save(tiny)
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    return {"empty": empty, "text": text, "tiny": tiny, "truncated": truncated, "missing": tmp_path / "nope.jpg"}


@pytest.mark.parametrize(
    "which, message",
    [
        ("missing", "does not exist"),
        ("empty", "empty"),
        ("text", "not an image"),
        ("tiny", "20x20"),
        ("truncated", "truncated|damaged|corrupt"),
    ],
)
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_files(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, which: str, message: str, role: str
) -> None:
    bad = _bad_files(tmp_path)[which]
    args = [str(bad), str(style_path)] if role == "content" else [str(content_path), str(bad)]
    before = files(tmp_path)
    code, _, err = run(capsys, *args, "-o", str(tmp_path / "o.png"), *FAST)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("artistyle: error:") and "Traceback" not in err
    assert f"{role} image" in err
    assert re.search(message, err, re.IGNORECASE), err
    assert files(tmp_path) == before


@pytest.mark.parametrize(
    "flags, message, code",
    [
        (["--steps", "0"], "must be at least 1", 2),
        (["--steps", "-3"], "must be at least 1", 2),
        (["--steps", "many"], "invalid integer", 2),
        (["--size", "0"], "must be at least 1", 2),
        (["--size", "16"], "size must be at least 32", 2),
        (["--style-size", "10"], "style-size must be at least 32", 2),
        (["--style-layers", "conv1_1,conv9_1"], "unknown style layer 'conv9_1'", 2),
        (["--content-layers", "conv4_22"], "did you mean conv4_2", 2),
        (["--style-layer-weights", "1,2"], "2 style layer weights given for 5", 2),
        (["--style-weight", "-1"], "style-weight must be", 2),
        (["--content-weight", "nan"], "content-weight must be", 2),
        (["--lr", "0"], "lr must be", 2),
        (["--device", "tpu"], "unknown device 'tpu'", 2),
        (["--device", "cuda:7"], "not available", 2),
        (["--optimizer", "sgd"], "invalid choice", 2),
        (["--pooling", "min"], "invalid choice", 2),
        (["--init", "blue"], "--init must be noise, content, style, fast or an image file", 2),
        (["--bit-depth", "16"], "needs a .tif", 2),
        (["--bit-depth", "12"], "invalid choice", 2),
        (["--seed", "-1"], "seed must be", 2),
    ],
)
def test_bad_flag_values(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, flags: list[str], message: str,
    code: int,
) -> None:
    before = files(tmp_path)
    got, _, err = run(capsys, str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST, *flags)
    assert got == code, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert files(tmp_path) == before


def test_missing_arguments(capsys: pytest.CaptureFixture[str], content_path: Path) -> None:
    code, _, err = run(capsys, str(content_path))
    assert code == 2 and "CONTENT and a STYLE" in err and err.count("\n") == 1
    code, _, err = run(capsys, str(content_path), "x.jpg", "--no-such-flag")
    assert code == 2 and "unrecognized arguments" in err


@pytest.mark.parametrize(
    "output, message",
    [
        ("missing_dir/o.png", "folder"),
        ("o.bmp", "unsupported|extension"),
    ],
)
def test_bad_output_paths(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, output: str, message: str
) -> None:
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(tmp_path / output), *FAST)
    assert code == 2 and re.search(message, err, re.IGNORECASE), err


def test_unwritable_output_folder(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    # Tests may run as root, for whom chmod locks nothing: deny access the way a read-only folder would.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(locked / "o.png"), *FAST)
    assert code == 2 and "writ" in err and err.count("\n") == 1
    assert not any(locked.iterdir())


def test_never_overwrites_an_input(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path) -> None:
    before = content_path.read_bytes()
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(content_path), *FAST)
    assert code == 2 and "input" in err
    assert content_path.read_bytes() == before


def test_corrupt_weights_file(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST, "--weights", str(bad))
    assert code == 2 and "not a PyTorch weights file" in err and not (tmp_path / "o.png").exists()


def test_nan_loss_is_a_runtime_error(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artistyle import nst as nst_module

    monkeypatch.setattr(nst_module.Transfer, "_step", lambda self: (float("nan"), {}))
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(tmp_path / "o.png"), *FAST, "--steps", "5")
    assert code == 1 and "loss became nan" in err and err.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_python_dash_m(content_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "artistyle", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and __version__ in result.stdout

"""StyleConfig is the one schema: every flag reaches its field, and JSON (a checkpoint, the studio) reads it back."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import torch

from artistyle import StyleConfig, UsageError
from artistyle.cli import build_parser, config_from_args
from artistyle.config import CPU_DEFAULT_SIZE, GPU_DEFAULT_SIZE

# One non-default value per setting: the flags that give it and the value the config must then hold.
# Together they are a valid config (apart from style_size and style_scale, which exclude each other).
FLAGS: dict[str, tuple[list[str], Any]] = {
    "size": (["--size", "100"], 100),
    "style_size": (["--style-size", "40", "56"], (40, 56)),
    "style_scale": (["--style-scale", "0.5"], 0.5),
    "device": (["--device", "cpu"], "cpu"),
    "max_memory": (["--max-memory", "2G"], 2 * 2**30),
    "precision": (["--precision", "bf16"], "bf16"),
    "tile": (["--tile", "64"], 64),
    "tile_workers": (["--tile-workers", "3"], 3),
    "lbfgs_storage": (["--lbfgs-storage", "bf16"], "bf16"),
    "weights": (["--weights", "vgg19.pth"], "vgg19.pth"),
    "content_weight": (["--content-weight", "2"], 2.0),
    "style_weight": (["--style-weight", "1e-2"], 1e-2),
    "tv_weight": (["--tv-weight", "0.5"], 0.5),
    "temporal_weight": (["--temporal-weight", "1e6"], 1e6),
    "content_layers": (["--content-layers", "conv3_1,relu4_2"], ("conv3_1", "relu4_2")),
    "style_layers": (["--style-layers", "relu1_1,conv2_1,conv3_1,conv4_1,relu5_1"],
                     ("relu1_1", "conv2_1", "conv3_1", "conv4_1", "relu5_1")),
    "style_layer_weights": (["--style-layer-weights", "1,2,3,4,5"], (1.0, 2.0, 3.0, 4.0, 5.0)),
    "pooling": (["--pooling", "avg"], "avg"),
    "padding": (["--padding", "zeros"], "zeros"),
    "style_loss": (["--style-loss", "w2"], "w2"),
    "style_blend": (["--style-blend", "0.7", "0.3"], (0.7, 0.3)),
    "preserve_color": (["--preserve-color", "histogram"], "histogram"),
    "color_match": (["--color-match", "chol"], "chol"),
    "original_colors": (["--original-colors"], True),
    "fine_style": (["--fine-style", "fine.png"], "fine.png"),
    "masks": (["--mask", "a.png", "b.png"], ("a.png", "b.png")),
    "steps": (["--steps", "7"], 7),
    "init": (["--init", "content"], "content"),
    "seed": (["--seed", "5"], 5),
    "optimizer": (["--optimizer", "adam"], "adam"),
    "lr": (["--lr", "0.5"], 0.5),
    "lbfgs_history": (["--lbfgs-history", "3"], 3),
    "tol": (["--tol", "0.01"], 0.01),
    "scales": (["--scales", "2"], 2),
    "scale_factor": (["--scale-factor", "2"], 2.0),
    "style_anchor": (["--style-anchor", "0"], 0),
    "scale_steps": (["--scale-steps", "3,2"], (3, 2)),
}


def from_cli(*flags: str) -> StyleConfig:
    return config_from_args(build_parser().parse_args(["content.png", "style.png", *flags]))


def test_every_setting_has_a_flag_case() -> None:
    assert set(FLAGS) == {f.name for f in fields(StyleConfig)}
    for name, (_, value) in FLAGS.items():
        assert value != getattr(StyleConfig(), name), name  # each case really changes its setting


@pytest.mark.parametrize("name", list(FLAGS))
def test_each_flag_reaches_the_config(name: str) -> None:
    flags, value = FLAGS[name]
    config = from_cli(*flags)
    assert getattr(config, name) == value
    assert config == StyleConfig(**{name: value})  # and nothing else changed


@pytest.mark.parametrize("left_out", ["style_size", "style_scale"])
def test_every_flag_round_trips_through_a_checkpoint(left_out: str) -> None:
    flags = [flag for name, (given, _) in FLAGS.items() if name != left_out for flag in given]
    config = from_cli(*flags)
    assert all(getattr(config, name) == value for name, (_, value) in FLAGS.items() if name != left_out)
    stored = json.loads(json.dumps(config.to_dict()))  # what a checkpoint and a manifest hold
    assert StyleConfig.from_mapping(stored) == config


def test_one_value_or_one_per_style() -> None:
    assert from_cli("--style-size", "40").style_size == 40
    assert from_cli("--style-scale", "0.5", "1").style_scale == (0.5, 1.0)
    assert StyleConfig.from_mapping({"style_size": 40}).style_size == 40
    assert StyleConfig.from_mapping({"style_size": [40, 50]}).style_size == (40, 50)
    assert StyleConfig.from_mapping({"style_scale": 1}).style_scale == 1.0


def test_init_takes_a_name_or_an_existing_file(tmp_path: Path) -> None:
    image = tmp_path / "start.png"
    image.write_bytes(b"")
    assert from_cli("--init", str(image)).init == str(image)
    with pytest.raises(UsageError, match="--init must be noise, content, style, fast or an image file; 'blue' is none"):
        from_cli("--init", "blue")


def test_from_mapping_reads_json_types() -> None:
    config = StyleConfig.from_mapping({"steps": 20.0, "content_layers": ["conv3_1"], "seed": None, "lr": 1})
    assert config == StyleConfig(steps=20, content_layers=("conv3_1",), lr=1.0)
    assert isinstance(config.steps, int) and isinstance(config.lr, float)
    assert StyleConfig.from_mapping({}) == StyleConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": True}, "steps must be a number, not True"),
        ({"content_weight": False}, "content-weight must be a number, not False"),
        ({"style_blend": [1, True]}, "style-blend must be a number, not True"),
        ({"steps": 2.5}, "steps must be a whole number, not 2.5"),
        ({"size": "big"}, "size must be a number, not 'big'"),
        ({"tv_weight": float("inf")}, "tv-weight must be a finite number"),
        ({"original_colors": 1}, "original-colors must be true or false, not 1"),
        ({"pooling": 3}, "pooling must be a string, not 3"),
        ({"content_layers": "conv4_2"}, "content-layers must be a non-empty list"),
        ({"style_layers": []}, "style-layers must be a non-empty list"),
        ({"content_layers": ["conv4_2", 7]}, "content-layers must be a string, not 7"),
        ({"steps": None}, "steps needs a value"),
        ({"size": 10}, "size must be at least 32 px, not 10"),  # validate's own message, as on the command line
        ({"padding": "mirror"}, "unknown padding 'mirror'; choose zeros, reflect, replicate"),
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'; choose lbfgs or adam"),
        ({"no_such": 1}, "unknown setting 'no_such'; known: size, style_size"),
        (["steps", 3], "settings must be a JSON object"),
    ],
)
def test_from_mapping_refuses_bad_values(data: Any, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        StyleConfig.from_mapping(data)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("name", ["tv_weight", "padding", "no_such_setting"])
def test_a_long_bad_value_is_quoted_short(name: str) -> None:
    data = {name: "x" * 10_000} if name != "no_such_setting" else {"y" * 10_000: 1}
    with pytest.raises(UsageError) as caught:
        StyleConfig.from_mapping(data)
    assert "xxx..." in str(caught.value) or "yyy..." in str(caught.value)
    assert len(str(caught.value)) < 600


def test_allowed_names_and_no_files() -> None:
    with pytest.raises(UsageError, match=r"unknown setting 'masks'; known: steps, seed$"):
        StyleConfig.from_mapping({"masks": ["a.png"]}, allowed=("steps", "seed"))
    assert StyleConfig.from_mapping({"init": "style"}, files=False).init == "style"
    with pytest.raises(UsageError, match="init must be noise, content, style, fast, not '/etc/passwd'"):
        StyleConfig.from_mapping({"init": "/etc/passwd"}, files=False)
    with pytest.raises(UsageError, match="weights cannot name a file here"):
        StyleConfig.from_mapping({"weights": "w.pth"}, files=False)
    assert StyleConfig.from_mapping({"init": "/some/start.png"}).init == "/some/start.png"  # a checkpoint's own


def test_studio_settings_leave_out_paths_and_the_servers_own() -> None:
    studio = {s.name for s in StyleConfig.settings() if s.studio}
    assert not studio & {"masks", "fine_style", "weights", "device", "max_memory"}
    assert {"size", "steps", "init", "style_scale", "content_layers"} <= studio


def test_output_size_and_check_per_device() -> None:
    config = StyleConfig()
    assert config.output_size("cpu") == config.check(1, "cpu") == CPU_DEFAULT_SIZE
    assert config.output_size("cuda") == config.check(1, "cuda") == config.check(1, "mps") == GPU_DEFAULT_SIZE
    assert StyleConfig(size=100).check(2, "cuda") == 100
    # Five scales, each half the next: 28 px first at the CPU's 448, 32 px at the GPU's 512.
    deep = StyleConfig(scales=5, scale_factor=2.0)
    assert deep.check(1, "cuda") == GPU_DEFAULT_SIZE
    with pytest.raises(UsageError, match="under 32 px"):
        deep.check(1, "cpu")
    with pytest.raises(UsageError, match="2 style-blend weights given for 3 style images"):
        StyleConfig(style_blend=(1, 2)).check(3, "cpu")
    with pytest.raises(UsageError, match="3 style-size values given for 2 style images"):
        StyleConfig(style_size=(40, 40, 40)).check(2, "cpu")


def test_the_studio_checks_scales_at_its_own_devices_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from artistyle.web import settings as studio_settings

    settings = {"scales": 5, "scale_factor": 2}
    with pytest.raises(UsageError, match="under 32 px"):
        studio_settings.parse_settings(settings, 1, device="cpu")
    monkeypatch.setattr(studio_settings, "resolve_device", lambda spec: torch.device("cuda"))
    assert studio_settings.parse_settings(settings, 1, device="cuda").scales == 5


def test_help_is_made_from_the_schema() -> None:
    text = " ".join(build_parser().format_help().split())
    for setting in StyleConfig.settings():
        assert setting.option in text
    assert "--mask PATH [PATH ...]" in text and "--style-blend W [W ...]" in text
    assert "(default conv4_2; see --list-layers)" in text and "80% of the free RAM" in text


def test_the_ranges_settings_describe_are_the_ones_validate_enforces() -> None:
    # Setting.minimum/maximum (the studio's form sets them on its boxes) hold for every value: a config at the
    # bound is valid, one past it is refused. A list setting gets the value first, then ones.
    layers = len(StyleConfig().style_layers)
    checked = set()
    for setting in StyleConfig.settings():
        for bound, past in ((setting.minimum, -1), (setting.maximum, 1)):
            if bound is None:
                continue
            for value, valid in ((bound, True), (bound + (past if setting.kind is int else past / 2), False)):
                one = setting.kind(value)
                given = (one, *(setting.kind(1),) * (layers - 1)) if setting.many else one
                if valid:
                    StyleConfig(**{setting.name: given}).validate()
                else:
                    with pytest.raises(UsageError):
                        StyleConfig(**{setting.name: given}).validate()
            checked.add(setting.name)
    assert {"size", "steps", "content_weight", "seed", "scale_factor", "style_blend"} <= checked

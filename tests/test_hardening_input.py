"""Issue 12, the input part: a regression corpus of bad inputs found by an adversarial run.

Every case runs the real command line in-process and must end with exit status 2, exactly one
line on stderr naming the problem, no traceback, no output file, and the inputs untouched.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle.config import StyleConfig
from artistyle.errors import UsageError

from .conftest import FAST, make_content, make_style, run


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def noise(width: int, height: int, path: Path) -> Path:
    """A random picture of ``width`` x ``height`` px saved at ``path``."""
    rng = np.random.default_rng(width * 7919 + height)
    Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).save(path)
    return path


def refused(capsys: pytest.CaptureFixture[str], output: Path, inputs: list[Path], *argv: str) -> str:
    """Run the CLI; assert the one-line refusal (status 2, no traceback, no output, inputs untouched); return it."""
    before = {path: digest(path) for path in inputs}
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert not output.exists()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    assert {path: digest(path) for path in inputs} == before
    return err


# -- D6: images whose short side drops under what the deepest layer needs ------------------------

@pytest.mark.parametrize(
    ("width", "height", "size"),
    [
        (1000, 100, "128"),  # a 10:1 panorama
        (100, 1000, "128"),  # the same, tall
        (2000, 60, "448"),
        (60, 2000, "448"),
        (10000, 40, None),  # the default size: 448x2 after resizing
        (40, 10000, None),
        (2000, 100, "512"),  # 512x26 at the output size, but 256x13 at the first of its two scales
    ],
)
@pytest.mark.parametrize("role", ["content", "style"])
def test_a_too_elongated_image_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path],
    width: int, height: int, size: str | None, role: str,
) -> None:
    content, style = images
    wide = noise(width, height, tmp_path / "wide.png")
    pair = (wide, style) if role == "content" else (content, wide)
    output = tmp_path / "out.png"
    options = ["--device", "cpu", "--steps", "1", "--seed", "3", "--quiet", *(["--size", size] if size else [])]
    err = refused(capsys, output, [content, style, wide], *map(str, pair), "-o", str(output), *options)
    assert f"{role} image '{wide}' is {width}x{height} px" in err
    assert "conv5_1 needs" in err and ("--size" in err or "less elongated" in err)


def test_the_size_the_message_names_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    _, style = images
    wide = noise(1000, 100, tmp_path / "wide.png")
    output = tmp_path / "out.png"
    options = ["--device", "cpu", "--steps", "1", "--seed", "3", "--quiet"]
    err = refused(capsys, output, [wide, style], str(wide), str(style), "-o", str(output), *options, "--size", "128")
    suggested = err.split("use --size ")[1].split()[0]
    assert suggested == "155"  # 1000x100 at 155 px is 155x16: conv5_1 (stride 16) has one row of features
    code, _, err = run(capsys, str(wide), str(style), "-o", str(output), *options, "--size", suggested)
    assert code == 0, err
    assert output.exists()


def test_a_too_elongated_fine_style_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    fine = noise(10000, 40, tmp_path / "fine.png")
    output = tmp_path / "out.png"
    err = refused(capsys, output, [content, style, fine], str(content), str(style), "-o", str(output), *FAST,
                  "--fine-style", str(fine))
    assert f"fine style image '{fine}'" in err and "conv2_1 needs" in err


def test_the_library_refuses_it_too(tmp_path: Path) -> None:
    from artistyle import NST

    wide = noise(1000, 100, tmp_path / "wide.png")
    with pytest.raises(UsageError, match=r"content image .* under the 16 px conv5_1 needs"):
        NST(device="cpu", size=128, steps=1).paint(str(wide), make_style())


# -- D7: a repeated layer name -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("option", "layers"),
    [
        ("--style-layers", "conv1_1,conv1_1"),
        ("--style-layers", "conv1_1,conv2_1,conv3_1,conv2_1"),
        ("--content-layers", "conv4_2,conv4_2"),
    ],
)
def test_a_repeated_layer_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path], option: str, layers: str
) -> None:
    content, style = images
    output = tmp_path / "out.png"
    err = refused(capsys, output, [content, style], str(content), str(style), "-o", str(output), *FAST,
                  option, layers)
    assert "more than once" in err


@pytest.mark.parametrize("field", ["style_layers", "content_layers"])
def test_the_studio_refuses_a_repeated_layer(field: str) -> None:
    with pytest.raises(UsageError, match="conv2_1 is given more than once"):
        StyleConfig.from_mapping({field: ["conv2_1", "conv2_1"]})


# -- D10: damaged but loadable checkpoints -------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real checkpoint of each optimiser, made by the command line, loaded."""
    folder = tmp_path_factory.mktemp("checkpoints")
    content, style = folder / "content.png", folder / "style.png"
    make_content().save(content)
    make_style().save(style)
    states = {}
    for optimizer in ("lbfgs", "adam"):
        ckpt = folder / f"{optimizer}.ckpt"
        from artistyle.cli import main

        assert main([str(content), str(style), "-o", str(folder / f"{optimizer}.png"), *FAST, "--scales", "2",
                     "--size", "64", "--optimizer", optimizer, "--checkpoint", str(ckpt)]) == 0
        states[optimizer] = torch.load(ckpt, weights_only=True)
    yield {"states": states, "content": content, "style": style}


def delete(key: str) -> Callable[[dict[str, Any]], None]:
    def change(mapping: dict[str, Any]) -> None:
        del mapping[key]
    return change


def put(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(mapping: dict[str, Any]) -> None:
        mapping[key] = value
    return change


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(mapping: dict[str, Any]) -> None:
        for one in changes:
            one(mapping)
    return change


# (optimizer, where, change, the field the message must name)
DAMAGE = [
    ("lbfgs", "", delete("config"), "config"),
    ("lbfgs", "", put("config", "lbfgs"), "config"),
    ("lbfgs", "config", put("bogus_key", 1), "bogus_key"),
    ("lbfgs", "config", put("steps", "ten"), "steps"),
    ("lbfgs", "", delete("inputs"), "inputs"),
    ("lbfgs", "", put("inputs", ["content.png"]), "inputs"),
    ("lbfgs", "inputs", delete("content"), "inputs.content"),
    ("lbfgs", "inputs", put("content", 7), "inputs.content"),
    ("lbfgs", "inputs", delete("styles"), "inputs.styles"),
    ("lbfgs", "inputs", put("styles", [3]), "inputs.styles"),
    ("lbfgs", "inputs", delete("output"), "inputs.output"),
    ("lbfgs", "inputs", delete("content_sha256"), "inputs.content_sha256"),
    ("lbfgs", "inputs", put("styles_sha256", []), "inputs.styles_sha256"),
    ("lbfgs", "", delete("painting"), "painting"),
    ("lbfgs", "painting", delete("scale"), "painting.scale"),
    ("lbfgs", "painting", put("scale", "0"), "painting.scale"),
    ("lbfgs", "painting", put("scale", 7), "painting.scale"),
    ("lbfgs", "painting", put("scale", -1), "painting.scale"),
    ("lbfgs", "painting", put("scale", True), "painting.scale"),
    ("lbfgs", "painting", delete("iteration"), "painting.iteration"),
    ("lbfgs", "painting", put("elapsed", "soon"), "painting.elapsed"),
    ("lbfgs", "painting", put("elapsed", float("nan")), "painting.elapsed"),
    ("lbfgs", "painting", put("history", 5), "painting.history"),
    ("lbfgs", "painting", put("history", [1.0]), "painting.history"),
    ("lbfgs", "painting", put("anchor_reference", "x"), "painting.anchor_reference"),
    ("lbfgs", "painting", delete("transfer"), "painting.transfer"),
    ("lbfgs", "transfer", delete("pixels"), "painting.transfer.pixels"),
    ("lbfgs", "transfer", put("pixels", "pixels"), "painting.transfer.pixels"),
    ("lbfgs", "transfer", both(put("pixels", torch.zeros(1, 3, 5, 5)), put("last_good", torch.zeros(1, 3, 5, 5))),
     "painting.transfer.pixels"),
    ("lbfgs", "transfer", put("pixels", torch.zeros(3, 64, 64)), "painting.transfer.pixels"),
    ("lbfgs", "transfer", put("last_good", torch.zeros(1, 3, 2, 2)), "painting.transfer.last_good"),
    ("lbfgs", "transfer", delete("iteration"), "painting.transfer.iteration"),
    ("lbfgs", "transfer", put("elapsed", None), "painting.transfer.elapsed"),
    ("lbfgs", "transfer", put("history", ["x"]), "painting.transfer.history"),
    ("lbfgs", "transfer", put("failures", 1.5), "painting.transfer.failures"),
    ("lbfgs", "transfer", delete("optimizer"), "painting.transfer.optimizer"),
    ("lbfgs", "optimizer", delete("steps_s"), "painting.transfer.optimizer.steps_s"),
    ("lbfgs", "optimizer", put("steps_y", [1, 2]), "painting.transfer.optimizer.steps_y"),
    ("lbfgs", "optimizer", put("rho", "rho"), "painting.transfer.optimizer.rho"),
    ("lbfgs", "optimizer", put("prev_x", 3), "painting.transfer.optimizer.prev_x"),
    ("lbfgs", "optimizer", delete("max_step"), "painting.transfer.optimizer.max_step"),
    ("adam", "optimizer", delete("state"), "painting.transfer.optimizer.state"),
    ("adam", "optimizer", put("param_groups", {}), "painting.transfer.optimizer.param_groups"),
    ("adam", "transfer", put("average", 3), "painting.transfer.average"),
    ("adam", "average", delete("sum"), "painting.transfer.average.sum"),
    ("adam", "average", put("steps", "2"), "painting.transfer.average.steps"),
    ("lbfgs", "", delete("rng"), "rng"),
    ("lbfgs", "", put("rng", torch.zeros(5)), "rng"),
    ("lbfgs", "", put("rng", [1, 2]), "rng"),
]


def part(state: dict[str, Any], where: str) -> dict[str, Any]:
    transfer = state["painting"]["transfer"]
    return {"": state, "config": state["config"], "inputs": state["inputs"], "painting": state["painting"],
            "transfer": transfer, "optimizer": transfer["optimizer"], "average": transfer["average"]}[where]


@pytest.mark.parametrize(("optimizer", "where", "change", "field"), DAMAGE,
                         ids=[f"{o}-{f}-{i}" for i, (o, _, _, f) in enumerate(DAMAGE)])
def test_a_damaged_checkpoint_is_one_line_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, checkpoints: dict[str, Any],
    optimizer: str, where: str, change: Callable[[dict[str, Any]], None], field: str,
) -> None:
    import copy

    state = copy.deepcopy(checkpoints["states"][optimizer])
    change(part(state, where))
    damaged = tmp_path / "damaged.ckpt"
    torch.save(state, damaged)
    output = tmp_path / "resumed.png"
    err = refused(capsys, output, [damaged, checkpoints["content"], checkpoints["style"]],
                  str(checkpoints["content"]), str(checkpoints["style"]), "--resume", str(damaged), "-o", str(output))
    assert field in err, err
    assert "damaged" in err or "not valid" in err or "unknown" in err, err


def test_an_intact_checkpoint_still_resumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, checkpoints: dict[str, Any]
) -> None:
    for optimizer, state in checkpoints["states"].items():
        ckpt = tmp_path / f"{optimizer}.ckpt"
        torch.save(state, ckpt)
        output = tmp_path / f"{optimizer}.png"
        code, _, err = run(capsys, "--resume", str(ckpt), "-o", str(output))
        assert code == 0 and output.exists(), err


# -- D11: a plain pickle -------------------------------------------------------------------------

@pytest.fixture
def plain_pickle(tmp_path: Path) -> Path:
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3], "note": object.__name__}))
    return path


def test_a_plain_pickle_to_resume_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, plain_pickle: Path
) -> None:
    with warnings.catch_warnings(record=True) as caught:  # pytest would keep them off stderr: record them
        warnings.simplefilter("always")
        err = refused(capsys, tmp_path / "out.png", [plain_pickle], "--resume", str(plain_pickle),
                      "-o", str(tmp_path / "out.png"))
    assert "not an ArtiStyle checkpoint" in err
    assert [str(w.message) for w in caught] == []


def test_a_plain_pickle_as_weights_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path], plain_pickle: Path
) -> None:
    content, style = images
    output = tmp_path / "out.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        err = refused(capsys, output, [content, style, plain_pickle], str(content), str(style), "-o", str(output),
                      *FAST, "--weights", str(plain_pickle))
    assert "not a PyTorch weights file" in err
    assert [str(w.message) for w in caught] == []


# -- the checkpoint named like the output --------------------------------------------------------

def test_a_checkpoint_at_the_output_path_is_called_the_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    output = tmp_path / "out.png"
    err = refused(capsys, output, [content, style], str(content), str(style), "-o", str(output), *FAST,
                  "--checkpoint", str(output))
    assert "output" in err and "input" not in err

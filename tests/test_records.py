"""Every driver saves through the one paint-and-save (:meth:`Painting.save` / :meth:`Painting.encode`), so every
picture ArtiStyle paints carries its settings record: ``artistyle --info`` reads it back from the command line's
PNG, a batch's outputs (local and ``--workers``), and a video's frame folder. (The studio's result: see
tests/test_web_history.py; Ray: tests/test_batch_ray.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from artistyle import NST, __version__
from artistyle.metadata import read_image_metadata

from .conftest import make_clip, make_content, make_style, run

pytestmark = pytest.mark.slow
TINY = ["--size", "32", "--steps", "2", "--seed", "3", "--device", "cpu", "-q"]


def info(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, object]:
    code, out, err = run(capsys, "--info", str(path))
    assert code == 0, err
    record: dict[str, object] = json.loads(out)
    assert record["artistyle"] == __version__ and record["seed"] == 3
    return record


@pytest.fixture
def inputs(folders: tuple[Path, Path]) -> tuple[Path, Path]:
    return folders


def test_the_command_line_records_the_resolved_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    photos, paintings = inputs
    out = tmp_path / "out.png"
    code, _, err = run(capsys, str(photos / "a.png"), str(paintings / "wave.png"), "-o", str(out), *TINY)
    assert code == 0, err
    settings = info(capsys, out)["settings"]
    assert isinstance(settings, dict)
    # The resolved values, not the schema's "unset": what the engine ran.
    assert settings["steps"] == 2 and settings["content_weight"] == 1.0 and settings["size"] == 32


@pytest.mark.parametrize("workers", [[], ["--workers", "1"]], ids=["local", "pool"])
def test_batch_outputs_carry_the_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path], workers: list[str]
) -> None:
    photos, paintings = inputs
    out = tmp_path / "out"
    code, _, err = run(capsys, "batch", str(photos), str(paintings), "-o", str(out), *TINY, *workers)
    assert code == 0, err
    settings = info(capsys, out / "a__wave.png")["settings"]
    assert isinstance(settings, dict) and settings["steps"] == 2


def test_a_video_frame_folder_carries_the_record(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    _, paintings = inputs
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    out = tmp_path / "frames"
    code, _, err = run(capsys, "video", str(clip), str(paintings / "wave.png"), "-o", f"{out}/", "--size", "48",
                       "--first-steps", "2", "--steps", "2", "--seed", "3", "--device", "cpu", "-q")
    assert code == 0, err
    first, later = sorted(out.glob("*.png"))
    assert info(capsys, first)["settings"]["steps"] == 2  # type: ignore[index]
    # A later frame: one scale of --steps iterations from the warped previous frame.
    assert info(capsys, later)["settings"]["init"] == "content"  # type: ignore[index]


def test_painting_encode_and_save_give_the_same_bytes(tmp_path: Path) -> None:
    painting = NST(size=32, steps=1, seed=3, device="cpu").paint(make_content((40, 32)), make_style((40, 40)))
    painting.run()
    saved = painting.save(tmp_path / "p.png")
    assert saved.read_bytes() == painting.encode(".png")
    record = read_image_metadata(saved)
    assert record is not None and record["seed"] == 3

"""``artistyle video`` end to end on tiny clips made here: mp4 and folders in and out, resume after a
real ``kill -9`` and a real Ctrl-C with identical frames, and the bad inputs of issue 13."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("cv2")

from artistyle import NST, StyleConfig
from artistyle.errors import UsageError
from artistyle.video.painter import STATE_FILE, VideoSettings, paint_video

from .conftest import make_clip, make_style, probe, run

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TINY = ["--size", "48", "--first-steps", "3", "--steps", "2", "--seed", "1", "--device", "cpu", "-q"]


def moving_frames(folder: Path, count: int = 5, size: tuple[int, int] = (64, 48)) -> Path:
    """A textured picture panning right by 2 px a frame, as PNG frames named like a camera's."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    wide = (rng.random((size[1], size[0] + 2 * count, 3)) * 255).astype(np.uint8)
    wide = np.asarray(Image.fromarray(wide).resize((size[0] + 2 * count, size[1]), Image.Resampling.BOX))
    for i in range(count):
        Image.fromarray(wide[:, 2 * (count - i) : 2 * (count - i) + size[0]]).save(folder / f"shot_{i + 1}.png")
    return folder


@pytest.fixture
def style(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_style().save(path)
    return path


def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_mp4_in_mp4_out_keeps_frames_size_rate_and_sound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style: Path
) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=6, rate=Fraction(30000, 1001), audio="aac", size=(64, 48))
    out = tmp_path / "out.mp4"
    code, _, err = run(capsys, "video", str(clip), str(style), "-o", str(out), *TINY)
    assert code == 0, err
    info = probe(out)
    assert info["count"] == 6 and info["size"] == (48, 36) and info["rate"] == Fraction(30000, 1001)
    assert info["audio"] == "aac"
    assert not (tmp_path / "out.mp4.frames").exists()  # the work folder goes once the video is encoded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "style.png"]


def test_folder_in_folder_out_names_frames_after_the_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style: Path
) -> None:
    frames = moving_frames(tmp_path / "frames", count=4)
    out = tmp_path / "painted"
    code, _, err = run(capsys, "video", str(frames), str(style), "-o", str(out), *TINY, "--json")
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == [f"shot_{i}.png" for i in range(1, 5)]
    assert all(a.shape == (36, 48, 3) for a in pixels(out).values())
    # Run again: every frame is finished, nothing is painted again.
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert run(capsys, "video", str(frames), str(style), "-o", str(out), *TINY)[0] == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == before


def test_later_frames_follow_the_motion(tmp_path: Path, style: Path) -> None:
    """The library: a pan is painted with strokes that move with it (warped start and temporal loss)."""
    frames = moving_frames(tmp_path / "frames", count=3, size=(64, 48))
    config = StyleConfig(size=64, seed=2, device="cpu", scales=1, temporal_weight=1e10)
    work = tmp_path / "work"
    painting = paint_video(NST(config), frames, make_style(), work, VideoSettings(first_steps=40, steps=20))
    events = list(painting)
    assert [e.frame for e in events if e.done] == [0, 1, 2]
    assert events[-1].iterations == events[-1].total_iterations == 40 + 2 * 20
    painted = [np.asarray(Image.open(work / f"shot_{i}.png"), np.float32) for i in (1, 2, 3)]
    for frame in painted:  # painted pictures, not a blank (a flat clip is perfectly steady too)
        assert 30 < frame.mean() < 225 and frame.std() > 20, (frame.mean(), frame.std())
    # The scene moves 2 px right per frame (the working size is the frames' size): frame 2 shifted back
    # matches frame 1 much better than the same pixels do, i.e. the strokes moved with the scene.
    moved = np.abs(painted[1][:, 2:] - painted[0][:, :-2]).mean()
    still = np.abs(painted[1][:, 2:] - painted[0][:, 2:]).mean()
    assert moved < 0.8 * still, (moved, still)
    encoded = painting.encode(tmp_path / "clip.webm")
    assert probe(encoded.path)["count"] == 3 and encoded.size == (64, 48)


def test_long_term_consistency_resumes_to_the_same_frames(tmp_path: Path) -> None:
    """With long-term offsets, a stopped clip resumes from the earlier results it needs (read back
    from the work folder) and ends with the same frames as a run that was not stopped."""
    frames = moving_frames(tmp_path / "frames", count=7, size=(40, 32))
    config = StyleConfig(size=40, seed=3, device="cpu", scales=1)
    settings = VideoSettings(first_steps=6, steps=4, long_term=(1, 2, 4))
    whole = tmp_path / "whole"
    assert [e.frame for e in paint_video(NST(config), frames, make_style(), whole, settings) if e.done] == list(range(7))

    stopped = tmp_path / "stopped"
    painting = paint_video(NST(config), frames, make_style(), stopped, settings)
    for event in painting:
        if event.done and event.frame == 4:
            painting.stop()
    assert painting.finished == 5
    resumed = paint_video(NST(config), frames, make_style(), stopped, settings)
    assert resumed.finished == 5
    assert [e.frame for e in resumed if e.done] == list(range(7))
    assert pixels(stopped).keys() == pixels(whole).keys()
    assert all(np.array_equal(pixels(stopped)[k], v) for k, v in pixels(whole).items())
    # Other long-term offsets are other settings: the folder is not taken as theirs.
    with pytest.raises(UsageError, match="other settings"):
        paint_video(NST(config), frames, make_style(), stopped, VideoSettings(first_steps=6, steps=4))
    with pytest.raises(UsageError, match="rising from 1"):
        VideoSettings(long_term=(2, 4))


def run_until_frames(command: list[str], folder: Path, frames: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(command, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(list(folder.glob("*.png"))) < frames if folder.exists() else True:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {frames} frames: {process.communicate()[1]}")
        time.sleep(0.05)
    return process


@pytest.mark.slow
@pytest.mark.parametrize(("how", "clip"), [("kill -9", "folder"), ("ctrl-c", "folder"), ("kill -9", "mp4")])
def test_a_stopped_clip_resumes_to_the_same_frames(tmp_path: Path, style: Path, how: str, clip: str) -> None:
    frames = moving_frames(tmp_path / "frames", count=6)
    if clip == "mp4":  # a resumed run seeks into the video: the frames it decodes must be the same
        frames = make_clip(tmp_path / "in.mp4", frames=6)
    base = [sys.executable, "-m", "artistyle", "video", str(frames), str(style), "--size", "48", "--first-steps",
            "20", "--steps", "15", "--seed", "4", "--device", "cpu", "-q"]
    whole = tmp_path / "whole"
    subprocess.run([*base, "-o", str(whole)], check=True, env=ENV, timeout=300)

    stopped = tmp_path / "stopped"
    process = run_until_frames([*base, "-o", str(stopped)], stopped, 2)
    if how == "kill -9":
        process.kill()
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
    else:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130 and "finished frame(s) kept" in err and "Traceback" not in err
    assert 2 <= len(list(stopped.glob("*.png"))) < 6
    subprocess.run([*base, "-o", str(stopped)], check=True, env=ENV, timeout=300)
    finished, expected = pixels(stopped), pixels(whole)
    assert finished.keys() == expected.keys() and len(expected) == 6, (finished.keys(), expected.keys())
    assert all(np.array_equal(finished[name], expected[name]) for name in expected)
    assert not [p.name for p in stopped.iterdir() if p.name.startswith(".") and p.name != STATE_FILE]


def test_bad_inputs_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, style: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    mixed = moving_frames(tmp_path / "mixed", count=2)
    Image.new("RGB", (50, 40)).save(mixed / "shot_3.png")
    cases = [
        ([str(text), str(style), "-o", str(tmp_path / "o.mp4")], "notes.mp4"),
        ([str(clip), str(style), "-o", str(tmp_path / "o.avi")], "cannot write '.avi'"),
        ([str(clip), str(style), "-o", str(clip)], "is the input"),
        ([str(mixed), str(style), "-o", str(tmp_path / "o.mp4")], "shot_3"),
        ([str(clip), str(style), "-o", str(tmp_path / "o.mp4"), "--end", "0"], "end"),
        ([str(clip), str(style), "-o", str(tmp_path / "o.mp4"), "--long-term", "1,10,5"], "rising from 1"),
        ([str(clip), str(style), "-o", str(tmp_path / "o.mp4"), "--long-term", "a,b"], "whole numbers"),
        ([str(clip), str(style), "-o", str(tmp_path / "o.mp4"), "--color-tolerance", "2"], "at most 1, or off"),
    ]
    for argv, words in cases:
        code, _, err = run(capsys, "video", *argv, *TINY)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err and words in err, (argv, err)
        assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mp4.frames").exists()


def test_a_folder_with_other_frames_is_not_painted_over(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style: Path
) -> None:
    frames = moving_frames(tmp_path / "frames", count=2)
    out = tmp_path / "out"
    out.mkdir()
    Image.new("RGB", (48, 36), (1, 2, 3)).save(out / "shot_1.png")  # someone's own picture of that name
    code, _, err = run(capsys, "video", str(frames), str(style), "-o", str(out), *TINY)
    assert code == 2 and "already holds shot_1.png" in err and "--restart" in err
    assert np.asarray(Image.open(out / "shot_1.png"))[0, 0].tolist() == [1, 2, 3]
    # The same folder after a run with other settings: refused too, until --restart.
    assert run(capsys, "video", str(frames), str(style), "-o", str(out), *TINY, "--restart")[0] == 0
    code, _, err = run(capsys, "video", str(frames), str(style), "-o", str(out), *TINY[:-1], "--style-weight", "7", "-q")
    assert code == 2 and "other settings" in err

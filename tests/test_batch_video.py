"""Video jobs in ``artistyle batch``: names, a clip and an image in one batch, skip on rerun, a stopped clip resumed
from its work folder, ``--workers``, a corrupt clip, the video extra missing, jobs-file outputs. Tiny clips (3 frames
at 48 px), 2 first-frame steps (the later frames get the default 100), CPU, fixed seeds."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artistyle import StyleConfig
from artistyle.batch import JOURNAL_NAME, SHEET_NAME, Batch, BatchProgress, JobSpec, make_jobs, read_jobs_file
from artistyle.errors import UsageError
from artistyle.video.extra import INSTALL_HINT

from .conftest import REPO, make_clip, make_content, make_style, probe, run

FAST = ["--device", "cpu", "--size", "48", "--steps", "2", "--seed", "1", "--quiet"]
CONFIG = StyleConfig(size=48, steps=2, seed=1, device="cpu")
RATE = Fraction(30000, 1001)


def journal(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / JOURNAL_NAME).read_text().splitlines() if line.strip()]


def hidden(outdir: Path) -> list[str]:
    return sorted(p.name for p in outdir.iterdir() if p.name.startswith("."))


def pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in folder.glob("*.png")}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with a 3-frame clip and a photo, and a style image."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_content((64, 48)).save(folder / "photo.png")
    style = tmp_path / "wave.png"
    make_style().save(style)
    return folder, style


@pytest.fixture
def clip(inputs: tuple[Path, Path]) -> Path:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    return make_clip(inputs[0] / "clip.mp4", frames=3, rate=RATE)


# -- names and jobs files (no painting) ----------------------------------------------------------------------------


def test_later_frames_get_the_video_default() -> None:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from artistyle.video.painter import VideoSettings
    from artistyle.video.settings import LATER_STEPS

    assert VideoSettings().steps == LATER_STEPS


def test_video_outputs_keep_a_writable_suffix_and_avoid_collisions(tmp_path: Path) -> None:
    style = tmp_path / "wave.png"
    specs = [JobSpec(tmp_path / name, (style,)) for name in ("a.mov", "a.mkv", "a.mp4", "a.webm", "a.avi", "a.gif")]
    jobs = make_jobs(specs, tmp_path / "out", StyleConfig())
    assert [job.name for job in jobs] == ["a__wave.mov", "a__wave.mp4", "a__wave__2.mp4", "a__wave.webm",
                                          "a__wave__3.mp4", "a__wave.png"]  # a GIF stays an image
    assert [job.is_video for job in jobs] == [True] * 5 + [False]


@pytest.mark.parametrize(("content", "output", "expected"), [
    ("clip.mkv", "painted", "painted.mp4"), ("clip.webm", "painted", "painted.webm"),
    ("clip.mp4", "painted.gif", "painted.gif"), ("photo.png", "painted", "painted.png"),
    ("clip.mp4", "painted.avi", "jobs.csv line 2: output 'painted.avi': cannot write '.avi' video (use .mp4, .mov"),
    ("clip.mp4", "painted.png", "jobs.csv line 2: output 'painted.png': cannot write '.png' video"),
    ("photo.png", "painted.mp4", "jobs.csv line 2: output 'painted.mp4' has an unsupported extension"),
])
def test_jobs_file_outputs_of_video_jobs(tmp_path: Path, content: str, output: str, expected: str) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"content,style,output\n{content},wave.png,{output}\n")
    if "line 2" not in expected:
        [spec] = read_jobs_file(jobs)
        assert spec.output == expected
        return
    with pytest.raises(UsageError) as info:
        read_jobs_file(jobs)
    assert expected in str(info.value) and "\n" not in str(info.value)


# -- painting ------------------------------------------------------------------------------------------------------


def test_a_clip_and_an_image_in_one_batch_then_skipped_on_rerun(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path], clip: Path
) -> None:
    folder, style = inputs
    out = tmp_path / "out"
    argv = ["batch", str(folder), str(style), "-o", str(out), *FAST]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert {Path(r["output"]).name: r["status"] for r in journal(out)} == {"clip__wave.mp4": "ok",
                                                                         "photo__wave.png": "ok"}
    info = probe(out / "clip__wave.mp4")
    assert info["count"] == 3 and info["rate"] == RATE and info["size"] == (48, 36)
    assert hidden(out) == []  # the work folder went once the video was written
    page = (out / SHEET_NAME).read_text()
    assert "video, 3 frames" in page and page.count("data:image/jpeg;base64,") == 5  # 3 inputs, 2 results

    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*__wave.*")}
    assert run(capsys, *argv)[0] == 0
    assert [r["status"] for r in journal(out)[-2:]] == ["skipped", "skipped"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*__wave.*")}


@pytest.mark.slow
def test_a_stopped_clip_resumes_from_its_work_folder(
    tmp_path: Path, inputs: tuple[Path, Path], clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch.stop (what Ctrl-C calls) after the first frame: the rerun continues from the second frame (the first is
    neither repainted nor rewritten) and ends with the frames of an uninterrupted run."""
    from artistyle.batch import clips

    kept = tmp_path / "kept"  # each run's finished frames, where the work folder would be removed: compared exactly
    monkeypatch.setattr(clips, "discard", lambda work: shutil.move(work, kept / work.parent.name))
    _, style = inputs
    whole = tmp_path / "whole"
    assert [r.status for r in Batch(make_jobs([JobSpec(clip, (style,))], whole, CONFIG), whole).run().results
            if r] == ["ok"]

    out = tmp_path / "out"
    [job] = make_jobs([JobSpec(clip, (style,))], out, CONFIG)
    first = out / ".clip__wave.mp4.frames" / "frame_000001.png"
    batch = Batch([job], out)
    stopped_at: list[float] = []

    def stop_after_the_first_frame(event: BatchProgress) -> None:
        if first.exists() and not stopped_at:
            stopped_at.append(event.done)
            batch.stop()

    outcome = batch.run(stop_after_the_first_frame)
    [result] = outcome.results
    assert result is not None and (result.status, result.error) == ("failed", "interrupted")
    assert outcome.stopped and not job.output.exists()
    assert sorted(p.name for p in first.parent.glob("*.png")) == ["frame_000001.png"]  # kept for the rerun
    stamp = first.stat().st_mtime_ns

    seen: list[int] = []
    done: list[float] = []

    def watch(event: BatchProgress) -> None:
        if first.exists():
            seen.append(first.stat().st_mtime_ns)
        if event.running and event.done > 0:
            done.append(event.done)

    [again] = Batch([job], out).run(watch).results
    assert again is not None and again.status == "ok" and again.seed == result.seed
    assert seen and set(seen) == {stamp}  # the finished frame was not written again
    assert min(done) >= stopped_at[0] > 0  # no iteration of the first frame: the clip went on from the second
    assert [r["status"] for r in journal(out)] == ["failed", "ok"]
    assert hidden(out) == [] and probe(job.output)["count"] == 3
    painted, expected = pngs(kept / "out"), pngs(kept / "whole")
    assert sorted(painted) == sorted(expected) == [f"frame_00000{i}.png" for i in (1, 2, 3)]
    assert all(np.array_equal(painted[name], expected[name]) for name in expected)


@pytest.mark.slow
def test_ctrl_c_keeps_a_clips_frames_and_the_same_command_finishes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path], clip: Path
) -> None:
    """A real Ctrl-C to the command while the clip's second frame is painted, then the same command again."""
    _, style = inputs
    out = tmp_path / "out"
    argv = ["batch", str(clip), str(style), "-o", str(out), *FAST]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "artistyle", *argv], env=env, stderr=subprocess.PIPE,
                               text=True)
    first = out / ".clip__wave.mp4.frames" / "frame_000001.png"
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert [(r["status"], r["error"]) for r in journal(out)] == [("failed", "interrupted")]
    assert first.exists() and not (out / "clip__wave.mp4").exists()
    stamp = first.stat().st_mtime_ns

    seen: list[int] = []
    real = shutil.rmtree

    def noting(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if Path(path) == first.parent and first.exists():  # the work folder, as it is removed
            seen.append(first.stat().st_mtime_ns)
        real(path, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shutil, "rmtree", noting)
        assert run(capsys, *argv)[0] == 0
    assert seen == [stamp]  # the first frame was kept, not painted again, up to the end
    assert [r["status"] for r in journal(out)] == ["failed", "ok"]
    assert probe(out / "clip__wave.mp4")["count"] == 3 and hidden(out) == []


@pytest.mark.slow
def test_a_clip_through_a_pool_of_workers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path], clip: Path
) -> None:
    folder, style = inputs
    out = tmp_path / "out"
    code, _, err = run(capsys, "batch", str(folder), str(style), "-o", str(out), *FAST, "--workers", "2")
    assert code == 0, err
    records = journal(out)
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert all(r["worker"].startswith("local:") and r["worker"] != f"local:{os.getpid()}" for r in records)
    info = probe(out / "clip__wave.mp4")
    assert info["count"] == 3 and info["rate"] == RATE
    assert hidden(out) == []  # the worker's work folder (and the encoded file in it) moved and removed


def test_a_corrupt_clip_fails_only_its_job(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    pytest.importorskip("av")
    folder, style = inputs
    (folder / "broken.mp4").write_bytes(b"\0\0\0\x18ftypmp42 and nothing else")
    out = tmp_path / "out"
    code, _, _ = run(capsys, "batch", str(folder), str(style), "-o", str(out), *FAST)
    assert code == 1
    records = {Path(r["output"]).name: r for r in journal(out)}
    assert {n: r["status"] for n, r in records.items()} == {"broken__wave.mp4": "failed", "photo__wave.png": "ok"}
    reason = records["broken__wave.mp4"]["error"]
    assert "broken.mp4" in reason and "\n" not in reason and "Traceback" not in reason
    assert not (out / "broken__wave.mp4").exists() and hidden(out) == []


def test_without_the_video_extra_only_the_video_jobs_fail(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, inputs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, style = inputs
    (folder / "clip.mov").write_bytes(b"\0\0\0\x14ftypqt  ")  # never opened: the extra is asked for first
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    out = tmp_path / "out"
    code, _, _ = run(capsys, "batch", str(folder), str(style), "-o", str(out), *FAST)
    assert code == 1
    records = {Path(r["output"]).name: (r["status"], r["error"]) for r in journal(out)}
    assert records == {"clip__wave.mov": ("failed", f"{INSTALL_HINT} (missing: av)"), "photo__wave.png": ("ok", None)}
    page = (out / SHEET_NAME).read_text()
    assert "clip__wave.mov" in page and "<br>video<br>" in page  # labelled, with no frame count
    assert hidden(out) == []


def test_a_fast_start_clip_job_raises_the_content_weight_of_its_first_frame_only(
    inputs: tuple[Path, Path], clip: Path, tmp_path: Path
) -> None:
    """As ``artistyle video --init fast``: the fast start's schedule (and its content weight) is the first frame's;
    the later frames keep the user's content weight. A job's own ``steps`` turns the schedule off, as a given
    ``--steps`` does on the command line."""
    from artistyle.batch.clips import ClipPainting
    from artistyle.config import FAST_SCHEDULE

    _, style = inputs
    fast = StyleConfig(size=48, seed=1, device="cpu", init="fast")
    [job] = make_jobs([JobSpec(clip, (style,))], tmp_path / "out", fast)
    resolved = job.config.resolved()  # the library resolves what was not given
    assert resolved.scale_steps == FAST_SCHEDULE["scale_steps"] and resolved.content_weight == 2.5
    painting = ClipPainting(job, tmp_path / "work", check_output=False).painting
    assert painting.first_nst.config.content_weight == 2.5 and painting.later_nst.config.content_weight == 1.0
    assert painting.first_frame_steps == 72
    # A content weight given for all jobs holds on every frame.
    weighted_config = StyleConfig(size=48, seed=1, device="cpu", init="fast", content_weight=3.0)
    [weighted] = make_jobs([JobSpec(clip, (style,))], tmp_path / "out", weighted_config)
    weighted_painting = ClipPainting(weighted, tmp_path / "work3", check_output=False).painting
    assert weighted_painting.first_nst.config.content_weight == weighted_painting.later_nst.config.content_weight == 3.0
    # A job's own steps: its schedule, not the fast start's.
    [own] = make_jobs([JobSpec(clip, (style,), settings={"steps": 7})], tmp_path / "out", fast)
    own_config = own.config.resolved()
    assert (own_config.steps, own_config.scale_steps, own_config.content_weight) == (7, None, 1.0)


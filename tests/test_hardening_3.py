"""Issue 24: a third adversarial pass over the drivers (N1-N9 and the warts), and the neighbours of each item
found around them: special files, deeply nested JSON, inputs the video work folder would replace, non-finite and
absurd numbers, bad Ray addresses, a journal that is a link, the studio's Host header and queue.

Every refusal is one line on stderr (exit status 2), with no traceback, no "internal error", no partial output,
and no input changed. Cases that could hang before their fix run the command in a subprocess with a timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import PngImagePlugin

from artistyle.config import StyleConfig
from artistyle.errors import UsageError

from .conftest import REPO, hold_studio_runs, make_clip, make_content, make_style, run

FAST = ["--device", "cpu", "--size", "32", "--steps", "2", "--seed", "1", "--quiet"]
VIDEO = ["--device", "cpu", "--size", "48", "--first-steps", "2", "--steps", "2", "--seed", "1", "--quiet"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p)}
COMMAND = [sys.executable, "-m", "artistyle"]
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than any recursion limit


def one_line(err: str) -> str:
    """The one-line refusal: no traceback, no bug report."""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "internal error" not in err and "ARTISTYLE_DEBUG" not in err, err
    return err


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI in-process; assert exit status 2 with one line; return the line."""
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    return one_line(err)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def subprocess_run(argv: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; a hang fails the test (TimeoutExpired) instead of hanging it."""
    return subprocess.run([*COMMAND, *argv], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def video_extra() -> None:
    pytest.importorskip("av")
    pytest.importorskip("cv2")


@pytest.fixture
def clip(tmp_path: Path, video_extra: None) -> Path:
    return make_clip(tmp_path / "clip.mp4", frames=3)


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    """A folder of two frames."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        make_content((64, 48)).save(folder / f"f{i + 1}.png")
    return folder


# -- N1: a FIFO (or another special file) is refused at once ---------------------------------------


@pytest.mark.slow
def test_n1_a_fifo_given_to_info_or_video_is_refused_at_once(tmp_path: Path, style_path: Path) -> None:
    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    clip_fifo = tmp_path / "f.mp4"
    os.mkfifo(clip_fifo)
    for argv, words in (
        (["--info", str(fifo)], "not a regular file"),
        (["video", str(clip_fifo), str(style_path), "-o", str(tmp_path / "out.mp4"), *VIDEO], "not a regular file"),
    ):
        done = subprocess_run(argv, tmp_path, timeout=30)
        assert done.returncode == 2, done.stderr
        assert words in one_line(done.stderr), done.stderr
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.mp4.frames").exists()


@pytest.mark.slow
def test_n1_a_fifo_as_a_jobs_file_or_among_a_jobs_files_inputs_does_not_hang(
    tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    jobs = tmp_path / "jobs.csv"
    os.mkfifo(jobs)
    done = subprocess_run(["batch", "--jobs", str(jobs), "-o", str(tmp_path / "out"), *FAST], tmp_path)
    assert done.returncode == 2 and "not a regular file" in one_line(done.stderr), done.stderr
    # A FIFO named as a job's content, style or init image: that job fails with its reason (the batch's
    # settings hash no longer opens it to read it), the other job is painted.
    rows = tmp_path / "rows.csv"
    rows.write_text(f"content,style,init\n{fifo},{style},\n{content},{fifo},\n{content},{style},{fifo}\n"
                    f"{content},{style},\n")
    done = subprocess_run(["batch", "--jobs", str(rows), "-o", str(tmp_path / "out"), *FAST], tmp_path, 120)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "batch.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines] == ["failed", "failed", "failed", "ok"]
    assert all("is not a regular file" in r["error"] for r in lines[:3])


def test_n1_special_files_are_named_as_such(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style_path: Path, video_extra: None
) -> None:
    assert "is a folder" in refused(capsys, "--info", str(tmp_path))
    assert "not a regular file" in refused(capsys, "--info", "/dev/null")
    fifo = tmp_path / "run.ckpt"
    os.mkfifo(fifo)
    assert "not a regular file (it is a FIFO)" in refused(capsys, "--resume", str(fifo))
    code, _, err = run(capsys, "video", "/dev/null", str(style_path), "-o", str(tmp_path / "o.mp4"), *VIDEO)
    assert code == 2 and "not a regular file" in one_line(err)
    jobs = refused(capsys, "batch", "--jobs", "/dev/null", "-o", str(tmp_path / "out"), *FAST)
    assert "not a regular file" in jobs
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "out").exists()


def checkpointed(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: Path, style: Path) -> Path:
    """A finished tiny run's checkpoint, tmp_path/run.ckpt, for --resume cases."""
    ckpt = tmp_path / "run.ckpt"
    assert run(capsys, str(content), str(style), "-o", str(tmp_path / "o.png"), "--checkpoint", str(ckpt),
               *FAST)[0] == 0
    return ckpt


def test_n1_a_checkpoints_input_that_became_a_fifo_is_named_as_such(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    ckpt = checkpointed(capsys, tmp_path, content, style)
    content.unlink()
    os.mkfifo(content)
    assert "not a regular file (it is a FIFO)" in refused(capsys, "--resume", str(ckpt))  # was "does not exist"


# -- N2: deeply nested JSON --------------------------------------------------------------------------


def test_n2_info_on_a_png_whose_record_nests_too_deeply(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("artistyle", DEEP)
    make_content().save(path, pnginfo=info)
    assert "damaged" in refused(capsys, "--info", str(path))


@pytest.mark.parametrize("line", [
    DEEP,
    '{"content": "c.png", "style": "s.png", "settings": {"size": ' + DEEP + "}}",
    '{"content": "c.png", "style": "s.png", "size": 1' + "0" * 5000 + "}",  # over Python's int digits limit
])
def test_n2_a_jobs_file_line_that_nests_too_deeply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str
) -> None:
    jobs = tmp_path / "j.jsonl"
    jobs.write_text('{"content": "c.png", "style": "s.png"}\n' + line + "\n")
    err = refused(capsys, "batch", "--jobs", str(jobs), "-o", str(tmp_path / "out"), *FAST)
    assert "j.jsonl line 2" in err
    assert not (tmp_path / "out").exists()


def test_n2_a_damaged_journal_line_that_nests_too_deeply_is_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    out = tmp_path / "out"
    out.mkdir()
    (out / "batch.jsonl").write_text(DEEP + "\n" + '{"output": "x", "size": 1' + "0" * 5000 + "}\n")
    code, _, err = run(capsys, "batch", str(content), str(style), "-o", str(out), *FAST[:-1])
    assert code == 0, err
    assert "2 damaged line(s)" in err and "Traceback" not in err
    assert (out / "content__style.png").is_file()
    code, _, err = run(capsys, "batch", str(content), str(style), "-o", str(out), *FAST)
    assert code == 0 and err == ""  # and again: the damaged lines stay, skipped


def test_n2_a_checkpoint_whose_config_nests_too_deeply(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    import threading

    import torch

    content, style = images
    ckpt = checkpointed(capsys, tmp_path, content, style)

    def nest() -> None:  # torch.save pickles recursively: a deep value needs a deep stack to be written
        state = torch.load(ckpt, weights_only=True)
        deep: list[Any] = []
        inner = deep
        for _ in range(20_000):
            inner.append([])
            inner = inner[0]
        state["config"]["size"] = deep
        torch.save(state, ckpt)

    limit = sys.getrecursionlimit()
    threading.stack_size(256 * 2**20)
    sys.setrecursionlimit(100_000)
    try:
        thread = threading.Thread(target=nest)
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(limit)
        threading.stack_size(0)
    assert "damaged" in refused(capsys, "--resume", str(ckpt))


# -- N3: video never deletes nor overwrites an input -------------------------------------------------


@pytest.mark.parametrize("where", ["frame_000001.png", "frame_000002.png", ".raw/frame_000001.png"])
@pytest.mark.parametrize("restart", [True, False])
def test_n3_a_style_in_the_work_folder_under_a_frames_name_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path, where: str, restart: bool
) -> None:
    out = tmp_path / "o"
    style = out / where
    style.parent.mkdir(parents=True)
    make_style().save(style)
    before = digest(style)
    extra = ["--restart"] if restart else []
    colour = ["--preserve-color", "luminance"] if ".raw" in where else []
    err = refused(capsys, "video", str(clip), str(style), "-o", f"{out}/", *VIDEO, *extra, *colour)
    assert "would replace" in err and where.split("/")[-1] in err
    assert digest(style) == before
    assert not (out / ".artistyle-video.json").exists()


def test_n3_a_style_in_a_video_outputs_work_folder_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path
) -> None:
    work = tmp_path / "out.mp4.frames"
    work.mkdir()
    style = work / "frame_000001.png"
    make_style().save(style)
    before = digest(style)
    err = refused(capsys, "video", str(clip), str(style), "-o", str(tmp_path / "out.mp4"), *VIDEO, "--restart")
    assert "would replace" in err
    assert digest(style) == before and not (tmp_path / "out.mp4").exists()


def test_n3_the_library_refuses_a_frame_folder_that_is_its_work_folder(tmp_path: Path, frames: Path,
                                                                         video_extra: None) -> None:
    from artistyle import NST
    from artistyle.video.frames import open_frames
    from artistyle.video.painter import VideoPainting

    before = {p.name: digest(p) for p in frames.iterdir()}
    with pytest.raises(UsageError, match="would replace"):
        VideoPainting(NST(device="cpu", size=48, steps=2), open_frames(frames), [make_style()], frames,
                      restart=True)
    assert {p.name: digest(p) for p in frames.iterdir()} == before


# -- N4: non-finite and absurd frame rates -------------------------------------------------------------


@pytest.mark.parametrize("fps", ["nan", "inf", "-inf", "1e300", "1e-300", "0"])
def test_n4_a_bad_frame_rate_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, frames: Path, style_path: Path, video_extra: None, fps: str
) -> None:
    for output in (tmp_path / "out.mp4", tmp_path / "out"):
        err = refused(capsys, "video", str(frames), str(style_path), "-o", str(output), f"--fps={fps}", *VIDEO)
        assert "--fps" in err
        assert not output.exists() and not (tmp_path / "out.mp4.frames").exists()


def test_n4_the_library_refuses_a_non_finite_rate(frames: Path, video_extra: None) -> None:
    from artistyle.video.frames import open_frames

    for fps in (float("nan"), float("inf"), 1e300, 0.0, 1e-300):
        with pytest.raises(UsageError, match="frame rate"):
            open_frames(frames, fps=fps)
    assert open_frames(frames, fps=1000).fps == 1000  # the ends of the range: written by every encoder
    assert open_frames(frames, fps=Fraction(1, 1000)).fps == Fraction(1, 1000)


# -- N5: OUTPUT.frames that is a file ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_n5_a_work_folder_that_is_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path, style_path: Path, kind: str
) -> None:
    work = tmp_path / "out.mp4.frames"
    if kind == "file":
        work.write_text("mine")
    else:
        work.symlink_to(tmp_path / "nowhere")
    err = refused(capsys, "video", str(clip), str(style_path), "-o", str(tmp_path / "out.mp4"), *VIDEO)
    assert "out.mp4.frames" in err
    assert not (tmp_path / "out.mp4").exists()
    assert work.read_text() == "mine" if kind == "file" else work.is_symlink() and not work.exists()
    assert not (tmp_path / "nowhere").exists()


# -- N6: a NUL byte or an unpaired surrogate in a jobs file ------------------------------------------------


@pytest.mark.parametrize("key", ["content", "style", "styles", "output", "init", "masks", "fine_style", "weights"])
@pytest.mark.parametrize("bad", ["\0", "\ud800"])
def test_n6_a_nul_or_a_lone_surrogate_in_a_jobs_file_is_refused_naming_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str, bad: str
) -> None:
    good = {"content": "c.png", "style": "s.png"}
    row: dict[str, Any] = dict(good)
    if key == "styles":
        del row["style"]
    row[key] = [f"x{bad}y.png"] if key in ("styles", "masks") else f"x{bad}y.png"
    jobs = tmp_path / "j.jsonl"
    jobs.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")  # ASCII: \u0000, \ud800
    err = refused(capsys, "batch", "--jobs", str(jobs), "-o", str(tmp_path / "out"), *FAST)
    assert "j.jsonl line 2" in err and ("NUL" in err if bad == "\0" else "surrogate" in err), err
    assert not (tmp_path / "out").exists()


def test_n6_a_nul_in_a_csv_jobs_file_is_refused_naming_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jobs = tmp_path / "j.csv"
    jobs.write_text("content,style,output\nc.png,s.png,\nc.png,s.png,a\0b.png\n")
    err = refused(capsys, "batch", "--jobs", str(jobs), "-o", str(tmp_path / "out"), *FAST)
    assert "j.csv line 3" in err
    assert not (tmp_path / "out").exists()


# -- N7: bad Ray addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("address", [
    "localhost:²", "localhost:６３７９", "localhost:0", "localhost:65536", "localhost:18446744073709551617",
    "a..b:6379", "x" * 300 + ":6379", "\ud800:6379", "local\x00host:6379", "user@localhost:6379",
    "localhost:6379/x", "ex ample:6379",
])
def test_n7_a_bad_ray_address_is_one_line(address: str) -> None:
    from artistyle.batch.ray_executor import probe

    with pytest.raises(UsageError) as refusal:
        probe(address)
    assert "\n" not in str(refusal.value) and "Ray address" in str(refusal.value)


def test_n7_the_cli_refuses_a_bad_ray_address(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              images: tuple[Path, Path]) -> None:
    pytest.importorskip("ray")
    content, style = images
    err = refused(capsys, "batch", str(content), str(style), "-o", str(tmp_path / "out"), "--ray", "localhost:²",
                  *FAST)
    assert "Ray address 'localhost:²'" in err


# -- N8: the journal is never written through a link ------------------------------------------------


def test_n8_a_journal_that_is_a_link_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    out = tmp_path / "out"
    out.mkdir()
    precious = tmp_path / "precious.png"
    make_content().save(precious)
    before = digest(precious)
    (out / "batch.jsonl").symlink_to(precious)
    err = refused(capsys, "batch", str(content), str(style), "-o", str(out), *FAST)
    assert "batch.jsonl" in err and "link" in err
    assert digest(precious) == before
    assert sorted(p.name for p in out.iterdir()) == ["batch.jsonl"]
    # A journal that is a folder: one line too.
    (out / "batch.jsonl").unlink()
    (out / "batch.jsonl").mkdir()
    assert "batch.jsonl" in refused(capsys, "batch", str(content), str(style), "-o", str(out), *FAST)


def test_n8_the_journal_is_appended_without_following_a_link_made_meanwhile(tmp_path: Path) -> None:
    from artistyle.batch.journal import Journal
    from artistyle.errors import FileError

    journal = Journal(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    journal.path.symlink_to(precious)
    with pytest.raises(FileError):
        journal.append({"output": str(tmp_path / "x.png"), "status": "ok"})
    assert precious.read_text() == "mine"


@pytest.mark.slow
def test_n8_a_journal_that_is_a_fifo_does_not_hang(tmp_path: Path, images: tuple[Path, Path]) -> None:
    content, style = images
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "batch.jsonl")
    done = subprocess_run(["batch", str(content), str(style), "-o", str(out), *FAST], tmp_path)
    assert done.returncode == 2 and "batch.jsonl" in one_line(done.stderr), done.stderr


# -- N9: --scales 3000 and other scale counts that overflow -------------------------------------------


def test_n9_scales_have_an_upper_bound_checked_before_the_arithmetic() -> None:
    with pytest.raises(UsageError, match="scales must be at least 1 and at most 32"):
        StyleConfig(scales=3000).validate()
    with pytest.raises(UsageError, match="at most 32"):
        StyleConfig(scale_steps=(1,) * 3000).validate()
    with pytest.raises(UsageError, match="at most 32 scales"):  # the default count, from a tiny scale factor
        StyleConfig(scale_factor=1.001).scale_sizes(4096)
    assert len(StyleConfig(scales=32, scale_factor=1.01).scale_sizes(4096)) == 32


def test_n9_every_driver_refuses_3000_scales_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path], clip: Path
) -> None:
    content, style = images
    assert "scales" in refused(capsys, str(content), str(style), "-o", str(tmp_path / "o.png"), "--scales", "3000",
                               *FAST)
    assert "scales" in refused(capsys, "batch", str(content), str(style), "-o", str(tmp_path / "out"), "--scales",
                               "3000", *FAST)
    assert "scales" in refused(capsys, "video", str(clip), str(style), "-o", str(tmp_path / "v") + "/",
                               "--scales", "3000", *VIDEO)
    # A scale factor that makes thousands of scales by default: refused before the video's state file is written.
    assert "scales" in refused(capsys, "video", str(clip), str(style), "-o", str(tmp_path / "v") + "/",
                               "--scale-factor", "1.001", *VIDEO[:2], "--size", "4096", *VIDEO[4:])
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "out").exists() and not (tmp_path / "v").exists()


def test_n9_the_studio_answers_400(client: Any, studio_images: tuple[str, str]) -> None:
    content, style = studio_images
    for settings in ({"scales": 3000}, {"scale_steps": [1] * 3000}, {"scale_factor": 1.001, "size": 1024}):
        response = client.post("/api/jobs", json={"content": content, "styles": [style], "settings": settings})
        assert response.status_code == 400, response.text
        assert "scale" in response.json()["error"]
    response = client.get("/api/schedule", params={"size": 256, "scales": 3000})
    assert response.status_code == 400 and "scales" in response.json()["error"]


# -- W1: a damaged video state file is called damaged ------------------------------------------------


@pytest.mark.parametrize("damage", ["{", DEEP, "[]", '{"seed": "x"}'])
def test_w1_a_damaged_state_file_is_named_with_the_way_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, frames: Path, style_path: Path, video_extra: None,
    damage: str
) -> None:
    out = tmp_path / "out"
    assert run(capsys, "video", str(frames), str(style_path), "-o", str(out), *VIDEO)[0] == 0
    painted = {p.name: digest(p) for p in out.glob("*.png")}
    (out / ".artistyle-video.json").write_text(damage)
    err = refused(capsys, "video", str(frames), str(style_path), "-o", str(out), *VIDEO)
    assert "state file" in err and "damaged" in err and "--restart" in err and "other settings" not in err
    assert {p.name: digest(p) for p in out.glob("*.png")} == painted
    assert run(capsys, "video", str(frames), str(style_path), "-o", str(out), *VIDEO, "--restart")[0] == 0


# -- W2: OUTDIR is the contents folder ------------------------------------------------------------------


def test_w2_a_rerun_into_the_contents_folder_skips_instead_of_painting_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    make_content((40, 40)).save(photos / "p1.png")  # square: the 32 px outputs are contents too, below
    make_content((44, 44)).save(photos / "p2.png")
    argv = ["batch", str(photos), str(style_path), "-o", str(photos), *FAST]
    assert run(capsys, *argv)[0] == 0
    first = sorted(p.name for p in photos.iterdir())
    assert first == ["batch.jsonl", "index.html", "p1.png", "p1__style.png", "p2.png", "p2__style.png"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert sorted(p.name for p in photos.iterdir()) == first  # no p1__style__2.png, no p1__style__style.png
    lines = [json.loads(line) for line in (photos / "batch.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines[2:]] == ["skipped", "skipped"]
    # A glob that matches the earlier outputs too leaves them out the same way.
    assert run(capsys, "batch", str(photos / "p*.png"), str(style_path), "-o", str(photos), *FAST)[0] == 0
    assert sorted(p.name for p in photos.iterdir()) == first
    # A file named as CONTENTS is taken as given, even an earlier output.
    assert run(capsys, "batch", str(photos / "p1__style.png"), str(style_path), "-o", str(photos), *FAST)[0] == 0
    assert (photos / "p1__style__style.png").is_file()


# -- W3: a clip given as STYLES ---------------------------------------------------------------------------


def test_w3_a_clip_given_as_styles_is_refused_and_left_out_of_a_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content_path: Path, style_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a clip, as far as its name goes")
    err = refused(capsys, "batch", str(content_path), str(clip), "-o", str(tmp_path / "out"), *FAST)
    assert "'" + str(clip) + "' is a video" in err
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"content,style\n{content_path},{clip}\n")
    assert "jobs.csv line 2" in refused(capsys, "batch", "--jobs", str(jobs), "-o", str(tmp_path / "out"), *FAST)
    assert not (tmp_path / "out").exists()
    folder = tmp_path / "styles"
    folder.mkdir()
    clip.rename(folder / "clip.mp4")
    make_style().save(folder / "wave.png")
    code, _, err = run(capsys, "batch", str(content_path), str(folder), "-o", str(tmp_path / "out"), *FAST)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["content__wave.png"]


# -- W4: names printed to the terminal have their control characters escaped ----------------------------


def test_w4_a_file_names_escape_sequences_are_not_printed_raw(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style_path: Path
) -> None:
    plain = tmp_path / "\x1b[31mred\x1b]0;title\x07.png"
    make_content().save(plain)
    for argv in (["--info", str(plain)], ["--info", str(tmp_path / "gone\x1b[2J.png")],
                 [str(plain), str(style_path), "-o", str(tmp_path / "o\x1b[2J.txt"), *FAST],
                 ["batch", str(tmp_path / "gone\x1b[2J"), str(style_path), "-o", str(tmp_path / "out"), *FAST],
                 [str(plain), str(style_path), "--size=\x1b[2J"]):  # argparse's own messages too
        code, _, err = run(capsys, *argv)
        assert code != 0
        assert "\x1b" not in err and "\x07" not in err and "\\x1b" in err, err
        assert err.count("\n") == 1, err


def test_w4_a_batch_of_names_with_escapes_and_rich_markup_runs_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style_path: Path
) -> None:
    """The progress bar and the summary show names and reasons as text: a path with '[/x]' in it is no rich
    markup (rich raised MarkupError, which ended the batch with exit 1) and an escape sequence is escaped."""
    photos = tmp_path / "ph["
    photos.mkdir()
    make_content().save(photos / "a[red]\x1b[2J.png")
    (photos / "x].png").write_bytes(b"not an image")  # a failed job: its reason names '.../ph[/x].png'
    out = tmp_path / "o[" / "x]"
    code, _, err = run(capsys, "batch", str(photos), str(style_path), "-o", str(out), *FAST[:-1])
    assert code == 1, err
    assert "MarkupError" not in err and "\x1b" not in err, err
    assert "x]__style.png" in err and str(out / "index.html") in err, err  # the failed job, in the table
    assert (out / "a[red]\x1b[2J__style.png").is_file()


# -- W5: the studio's Host check ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", [
    "127.0.0.1:8765@evil.example", "localhost@evil.example", "127.0.0.1:8765/evil", "127.0.0.1 evil.example",
    "localhost:80:81", "[::1]@evil.example", "127.0.0.1:", "localhost:８７６５",
])
def test_w5_a_host_header_with_more_than_a_loopback_name_and_port_is_refused(client: Any, host: str) -> None:
    response = client.get("/api/status", headers={"host": host.encode()})  # as UTF-8 bytes, as a client may
    assert response.status_code == 400, (host, response.text)
    assert "Host" in response.json()["error"]


def test_w5_loopback_hosts_are_still_accepted(client: Any) -> None:
    for host in ("127.0.0.1:8765", "localhost", "LOCALHOST:8765", "[::1]:8765", "[::1]", "127.0.0.1"):
        assert client.get("/api/status", headers={"host": host}).status_code == 200, host


# -- W6: the studio's queue has a limit ---------------------------------------------------------------------


def test_w6_the_queue_refuses_a_job_past_its_limit_with_429(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2")
        from starlette.testclient import TestClient

    from artistyle.web.app import create_app
    from artistyle.web.jobs import MAX_WAITING

    release = hold_studio_runs(monkeypatch)
    app = create_app(device="cpu", preview_interval=0.0)
    try:
        with TestClient(app, base_url="http://127.0.0.1", headers={"x-artistyle": "1"}) as client:
            job = {"content": "sample:chelsea_cat.jpg", "styles": ["sample:starry_night.jpg"],
                   "settings": {"size": 48, "steps": 1}}
            ids = [client.post("/api/jobs", json=job) for _ in range(MAX_WAITING + 1)]  # one runs, the rest wait
            assert all(r.status_code == 201 for r in ids), [r.text for r in ids if r.status_code != 201][:1]
            refusal = client.post("/api/jobs", json=job)
            assert refusal.status_code == 429, refusal.text
            message = refusal.json()["error"]
            assert "queue" in message and str(MAX_WAITING) in message and "\n" not in message
            assert client.get("/api/status").json()["waiting"] == MAX_WAITING
            client.post(f"/api/jobs/{ids[-1].json()['id']}/cancel")  # a place frees up
            assert client.post("/api/jobs", json=job).status_code == 201
            for r in ids:
                client.post(f"/api/jobs/{r.json()['id']}/cancel")
    finally:
        release.set()


# -- X1: the neighbours: absurd numbers that overflowed or ran out of memory ------------------------------

HUGE = "1" + "0" * 400  # a whole number no float holds


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--size", HUGE, "size must be at most 65536"),
    ("--style-size", HUGE, "style-size must be at most 65536"),
    ("--style-size", "99999", "style-size must be at most 65536"),
    ("--style-size", "60000", "8 times"),  # 60000 px for a 32 px output: out of memory, exit 1, before
    ("--lbfgs-history", HUGE, "lbfgs-history must be at most 1000"),
])
def test_x_absurd_sizes_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path], option: str, value: str,
    words: str
) -> None:
    content, style = images
    err = refused(capsys, str(content), str(style), "-o", str(tmp_path / "o.png"), *FAST, option, value)
    assert words in err and len(err) < 300, err
    assert not (tmp_path / "o.png").exists()


def test_x_style_blend_weights_whose_sum_overflows_still_blend(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    assert StyleConfig(style_blend=(1e308, 1e308)).blend_weights(2) == [0.5, 0.5]
    assert StyleConfig(style_blend=(1e308, 1e307)).blend_weights(2) == pytest.approx([10 / 11, 1 / 11])
    content, style = images
    code, _, err = run(capsys, str(content), str(style), str(style), "-o", str(tmp_path / "o.png"),
                       "--style-blend", "1e308", "1e308", *FAST)
    assert code == 0, err


def test_x_long_term_offsets_have_a_bound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, frames: Path, style_path: Path, video_extra: None
) -> None:
    from artistyle.video.settings import VideoSettings

    with pytest.raises(UsageError, match="at most 1000"):
        VideoSettings(long_term=(1, 10**20))
    err = refused(capsys, "video", str(frames), str(style_path), "-o", str(tmp_path / "out"), "--long-term",
                  "1,99999999999999999999", *VIDEO)
    assert "long-term" in err and not (tmp_path / "out").exists()


# -- X2: the studio's numbers: steps by another name, a loss that became infinite ------------------------


def test_x_the_studio_refuses_scale_steps_beyond_its_step_limit(client: Any, studio_images: tuple[str, str]) -> None:
    content, style = studio_images
    response = client.post("/api/jobs", json={"content": content, "styles": [style],
                                              "settings": {"scale_steps": [10**300]}})
    assert response.status_code == 400 and "at most" in response.json()["error"], response.text
    response = client.post("/api/jobs", json={"content": content, "styles": [style],
                                              "settings": {"size": 48, "scale_steps": [6000, 6000]}})
    assert response.status_code == 400 and "10000" in response.json()["error"], response.text


def test_x_a_studio_job_whose_loss_became_infinite_keeps_a_json_state(
    client: Any, studio_images: tuple[str, str]
) -> None:
    from .conftest import submit_job, wait_for_job

    content, style = studio_images
    job = submit_job(client, content, [style], size=48, steps=3, style_weight=1e308, init="noise")
    state = wait_for_job(client, job["id"], ("done", "failed", "cancelled"))
    assert state["status"] == "failed" and "loss became" in state["error"], state
    assert all(loss is None or np.isfinite(loss) for loss in state["losses"])
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as events:
        data = [line[6:] for line in events.iter_lines() if line.startswith("data: ")]
    assert data and json.loads(data[-1])["status"] == "failed"  # strict JSON: no NaN or Infinity
    assert "NaN" not in data[-1] and "Infinity" not in data[-1]


# -- X3: special files where an output goes -------------------------------------------------------------------


def test_x_a_fifo_where_an_output_or_checkpoint_goes_is_not_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, images: tuple[Path, Path]
) -> None:
    content, style = images
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    err = refused(capsys, str(content), str(style), "-o", str(fifo), *FAST)
    assert "not a regular file (it is a FIFO)" in err
    ckpt = tmp_path / "run.ckpt"
    os.mkfifo(ckpt)
    err = refused(capsys, str(content), str(style), "-o", str(tmp_path / "o.png"), "--checkpoint", str(ckpt), *FAST)
    assert "not a regular file (it is a FIFO)" in err
    assert fifo.is_fifo() and ckpt.is_fifo() and not (tmp_path / "o.png").exists()


# -- X4: Ray jobs that no node can hold --------------------------------------------------------------------


def test_x_ray_jobs_asking_for_more_than_the_cluster_has_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, images: tuple[Path, Path]
) -> None:
    """Ray waits forever for a task no node can hold: --cpus-per-job 1000 on a 2-CPU cluster hung."""
    from artistyle.batch import ray_executor

    class Cluster:  # a joined Ray cluster of 2 CPUs and 1 GPU, as RayExecutor reports it
        def __init__(self, address: str | None, *, cpus_per_job: float | None, gpus_per_job: float | None):
            self.cpus, self.gpus = cpus_per_job or 1.0, gpus_per_job or 0.0

        def connect(self) -> None:
            pass

        def resources(self) -> tuple[float, float]:
            return self.cpus, self.gpus

        def total(self, resource: str) -> float:
            return {"CPU": 2.0, "GPU": 1.0}[resource]

        def close(self) -> None:
            pass

    monkeypatch.setattr(ray_executor, "RayExecutor", Cluster)
    content, style = images
    out = str(tmp_path / "out")
    base = ["batch", str(content), str(style), "-o", out, "--size", "32", "--steps", "2", "--quiet"]
    assert "1000 CPUs" in refused(capsys, *base, "--ray", "--cpus-per-job", "1000", "--device", "cpu")
    assert "3 GPUs" in refused(capsys, *base, "--ray", "--gpus-per-job", "3", "--device", "cuda")
    assert not Path(out).exists()


# -- X5: the studio command's numbers ---------------------------------------------------------------------------


def test_x_the_studio_command_refuses_an_upload_limit_that_overflows(capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("1e308", "1e300", "inf", "nan"):  # 1e308 MB overflowed (a traceback), 1e300 hung the server
        assert "--max-upload-mb: must be a number above 0 and at most 10000" in refused(
            capsys, "web", "--max-upload-mb", value, "--port", "0")

"""The picture key (artistyle.picture): only what changes the picture, by content, never by path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from artistyle import StyleConfig
from artistyle.batch import JOURNAL_NAME
from artistyle.files import file_sha256
from artistyle.picture import legacy_config_dict, picture_key, picture_settings, schema_changes
from artistyle.settings import Setting, setting
from artistyle.video.settings import VideoSettings

from .conftest import TrialConfig, make_clip, make_content, make_style, run


def sha(path: str) -> str:
    return "sha:" + os.path.basename(path)  # a stand-in digest: the tests here only need it to be stable


def key(config: StyleConfig) -> str:
    return picture_key(settings=picture_settings(config, sha), seed=config.seed, inputs={"content": "c"})


def test_a_new_field_at_its_default_leaves_every_key_unchanged() -> None:
    for given in ({}, {"size": 64, "style_weight": 0.5}, {"init": "fast"}, {"steps": 7, "masks": ("m.png",)}):
        assert picture_settings(TrialConfig(**given), sha) == picture_settings(StyleConfig(**given), sha)
        assert key(TrialConfig(**given)) == key(StyleConfig(**given))
    # And a changed one counts (beside the changed defaults a default run names: KEYED_DEFAULTS).
    assert picture_settings(TrialConfig(brush_size=8), sha) == {**picture_settings(StyleConfig(), sha), "brush_size": 8}

    @dataclass(frozen=True)
    class TrialVideo(VideoSettings):
        wobble: float = setting(0.0, "video", "trial: a new video setting")

    assert schema_changes(TrialVideo(steps=7)) == schema_changes(VideoSettings(steps=7)) == {"steps": 7}
    assert schema_changes(TrialVideo(wobble=0.5)) == {"wobble": 0.5}


def other_value(s: Setting) -> Any:
    """A value of the setting that differs from its default once resolved."""
    if s.path:
        files = ("elsewhere.png",)
        return files if s.many else files[0]
    if s.kind is bool:
        return not s.default
    if s.choices:
        return next(c for c in s.choices if c != s.default)
    if s.many:
        return {int: (7, 3), float: (0.5, 0.25), str: ("conv1_1",)}[s.kind]
    if s.kind is int:
        return 77 if s.default is None else s.default + 1
    if s.kind is float:
        return 2.5 if s.default is None else s.default * 2 + 0.5
    raise AssertionError(f"no other value for {s.name}")


def test_every_picture_setting_changes_the_key_and_device_or_memory_do_not() -> None:
    base = key(StyleConfig())
    pictured = [s for s in StyleConfig.settings() if s.picture and s.name != "seed"]
    assert len(pictured) == len(StyleConfig.settings()) - 4
    for s in pictured:
        changed = StyleConfig(**{s.name: other_value(s)})
        assert key(changed) != base, s.name
    assert key(StyleConfig(seed=3)) != base
    assert key(StyleConfig(device="cpu", max_memory=2**30, tile_workers=3)) == base
    assert {s.name for s in StyleConfig.settings() if not s.picture} == {"device", "max_memory", "tile_workers"}
    # Unset settings count by their resolved value: the default given explicitly is no change.
    assert key(StyleConfig(steps=300, content_weight=1.0)) == base


def test_a_file_setting_counts_by_its_content(tmp_path: Path) -> None:
    for name, data in (("a.png", b"one"), ("b.png", b"one"), ("c.png", b"two")):
        (tmp_path / name).write_bytes(data)
    keys = [picture_key(settings=picture_settings(StyleConfig(init=str(tmp_path / n)), file_sha256), seed=None,
                        inputs={}) for n in ("a.png", "b.png", "c.png")]
    assert keys[0] == keys[1] != keys[2]
    assert picture_settings(StyleConfig(init="content"), file_sha256) == {  # a name, no file
        **picture_settings(StyleConfig(), file_sha256), "init": "content"}


def test_a_changed_default_keeps_the_old_keys_and_gives_the_new_default_its_own() -> None:
    """Padding was zeros, the default keys were made without it: those records stay the zeros pictures'."""
    made_before = picture_key(settings={}, seed=None, inputs={"content": "c"})  # a default run's key before
    assert key(StyleConfig(padding="zeros")) == made_before
    assert picture_settings(StyleConfig(), sha) == {"padding": "reflect"}
    assert key(StyleConfig()) != made_before and key(StyleConfig(padding="reflect")) == key(StyleConfig())


# -- batch ---------------------------------------------------------------------------------------------------
BATCH = ["--device", "cpu", "--size", "32", "--steps", "2", "--quiet"]


def batch_inputs(root: Path) -> None:
    (root / "photos").mkdir(parents=True)
    (root / "styles").mkdir()
    make_content((40, 32)).save(root / "photos" / "p1.png")
    make_style((40, 40)).save(root / "styles" / "wave.png")


def lines(outdir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (outdir / JOURNAL_NAME).read_text().splitlines() if line.strip()]


def batch(capsys: pytest.CaptureFixture[str], root: Path, out: Path, *extra: str) -> int:
    return run(capsys, "batch", str(root / "photos"), str(root / "styles"), "-o", str(out), *BATCH, *extra)[0]


@pytest.mark.slow
def test_a_batch_folder_copied_elsewhere_is_continued(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first = tmp_path / "first"
    batch_inputs(first)
    assert batch(capsys, first, first / "out") == 0
    written = (first / "out" / "p1__wave.png").read_bytes()
    assert lines(first / "out")[-1]["name"] == "p1__wave.png"
    # The folder with its inputs, copied elsewhere: the job is skipped, not painted again.
    second = tmp_path / "second"
    shutil.copytree(first, second)
    assert batch(capsys, second, second / "out") == 0
    assert lines(second / "out")[-1]["status"] == "skipped"
    # Only the output folder moved, the inputs where they were: skipped too.
    (tmp_path / "third").mkdir()
    shutil.move(first / "out", tmp_path / "third" / "out")
    assert batch(capsys, first, tmp_path / "third" / "out") == 0
    assert lines(tmp_path / "third" / "out")[-1]["status"] == "skipped"
    assert (tmp_path / "third" / "out" / "p1__wave.png").read_bytes() == written
    # A changed input is painted again.
    make_content((36, 32)).save(second / "photos" / "p1.png")
    assert batch(capsys, second, second / "out") == 0
    assert lines(second / "out")[-1]["status"] == "ok"


@pytest.mark.slow
def test_a_0_5_journal_line_makes_the_job_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    batch_inputs(tmp_path)
    out = tmp_path / "out"
    zeros = ("--padding", "zeros")  # 0.5's padding (its default then): the same picture as 0.5 painted
    assert batch(capsys, tmp_path, out, *zeros) == 0
    line = lines(out)[-1]
    # The line as 0.5 wrote it: no name, and its settings hash spelled out as 0.5's journal made it
    # (0.5's fields only: legacy_config_dict).
    settings = legacy_config_dict(StyleConfig(size=32, steps=2, content_weight=1.0, padding="zeros"))
    record = {"settings": settings, "content": file_sha256(tmp_path / "photos" / "p1.png"),
              "styles": [file_sha256(tmp_path / "styles" / "wave.png")], "format": ".png"}
    legacy = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    del line["name"]
    (out / JOURNAL_NAME).write_text(json.dumps({**line, "settings_hash": legacy}) + "\n")
    assert batch(capsys, tmp_path, out, *zeros) == 0
    assert [r["status"] for r in lines(out)] == ["ok", "skipped"]
    (out / JOURNAL_NAME).write_text(json.dumps({**line, "settings_hash": "0" * 64}) + "\n")  # another hash
    assert batch(capsys, tmp_path, out, *zeros) == 0
    assert [r["status"] for r in lines(out)] == ["ok", "ok"]


# -- video ---------------------------------------------------------------------------------------------------
TINY = ["--size", "48", "--first-steps", "3", "--steps", "2", "--seed", "1", "--device", "cpu", "-q"]


def stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.png"))}


@pytest.mark.slow
def test_a_clip_and_its_frames_moved_elsewhere_resume(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    make_clip(first / "in.mp4", frames=3, size=(64, 48))
    make_style().save(first / "style.png")
    assert run(capsys, "video", str(first / "in.mp4"), str(first / "style.png"), "-o", str(first / "out"), *TINY)[0] == 0
    (first / "out" / "frame_000003.png").unlink()  # as if stopped before the last frame
    before = stamps(first / "out")
    second = tmp_path / "second"
    shutil.move(first, second)
    code, _, err = run(capsys, "video", str(second / "in.mp4"), str(second / "style.png"), "-o", str(second / "out"),
                       *TINY)
    assert code == 0, err
    after = stamps(second / "out")
    assert {k: after[k] for k in before} == before and "frame_000003.png" in after  # kept, and the rest painted


@pytest.mark.slow
def test_a_0_5_video_state_file_is_accepted_and_rekeyed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(64, 48))
    make_style().save(tmp_path / "style.png")
    out = tmp_path / "out"
    # 0.5's padding (its default then) and warp (bilinear, the only one): the picture 0.5 painted.
    argv = ["video", str(clip), str(tmp_path / "style.png"), "-o", str(out), *TINY, "--padding", "zeros",
            "--warp", "bilinear"]
    assert run(capsys, *argv)[0] == 0
    state_path = out / ".artistyle-video.json"
    state = json.loads(state_path.read_text())
    new_key = state["settings_hash"]
    # The state file as 0.5's artistyle video wrote it (0.5's fields only), its hash spelled out as 0.5 made it.
    config = legacy_config_dict(StyleConfig(size=48, steps=3, content_weight=1.0, padding="zeros"),
                                ("device", "max_memory", "seed"))
    info = clip.stat()
    record = {"config": config, "seed": 1,
              "video": {"first_steps": 3, "steps": 2, "flow": "dis", "flow_preset": "medium", "long_term": [1],
                        "color_tolerance": 0.1},
              "styles": [file_sha256(tmp_path / "style.png")],
              "input": {"path": str(clip.resolve()), "files": [[clip.name, info.st_size, info.st_mtime_ns]],
                        "names": [f"frame_{i:06d}" for i in range(1, 4)], "fps": "25"}}
    legacy = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
    state_path.write_text(json.dumps({**state, "settings_hash": legacy}))
    before = stamps(out)
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert stamps(out) == before
    assert json.loads(state_path.read_text())["settings_hash"] == new_key  # keyed anew: the folder may now move

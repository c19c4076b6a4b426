"""Checkpoints and resume: bit-identical continuation, a real kill -9, and bad checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST
from artistyle.checkpoint import load_checkpoint

from .conftest import make_content, make_style, run

SETTINGS = dict(size=96, device="cpu", seed=11, scales=2, scale_steps=(6, 4))


def _uninterrupted() -> torch.Tensor:
    nst = NST(**SETTINGS)
    return nst.paint(make_content((80, 64)), make_style()).run()


@pytest.mark.parametrize("stop_at", [3, 6, 8])  # inside the first scale, at its end, inside the second
def test_resumed_painting_ends_with_the_same_image(stop_at: int) -> None:
    nst = NST(**SETTINGS)
    painting = nst.paint(make_content((80, 64)), make_style())
    for event in painting:
        if event.iteration == stop_at:
            painting.stop()
    state = painting.state_dict()
    again = NST(**SETTINGS).paint(make_content((80, 64)), make_style())
    again.load_state_dict(state)
    events = list(again)
    assert [e.iteration for e in events] == list(range(stop_at + 1, 11))
    assert torch.equal(again.image, _uninterrupted())
    assert len(again.history) == 10


def _cli(tmp_path: Path, *extra: str) -> list[str]:
    return ["--device", "cpu", "--size", "64", "--seed", "4", "--steps", "12", "--scales", "1", "-q", *extra]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_cli_checkpoint_and_resume(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tmp_path / "full.png"
    assert run(capsys, str(content_path), str(style_path), "-o", str(full), *_cli(tmp_path))[0] == 0

    from artistyle import nst as nst_module

    original = nst_module.Transfer._step

    def interrupt_at_7(self: nst_module.Transfer):  # type: ignore[no-untyped-def]
        if self.iteration == 7:
            raise KeyboardInterrupt
        return original(self)

    part, ckpt = tmp_path / "part.png", tmp_path / "run.ckpt"
    with monkeypatch.context() as m:
        m.setattr(nst_module.Transfer, "_step", interrupt_at_7)
        code, _, _ = run(capsys, str(content_path), str(style_path), "-o", str(part), *_cli(tmp_path),
                         "--checkpoint", str(ckpt), "--checkpoint-every", "5")
    assert code == 130 and ckpt.exists()
    assert load_checkpoint(ckpt)["painting"]["iteration"] == 7  # the interrupt writes a last checkpoint
    code, _, err = run(capsys, "--resume", str(ckpt), "-q")
    assert code == 0, err
    assert np.array_equal(_pixels(part), _pixels(full))


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(content_path: Path, style_path: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "artistyle", str(content_path), str(style_path), "--device", "cpu", "--size", "64",
            "--seed", "9", "--steps", "60", "--scales", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full.png"
    subprocess.run([*base, "-o", str(full)], check=True, env=env, timeout=300)

    ckpt, killed = tmp_path / "k.ckpt", tmp_path / "killed.png"
    proc = subprocess.Popen([*base, "-o", str(killed), "--checkpoint", str(ckpt), "--checkpoint-every", "3"], env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if ckpt.exists() and load_checkpoint(ckpt)["painting"]["iteration"] >= 12:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint came")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not killed.exists()
    iteration = load_checkpoint(ckpt)["painting"]["iteration"]
    assert 12 <= iteration < 60
    subprocess.run([sys.executable, "-m", "artistyle", "--resume", str(ckpt), "-q"], check=True, env=env, timeout=300)
    assert np.array_equal(_pixels(killed), _pixels(full))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_resume_errors(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--resume", str(tmp_path / "none.ckpt"))
    assert code == 2 and "does not exist" in err

    code, _, err = run(capsys, "--resume", str(content_path))
    assert code == 2 and "not an ArtiStyle checkpoint" in err

    ckpt = tmp_path / "c.ckpt"
    out = tmp_path / "o.png"
    assert run(capsys, str(content_path), str(style_path), "-o", str(out), *_cli(tmp_path), "--checkpoint", str(ckpt))[0] == 0

    code, _, err = run(capsys, "--resume", str(ckpt), "--size", "128")
    assert code == 2 and "drop --size" in err and err.count("\n") == 1

    other = tmp_path / "other.png"
    make_style((64, 64)).save(other)
    code, _, err = run(capsys, str(other), str(style_path), "--resume", str(ckpt))
    assert code == 2 and "is not the one checkpoint" in err

    state = torch.load(ckpt, weights_only=True)
    state["version"] = "0.0.1"
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    code, _, err = run(capsys, "--resume", str(old))
    assert code == 2 and "written by ArtiStyle 0.0.1" in err

    # 0.5.0 reorganised the code, not the saved state: the previous release's checkpoints resume.
    state["version"] = "0.4.0"
    previous = tmp_path / "previous.ckpt"
    torch.save(state, previous)
    code, _, err = run(capsys, "--resume", str(previous), "-o", str(tmp_path / "resumed.png"))
    assert code == 0, err

    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(out), *_cli(tmp_path),
                       "--checkpoint", str(content_path))
    assert code == 2 and "overwrite an input" in err

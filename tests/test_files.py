"""Tests for artistyle.files: atomic writes, stale temporaries, same_file, file_sha256."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from artistyle.errors import FileError, ImageError, UsageError
from artistyle.files import atomic_write, check_writable, file_sha256, remove_stale_temporaries, same_file


def test_atomic_write_into_a_missing_folder_is_a_file_error(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "run.ckpt"
    with pytest.raises(FileError, match=r"checkpoint .*run\.ckpt cannot be written \(No such file or directory\)") as info:
        atomic_write(target, lambda fh: fh.write(b"data"), f"checkpoint {target}")
    assert not isinstance(info.value, ImageError)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    assert not (tmp_path / "nowhere").exists()


def test_atomic_write_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write(target, lambda fh: fh.write(b"one"), "manifest")
    atomic_write(target, lambda fh: fh.write(b"two"), "manifest")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_os_error_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_bytes(b"old")

    def fail(fh: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(FileError, match=r"manifest cannot be written \(No space left on device\)"):
        atomic_write(target, fail, "manifest")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_other_errors_propagate(tmp_path: Path) -> None:
    def fail(fh: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.json", fail, "manifest")
    assert list(tmp_path.iterdir()) == []


def dead_pid() -> int:
    """The id of a process that has ended (a child that ran and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("name", ["run.ckpt", "odd[1]*?.ckpt"])
def test_remove_stale_temporaries_removes_only_those_of_dead_writers_on_this_host(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"checkpoint")
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32]
    dead, alive = dead_pid(), os.getppid()
    stale = [tmp_path / f".{name}.~{host}.{dead}.abcd_123.ckpt"]
    for path in stale:
        path.write_bytes(b"half")
    others = [
        tmp_path / f".{name}.~{host}.{alive}.abcd_123.ckpt",  # a live writer: another run, right now
        tmp_path / f".{name}.~{host}.{os.getpid()}.abcd_123.ckpt",  # this process: another thread
        tmp_path / f".{name}.~other-host.{dead}.abcd_123.ckpt",  # another machine on a shared folder
        tmp_path / f".{name}.abc123.ckpt",  # no writer recorded (0.5.0 and before): cannot be proven ours
        tmp_path / ".other.ckpt.abc.ckpt",
        tmp_path / f".{name}.~{host}.{dead}.abcd_123.png",
        tmp_path / f"{name}.bak",
    ]
    for path in others:
        path.write_bytes(b"keep")
    assert remove_stale_temporaries(target) == stale
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, *(p.name for p in others)])


def test_a_write_killed_with_sigkill_is_cleaned_by_the_next_write(tmp_path: Path) -> None:
    """D4: a real kill -9 in the middle of atomic_write leaves a temporary; the next write of the file removes it."""
    target = tmp_path / "out.png"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from artistyle.files import atomic_write\n"
        "def slow(fh):\n    fh.write(b'half'); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"atomic_write({str(target)!r}, slow, 'output')"
    )], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    writer.kill()
    writer.wait(timeout=30)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.png.~") and f".{writer.pid}." in left[0]
    atomic_write(target, lambda fh: fh.write(b"whole"), "output")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"] and target.read_bytes() == b"whole"


def test_check_writable_refuses_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"x")
    cases = [
        (tmp_path / "nowhere" / "run.ckpt", r"folder '.*nowhere' does not exist"),
        (tmp_path / "folder", "is a folder"),
        (source, "is the input file"),
    ]
    if Path("/proc/self").is_dir():
        cases.append((Path("/proc/run.ckpt"), r"cannot be written \(the folder takes no new files\)"))
    for path, message in cases:
        with pytest.raises(FileError, match=message):
            check_writable(path, f"checkpoint '{path}'", protect=[source])
    check_writable(tmp_path / "run.ckpt", "checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "photo.jpg"]  # the probe is gone


def test_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.png"
    link.symlink_to(a)
    monkeypatch.chdir(tmp_path)
    assert same_file(a, "sub/../a.png")
    assert same_file(link, a)
    assert same_file(tmp_path / "new.png", "new.png")  # not there yet: compared by path
    assert not same_file(a, tmp_path / "b.png")


def test_file_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 << 20 | 5)  # several 1 MiB chunks and a remainder
    (tmp_path / "w.pth").write_bytes(data)
    assert file_sha256(tmp_path / "w.pth") == hashlib.sha256(data).hexdigest()
    with pytest.raises(OSError):
        file_sha256(tmp_path / "missing.pth")

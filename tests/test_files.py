"""Tests for artistyle.files: atomic writes, stale temporaries, same_file, file_sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from artistyle.errors import FileError, ImageError, UsageError
from artistyle.files import atomic_write, file_sha256, remove_stale_temporaries, same_file


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


@pytest.mark.parametrize("name", ["run.ckpt", "odd[1]*?.ckpt"])
def test_remove_stale_temporaries(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"checkpoint")
    stale = [tmp_path / f".{name}.abc123.ckpt", tmp_path / f".{name}.x.ckpt"]
    for path in stale:
        path.write_bytes(b"half")
    others = [tmp_path / ".other.ckpt.abc.ckpt", tmp_path / f".{name}.abc.png", tmp_path / f"{name}.bak"]
    for path in others:
        path.write_bytes(b"keep")
    remove_stale_temporaries(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, *(p.name for p in others)])


def test_a_killed_write_leaves_a_temporary_that_cleanup_finds(tmp_path: Path) -> None:
    target = tmp_path / "run.ckpt"
    seen: list[str] = []

    def look(fh: object) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, look, "checkpoint")
    # The temporary's name is the one remove_stale_temporaries looks for.
    (tmp_path / seen[0]).write_bytes(b"half")
    remove_stale_temporaries(target)
    assert list(tmp_path.iterdir()) == []


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

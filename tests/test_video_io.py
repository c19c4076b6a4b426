"""Tests for artistyle.video's input and output: frame folders and video files in, videos and folders out,
with real PyAV/FFmpeg on tiny clips made here (no media in git)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artistyle.errors import ImageError, UsageError
from artistyle.video.extra import INSTALL_HINT, require_video

av = pytest.importorskip("av")

from artistyle.video.encode import check_video_output, encode_video  # noqa: E402
from artistyle.video.frames import natural_key, open_frames  # noqa: E402

from .conftest import CLIP_SIZE, REPO, make_clip, picture, probe  # noqa: E402

W, H = CLIP_SIZE

def which(rgb: np.ndarray) -> int:
    """The ``i`` of :func:`picture` a decoded frame shows."""
    return round((float(np.median(rgb[..., 1])) - 10) / 20)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


# --------------------------------------------------------------------------- reading


def test_natural_key_orders_numbers_as_numbers_and_ignores_case() -> None:
    names = ["frame_10.png", "Frame_2.png", "frame_1.png", "a.png", "frame_02b.png"]
    assert sorted(names, key=natural_key) == ["a.png", "frame_1.png", "Frame_2.png", "frame_02b.png", "frame_10.png"]


def test_folder_in_natural_order(tmp_path: Path) -> None:
    for i, name in enumerate(["Frame_1.PNG", "frame_2.png", "frame_3.jpg", "frame_10.png"]):
        Image.fromarray(picture(i)).save(tmp_path / name, quality=98)
    (tmp_path / "notes.txt").write_text("not a frame")
    Image.fromarray(picture(9)).save(tmp_path / ".frame_4.png.~host.1.abcdefgh.png")  # someone's temporary
    source = open_frames(tmp_path)
    assert source.names == ("Frame_1", "frame_2", "frame_3", "frame_10")
    assert (source.count, source.size, source.fps, source.has_audio) == (4, (W, H), Fraction(25), False)
    frames = list(source)
    assert [(f.index, f.name) for f in frames] == list(enumerate(source.names))
    assert [which(f.rgb) for f in frames] == [0, 1, 2, 3]
    assert all(f.rgb.dtype == np.uint8 and f.rgb.shape == (H, W, 3) for f in frames)


def test_folder_selection_by_time(tmp_path: Path) -> None:
    for i in range(10):
        Image.fromarray(picture(i)).save(tmp_path / f"f{i}.png")
    source = open_frames(tmp_path, fps=10, start=0.2, end=0.7, every=2)  # frames at 0.2, 0.4, 0.6 s
    assert source.names == ("f2", "f4", "f6") and source.fps == 5 and source.start_time == Fraction(1, 5)
    assert [which(f.rgb) for f in source.frames(1)] == [4, 6]  # a resumed driver starts later


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
def test_mp4_in_frames_out_mp4_keeps_count_size_and_rate(tmp_path: Path, rate: Fraction) -> None:
    clip = make_clip(tmp_path / "in.mp4", 8, rate)
    source = open_frames(clip)
    assert (source.count, source.size, source.fps) == (8, (W, H), rate)
    assert source.names[0] == "frame_000001" and source.names[-1] == "frame_000008"
    frames = list(source)
    assert [which(f.rgb) for f in frames] == list(range(8))
    written = encode_video((f.rgb for f in frames), tmp_path / "out.mp4", fps=source.fps)
    assert (written.frames, written.size, written.fps, written.audio, written.notes) == (8, (W, H), rate, None, ())
    info = probe(tmp_path / "out.mp4")
    assert (info["count"], info["size"], info["rate"], info["codec"]) == (8, (W, H), rate, "h264")
    assert [which(f.rgb) for f in open_frames(tmp_path / "out.mp4")] == list(range(8))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".webm", ".mov", ".gif"])
def test_other_containers_out(tmp_path: Path, suffix: str) -> None:
    rate = Fraction(30000, 1001)
    out = tmp_path / f"out{suffix}"
    encode_video([picture(i) for i in range(6)], out, fps=rate)
    info = probe(out)
    assert (info["count"], info["size"]) == (6, (W, H))
    assert info["codec"] == {".webm": "vp9", ".mov": "h264", ".gif": "gif"}[suffix]
    if suffix == ".gif":  # delays in 1/100 s: 3 or 4 each, 20 in all (6 frames of 1001/30000 s)
        with Image.open(out) as gif:
            delays = []
            for k in range(gif.n_frames):
                gif.seek(k)
                delays.append(gif.info["duration"])
        assert set(delays) <= {30, 40} and sum(delays) == 200
    else:
        assert info["rate"] == rate
    assert [which(f.rgb) for f in open_frames(out)] == list(range(6))


def test_png_frames_on_disk_to_gif_and_folder(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    paths = []
    for i in range(5):
        paths.append(work / f"frame_{i + 1:06d}.png")
        Image.fromarray(picture(i)).save(paths[-1])
    encode_video(paths, tmp_path / "out.gif", fps=10)
    assert [which(f.rgb) for f in open_frames(tmp_path / "out.gif")] == list(range(5))
    written = encode_video(paths, tmp_path / "frames", fps=10, names=[f"shot_{i}" for i in range(5)])
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"shot_{i}.png" for i in range(5)]
    assert (tmp_path / "frames" / "shot_3.png").read_bytes() == paths[3].read_bytes()
    assert written.frames == 5 and written.audio is None


def test_odd_size_is_padded_for_h264(tmp_path: Path) -> None:
    written = encode_video([picture(i, (65, 49)) for i in range(3)], tmp_path / "odd.mp4", fps=24)
    assert written.size == (66, 50) and written.notes[0].startswith("the frames are 65x49 and H.264 needs even sides")
    assert probe(tmp_path / "odd.mp4")["size"] == (66, 50)


@pytest.mark.parametrize(("suffix", "kept"), [(".mp4", "aac"), (".mov", "aac"), (".webm", "opus")])
def test_audio_is_carried_over(tmp_path: Path, suffix: str, kept: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", 12, 24, audio="aac")
    source = open_frames(clip)
    assert source.has_audio
    written = encode_video((f.rgb for f in source), tmp_path / f"out{suffix}", fps=source.fps, audio_from=source)
    info = probe(tmp_path / f"out{suffix}")
    assert info["audio"] == kept and info["count"] == 12
    assert abs(float(info["audio_seconds"]) - 0.5) < 0.05  # type: ignore[arg-type]
    assert bool(written.notes) == (suffix == ".webm")  # AAC re-encoded to Opus for WebM, and said so


def test_opus_is_copied_into_webm_and_left_out_of_a_gif(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.webm", 6, 24, codec="libvpx-vp9", audio="libopus")
    source = open_frames(clip)
    written = encode_video((f.rgb for f in source), tmp_path / "out.webm", fps=source.fps, audio_from=clip)
    assert written.audio == "opus" and written.notes == ()
    gif = encode_video((f.rgb for f in source), tmp_path / "out.gif", fps=source.fps, audio_from=source)
    assert gif.audio is None and "not kept" in gif.notes[0]


def test_video_selection_cuts_frames_and_sound(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", 12, 24, audio="aac")
    source = open_frames(clip, start=0.1, end=0.4, every=2)  # frames 3..9 (0.125 .. 0.375 s), every other
    assert [which(f.rgb) for f in source] == [3, 5, 7, 9]
    assert source.names == tuple(f"frame_{i:06d}" for i in range(1, 5)) and source.fps == 12
    assert [which(f.rgb) for f in source.frames(2)] == [7, 9]
    encode_video((f.rgb for f in source), tmp_path / "cut.mp4", fps=source.fps, audio_from=source)
    info = probe(tmp_path / "cut.mp4")
    assert info["count"] == 4 and info["rate"] == 12
    assert abs(float(info["audio_seconds"]) - 4 / 12) < 0.05  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bad input


def make_corrupt_clip(path: Path) -> Path:
    """Six PNG-coded frames in a .mov, the fourth one's data scrambled."""
    make_clip(path, 6, codec="png")
    with av.open(os.fspath(path)) as container:
        positions = [p.pos for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for k in range(positions[3] + 40, positions[4] - 40):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "x.mp4").write_text("hello\n" * 50) and d / "x.mp4", "is not a video FFmpeg can read"),
        (lambda d: (d / "x.mp4").write_bytes(b"") or d / "x.mp4", "is empty"),
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: (d / "frames").mkdir() or d / "frames", "has no images"),
    ],
)
def test_unusable_inputs(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ImageError) as info:
        open_frames(path)
    assert message in one_line(info)


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    with av.open(os.fspath(tmp_path / "song.m4a"), "w") as container:
        sound = container.add_stream("aac", rate=48000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 48000, 0
        for packet in [*sound.encode(chunk), *sound.encode(None)]:
            container.mux(packet)
    with pytest.raises(ImageError) as info:
        open_frames(tmp_path / "song.m4a")
    assert "no video stream" in one_line(info)


def test_video_with_no_frames_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.y4m").write_text("YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")  # a header, no frame
    with pytest.raises(ImageError) as info:
        open_frames(tmp_path / "empty.y4m")
    assert one_line(info) == f"'{tmp_path / 'empty.y4m'}' is a video with no frames"
    with av.open(os.fspath(tmp_path / "empty.mp4"), "w") as container:  # FFmpeg drops an empty track
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
    with pytest.raises(ImageError) as info:
        open_frames(tmp_path / "empty.mp4")
    assert "has no video stream" in one_line(info)


def test_folder_of_frames_of_different_sizes_names_the_first_odd_one(tmp_path: Path) -> None:
    for i in range(4):
        Image.fromarray(picture(i, (W, H) if i != 2 else (W + 2, H))).save(tmp_path / f"frame_{i}.png")
    with pytest.raises(ImageError) as info:
        open_frames(tmp_path)
    assert one_line(info) == f"frame 'frame_2.png' in '{tmp_path}' is 66x48, the frames before it 64x48"


def test_corrupt_frame_in_a_folder_comes_after_the_good_ones(tmp_path: Path) -> None:
    for i in range(5):
        Image.fromarray(picture(i)).save(tmp_path / f"frame_{i}.png")
    data = (tmp_path / "frame_3.png").read_bytes()
    (tmp_path / "frame_3.png").write_bytes(data[: len(data) // 2])
    seen = []
    with pytest.raises(ImageError) as info:
        for frame in open_frames(tmp_path):
            seen.append(frame.name)
    assert seen == ["frame_0", "frame_1", "frame_2"]
    assert "frame 4 of 5" in one_line(info) and "frame_3.png" in str(info.value)


def test_corrupt_frame_in_a_video_comes_after_the_good_ones(tmp_path: Path) -> None:
    source = open_frames(make_corrupt_clip(tmp_path / "bad.mov"))
    assert source.count == 6
    seen = []
    with pytest.raises(ImageError) as info:
        for frame in source:
            seen.append(which(frame.rgb))
    assert seen == [0, 1, 2]
    assert one_line(info).startswith("frame 4 (frame_000004) of ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start": 5.0}, "--start 5 s is past the end of the clip"),
        ({"end": 9.0}, "--end 9 s is past the end of the clip"),
        ({"start": 0.2, "end": 0.1}, "--end 0.1 s must be after --start 0.2 s"),
        ({"start": -1.0}, "--start must be a time in seconds"),
        ({"start": 0.101, "end": 0.102}, "select no frame"),
        ({"every": 0}, "--every must be a whole number"),
    ],
)
def test_bad_selection(tmp_path: Path, options: dict[str, float], message: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", 6, 25)
    with pytest.raises(UsageError) as info:
        open_frames(clip, **options)  # type: ignore[arg-type]
    assert message in one_line(info)


# --------------------------------------------------------------------------- bad output


def test_unsupported_extension_lists_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        check_video_output(tmp_path / "out.avi")
    assert one_line(info) == f"output '{tmp_path / 'out.avi'}': cannot write '.avi' video (use .mp4, .mov, .webm, .gif or a folder)"
    with pytest.raises(UsageError):
        encode_video([picture(0)], tmp_path / "out.avi", fps=25)
    assert list(tmp_path.iterdir()) == []


def test_the_input_is_never_the_output(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", 4, 25)
    before = clip.read_bytes()
    with pytest.raises(UsageError) as info:
        check_video_output(clip, clip)
    assert "refusing to overwrite an input" in one_line(info)
    with pytest.raises(UsageError):
        encode_video([picture(0)], clip, fps=25, audio_from=clip)
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(picture(0)).save(frames / "a.png")
    with pytest.raises(UsageError):
        check_video_output(frames, frames)
    assert clip.read_bytes() == before and leftovers(tmp_path) == []


def test_a_failed_encode_leaves_nothing(tmp_path: Path) -> None:
    def frames():  # type: ignore[no-untyped-def]
        yield picture(0)
        yield picture(1)
        yield picture(2, (W + 2, H))  # the driver must give every frame at one size

    with pytest.raises(UsageError) as info:
        encode_video(frames(), tmp_path / "out.mp4", fps=25)
    assert one_line(info) == "frame 3 is 66x48, the video 64x48"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError):
        encode_video([], tmp_path / "out.webm", fps=25)
    assert list(tmp_path.iterdir()) == []


def test_without_pyav_one_line_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    with pytest.raises(UsageError) as info:
        require_video()
    assert one_line(info) == f"{INSTALL_HINT} (missing: av)"
    code = "import sys; sys.modules['av'] = None\ntry:\n import artistyle.video.frames\nexcept Exception as e: print(type(e).__name__, e)"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == f"UsageError {INSTALL_HINT}"


# --------------------------------------------------------------------------- the shared benchmark clip


def shared_bench() -> Path | None:
    for folder in (REPO.parent / "shared", REPO.parent.parent / "shared", Path("/work/shared")):
        if (folder / "bench" / "video_clip.py").is_file():
            return folder / "bench" / "video_clip.py"
    return None


@pytest.mark.skipif(shared_bench() is None, reason="no ../shared/bench/video_clip.py")
def test_the_benchmark_clip_reads_back(tmp_path: Path) -> None:
    script = shared_bench()
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    source = open_frames(tmp_path / "clip.mp4")
    assert (source.count, source.size, source.fps) == (12, (160, 112), Fraction(12))
    assert len(list(source)) == 12
    folder = open_frames(tmp_path / "frames", fps=12)
    assert folder.count == 12 and folder.names[0] == "frame_0001"

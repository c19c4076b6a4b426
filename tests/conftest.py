"""Shared test helpers: small images made on the fly, the bundled samples, running the CLI in-process,
and a linear ICC profile. Test modules import helpers from here, never from each other."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle.cli import main
from artistyle.config import StyleConfig
from artistyle.settings import Setting, describe_fields, setting

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src" / "artistyle" / "samples"
SHARED_IMAGES = REPO.parent / "shared" / "images"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the suite runs on two workers, ``-n 2`` in pyproject.toml): one thread a worker, for
    torch here and (through OMP_NUM_THREADS) in the programs the tests start. Two workers of two threads each
    on a 2-core machine made painting tests up to 6x slower (OpenMP threads spinning for cores); one each,
    the suite took 866 s where one process took 1187 s. Tests must not depend on the thread count."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


def make_content(size: tuple[int, int] = (80, 64)) -> Image.Image:
    """A photo-like test picture: a bright disc on a two-tone background."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 0.2 + 0.6 * (xx / w)
    img[..., 1] = 0.3 + 0.4 * (yy / h)
    img[..., 2] = 0.5
    disc = (xx - w * 0.4) ** 2 + (yy - h * 0.5) ** 2 < (min(w, h) * 0.3) ** 2
    img[disc] = [0.95, 0.9, 0.2]
    return Image.fromarray((img * 255).astype(np.uint8))


def make_style(size: tuple[int, int] = (72, 72)) -> Image.Image:
    """A texture: blue and white diagonal stripes with red dots."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = ((xx + yy) // 6) % 2 == 0
    img = np.where(stripes[..., None], [30, 60, 200], [240, 240, 230]).astype(np.uint8)
    dots = ((xx % 12) - 6) ** 2 + ((yy % 12) - 6) ** 2 < 6
    img[dots] = [220, 30, 30]
    return Image.fromarray(img)


@pytest.fixture
def content_path(tmp_path: Path) -> Path:
    path = tmp_path / "content.png"
    make_content().save(path)
    return path


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    path = tmp_path / "style.png"
    make_style().save(path)
    return path


@pytest.fixture
def images(content_path: Path, style_path: Path) -> tuple[Path, Path]:
    """The made content and style pictures as files: (content.png, style.png) in tmp_path."""
    return content_path, style_path


@pytest.fixture
def shared_images() -> Path:
    if not SHARED_IMAGES.is_dir():
        pytest.skip("../shared/images is not present")
    return SHARED_IMAGES


# A tiny, fast run of the command line: add a content, a style and -o.
FAST = ["--device", "cpu", "--size", "48", "--steps", "2", "--seed", "3", "--quiet"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's --help / --version / usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def other_style(size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A second, clearly different style: soft green and orange blobs."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.sin(xx / 5.0) * np.cos(yy / 7.0)
    img = np.stack([0.5 + 0.4 * a, 0.6 - 0.3 * a, 0.2 + 0.1 * a], axis=-1)
    return Image.fromarray((img * 255).astype(np.uint8))


def s15_fixed(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def linear_icc(space: str = "RGB") -> bytes:
    """An ICC v2 display profile with gamma 1.0 (ImageCms can only create sRGB).

    "RGB": a matrix/TRC profile with sRGB primaries; "GRAY": a gray TRC profile.
    """

    def xyz(*v: float) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15_fixed(c) for c in v)

    text = f"Linear {space} (test)\0".encode()
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * (4 + 4 + 2 + 1 + 67)
    curv = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"  # gamma 1.0
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249))]
    if space == "RGB":
        tags += [
            (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
            (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
            (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
            (b"rTRC", curv),
            (b"gTRC", curv),
            (b"bTRC", curv),
        ]
    else:
        tags.append((b"kTRC", curv))
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    header = (
        struct.pack(">I", start + len(body))
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntr"
        + f"{space:<4}".encode()
        + b"XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + s15_fixed(0.9642)
        + s15_fixed(1.0)
        + s15_fixed(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def start_studio(folder: Path, port: int = 0) -> tuple[subprocess.Popen[str], str]:
    """A real ``artistyle web`` on ``port`` (0: a free one), run in ``folder``; returns the process and its address."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "artistyle", "web", "--port", str(port), "--device", "cpu"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder)
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    url = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert url, (line, process.stderr.read() if process.poll() is not None else "")
    return process, url.group(0)


def interrupt_a_watched_run(base: str, interrupt: Callable[[], None]) -> None:
    """Start a long job, watch its events until the first iteration, call ``interrupt``, then read the
    stream to its end (it returns once the server ends the stream)."""
    import httpx

    job = httpx.post(base + "api/jobs", timeout=10, json={
        "content": "sample:chelsea_cat.jpg", "styles": ["sample:starry_night.jpg"],
        "settings": {"size": 48, "steps": 5000}}).json()
    with httpx.stream("GET", f"{base}api/jobs/{job['id']}/events", timeout=60) as events:
        lines = events.iter_lines()
        for line in lines:
            if line.startswith("data: ") and json.loads(line[6:])["iteration"] >= 1:
                break
        interrupt()
        list(lines)


# Tiny video clips for the video tests (made with PyAV, imported only when a test makes one).
CLIP_SIZE = (64, 48)


def picture(i: int, size: tuple[int, int] = CLIP_SIZE) -> np.ndarray:
    """Frame ``i``: a flat green level 10 + 20 i (read back to tell frames apart) with a moving bar."""
    w, h = size
    rgb = np.full((h, w, 3), 60, np.uint8)
    rgb[..., 1] = 10 + 20 * i
    rgb[:, (6 * i) % (w - 4) : (6 * i) % (w - 4) + 4, 0] = 250
    return rgb


def make_clip(
    path: Path,
    frames: int = 8,
    rate: Fraction | int = 25,
    *,
    codec: str = "libx264",
    audio: str | None = None,
    size: tuple[int, int] = CLIP_SIZE,
) -> Path:
    """A tiny clip; with ``audio`` ('aac' or 'libopus') a 440 Hz tone as long as the video."""
    import av

    with av.open(os.fspath(path), "w") as container:
        video = container.add_stream(codec, rate=Fraction(rate))
        video.width, video.height = size
        video.pix_fmt = "rgb24" if codec == "png" else "yuv420p"
        sound = container.add_stream(audio, rate=48000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(i, size), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            step = sound.codec_context.frame_size or 1024
            for at in range(0, int(48000 * frames / Fraction(rate)), step):
                tone = np.sin(2 * np.pi * 440 * np.arange(at, at + step) / 48000).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = 48000, at
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def probe(path: Path) -> dict[str, object]:
    """Frame count, size, rate and codec of a video file, and its sound's codec and length."""
    import av

    with av.open(os.fspath(path)) as container:
        video = container.streams.video[0]
        count = sum(1 for p in container.demux(video) if p.size)
        info: dict[str, object] = {"count": count, "size": (video.width, video.height), "rate": video.average_rate}
        info["codec"] = video.codec_context.name
    with av.open(os.fspath(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            ends = [(p.pts + p.duration) * p.time_base for p in container.demux(audio) if p.pts is not None]
            info["audio"] = audio.codec_context.name
            info["audio_seconds"] = float(max(ends))
    return info


# -- the studio through its HTTP API (Starlette's TestClient; the web extra) -----------------------------
@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A studio on the CPU behind Starlette's TestClient, one per test module, sending the page's X-ArtiStyle
    header (test_web.py and test_hardening_web.py make their own, with upload limits or without the header)."""
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2")  # Starlette 1.x asks for the httpx2 fork
        from starlette.testclient import TestClient

    from artistyle.web.app import create_app

    app = create_app(device="cpu", preview_interval=0.0)
    with TestClient(app, base_url="http://127.0.0.1", headers={"x-artistyle": "1"}) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def studio_images(client: Any) -> tuple[str, str]:
    """The small content and style pictures uploaded to the module's studio: their image ids."""
    return upload_pair(client)


def png(image: Image.Image) -> bytes:
    """An image as PNG bytes, as a page uploads it."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload_pair(client: Any) -> tuple[str, str]:
    """Upload the small content and style pictures; their image ids."""
    ids = []
    for image, name in ((make_content(), "content.png"), (make_style(), "style.png")):
        response = client.post("/api/images", content=png(image), headers={"x-filename": name})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids[0], ids[1]


def submit_job(client: Any, content: str, styles: list[str], **settings: Any) -> dict[str, Any]:
    """Post a job to ``/api/jobs`` (it must be accepted); the job's state."""
    response = client.post("/api/jobs", json={"content": content, "styles": styles, "settings": settings})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for_job(client: Any, job: str, statuses: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
    """Poll ``/api/jobs/JOB`` until its status is one of ``statuses``; its last state."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = client.get(f"/api/jobs/{job}").json()
        if state["status"] in statuses:
            return state
        assert time.monotonic() < deadline, f"job {job} still {state['status']}"
        time.sleep(0.02)


def hold_studio_runs(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold every studio job before its first scale's transfer is made, so no iteration can run until the
    returned event is set (a test looks at what the page shows before the first iteration)."""
    from artistyle.engine import Engine

    release = threading.Event()
    real = Engine.transfer  # what the painting calls at each scale

    def held_at_the_start(self: Engine, *args: Any, **kwargs: Any) -> Any:
        release.wait(60)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "transfer", held_at_the_start)
    return release


@dataclass(frozen=True)
class TrialConfig(StyleConfig):
    """StyleConfig with three trial fields the studio may set, as a developer would add them: a number with
    a range in a group of its own, a choice in an existing group, and a switch that is on by default."""

    brush_size: int | None = setting(None, "brushes", "trial: the brush size (default: the style's)", units="px",
                                     minimum=2, maximum=64)
    brush_shape: Literal["round", "flat"] = setting("round", "loss", "trial: the brush's shape (default {default})")
    sparkle: bool = setting(True, "brushes", "trial: a switch that is on by default")


TRIAL_FIELDS = ("brush_size", "brush_shape", "sparkle")


def trial_studio_settings() -> tuple[Setting, ...]:
    """The settings a studio page may send, with :class:`TrialConfig`'s trial fields
    (for ``artistyle.web.app.studio_settings``: the status is built from this list)."""
    return tuple(s for s in describe_fields(TrialConfig) if s.studio)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A batch's inputs: photos/ (a.png, b.png) and paintings/ (wave.png, blob.png), tiny."""
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    make_content((40, 32)).save(photos / "a.png")
    make_content((32, 44)).save(photos / "b.png")
    make_style((40, 40)).save(paintings / "wave.png")
    other_style((40, 40)).save(paintings / "blob.png")
    return photos, paintings

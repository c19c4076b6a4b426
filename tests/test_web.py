"""The studio's HTTP API and the ``artistyle web`` command, without a browser."""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from artistyle.cli import main
from artistyle.config import CPU_DEFAULT_SIZE, StyleConfig
from artistyle.images import resized_shape

from .conftest import (
    REPO,
    TRIAL_FIELDS,
    interrupt_a_watched_run,
    make_content,
    make_style,
    start_studio,
    trial_studio_settings,
)

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork and warns when it finds httpx; both work.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient

from artistyle.web import app as web_app
from artistyle.web.app import create_app
from artistyle.web.settings import SETTINGS

STATIC = REPO / "src" / "artistyle" / "web" / "static"
TINY = {"size": 64, "steps": 10, "seed": 3, "scales": 1}
LIMIT_BYTES = 200_000
LIMIT_PIXELS = 500_000


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(max_upload_bytes=LIMIT_BYTES, max_pixels=LIMIT_PIXELS, device="cpu", preview_interval=0.0)
    # X-ArtiStyle: the header the studio's page sends with every POST (tests/test_hardening_web.py: without it).
    with TestClient(app, base_url="http://127.0.0.1", headers={"x-artistyle": "1"}) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def images(client: TestClient) -> tuple[str, str]:
    content = client.post("/api/images", content=png(make_content()), headers={"x-filename": "content.png"})
    style = client.post("/api/images", content=png(make_style()), headers={"x-filename": "style.png"})
    assert content.status_code == style.status_code == 201, (content.text, style.text)
    return content.json()["id"], style.json()["id"]


def submit(client: TestClient, content: str, styles: list[str], **settings: object) -> dict:
    response = client.post("/api/jobs", json={"content": content, "styles": styles, "settings": settings})
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(client: TestClient, job: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/api/jobs/{job}").json()
        if state["status"] in statuses:
            return state
        assert time.monotonic() < deadline, f"job {job} still {state['status']} after {timeout} s"
        time.sleep(0.05)


def one_line_error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    message = response.json()["error"]  # type: ignore[attr-defined]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# ---------------------------------------------------------------- page and static files


def test_page_is_served_and_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "ArtiStyle studio" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # Offline: no file the page loads names another server.
    for path in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", path.read_text()), path.name


def test_status_samples_and_unknown_paths(client: TestClient) -> None:
    status = client.get("/api/status").json()
    assert status["limits"]["max_upload_bytes"] == LIMIT_BYTES and status["device"] == "cpu"
    # Every setting a page may send, at StyleConfig's default; the size is this device's default.
    defaults = status["defaults"]
    assert set(defaults) == set(SETTINGS) and defaults["size"] == CPU_DEFAULT_SIZE
    assert defaults["style_layers"] == list(StyleConfig().style_layers) and defaults["steps"] == StyleConfig().resolved().steps
    samples = client.get("/api/samples").json()
    assert {s["name"] for s in samples} >= {"chelsea_cat.jpg", "starry_night.jpg"}
    sample = client.get(f"/api/samples/{samples[0]['id']}")
    assert sample.status_code == 200 and Image.open(io.BytesIO(sample.content)).size == (
        samples[0]["width"], samples[0]["height"])
    one_line_error(client.get("/api/samples/..%2F..%2Fcli.py"), 404)
    one_line_error(client.get("/api/jobs/nope"), 404)
    one_line_error(client.post("/api/jobs/nope/cancel"), 404)
    one_line_error(client.get("/api/nothing"), 404)


def test_status_describes_every_studio_setting(client: TestClient) -> None:
    # The page builds its More settings from these: every setting it may send, in field order, grouped as --help.
    groups = client.get("/api/status").json()["settings"]
    described = {s["name"]: s for group in groups for s in group["settings"]}
    assert list(described) == list(SETTINGS)
    assert [g["group"] for g in groups] == list(dict.fromkeys(s.group for s in StyleConfig.settings() if s.studio))
    assert all(s["group"] == g["group"] for g in groups for s in g["settings"])
    assert described["style_anchor"] == {
        "name": "style_anchor", "label": "style-anchor", "group": "coarse to fine", "kind": "int", "many": False,
        "one_or_many": False, "optional": False, "choices": [], "default": 512, "default_text": "512",
        "minimum": 0, "maximum": None, "units": "px", "unset": False, "help": next(s for s in StyleConfig.settings() if s.name == "style_anchor").help_text}
    assert described["style_layers"]["many"] and described["style_layers"]["default"] == list(StyleConfig().style_layers)
    assert described["style_size"]["one_or_many"] and described["style_size"]["minimum"] == 32
    assert described["optimizer"]["choices"] == ["lbfgs", "adam"] and described["optimizer"]["default"] == "lbfgs"
    assert described["scales"]["default"] is None and described["scales"]["minimum"] == 1  # positive: at least 1
    assert described["preserve_color"]["optional"] and described["original_colors"]["kind"] == "bool"


def test_a_new_studio_setting_reaches_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    # A field added to StyleConfig with studio=True (TrialConfig's, through the settings list the status is
    # built from) is described in /api/status with nothing else edited: the page's form comes from there.
    monkeypatch.setattr(web_app, "studio_settings", trial_studio_settings)
    app = create_app(device="cpu")
    with TestClient(app, base_url="http://127.0.0.1") as trial:
        groups = trial.get("/api/status").json()["settings"]
    described = {s["name"]: s for group in groups for s in group["settings"]}
    assert set(described) == {*SETTINGS, *TRIAL_FIELDS}
    assert described["brush_size"] == {
        "name": "brush_size", "label": "brush-size", "group": "brushes", "kind": "int", "many": False,
        "one_or_many": False, "optional": True, "choices": [], "default": None, "default_text": None,
        "minimum": 2, "maximum": 64, "units": "px", "unset": False,
        "help": "trial: the brush size (default: the style's)"}
    assert described["sparkle"]["kind"] == "bool" and described["sparkle"]["default"] is True
    # A new group comes last; a field of an existing group joins it, after its fields.
    assert groups[-1]["group"] == "brushes" and [s["name"] for s in groups[-1]["settings"]] == ["brush_size", "sparkle"]
    loss = next(g for g in groups if g["group"] == "loss")
    assert loss["settings"][-1]["name"] == "brush_shape" and loss["settings"][-1]["choices"] == ["round", "flat"]


def test_foreign_host_header_is_refused(client: TestClient) -> None:
    one_line_error(client.get("/api/status", headers={"host": "evil.example:8765"}), 400)
    assert client.get("/api/status", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/api/status", headers={"host": "[::1]:8765"}).status_code == 200


# ---------------------------------------------------------------- uploads


def test_upload_limits_and_bad_images(client: TestClient) -> None:
    big = os.urandom(LIMIT_BYTES + 1)
    message = one_line_error(client.post("/api/images", content=big, headers={"x-filename": "big.png"}), 413)
    assert "big.png" in message and "0.2 MB" in message
    # No Content-Length (chunked): refused while streaming, all the same.
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    one_line_error(client.post("/api/images", content=chunks), 413)
    many = png(Image.new("RGB", (1000, 1000), "white"))  # small file, too many pixels
    assert len(many) < LIMIT_BYTES
    message = one_line_error(client.post("/api/images", content=many, headers={"x-filename": "wide.png"}), 400)
    assert "1000x1000" in message and "500,000" in message
    assert "not an image" in one_line_error(client.post("/api/images", content=b"hello, world"), 400)
    assert "empty" in one_line_error(client.post("/api/images", content=b""), 400)
    whole = png(make_content())
    assert "truncated or corrupt" in one_line_error(client.post("/api/images", content=whole[: len(whole) // 2]), 400)
    assert "at least 32" in one_line_error(client.post("/api/images", content=png(Image.new("RGB", (8, 8)))), 400)


def test_client_file_names_are_only_labels(client: TestClient) -> None:
    response = client.post("/api/images", content=png(make_style()), headers={"x-filename": "..%2F..%2Fetc%2Fpasswd"})
    assert response.status_code == 201
    info = response.json()
    assert info["name"] == "passwd" and re.fullmatch(r"[A-Za-z0-9_-]{16}", info["id"])


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"size": "big"}, "size must be a number"),
        ({"size": 10}, "size must be at least 32"),
        ({"size": 100_000}, "at most 4096"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"steps": 2.5}, "whole number"),
        ({"seed": True}, "seed must be a number"),
        ({"style_weight": -1}, "style-weight must be a finite number >= 0"),
        ({"preserve_color": "sepia"}, "unknown preserve-color 'sepia'"),
        ({"padding": "mirror"}, "unknown padding"),
        ({"style_layers": ["conv9_9"]}, "conv9_9"),
        ({"init": "/etc/passwd"}, "init must be noise, content, style"),
        ({"masks": ["/etc/passwd"]}, "unknown setting 'masks'"),
        ({"style_blend": [1, 2]}, "2 style-blend weights given for 1 style images"),
        ({"style_scale": 0}, "style-scale must be above 0"),
        ({"scales": 4, "size": 64}, "use fewer --scales"),
        ({"style_anchor": 8}, "style-anchor must be 0 (off) or at least 32 px"),
        ({"style_anchor": "off"}, "style-anchor must be a number"),
    ],
)
def test_bad_settings_are_one_clear_error(
    client: TestClient, images: tuple[str, str], settings: dict, fragment: str
) -> None:
    content, style = images
    response = client.post("/api/jobs", json={"content": content, "styles": [style], "settings": settings})
    assert fragment in one_line_error(response, 400)


def test_bad_job_requests(client: TestClient, images: tuple[str, str]) -> None:
    content, style = images
    assert "not on the server" in one_line_error(
        client.post("/api/jobs", json={"content": "nope", "styles": [style]}), 400)
    empty = client.post("/api/jobs", json={"content": content, "styles": []})
    assert "at least one style" in one_line_error(empty, 400)
    assert "not valid JSON" in one_line_error(
        client.post("/api/jobs", content=b"{", headers={"content-type": "application/json"}), 400)
    # A plain form post from another site is not a job.
    one_line_error(client.post("/api/jobs", content=b"content=x", headers={"content-type": "text/plain"}), 415)
    assert client.get("/api/status").json()["waiting"] == 0


# ---------------------------------------------------------------- runs


def test_tiny_run_streams_progress_and_gives_the_result(client: TestClient, images: tuple[str, str]) -> None:
    content, style = images
    job = submit(client, content, [style], **TINY)
    events = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "done", events[-1]
    losses = [v for e in events for v in e["losses"]]
    assert len(losses) == 10 and losses[-1] < losses[0]
    assert len({e["preview"] for e in events if e["preview"]}) >= 2  # the preview changed during the run
    preview = client.get(f"/api/jobs/{job['id']}/preview.jpg")
    assert preview.headers["content-type"] == "image/jpeg"
    result = client.get(f"/api/jobs/{job['id']}/result.png")
    assert result.headers["content-type"] == "image/png"
    assert "attachment" in result.headers["content-disposition"]
    image = Image.open(io.BytesIO(result.content))
    assert image.format == "PNG" and image.size == resized_shape(80, 64, 64)
    state = client.get(f"/api/jobs/{job['id']}").json()
    assert state["seed"] == 3 and state["iteration"] == 10 and len(state["losses"]) == 10


def test_sample_images_can_be_used(client: TestClient, images: tuple[str, str]) -> None:
    content, _ = images
    job = submit(client, content, ["sample:starry_night.jpg", "sample:great_wave.jpg"], size=48, steps=2,
                 style_blend=[0.7, 0.3], style_scale=[1, 0.5], padding="reflect", preserve_color="luminance")
    assert wait_for(client, job["id"], ("done", "failed"))["status"] == "done"


def test_queue_positions_and_cancel(client: TestClient, images: tuple[str, str]) -> None:
    content, style = images
    long = {**TINY, "steps": 5000}
    first = submit(client, content, [style], **long)
    wait_for(client, first["id"], ("running",))
    second = submit(client, content, [style], **long)
    third = submit(client, content, [style], **long)
    assert (second["status"], second["position"]) == ("queued", 1)
    assert (third["status"], third["position"]) == ("queued", 2)
    status = client.get("/api/status").json()
    assert (status["running"], status["waiting"]) == (first["id"], 2)

    # Cancelling a queued job takes it out of the queue; the one behind moves up.
    cancelled = client.post(f"/api/jobs/{second['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and not cancelled["result"]
    assert client.get(f"/api/jobs/{third['id']}").json()["position"] == 1

    # Cancelling the running job frees the worker within an iteration; the next job starts.
    wait_for(client, first["id"], ("running",))
    while client.get(f"/api/jobs/{first['id']}").json()["iteration"] < 1:
        time.sleep(0.05)
    started = time.monotonic()
    assert client.post(f"/api/jobs/{first['id']}/cancel").json()["status"] in ("cancelling", "cancelled")
    state = wait_for(client, first["id"], ("cancelled",), timeout=20)
    wait_for(client, third["id"], ("running",), timeout=20)
    assert time.monotonic() - started < 20
    assert state["result"]  # the image so far
    assert Image.open(io.BytesIO(client.get(f"/api/jobs/{first['id']}/result.png").content)).size == (64, 51)

    client.post(f"/api/jobs/{third['id']}/cancel")
    wait_for(client, third["id"], ("cancelled",), timeout=20)
    assert client.get("/api/status").json()["running"] is None


# ---------------------------------------------------------------- fine style and region masks


def upload(client: TestClient, image: Image.Image, name: str) -> str:
    response = client.post("/api/images", content=png(image), headers={"x-filename": name})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_fine_style_run(client: TestClient, images: tuple[str, str]) -> None:
    content, style = images
    fine = upload(client, make_content((48, 48)), "fine.png")
    response = client.post("/api/jobs", json={"content": content, "styles": [style], "fine_style": fine,
                                              "settings": {**TINY, "size": 48, "steps": 3}})
    assert response.status_code == 201, response.text
    state = wait_for(client, response.json()["id"], ("done", "failed"), timeout=120)
    assert state["status"] == "done", state["error"]
    result = Image.open(io.BytesIO(client.get(f"/api/jobs/{state['id']}/result.png").content))
    assert result.size == resized_shape(80, 64, 48)


def test_label_mask_run_with_two_styles(client: TestClient, images: tuple[str, str]) -> None:
    content, style = images
    other = upload(client, make_style().transpose(Image.Transpose.FLIP_LEFT_RIGHT), "other.png")
    labels = Image.new("L", (80, 64), 1)
    labels.paste(2, (40, 0, 80, 64))
    mask = upload(client, labels, "labels.png")
    response = client.post("/api/jobs", json={"content": content, "styles": [style, other], "masks": [mask],
                                              "settings": {**TINY, "size": 48, "steps": 3}})
    assert response.status_code == 201, response.text
    state = wait_for(client, response.json()["id"], ("done", "failed"))
    assert state["status"] == "done", state["error"]
    assert (state["output_width"], state["output_height"]) == resized_shape(80, 64, 48)


def test_bad_masks_are_one_clear_error(client: TestClient, images: tuple[str, str]) -> None:
    content, style = images

    def refused(**fields: object) -> str:
        body = {"content": content, "styles": [style], "settings": TINY, **fields}
        return one_line_error(client.post("/api/jobs", json=body), 400)

    small = upload(client, Image.new("L", (40, 40), 1), "small_mask.png")
    message = refused(masks=[small])
    assert "mask 'small_mask.png' is 40x40 px" in message and "80x64" in message
    assert "not on the server" in refused(masks=["nope"]) and "mask" in refused(masks=["nope"])
    assert "fine style image 'nope' is not on the server" in refused(fine_style="nope")
    assert "list of image ids" in refused(masks="nope")
    whole = upload(client, Image.new("L", (80, 64), 255), "whole.png")
    assert "2 masks given for 1 style images" in refused(masks=[whole, whole])
    # A message from the library, which names the image it read: the client's file name.
    colour = Image.new("RGB", (80, 64), (200, 10, 10))
    colour.paste((10, 200, 10), (40, 0, 80, 64))
    message = refused(styles=[style, style], masks=[upload(client, colour, "colour_labels.png")])
    assert "label mask 'colour_labels.png' is in colour" in message
    assert client.get("/api/status").json()["waiting"] == 0


@pytest.mark.slow
def test_a_run_with_masks_and_a_fine_style_writes_no_file(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Every way Python opens a file for writing is watched (builtins.open, io.open, os.open) and the
    # temporary folder is an empty one of this test's own, for the uploads, the mask check, the run
    # and the download alike.
    writes: list[str] = []
    real_open, real_os_open = open, os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def watched_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            writes.append(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    def watched_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & write_flags:
            writes.append(f"os.open({path!r}, {flags:#o})")
        return real_os_open(path, flags, *args, **kwargs)

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(builtins, "open", watched_open)
    monkeypatch.setattr(io, "open", watched_open)
    monkeypatch.setattr(os, "open", watched_os_open)

    # A content image with alpha, two styles with one mask each, and a fine style.
    photo = make_content().convert("RGBA")
    photo.putalpha(Image.linear_gradient("L").resize(photo.size))
    left = Image.new("L", (80, 64), 0)
    left.paste(255, (0, 0, 40, 64))
    inputs = {"content.png": photo, "style.png": make_style(), "other.png": make_style().rotate(90),
              "left.png": left, "right.png": left.point(lambda v: 255 - v), "fine.png": make_content((48, 48))}
    ids = {name: upload(client, image, name) for name, image in inputs.items()}
    settings = {**TINY, "size": 48, "steps": 3}
    response = client.post("/api/jobs", json={
        "content": ids["content.png"], "styles": [ids["style.png"], ids["other.png"]],
        "masks": [ids["left.png"], ids["right.png"]], "fine_style": ids["fine.png"], "settings": settings})
    assert response.status_code == 201, response.text
    state = wait_for(client, response.json()["id"], ("done", "failed"), timeout=120)
    assert state["status"] == "done", state["error"]
    result = client.get(f"/api/jobs/{state['id']}/result.png").content
    assert writes == []
    assert list(temp.iterdir()) == []
    monkeypatch.undo()

    # The same run from the command line writes the very same PNG.
    for name, image in inputs.items():
        image.save(tmp_path / name)
    out = tmp_path / "cli.png"
    assert main([str(tmp_path / "content.png"), str(tmp_path / "style.png"), str(tmp_path / "other.png"),
                 "--mask", str(tmp_path / "left.png"), str(tmp_path / "right.png"),
                 "--fine-style", str(tmp_path / "fine.png"), "-o", str(out), "--device", "cpu",
                 "--size", "48", "--steps", "3", "--seed", "3", "--scales", "1"]) == 0
    assert out.read_bytes() == result


# ---------------------------------------------------------------- the command


def test_web_command_without_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import artistyle.web

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails as if not installed
    monkeypatch.delitem(sys.modules, "artistyle.web.server", raising=False)
    monkeypatch.delattr(artistyle.web, "server", raising=False)
    assert main(["web"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "artistyle: error: the web studio needs: pip install 'artistyle[web]'\n"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--port", "70000"], "--port: must be 0 (any free port) to 65535"),
        (["--port", "http"], "invalid port"),
        (["--max-upload-mb", "0"], "--max-upload-mb: must be a number above 0"),
        (["--max-pixels", "1000000000"], "--max-pixels must be at most"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_web_command_bad_flags(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    try:
        code = main(["web", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    _, err = capsys.readouterr()
    assert code == 2 and fragment in err and err.count("\n") == 1, err


def test_web_command_warns_off_loopback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from artistyle.web import server

    calls = []

    def fake_serve(host: str, port: int, *, ready, **settings) -> None:  # type: ignore[no-untyped-def]
        calls.append((host, port, settings))
        ready(server.url_for(host, 8765))

    monkeypatch.setattr(server, "serve", fake_serve)
    assert main(["web", "--host", "0.0.0.0", "--max-upload-mb", "5", "--max-pixels", "1000"]) == 0
    out, err = capsys.readouterr()
    assert "warning: --host 0.0.0.0 is not a loopback address" in err
    assert out == "ArtiStyle studio: http://127.0.0.1:8765/  (Ctrl-C stops it)\n"
    assert calls == [("0.0.0.0", 8765, {"max_upload_bytes": 5_000_000, "max_pixels": 1000, "device": "auto"})]
    assert main(["web"]) == 0
    assert capsys.readouterr().err == ""  # 127.0.0.1 by default: no warning
    assert calls[-1][:2] == ("127.0.0.1", 8765)


@pytest.mark.parametrize("presses", [1, 2])
def test_web_command_serves_and_stops_on_ctrl_c(tmp_path: Path, presses: int) -> None:
    import httpx

    stopped = False
    process, base = start_studio(tmp_path)

    def ctrl_c() -> None:
        nonlocal stopped
        process.send_signal(signal.SIGINT)
        if presses == 2:  # an impatient user: uvicorn's forced exit, still quiet
            time.sleep(0.05)
            process.send_signal(signal.SIGINT)
        stopped = True

    try:
        assert "ArtiStyle studio" in httpx.get(base, timeout=10).text
        # Ctrl-C with a run going and a page watching it: a quick, quiet exit.
        interrupt_a_watched_run(base, ctrl_c)
    finally:
        if process.poll() is None and not stopped:
            process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and err == "", err
    assert list(tmp_path.iterdir()) == []  # wrote nothing


def test_web_command_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    from artistyle.web.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        assert main(["web", "--port", str(taken.getsockname()[1]), "--device", "cpu"]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert err.startswith("artistyle: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1, err


def test_megabytes() -> None:
    assert [web_app.megabytes(n) for n in (20_000_000, 300_000, 25_300_000)] == ["20 MB", "0.3 MB", "25.3 MB"]

"""The studio under hostile requests: cross-site posts, huge or deeply nested bodies, bugs, signals."""

from __future__ import annotations

import io
import json
import re
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from artistyle.errors import UsageError
from artistyle.settings import short_repr
from artistyle.vgg import check_layer_names

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient

from artistyle.web.app import MAX_BODY_BYTES, create_app

from .conftest import interrupt_a_watched_run, start_studio

BASE = "http://127.0.0.1"


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(device="cpu", preview_interval=0.0)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as test_client:
        yield test_client


def json_error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json", response.text  # type: ignore[attr-defined]
    message = response.json()["error"]  # type: ignore[attr-defined]
    assert message and "\n" not in message and "Traceback" not in message
    return message


def upload(client: TestClient) -> str:
    response = client.post("/api/images", content=small_png(), headers={"x-artistyle": "1"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


# ---------------------------------------------------------------- D1: cross-site requests


def test_simple_cross_site_upload_is_refused(client: TestClient) -> None:
    # The adversarial run's request: a text/plain POST that a browser sends from any page without asking.
    refused = client.post("/api/images", content=small_png(),
                          headers={"origin": "http://evil.example", "content-type": "text/plain"})
    assert "cross-site" in json_error(refused, 403)
    # Without the custom header, even from no Origin (a form post): refused, nothing stored.
    assert "X-ArtiStyle" in json_error(client.post("/api/images", content=small_png(),
                                                   headers={"content-type": "text/plain"}), 403)
    # Sec-Fetch-Site from a browser on another site: refused even with the header.
    for site in ("cross-site", "same-site"):
        response = client.post("/api/images", content=small_png(),
                               headers={"x-artistyle": "1", "sec-fetch-site": site})
        json_error(response, 403)
    # The page itself (same origin), a typed address (none) and curl (no Origin): allowed.
    assert client.post("/api/images", content=small_png(), headers={
        "x-artistyle": "1", "origin": BASE, "sec-fetch-site": "same-origin"}).status_code == 201
    assert client.post("/api/images", content=small_png(), headers={
        "x-artistyle": "1", "sec-fetch-site": "none"}).status_code == 201
    assert client.post("/api/images", content=small_png(), headers={"x-artistyle": "1"}).status_code == 201


def test_cross_site_cancel_and_job_are_refused(client: TestClient) -> None:
    image = upload(client)
    job = client.post("/api/jobs", json={"content": image, "styles": [image],
                                         "settings": {"size": 32, "steps": 5000}})
    assert job.status_code == 201, job.text
    cancel = f"/api/jobs/{job.json()['id']}/cancel"
    # A bodiless POST (a CORS simple request): refused from another site, and without the header.
    json_error(client.post(cancel, headers={"origin": "http://evil.example"}), 403)
    json_error(client.post(cancel, headers={"origin": "null", "x-artistyle": "1"}), 403)
    json_error(client.post(cancel), 403)
    assert client.get(f"/api/jobs/{job.json()['id']}").json()["status"] in ("queued", "running")
    json_error(client.post("/api/jobs", json={"content": image, "styles": [image]},
                           headers={"origin": "http://evil.example:80", "sec-fetch-site": "cross-site"}), 403)
    assert client.post(cancel, headers={"x-artistyle": "1", "origin": BASE}).status_code == 200


def test_a_too_elongated_image_is_refused_when_the_job_is_submitted(client: TestClient) -> None:
    """D6 in the studio: a 2000x40 px strip cannot be painted at 128 px; the job is refused at once (400),
    with the command line's message in the studio's words, instead of failing when it starts."""
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 40), (10, 200, 30)).save(buffer, "PNG")
    strip = client.post("/api/images", content=buffer.getvalue(),
                        headers={"x-artistyle": "1", "x-filename": "strip.png"}).json()["id"]
    style = upload(client)
    message = json_error(client.post("/api/jobs", json={"content": strip, "styles": [style],
                                                        "settings": {"size": 128, "steps": 10}}), 400)
    assert message.startswith("content image 'strip.png' is 2000x40 px: at 128 px its short side is 3 px")
    assert "use Size " in message and "--size" not in message
    assert client.post("/api/jobs", json={"content": style, "styles": [style],
                                          "settings": {"size": 32, "steps": 1}}).status_code == 201


# ---------------------------------------------------------------- D2: sizes and echoed values


def test_large_job_bodies_are_refused(client: TestClient) -> None:
    big = json.dumps({"content": "x" * (MAX_BODY_BYTES + 10), "styles": []}).encode()
    # From Content-Length, before the body is read...
    assert "KB" in json_error(client.post("/api/jobs", content=big, headers={"content-type": "application/json"}), 413)

    # ...and while streaming, when no Content-Length says so (a chunked body).
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = client.post("/api/jobs", content=chunks(), headers={"content-type": "application/json"})
    json_error(streamed, 413)
    # A body on a route that wants none has the same limit.
    json_error(client.post("/api/jobs/nope/cancel", content=b"x" * (MAX_BODY_BYTES + 1),
                           headers={"x-artistyle": "1"}), 413)


@pytest.mark.parametrize("settings", [
    {"padding": "p" * 1_000_000},
    {"style_layers": ["conv" + "9" * 1_000]},
    {"content_layers": ["x" * 50_000]},
    {"optimizer": "z" * 50_000},
    {"z" * 50_000: 1},
])
def test_errors_quote_a_short_prefix_of_bad_values(client: TestClient, settings: dict) -> None:
    image = upload(client)
    body = json.dumps({"content": image, "styles": [image], "settings": settings})
    status = 413 if len(body) > MAX_BODY_BYTES else 400  # over the body limit: refused before it is parsed
    message = json_error(client.post("/api/jobs", content=body, headers={"content-type": "application/json"}),
                         status)
    # At most a short prefix of the bad value comes back (a list of the known names may follow).
    assert len(message) < 600 and not re.search(r"(.)\1{40}", message), message[:200]


def test_bad_ids_and_fields_are_quoted_short(client: TestClient) -> None:
    for field in ("content", "fine_style", "f" * 15_000):
        body = {"content": "i" * 15_000, "styles": ["s"], field: "i" * 15_000}
        assert len(json_error(client.post("/api/jobs", json=body), 400)) < 200


def test_layer_name_messages_are_short() -> None:
    with pytest.raises(UsageError) as caught:
        check_layer_names(["conv" + "1" * 100_000])
    assert len(str(caught.value)) < 200
    with pytest.raises(UsageError, match=r"unknown layer 'conv9_1'; did you mean"):
        check_layer_names(["conv9_1"])
    assert short_repr("x" * 1000).endswith("...") and len(short_repr("x" * 1000)) == 40


# ---------------------------------------------------------------- D9 and JSON errors everywhere


@pytest.mark.parametrize("depth", [50, 100_000 // 2])
def test_deeply_nested_json_is_a_400(client: TestClient, depth: int, caplog: pytest.LogCaptureFixture) -> None:
    for body in ("[" * depth + "]" * depth, '{"settings": ' + '{"a": ' * depth + "1" + "}" * depth + "}"):
        data = body.encode()
        response = client.post("/api/jobs", content=data, headers={"content-type": "application/json"})
        if len(data) > MAX_BODY_BYTES:
            json_error(response, 413)
        else:
            assert "nests too deeply" in json_error(response, 400)
    assert "RecursionError" not in caplog.text


def test_recursion_limit_deep_body_within_the_size_limit(client: TestClient) -> None:
    depth = MAX_BODY_BYTES // 2 - 10  # deeper than Python's recursion limit, yet under the body limit
    response = client.post("/api/jobs", content=("[" * depth + "]" * depth).encode(),
                           headers={"content-type": "application/json"})
    assert "nests too deeply" in json_error(response, 400)


def test_every_failure_is_a_json_error(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    json_error(client.get("/api/nothing"), 404)
    json_error(client.get("/static/nothing.js"), 404)
    not_allowed = client.get("/api/jobs/nope/cancel")
    json_error(not_allowed, 405)
    assert "POST" in not_allowed.headers["allow"]
    json_error(client.post("/api/jobs", content=b"x", headers={"content-type": "text/plain", "x-artistyle": "1"}),
               415)
    json_error(client.post("/api/jobs", content=b"{", headers={"content-type": "application/json"}), 400)
    # A bug in a route: a one-line JSON 500, not a plain-text one.
    studio = client.app.state.studio  # type: ignore[attr-defined]

    def broken() -> dict:
        raise RuntimeError("a bug")

    monkeypatch.setattr(studio, "status", broken)
    assert "RuntimeError" in json_error(client.get("/api/status"), 500)


# ---------------------------------------------------------------- D5: signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_web_command_stops_cleanly_on_sigterm_and_sighup(tmp_path: Path, sig: signal.Signals) -> None:
    process, base = start_studio(tmp_path)
    try:
        interrupt_a_watched_run(base, lambda: process.send_signal(sig))
    finally:
        if process.poll() is None:
            process.send_signal(sig)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0 and err == "", (process.returncode, err)
    assert list(tmp_path.iterdir()) == []

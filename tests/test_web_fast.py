"""The fast start in the studio (issue 15): the page's default where the fast extra is installed, the fast
schedule only for the schedule settings a page did not send, the feed-forward picture as the preview before
the first iteration, the same PNG as the command line, and one line where the extra is missing."""

from __future__ import annotations

import io
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from artistyle.cli import main
from artistyle.config import CPU_DEFAULT_SIZE, FAST_SCHEDULE, StyleConfig
from artistyle.errors import UsageError
from artistyle.fast import missing_dependencies
from artistyle.images import resized_shape

from .conftest import hold_studio_runs, make_content, make_style
from .conftest import submit_job as submit
from .conftest import wait_for_job as wait_for

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient

from artistyle.web.settings import FAST_HINT, parse_settings

needs_fast = pytest.mark.skipif(bool(missing_dependencies()), reason="the fast extra is not installed")


# ---------------------------------------------------------------- the settings


def test_the_fast_schedule_fills_only_what_the_page_did_not_send() -> None:
    def parsed(**settings: Any) -> StyleConfig:
        return parse_settings({"init": "fast", "size": 64, **settings}, 1, device="cpu")

    fast = parsed()
    assert (fast.steps, fast.scales, fast.scale_steps, fast.content_weight) == (40, 2, (40, 32), 2.5)
    assert {name: getattr(fast, name) for name in FAST_SCHEDULE} == FAST_SCHEDULE
    # Null (an empty Scales box) is the default, so the fast schedule's; the page leaves out an empty Steps box.
    assert parsed(scales=None, seed=None) == fast
    # Steps sent, even at the library's default: the user's schedule, coarse to fine, with weight 1.
    given = parsed(steps=300)
    assert (given.steps, given.scales, given.content_weight) == (300, None, 1.0)
    assert parsed(scale_steps=[20, 10]).steps == StyleConfig().resolved().steps
    # Scales or the content weight sent: kept, the fast schedule fills the rest.
    assert (parsed(scales=3).steps, parsed(scales=3).scales, parsed(scales=3).scale_steps) == (40, 3, None)
    assert (parsed(content_weight=1).scale_steps, parsed(content_weight=1).content_weight) == ((40, 32), 1.0)
    # Any other start keeps the library's defaults.
    assert parse_settings({"size": 64}, 1, device="cpu").steps == StyleConfig().resolved().steps
    assert parse_settings({"init": "noise"}, 1, device="cpu") == parse_settings({}, 1, device="cpu")


@pytest.mark.parametrize(("query", "expected"), [
    ({"init": "fast"}, {"sizes": [317, CPU_DEFAULT_SIZE], "steps": [40, 32], "fast": True}),
    ({"init": "fast", "size": 512, "scales": 3}, {"sizes": [256, 362, 512], "steps": [40, 20, 10], "fast": True}),
    ({"init": "fast", "size": 40}, {"sizes": [40], "steps": [72], "fast": True}),
    ({"init": "fast", "steps": 100, "size": 256}, {"sizes": [256], "steps": [100], "fast": False}),
    ({"init": "noise"}, {"sizes": [224, 317, CPU_DEFAULT_SIZE], "steps": [300, 150, 75], "fast": False}),
])
def test_the_schedule_help_shows_the_fast_schedule(
    client: TestClient, query: dict[str, Any], expected: dict[str, Any]
) -> None:
    plan = client.get("/api/schedule", params=query).json()
    assert {k: plan[k] for k in expected} == expected and plan["total"] == sum(expected["steps"])


@needs_fast
def test_the_page_starts_fast_where_the_extra_is_installed(client: TestClient) -> None:
    status = client.get("/api/status").json()
    assert status["defaults"]["init"] == "fast" and status["defaults"]["steps"] == StyleConfig().resolved().steps
    schedule = {**FAST_SCHEDULE, "scale_steps": list(FAST_SCHEDULE["scale_steps"])}  # JSON has no tuples
    assert status["fast"] == {"available": True, "message": None, "schedule": schedule}


# ---------------------------------------------------------------- the preview before the first iteration


@needs_fast
def test_the_feed_forward_picture_is_the_preview_before_the_first_iteration(
    client: TestClient, studio_images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first scale's transfer is held until the test has seen the preview: no iteration can have run.
    release = hold_studio_runs(monkeypatch)
    content, style = studio_images
    sent = time.monotonic()
    job = submit(client, content, [style], size=64, seed=2, init="fast")
    assert job["settings"]["scale_steps"] == [40, 32] and job["given"] == ["init", "seed", "size"]
    try:
        while True:
            state = client.get(f"/api/jobs/{job['id']}").json()
            if state["preview"] or state["status"] not in ("queued", "running"):
                break
            assert time.monotonic() - sent < 60, "no preview"
            time.sleep(0.02)
        assert state["status"] == "running" and state["preview"] == 1 and state["iteration"] == 0
        assert state["losses"] == [] and not state["result"]
        preview = Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/preview.jpg").content))
        assert preview.size == resized_shape(80, 64, 64)
    finally:
        release.set()
    done = wait_for(client, job["id"], ("done", "failed"))
    assert done["status"] == "done", done["error"]
    assert done["iteration"] == 72 and done["preview"] >= 2 and done["schedule"] == [40, 32]


@pytest.mark.slow
@needs_fast
def test_a_fast_start_gives_the_command_lines_png(
    client: TestClient, studio_images: tuple[str, str], tmp_path: Path
) -> None:
    content, style = studio_images
    job = submit(client, content, [style], size=48, seed=11, init="fast")
    state = wait_for(client, job["id"], ("done", "failed"))
    assert state["status"] == "done", state["error"]
    result = client.get(f"/api/jobs/{state['id']}/result.png").content
    # The same settings on the command line (the fast schedule from what was not given): the very same bytes.
    make_content().save(tmp_path / "content.png")
    make_style().save(tmp_path / "style.png")
    out = tmp_path / "cli.png"
    assert main([str(tmp_path / "content.png"), str(tmp_path / "style.png"), "-o", str(out), "--device", "cpu",
                 "--size", "48", "--seed", "11", "--init", "fast", "-q"]) == 0
    assert out.read_bytes() == result


# ---------------------------------------------------------------- without the extra


def test_without_the_extra_the_page_starts_from_noise_and_a_fast_job_is_one_line(
    client: TestClient, studio_images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails as if not installed
    status = client.get("/api/status").json()
    assert status["defaults"]["init"] == "noise" and not status["fast"]["available"]
    message = status["fast"]["message"]
    assert message.startswith(FAST_HINT) and 'pip install "artistyle[fast]"' in message
    assert "onnxruntime" in message and "\n" not in message
    content, style = studio_images
    response = client.post("/api/jobs", json={"content": content, "styles": [style],
                                              "settings": {"size": 48, "init": "fast"}})
    assert response.status_code == 400 and response.json()["error"] == message
    assert client.get("/api/status").json()["waiting"] == 0
    with pytest.raises(UsageError, match="fast extra"):
        parse_settings({"init": "fast"}, 1, device="cpu")

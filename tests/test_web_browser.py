"""The studio in a real browser: Playwright driving Debian's Chromium (skipped when either is missing).

With ARTISTYLE_SCREENSHOT=1 the first test also saves the README's screenshot, docs/images/studio.png.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from artistyle.images import resized_shape

from .conftest import REPO, SAMPLES

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]

from artistyle.web.app import create_app  # noqa: E402
from artistyle.web.server import bind  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
LIMIT_BYTES = 300_000
LIMIT_PIXELS = 1_000_000
SCREENSHOT = REPO / "docs" / "images" / "studio.png"
TIMEOUT = 90_000  # ms; the first run loads the network, on a busy 2-core machine


def _serve(**limits: int) -> Iterator[str]:
    """The studio on a free loopback port, served by uvicorn on a thread of this process."""
    app = create_app(device="cpu", preview_interval=0.1, **limits)
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the studio did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    instance.should_exit = True
    thread.join(15)
    sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A studio with small upload limits, so that oversized files are cheap to make."""
    yield from _serve(max_upload_bytes=LIMIT_BYTES, max_pixels=LIMIT_PIXELS)


@pytest.fixture(scope="module")
def default_server() -> Iterator[str]:
    """A studio as `artistyle web` starts it (its limits show on the page and in the screenshot)."""
    yield from _serve()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile that may only talk to this machine; fails the test on page errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT)
    foreign: list[str] = []
    errors: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(("http://127.0.0.1:", "blob:", "data:")):
            request_route.continue_()
        else:
            foreign.append(url)
            request_route.abort()

    context.route("**/*", route)
    context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(str(exc))))
    yield context
    context.close()
    assert not foreign, f"the page asked for other servers: {foreign}"
    assert not errors, f"JavaScript errors: {errors}"


def open_studio(context: Any, server: str) -> Any:
    page = context.new_page()
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    return page


def settings(page: Any, size: int, steps: int, seed: int = 1) -> None:
    page.fill("#size", str(size))
    page.fill("#steps", str(steps))
    page.fill("#seed", str(seed))


def status(page: Any) -> str:
    return page.get_attribute("#status", "data-status")


def wait_status(page: Any, *statuses: str, timeout: float = TIMEOUT) -> None:
    wanted = ",".join(f"#status[data-status={s}]" for s in statuses)
    page.wait_for_selector(wanted, state="attached", timeout=timeout)


def poll(condition: Any, timeout: float = TIMEOUT / 1000) -> None:
    """Wait for ``condition()`` in Python: the page's CSP forbids Playwright's string-eval waits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_paint_watch_and_download(context: Any, default_server: str, tmp_path: Path) -> None:
    screenshot = os.environ.get("ARTISTYLE_SCREENSHOT") == "1"
    page = open_studio(context, default_server)
    previews: list[bytes] = []
    page.on("response", lambda r: previews.append(r.body()) if "/preview.jpg" in r.url and r.ok else None)

    page.set_input_files("#content-file", str(SAMPLES / "chelsea_cat.jpg"))
    page.wait_for_selector("#content-thumb:not([hidden])")
    page.set_input_files("#style-file", str(SAMPLES / "starry_night.jpg"))
    page.wait_for_selector("#style-list li")
    # The README's screenshot shows a run large enough to see; the test itself stays tiny.
    size, steps = (256, 150) if screenshot else (64, 10)
    settings(page, size, steps)
    page.click("#start")
    wait_status(page, "done", timeout=900_000 if screenshot else TIMEOUT)

    width, height = resized_shape(451, 300, size)
    assert page.get_attribute("#loss", "data-points") == str(steps)
    assert page.evaluate("document.getElementById('preview').naturalWidth") == width
    assert len(set(previews)) >= 2, "the preview did not change during the run"
    assert "Done" in page.inner_text("#status") and page.is_hidden("#error")

    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "result.png"
    download.value.save_as(path)
    assert download.value.suggested_filename.endswith(".png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (width, height)

    if screenshot:
        page.mouse.move(0, 0)
        page.screenshot(path=str(SCREENSHOT))
        # Quantised to a palette: a screenshot is mostly flat colour, and the README stays light.
        with Image.open(SCREENSHOT) as shot:
            shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                SCREENSHOT, optimize=True)
        assert SCREENSHOT.stat().st_size < 300_000


def test_cancel_frees_the_worker(context: Any, server: str) -> None:
    page = open_studio(context, server)
    page.select_option("#content-sample", "sample:astronaut.jpg")
    page.select_option("#style-sample", "sample:great_wave.jpg")
    page.wait_for_selector("#style-list li")
    settings(page, 64, 5000)
    page.click("#start")
    poll(lambda: int(page.get_attribute("#status", "data-iteration") or 0) >= 2)
    page.click("#cancel")
    started = time.monotonic()
    wait_status(page, "cancelled", timeout=30_000)
    assert time.monotonic() - started < 30
    assert "Cancelled at iteration" in page.inner_text("#status")
    assert page.get_attribute("#download", "aria-disabled") == "false"  # the image so far
    assert page.request.get(server + "/api/status").json()["running"] is None
    assert page.is_enabled("#start") and page.is_disabled("#cancel")


def test_two_tabs_queue(context: Any, server: str) -> None:
    first, second = open_studio(context, server), open_studio(context, server)
    for page, steps in ((first, 30), (second, 10)):
        page.select_option("#content-sample", "sample:chelsea_cat.jpg")
        page.select_option("#style-sample", "sample:starry_night.jpg")
        page.wait_for_selector("#style-list li")
        settings(page, 64, steps)
    first.click("#start")
    wait_status(first, "running")
    second.click("#start")
    wait_status(second, "queued", timeout=10_000)
    assert "place 1" in second.inner_text("#status")
    assert second.is_enabled("#cancel") and second.is_disabled("#start")
    wait_status(first, "done")
    wait_status(second, "running", "done")
    wait_status(second, "done")
    assert second.get_attribute("#loss", "data-points") == "10"


def test_oversized_uploads_are_refused(context: Any, server: str, tmp_path: Path) -> None:
    page = open_studio(context, server)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    heavy = tmp_path / "heavy.png"
    noise.save(heavy)
    assert heavy.stat().st_size > LIMIT_BYTES
    page.set_input_files("#content-file", str(heavy))
    page.wait_for_selector("#error:not([hidden])")
    assert "heavy.png" in page.inner_text("#error") and "0.3 MB" in page.inner_text("#error")

    # Small in bytes, too many pixels: the server refuses it, the page shows why.
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1200, 1000), "white").save(wide)
    page.set_input_files("#style-file", str(wide))
    sync_api.expect(page.locator("#error")).to_contain_text("1,000,000 pixels", timeout=30_000)
    assert "wide.png" in page.inner_text("#error")
    assert page.locator("#style-list li").count() == 0 and page.is_disabled("#start")

    # The server's own byte limit, for a client that does not check first.
    response = page.evaluate("""async () => {
        const r = await fetch('/api/images', {method: 'POST', body: new Uint8Array(400000),
                                              headers: {'X-ArtiStyle': '1'}});
        return [r.status, await r.json()];
    }""")
    assert response[0] == 413 and "0.3 MB" in response[1]["error"]
    # Without the studio's header even its own origin is refused: a simple request is never enough.
    response = page.evaluate("""async () => {
        const r = await fetch('/api/images', {method: 'POST', body: new Uint8Array(10)});
        return [r.status, await r.json()];
    }""")
    assert response[0] == 403 and "X-ArtiStyle" in response[1]["error"]


def test_page_without_images_says_what_is_missing(context: Any, server: str) -> None:
    page = open_studio(context, server)
    assert page.is_disabled("#start") and "Choose a photo" in page.inner_text("#status")
    page.select_option("#content-sample", "sample:chelsea_cat.jpg")
    page.select_option("#style-sample", "sample:starry_night.jpg")
    page.fill("#size", "10")
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert "size must be at least 32" in page.inner_text("#error")


def test_drop_images_on_the_page(context: Any, server: str) -> None:
    page = open_studio(context, server)
    dropped = page.evaluate("""async () => {
        const canvas = document.createElement('canvas');
        canvas.width = 96; canvas.height = 64;
        const ctx = canvas.getContext('2d');
        ctx.fillStyle = '#c33'; ctx.fillRect(0, 0, 96, 64);
        ctx.fillStyle = '#33c'; ctx.fillRect(20, 10, 40, 40);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        for (const [zone, name] of [['content-drop', 'photo.png'], ['style-drop', 'paint.png']]) {
            const data = new DataTransfer();
            data.items.add(new File([blob], name, {type: 'image/png'}));
            document.getElementById(zone).dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        }
        return true;
    }""")
    assert dropped
    sync_api.expect(page.locator("#content-name")).to_contain_text("photo.png (96x64)")
    sync_api.expect(page.locator("#style-list li")).to_contain_text("paint.png")
    assert page.is_enabled("#start")


def test_fine_style_and_masks_in_the_page(context: Any, server: str, tmp_path: Path) -> None:
    page = open_studio(context, server)
    page.select_option("#content-sample", "sample:chelsea_cat.jpg")
    page.select_option("#style-sample", "sample:starry_night.jpg")
    page.wait_for_selector("#style-list li")
    # A second style, with its blend knobs, removed again by its own button.
    page.set_input_files("#style-file", str(SAMPLES / "great_wave.jpg"))
    sync_api.expect(page.locator("#style-list li")).to_have_count(2)
    assert page.locator("#style-list li").nth(1).locator("input").count() == 2  # weight and scale
    page.click("#style-list li:nth-child(2) button.remove")
    sync_api.expect(page.locator("#style-list li")).to_have_count(1)
    sync_api.expect(page.locator("#style-list li")).to_contain_text("starry_night.jpg")
    settings(page, 48, 3)
    page.click("summary")
    page.set_input_files("#fine-style-file", str(SAMPLES / "great_wave.jpg"))
    sync_api.expect(page.locator("#fine-style-list li")).to_contain_text("great_wave.jpg")
    # A mask that is not the photo's size is refused at Start, by its own name.
    small = tmp_path / "small_mask.png"
    Image.new("L", (40, 40), 255).save(small)
    page.set_input_files("#mask-files", str(small))
    sync_api.expect(page.locator("#mask-list li")).to_contain_text("small_mask.png")
    page.click("#start")
    sync_api.expect(page.locator("#error")).to_contain_text("mask 'small_mask.png' is 40x40 px")
    page.click("#mask-list button.remove")
    assert page.locator("#mask-list li").count() == 0
    page.click("#start")
    wait_status(page, "done")
    assert "Done: 48x32" in page.inner_text("#status") and page.is_hidden("#error")
